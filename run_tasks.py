#!/usr/bin/env python
"""Runs one Cauchy job standalone: ``python run_tasks.py --hypes hypes/cls/....json``.

A thin CLI: it parses arguments, resolves the hypes and turns the outcome into an exit code
(``cauchy/exitcodes.py``); everything else lives in ``cauchy/``.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time

from cauchy import exitcodes, rundir
from cauchy.hypes import HypesError, load_hypes, resolve_hypes, unset_override
from cauchy.hypes_upgrade import save_report, upgrade

LAUNCH_OPTIONS = (
    ("--nproc-per-node", int, 1, "ranks on this machine, one per GPU (or CPU processes with gloo); batch_size is per rank"),
    ("--nnodes", int, 1, "machines taking part (each runs this command with its own --node-rank)"),
    ("--node-rank", int, 0, "this machine's index among --nnodes"),
    ("--master-addr", str, "127.0.0.1", "address of node 0, where the ranks meet"),
    ("--master-port", int, 29500, "port on node 0 where the ranks meet"),
)
"""Options of the launcher alone: the ranks it starts run this same command without them."""


def launch_options(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """The launcher's options and the rest of ``argv`` (each rank's own command line)."""
    p = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for flag, kind, default, _ in LAUNCH_OPTIONS:
        p.add_argument(flag, type=kind, default=default)
    return p.parse_known_args(argv)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    p.add_argument("--hypes", help="the job's JSON hypes file")
    p.add_argument("--phase", default="train", choices=("train", "finetune", "test", "predict"))
    p.add_argument("--resume", help="'latest' (the run directory's latest checkpoint) or a checkpoint path")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a hypes entry: solver.lr.base_lr=0.01 (or solver:lr:base_lr=0.01); KEY=null removes it")
    p.add_argument("--unset", dest="overrides", action="append", type=unset_override, metavar="KEY",
                   help="remove a hypes entry (it takes its default), like --set KEY=null")
    p.add_argument("--tmp_dir", help="run directory (default var/runs/<hypes name>-<time>)")
    p.add_argument("--input", help="predict phase: an image file or a directory of images")
    p.add_argument("--viz_port", type=int, help="plot to the Visdom server on this port")
    p.add_argument("--viz_base_url", default="", help="Visdom base URL, e.g. /visdom/<job>")
    p.add_argument("--viz_pid", help=argparse.SUPPRESS)  # legacy, accepted and ignored
    p.add_argument("--check", action="store_true", help="validate the hypes, print them resolved, exit")
    launch = p.add_argument_group("several processes (docs/distributed.md): run through torch.distributed.run")
    for flag, kind, default, text in LAUNCH_OPTIONS:
        launch.add_argument(flag, type=kind, default=default, help=text)
    p.add_argument("--list-components", action="store_true", help="print the registered component names as JSON")
    args = p.parse_args(argv)
    if not args.hypes and not args.list_components:
        p.error("--hypes is required")
    return args


def default_run_dir(hypes_path: str) -> str:
    name = os.path.splitext(os.path.basename(hypes_path))[0]
    return os.path.join("var", "runs", f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stdout)
    from cauchy.launch import Launch, launch

    spec, rank_argv = launch_options(argv)
    launch_spec = Launch(**vars(spec))
    if launch_spec.needed and not (args.check or args.list_components):  # those run once, here
        if not args.tmp_dir:  # one run directory for all ranks, not one per rank's clock
            rank_argv += ["--tmp_dir", default_run_dir(args.hypes)]
        return launch(launch_spec, os.path.abspath(__file__), rank_argv)
    from cauchy import distributed
    from cauchy.lifeline import die_with_parent

    if not distributed.launched_by_torchrun():
        return run_phase(args)
    die_with_parent()  # torchrun starts ranks in sessions of their own: a SIGKILL of the job's group misses them
    try:
        return run_phase(args)
    finally:  # torchrun's SIGTERM to the ranks still running once one exits must not change our exit code
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def run_phase(args: argparse.Namespace) -> int:
    """The job itself, in this process."""
    from cauchy import distributed
    from cauchy.datasets.errors import DatasetError
    from cauchy.engine.hooks import StopRequest  # imports torch: after argument errors are reported
    from cauchy.registry import UnknownComponentError
    from cauchy.weights import WeightsError
    from cauchy.weights_only import UnsafeFileError

    BAD_INPUT_ERRORS = (HypesError, DatasetError, WeightsError, UnsafeFileError, UnknownComponentError,
                        FileNotFoundError)
    stop = StopRequest().install()
    try:
        if args.list_components:
            from cauchy.build import list_components

            print(json.dumps(list_components()))
            return exitcodes.OK
        translation = upgrade(load_hypes(args.hypes))
        if translation.is_torchcv:  # on stderr with --check, whose stdout is the resolved JSON
            print(translation.report(), file=sys.stderr if args.check else sys.stdout, flush=True)
        if args.check:
            from cauchy.build import check_hypes

            print(json.dumps(check_hypes(translation.hypes, args.overrides), indent=2, sort_keys=True))
            return exitcodes.OK
        hypes = resolve_hypes(translation.hypes, args.overrides)
        logging.getLogger().setLevel(hypes["logging"]["log_level"].upper())
        from cauchy.runner import RunOptions, run

        run_dir = args.tmp_dir or default_run_dir(args.hypes)
        if translation.is_torchcv and distributed.env_rank() == 0:
            os.makedirs(run_dir, exist_ok=True)
            save_report(translation, os.path.join(run_dir, rundir.HYPES_UPGRADE))
        opts = RunOptions(run_dir=run_dir, phase=args.phase, resume=args.resume,
                          viz_port=args.viz_port, viz_base_url=args.viz_base_url, input=args.input, stop=stop)
        return run(hypes, opts)
    except BAD_INPUT_ERRORS as exc:
        print("\n".join(f"error: {line}" for line in str(exc).splitlines()), file=sys.stderr)
        return exitcodes.BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
