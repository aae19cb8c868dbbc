"""Pretrained weights by weights host name, ``job:<id>``, local path or URL, sha256-checked and cached;
loaded with head replacement.

Nothing is downloaded from a model hub: URLs point at Cauchy's own weights host (or any server
the user names), and a file whose hash differs from the expected one is refused. What a job may
name and fetch is ``cauchy.fetch``'s policy: anything for ``run_tasks.py`` alone, less through the service.
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
from typing import IO, Any

import torch
from torch import nn

from cauchy.fetch import FetchPolicy, FetchRefused, current_policy, download, is_url, is_weights_name, job_reference
from cauchy.files import atomic_write, sha256_file
from cauchy.manifest import MANIFEST, find_entry, read_manifest
from cauchy.weights_only import UnsafeFileError, load_weights_only

log = logging.getLogger("cauchy.weights")


class WeightsError(ValueError):
    """Weights could not be fetched, failed their hash check, or do not fit the model."""


def cauchy_home() -> str:
    return os.environ.get("CAUCHY_HOME", os.path.join(os.getcwd(), "var"))


def default_cache_dir() -> str:
    return os.environ.get("CAUCHY_WEIGHTS_CACHE", os.path.join(cauchy_home(), "cache", "weights"))


def _check(path: str, sha256: str | None, source: str) -> None:
    if sha256 is not None and (actual := sha256_file(path)) != sha256.lower():
        raise WeightsError(f"{source}: sha256 mismatch: expected {sha256.lower()}, got {actual}")


def weights_host_dir() -> str:
    """The weights host's directory (``$CAUCHY_HOME/weights``), whose ``manifest.json`` names entries."""
    return os.path.join(cauchy_home(), "weights")


def resolve_name(name: str, directory: str | None = None) -> tuple[str, str]:
    """The file and sha256 of the manifest entry ``name``."""
    directory = directory or weights_host_dir()
    entry = find_entry(directory, name)
    if entry is None:
        known = ", ".join(e["name"] for e in read_manifest(directory)) or "none published"
        raise WeightsError(f"pretrained weights {name}: no such file, and no entry of that name in "
                           f"{os.path.join(directory, MANIFEST)} ({known})")
    return os.path.join(directory, entry["file"]), entry["sha256"]


def fetch_weights(ref: str, sha256: str | None = None, cache_dir: str | None = None,
                  policy: FetchPolicy | None = None) -> str:
    """A local file holding the weights ``ref`` names: a weights host entry, a ``job:<id>`` the service
    resolved, a path or an http(s) URL, as ``policy`` (default: the process's, ``cauchy.fetch``) allows."""
    policy = policy or current_policy()
    if ref in policy.aliases:
        return policy.aliases[ref]
    if job_reference(ref) is not None:
        raise WeightsError(f"pretrained weights {ref}: a job's checkpoint is named through the service")
    if not is_url(ref):
        if is_weights_name(ref) and not (policy.local_paths and os.path.isfile(ref)):
            path, expected = resolve_name(ref)
            _check(path, sha256 or expected, ref)
            return path
        if not policy.local_paths:
            raise WeightsError(f"pretrained weights {ref}: local paths are refused here; name published weights, "
                               "job:<id> or an allowed URL")
        if not os.path.isfile(ref):
            raise WeightsError(f"pretrained weights {ref} do not exist")
        _check(ref, sha256, ref)
        return ref
    cache_dir = cache_dir or default_cache_dir()
    key = sha256.lower() if sha256 else hashlib.sha256(ref.encode()).hexdigest()
    path = os.path.join(cache_dir, key + ".pth")
    if os.path.isfile(path):
        if sha256 is None or sha256_file(path) == key:
            return path
        os.unlink(path)

    def fetch(out: IO[bytes]) -> None:
        """Stream into the cache file, hashing as it goes (no second read to check it)."""
        actual = download(ref, out, policy)
        if sha256 is not None and actual != sha256.lower():
            raise WeightsError(f"{ref}: sha256 mismatch: expected {sha256.lower()}, got {actual}")

    try:
        atomic_write(path, fetch)
    except (FetchRefused, OSError, http.client.HTTPException) as exc:
        raise WeightsError(f"cannot download {ref}: {exc}") from None
    return path


def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """A model state dict from a weights file or a Cauchy checkpoint (weights-only unpickling)."""
    try:
        obj: Any = load_weights_only(path, "weights file")
    except UnsafeFileError as exc:
        raise WeightsError(str(exc)) from None
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path} holds no state dict of tensors")
    return obj


def load_matching(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> dict[str, list[str]]:
    """Loads every tensor whose name and shape match; a head of another shape is kept new and
    reported. Fails when nothing matches (the wrong architecture)."""
    own = model.state_dict()
    loaded, replaced = {}, []
    for name, tensor in state.items():
        if name in own and own[name].shape == tensor.shape:
            loaded[name] = tensor
        elif name in own:
            replaced.append(f"{name} {tuple(tensor.shape)} -> {tuple(own[name].shape)}")
    if not loaded:
        raise WeightsError(f"{source}: no tensor matches {type(model).__name__} (another architecture?)")
    missing = sorted(set(own) - set(loaded))
    model.load_state_dict(loaded, strict=False)
    log.info("loaded %d/%d tensors from %s", len(loaded), len(own), source)
    if replaced:
        log.warning("replacing %d tensors whose shape differs (new head): %s", len(replaced), "; ".join(replaced))
    return {"loaded": sorted(loaded), "replaced": replaced, "missing": missing}


def load_pretrained(model: nn.Module, ref: str, sha256: str | None = None) -> dict[str, list[str]]:
    path = fetch_weights(ref, sha256)
    return load_matching(model, read_state_dict(path), ref)
