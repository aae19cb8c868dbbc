"""The one interface the engine trains and evaluates: what differs per task lives behind it."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Method(nn.Module):
    """A model plus what its task adds: targets, the loss dict and decoding of predictions.

    Subclasses implement ``forward_train``, ``predict`` and, when samples are not stackable
    as-is, ``collate``. The engine never looks inside a batch except through ``batch_size``.
    """

    def __init__(self, model: nn.Module, loss: nn.Module | None = None) -> None:
        super().__init__()
        self.model = model
        self.loss = loss

    def forward_train(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """``{"loss": total, "loss_<part>": ...}`` for one batch, in training mode."""
        raise NotImplementedError

    def predict(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        """One dict per image, with the task's standard keys (see docs/contracts.md)."""
        raise NotImplementedError

    @staticmethod
    def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
        """Stack tensors, keep everything else as lists."""
        batch: dict[str, Any] = {}
        for key in samples[0]:
            values = [s[key] for s in samples]
            if isinstance(values[0], torch.Tensor):
                batch[key] = torch.stack(values)
            elif isinstance(values[0], (int, float)) and not isinstance(values[0], bool):
                batch[key] = torch.tensor(values)
            else:
                batch[key] = values
        return batch

    @staticmethod
    def batch_size(batch: dict[str, Any]) -> int:
        return len(batch["image"])


def move_to(obj: Any, device: torch.device) -> Any:
    """Tensors (nested in dicts, lists and tuples) moved to ``device``; other values unchanged."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, dict):
        return {k: move_to(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to(v, device) for v in obj)
    return obj
