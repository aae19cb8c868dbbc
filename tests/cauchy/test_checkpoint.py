"""CheckpointHook: which files are written when, one serialization per iteration, links that stay apart."""
from __future__ import annotations

import os
from types import SimpleNamespace

import torch

from cauchy.engine.checkpoint import CheckpointHook


class FakeTrainer(SimpleNamespace):
    """What the hook reads: the iteration, epoch boundaries, and a state that records when it was taken."""

    def state_dict(self) -> dict:
        self.serialized += 1
        return {"iter": self.iter, "schedule": dict(self.schedule)}


def hook_at(tmp_path, **kwargs) -> tuple[CheckpointHook, FakeTrainer]:
    hook = CheckpointHook(str(tmp_path), extra={"class_names": ["a"]}, best_metric="top1", **kwargs)
    hook.trainer = FakeTrainer(iter=0, epoch_finished=False, max_iters=20, serialized=0, schedule={"lr": 1.0})
    return hook, hook.trainer


def step(hook: CheckpointHook, trainer: FakeTrainer, it: int, *, epoch_end: bool, top1: float | None = None) -> None:
    trainer.iter, trainer.epoch_finished = it, epoch_end
    hook.before_step()
    if top1 is not None:  # the evaluation hook reports first, then another observer changes the schedule
        hook.observe({"top1": top1})
        trainer.schedule["lr"] /= 2
    hook.after_step()


def load(tmp_path, name: str) -> dict:
    return torch.load(tmp_path / name, weights_only=True)


def test_a_better_metric_at_an_epoch_end_is_one_write_and_two_names(tmp_path):
    hook, trainer = hook_at(tmp_path)
    step(hook, trainer, 5, epoch_end=True, top1=0.5)
    assert trainer.serialized == 1 and os.path.samefile(tmp_path / "best.pth", tmp_path / "latest.pth")
    best = load(tmp_path, "best.pth")
    assert best == {"iter": 5, "schedule": {"lr": 0.5}, "class_names": ["a"]}  # after every observer
    step(hook, trainer, 10, epoch_end=True, top1=0.4)  # worse: latest moves on, best stays
    assert trainer.serialized == 2 and not os.path.samefile(tmp_path / "best.pth", tmp_path / "latest.pth")
    assert load(tmp_path, "best.pth") == best and load(tmp_path, "latest.pth")["iter"] == 10
    assert sorted(os.listdir(tmp_path)) == ["best.pth", "latest.pth"]


def test_a_best_between_epochs_and_every_n_with_keep(tmp_path):
    hook, trainer = hook_at(tmp_path, every=3, keep=2)
    for it in range(1, 10):
        step(hook, trainer, it, epoch_end=False, top1=0.1 * it if it == 4 else None)
    assert sorted(os.listdir(tmp_path)) == ["best.pth", "iter_0000006.pth", "iter_0000009.pth"]
    assert load(tmp_path, "best.pth")["iter"] == 4 and trainer.serialized == 4  # 3, 4 (best), 6, 9
    hook.after_train()
    assert load(tmp_path, "latest.pth")["iter"] == 9


def test_a_best_reported_after_the_hooks_step_is_saved_before_the_next(tmp_path):
    hook, trainer = hook_at(tmp_path)
    trainer.iter = 7
    hook.after_step()
    hook.observe({"top1": 0.9})  # an evaluation hook placed after the checkpoint hook
    hook.before_step()
    assert load(tmp_path, "best.pth")["iter"] == 7
    assert hook.state_dict() == {"best_value": 0.9}


def test_without_hard_links_the_second_name_is_a_copy(tmp_path, monkeypatch):
    def no_links(*args):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    hook, trainer = hook_at(tmp_path)
    step(hook, trainer, 5, epoch_end=True, top1=0.5)
    assert not os.path.samefile(tmp_path / "best.pth", tmp_path / "latest.pth")
    assert load(tmp_path, "best.pth") == load(tmp_path, "latest.pth") and trainer.serialized == 1
    assert sorted(os.listdir(tmp_path)) == ["best.pth", "latest.pth"]
