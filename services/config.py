"""Service settings: defaults, then an optional TOML file, then ``CAUCHY_*`` environment variables.

One frozen object is built at start and handed to ``create_app``; nothing reads the environment
later, so tests build a ``Settings`` directly with a temporary home.
"""
from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
THREADS_PER_CORE = 2  # request threads a core, beside the legacy waiters (Settings.request_threads)


@dataclass(frozen=True)
class Settings:
    home: Path = REPO_ROOT / "var"
    host: str = "127.0.0.1"
    port: int = 8399
    visdom_ports: tuple[int, int] = (8140, 8199)
    cpu_slots: int = 2
    gpus: tuple[str, ...] = ()
    database_url: str = ""
    repo_root: Path = REPO_ROOT
    # The task command before its arguments (another Python, a stand-in in tests).
    task_command: tuple[str, ...] = (sys.executable, "run_tasks.py")
    # The submission's component check (services/component_check.py); empty: schema validation only.
    component_check: tuple[str, ...] = (sys.executable, "-m", "cauchy.check_worker")
    stop_grace_s: float = 30.0
    visdom_linger_s: float = 600.0
    max_running_per_user: int = 0  # 0: no limit
    # Scheduling (docs/scheduling.md): the policy, fair-share history, group shares and GPU quotas, memory.
    scheduler_policy: str = "fairshare"  # fifo, priority or fairshare
    fairshare_half_life_s: float = 7 * 24 * 3600.0  # usage counts half after this long
    fairshare_history_weight: float = 0.25  # recent usage beside what is held now (docs/scheduling.md)
    starvation_s: float = 12 * 3600.0  # a job waiting longer heads its resource kind (fairshare: its group; twice: its kind)
    group_shares: tuple[tuple[str, float], ...] = ()  # (group, share); a group not named has 1
    group_quotas: tuple[tuple[str, int, int], ...] = ()  # (group, nominal GPUs, borrowing limit)
    memory_mb: int = 0  # memory jobs may state in all (resources.memory_mb); 0: not counted
    # Per-job limits the supervisor enforces (0: none). Memory: the task's processes together (RSS), killed
    # past it. Wall clock and disk (the job directory): stopped as by a user (SIGTERM, checkpoint, grace).
    job_memory_limit_mb: int = 8192
    job_wall_clock_limit_s: float = 7 * 24 * 3600.0
    job_disk_quota_mb: int = 20480
    max_request_bytes: int = 16 * 1024 * 1024
    threads: int = 0  # waitress's request threads; 0: computed from the cores (request_threads)
    connection_limit: int = 1000
    poll_interval_s: float = 0.5
    run_jobs: bool = True  # False: API only, no scheduler thread (used by some tests)
    # Containment (docs/settings.md): what a job submitted through the service may read and fetch.
    data_roots: tuple[Path, ...] = (REPO_ROOT / "data",)  # besides $CAUCHY_HOME/datasets
    weights_url_prefixes: tuple[str, ...] = ()
    weights_max_mb: int = 2048
    weights_timeout_s: float = 600.0
    # Submission limits: each a 400 naming the key it refuses.
    job_cores: int = 0  # 0: the host's cores; data.workers may not exceed it
    max_batch_size: int = 1024
    max_epoch: int = 10_000
    max_iters: int = 10_000_000
    max_checkpoint_keep: int = 50
    max_hypes_kb: int = 256
    max_queued_per_user: int = 100
    submit_rate_per_min: int = 60  # submissions per user per minute
    # Legacy waits and Visdom viewers of ended jobs.
    legacy_wait_max_s: float = 60.0
    legacy_waiters: int = 4  # requests waiting on a job at once; more are answered at once with the job id
    max_viewers: int = 10  # viewers of ended jobs, overall
    max_viewers_per_user: int = 3
    # Executors (docs/executors.md): what runs job tasks: local processes, or a Ray cluster (its dashboard URL).
    executor: str = "local"  # local or ray
    ray_address: str = "http://127.0.0.1:8265"
    # How a task on another node reaches this service (streams, uploads); empty: http://host:port.
    node_service_url: str = ""
    # $CAUCHY_HOME is the same path on every node (a shared filesystem): tasks write there, nothing is uploaded.
    shared_home: bool = False
    # The first admin's password when no admin exists yet; else one is generated (services.auth.bootstrap).
    admin_password: str = dataclasses.field(default="", repr=False)
    # Host header values the service answers (services.auth.hosts); empty: default_allowed_hosts().
    allowed_hosts: tuple[str, ...] = ()
    # Where browsers reach the front door; the no-nginx /visdom/<id>/ redirect is built on it, never on Host.
    public_url: str = "http://localhost:8080"
    # Datasets (docs/datasets.md): storage per user, what an archive may unpack to, the upload chunk size.
    dataset_quota_mb: int = 51200  # a user's datasets and unfinished uploads together
    dataset_max_unpacked_mb: int = 20480  # one version, unpacked
    dataset_max_files: int = 1_000_000
    dataset_max_ratio: int = 200  # unpacked bytes per archive byte, for the archive and for each entry
    dataset_chunk_mb: int = 64  # the largest PUT of an upload (nginx's body limit on that route alone)
    dataset_workers: int = 2  # archives unpacked and inspected at once
    dataset_upload_expiry_s: float = 24 * 3600.0  # an unfinished upload that long without a chunk is removed
    # The inspection command before ROOT --out DIR (another Python, a stand-in in tests).
    dataset_inspect_command: tuple[str, ...] = (sys.executable, "-m", "cauchy.datasets.tools.inspect_dataset")
    # Serving (docs/serving.md): the model servers' ports, replicas per deployment, torch threads per replica.
    serve_ports: tuple[int, int] = (8200, 8299)
    serve_max_replicas: int = 8
    serve_torch_threads: int = 0  # 0: torch's default (every core)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'cauchy.db'}"

    @property
    def service_url_for_nodes(self) -> str:
        return self.node_service_url or f"http://{self.host}:{self.port}"

    @property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"

    @property
    def hypes_dir(self) -> Path:
        return self.repo_root / "hypes"

    @property
    def datasets_dir(self) -> Path:
        return self.home / "datasets"

    @property
    def uploads_dir(self) -> Path:
        return self.datasets_dir / ".uploads"

    @property
    def cores_per_job(self) -> int:
        return self.job_cores or os.cpu_count() or 1

    @property
    def request_threads(self) -> int:
        """Waitress's worker threads: ``threads``, else one for each legacy request that may wait on a job
        (``legacy_waiters``) and ``THREADS_PER_CORE`` a core. Python runs one thread at a time (the interpreter
        lock), so threads beyond what the cores keep busy do no more work: each only adds hand-offs of the
        lock between requests (context switches, docs/containment.md "Under load"). Waitress queues the
        requests its threads cannot take yet (the connections stay open), so fewer threads refuse no one;
        what they cost is a wait behind requests that hold a thread long (a viewer starting)."""
        return self.threads or self.legacy_waiters + THREADS_PER_CORE * (os.cpu_count() or 1)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def parse_port_range(text: str | list[int]) -> tuple[int, int]:
    """``"8140-8199"`` (or ``[8140, 8199]`` in the file) -> ``(8140, 8199)``."""
    low, _, high = (f"{text[0]}-{text[-1]}" if isinstance(text, list) else str(text)).partition("-")
    first, last = int(low), int(high or low)
    if not 0 < first <= last < 65536:
        raise ValueError(f"bad port range {text!r}")
    return first, last


def parse_gpus(text: str | list[str | int]) -> tuple[str, ...]:
    """``"0,1"`` (or ``["0", "1"]`` in the file) -> ``("0", "1")``; ``""``, ``"none"`` or ``"-1"`` -> no GPU."""
    parts = [str(item) for item in text] if isinstance(text, list) else str(text).split(",")
    items = [item.strip() for item in parts if item.strip()]
    if items in ([], ["none"], ["-1"]):
        return ()
    return tuple(items)


def split_command(command: str | list[str]) -> tuple[str, ...]:
    """A list in the file, a shell-quoted string in the environment."""
    return tuple(command) if isinstance(command, list) else tuple(shlex.split(command))


def split_paths(text: str | list[str]) -> tuple[Path, ...]:
    """``"/srv/a:/srv/b"`` (``os.pathsep``; a list in the file) -> paths; relative ones are the checkout's."""
    items = text if isinstance(text, list) else str(text).split(os.pathsep)
    return tuple(REPO_ROOT / item.strip() for item in items if item.strip())


def split_words(text: str | list[str]) -> tuple[str, ...]:
    """Comma- or space-separated in the environment, a list in the file."""
    items = text if isinstance(text, list) else str(text).replace(",", " ").split()
    return tuple(item.strip() for item in items if item.strip())
def parse_policy(text: str) -> str:
    from services.jobs.policies import policy  # the names live with the policies

    return policy(str(text).strip()).name


def _pairs(text: str | dict[str, Any]) -> list[tuple[str, str]]:
    """``"a=1, b=2"`` (or a table in the file) -> ``[("a", "1"), ("b", "2")]``."""
    if isinstance(text, dict):
        return [(str(key), value) for key, value in text.items()]
    pairs = []
    for item in str(text).replace(";", ",").split(","):
        if item.strip():
            name, sep, value = item.partition("=")
            if not sep or not name.strip():
                raise ValueError(f"expected group=value, got {item.strip()!r}")
            pairs.append((name.strip(), value.strip()))
    return pairs


def parse_shares(text: str | dict[str, Any]) -> tuple[tuple[str, float], ...]:
    """``"vision=2,nlp=1"`` (or ``{vision = 2}`` in the file): each group's fair share."""
    shares = tuple((group, float(value)) for group, value in _pairs(text))
    if any(share <= 0 for _, share in shares):
        raise ValueError(f"group shares must be above 0: {text!r}")
    return shares


def parse_quotas(text: str | dict[str, Any]) -> tuple[tuple[str, int, int], ...]:
    """``"vision=4:8,nlp=2"`` (or ``{vision = [4, 8]}`` in the file): nominal GPUs and the borrowing limit
    (the nominal when not given)."""
    quotas = []
    for group, value in _pairs(text):
        parts = value if isinstance(value, list) else str(value).split(":")
        nominal, limit = int(parts[0]), int(parts[-1])
        if not 0 <= nominal <= limit:
            raise ValueError(f"quota of {group}: expected nominal[:limit] with 0 <= nominal <= limit, got {value!r}")
        quotas.append((group, nominal, limit))
    return tuple(quotas)


def parse_executor(text: str) -> str:
    from services.executors.registry import executor_name  # the names live with the executors

    return executor_name(text)


def parse_bool(text: str | bool) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (a boolean in the file)."""
    if isinstance(text, bool):
        return text
    value = str(text).strip().lower()
    if value not in ("1", "true", "yes", "on", "0", "false", "no", "off", ""):
        raise ValueError(f"expected true or false, got {text!r}")
    return value in ("1", "true", "yes", "on")


def parse_hosts(text: str | list[str]) -> tuple[str, ...]:
    """``"a.example, b:8080"`` (or a list in the file) -> ``("a.example", "b:8080")``."""
    parts = text if isinstance(text, list) else str(text).split(",")
    return tuple(part.strip().lower() for part in parts if part.strip())


def detect_gpus(environ: Mapping[str, str]) -> tuple[str, ...]:
    """GPUs this host may hand out, found without importing torch.

    ``CUDA_VISIBLE_DEVICES`` (when set) is the operator's choice; otherwise ``nvidia-smi`` lists them.
    """
    if "CUDA_VISIBLE_DEVICES" in environ:
        return parse_gpus(environ["CUDA_VISIBLE_DEVICES"])
    smi = shutil.which("nvidia-smi")
    if not smi:
        return ()
    try:
        out = subprocess.run([smi, "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return parse_gpus(",".join(out.split()))


_CONVERTERS = {
    "home": Path,
    "host": str,
    "port": int,
    "visdom_ports": parse_port_range,
    "cpu_slots": int,
    "gpus": parse_gpus,
    "database_url": str,
    "stop_grace_s": float,
    "visdom_linger_s": float,
    "max_running_per_user": int,
    "scheduler_policy": parse_policy,
    "fairshare_half_life_s": float,
    "fairshare_history_weight": float,
    "starvation_s": float,
    "group_shares": parse_shares,
    "group_quotas": parse_quotas,
    "memory_mb": int,
    "job_memory_limit_mb": int,
    "job_wall_clock_limit_s": float,
    "job_disk_quota_mb": int,
    "max_request_bytes": int,
    "threads": int,
    "connection_limit": int,
    "task_command": split_command,
    "component_check": split_command,
    "data_roots": split_paths,
    "weights_url_prefixes": split_words,
    "weights_max_mb": int,
    "weights_timeout_s": float,
    "job_cores": int,
    "max_batch_size": int,
    "max_epoch": int,
    "max_iters": int,
    "max_checkpoint_keep": int,
    "max_hypes_kb": int,
    "max_queued_per_user": int,
    "submit_rate_per_min": int,
    "legacy_wait_max_s": float,
    "legacy_waiters": int,
    "max_viewers": int,
    "max_viewers_per_user": int,
    "admin_password": str,
    "allowed_hosts": parse_hosts,
    "public_url": lambda text: str(text).rstrip("/"),
    "dataset_quota_mb": int,
    "dataset_max_unpacked_mb": int,
    "dataset_max_files": int,
    "dataset_max_ratio": int,
    "dataset_chunk_mb": int,
    "dataset_workers": int,
    "dataset_upload_expiry_s": float,
    "dataset_inspect_command": split_command,
    "serve_ports": parse_port_range,
    "serve_max_replicas": int,
    "serve_torch_threads": int,
    "executor": parse_executor,
    "ray_address": lambda text: str(text).strip().rstrip("/"),
    "node_service_url": lambda text: str(text).strip().rstrip("/"),
    "shared_home": parse_bool,
}


def load_settings(config_file: str | os.PathLike[str] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Settings for ``cauchy serve``: the file named by ``config_file`` or ``CAUCHY_CONFIG``, then env."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = config_file or environ.get("CAUCHY_CONFIG")
    if path:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
        unknown = sorted(set(doc) - set(_CONVERTERS))
        if unknown:
            raise ValueError(f"{path}: unknown settings {', '.join(unknown)}")
        values.update(doc)
    for key in _CONVERTERS:
        env_key = f"CAUCHY_{key.upper()}"
        if env_key in environ:
            values[key] = environ[env_key]
    settings = {key: _CONVERTERS[key](value) for key, value in values.items()}
    if "gpus" not in settings:
        settings["gpus"] = detect_gpus(environ)
    return Settings(**settings)
