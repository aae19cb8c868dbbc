"""The dataset tables, on the jobs store's declarative base so one schema upgrade creates them all.

A dataset is a name with an owner and a visibility (``services.auth.access``); its versions are
immutable and numbered 1, 2, ...; an upload is a file being received that becomes a version.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.jobs.store import Base

UPLOADING, UNPACKING, VALIDATING, READY, INVALID = "uploading", "unpacking", "validating", "ready", "invalid"
VERSION_STATES = (UPLOADING, UNPACKING, VALIDATING, READY, INVALID)
BUSY = (UNPACKING, VALIDATING)  # a worker is on it (started again after a restart of the service)
UPLOADED, REGISTERED = "upload", "registered"  # where a version's files come from


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    owner: Mapped[str] = mapped_column(String(100), index=True)
    visibility: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[float] = mapped_column(Float)
    last_version: Mapped[int] = mapped_column(Integer, default=0)  # numbers are never given twice


class DatasetVersion(Base):
    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(20))  # UPLOADED or REGISTERED
    root: Mapped[str | None] = mapped_column(Text)  # the files a job reads (once unpacked, or registered)
    task: Mapped[str | None] = mapped_column(String(20))  # asked for, then as recognised
    format: Mapped[str | None] = mapped_column(String(40))
    sha256: Mapped[str | None] = mapped_column(String(64))  # over the sorted manifest of files
    size: Mapped[int] = mapped_column(BigInteger, default=0)  # bytes: the archive until unpacked, then the files
    files: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)  # why it is invalid
    created_at: Mapped[float] = mapped_column(Float)
    ready_at: Mapped[float | None] = mapped_column(Float)


class Upload(Base):
    """An archive being received in chunks into ``$CAUCHY_HOME/datasets/.uploads/<id>.part``, for a
    version in the ``uploading`` state."""

    __tablename__ = "dataset_uploads"
    __table_args__ = (Index("ix_dataset_uploads_owner", "owner"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id", ondelete="CASCADE"), index=True)
    owner: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)  # declared: the upload is complete at this many bytes
    created_at: Mapped[float] = mapped_column(Float)
