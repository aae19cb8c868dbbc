"""Processes that must not outlive the one that started them (Linux's ``PR_SET_PDEATHSIG``).

torchrun starts each rank in a session of its own, and the node runner of a job spanning nodes starts its task
under a Ray actor: a SIGKILL of the parent's process group, or the death of the parent, does not reach them.
With this, they follow their parent instead of running on as orphans holding GPUs. No torch: the service's node
runner imports it too.
"""
from __future__ import annotations

import ctypes
import signal

PR_SET_PDEATHSIG = 1


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:  # not Linux: nothing to ask
        return None


_LIBC = _libc()  # loaded before any fork: die_with_parent then takes no lock between fork and exec


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when the thread that started it ends; safe as a ``preexec_fn`` in a
    process with threads. A no-op off Linux."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
