"""Faster R-CNN training speed: Cauchy's Trainer vs a plain PyTorch loop, mixed precision on both.

Both train the same torchvision Faster R-CNN (ResNet-50 FPN, or MobileNetV3 with ``--model``) on
the same in-memory batches of synthetic images and boxes, with SGD, a GradScaler and autocast
(bf16 where supported, else fp16; off on a CPU), so the difference is the Trainer's own overhead
(hooks, loss bookkeeping, batch moves). Rounds alternate; images/s is the median over rounds.

    python bench/det_gpu_trainer.py                       # CUDA when available: 512 px, batch 8
    python bench/det_gpu_trainer.py --size 64 --batch-size 2 --iters 2 --rounds 1   # CPU smoke run

The last line of output is one JSON object with the figures and ``ratio`` (Trainer / plain loop).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from functools import partial

import torch
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rounds import alternate, summary

import cauchy.models  # noqa: F401
from cauchy.engine.trainer import Trainer
from cauchy.methods.det import TorchvisionDetection, collate_detection, training_targets
from cauchy.registry import MODELS


class SyntheticBoxes(Dataset):
    """Random normalised images with 1-6 random boxes each, fixed by the seed."""

    def __init__(self, count: int, size: int, classes: int, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.samples = []
        for i in range(count):
            n = int(torch.randint(1, 7, (1,), generator=gen))
            xy = torch.rand(n, 2, generator=gen) * size * 0.7
            wh = (torch.rand(n, 2, generator=gen) * 0.25 + 0.05) * size
            self.samples.append({"image": torch.randn(3, size, size, generator=gen),
                                 "boxes": torch.cat([xy, (xy + wh).clamp(max=size)], dim=1),
                                 "labels": torch.randint(0, classes, (n,), generator=gen),
                                 "orig_size": (size, size), "image_id": i})

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        return self.samples[index]


def amp_dtype(device: torch.device) -> torch.dtype:
    return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float16


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_trainer(method: TorchvisionDetection, loader: DataLoader, optimizer: torch.optim.Optimizer,
                device: torch.device, iters: int) -> float:
    trainer = Trainer(method, loader, optimizer, max_iters=iters, device=device, amp=True)
    sync(device)
    start = time.perf_counter()
    trainer.train()
    sync(device)
    return iters * loader.batch_size / (time.perf_counter() - start)


def run_plain(method: TorchvisionDetection, loader: DataLoader, optimizer: torch.optim.Optimizer,
              device: torch.device, iters: int) -> float:
    """The torchvision references' loop: model(images, targets), scaled backward, step."""
    model = method.model.net
    model.train()
    use_amp = device.type == "cuda"
    dtype = amp_dtype(device)
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp and dtype == torch.float16)
    done = 0
    sync(device)
    start = time.perf_counter()
    while done < iters:
        for batch in loader:
            batch = method.prepare(batch, device)  # on the device, uint8 images normalised, as the Trainer does
            images = list(batch["image"])
            targets = [{"boxes": t["boxes"], "labels": t["labels"] + 1} for t in training_targets(batch)]
            with torch.autocast(device.type, dtype=dtype, enabled=use_amp):
                loss = sum(model(images, targets).values())
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            done += 1
            if done == iters:
                break
    sync(device)
    return iters * loader.batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="fasterrcnn_resnet50_fpn",
                        choices=("fasterrcnn_resnet50_fpn", "fasterrcnn_mobilenet_v3_large_fpn"))
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--iters", type=int, default=30, help="timed iterations per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--classes", type=int, default=20)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    net = MODELS.build(args.model, num_classes=args.classes, min_size=args.size, max_size=args.size)
    method = TorchvisionDetection(net).to(device)
    optimizer = torch.optim.SGD(method.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    loader = DataLoader(SyntheticBoxes(args.batch_size * 4, args.size, args.classes), batch_size=args.batch_size,
                        shuffle=True, collate_fn=collate_detection, drop_last=True)
    runs = {name: partial(run, method, loader, optimizer, device, args.iters)
            for name, run in (("trainer", run_trainer), ("plain", run_plain))}
    rates = alternate(runs, args.rounds)
    where = torch.cuda.get_device_name() if device.type == "cuda" else "CPU (no mixed precision)"
    print(f"{args.model} {args.size}x{args.size}, batch {args.batch_size}, {args.iters} iterations x "
          f"{args.rounds} alternating rounds on {where}, amp {amp_dtype(device) if device.type == 'cuda' else 'off'}")
    print(json.dumps(summary(rates, "images/s", device=where, model=args.model, size=args.size,
                             batch_size=args.batch_size, iters=args.iters, rounds=args.rounds)))

if __name__ == "__main__":
    main()
