"""Gaussian keypoint heatmaps and their decoding, one coordinate convention for both.

A heatmap of stride ``s`` has pixel (i, j) covering input pixels ``[j s, (j + 1) s) x [i s, (i + 1) s)``,
so keypoint x (continuous input pixels) sits at heatmap coordinate ``x / s`` and the heatmap value at
pixel (i, j) is ``exp(-((j + 0.5 - x / s)^2 + (i + 0.5 - y / s)^2) / (2 sigma^2))``. Decoding takes
the argmax and refines it by a quadratic fit of the log-heatmap along each axis (exact for a Gaussian
peak), then maps back with the same convention. Batched torch, on the batch's device.
"""
from __future__ import annotations

import torch


def gaussian_heatmaps(keypoints: torch.Tensor, size: tuple[int, int], stride: float, sigma: float
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Heatmaps ``[..., K, h, w]`` and weights ``[..., K]`` for ``keypoints`` ``[..., K, 3]`` (x, y, v in
    input pixels). A keypoint's weight is 1 when it is labelled (v > 0) and lies on the heatmap, else 0
    (its heatmap is then all zeros), so unlabelled and cropped-away joints teach nothing."""
    h, w = size
    mu = keypoints[..., :2].float() / stride
    ys = torch.arange(h, device=keypoints.device, dtype=torch.float32) + 0.5
    xs = torch.arange(w, device=keypoints.device, dtype=torch.float32) + 0.5
    gx = torch.exp(-(xs - mu[..., 0:1]) ** 2 / (2 * sigma ** 2))  # [..., K, w]
    gy = torch.exp(-(ys - mu[..., 1:2]) ** 2 / (2 * sigma ** 2))  # [..., K, h]
    inside = (mu[..., 0] >= 0) & (mu[..., 0] < w) & (mu[..., 1] >= 0) & (mu[..., 1] < h)
    weights = ((keypoints[..., 2] > 0) & inside).float()
    heatmaps = gy.unsqueeze(-1) * gx.unsqueeze(-2) * weights[..., None, None]
    return heatmaps, weights


def decode_heatmaps(heatmaps: torch.Tensor, stride: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(xy [..., K, 2] in input pixels, scores [..., K])``: each heatmap's peak, refined to sub-pixel
    precision; the score is the peak value."""
    *lead, h, w = heatmaps.shape
    flat = heatmaps.reshape(-1, h * w).float()
    scores, index = flat.max(dim=1)
    iy, ix = index // w, index % w
    rows = torch.arange(flat.shape[0], device=flat.device)
    log = flat.clamp_min(1e-10).log().reshape(-1, h, w)

    def offset(centre: torch.Tensor, before: torch.Tensor, after: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        curvature = before - 2 * centre + after
        step = torch.where(valid & (curvature < 0), 0.5 * (before - after) / curvature.clamp_max(-1e-12),
                           torch.zeros_like(centre))
        return step.clamp(-0.5, 0.5)

    c = log[rows, iy, ix]
    dx = offset(c, log[rows, iy, (ix - 1).clamp_min(0)], log[rows, iy, (ix + 1).clamp_max(w - 1)],
                (ix > 0) & (ix < w - 1))
    dy = offset(c, log[rows, (iy - 1).clamp_min(0), ix], log[rows, (iy + 1).clamp_max(h - 1), ix],
                (iy > 0) & (iy < h - 1))
    xy = torch.stack([(ix.float() + 0.5 + dx) * stride, (iy.float() + 0.5 + dy) * stride], dim=1)
    return xy.reshape(*lead, 2), scores.reshape(lead)
