"""The run directory's checkpoint rule: best, else the newest of latest and the periodic ones."""
import os

from cauchy import rundir


def touch(path, mtime: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    os.utime(path, (mtime, mtime))


def test_best_else_the_newest_of_latest_and_iter(tmp_path) -> None:
    assert rundir.model_checkpoint(tmp_path) is None and rundir.last_checkpoint(tmp_path) is None
    touch(tmp_path / rundir.LATEST_CHECKPOINT, 100)
    touch(tmp_path / rundir.CHECKPOINTS / rundir.iter_checkpoint_name(40), 200)
    assert rundir.last_checkpoint(tmp_path) == tmp_path / "checkpoints" / "iter_0000040.pth"
    assert rundir.model_checkpoint(tmp_path) == rundir.last_checkpoint(tmp_path)
    touch(tmp_path / rundir.BEST_CHECKPOINT, 50)
    assert rundir.model_checkpoint(tmp_path) == tmp_path / "checkpoints" / "best.pth"
    touch(tmp_path / rundir.LATEST_CHECKPOINT, 300)
    assert rundir.last_checkpoint(tmp_path) == tmp_path / "checkpoints" / "latest.pth"
