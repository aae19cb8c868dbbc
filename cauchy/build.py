"""Builders: the only code that reads hypes. Each turns one part of it into explicit keyword
arguments for a registered component, and reports a bad name or parameter by its key path."""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

import cauchy.datasets
import cauchy.methods
import cauchy.metrics
import cauchy.models  # noqa: F401
from cauchy import distributed
from cauchy.datasets.normalize import InputNormalizer
from cauchy.datasets.transforms import Compose
from cauchy.engine.lr import LRSchedule
from cauchy.engine.trainer import training_loader
from cauchy.hypes import SCHEMA, HypesError, Problems, resolve_hypes, task_of
from cauchy.methods.base import Method
from cauchy.metrics.base import CompositeEvaluator, Evaluator
from cauchy.parameters import call_component, check_parameters
from cauchy.registry import DATASETS, EVALUATORS, LOSSES, METHODS, MODELS, TRANSFORMS, Registry, UnknownComponentError
from cauchy.weights import load_pretrained

log = logging.getLogger("cauchy.build")


def component(registry: Registry, name: str, key: str) -> Any:
    """The factory registered as ``name``; an unknown name is an error on ``key``, listing the valid ones."""
    try:
        return registry.get(name)
    except UnknownComponentError as exc:
        raise HypesError(key, str(exc)) from None


def build_component(registry: Registry, name: str, key: str, params_key: str | None = None,
                    params: dict[str, Any] | None = None, **given: Any) -> Any:
    """``registry[name](**given, **params)``: a bad name is an error on ``key`` (the hypes entry that chose
    the component), a bad parameter on ``params_key.<parameter>`` (``cauchy.parameters``)."""
    factory = component(registry, name, key)
    return call_component(factory, f"{registry.kind} {name}", params_key or key, params or {}, given)


def list_components() -> dict[str, list[str]]:
    return {"models": MODELS.names(), "methods": METHODS.names(), "datasets": DATASETS.names(),
            "evaluators": EVALUATORS.names(), "losses": LOSSES.names(), "transforms": TRANSFORMS.names()}


def check_components(h: dict[str, Any]) -> None:
    """Every component the hypes name is built (the model on the ``meta`` device: no memory, no
    weights) or, for the dataset, its parameters bound, exactly as training builds them, so what passes
    here does not fail later on a key. Every problem is raised at once (a ``HypesErrors``)."""
    problems = Problems()

    def attempt(check: Callable[[], Any]) -> Any:
        try:
            return check()
        except HypesError as exc:
            problems.add(exc)
            return None

    for split in ("train", "val", "test"):
        attempt(lambda split=split: build_transforms(h, split))
    data = h["data"]
    factory = attempt(lambda: component(DATASETS, data["format"], "data.format"))
    if factory is not None:
        attempt(lambda: check_parameters(factory, f"dataset {data['format']}", "data.params", data["params"],
                                         dict.fromkeys(("root", "split", "transforms", "skip_bad_images",
                                                        "class_names"))))
    known = data["num_classes"] or len(data["class_names"] or [])
    num_classes = known or 2  # else the data decide; any count builds the model
    before = len(problems.errors)
    with torch.device("meta"):
        model = attempt(lambda: build_model(h, num_classes, pretrained=False))
    loss = attempt(lambda: build_loss(h))  # small; on the CPU, where it checks its values (class weights)
    if len(problems.errors) == before:  # so does the method (anchors)
        attempt(lambda: build_method_from(h, model, loss))
    else:
        attempt(lambda: component(METHODS, h["method"], "method"))
    for split in ("val", "test"):
        for name, key in evaluator_names(h[split]["evaluator"], split):
            # an evaluator checks its arguments against the data (the class count, the data's metadata: the
            # pose evaluators' per-keypoint sigmas), so when the data decide the count only its name is checked
            attempt(lambda name=name, key=key: build_component(
                EVALUATORS, name, key, num_classes=known, class_names=data["class_names"]) if known else
                component(EVALUATORS, name, key))
    problems.raise_any()


def check_hypes(doc: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``--check`` and the service's submission check: the resolved hypes, or one ``HypesErrors`` with
    every problem of the document and of its components. Components are checked even when some keys
    are invalid (on the rest), so one run reports everything; a key already reported is not repeated."""
    try:
        hypes = resolve_hypes(doc, overrides)
    except HypesError as exc:
        if exc.partial is None:
            raise
        problems = Problems()
        problems.add(exc)
        try:
            check_components(exc.partial)
        except HypesError as more:
            reported = {e.key for e in problems.errors}
            for error in more.errors:
                if error.key not in reported:
                    problems.add(error)
        except Exception:  # a component fed a default in place of an invalid value: already reported
            log.debug("component check on a partly invalid document stopped", exc_info=True)
        problems.raise_any()
        raise
    check_components(hypes)
    return hypes


def build_transforms(h: dict[str, Any], split: str) -> Compose:
    """torchcv's ``aug_trans: {trans_seq: [names], <name>: {params}}``, an optional final resize
    from ``data_transformer``, then ``normalize`` from ``data.normalize``; a bad name or parameter is
    an error on its key (``train.aug_trans.random_hflip.ratio``), all of a split's together."""
    aug = dict(h[split]["aug_trans"])
    seq = aug.pop("trans_seq", [])
    key = f"{split}.aug_trans"
    if not isinstance(seq, list) or not all(isinstance(n, str) for n in seq):
        raise HypesError(f"{key}.trans_seq", "expected a list of transform names")
    problems = Problems()
    for name in sorted(set(aug) - set(seq)):
        problems.add(HypesError(f"{key}.{name}", "parameters for a transform not in trans_seq"))
    specs: list[tuple[str, str, str, Any]] = [(name, f"{key}.trans_seq", f"{key}.{name}", aug.get(name, {}))
                                              for name in seq]
    try:
        specs += [(spec.pop("name"), f"{split}.data_transformer", f"{split}.data_transformer", spec)
                  for spec in data_transformer_specs(h[split]["data_transformer"], f"{split}.data_transformer")]
    except HypesError as exc:
        problems.add(exc)
    specs.append(("normalize", "data.normalize", "data.normalize", h["data"]["normalize"]))
    transforms = []
    for name, name_key, params_key, params in specs:
        if not isinstance(params, dict):
            problems.add(HypesError(params_key, f"expected an object of {name}'s parameters, got {params!r}"))
            continue
        try:
            transforms.append(build_component(TRANSFORMS, name, name_key, params_key, params))
        except HypesError as exc:
            problems.add(exc)
    problems.raise_any()
    return Compose(transforms)


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
    factory = component(DATASETS, data["format"], "data.format")
    given = dict(root=data["data_dir"], split=data[f"{split}_split"], transforms=build_transforms(h, split),
                 skip_bad_images=data["skip_bad_images"], class_names=class_names or data["class_names"])
    check_parameters(factory, f"dataset {data['format']}", "data.params", data["params"], given)
    return factory(**given, **data["params"])


def build_loader(h: dict[str, Any], split: str, dataset: Dataset, method: type[Method] | Method) -> DataLoader:
    """``<split>.batch_size`` is per rank: with N ranks a training step takes N x batch_size samples, and an
    evaluation pass gives each rank its contiguous share of the split (docs/distributed.md)."""
    cfg, workers, seed = h[split], h["data"]["workers"], h["details"]["seed"]
    common: dict[str, Any] = dict(num_workers=workers, collate_fn=method.collate, persistent_workers=workers > 0,
                                  pin_memory=torch.cuda.is_available(), generator=torch.Generator().manual_seed(seed))
    rank, world = distributed.rank(), distributed.world_size()
    if split == "train":
        return training_loader(dataset, cfg["batch_size"], shuffle=cfg["shuffle"], drop_last=cfg["drop_last"],
                               seed=seed, rank=rank, world_size=world, **common)
    return DataLoader(dataset, batch_size=cfg["batch_size"], sampler=distributed.shard(len(dataset), rank, world),  # type: ignore[arg-type]
                      **common)


def build_model(h: dict[str, Any], num_classes: int, pretrained: bool = True) -> nn.Module:
    """``pretrained=False`` leaves out ``network.pretrained`` (the check builds on the meta device)."""
    net = h["network"]
    model = build_component(MODELS, net["model_name"], "network.model_name", "network.params", net["params"],
                            num_classes=num_classes)
    if net["pretrained"] and pretrained:
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


def without_pretrained(h: dict[str, Any]) -> dict[str, Any]:
    """``h`` for a model whose weights come from a checkpoint: no loading (or downloading) of pretrained ones."""
    return {**h, "network": {**h["network"], "pretrained": None}}


def build_loss(h: dict[str, Any]) -> nn.Module | None:
    if h["loss"]["loss_type"] == "none":
        return None
    return build_component(LOSSES, h["loss"]["loss_type"], "loss.loss_type", "loss.params", h["loss"]["params"])


def build_method(h: dict[str, Any], num_classes: int) -> Method:
    return build_method_from(h, build_model(h, num_classes), build_loss(h))


def trained_method(h: dict[str, Any], class_names: list[str], metadata: dict[str, Any] | None,
                   weights: dict[str, torch.Tensor] | None = None) -> Method:
    """A trained job's method rebuilt to take its weights (test, predict, export, serving): no pretrained
    weights loaded, ``weights`` loaded when given (an inference backend may load its own), and the data's
    ``metadata`` (anchors, keypoint flips) restored."""
    method = build_method(without_pretrained(h), len(class_names))
    if weights is not None:
        method.model.load_state_dict(weights)
    method.use_metadata(dict(metadata or {}))
    return method


def build_method_from(h: dict[str, Any], model: nn.Module, loss: nn.Module | None) -> Method:
    """The task's own hypes sections (det: ``anchor``, ``res``) and keys (seg: ``test.mode``) go to the
    method as keyword arguments."""
    sections = task_of(h["task"]).method_arguments(h, SCHEMA)
    method = build_component(METHODS, h["method"], "method", model=model, loss=loss, **sections)
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
    """This process's device: ``cuda:LOCAL_RANK`` when CUDA is used (one GPU per rank), else the CPU."""
    want = h["details"]["device"]
    if want == "cuda" and not torch.cuda.is_available():
        raise HypesError("details.device", "cuda was asked for but no CUDA device is visible")
    device = distributed.device_for("cuda" if want != "cpu" and torch.cuda.is_available() else "cpu")
    if device.type == "cuda" and device.index >= torch.cuda.device_count():
        raise HypesError("details.device", f"local rank {device.index} has no GPU: {torch.cuda.device_count()} "
                                           "visible; start one process per GPU")
    return device
