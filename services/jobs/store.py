"""Jobs in the database: the only state that must survive a restart of the service.

SQLite under ``$CAUCHY_HOME`` by default; any SQLAlchemy URL (PostgreSQL) works, since only portable
types and queries are used. The schema is created and upgraded here, at start.
"""
from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    Float,
    Index,
    Integer,
    Select,
    String,
    Text,
    bindparam,
    create_engine,
    event,
    func,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine, Row
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, defer, mapped_column, sessionmaker
from sqlalchemy.sql.elements import True_

from services.auth.access import JOB_DEFAULT
from services.private import private_sqlite

log = logging.getLogger(__name__)

QUEUED, RUNNING, STOPPING = "queued", "running", "stopping"
SUCCEEDED, FAILED, STOPPED, LOST = "succeeded", "failed", "stopped", "lost"
ACTIVE = (RUNNING, STOPPING)
ENDED = (SUCCEEDED, FAILED, STOPPED, LOST)
RESUMABLE = (FAILED, STOPPED, LOST)  # ended with training left to do (a succeeded job has none)
STATES = (QUEUED, *ACTIVE, *ENDED)


class Base(DeclarativeBase):
    pass


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state_priority_id", "state", "priority", "id"),
                      Index("ix_jobs_state_id", "state", "id"),  # a list by state, newest first, without a sort
                      Index("ix_jobs_user_id", "user", "id"), Index("ix_jobs_visibility_id", "visibility", "id"),
                      {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    user: Mapped[str] = mapped_column(String(100), index=True)  # the owner's name
    # private, public or group:<name> (services.auth.access); NULL only in a database made before users
    visibility: Mapped[str | None] = mapped_column(String(120), default=JOB_DEFAULT)
    phase: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    gpus_requested: Mapped[int] = mapped_column(Integer, default=0)
    gpus: Mapped[str] = mapped_column(String(100), default="")  # assigned, "0,1"
    hypes_name: Mapped[str | None] = mapped_column(String(300))
    hypes: Mapped[dict[str, Any]] = mapped_column(JSON)  # fully resolved
    overrides: Mapped[list[str]] = mapped_column(JSON, default=list)
    from_job: Mapped[int | None] = mapped_column(Integer)  # resume / test from this job's checkpoint
    resume_from: Mapped[str | None] = mapped_column(Text)  # the checkpoint passed to --resume
    inputs: Mapped[str | None] = mapped_column(Text)  # predict phase: the input directory
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float)
    stop_requested_at: Mapped[float | None] = mapped_column(Float)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    exit_signal: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)
    pid: Mapped[int | None] = mapped_column(Integer)  # the task's process-group leader
    pid_started: Mapped[float | None] = mapped_column(Float)  # its create_time, to recognise it again
    visdom_pid: Mapped[int | None] = mapped_column(Integer)
    visdom_started: Mapped[float | None] = mapped_column(Float)
    visdom_port: Mapped[int | None] = mapped_column(Integer)
    visdom_until: Mapped[float | None] = mapped_column(Float)  # the viewer is shut after this
    # data.dataset resolved at submission (services.datasets): the version read, as name@N, and its hash
    dataset_version_id: Mapped[int | None] = mapped_column(Integer, index=True)
    dataset: Mapped[str | None] = mapped_column(String(120))
    dataset_sha256: Mapped[str | None] = mapped_column(String(64))
    # What the job needs besides its GPUs (services.jobs.policies): NULL in a database made before them.
    cpu_slots: Mapped[int | None] = mapped_column(Integer)  # a CPU job's slots (1 when NULL)
    processes: Mapped[int | None] = mapped_column(Integer)  # a CPU job's gloo ranks (1 when NULL); GPU jobs: one a GPU
    nodes: Mapped[int | None] = mapped_column(Integer)  # machines it spans (1 when NULL); gpus, slots, processes: each
    memory_mb: Mapped[int | None] = mapped_column(Integer)  # stated memory; also its memory limit
    time_limit_s: Mapped[float | None] = mapped_column(Float)  # the user's wall-clock limit
    preemptible: Mapped[bool | None] = mapped_column(Boolean)  # NULL: as its phase says (training is)
    preemptions: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)  # each preemption: at, by, checkpoint
    preempted_for: Mapped[int | None] = mapped_column(Integer)  # while stopping to make room for this job
    requeued_at: Mapped[float | None] = mapped_column(Float)  # the last time it went back to the queue


class UserUsage(Base):
    """A user's decayed usage (services.jobs.policies.base.decayed) and last start: the fair-share history
    that survives a restart."""

    __tablename__ = "usage"

    user: Mapped[str] = mapped_column(String(100), primary_key=True)
    gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    cpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[float] = mapped_column(Float)  # the values are as of this time
    last_start: Mapped[float | None] = mapped_column(Float)


# What a list of jobs shows (``services.api.jobs.summary``): no hypes, overrides or process fields.
LIST_COLUMNS = (Job.id, Job.name, Job.user, Job.visibility, Job.phase, Job.state, Job.priority, Job.gpus_requested, Job.gpus,
                Job.created_at, Job.started_at, Job.ended_at, Job.exit_code, Job.exit_signal, Job.reason,
                Job.hypes_name, Job.from_job)


# What the scheduler weighs and the supervisor needs to start a job (its hypes are read for the one started).
LAUNCH_COLUMNS = (Job.id, Job.user, Job.priority, Job.gpus_requested, Job.phase, Job.resume_from, Job.inputs,
                  Job.cpu_slots, Job.processes, Job.nodes, Job.memory_mb, Job.time_limit_s, Job.preemptible, Job.created_at,
                  Job.requeued_at)


QUEUE_COLUMNS = (*LAUNCH_COLUMNS, Job.state)
QUEUE_REREAD_S = 60.0  # the queue index reads the whole queue again this often (rows other processes wrote)


class QueueIndex:
    """The queued jobs' rows in memory, for the scheduling pass: the store notes each job it writes
    (``touched``, after the commit), and ``rows`` reads those rows again, not the whole queue: a pass over
    10,000 queued jobs reads what changed since the last. Thread-safe: API requests write, the supervisor reads."""

    def __init__(self) -> None:
        self._rows: dict[int, Row[Any]] | None = None
        self._touched: set[int] = set()
        self._read_at = 0.0
        self._lock = threading.Lock()  # guards the touched ids (writers)
        self._reading = threading.Lock()  # one reader at a time updates the rows

    def touched(self, job_id: int) -> None:
        with self._lock:
            self._touched.add(job_id)

    def rows(self, read: Callable[[Collection[int] | None], list[Row[Any]]]) -> list[Row[Any]]:
        """The queued rows in id order; ``read(None)``: every queued row, ``read(ids)``: those jobs' rows."""
        with self._reading:
            now = time.monotonic()
            with self._lock:
                touched, self._touched = self._touched, set()
            if self._rows is None or now - self._read_at > QUEUE_REREAD_S:
                # a write committed from here on is noted again, and read next time: nothing is lost between
                self._rows = {row.id: row for row in read(None)}
                self._read_at = now
            elif touched:
                found = read(touched)
                for job_id in touched:
                    self._rows.pop(job_id, None)
                self._rows.update((row.id, row) for row in found if row.state == QUEUED)
            return [self._rows[job_id] for job_id in sorted(self._rows)]


def list_row(job: Job) -> tuple[Any, ...]:
    """A job's values of ``LIST_COLUMNS``, as ``Store.list`` returns them."""
    return tuple(getattr(job, column.key) for column in LIST_COLUMNS)


def build_list_statements(by_state: bool, by_user: bool, where: ColumnElement[bool] | None = None
                          ) -> tuple[Select[Any], Select[Any]]:
    """The page and count queries of ``Store.list`` for one combination of filters, values bound per call."""
    conditions = [] if where is None else [where]
    if by_state:
        conditions.append(Job.state.in_(bindparam("states", expanding=True)))
    if by_user:
        conditions.append(Job.user == bindparam("user"))
    page = (select(*LIST_COLUMNS).where(*conditions).order_by(Job.id.desc())
            .limit(bindparam("limit")).offset(bindparam("offset")))
    return page, select(func.count()).select_from(Job).where(*conditions)


@functools.cache
def list_statements(by_state: bool, by_user: bool) -> tuple[Select[Any], Select[Any]]:
    """``build_list_statements`` without a read rule, built once."""
    return build_list_statements(by_state, by_user)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def upgrade_schema(engine: Engine) -> None:
    """Create missing tables, and add the columns and indexes a newer version declares (every added
    column is nullable)."""
    Base.metadata.create_all(engine)
    inspector = inspect(engine)
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            present = {col["name"] for col in inspector.get_columns(table.name)}
            for col in table.columns:
                if col.name not in present:
                    col_type = col.type.compile(dialect=engine.dialect)
                    conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{col.name}" {col_type}'))
            indexes = {index["name"] for index in inspector.get_indexes(table.name)}
            for index in table.indexes:
                if index.name not in indexes:
                    index.create(conn)


class Store:
    """Short transactions over the jobs table; returned rows are detached snapshots."""

    def __init__(self, url: str) -> None:
        is_sqlite = url.startswith("sqlite")
        private_sqlite(url)
        self.engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30} if is_sqlite else {},
                                    pool_size=20 if is_sqlite else 5)
        if is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        upgrade_schema(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._queue = QueueIndex()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def add(self, **fields: Any) -> Job:
        job = Job(state=QUEUED, created_at=time.time(), **fields)
        with self.session() as session:
            session.add(job)
        self._queue.touched(job.id)
        log.info("job %d: queued (%s, user %s)", job.id, job.name, job.user)
        return job

    def get(self, job_id: int) -> Job | None:
        with self.session() as session:
            return session.get(Job, job_id)

    def update(self, job_id: int, **fields: Any) -> Job:
        with self.session() as session:
            job = session.get(Job, job_id, with_for_update=True)
            for key, value in fields.items():
                setattr(job, key, value)
        self._queue.touched(job_id)
        return job

    def transition(self, job_id: int, from_states: Sequence[str], **fields: Any) -> bool:
        """Update a job only if it is still in one of ``from_states``: API and runner never undo each other."""
        query = update(Job).where(Job.id == job_id, Job.state.in_(from_states)).values(**fields)
        with self.session() as session:
            changed = session.execute(query).rowcount == 1
        if changed:
            self._queue.touched(job_id)
        return changed

    def list(self, states: Sequence[str] = (), limit: int = 50, offset: int = 0,
             user: str | None = None, where: ColumnElement[bool] | None = None) -> tuple[list[Row[Any]], int]:
        """A page of jobs, newest first (rows of ``LIST_COLUMNS``), and the number of jobs matching the filter;
        ``where`` narrows it further (the caller's read rule, services.auth.access.readable_by). Plain rows
        from statements built once per filter combination (or once per call with a ``where``): a page costs
        two indexed queries and no work per row beyond reading it."""
        if where is None or isinstance(where, True_):  # no rule, or one every job passes (an admin's)
            page, count = list_statements(bool(states), bool(user))
        else:
            page, count = build_list_statements(bool(states), bool(user), where)
        params = {"states": list(states), "user": user}
        with self.engine.connect() as conn:
            rows = conn.execute(page, {**params, "limit": limit, "offset": offset}).all()
            total = conn.execute(count, params).scalar()
        return list(rows), int(total or 0)

    def in_states(self, states: Sequence[str]) -> list[Job]:
        """Jobs in ``states`` in scheduling order: higher priority first, then first come (hypes not loaded:
        reading them raises)."""
        query = (select(Job).where(Job.state.in_(states)).order_by(Job.priority.desc(), Job.id)
                 .options(defer(Job.hypes, raiseload=True)))
        with self.session() as session:
            return list(session.scalars(query).all())

    def queued(self) -> list[Row[Any]]:
        """The whole queue, rows of ``LAUNCH_COLUMNS`` (read by attribute) in submission order: every scheduling
        decision weighs every queued job. Kept in memory (``QueueIndex``): a call reads only the rows this
        store wrote since the last one, and the whole queue at the first call and every ``QUEUE_REREAD_S``
        (what another process wrote)."""
        return self._queue.rows(self._queued_rows)

    def _queued_rows(self, ids: Collection[int] | None) -> list[Row[Any]]:
        """Rows of ``QUEUE_COLUMNS``: of the queued jobs (``ids`` None), or of the jobs ``ids``, in any state."""
        query = select(*QUEUE_COLUMNS)
        with self.engine.connect() as conn:
            if ids is None:
                return list(conn.execute(query.where(Job.state == QUEUED)).all())
            chosen = sorted(ids)
            return [row for start in range(0, len(chosen), 500)
                    for row in conn.execute(query.where(Job.id.in_(chosen[start:start + 500]))).all()]

    def usage(self) -> list[UserUsage]:
        with self.session() as session:
            return list(session.scalars(select(UserUsage)).all())

    def save_usage(self, rows: Sequence[dict[str, Any]]) -> None:
        """Write users' usage rows (``UserUsage`` columns), adding the missing ones, in one transaction."""
        with self.session() as session:
            for row in rows:
                session.merge(UserUsage(**row))

    def hypes(self, job_id: int) -> dict[str, Any]:
        with self.session() as session:
            return session.scalar(select(Job.hypes).where(Job.id == job_id))

    def with_viewer(self) -> list[Job]:
        """Ended (or preempted and queued) jobs whose Visdom viewer may still be up."""
        query = select(Job).where(Job.state.in_((*ENDED, QUEUED)), Job.visdom_pid.is_not(None))
        with self.session() as session:
            return list(session.scalars(query).all())

    def queue_position(self, job: Job) -> int:
        """1 for the next job to start: jobs ahead by priority, then by submission."""
        ahead = select(func.count()).select_from(Job).where(
            Job.state == QUEUED,
            or_(Job.priority > job.priority, (Job.priority == job.priority) & (Job.id < job.id)))
        with self.session() as session:
            return int(session.scalar(ahead) or 0) + 1
