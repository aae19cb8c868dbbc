"""One job on two gloo processes (``run_tasks.py --nproc-per-node 2``) on the digits: the same losses as one
process with the doubled batch, an exact resume after a SIGTERM to the launcher, and an evaluation
gathered over the ranks equal to one process's.

The model normalises with GroupNorm and has no dropout, so a step does not depend on how its batch is
split between ranks (batch norm would see 8 images per rank instead of 16: docs/distributed.md).
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import run_tasks
from cauchy import exitcodes
from cauchy.visualizer import read_events

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIGITS = os.path.join(REPO, "hypes/cls/image_classifier_smallcnn_digits.json")
SPLIT_FREE = ["solver.max_epoch=null", "solver.lr.metric=iters", "solver.lr.lr_policy=fixed", "solver.display_iter=1",
              "solver.test_interval=100000", "logging.progress_bar=false", "data.workers=0",
              "network.params.norm=group", "network.params.dropout=0", "details.deterministic=true",
              'train.aug_trans={"trans_seq": ["random_hflip"], "random_hflip": {"p": 0.5}}']
PER_RANK_BATCH = 8
pytestmark = pytest.mark.slow  # three two-rank launches: about 30 s on an idle 2-core machine


def argv(run_dir, digits_dir, max_iters, batch, *extra) -> list[str]:
    sets = [f"data.data_dir={digits_dir}", *SPLIT_FREE, f"solver.max_iters={max_iters}", f"train.batch_size={batch}"]
    return ["--hypes", DIGITS, "--tmp_dir", str(run_dir), *[a for s in sets for a in ("--set", s)], *extra]


def two_ranks(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, os.path.join(REPO, "run_tasks.py"), "--nproc-per-node", "2", *args],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> int:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode in (exitcodes.OK, exitcodes.STOPPED), err[-3000:]
    return proc.returncode


def events(run_dir, name: str, phase: str) -> list[tuple[int, float]]:
    path = os.path.join(run_dir, "metrics.jsonl")
    return [(e["step"], e["value"]) for e in read_events(path)
            if e["phase"] == phase and e["name"] == name] if os.path.exists(path) else []


@pytest.fixture(scope="module")
def runs(tmp_path_factory, digits_dir):
    """``stopped``: two ranks stopped by SIGTERM at some iteration k, then resumed to k + 4; ``full``: two
    ranks straight to k + 4; ``single``: one process with the doubled batch to k + 4."""
    root = tmp_path_factory.mktemp("ddp")
    stopped = root / "stopped"
    proc = two_ranks(*argv(stopped, digits_dir, 100000, PER_RANK_BATCH))
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and len(events(stopped, "loss", "train")) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert finish(proc) == exitcodes.STOPPED
    k = torch.load(stopped / "checkpoints/latest.pth", weights_only=True)["trainer"]["iter"]
    end = k + 4
    resumed = two_ranks(*argv(stopped, digits_dir, end, PER_RANK_BATCH, "--resume", "latest"))
    full = two_ranks(*argv(root / "full", digits_dir, end, PER_RANK_BATCH))
    assert run_tasks.main(argv(root / "single", digits_dir, end, 2 * PER_RANK_BATCH)) == exitcodes.OK
    assert finish(resumed) == finish(full) == exitcodes.OK
    return {"k": k, "end": end, "stopped": stopped, "full": root / "full", "single": root / "single"}


def test_two_ranks_of_batch_b_train_as_one_process_of_batch_2b(runs):
    two, one = events(runs["full"], "loss", "train"), events(runs["single"], "loss", "train")
    assert [s for s, _ in two] == [s for s, _ in one] == list(range(1, runs["end"] + 1))
    assert [v for _, v in two] == pytest.approx([v for _, v in one], rel=1e-4, abs=1e-5)
    images_a_step = torch.load(runs["full"] / "checkpoints/latest.pth", weights_only=True)
    assert images_a_step["trainer"]["world_size"] == 2 and len(images_a_step["rng_ranks"]) == 2


def test_stopped_and_resumed_two_rank_run_continues_exactly(runs):
    k = runs["k"]
    assert k >= 3
    after = [e for e in events(runs["stopped"], "loss", "train") if e[0] > k]
    assert [s for s, _ in after] == list(range(k + 1, runs["end"] + 1))
    assert after == [e for e in events(runs["full"], "loss", "train") if e[0] > k]


def test_evaluation_gathered_over_ranks_equals_one_process(runs, digits_dir):
    """The two-rank run's last validation (each rank scored half the split) against one process testing
    the checkpoint it wrote: the same figures, over all 360 validation images."""
    run_dir = runs["full"]
    assert run_tasks.main(argv(run_dir, digits_dir, runs["end"], PER_RANK_BATCH, "--phase", "test")) == exitcodes.OK
    single = json.loads((run_dir / "results.json").read_text())["metrics"]
    gathered = {e["name"]: e["value"] for e in read_events(os.path.join(run_dir, "metrics.jsonl"))
                if e["phase"] == "val" and e["step"] == runs["end"]}
    assert gathered["count"] == single["count"] == 360
    assert gathered == pytest.approx(single, abs=1e-9)
