"""The evaluator interface: ``reset`` / ``process`` / ``evaluate`` -> :class:`Evaluation`, and a
composite that runs several evaluators over one pass (``val.evaluator: ["coco", "voc"]``)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Evaluation:
    """What an evaluation found: ``scalars`` are plotted, logged to metrics.jsonl and compared for the
    best checkpoint; ``tables`` (per-class figures, a confusion matrix) only go to results.json."""

    scalars: dict[str, float] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)


class Evaluator(ABC):
    """Accumulates over batches of one pass and summarises; pure (no file or network I/O).

    Built as ``EVALUATORS[name](num_classes=..., class_names=..., **dataset.metadata)``.
    ``main_metric`` names the scalar that picks the best checkpoint unless the hypes name one.
    """

    main_metric: str | None = None

    @abstractmethod
    def reset(self) -> None:
        """Forget everything processed so far (called before each pass)."""

    @abstractmethod
    def process(self, batch: dict[str, Any], predictions: list[dict[str, Any]]) -> None:
        """Take one batch (as collated by the method, on the model's device) and its predictions."""

    @abstractmethod
    def evaluate(self) -> Evaluation:
        """The figures over everything processed since ``reset``."""

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """What ``process`` accumulated since ``reset``, as picklable CPU values: each rank of a distributed
        evaluation sends its own (``cauchy.engine.evaluation``)."""

    @abstractmethod
    def merge(self, states: list[dict[str, Any]]) -> None:
        """Hold the combination of ``states`` (every rank's ``state()``, in rank order) in place of what
        was accumulated, so ``evaluate`` gives the figures over the whole dataset. The ranks process
        contiguous shares in order, so concatenating in rank order restores the single-process order."""

    def parts(self) -> list[Evaluator]:
        """The evaluators this one consists of (itself; a composite's members)."""
        return [self]


class CompositeEvaluator(Evaluator):
    """Several named evaluators fed the same batches. Each member's scalars and tables are kept as
    ``<evaluator>/<name>`` (``coco/map50`` beside ``voc/map50``), whatever they are; the main metric
    is the first member's, named the same way."""

    def __init__(self, members: Mapping[str, Evaluator]) -> None:
        if not members:
            raise ValueError("a composite evaluator needs at least one member")
        self.members = dict(members)
        first_name, first = next(iter(self.members.items()))
        self.main_metric = f"{first_name}/{first.main_metric}" if first.main_metric else None

    def reset(self) -> None:
        for member in self.members.values():
            member.reset()

    def process(self, batch: dict[str, Any], predictions: list[dict[str, Any]]) -> None:
        for member in self.members.values():
            member.process(batch, predictions)

    def evaluate(self) -> Evaluation:
        out = Evaluation()
        for name, member in self.members.items():
            result = member.evaluate()
            out.scalars.update({f"{name}/{k}": v for k, v in result.scalars.items()})
            out.tables.update({f"{name}/{k}": v for k, v in result.tables.items()})
        return out

    def state(self) -> dict[str, Any]:
        return {name: member.state() for name, member in self.members.items()}

    def merge(self, states: list[dict[str, Any]]) -> None:
        for name, member in self.members.items():
            member.merge([state[name] for state in states])

    def parts(self) -> list[Evaluator]:
        return [part for member in self.members.values() for part in member.parts()]
