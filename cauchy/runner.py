"""The phases of a job (train, finetune, test, predict) wired from builders, engine and sinks."""
from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch

from cauchy import distributed, exitcodes, rundir
from cauchy.build import (
    build_dataset,
    build_evaluator,
    build_loader,
    build_lr_schedule,
    build_method,
    build_optimizer,
    build_transforms,
    max_iters,
    select_device,
    trained_method,
    without_pretrained,
)
from cauchy.datasets.images import ImageFiles
from cauchy.datasets.io import read_image
from cauchy.engine.checkpoint import CheckpointHook, load_checkpoint, resolve_resume
from cauchy.engine.evaluation import inference_on_dataset
from cauchy.engine.hooks import EvalHook, LoggerHook, PlateauObserver, StopHook, StopRequest, ValidationImages
from cauchy.engine.lr import LRHook
from cauchy.engine.trainer import Trainer
from cauchy.files import atomic_write
from cauchy.hypes import HypesError, save_hypes
from cauchy.inference import Predictor, TorchBackend
from cauchy.methods.base import Method
from cauchy.visualizer import MultiSink, build_sinks, make_event

log = logging.getLogger("cauchy.run")


@dataclass
class RunOptions:
    run_dir: str
    phase: str = "train"
    resume: str | None = None
    viz_port: int | None = None
    viz_base_url: str = ""
    input: str | None = None
    stop: StopRequest = field(default_factory=StopRequest)


def seed_everything(h: dict[str, Any], offset: int = 0) -> None:
    """Seed every stream from ``details.seed`` (+ ``offset``: a rank's own stream for dropout and the like)."""
    seed = h["details"]["seed"] + offset
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if h["details"]["deterministic"]:
        torch.use_deterministic_algorithms(True, warn_only=True)


def tune_convolutions(h: dict[str, Any], method: Method) -> None:
    """cuDNN autotuning on unless the run is deterministic or the method's shapes change every step
    (``Method.static_shapes``)."""
    torch.backends.cudnn.benchmark = not h["details"]["deterministic"] and method.static_shapes


DISTRIBUTED_PHASES = ("train", "finetune", "test")
"""Phases that run on every rank of a multi-process launch; predict runs on rank 0 alone."""


def run(h: dict[str, Any], opts: RunOptions) -> int:
    """Runs one phase; returns the process exit code (``cauchy.exitcodes``).

    Started by a launcher with several ranks (``WORLD_SIZE`` > 1), the training and test phases join
    its process group; rank 0 alone writes the run directory (docs/distributed.md).
    """
    if opts.phase == "finetune" and not h["network"]["pretrained"] and not opts.resume:
        raise HypesError("network.pretrained", "the finetune phase starts from pretrained weights; name them")
    main_rank = distributed.env_rank() == 0
    if not main_rank:
        logging.getLogger("cauchy").setLevel(logging.WARNING)  # one copy of each line: rank 0's
        if opts.phase not in DISTRIBUTED_PHASES:
            return exitcodes.OK
    if main_rank:
        os.makedirs(opts.run_dir, exist_ok=True)
        save_hypes(h, os.path.join(opts.run_dir, rundir.HYPES))
    seed_everything(h)
    device = select_device(h)
    if opts.phase in DISTRIBUTED_PHASES:
        distributed.init(device)
    try:
        return PHASES[opts.phase](h, opts, device)
    finally:
        distributed.shutdown()


def train(h: dict[str, Any], opts: RunOptions, device: torch.device) -> int:
    train_set = build_dataset(h, "train")
    class_names = list(train_set.class_names)
    num_classes = check_num_classes(h, class_names)
    val_set = build_dataset(h, "val", class_names=class_names)
    resume_path = resolve_resume(opts.run_dir, opts.resume) if opts.resume else None
    method = build_method(without_pretrained(h) if resume_path else h, num_classes).to(device)
    metadata = dict(getattr(train_set, "metadata", None) or {})
    method.use_metadata(metadata)
    tune_convolutions(h, method)
    if h["details"]["channels_last"]:
        method.to(memory_format=torch.channels_last)
    if h["details"]["sync_bn"] and distributed.is_distributed():
        if device.type != "cuda":
            raise HypesError("details.sync_bn", "synchronised batch norm needs CUDA ranks; on the CPU each rank "
                                                "normalises its own batch (or use a per-sample norm)")
        method = torch.nn.SyncBatchNorm.convert_sync_batchnorm(method)  # same parameters, same state-dict keys
    train_loader = build_loader(h, "train", train_set, method)
    val_loader = build_loader(h, "val", val_set, method)
    evaluator = build_evaluator(h, "val", method, num_classes, class_names, getattr(val_set, "metadata", None))
    optimizer = build_optimizer(h, method)
    solver = h["solver"]
    schedule = build_lr_schedule(h, len(train_loader))
    main_metric = solver["checkpoint"]["best_metric"] or evaluator.main_metric
    resumed = load_checkpoint(resume_path) if resume_path else None
    sink = build_sinks(opts.run_dir, opts.viz_port, opts.viz_base_url,
                       resumed_at=int(resumed["trainer"]["iter"]) if resumed else None,
                       main_metric=main_metric) if distributed.is_main() else MultiSink([])
    checkpoints = CheckpointHook(
        os.path.join(opts.run_dir, rundir.CHECKPOINTS), extra={"hypes": h, "class_names": class_names, "metadata": metadata},
        every=solver["checkpoint"]["every"], keep=solver["checkpoint"]["keep"],
        best_metric=main_metric, best_mode=solver["checkpoint"]["best_mode"])
    observers: list[Any] = [checkpoints]
    if solver["lr"]["lr_policy"] == "plateau" and main_metric:
        observers.append(PlateauObserver(schedule, main_metric))
    images = ValidationImages(class_names, count=h["logging"]["val_images"]) if opts.viz_port and distributed.is_main() \
        else None
    eval_hook = EvalHook(val_loader, evaluator, interval=solver["test_interval"], unit=solver["lr"]["metric"],
                         sink=sink, observers=observers, images=images)
    hooks = [StopHook(opts.stop), LRHook(schedule), eval_hook, checkpoints,
             LoggerHook(sink, display_iter=solver["display_iter"], eval_hook=eval_hook,
                        progress_bar=h["logging"]["progress_bar"] and distributed.is_main())]
    trainer = Trainer(method, train_loader, optimizer, max_iters=max_iters(h, len(train_loader)), device=device,
                      hooks=hooks, amp=solver["amp"], amp_cpu=solver["amp_cpu"], clip_grad_norm=solver["clip_grad_norm"])
    if distributed.is_distributed():
        seed_everything(h, offset=distributed.rank())  # the model is built (and rank 0's broadcast): own streams
    if resumed is not None:
        trainer.load_state_dict(resumed)
        log.info("resumed from %s at iteration %d", resume_path, trainer.iter)
    log.info("training %s on %s: %d images, %d classes, %d iterations on %s (%s)%s", h["network"]["model_name"],
             h["data"]["data_dir"], len(train_set), num_classes, trainer.max_iters, device, trainer.precision,
             f" x {distributed.world_size()} ranks, {distributed.world_size() * h['train']['batch_size']} images a step"
             if distributed.is_distributed() else "")
    try:
        trainer.train()
    finally:
        sink.close()
    distributed.barrier()  # no rank leaves before rank 0 has written its last checkpoint
    if trainer.stop_requested:
        log.warning("stopped by signal %s at iteration %d; checkpoint saved", opts.stop.signum, trainer.iter)
        return exitcodes.STOPPED
    return exitcodes.OK


def check_num_classes(h: dict[str, Any], class_names: list[str]) -> int:
    declared = h["data"]["num_classes"]
    if declared is not None and declared != len(class_names):
        raise HypesError("data.num_classes", f"is {declared} but the data has {len(class_names)} classes "
                                             f"({', '.join(class_names[:10])})")
    return len(class_names)


def load_for_inference(h: dict[str, Any], opts: RunOptions, device: torch.device) -> tuple[Method, list[str]]:
    """The model to test or predict with: ``--resume PATH``, else the run's best checkpoint, else its last."""
    found = resolve_resume(opts.run_dir, opts.resume) if opts.resume else rundir.model_checkpoint(opts.run_dir)
    if found is None:
        raise HypesError("", f"no checkpoint to evaluate in {os.path.join(opts.run_dir, rundir.CHECKPOINTS)}")
    path = str(found)
    state = load_checkpoint(path)
    class_names = state.get("class_names") or h["data"]["class_names"]
    if not class_names:
        raise HypesError("data.class_names", f"{path} does not record class names; give data.class_names")
    method = trained_method(h, class_names, state.get("metadata"), state["model"])
    tune_convolutions(h, method)
    log.info("loaded %s", path)
    return method.to(device).eval(), class_names


def test(h: dict[str, Any], opts: RunOptions, device: torch.device) -> int:
    method, class_names = load_for_inference(h, opts, device)
    dataset = build_dataset(h, "test", class_names=class_names)
    loader = build_loader(h, "test", dataset, method)
    evaluator = build_evaluator(h, "test", method, len(class_names), class_names, getattr(dataset, "metadata", None))
    predictions: list[dict[str, Any]] = []

    def keep(batch: dict[str, Any], preds: list[dict[str, Any]]) -> None:
        predictions.extend({"path": path, **method.describe(p, class_names)} for p, path in zip(preds, batch["path"]))

    evaluation = inference_on_dataset(method, loader, evaluator, device, on_batch=keep)
    predictions = [p for share in distributed.all_gather_objects(predictions) for p in share]  # in dataset order
    if not distributed.is_main():
        return exitcodes.OK
    sink = build_sinks(opts.run_dir)
    for name, value in evaluation.scalars.items():
        sink.write(make_event(name, value, step=0, epoch=0.0, phase="test"))
    sink.close()
    write_json(os.path.join(opts.run_dir, rundir.RESULTS),
               {"metrics": evaluation.scalars, "tables": evaluation.tables, "predictions": predictions})
    for name, document in method.test_files(evaluator).items():
        write_json(os.path.join(opts.run_dir, name), document)
    log.info("test on %d images: %s", len(dataset),
             " ".join(f"{k}={v:.4f}" for k, v in evaluation.scalars.items()))
    return exitcodes.OK


def predict(h: dict[str, Any], opts: RunOptions, device: torch.device) -> int:
    """``cauchy.inference``'s predictor (the model server's too) over the images of ``--input``."""
    if not opts.input:
        raise HypesError("", "the predict phase needs --input (an image file or a directory of images)")
    method, class_names = load_for_inference(h, opts, device)
    predictor = Predictor(method, class_names, build_transforms(h, "test"), TorchBackend(method, device))
    dataset = ImageFiles(opts.input, transforms=predictor.transforms)
    out: list[dict[str, Any]] = []
    directory = os.path.join(opts.run_dir, rundir.PREDICTIONS_DIR)
    os.makedirs(directory, exist_ok=True)
    for batch in build_loader(h, "test", dataset, method):
        for p, path in zip(predictor.predict_batch(batch), batch["path"]):
            out.append({"path": path, **predictor.describe(p)})
            drawn = predictor.draw(read_image(path), p)
            if drawn is not None:  # the method's picture of its prediction, beside predictions.json
                cv2.imwrite(os.path.join(directory, os.path.basename(path)), cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
            for name, data in predictor.files(p, path).items():
                atomic_write(os.path.join(directory, name), lambda fh, data=data: fh.write(data))
    write_json(os.path.join(opts.run_dir, rundir.PREDICTIONS), {"predictions": out})
    log.info("predicted %d images into %s", len(out), directory)
    return exitcodes.OK


def write_json(path: str, obj: Any) -> None:
    atomic_write(path, lambda fh: fh.write(json.dumps(obj, indent=1).encode()))


PHASES: dict[str, Callable[[dict[str, Any], RunOptions, torch.device], int]] = {
    "train": train, "finetune": train, "test": test, "predict": predict}
"""Each phase's function (``run_tasks.py --phase``)."""
