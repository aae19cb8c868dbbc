"""Side-by-side rounds shared by the benchmarks: a warm-up of each side, then alternating rounds, and the
summary whose figures end up on a benchmark's last (JSON) line, and CPU time of a process tree. Torch-free."""
from __future__ import annotations

import statistics
from collections.abc import Callable

import psutil


def alternate(runs: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """One warm-up call of each, then ``rounds`` rounds calling each in turn: ``{name: [rate per round]}``."""
    for run in runs.values():
        run()
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            rates[name].append(run())
    return rates


def summary(rates: dict[str, list[float]], unit: str, limit: str | None = None, **facts: object) -> dict[str, object]:
    """Prints each side's median and rounds; returns the figures for the final JSON line.

    The first side is the one measured; ``ratio`` is its median over the strongest (highest median)
    of the other sides, except ``limit``, a bound rather than a competitor, which gives
    ``of_<limit>`` (the first side's median as a fraction of the limit's)."""
    medians = {name: statistics.median(values) for name, values in rates.items()}
    first, *others = list(rates)
    for name, values in rates.items():
        print(f"  {name:18s} median {medians[name]:8.2f} {unit}   rounds: " + " ".join(f"{v:.2f}" for v in values))
    strongest = max((name for name in others if name != limit), key=medians.__getitem__)
    ratio = medians[first] / medians[strongest]
    print(f"  ratio {first}/{strongest} (the strongest other side): {ratio:.3f}")
    figures: dict[str, object] = {f"{name}_{unit.replace('/', '_per_')}": round(m, 2) for name, m in medians.items()}
    figures.update(ratio=round(ratio, 3), strongest=strongest)
    if limit is not None:
        figures[f"of_{limit}"] = round(medians[first] / medians[limit], 3)
        print(f"  {first} at {figures[f'of_{limit}']:.3f} of {limit}")
    return {**figures, **facts, **{f"{n}_rounds": [round(v, 2) for v in r] for n, r in rates.items()}}


def cpu_seconds(proc: psutil.Process) -> float:
    """User + system CPU time so far of a process and of its children alive now (data-loader workers)."""
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            times = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total
