"""Hooks around the training step: evaluation, logging to the sinks, and stop on SIGTERM."""
from __future__ import annotations

import logging
import signal
import sys
import time
from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np
import torch

from cauchy import distributed
from cauchy.datasets.io import read_image
from cauchy.engine.evaluation import inference_on_dataset
from cauchy.engine.trainer import HookBase
from cauchy.methods.base import Method
from cauchy.metrics.base import Evaluation, Evaluator
from cauchy.visualizer import Sink, make_event

log = logging.getLogger("cauchy.train")


class MetricObserver(Protocol):
    def observe(self, metrics: dict[str, Any]) -> None: ...


class StopRequest:
    """Turns SIGTERM/SIGINT into a flag the trainer polls, so it can checkpoint before exiting."""

    def __init__(self) -> None:
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def install(self, signums: Iterable[int] = (signal.SIGTERM, signal.SIGINT)) -> StopRequest:
        for signum in signums:
            signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C stops at once
        self.signum = signum


class StopHook(HookBase):
    def __init__(self, request: StopRequest) -> None:
        self.request = request

    def before_train(self) -> None:
        self.after_step()

    def after_step(self) -> None:
        """With several ranks the request is shared: a signal that reached one rank stops every rank
        after the same step (each launcher passes it to all, but not at the same instant)."""
        if distributed.any_rank(self.request.requested):
            self.trainer.stop_requested = True


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 4) -> np.ndarray:
    """Two RGB pictures of one image next to each other on a white background."""
    height = max(left.shape[0], right.shape[0])
    out = np.full((height, left.shape[1] + gap + right.shape[1], 3), 255, dtype=np.uint8)
    out[:left.shape[0], :left.shape[1]] = left
    out[:right.shape[0], left.shape[1] + gap:] = right
    return out


class ValidationImages:
    """The first ``count`` validation images of a pass, each as the method draws its prediction
    (left) beside the ground truth (right), sent to the sink's ``val_image_<i>`` windows.

    Everything goes through the method (``truth`` and ``draw``): a task without a drawing sends none.
    """

    def __init__(self, class_names: list[str], count: int = 4) -> None:
        self.class_names, self.count = class_names, count
        self.pending: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []

    def start(self) -> None:
        self.pending = []

    def keep(self, method: Method, batch: dict[str, Any], predictions: list[dict[str, Any]]) -> None:
        """Called per batch during the pass; keeps (path, prediction, truth) of the first images."""
        for i, prediction in enumerate(predictions[:self.count - len(self.pending)]):
            self.pending.append((batch["path"][i], prediction, method.truth(batch, i)))

    def send(self, method: Method, sink: Sink, step: int) -> None:
        for index, (path, prediction, truth) in enumerate(self.pending):
            image = read_image(path)
            drawn = method.draw(image, prediction, self.class_names)
            if drawn is None:  # the task has no drawing
                break
            expected = method.draw(image, truth, self.class_names) if truth is not None else None
            sink.write_image(f"val_image_{index}", side_by_side(drawn, image if expected is None else expected),
                             step=step, caption=f"{path}: prediction | ground truth")
        self.pending = []


class EvalHook(HookBase):
    """Evaluates every ``interval`` epochs or iterations and at the end; tells observers the result,
    and with ``images`` shows a few validation images with their predictions drawn."""

    def __init__(self, loader: Any, evaluator: Evaluator, *, interval: int, unit: str, sink: Sink,
                 observers: Iterable[MetricObserver] = (), images: ValidationImages | None = None) -> None:
        self.loader, self.evaluator, self.interval, self.unit = loader, evaluator, interval, unit
        self.sink, self.observers, self.images = sink, list(observers), images
        self.last_metrics: dict[str, float] = {}
        self.seconds = 0.0

    def due(self) -> bool:
        t = self.trainer
        if t.iter >= t.max_iters:
            return True
        if self.unit == "epoch":
            return t.epoch_finished and t.epoch % self.interval == 0
        return t.iter % self.interval == 0

    def after_step(self) -> None:
        if not self.due() or self.trainer.stop_requested:
            return
        start = time.perf_counter()
        t = self.trainer
        evaluation = self.run_pass()
        self.last_metrics = scalars = evaluation.scalars
        for name, value in scalars.items():
            self.sink.write(make_event(name, value, step=t.iter, epoch=t.epoch_float, phase="val"))
        self.sink.flush()
        log.info("eval iter %d/%d epoch %.2f: %s", t.iter, t.max_iters, t.epoch_float,
                 " ".join(f"{k}={v:.4f}" for k, v in scalars.items()))
        for observer in self.observers:
            observer.observe(scalars)
        self.seconds += time.perf_counter() - start

    def run_pass(self) -> Evaluation:
        t, images = self.trainer, self.images
        distributed.broadcast_buffers(t.method)
        if images is None:
            return inference_on_dataset(t.method, self.loader, self.evaluator, t.device)
        images.start()
        evaluation = inference_on_dataset(t.method, self.loader, self.evaluator, t.device,
                                          on_batch=lambda batch, preds: images.keep(t.method, batch, preds))
        images.send(t.method, self.sink, t.iter)
        return evaluation

    def state_dict(self) -> dict[str, Any]:
        return {"last_metrics": self.last_metrics}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last_metrics = state.get("last_metrics", {})


class PlateauObserver:
    """Feeds the main validation metric to a plateau lr schedule."""

    def __init__(self, schedule: Any, metric: str) -> None:
        self.schedule, self.metric = schedule, metric

    def observe(self, metrics: dict[str, Any]) -> None:
        if self.metric in metrics:
            self.schedule.observe(float(metrics[self.metric]))  # saved in checkpoints: a plain float


class LoggerHook(HookBase):
    """Every ``display_iter`` steps: mean losses, lr, images/s, progress and ETA to the sinks and the log.

    The first step of a run is also logged on its own: it carries the warm-up (data-loader workers
    starting, cuDNN autotuning, lazy initialisation), which would otherwise weigh on the first
    window's images/s and ETA, and its event tells when steady training starts. Losses are summed
    as tensors and read once per display, so logging adds no sync per step.
    """

    def __init__(self, sink: Sink, *, display_iter: int, eval_hook: EvalHook | None = None,
                 progress_bar: bool = True) -> None:
        self.sink, self.display_iter, self.eval_hook = sink, display_iter, eval_hook
        self.progress_bar = progress_bar and sys.stderr.isatty()
        self.bar: Any = None
        self._sums: dict[str, torch.Tensor] = {}
        self._steps = self._images = 0
        self._t0 = self._eval0 = 0.0
        self._first_step = True

    def _eval_seconds(self) -> float:
        return self.eval_hook.seconds if self.eval_hook else 0.0

    def before_train(self) -> None:
        t = self.trainer
        self.sink.write(make_event("max_iters", t.max_iters, step=t.iter, epoch=t.epoch_float, phase="train"))
        self.sink.flush()
        self._t0, self._eval0 = time.perf_counter(), self._eval_seconds()
        if self.progress_bar:
            from tqdm import tqdm

            self.bar = tqdm(total=t.max_iters, initial=t.iter, unit="it", dynamic_ncols=True)

    def after_step(self) -> None:
        t = self.trainer
        for k, v in t.last_losses.items():
            self._sums[k] = self._sums[k] + v if k in self._sums else v.clone()
        self._steps += 1
        self._images += t.last_batch_size
        if self._first_step or t.iter % self.display_iter == 0 or t.iter >= t.max_iters or t.stop_requested:
            self._first_step = False
            self.flush_window()

    def flush_window(self) -> None:
        t = self.trainer
        if not self._steps:
            return
        elapsed = max(time.perf_counter() - self._t0 - (self._eval_seconds() - self._eval0), 1e-9)
        names = sorted(self._sums)  # every rank's losses, averaged: the loss of the global batch
        losses = dict(zip(names, distributed.mean_over_ranks([float(self._sums[k]) / self._steps for k in names])))
        lr = t.optimizer.param_groups[0]["lr"]
        speed = distributed.sum_over_ranks(self._images) / elapsed
        eta = (t.max_iters - t.iter) * elapsed / self._steps
        values = {**losses, "lr": lr, "images_per_s": speed, "progress": t.iter / t.max_iters, "eta_s": eta}
        for name, value in values.items():
            self.sink.write(make_event(name, value, step=t.iter, epoch=t.epoch_float, phase="train"))
        self.sink.flush()
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{losses.get('loss', float('nan')):.4f}", lr=f"{lr:.2e}", img_s=f"{speed:.0f}")
            self.bar.update(t.iter - self.bar.n)
        log.info("iter %d/%d epoch %.2f loss %.4f lr %.3e %.1f img/s eta %s", t.iter, t.max_iters, t.epoch_float,
                 losses.get("loss", float("nan")), lr, speed, format_seconds(eta))
        self._sums, self._steps, self._images = {}, 0, 0
        self._t0, self._eval0 = time.perf_counter(), self._eval_seconds()

    def after_train(self) -> None:
        self.flush_window()
        if self.bar is not None:
            self.bar.close()


def format_seconds(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h:d}:{m:02d}:{s:02d}"
