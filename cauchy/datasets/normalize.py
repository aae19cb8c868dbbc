"""Input normalisation on the model's device: ``(image / div_value - mean) / std`` of uint8 batches.

The loader's workers only decode and move uint8 pixels (``normalize``, the pipelines' last
transform, leaves the image a uint8 CHW tensor): a float32 image is four times the bytes to build,
stack, send between processes and copy to the device, and the conversion is one cheap pass where
the model runs. Every method applies this module to its batches (``Method.prepare``); hypes
``data.normalize`` gives its parameters.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class InputNormalizer(nn.Module):
    """uint8 ``[B, 3, H, W]`` (or ``[3, H, W]``) images -> float32 ``image * scale + offset`` per channel;
    float images pass unchanged (already normalised). With ``sizes`` ([B, 2] h, w), pixels past each
    image's size (a collate's bottom/right padding) are zero, as padding a normalised batch gives."""

    def __init__(self, div_value: float = 255.0, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD) -> None:
        super().__init__()
        if len(mean) != 3 or len(std) != 3 or any(s <= 0 for s in std) or div_value <= 0:
            raise ValueError(f"normalize: expected 3 means, 3 stds > 0 and div_value > 0, "
                             f"got mean={list(mean)}, std={list(std)}, div_value={div_value}")
        std_t = torch.tensor(std, dtype=torch.float64)
        # Not saved with the model: they come from the hypes, and checkpoints stay as they were.
        self.register_buffer("scale", (1.0 / (div_value * std_t)).float().view(3, 1, 1), persistent=False)
        self.register_buffer("offset", (-torch.tensor(mean, dtype=torch.float64) / std_t).float().view(3, 1, 1),
                             persistent=False)

    def forward(self, images: torch.Tensor, sizes: torch.Tensor | None = None) -> torch.Tensor:
        if images.dtype != torch.uint8:
            return images
        out = torch.addcmul(self.offset, images.float(), self.scale)
        if sizes is not None and bool((sizes != torch.tensor(images.shape[-2:])).any()):
            sizes = sizes.to(images.device)
            rows = torch.arange(images.shape[-2], device=images.device) < sizes[:, :1]
            cols = torch.arange(images.shape[-1], device=images.device) < sizes[:, 1:]
            out = out * (rows[:, None, :, None] & cols[:, None, None, :])
        return out
