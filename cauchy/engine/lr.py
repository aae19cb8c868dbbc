"""Learning-rate policies as a pure function of progress, plus linear warm-up and plateau decay."""
from __future__ import annotations

import bisect
import math
from typing import Any

from cauchy.engine.trainer import HookBase


class LRSchedule:
    """lr factor at a point of training; ``unit`` is "epoch" or "iters", ``total`` in that unit."""

    def __init__(self, policy: str, *, unit: str, total: int, warm_iters: int = 0, warm_start_factor: float = 0.1,
                 step_size: int = 30, gamma: float = 0.1, milestones: list[int] | None = None,
                 power: float = 0.9, min_factor: float = 0.0, plateau_factor: float = 0.1,
                 patience: int = 2, plateau_min_factor: float = 0.0) -> None:
        if policy not in ("fixed", "step", "multistep", "cosine", "poly", "lambda_poly", "plateau"):
            raise ValueError(f"unknown lr policy {policy!r}")
        self.policy, self.unit, self.total = policy, unit, max(total, 1)
        self.warm_iters, self.warm_start_factor = warm_iters, warm_start_factor
        self.step_size, self.gamma, self.milestones = step_size, gamma, sorted(milestones or [])
        self.power, self.min_factor = power, min_factor
        self.plateau_factor, self.patience, self.plateau_min_factor = plateau_factor, patience, plateau_min_factor
        self.plateau_scale, self.best, self.bad_evals = 1.0, -math.inf, 0

    def factor(self, it: int, epoch: int) -> float:
        t = epoch if self.unit == "epoch" else it
        if self.policy == "step":
            f = self.gamma ** (t // self.step_size)
        elif self.policy == "multistep":
            f = self.gamma ** bisect.bisect_right(self.milestones, t)
        elif self.policy == "cosine":
            f = self.min_factor + (1 - self.min_factor) * 0.5 * (1 + math.cos(math.pi * min(t / self.total, 1.0)))
        elif self.policy in ("poly", "lambda_poly"):
            f = max(1 - t / self.total, 0.0) ** self.power
        elif self.policy == "plateau":
            f = self.plateau_scale
        else:
            f = 1.0
        if it < self.warm_iters:
            f *= self.warm_start_factor + (1 - self.warm_start_factor) * it / self.warm_iters
        return f

    def observe(self, metric: float) -> None:
        """Plateau policy: decay after ``patience`` evaluations without improvement."""
        if metric > self.best:
            self.best, self.bad_evals = metric, 0
            return
        self.bad_evals += 1
        if self.bad_evals > self.patience:
            self.plateau_scale = max(self.plateau_scale * self.plateau_factor, self.plateau_min_factor)
            self.bad_evals = 0

    def state_dict(self) -> dict[str, Any]:
        return {"plateau_scale": self.plateau_scale, "best": self.best, "bad_evals": self.bad_evals}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.plateau_scale, self.best, self.bad_evals = state["plateau_scale"], state["best"], state["bad_evals"]


class LRHook(HookBase):
    """Sets every param group's lr to its base lr times the schedule's factor before each step."""

    def __init__(self, schedule: LRSchedule) -> None:
        self.schedule = schedule
        self.base_lrs: list[float] = []

    def before_train(self) -> None:
        groups = self.trainer.optimizer.param_groups
        self.base_lrs = [g.setdefault("initial_lr", g["lr"]) for g in groups]

    def before_step(self) -> None:
        f = self.schedule.factor(self.trainer.iter, self.trainer.epoch)
        for group, base in zip(self.trainer.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * f

    def state_dict(self) -> dict[str, Any]:
        return self.schedule.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.schedule.load_state_dict(state)
