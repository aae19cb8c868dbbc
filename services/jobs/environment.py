"""What a job's processes (its task and its Visdom) inherit from the service: an allow list, never the rest.

The service's environment holds its database URL, tokens and whatever secrets its operator exported;
a job runs code from its hypes and checkpoints, so it gets only what running Python, CUDA and the
thread pools needs, plus the variables the service sets for it. Its files are private (umask 077).
"""
from __future__ import annotations

from collections.abc import Mapping

JOB_UMASK = 0o077

# Passed on as they are, when set (the names of locale and CUDA/thread settings, not their values, are ours).
PASSED = (
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "TZ", "TMPDIR", "LANG", "LANGUAGE",
    "LD_LIBRARY_PATH",  # CUDA and cuDNN libraries outside the default search path
    "CUDA_HOME", "CUDA_PATH", "CUDA_DEVICE_ORDER", "CUDA_LAUNCH_BLOCKING", "CUDA_MODULE_LOADING",
    "NVIDIA_DRIVER_CAPABILITIES", "NCCL_DEBUG", "NCCL_P2P_DISABLE", "NCCL_IB_DISABLE", "NCCL_SOCKET_IFNAME",
    "PYTORCH_CUDA_ALLOC_CONF", "TORCH_HOME", "TORCH_CUDA_ARCH_LIST", "CUBLAS_WORKSPACE_CONFIG",
    "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
    "CAUCHY_WEIGHTS_CACHE",  # where pretrained weights are cached (the task reads it)
)
PASSED_PREFIXES = ("LC_",)


def scrubbed_environment(environ: Mapping[str, str], **extra: str) -> dict[str, str]:
    """The allowed part of ``environ`` plus ``extra`` (what the service sets: GPUs, CAUCHY_HOME, ...)."""
    env = {key: value for key, value in environ.items() if key in PASSED or key.startswith(PASSED_PREFIXES)}
    env["PYTHONUNBUFFERED"] = "1"  # logs reach the files as they are written
    # Jobs share the CPUs: an OpenMP thread done with its share sleeps rather than spinning while its
    # siblings wait to be scheduled (on a loaded 2-core machine spinning made a small model's step cost
    # 1.1-1.3 CPU s instead of 0.09). An operator's own setting wins.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.update(extra)
    return env
