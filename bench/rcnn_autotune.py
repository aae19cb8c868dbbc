"""R-CNN training steps with cuDNN autotuning always on vs as Cauchy's runner sets it (``Method.static_shapes``).

``cudnn.benchmark`` tunes every convolution again for each new input shape. Mask R-CNN's mask head and
Keypoint R-CNN's keypoint head convolve however many positive regions a step keeps, a new count nearly
every step, so with autotuning on each step pays a tuning; the runner leaves it off for those methods and on
for the rest (Faster R-CNN, shown beside them, keeps it). Both sides train the same model from the same
seed on the same random 320x320 images, boxes, masks and keypoints; rounds alternate.

    python bench/rcnn_autotune.py                  # CUDA when available, else the CPU (where cuDNN plays no part)
    python bench/rcnn_autotune.py --steps 1 --rounds 1   # a shorter CPU run

The last line of output is one JSON object: per model the seconds per step of each side and their ratio
(always-on over Cauchy's), and ``ratio``: Mask R-CNN's.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from functools import partial

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rounds import alternate, summary

import cauchy.methods  # registers the methods (cauchy.models: the models)
import cauchy.models  # noqa: F401  (registers the models)
from cauchy.registry import METHODS, MODELS
from cauchy.runner import tune_convolutions

SIZE, KEYPOINTS, CLASSES = 320, 17, 5
ARCHITECTURES = {  # method name: the registered model it trains (MobileNetV3-FPN each) and its classes
    "faster_rcnn": ("fasterrcnn_mobilenet_v3_large_fpn", CLASSES),
    "mask_rcnn": ("maskrcnn_mobilenet_v3_large_fpn", CLASSES),
    "keypoint_rcnn": ("keypointrcnn_mobilenet_v3_large_fpn", KEYPOINTS),  # classes: the keypoints
}


def sample_targets(method: str, count: int, gen: torch.Generator, device: torch.device) -> list[dict[str, torch.Tensor]]:
    """1 to 5 boxes an image, with a filled mask each (mask_rcnn) or keypoints inside them (keypoint_rcnn)."""
    targets = []
    for _ in range(count):
        k = int(torch.randint(1, 6, (1,), generator=gen))
        xy = torch.rand(k, 2, generator=gen) * (SIZE - 120)
        wh = 20 + torch.rand(k, 2, generator=gen) * 100
        boxes = torch.cat([xy, xy + wh], 1)
        target = {"boxes": boxes, "labels": torch.randint(1, CLASSES, (k,), generator=gen)}
        if method == "mask_rcnn":
            masks = torch.zeros(k, SIZE, SIZE, dtype=torch.uint8)
            for i, (x0, y0, x1, y1) in enumerate(boxes.int().tolist()):
                masks[i, y0:y1, x0:x1] = 1
            target["masks"] = masks
        if method == "keypoint_rcnn":
            target["labels"] = torch.ones(k, dtype=torch.int64)
            points = xy[:, None] + torch.rand(k, KEYPOINTS, 2, generator=gen) * wh[:, None]
            target["keypoints"] = torch.cat([points, torch.ones(k, KEYPOINTS, 1)], 2)
        targets.append({key: value.to(device) for key, value in target.items()})
    return targets


def steps_per_second(method: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer, tuned: bool,
                     steps: int, batch_size: int, device: torch.device) -> float:
    """``steps`` training steps with autotuning always on (``tuned``) or as the runner sets it."""
    if tuned:
        torch.backends.cudnn.benchmark = True
    else:
        tune_convolutions({"details": {"deterministic": False}}, METHODS.get(method))
    gen = torch.Generator().manual_seed(0)
    elapsed = 0.0
    for _ in range(steps):
        images = [torch.rand(3, SIZE, SIZE, generator=gen).to(device) for _ in range(batch_size)]
        targets = sample_targets(method, batch_size, gen, device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        loss = sum(model(images, targets).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        elapsed += time.perf_counter() - start
    return steps / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=None, help="steps a round (default: 10 on CUDA, 1 on the CPU)")
    parser.add_argument("--rounds", type=int, default=None, help="default: 3 on CUDA, 2 on the CPU")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    steps, rounds = args.steps or (10 if cuda else 1), args.rounds or (3 if cuda else 2)
    torch.set_num_threads(min(4, os.cpu_count() or 1))
    figures: dict[str, object] = {"device": str(device), "steps": steps, "rounds": rounds,
                                  "batch_size": args.batch_size}
    for method, (name, classes) in ARCHITECTURES.items():
        torch.manual_seed(0)
        model = MODELS.build(name, num_classes=classes, min_size=SIZE, max_size=SIZE).net.to(device).train()
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        print(f"{method} (static_shapes={METHODS.get(method).static_shapes}), {steps} steps a round:")
        run = partial(steps_per_second, method, model, optimizer, steps=steps, batch_size=args.batch_size, device=device)
        sides = {"cauchy": partial(run, tuned=False), "always_autotuned": partial(run, tuned=True)}
        figures[method] = summary(alternate(sides, rounds), "steps/s")
    figures["ratio"] = figures["mask_rcnn"]["ratio"]
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
