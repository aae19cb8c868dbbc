"""The scheduler and watcher of jobs, one background thread inside the service.

Each tick: record the end of tasks that exited (requeueing a preempted one), enforce limits and stops,
shut idle viewers, charge usage, and ask the policy (``services.jobs.policies``) which queued jobs start
and which running ones are preempted. Starting and ending tasks is the executor's
(an executor, ``services.executors``: local processes or a Ray cluster), viewers are ``viewers.Viewers``; stopping a job is ``stopping``'s.
The database is the truth; what is kept here is rebuilt from it at start: live tasks are adopted, jobs
whose tasks vanished end as ``lost`` (or with their real outcome when ``wrap.py`` recorded it).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cauchy import rundir
from services.config import Settings
from services.executors.base import Launchable, Running
from services.executors.registry import build_executor
from services.jobs import files, progress
from services.jobs.endings import Endings
from services.jobs.groups import scheduling_groups
from services.jobs.outcome import judge, read_tail
from services.jobs.policies import decide_with
from services.jobs.policies.base import Active, Capacity, Pending, Quota, Wait, charge
from services.jobs.ports import PortsExhausted
from services.jobs.stopping import stop_for
from services.jobs.store import ACTIVE, FAILED, LOST, QUEUED, RUNNING, STOPPED, STOPPING, Job, Store
from services.jobs.usage import UsageBook
from services.jobs.viewers import Viewers
from services.serving.replicas import Serving

log = logging.getLogger(__name__)

DISK_CHECK_S = 2.0  # a job directory's size is read this often (a walk of its files)
DECIDE_EVERY_S = 5.0  # without an event (a submission, an end), the queue's estimates are refreshed this often
ESTIMATE_EVERY_S = 10.0  # a running job's expected end is read from its metrics this often
TRAINING = ("train", "finetune")


def preemptible(phase: str, flag: bool | None) -> bool:
    """Training jobs are preemptible unless the user said no; test and predict jobs never are."""
    return phase in TRAINING and flag is not False


def on_all_nodes(job: Any, each: int) -> int:
    """What a job holds of a resource in all: ``each`` (its GPUs, CPU slots or memory) on every node it spans."""
    return each * (job.nodes or 1)


class PendingQueue:
    """The queue as the policies weigh it, from the store's rows (``Store.queued``): a row the store did not read
    again, of a user whose group did not change, keeps its ``Pending`` (10,000 are not rebuilt every pass)."""

    def __init__(self) -> None:
        self._known: dict[int, tuple[Any, str, Pending]] = {}  # job id -> (row, group, what the policy weighs)

    def update(self, rows: Iterable[Any], groups: Mapping[str, str]) -> dict[int, tuple[Any, Pending]]:
        """Job id -> (its row, its ``Pending``), in the rows' order."""
        known: dict[int, tuple[Any, str, Pending]] = {}
        for row in rows:
            group = groups.get(row.user, "")
            before = self._known.get(row.id)
            known[row.id] = before if before is not None and before[0] is row and before[1] == group else (
                row, group, Pending(row.id, row.user, group, row.priority, on_all_nodes(row, row.gpus_requested),
                                    on_all_nodes(row, row.cpu_slots or 1), on_all_nodes(row, row.memory_mb or 0),
                                    row.time_limit_s,
                                    preemptible(row.phase, row.preemptible), row.requeued_at or row.created_at,
                                    row.nodes or 1))
        self._known = known
        return {job_id: (row, pending) for job_id, (row, _, pending) in known.items()}


class Supervisor:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.viewers = Viewers(settings, store, on_failure=self.wake)
        self.executor = build_executor(settings, store)
        self.serving = Serving(settings, store)  # deployments' replicas: they hold CPU slots and GPUs too
        self.usage = UsageBook(store, settings.fairshare_half_life_s)
        self.endings = Endings()  # wakes requests waiting on a job's end
        self._waits: dict[int, Wait] = {}
        self._estimates: dict[int, tuple[float, float | None]] = {}  # job id -> (read at, expected end)
        self._queue = PendingQueue()
        self._decided_at = 0.0
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._quit = threading.Event()
        self._thread: threading.Thread | None = None

    # ----- life of the runner thread

    def start(self) -> None:
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="cauchy-supervisor", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        """Stop watching; job processes keep running and are adopted by the next service."""
        self._quit.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        self.usage.save(time.time())

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._quit.is_set():
            woken = self._wake.wait(self.settings.poll_interval_s)
            self._wake.clear()
            try:
                self.tick(decide=woken)
            except Exception:  # the thread must survive a bad tick (a locked database, a full disk)
                log.exception("supervisor tick failed")

    def tick(self, decide: bool = True) -> None:
        with self._lock:
            self._viewer_failures()
            ended = self._watch()
            self.serving.tick(*self._jobs_hold())
            self._enforce_stops()
            self.viewers.close_idle()
            now = time.time()
            self.usage.advance(now, self._held())
            if decide or ended or now - self._decided_at > DECIDE_EVERY_S:
                self._schedule(now)

    def job_dir(self, job_id: int) -> Path:
        return files.job_dir(self.settings.jobs_dir, job_id)

    # ----- start

    def recover(self) -> None:
        """Rebuild the in-memory view after a (re)start of the service."""
        now = time.time()
        with self._lock:
            self.serving.recover()
            for job in self.store.in_states(ACTIVE):
                adopted = self.executor.adopt(job)
                if adopted is not None:  # where: the job row's pid may be unrecorded (found by its exit file)
                    log.info("job %d: adopted (%s, %s)", job.id, job.state, adopted.where)
                    self.viewers.adopt(job, until=None)
                    continue
                self.executor.kill_leftovers(job)
                status = files.read_exit_status(self.job_dir(job.id))
                if status is not None:  # it ended while no service watched; wrap.py kept the reason
                    self._record_end(job.id, status, None)
                elif job.preempted_for is not None:  # it was leaving for another job: it goes back to the queue
                    self._requeue(self.store.get(job.id), "its task was gone when the service restarted")
                else:
                    checkpoint = rundir.last_checkpoint(self.job_dir(job.id))
                    where = f"; last checkpoint {checkpoint}" if checkpoint else "; no checkpoint was saved"
                    self.store.transition(job.id, ACTIVE, state=LOST, ended_at=now,
                                          visdom_until=now + self.settings.visdom_linger_s,
                                          reason=f"the task was gone when the service restarted{where}")
                    log.warning("job %d: %s -> lost (its task was gone at the restart%s)", job.id, job.state, where)
            for job in self.store.with_viewer():
                self.viewers.adopt(job, until=job.visdom_until or now)

    # ----- decide

    def _held(self) -> dict[tuple[str, str], int]:
        """What each user holds (``("gpu"|"cpu", user) -> count``): their jobs' and their deployments' replicas'."""
        held: dict[tuple[str, str], int] = {}
        for run in self.executor.all():
            key = ("gpu", run.user) if run.gpus else ("cpu", run.user)
            held[key] = held.get(key, 0) + (len(run.gpus) or 1)
        for owner, gpu in self.serving.held():
            key = ("gpu", owner) if gpu else ("cpu", owner)
            held[key] = held.get(key, 0) + 1
        return held

    def _jobs_hold(self) -> tuple[set[str], int]:
        """The GPUs and CPU slots running jobs hold, which replicas may not take."""
        runs = {run.job_id: run for run in self.executor.all()}
        slots = sum(on_all_nodes(job, job.cpu_slots or 1) for job in self.store.in_states(ACTIVE)
                    if job.id in runs and not runs[job.id].gpus)
        return {gpu for run in runs.values() for gpu in run.gpus}, slots

    def capacity(self) -> Capacity:
        """The cluster as the policy sees it: without the GPUs and CPU slots deployments' replicas hold."""
        settings = self.settings
        gpus, cpu_slots = self.executor.resources()
        replicas = self.serving.held()
        gpus = tuple(gpu for gpu in gpus if gpu not in {held for _, held in replicas})
        cpu_slots -= sum(1 for _, gpu in replicas if gpu is None)
        return Capacity(gpus=gpus, cpu_slots=cpu_slots, memory_mb=settings.memory_mb,
                        free_ports=self.viewers.ports_for_jobs(), shares=dict(settings.group_shares),
                        quotas={group: Quota(nominal, limit) for group, nominal, limit in settings.group_quotas},
                        max_running_per_user=settings.max_running_per_user,
                        half_life_s=settings.fairshare_half_life_s,
                        history_weight=settings.fairshare_history_weight, starvation_s=settings.starvation_s)

    def _expected_end(self, job: Job, now: float) -> float | None:
        """The user's time limit, or the measured pace (read every ``ESTIMATE_EVERY_S``), whichever is sooner."""
        read_at, estimate = self._estimates.get(job.id, (0.0, None))
        if now - read_at > ESTIMATE_EVERY_S:
            estimate = progress.expected_end(self.job_dir(job.id))
            self._estimates[job.id] = (now, estimate)
        ends = [end for end in (estimate, job.started_at + job.time_limit_s if job.time_limit_s and job.started_at
                                else None) if end is not None]
        return min(ends) if ends else None

    def _schedule(self, now: float) -> None:
        capacity = self.capacity()
        groups = scheduling_groups(self.store, {*capacity.shares, *capacity.quotas})
        active = []
        for job in self.store.in_states(ACTIVE):
            run = self.executor.get(job.id)
            if run is None:
                continue
            active.append(Active(job.id, job.user, groups.get(job.user, ""), job.priority, run.gpus,
                                 on_all_nodes(job, job.cpu_slots or 1), on_all_nodes(job, job.memory_mb or 0),
                                 job.started_at or now,
                                 self._expected_end(job, now), preemptible(job.phase, job.preemptible),
                                 job.state == STOPPING))
        self._estimates = {job_id: value for job_id, value in self._estimates.items()
                           if any(run.id == job_id for run in active)}
        queued = self._queue.update(self.store.queued(), groups)
        rows = {job_id: row for job_id, (row, _) in queued.items()}
        queue = [pending for _, pending in queued.values()]
        decision = decide_with(self.settings.scheduler_policy, queue, active, self.usage.snapshot(now), capacity, now)
        self._waits = decision.waits
        self._decided_at = now
        for victim, for_job in decision.preempt:
            stop_for(self.store, victim, f"preempted for job {for_job}", preempted_for=for_job)
        for job_id, gpus in decision.starts:
            job = rows[job_id]
            if not self.store.transition(job_id, [QUEUED], state=RUNNING, started_at=time.time(),
                                         gpus=",".join(gpus), reason=None):
                continue  # cancelled meanwhile
            try:
                self._launch(job, gpus)
            except PortsExhausted:  # foreign programs hold the rest of the range: wait for one
                self.store.transition(job_id, [RUNNING], state=QUEUED, started_at=None, gpus="")
                return

    def waits(self, job_id: int) -> Wait | None:
        """Why a queued job waits, its position and estimated start, as of the last decision."""
        return self._waits.get(job_id)

    def _launch(self, job: Launchable, gpus: tuple[str, ...]) -> None:
        """Start the task, and its Visdom beside it in the background (``Viewers.open_soon``): the viewer is
        ready while the task imports torch (its Visdom sink retries until the server answers), and the
        scheduling thread waits for neither; a viewer that does not start stops its task (``_viewer_failures``)."""
        port = self.viewers.reclaim(job.id)  # a requeued job's viewer of its previous run, if still up
        if port is None:
            self.viewers.stop(job.id)
            port = self.viewers.allocate_port()
            self.viewers.open_soon(job.id, port)
        try:
            run = self.executor.start(job, gpus, port)
        except OSError as exc:
            self.viewers.stop(job.id)
            self.viewers.release_port(port)
            self.store.transition(job.id, ACTIVE, state=FAILED, ended_at=time.time(), reason=f"could not start: {exc}")
            log.warning("job %d: running -> failed (could not start: %s)", job.id, exc)
            self.endings.notify(job.id)
            return
        self.usage.started(job.user, time.time())
        log.info("job %d: queued -> running (%s, %s, viewer port %d)", job.id,
                 f"GPUs {','.join(gpus)}" if gpus else "CPU", run.where, port)

    def _viewer_failures(self) -> None:
        """A job whose viewer did not start is killed: the task must not plot to a port that goes to another
        job; the port is free again after that."""
        for job_id, (port, why) in self.viewers.failures().items():
            run = self.executor.get(job_id)
            if run is not None and not run.killed_reason:
                self.executor.kill(run, f"could not start its Visdom: {why}")
            self.viewers.release_port(port)

    # ----- watch and end

    def _watch(self) -> bool:
        """Record the end of every task that ended; True if any did."""
        ended = False
        for run in self.executor.all():
            if not self.executor.alive(run):
                self._record_end(run.job_id, self.executor.finish(run), run.killed_reason)
                ended = True
            elif not run.killed_reason:
                self._enforce_limits(run)
        return ended

    def _enforce_limits(self, run: Running) -> None:
        """Memory past the cap: killed at once (the machine is at stake). Wall clock or disk past theirs:
        stopped as a user would (SIGTERM, a checkpoint, the grace period), the limit in its reason."""
        if run.memory_limit_mb:
            rss_mb = sum(p["rss_mb"] for p in self.executor.sample(run))
            if rss_mb > run.memory_limit_mb:
                self.executor.kill(run, f"killed for memory: {rss_mb:.0f} MB used, limit {run.memory_limit_mb} MB")
                return
        now = time.time()
        quota = self.settings.job_disk_quota_mb
        if run.wall_clock_limit_s and now - run.started > run.wall_clock_limit_s:
            stop_for(self.store, run.job_id, f"wall-clock limit of {run.wall_clock_limit_s:g} s reached")
        elif quota and now - run.disk_checked_at > DISK_CHECK_S:
            run.disk_checked_at = now
            used_mb = files.disk_usage(self.job_dir(run.job_id)) / 2**20
            if used_mb > quota:
                stop_for(self.store, run.job_id, f"disk quota of {quota} MB for the job directory "
                                                 f"exceeded ({used_mb:.0f} MB used)")

    def _record_end(self, job_id: int, status: dict[str, Any] | None, killed_reason: str | None) -> None:
        self.viewers.settle(job_id)  # a task that ended at once: its viewer is up, or failed, before it lingers
        job = self.store.get(job_id)
        if status is not None and files.LOST_KEY in status and killed_reason is None:
            self._lost(job, status[files.LOST_KEY])
            return
        if status is None and killed_reason is None:
            fields = {"state": FAILED, "reason": "the task ended; its exit status is unknown"}
        else:
            status = status or {}
            outcome = judge(status.get("exit_code"), status.get("signal"),
                            read_tail(self.job_dir(job_id) / files.LOGS["stderr"]),
                            stop_requested=job.stop_requested_at is not None, killed_by_us=killed_reason)
            fields = {"state": outcome.state, "reason": outcome.reason,
                      "exit_code": outcome.exit_code, "exit_signal": outcome.signal}
        self._wake.set()  # resources were freed
        if job.state == STOPPING and job.preempted_for is not None and fields["state"] == STOPPED:
            self._requeue(job, fields["reason"])
            return
        if job.state == STOPPING and job.reason:  # stopped for a limit (``stop_for``): say which first
            fields["reason"] = f"{job.reason}; {fields['reason']}"
        until = time.time() + self.settings.visdom_linger_s
        self.store.transition(job_id, ACTIVE, ended_at=time.time(), visdom_until=until, **fields)
        log.info("job %d: %s -> %s (%s)", job_id, job.state, fields["state"], fields["reason"])
        self.viewers.linger(job_id, until)
        self.endings.notify(job_id)

    def _lost(self, job: Job, how: str) -> None:
        """A task that vanished with its machine (a Ray node lost): a preemptible job goes back to the queue to
        resume elsewhere from its last checkpoint; another is ``lost``, its last checkpoint named."""
        if preemptible(job.phase, job.preemptible):
            self._requeue(job, how, why=f"its node was lost ({how})", states=ACTIVE)
            return
        now = time.time()
        checkpoint = rundir.last_checkpoint(self.job_dir(job.id))
        where = f"; last checkpoint {checkpoint}" if checkpoint else "; no checkpoint was saved"
        until = now + self.settings.visdom_linger_s
        self.store.transition(job.id, ACTIVE, state=LOST, ended_at=now, visdom_until=until,
                              reason=f"its node was lost ({how}){where}")
        log.warning("job %d: %s -> lost (%s%s)", job.id, job.state, how, where)
        self.viewers.linger(job.id, until)
        self.endings.notify(job.id)

    def _requeue(self, job: Job, how: str, why: str | None = None, states: Sequence[str] | None = None) -> None:
        """A preempted job (or one whose node was lost: ``why``) goes back to the queue, to resume from the
        checkpoint it saved (or its last one)."""
        now = time.time()
        checkpoint = rundir.last_checkpoint(self.job_dir(job.id))
        resume = str(checkpoint) if checkpoint else job.resume_from
        why = why or f"preempted for job {job.preempted_for}"
        record = {"at": now, "for_job": job.preempted_for, "checkpoint": resume, "how": how,
                  "ran_s": round(now - job.started_at, 1) if job.started_at else None}
        until = now + self.settings.visdom_linger_s
        self.store.transition(job.id, states or [STOPPING], state=QUEUED, resume_from=resume, started_at=None,
                              gpus="", requeued_at=now,
                              pid=None, pid_started=None, stop_requested_at=None, preempted_for=None,
                              exit_code=None, exit_signal=None, visdom_until=until,
                              preemptions=[*(job.preemptions or []), record],
                              reason=f"{why}; resumes from {'its checkpoint' if checkpoint else 'the start'}")
        files.clear_exit_status(self.job_dir(job.id))
        self.viewers.linger(job.id, until)
        log.info("job %d: %s -> queued (%s; %s; resumes from %s)", job.id, job.state, why, how, resume or "the start")

    def _enforce_stops(self) -> None:
        grace = self.settings.stop_grace_s
        for job in self.store.in_states([STOPPING]):
            run = self.executor.get(job.id)
            if run is None:  # stopped while its start was being undone
                self.store.transition(job.id, [STOPPING], state=STOPPED, ended_at=time.time(),
                                      reason="cancelled before it started")
                self.endings.notify(job.id)
                continue
            if run.term_sent_at is None:
                self.executor.ask_to_stop(run, time.time())
            elif time.time() - run.term_sent_at > grace and not run.killed_reason:
                self.executor.kill(run, f"stopped: killed after the {grace:g} s grace period without a checkpoint")

    # ----- queries used by the API

    def scheduler_state(self) -> dict[str, Any]:
        """What ``GET /api/v1/scheduler`` shows: the policy, capacity and rules, and per user the decayed usage,
        what they hold and their charge (held plus recent average), with the group they count against."""
        now = time.time()
        capacity = self.capacity()
        groups = scheduling_groups(self.store, {*capacity.shares, *capacity.quotas})
        usage = self.usage.snapshot(now)
        held = self._held()
        users = sorted({*usage.gpu_seconds, *(user for _, user in held)})
        return {
            "policy": self.settings.scheduler_policy, "half_life_s": capacity.half_life_s,
            "history_weight": capacity.history_weight,
            "capacity": {"gpus": list(capacity.gpus), "cpu_slots": capacity.cpu_slots, "memory_mb": capacity.memory_mb},
            "shares": capacity.shares,
            "quotas": {group: {"nominal": quota.nominal, "limit": quota.ceiling} for group, quota in capacity.quotas.items()},
            "queued": len(self._waits), "running": len(self.executor.all()),
            "users": [{"user": user, "group": groups.get(user, ""),
                       "gpu_seconds": round(usage.gpu_seconds.get(user, 0.0), 3),
                       "cpu_seconds": round(usage.cpu_seconds.get(user, 0.0), 3),
                       "held": {"gpus": held.get(("gpu", user), 0), "cpu_slots": held.get(("cpu", user), 0)},
                       "charge": {kind: round(charge(held.get((kind, user), 0), usage.seconds(kind).get(user, 0.0),
                                                     capacity), 4) for kind in ("gpu", "cpu")},
                       "last_start": usage.last_start.get(user)} for user in users],
        }

    def processes(self, job_id: int) -> list[dict[str, Any]]:
        run = self.executor.get(job_id)
        return [*(self.executor.sample(run) if run else []), *self.viewers.processes(job_id)]

    def terminate_all(self) -> None:
        """End every process the service started (tests leave nothing behind)."""
        self.executor.terminate_all()
        self.viewers.terminate_all()
        self.serving.terminate_all()
