"""The serving tables, on the jobs store's declarative base so one schema upgrade creates them (additive).

A deployment is what its owner asked for (weights, replicas, device, batching, backend); a replica row
is one model-server process: its port, GPU, pid (to adopt it after a restart of the service) and state.
"""
from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.jobs.store import Base

# A replica's states: waiting for a CPU slot or GPU (or to be started again), starting (loading its model),
# ready (answering), failed (it will not be started again: its model does not load, or it kept dying).
WAITING, STARTING, READY, FAILED = "waiting", "starting", "ready", "failed"
REPLICA_STATES = (WAITING, STARTING, READY, FAILED)
DEVICES = ("cpu", "cuda")
# cauchy.inference.BACKENDS' names (a test keeps the two equal), torch-free here, with the export of the weights
# each one runs (services/exports.py; None: the weights file itself).
BACKENDS: dict[str, str | None] = {"torch": None, "onnxruntime": "onnx"}


class Deployment(Base):
    __tablename__ = "deployments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    weights: Mapped[str] = mapped_column(String(100))
    owner: Mapped[str] = mapped_column(String(100), index=True)
    visibility: Mapped[str] = mapped_column(String(120))
    replicas: Mapped[int] = mapped_column(Integer)
    device: Mapped[str] = mapped_column(String(10))
    max_batch: Mapped[int] = mapped_column(Integer)
    max_wait_ms: Mapped[float] = mapped_column(Float)
    backend: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[float] = mapped_column(Float)


class Replica(Base):
    __tablename__ = "deployment_replicas"
    __table_args__ = (UniqueConstraint("deployment_id", "index", name="uq_deployment_replicas_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20), default=WAITING)
    port: Mapped[int | None] = mapped_column(Integer)
    gpu: Mapped[str | None] = mapped_column(String(20))  # the GPU it holds; None on the CPU (it holds a slot)
    pid: Mapped[int | None] = mapped_column(Integer)  # its process-group leader
    pid_started: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float)
    restarts: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str | None] = mapped_column(Text)
