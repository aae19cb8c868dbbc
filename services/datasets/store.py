"""Datasets in the database and on disk: uploads received in chunks, versions, quota, deletion.

On disk (every folder 0700, every file 0600)::

    $CAUCHY_HOME/datasets/.uploads/<upload id>.part     an archive being received
    $CAUCHY_HOME/datasets/<name>/<version>/archive      the received archive, until it is unpacked
    $CAUCHY_HOME/datasets/<name>/<version>/files/       what it unpacked to (a registered folder stays where it is)
    $CAUCHY_HOME/datasets/<name>/<version>/manifest.txt one "sha256  size  path" line per file: the version's hash
    $CAUCHY_HOME/datasets/<name>/<version>/inspection/  report.json, stats.json, progress.json, previews/
    $CAUCHY_HOME/datasets/.trash/                       deleted versions, being removed in the background

The quota counts, per owner, the uploaded versions (their archive while it arrives, then their
files); a registered folder is not copied and not counted. An unfinished upload that received no chunk
for ``dataset_upload_expiry_s`` is removed (``expire_uploads``: by the pipeline's sweep, and before each
new upload's quota check), its quota coming back.
"""
from __future__ import annotations

import fcntl
import io
import os
import secrets
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from services.auth.access import can_read, can_write, readable_by
from services.auth.identity import Caller
from services.config import Settings
from services.datasets.models import (
    BUSY,
    INVALID,
    READY,
    REGISTERED,
    UNPACKING,
    UPLOADED,
    UPLOADING,
    VALIDATING,
    Dataset,
    DatasetVersion,
    Upload,
)
from services.jobs.store import ENDED, Job, Store
from services.private import PRIVATE_FILE, private_dir

CHUNK = 1 << 20
UPLOAD_ID_BYTES = 16
MANIFEST, INSPECTION, FILES, ARCHIVE = "manifest.txt", "inspection", "files", "archive"
TRASH = ".trash"  # deleted versions, removed in the background


def copy_body(source: IO[bytes], out: IO[bytes], offset: int, length: int) -> int:
    """Up to ``length`` bytes of ``source`` written at ``offset`` of ``out``; returns how many. In the kernel
    when ``source`` is a file on the same file system (waitress keeps a body past 512 KiB in a temporary
    file), else in pieces."""
    copied = 0
    try:
        source_fd, position = source.fileno(), source.tell()
    except (OSError, io.UnsupportedOperation):  # a body small enough to be kept in memory
        source_fd = position = None
    if source_fd is not None and position is not None:
        try:
            while copied < length:
                done = os.copy_file_range(source_fd, out.fileno(), length - copied, position + copied, offset + copied)
                if not done:
                    return copied
                copied += done
            return copied
        except OSError:  # another file system (EXDEV), or a kernel without it: in pieces from there
            source.seek(position + copied)
    out.seek(offset + copied)
    while copied < length:
        block = source.read(min(CHUNK, length - copied))
        if not block:
            break
        out.write(block)
        copied += len(block)
    out.flush()
    return copied


class DatasetError(ValueError):
    """A request the datasets refuse: ``status`` and ``code`` for the REST reply, ``field`` it names."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.field = status, code, field


@dataclass(frozen=True)
class Found:
    """A version with its dataset."""

    dataset: Dataset
    version: DatasetVersion

    @property
    def ref(self) -> str:
        return f"{self.dataset.name}@{self.version.version}"


class DatasetStore:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings, self.store = settings, store

    def make_dirs(self) -> None:
        """The store's folders, 0700 (at the service's start)."""
        private_dir(self.settings.datasets_dir)
        private_dir(self.settings.uploads_dir)
        private_dir(self.trash)

    # ----- where things are
    def version_dir(self, name: str, version: int) -> Path:
        return self.settings.datasets_dir / name / str(version)

    def inspection_dir(self, found: Found) -> Path:
        return self.version_dir(found.dataset.name, found.version.version) / INSPECTION

    def part(self, upload_id: str) -> Path:
        return self.settings.uploads_dir / f"{upload_id}.part"

    # ----- reading
    def dataset(self, dataset_id: int) -> Dataset | None:
        with self.store.session() as session:
            return session.get(Dataset, dataset_id)

    def by_name(self, name: str) -> Dataset | None:
        with self.store.session() as session:
            return session.scalar(select(Dataset).where(Dataset.name == name))

    def versions(self, dataset_id: int) -> list[DatasetVersion]:
        query = select(DatasetVersion).where(DatasetVersion.dataset_id == dataset_id).order_by(DatasetVersion.version)
        with self.store.session() as session:
            return list(session.scalars(query).all())

    def version(self, dataset_id: int, number: int) -> DatasetVersion | None:
        query = select(DatasetVersion).where(DatasetVersion.dataset_id == dataset_id, DatasetVersion.version == number)
        with self.store.session() as session:
            return session.scalar(query)

    def version_by_id(self, version_id: int) -> Found | None:
        with self.store.session() as session:
            version = session.get(DatasetVersion, version_id)
            return None if version is None else Found(session.get(Dataset, version.dataset_id), version)

    def listing(self, caller: Caller) -> list[tuple[Dataset, list[DatasetVersion]]]:
        """The datasets ``caller`` may read, by name, each with its versions."""
        readable = readable_by(caller, Dataset.owner, Dataset.visibility)
        with self.store.session() as session:
            datasets = list(session.scalars(select(Dataset).where(readable).order_by(Dataset.name)).all())
            versions = session.scalars(select(DatasetVersion).join(Dataset).where(readable)
                                       .order_by(DatasetVersion.version)).all()
        by_dataset: dict[int, list[DatasetVersion]] = {}
        for version in versions:
            by_dataset.setdefault(version.dataset_id, []).append(version)
        return [(dataset, by_dataset.get(dataset.id, [])) for dataset in datasets]

    def used_bytes(self, owner: str) -> int:
        query = (select(func.coalesce(func.sum(DatasetVersion.size), 0)).join(Dataset)
                 .where(Dataset.owner == owner, DatasetVersion.source == UPLOADED))
        with self.store.session() as session:
            return int(session.scalar(query) or 0)

    def quota_left(self, owner: str) -> int:
        return self.settings.dataset_quota_mb * 2**20 - self.used_bytes(owner)

    def jobs_using(self, version_ids: list[int]) -> list[int]:
        """Jobs not yet ended that read one of these versions."""
        query = (select(Job.id).where(Job.dataset_version_id.in_(version_ids), Job.state.not_in(ENDED))
                 .order_by(Job.id))
        with self.store.session() as session:
            return list(session.scalars(query).all())

    def resolve(self, ref: str, caller: Caller) -> Found:
        """``name`` (its newest ready version) or ``name@N``, if ``caller`` may read it and it is ready."""
        name, _, number = ref.partition("@")
        dataset = self.by_name(name)
        if dataset is None or not can_read(caller, dataset.owner, dataset.visibility):
            raise DatasetError(400, "unknown_dataset", f"no dataset {name!r} you may read (GET /api/v1/datasets lists "
                                                       "them)", "hypes.data.dataset")
        if number:
            version = self.version(dataset.id, int(number)) if number.isdigit() and len(number) < 10 else None
            if version is None:
                raise DatasetError(400, "unknown_dataset", f"dataset {name!r} has no version {number!r}",
                                   "hypes.data.dataset")
            if version.state != READY:
                raise DatasetError(400, "dataset_not_ready", f"{name}@{number} is {version.state}"
                                   + (f" ({version.reason})" if version.reason else "")
                                   + "; a job can use a ready version only", "hypes.data.dataset")
            return Found(dataset, version)
        ready = [v for v in self.versions(dataset.id) if v.state == READY]
        if not ready:
            raise DatasetError(400, "dataset_not_ready", f"dataset {name!r} has no ready version yet",
                               "hypes.data.dataset")
        return Found(dataset, ready[-1])

    # ----- writing
    def _dataset_for(self, caller: Caller, name: str, visibility: str) -> Dataset:
        """The dataset a new version goes to: the caller's (or, for an admin, anyone's) of that name, else a new one."""
        dataset = self.by_name(name)
        if dataset is not None:
            if not can_write(caller, dataset.owner):
                raise DatasetError(409, "exists", f"the name {name!r} is taken by another user's dataset", "name")
            return dataset
        dataset = Dataset(name=name, owner=caller.name, visibility=visibility, created_at=time.time(), last_version=0)
        try:
            with self.store.session() as session:
                session.add(dataset)
        except IntegrityError:  # made at the same moment by another request
            return self._dataset_for(caller, name, visibility)
        return dataset

    def _new_version(self, dataset_id: int, **fields) -> DatasetVersion:
        with self.store.session() as session:
            dataset = session.get(Dataset, dataset_id, with_for_update=True)
            dataset.last_version += 1
            version = DatasetVersion(dataset_id=dataset_id, version=dataset.last_version, created_at=time.time(), **fields)
            session.add(version)
        return version

    def create_upload(self, caller: Caller, name: str, size: int, visibility: str, task: str | None,
                      fmt: str | None) -> tuple[Upload, Found]:
        self.expire_uploads()  # an abandoned upload holds no quota past its expiry, even between sweeps
        left = self.quota_left(caller.name)
        if size > left:
            raise DatasetError(413, "over_quota", f"{size} bytes would pass your dataset quota: {max(left, 0)} bytes "
                               f"of {self.settings.dataset_quota_mb} MiB are left (setting CAUCHY_DATASET_QUOTA_MB); "
                               "delete versions you no longer need", "size")
        dataset = self._dataset_for(caller, name, visibility)
        version = self._new_version(dataset.id, state=UPLOADING, source=UPLOADED, task=task, format=fmt, size=size)
        upload = Upload(id=secrets.token_hex(UPLOAD_ID_BYTES), version_id=version.id, owner=caller.name, size=size,
                        created_at=time.time())
        with self.store.session() as session:
            session.add(upload)
        os.close(os.open(self.part(upload.id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
        return upload, Found(dataset, version)

    def upload(self, upload_id: str) -> Upload | None:
        with self.store.session() as session:
            return session.get(Upload, upload_id)

    def received(self, upload: Upload) -> int:
        return self.part(upload.id).stat().st_size

    def append(self, upload: Upload, start: int, total: int, length: int, stream: IO[bytes]) -> int:
        """Write ``length`` bytes of ``stream`` at ``start`` (which must be what was received so far), in
        pieces; returns the bytes received now. A body shorter than ``length`` writes nothing."""
        if total != upload.size:
            raise DatasetError(400, "invalid_range", f"the upload was declared {upload.size} bytes, this range says "
                                                     f"{total}", "Content-Range")
        if start + length > upload.size:
            raise DatasetError(400, "invalid_range", f"bytes past the declared size of {upload.size}", "Content-Range")
        with open(self.part(upload.id), "r+b") as out:
            try:
                fcntl.flock(out, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DatasetError(409, "busy", "another request is writing this upload; retry when it is done",
                                   "Content-Range") from None
            received = out.seek(0, os.SEEK_END)
            if start != received:
                raise DatasetError(409, "wrong_offset", f"{received} bytes are received; send from there",
                                   "Content-Range")
            try:
                copied = copy_body(stream, out, received, length)
                if copied < length:
                    raise DatasetError(400, "incomplete_body", f"the body ended {length - copied} bytes short of "
                                                               "the range")
            except BaseException:
                out.truncate(received)
                raise
        return start + length

    def finish(self, upload: Upload) -> Found:
        """The complete archive moved into its version's folder; the version is ``unpacking`` (the pipeline
        takes it from there)."""
        received = self.received(upload)
        if received != upload.size:
            raise DatasetError(409, "incomplete", f"{received} of {upload.size} bytes are received; send the rest first")
        found = self.version_by_id(upload.version_id)
        directory = private_dir(self.version_dir(found.dataset.name, found.version.version))
        os.replace(self.part(upload.id), directory / ARCHIVE)
        with self.store.session() as session:
            session.delete(session.get(Upload, upload.id))
            session.get(DatasetVersion, found.version.id).state = UNPACKING
        return self.version_by_id(found.version.id)

    def abandon(self, upload: Upload) -> None:
        """Forget an unfinished upload: its bytes and its version (its quota comes back)."""
        self.part(upload.id).unlink(missing_ok=True)
        with self.store.session() as session:
            for row in (session.get(Upload, upload.id), session.get(DatasetVersion, upload.version_id)):
                if row is not None:  # gone already: expired and deleted at the same moment
                    session.delete(row)

    def expire_uploads(self) -> list[str]:
        """Abandon the unfinished uploads that received no chunk (their part file unchanged) for
        ``dataset_upload_expiry_s``, except one a request is writing to; the ids of those abandoned."""
        cutoff = time.time() - self.settings.dataset_upload_expiry_s
        with self.store.session() as session:
            uploads = list(session.scalars(select(Upload)).all())
        expired = []
        for upload in uploads:
            try:
                with open(self.part(upload.id), "rb") as part:
                    fcntl.flock(part, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as append() does: not while a chunk arrives
                    if os.fstat(part.fileno()).st_mtime > cutoff:
                        continue
                    self.abandon(upload)
            except (BlockingIOError, FileNotFoundError):  # being written, or finished meanwhile
                continue
            expired.append(upload.id)
        return expired

    def register(self, caller: Caller, name: str, root: Path, visibility: str, task: str | None,
                 fmt: str | None) -> Found:
        dataset = self._dataset_for(caller, name, visibility)
        version = self._new_version(dataset.id, state=VALIDATING, source=REGISTERED, root=str(root), task=task,
                                    format=fmt, size=0)
        return Found(dataset, version)

    def update(self, version_id: int, **fields) -> None:
        with self.store.session() as session:
            version = session.get(DatasetVersion, version_id)
            if version is not None:
                for key, value in fields.items():
                    setattr(version, key, value)

    def delete(self, dataset: Dataset, versions: list[DatasetVersion], whole: bool) -> None:
        """Remove ``versions`` (and, if ``whole``, the dataset), unless a job that has not ended uses one. A
        registered folder itself is left alone: only what the service wrote about it goes."""
        busy = [v.version for v in versions if v.state in BUSY]
        if busy:
            raise DatasetError(409, "busy", f"version {busy[0]} is being unpacked or inspected; delete it once it "
                               "is ready or invalid")
        users = self.jobs_using([v.id for v in versions])
        if users:
            raise DatasetError(409, "in_use", f"used by job{'s' if len(users) > 1 else ''} "
                               + ", ".join(str(job) for job in users) + "; stop them or wait until they end")
        for version in versions:
            with self.store.session() as session:
                for upload in session.scalars(select(Upload).where(Upload.version_id == version.id)).all():
                    self.part(upload.id).unlink(missing_ok=True)
                    session.delete(upload)
            self.discard(self.version_dir(dataset.name, version.version))
            with self.store.session() as session:
                session.delete(session.get(DatasetVersion, version.id))
        if whole:
            with self.store.session() as session:
                session.delete(session.get(Dataset, dataset.id))
            self.discard(self.settings.datasets_dir / dataset.name)

    @property
    def trash(self) -> Path:
        return self.settings.datasets_dir / TRASH

    def discard(self, folder: Path) -> None:
        """Move ``folder`` out of the way at once (a rename) and remove it in the background: a version of
        10,000 files takes a minute to remove on a busy disk, longer than a request may wait."""
        if not folder.exists():
            return
        target = self.trash / secrets.token_hex(8)
        os.replace(folder, target)
        threading.Thread(target=shutil.rmtree, args=(target,), kwargs={"ignore_errors": True}, daemon=True).start()

    def empty_trash(self) -> None:
        """What a previous run of the service did not finish removing (at start)."""
        for folder in self.trash.iterdir():
            threading.Thread(target=shutil.rmtree, args=(folder,), kwargs={"ignore_errors": True}, daemon=True).start()

    def set_visibility(self, dataset_id: int, visibility: str) -> None:
        with self.store.session() as session:
            session.get(Dataset, dataset_id).visibility = visibility

    def mark_invalid(self, version_id: int, reason: str) -> None:
        self.update(version_id, state=INVALID, reason=reason[:2000])
