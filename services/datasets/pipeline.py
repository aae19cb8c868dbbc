"""From a received archive (or a registered folder) to a ``ready`` or ``invalid`` version, in the background.

Each step is a child process the service waits on from a pool thread, never in a request:

1. ``unpacking`` (uploads): ``services.datasets.worker unpack`` unpacks the archive under the caps,
   hashes every file and writes the manifest; the archive is removed once it is unpacked. A
   registered folder is hashed by ``worker hash`` instead, where it is.
2. ``validating``: the inspection command (``cauchy.datasets.tools.inspect_dataset ROOT --out DIR``)
   recognises, validates and describes the files, writing ``progress.json`` while it runs and then
   ``report.json``, ``stats.json`` and ``previews/``. The report says the outcome
   (``report_files.outcome``): usable, ``ready``; not usable, ``invalid`` (the first problems become the
   reason); unrecognised, ``invalid`` (its message becomes the reason). No report: ``invalid``, the
   inspection failed (its exit status and stderr become the reason).

A restart of the service starts the versions it left half-way again from their first step.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import select

from cauchy.datasets.tools.report_files import NOT_USABLE, REPORT, UNRECOGNISED, USABLE, outcome
from services.datasets.models import BUSY, INVALID, READY, UNPACKING, UPLOADED, VALIDATING, DatasetVersion
from services.datasets.store import ARCHIVE, FILES, MANIFEST, DatasetStore, Found
from services.jobs.environment import JOB_UMASK, scrubbed_environment
from services.private import private_dir

log = logging.getLogger("cauchy.datasets")
MESSAGE_CHARS = 2000
EXPIRY_SWEEP_MAX_S = 60.0


class Pipeline:
    """A pool of ``settings.dataset_workers`` threads, each driving one version's child processes."""

    def __init__(self, datasets: DatasetStore) -> None:
        self.datasets, self.settings = datasets, datasets.settings
        self.pool = ThreadPoolExecutor(max(1, self.settings.dataset_workers), thread_name_prefix="dataset")
        self.children: set[subprocess.Popen] = set()
        self.lock = threading.Lock()
        self.closing = threading.Event()  # set at shutdown

    def start_expiry(self) -> None:
        """Sweep abandoned uploads away in the background (``DatasetStore.expire_uploads``), every
        quarter of the expiry (at most a minute apart) until shutdown."""
        threading.Thread(target=self._expire_loop, name="dataset-expiry", daemon=True).start()

    def _expire_loop(self) -> None:
        interval = min(self.settings.dataset_upload_expiry_s / 4, EXPIRY_SWEEP_MAX_S)
        while not self.closing.wait(interval):
            try:
                for upload_id in self.datasets.expire_uploads():
                    log.info("upload %s expired: no chunk for %.0f s", upload_id, self.settings.dataset_upload_expiry_s)
            except Exception:  # the database away for a moment: the next sweep tries again
                log.exception("expiring uploads")

    def submit(self, version_id: int) -> None:
        self.pool.submit(self._run, version_id)

    def recover(self) -> None:
        """Versions a previous run of the service left half-way: start them again."""
        query = select(DatasetVersion.id).where(DatasetVersion.state.in_(BUSY))
        with self.datasets.store.session() as session:
            for version_id in session.scalars(query).all():
                self.submit(version_id)

    def shutdown(self) -> None:
        """Stop now: children are killed, their versions are started again at the next start."""
        self.closing.set()
        self.pool.shutdown(wait=False, cancel_futures=True)
        with self.lock:
            for child in list(self.children):
                child.kill()

    # ----- the steps
    def _run(self, version_id: int) -> None:
        try:
            found = self.datasets.version_by_id(version_id)
            if found is None:
                return
            if found.version.source == UPLOADED and found.version.state == UNPACKING:
                if not self._unpack(found):
                    return
            elif found.version.state == VALIDATING and found.version.sha256 is None and not self._hash(found):
                return
            found = self.datasets.version_by_id(version_id)
            if found is not None and not self.closing.is_set():
                self._inspect(found)
        except Exception as exc:  # a bug must not leave the version busy for ever
            log.exception("dataset version %s", version_id)
            if not self.closing.is_set():
                self.datasets.mark_invalid(version_id, f"internal error: {exc}")

    def _child(self, argv: list[str]) -> tuple[int, str, str]:
        env = scrubbed_environment(os.environ)
        proc = subprocess.Popen(argv, cwd=self.settings.repo_root, env=env, umask=JOB_UMASK, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        with self.lock:
            self.children.add(proc)
        try:
            out, err = proc.communicate()
        finally:
            with self.lock:
                self.children.discard(proc)
        return proc.returncode, out, err

    def _limits(self, found: Found) -> list[str]:
        cap = min(self.settings.dataset_max_unpacked_mb * 2**20,
                  self.datasets.quota_left(found.dataset.owner) + found.version.size)
        return ["--max-bytes", str(max(cap, 0)), "--max-files", str(self.settings.dataset_max_files)]

    def _record_content(self, found: Found, code: int, out: str, err: str, root: Path) -> bool:
        if code != 0:
            if not self.closing.is_set():
                self.datasets.mark_invalid(found.version.id, err.strip()[-MESSAGE_CHARS:] or f"exit code {code}")
            return False
        content = json.loads(out)
        self.datasets.update(found.version.id, state=VALIDATING, root=str(root), sha256=content["sha256"],
                             size=content["size"], files=content["files"])
        return True

    def _unpack(self, found: Found) -> bool:
        directory = self.datasets.version_dir(found.dataset.name, found.version.version)
        target = directory / FILES
        shutil.rmtree(target, ignore_errors=True)  # a run the service did not see to its end
        code, out, err = self._child([sys.executable, "-m", "services.datasets.worker", "unpack", str(directory / ARCHIVE),
                                      str(target), "--manifest", str(directory / MANIFEST), *self._limits(found),
                                      "--max-ratio", str(self.settings.dataset_max_ratio)])
        if code != 0:
            shutil.rmtree(target, ignore_errors=True)
        if not self._record_content(found, code, out, err, target):
            return False
        (directory / ARCHIVE).unlink(missing_ok=True)
        return True

    def _hash(self, found: Found) -> bool:
        directory = private_dir(self.datasets.version_dir(found.dataset.name, found.version.version))
        code, out, err = self._child([sys.executable, "-m", "services.datasets.worker", "hash", found.version.root,
                                      "--manifest", str(directory / MANIFEST), "--max-bytes",
                                      str(self.settings.dataset_max_unpacked_mb * 2**20), "--max-files",
                                      str(self.settings.dataset_max_files)])
        return self._record_content(found, code, out, err, Path(found.version.root))

    def _inspect_root(self, found: Found, root: Path, out_dir: Path) -> tuple[Any, int, str]:
        """The inspection's report of ``root`` (None when it wrote none), its exit status and stderr."""
        shutil.rmtree(out_dir, ignore_errors=True)
        private_dir(out_dir)
        argv = [*self.settings.dataset_inspect_command, str(root), "--out", str(out_dir)]
        if found.version.task:
            argv += ["--task", found.version.task]
        if found.version.format:
            argv += ["--format", found.version.format]
        code, _, err = self._child(argv)
        return read_json(out_dir / REPORT), code, err

    def _inspect(self, found: Found) -> None:
        """Inspect the version's files. An archive that wrapped everything in one folder (as a zipped folder
        does) is inspected inside that folder first; when that is not a layout the inspection recognises
        (a lone ``train/``, say), at its top."""
        out_dir = self.datasets.inspection_dir(found)
        top = Path(found.version.root)
        inner = wrapped_folder(top) if found.version.source == UPLOADED else None
        for root in ([inner] if inner else []) + [top]:
            report, code, err = self._inspect_root(found, root, out_dir)
            result = outcome(report)
            if result != UNRECOGNISED or self.closing.is_set():
                break
        if root != top and result != UNRECOGNISED:
            self.datasets.update(found.version.id, root=str(root))
        if self.closing.is_set():
            return
        fields: dict[str, Any] = {"task": (report or {}).get("task") or found.version.task,
                                  "format": (report or {}).get("format") or found.version.format}
        if result == USABLE:
            self.datasets.update(found.version.id, state=READY, ready_at=time.time(), reason=None, **fields)
            return
        if result == NOT_USABLE:
            problems = report.get("problems") or []
            first = "; ".join(str(p.get("message", p)) if isinstance(p, dict) else str(p) for p in problems[:3])
            reason = "not usable: " + (first or report.get("error") or "see the report")
        elif result == UNRECOGNISED:
            reason = f"layout not recognised: {report.get('error', '')}"
        else:
            reason = f"inspection failed (exit code {code}): "
            reason += err.strip()[len(reason) - MESSAGE_CHARS:]  # a traceback's end says the most
        self.datasets.update(found.version.id, state=INVALID, reason=reason[:MESSAGE_CHARS], **fields)


def wrapped_folder(root: Path) -> Path | None:
    """The only entry of ``root`` when that is a folder, else None."""
    children = list(root.iterdir())
    return children[0] if len(children) == 1 and children[0].is_dir() and not children[0].is_symlink() else None


def read_json(path: Path) -> Any:
    """A JSON file the inspection wrote, or None while it is missing or half-written."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None

