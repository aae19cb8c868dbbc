"""Builders: the only code that reads hypes. Each turns one part of it into explicit keyword
arguments for a registered component, and reports a bad name or parameter by its key path."""
from __future__ import annotations

import logging
import math
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

import cauchy.datasets
import cauchy.methods
import cauchy.metrics
import cauchy.models  # noqa: F401
from cauchy.datasets.normalize import InputNormalizer
from cauchy.datasets.transforms import Compose
from cauchy.datasets.transforms import build_transforms as compose_transforms
from cauchy.engine.lr import LRSchedule
from cauchy.engine.trainer import training_loader
from cauchy.hypes import SCHEMA, HypesError, task_of
from cauchy.methods.base import Method
from cauchy.metrics.base import CompositeEvaluator, Evaluator
from cauchy.registry import DATASETS, EVALUATORS, LOSSES, METHODS, MODELS, Registry, UnknownComponentError
from cauchy.weights import load_pretrained

log = logging.getLogger("cauchy.build")


def build_component(registry: Registry, name: str, key: str, **kwargs: Any) -> Any:
    """``registry.build`` with errors that name the hypes key that chose the component."""
    try:
        factory = registry.get(name)
    except UnknownComponentError as exc:
        raise HypesError(key, str(exc)) from None
    try:
        return factory(**kwargs)
    except TypeError as exc:
        if "argument" in str(exc):
            raise HypesError(key, f"{name}: {exc}") from None
        raise


def list_components() -> dict[str, list[str]]:
    from cauchy.registry import TRANSFORMS

    return {"models": MODELS.names(), "methods": METHODS.names(), "datasets": DATASETS.names(),
            "evaluators": EVALUATORS.names(), "losses": LOSSES.names(), "transforms": TRANSFORMS.names()}


def check_components(h: dict[str, Any]) -> None:
    """Every component the hypes names exists and its transforms accept their parameters;
    nothing heavy (no model, no data) is built."""
    for registry, name, key in ((METHODS, h["method"], "method"), (MODELS, h["network"]["model_name"], "network.model_name"),
                                (DATASETS, h["data"]["format"], "data.format")):
        if name not in registry:
            build_component(registry, name, key)
    if h["loss"]["loss_type"] != "none" and h["loss"]["loss_type"] not in LOSSES:
        build_component(LOSSES, h["loss"]["loss_type"], "loss.loss_type")
    for split in ("train", "val", "test"):
        build_transforms(h, split)
        for name, key in evaluator_names(h[split].get("evaluator"), split):
            if name not in EVALUATORS:
                build_component(EVALUATORS, name, key)


def build_transforms(h: dict[str, Any], split: str) -> Compose:
    """torchcv's ``aug_trans: {trans_seq: [names], <name>: {params}}``, an optional final resize
    from ``data_transformer``, then ``normalize`` from ``data.normalize``."""
    aug = dict(h[split]["aug_trans"])
    seq = aug.pop("trans_seq", [])
    if not isinstance(seq, list) or not all(isinstance(n, str) for n in seq):
        raise HypesError(f"{split}.aug_trans.trans_seq", "expected a list of transform names")
    unused = sorted(set(aug) - set(seq))
    if unused:
        raise HypesError(f"{split}.aug_trans.{unused[0]}", "parameters for a transform not in trans_seq")
    specs = [{"name": name, **aug.get(name, {})} for name in seq]
    specs += data_transformer_specs(h[split]["data_transformer"], f"{split}.data_transformer")
    specs.append({"name": "normalize", **h["data"]["normalize"]})
    try:
        return compose_transforms(specs, where=f"{split}.aug_trans")
    except ValueError as exc:
        raise HypesError("", str(exc)) from None


def data_transformer_specs(dt: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """torchcv's final sizing step: ``{"size_mode": "fix_size"|"keep_ratio", "input_size": [w, h]}``."""
    if not dt:
        return []
    unknown = sorted(set(dt) - {"size_mode", "input_size"})
    if unknown:
        raise HypesError(f"{key}.{unknown[0]}", "unknown key; valid keys here: input_size, size_mode")
    mode, size = dt.get("size_mode", "fix_size"), dt.get("input_size")
    if mode not in ("fix_size", "keep_ratio"):
        raise HypesError(f"{key}.size_mode", f'expected one of fix_size, keep_ratio, got "{mode}"')
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise HypesError(f"{key}.input_size", f"expected [width, height] in pixels, got {size}")
    return [{"name": "resize", "size": [size[1], size[0]], "keep_ratio": mode == "keep_ratio"}]


def build_dataset(h: dict[str, Any], split: str, class_names: list[str] | None = None) -> Dataset:
    """``class_names`` (the train split's, for the other splits) wins over ``data.class_names``."""
    data = h["data"]
    return build_component(
        DATASETS, data["format"], "data.format", root=data["data_dir"], split=data[f"{split}_split"],
        transforms=build_transforms(h, split),
        skip_bad_images=data["skip_bad_images"], class_names=class_names or data["class_names"], **data["params"])


def build_loader(h: dict[str, Any], split: str, dataset: Dataset, method: type[Method] | Method) -> DataLoader:
    cfg, workers, seed = h[split], h["data"]["workers"], h["details"]["seed"]
    common: dict[str, Any] = dict(num_workers=workers, collate_fn=method.collate, persistent_workers=workers > 0,
                                  pin_memory=torch.cuda.is_available(), generator=torch.Generator().manual_seed(seed))
    if split == "train":
        return training_loader(dataset, cfg["batch_size"], shuffle=cfg["shuffle"], drop_last=cfg["drop_last"],
                               seed=seed, **common)
    return DataLoader(dataset, batch_size=cfg["batch_size"], shuffle=False, **common)


def build_model(h: dict[str, Any], num_classes: int) -> nn.Module:
    net = h["network"]
    model = build_component(MODELS, net["model_name"], "network.model_name", num_classes=num_classes, **net["params"])
    if net["pretrained"]:
        load_pretrained(model, net["pretrained"], sha256=net["pretrained_sha256"])
    freeze(model, net["freeze"])
    return model


def freeze(model: nn.Module, prefixes: list[str]) -> None:
    """Turns off gradients of parameters under the named modules (``network.freeze``)."""
    for prefix in prefixes:
        hit = [p for name, p in model.named_parameters() if name == prefix or name.startswith(prefix + ".")]
        if not hit:
            raise HypesError("network.freeze", f"{prefix!r} names no parameter of {type(model).__name__}")
        for p in hit:
            p.requires_grad_(False)
        log.info("froze %s (%d tensors)", prefix, len(hit))


def build_loss(h: dict[str, Any]) -> nn.Module | None:
    if h["loss"]["loss_type"] == "none":
        return None
    return build_component(LOSSES, h["loss"]["loss_type"], "loss.loss_type", **h["loss"]["params"])


def build_method(h: dict[str, Any], num_classes: int) -> Method:
    """The task's own hypes sections (det: ``anchor``, ``res``) and keys (seg: ``test.mode``) go to the
    method as keyword arguments."""
    sections = task_of(h["task"]).method_arguments(h, SCHEMA)
    method = build_component(METHODS, h["method"], "method", model=build_model(h, num_classes), loss=build_loss(h),
                             **sections)
    method.normalizer = InputNormalizer(**h["data"]["normalize"])
    return method


def evaluator_names(chosen: str | list[str] | None, split: str) -> list[tuple[str, str]]:
    """``(name, hypes key)`` for each evaluator ``<split>.evaluator`` names (one name or a list)."""
    if chosen is None:
        return []
    if isinstance(chosen, str):
        return [(chosen, f"{split}.evaluator")]
    return [(name, f"{split}.evaluator[{i}]") for i, name in enumerate(chosen)]


def build_evaluator(h: dict[str, Any], split: str, method: Method, num_classes: int, class_names: list[str],
                    metadata: dict[str, Any] | None = None) -> Evaluator:
    """The evaluator(s) ``<split>.evaluator`` names, else the method's default; several make a
    :class:`CompositeEvaluator`. ``metadata`` is the dataset's (e.g. COCO category ids), passed to
    each as keyword arguments."""
    names = evaluator_names(h[split]["evaluator"] or method.default_evaluator, split)
    if not names:
        raise HypesError(f"{split}.evaluator", f"method {h['method']} has no default evaluator; name one")
    built = {name: build_component(EVALUATORS, name, key, num_classes=num_classes, class_names=class_names,
                                   **(metadata or {})) for name, key in names}
    if len(built) < len(names):
        raise HypesError(f"{split}.evaluator", "names an evaluator twice")
    return next(iter(built.values())) if len(built) == 1 else CompositeEvaluator(built)


def build_optimizer(h: dict[str, Any], method: nn.Module) -> torch.optim.Optimizer:
    optim, base_lr = h["solver"]["optim"], h["solver"]["lr"]["base_lr"]
    name = optim["optim_method"]
    params = [p for p in method.parameters() if p.requires_grad]
    if not params:
        raise HypesError("network.freeze", "every parameter is frozen: nothing to train")
    cfg = optim[name]
    if name == "sgd":
        return torch.optim.SGD(params, lr=base_lr, momentum=cfg["momentum"], nesterov=cfg["nesterov"],
                               weight_decay=cfg["weight_decay"])
    cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    return cls(params, lr=base_lr, betas=tuple(cfg["betas"]), eps=cfg["eps"], weight_decay=cfg["weight_decay"])


def max_iters(h: dict[str, Any], iters_per_epoch: int) -> int:
    solver = h["solver"]
    return solver["max_iters"] if solver["max_iters"] is not None else solver["max_epoch"] * iters_per_epoch


def build_lr_schedule(h: dict[str, Any], iters_per_epoch: int) -> LRSchedule:
    lr = h["solver"]["lr"]
    policy, unit = lr["lr_policy"], lr["metric"]
    total = max_iters(h, iters_per_epoch)
    if unit == "epoch":
        total = math.ceil(total / iters_per_epoch)
    gamma = lr[policy]["gamma"] if policy in ("step", "multistep") else 0.1
    return LRSchedule(
        policy, unit=unit, total=total, warm_iters=lr["warm"]["warm_iters"], warm_start_factor=lr["warm"]["start_factor"],
        step_size=lr["step"]["step_size"], gamma=gamma, milestones=lr["multistep"]["stepvalue"],
        power=lr[policy]["power"] if policy in ("poly", "lambda_poly") else 0.9,
        min_factor=lr["cosine"]["min_lr"] / lr["base_lr"], plateau_factor=lr["plateau"]["factor"],
        patience=lr["plateau"]["patience"], plateau_min_factor=lr["plateau"]["min_lr"] / lr["base_lr"])


def select_device(h: dict[str, Any]) -> torch.device:
    want = h["details"]["device"]
    if want == "cuda" and not torch.cuda.is_available():
        raise HypesError("details.device", "cuda was asked for but no CUDA device is visible")
    return torch.device("cuda" if want != "cpu" and torch.cuda.is_available() else "cpu")
