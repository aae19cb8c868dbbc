"""Model zoo: every det, seg and pose hypes trained on synthetic data for the same time budget, then scored.

    python bench/model_zoo.py [--budget 45] [--device cpu|cuda] [--tasks det seg pose] [--only SUBSTRING]
                              [--train 400] [--val 32] [--warm-iters 20] [--workers 2] [--keep DIR]

For each ``hypes/det/*.json``, ``hypes/seg/*.json`` and ``hypes/pose/*.json`` (a glob: new hypes join by themselves) the
model trains through ``run_tasks.py`` exactly as a job does, from scratch, for ``--budget``
seconds of CPU time (the task process and its data-loader workers, user + system; with ``--device
cuda``, wall-clock seconds) counted from the end of its first iteration (the trainer logs that
iteration's loss on its own); then it gets SIGTERM, saves its checkpoint and stops, as a stopped
job does. CPU time, not wall-clock time, so that every model gets the same work on a machine other
processes share. The first iteration is warm-up (data-loader workers starting, cuDNN autotuning,
lazy initialisation) and is reported apart, per model, with the start-up before it (imports, data,
model build): ``first_iter_s`` and ``first_iter_cpu_s``, ``startup_s``; ``iters`` counts the
iterations after it. A test phase on the validation
split then gives the figure: VOC mAP@0.5 (det, ``test.evaluator=voc``) or mIoU (seg, the
``miou`` scalar of the task's default evaluator) or OKS AP (pose, ``test.evaluator=coco_keypoints``).

The budget replaces each hypes' own schedule (thousands of iterations): the learning rate is the
hypes' ``base_lr`` after a linear warm-up of ``--warm-iters`` iterations (``lr_policy=fixed``), so
a short run is not spent warming up. Everything else (model, input size, batch size, optimiser,
augmentation) is the hypes' own. Data: scripts/det/shapes/prepare.py and, for seg,
scripts/seg/shapes/prepare.py, for pose scripts/pose/sticks/prepare.py (``--out DIR --train N --val N``),
generated once in a temporary folder (not timed).

The default run (7 det hypes, 45 CPU seconds each, 32 validation images: about 11 CPU minutes in
all, start-up and test phases included) took about 13 minutes on a 2-core machine with one other
busy process, before the first iterations came on top of the budgets (one 320-pixel step of the
MobileNetV3 Faster R-CNN at batch 2 already takes 12 to 16 CPU seconds there; the hypes' batch is
8); under heavier load its wall-clock time stretches, its figures do not. 45 CPU seconds
are enough to see which models start learning on a CPU, not to train them: ``--device cuda``
trains each for hundreds of iterations in the same (wall-clock) budget. The last line is one
JSON object: ``models`` (per hypes: task, metric, figure, iterations, seconds) and ``ratio``
(each model's figure divided by the best figure of its task; 1.0 is the task's best model).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import psutil

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from rounds import cpu_seconds  # noqa: E402

from cauchy import exitcodes, rundir  # noqa: E402
from cauchy.visualizer import read_events  # noqa: E402

METRIC = {"det": "map50", "seg": "miou", "pose": "ap"}  # the figure each task is ranked by
TEST_EVALUATOR = {"det": "voc", "pose": "coco_keypoints"}  # tasks not listed: their method's default evaluator
DATA = {"pose": "sticks"}  # scripts/<task>/<DATA>/prepare.py writes each task's data; "shapes" when not listed
FIRST_EVENT_TIMEOUT_S = 1800
STOP_GRACE_S = 300


def prepare(task: str, out: str, train: int, val: int) -> bool:
    """Writes the task's synthetic set; False when the task has no prepare script yet."""
    script = os.path.join(REPO, "scripts", task, DATA.get(task, "shapes"), "prepare.py")
    if not os.path.isfile(script):
        return False
    subprocess.run([sys.executable, script, "--out", out, "--train", str(train), "--val", str(val)], check=True,
                   stdout=subprocess.DEVNULL)
    return True


def events(run_dir: str) -> list[dict]:
    path = os.path.join(run_dir, rundir.METRICS)
    return read_events(path) if os.path.isfile(path) else []


def wait_for_event(run_dir: str, proc: subprocess.Popen, seen: Callable[[dict], bool], what: str) -> float:
    """The moment the task's metrics.jsonl holds an event that ``seen`` accepts (polled every 0.2 s)."""
    deadline = time.monotonic() + FIRST_EVENT_TIMEOUT_S
    while time.monotonic() < deadline:
        if any(seen(e) for e in events(run_dir)):
            return time.monotonic()
        if proc.poll() is not None:
            raise RuntimeError(f"the task exited with {proc.returncode} before {what}")
        time.sleep(0.2)
    raise RuntimeError(f"no {what} within {FIRST_EVENT_TIMEOUT_S} s")


def is_start(event: dict) -> bool:
    """The ``max_iters`` event: written just before the first iteration."""
    return event["name"] == "max_iters"


def is_loss(event: dict) -> bool:
    """A training loss event; the trainer logs the first iteration's on its own."""
    return event["phase"] == "train" and event["name"] == "loss"


def wait_out(budget: float, proc: subprocess.Popen, device: str) -> None:
    """Returns once the task has used ``budget`` CPU seconds (wall-clock seconds on a GPU) from now."""
    if device != "cpu":
        time.sleep(budget)
        return
    watched = psutil.Process(proc.pid)
    start = cpu_seconds(watched)
    while proc.poll() is None and cpu_seconds(watched) - start < budget:
        time.sleep(0.5)


def task_args(hypes: str, run_dir: str, sets: list[str]) -> list[str]:
    return [sys.executable, os.path.join(REPO, "run_tasks.py"), "--hypes", hypes, "--tmp_dir", run_dir,
            *[arg for item in sets for arg in ("--set", item)]]


@dataclass
class Training:
    """What one budgeted run did: seconds from launch to the first iteration (imports, data, model
    build), the first iteration's wall-clock and CPU seconds (warm-up: workers starting, cuDNN
    autotuning, lazy initialisation), then the iterations done within the budget and their
    wall-clock seconds."""

    startup_s: float
    first_iter_s: float
    first_iter_cpu_s: float
    iters: int
    trained_s: float


def train_for(hypes: str, run_dir: str, sets: list[str], budget: float, device: str,
              env: dict[str, str]) -> Training:
    """Trains for ``budget`` seconds counted from the end of the first iteration, then stops it as
    the service would (SIGTERM, checkpoint, exit code 3)."""
    with open(os.path.join(run_dir, "train.log"), "wb") as log:
        launched = time.monotonic()
        proc = subprocess.Popen(task_args(hypes, run_dir, sets), cwd=REPO, env=env, stdout=log, stderr=log,
                                start_new_session=True)
        try:
            watched = psutil.Process(proc.pid)
            started = wait_for_event(run_dir, proc, is_start, "the first iteration")
            cpu_started = cpu_seconds(watched)
            warmed = wait_for_event(run_dir, proc, is_loss, "the end of the first iteration")
            cpu_warmed = cpu_seconds(watched)
            wait_out(budget, proc, device)
            proc.send_signal(signal.SIGTERM)  # to the task alone, as the service's wrapper does: workers follow it
            rc = proc.wait(timeout=STOP_GRACE_S)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    trained = time.monotonic() - warmed
    if rc != exitcodes.STOPPED:
        raise RuntimeError(f"training ended with exit code {rc} (see {run_dir}/train.log)")
    steps = [e["step"] for e in events(run_dir) if is_loss(e)]
    return Training(startup_s=started - launched, first_iter_s=warmed - started, first_iter_cpu_s=cpu_warmed - cpu_started,
                    iters=max(steps) - min(steps), trained_s=trained)


def score(task: str, hypes: str, run_dir: str, sets: list[str], env: dict[str, str]) -> float:
    """The test phase on the validation split with the model just trained; its figure from metrics.jsonl."""
    extra = ["--phase", "test", "--resume", os.path.join(run_dir, rundir.LATEST_CHECKPOINT)]
    if task in TEST_EVALUATOR:
        sets = [*sets, f"test.evaluator={TEST_EVALUATOR[task]}"]
    with open(os.path.join(run_dir, "test.log"), "wb") as log:
        rc = subprocess.run([*task_args(hypes, run_dir, sets), *extra], cwd=REPO, env=env, stdout=log, stderr=log)
    if rc.returncode != exitcodes.OK:
        raise RuntimeError(f"test phase ended with exit code {rc.returncode} (see {run_dir}/test.log)")
    values = [e["value"] for e in events(run_dir) if e["phase"] == "test" and e["name"] == METRIC[task]]
    if not values:
        raise RuntimeError(f"the test phase reported no {METRIC[task]}")
    return values[-1]


def overrides(data: str, args: argparse.Namespace) -> list[str]:
    return [f"data.data_dir={data}", f"details.device={args.device}", f"data.workers={args.workers}",
            "logging.progress_bar=false", "solver.max_iters=100000000", "solver.test_interval=100000000",
            "solver.lr.lr_policy=fixed", f"solver.lr.warm.warm_iters={args.warm_iters}", "solver.display_iter=5",
            "solver.checkpoint.every=null"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=45.0,
                        help="training CPU seconds per model (wall-clock seconds with --device cuda; default 45)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--tasks", nargs="+", default=["det", "seg", "pose"], choices=sorted(METRIC))
    parser.add_argument("--only", help="only hypes whose file name contains this")
    parser.add_argument("--train", type=int, default=400, help="training images generated per task")
    parser.add_argument("--val", type=int, default=32, help="validation images generated (and scored) per task")
    parser.add_argument("--warm-iters", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2, help="data.workers")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="OMP/MKL threads of each task")
    parser.add_argument("--keep", help="keep data and run directories here (default: a temporary folder)")
    args = parser.parse_args()
    # Passive OpenMP waits: a spinning thread would spend the CPU budget waiting for a descheduled
    # sibling on a loaded machine (10x the work itself for small models; bench/seg_shapes_miou.py).
    env = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ, "OMP_NUM_THREADS": str(args.threads),
           "MKL_NUM_THREADS": str(args.threads), "PYTHONUNBUFFERED": "1"}
    rows: dict[str, dict] = {}
    wall = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cauchy-zoo-") as tmp:
        root = args.keep or tmp
        for task in args.tasks:
            paths = sorted(p for p in glob.glob(os.path.join(REPO, "hypes", task, "*.json"))
                           if not args.only or args.only in os.path.basename(p))
            data = os.path.join(root, f"{task}-{DATA.get(task, 'shapes')}")
            if not paths:
                continue
            if not prepare(task, data, args.train, args.val):
                print(f"{task}: no scripts/{task}/{DATA.get(task, 'shapes')}/prepare.py yet; {len(paths)} hypes skipped",
                      flush=True)
                continue
            for path in paths:
                name = os.path.splitext(os.path.basename(path))[0]
                run_dir = os.path.join(root, name)
                os.makedirs(run_dir, exist_ok=True)
                sets = overrides(data, args)
                with open(path) as fh:  # hypes/seg also holds Mask R-CNN's, scored as the det models are
                    kind = json.load(fh)["task"]
                row = {"task": kind, "metric": METRIC[kind], "budget_s": args.budget, "device": args.device,
                       "hypes": os.path.relpath(path, REPO)}
                try:
                    training = train_for(path, run_dir, sets, args.budget, args.device, env)
                    row.update({k: round(v, 1) if isinstance(v, float) else v for k, v in asdict(training).items()})
                    row["figure"] = score(kind, path, run_dir, sets, env)
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    row["error"] = str(exc)
                rows[name] = row
                shown = f"{row['figure']:.4f}" if "figure" in row else f"failed: {row['error']}"
                print(f"{name:38s} {kind} {METRIC[kind]} {shown} after {row.get('iters', 0)} iterations "
                      f"({args.budget:g} s budget on {args.device}, {row.get('trained_s', 0):.0f} s wall-clock) "
                      f"past a first iteration of {row.get('first_iter_s', 0):.1f} s "
                      f"({row.get('first_iter_cpu_s', 0):.1f} CPU s; start-up {row.get('startup_s', 0):.1f} s)",
                      flush=True)
    best = {task: max((r["figure"] for r in rows.values() if r["task"] == task and "figure" in r), default=0.0)
            for task in METRIC}
    ratio = {name: round(r["figure"] / best[r["task"]], 4) if "figure" in r and best[r["task"]] > 0 else 0.0
             for name, r in rows.items()}
    for r in rows.values():
        if "figure" in r:
            r["figure"] = round(r["figure"], 4)
    print(json.dumps({"models": rows, "ratio": ratio, "minutes": round((time.monotonic() - wall) / 60, 2),
                      "load_avg_5min": round(os.getloadavg()[1], 2)}))


if __name__ == "__main__":
    main()
