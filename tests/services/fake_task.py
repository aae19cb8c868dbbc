"""A stand-in for ``run_tasks.py`` that starts in milliseconds (no torch), for the service's fast tests.

It keeps the contract of docs/contracts.md (arguments, run directory, metrics.jsonl, exit codes)
and behaves as the hypes' ``dataset`` says:
``ok`` (write ``solver.max_iters`` steps then exit 0; on SIGTERM, a checkpoint of its step and exit 3;
with ``--resume``, continue from the checkpoint's step), ``slow_ok`` (``ok`` taking 1.5 s to save on
SIGTERM), ``run`` (keep going until SIGTERM, then save a
checkpoint and exit 3), ``crash`` (traceback, exit 1), ``bad`` (``error:`` line, exit 2),
``stubborn`` (ignore SIGTERM), ``periodic`` (``ok`` with a checkpoint every 5 steps),
``hog`` (allocate memory and wait), ``fill`` (add 1 MiB to ``fill.bin`` in the
run directory each step until SIGTERM).
"""
import argparse
import json
import os
import signal
import sys
import time

parser = argparse.ArgumentParser()
for name in ("--hypes", "--phase", "--resume", "--tmp_dir", "--viz_port", "--viz_base_url", "--input",
             "--nnodes", "--node-rank", "--master-addr", "--master-port"):  # a node rank of a job spanning nodes
    parser.add_argument(name)
args = parser.parse_args()
with open(args.hypes, encoding="utf-8") as fh:
    hypes = json.load(fh)
mode = hypes["dataset"]
run_dir = args.tmp_dir
stop = []


def save_checkpoint(step: int) -> None:
    if mode == "slow_ok":
        time.sleep(1.5)
    os.makedirs(os.path.join(run_dir, "checkpoints"), exist_ok=True)
    tmp = os.path.join(run_dir, "checkpoints", "latest.pth.tmp")
    with open(tmp, "w") as fh:
        fh.write(json.dumps({"resumed_from": args.resume, "step": step}))
    os.replace(tmp, os.path.join(run_dir, "checkpoints", "latest.pth"))


def event(fh, step: int, name: str, value: float) -> None:
    fh.write(json.dumps({"step": step, "epoch": 0.0, "phase": "train", "name": name, "value": value,
                         "time": time.time()}) + "\n")
    fh.flush()


signal.signal(signal.SIGTERM, (lambda *_: None) if mode == "stubborn" else (lambda *_: stop.append(1)))
print(f"fake task {mode} phase={args.phase} viz_port={args.viz_port} resume={args.resume} "
      f"node_rank={args.node_rank} gpus={os.environ.get('CUDA_VISIBLE_DEVICES')!r} "
      f"weights_policy={os.environ.get('CAUCHY_WEIGHTS_POLICY')}",
      flush=True)
if mode == "bad":
    print("error: data.data_dir: no such directory", file=sys.stderr)
    sys.exit(2)
if mode == "crash":
    raise RuntimeError("CUDA out of memory (pretend)")
if args.phase == "predict":
    os.makedirs(os.path.join(run_dir, "predictions"), exist_ok=True)
    with open(os.path.join(run_dir, "predictions", "predictions.json"), "w") as fh:
        json.dump({"predictions": [{"path": args.input, "label": 3, "class_name": "3", "score": 0.9}]}, fh)
    sys.exit(0)
hog = b"\x01" * (300 * 2**20) if mode == "hog" else b""
max_iters = hypes["solver"]["max_iters"] or 1
with open(os.path.join(run_dir, "metrics.jsonl"), "a") as fh:
    step = 0
    if args.resume and args.phase == "train":
        with open(args.resume) as ckpt:
            step = json.load(ckpt).get("step", 0)
    else:
        event(fh, 0, "max_iters", max_iters)
    while mode in ("run", "stubborn", "hog", "fill") or step < max_iters:
        step += 1
        if mode == "fill":
            with open(os.path.join(run_dir, "fill.bin"), "ab") as fill:
                fill.write(os.urandom(2**20))
        event(fh, step, "loss", 1.0 / step)
        print(f"iter {step}", flush=True)
        if mode == "periodic" and step % 5 == 0:
            save_checkpoint(step)
        if stop:
            save_checkpoint(step)
            print("stopped after a checkpoint", flush=True)
            sys.exit(3)
        time.sleep(0.05)
save_checkpoint(step)
sys.exit(0)
