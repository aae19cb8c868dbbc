"""``run_tasks.py --nproc-per-node N``: the job's ranks started by ``torch.distributed.run`` (torchrun)
itself, with two things a supervised job needs that plain torchrun does not give.

- The exit code of the first rank that exited with one (rank 0 first among equals; a rank killed by
  a signal only when none exited), not torchrun's 1 for any failure: ``3`` (stopped after saving a
  checkpoint) and ``2`` (bad hypes) reach the service as they do from one process. Once the first rank
  has exited, torchrun sends SIGTERM to the others: a rank whose work is done ignores it
  (``run_tasks.py``), so it still exits with its own code.
- A stop is passed to the ranks as it arrives: SIGTERM or SIGINT to this launcher is sent on to every
  rank, which finishes its step, saves (rank 0) and exits 3; torchrun's own handling of these signals
  would end the launch with an exception and lose that code. Its handling of SIGHUP and SIGQUIT stays.

Each rank calls ``cauchy.lifeline.die_with_parent``: torchrun starts ranks in sessions of their
own, and a SIGKILL of the job's process group must not leave them running.
"""
from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Any

import psutil


@dataclass(frozen=True)
class Launch:
    """Where this launcher's ranks run: ``nproc_per_node`` here, ``nnodes`` machines in all (this one is
    ``node_rank``; the others reach ``master_addr:master_port``, rank 0's node)."""

    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = 29500

    @property
    def needed(self) -> bool:
        return self.nproc_per_node > 1 or self.nnodes > 1

    def torchrun_args(self) -> list[str]:
        """``torch.distributed.run``'s arguments: a standalone rendezvous on one machine, else a static one."""
        common = ["--nproc-per-node", str(self.nproc_per_node), "--signals-to-handle", "SIGHUP,SIGQUIT"]
        if self.nnodes == 1:
            return ["--standalone", *common]
        return [*common, "--nnodes", str(self.nnodes), "--node-rank", str(self.node_rank),
                "--master-addr", self.master_addr, "--master-port", str(self.master_port)]


def _forward_to_ranks(signum: int, frame: Any) -> None:
    for child in psutil.Process().children():
        try:
            child.send_signal(signum)
        except psutil.NoSuchProcess:
            continue


def launch(spec: Launch, script: str, script_args: list[str]) -> int:
    """Run ``script script_args`` on ``spec``'s ranks through torchrun; the exit code (see the module)."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    args = parse_args([*spec.torchrun_args(), script, *script_args])
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _forward_to_ranks)
    try:
        run(args)
    except ChildFailedError as exc:
        _, failure = min(exc.failures.items(), key=lambda item: (item[1].exitcode < 0, item[1].timestamp, item[0]))
        return failure.exitcode if failure.exitcode >= 0 else 128 - failure.exitcode
    return 0
