"""The GPU promises, with the real task on CUDA: checked on a GPU machine, skipped where the service finds no GPU
(CI has none; docs/scheduling.md and docs/distributed.md say what ran where and when).

- Two jobs never hold one GPU at once: every running task's ``CUDA_VISIBLE_DEVICES``, read from the process
  itself, is checked at each poll while a high job preempts a low one on the same GPU.
- A job preempted on the GPU resumes there by itself and ends with the same metrics as its twin run without a
  stop, as far as CUDA allows (``details.deterministic``).
- ``--nproc-per-node`` = the GPUs: one rank a GPU (NCCL from two GPUs on), mixed precision on, learns digits.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from itertools import combinations
from pathlib import Path

import psutil
import pytest
from real_tasks import DIGITS, digits_overrides, final_metrics

from services.config import REPO_ROOT, detect_gpus
from services.jobs.store import ENDED

GPUS = detect_gpus(os.environ)
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not GPUS, reason="no GPU on this machine")]
ITERS = 1500  # long enough on one GPU to be preempted mid-run


def visible_devices(job: dict) -> set[str]:
    """The GPUs the job's live processes were started with (their own environment, not what the API says)."""
    seen: set[str] = set()
    for entry in job["processes"]:
        if entry["role"] == "visdom":
            continue
        try:
            seen.update(d for d in psutil.Process(entry["pid"]).environ().get("CUDA_VISIBLE_DEVICES", "").split(",") if d)
        except psutil.Error:
            pass  # ended between the listing and the read
    return seen


def test_gpu_jobs_never_share_a_gpu_and_a_preempted_one_resumes_bit_exact(real_settings, service_factory, digits_dir):
    service = service_factory(real_settings.replace(gpus=GPUS, cpu_slots=len(GPUS) + 2, stop_grace_s=120.0))
    service.as_user("alice")
    service.as_user("bob", max_priority=10)
    overrides = [*digits_overrides(digits_dir, ITERS), "solver.checkpoint.every=25", "solver.display_iter=1",
                 "details.deterministic=true", "details.device=cuda"]

    def submit(user: str, priority: str) -> int:
        return service.submit(DIGITS, overrides=overrides, user=user, priority=priority, resources={"gpus": 1})["id"]

    def events(job_id: int) -> list[dict]:
        return service.call("GET", f"/api/v1/jobs/{job_id}/metrics").json()["events"]

    low = [submit("alice", "low") for _ in range(len(GPUS) + 1)]
    first = low[:len(GPUS)]
    for job_id in first:
        service.wait(job_id, lambda job: bool(final_metrics(events(job["id"]))[1]) or job["state"] in ENDED, timeout=180)
    assert service.job(low[-1])["state"] == "queued", "a job started with every GPU taken"
    high = submit("bob", "high")
    jobs = [*low, high]
    holders: list[tuple[int, str]] = []
    deadline = time.monotonic() + 600
    while not all((state := {j: service.job(j) for j in jobs})[j]["state"] in ENDED for j in jobs):
        assert time.monotonic() < deadline, state
        held = {j: visible_devices(job) for j, job in state.items()}
        for a, b in combinations(jobs, 2):
            assert not held[a] & held[b], f"jobs {a} and {b} both hold GPU {held[a] & held[b]}"
        holders.extend((j, gpu) for j, gpus in held.items() for gpu in gpus if (j, gpu) not in holders)
        time.sleep(0.05)
    ended = {j: service.job(j) for j in jobs}
    assert [ended[j]["state"] for j in jobs] == ["succeeded"] * len(jobs), ended
    assert {j for j, _ in holders} == set(jobs), holders  # each job was seen on a GPU
    assert all(ended[j]["resources"]["assigned_gpus"] for j in jobs)
    victims = [j for j in low if ended[j]["preemptions"]]
    assert victims, "the high job ran without preempting anyone"
    victim = victims[0]
    twin = next(j for j in low if not ended[j]["preemptions"])
    record = ended[victim]["preemptions"][0]
    assert record["for_job"] == high and ended[victim]["resume_from"] == record["checkpoint"]
    val, losses = final_metrics(events(victim))
    twin_val, twin_losses = final_metrics(events(twin))
    assert [step for step, _ in losses] == list(range(1, ITERS + 1))
    worst = max(abs(a - b) for (_, a), (_, b) in zip(losses, twin_losses))
    print(json.dumps({"gpu_jobs": {"gpus": list(GPUS), "victim": victim, "twin": twin, "resumed_at": record["checkpoint"],
                                   "val": val, "twin_val": twin_val, "largest_loss_difference": worst}}))
    assert val == twin_val and losses == twin_losses, f"largest loss difference {worst}"


def test_one_rank_a_gpu_with_mixed_precision_learns_digits(tmp_path: Path, digits_dir: str):
    run_dir = tmp_path / "run"
    argv = [sys.executable, "run_tasks.py", "--nproc-per-node", str(len(GPUS)), "--hypes", f"hypes/{DIGITS}",
            "--tmp_dir", str(run_dir), "--set", "details.device=cuda", "--set", "solver.amp=true"]
    for override in digits_overrides(digits_dir, 300):
        argv += ["--set", override]
    done = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(GPUS)})
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert "(bf16 autocast)" in output or "(fp16 autocast)" in output, output[-3000:]
    if len(GPUS) > 1:
        assert "backend nccl" in output
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    val, losses = final_metrics(events)
    print(json.dumps({"nproc_cuda": {"ranks": len(GPUS), "val": val, "first_loss": losses[0], "last_loss": losses[-1]}}))
    assert val["top1"] > 0.9, val
