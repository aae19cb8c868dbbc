"""The control service: ``create_app(settings)`` builds it; ``serve`` runs it under waitress."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from flask import Flask

from services.api import auth, datasets, deployments, frontdoor, jobs, legacy, nodes, openapi, reuse, sharing, weights
from services.api.errors import JobIdConverter, register_error_handlers
from services.api.jsonbody import CheckedJSONProvider
from services.api.limits import LIMITS_KEY, UserLimits
from services.auth import seam
from services.auth.accounts import Accounts
from services.auth.bootstrap import bootstrap
from services.auth.hosts import default_allowed_hosts
from services.auth.identity import Caller
from services.auth.secrets import session_key, token_key
from services.component_check import ComponentChecker
from services.config import Settings, load_settings
from services.datasets.pipeline import Pipeline
from services.datasets.store import DatasetStore
from services.jobs.store import Store
from services.jobs.supervisor import Supervisor
from services.private import private_dir
from services.shutdown import LEAVES_JOBS, ShutdownRequested, install_handler, remove_pid, stop_everything, write_pid

log = logging.getLogger("cauchy.service")


@dataclass
class Services:
    """What the blueprints share, kept in ``app.extensions["cauchy"]``."""

    settings: Settings
    store: Store
    supervisor: Supervisor
    accounts: Accounts
    admin: str  # the first admin's name
    allowed_hosts: tuple[str, ...]
    datasets_pipeline: Pipeline
    checker: ComponentChecker | None = None  # the submission's component check (settings.component_check)
    sign_in_limits: auth.SignInLimits = field(default_factory=auth.SignInLimits)
    list_bodies: reuse.Bodies = field(default_factory=reuse.Bodies)  # GET /api/v1/jobs while nothing changed
    without_auth: Caller | None = None  # bench/auth_overhead.py only: every request acts as this admin

    def close(self) -> None:
        """The service goes down: the supervisor stops (its jobs keep running, for adoption), the check ends."""
        self.supervisor.shutdown()
        self.datasets_pipeline.shutdown()
        if self.checker is not None:
            self.checker.close()


def create_app(settings: Settings | None = None, *, password_hasher: PasswordHasher | None = None,
               without_auth_for_benchmark: bool = False) -> Flask:
    """The Flask app over ``settings`` (default: environment and config file); starts the supervisor
    thread unless ``settings.run_jobs`` is false. Creates the first admin when there is none.

    ``password_hasher``: a cheaper argon2 for tests. ``without_auth_for_benchmark``: every request acts
    as the admin, unchecked, for bench/auth_overhead.py to measure what checking costs; it is a
    Python argument only, on purpose: no setting, variable or file can turn authentication off.
    """
    settings = settings or load_settings()
    private_dir(settings.home)
    private_dir(settings.jobs_dir)
    app = Flask(__name__)
    app.json = CheckedJSONProvider(app)
    app.url_map.converters["int"] = JobIdConverter  # before the blueprints' rules are built
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json.sort_keys = False
    store = Store(settings.db_url)
    accounts = Accounts(store, token_key(settings.home), password_hasher)
    admin = bootstrap(accounts, store, settings.home, settings.admin_password)
    supervisor = Supervisor(settings, store)
    dataset_store = DatasetStore(settings, store)
    dataset_store.make_dirs()
    dataset_store.empty_trash()
    checker = ComponentChecker(settings.component_check, settings.repo_root) if settings.component_check else None
    services = Services(settings, store, supervisor, accounts, admin, settings.allowed_hosts or default_allowed_hosts(),
                        Pipeline(dataset_store), checker)
    if without_auth_for_benchmark:
        services.without_auth = accounts.caller(accounts.user(admin).id)
    app.extensions["cauchy"] = services
    app.extensions[LIMITS_KEY] = UserLimits(settings, store)
    app.extensions[datasets.DATASETS_KEY] = dataset_store
    seam.install(app, session_key(settings.home))
    register_error_handlers(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(sharing.bp)
    app.register_blueprint(jobs.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(legacy.bp)
    app.register_blueprint(weights.bp)
    app.register_blueprint(frontdoor.bp)
    app.register_blueprint(datasets.bp)
    app.register_blueprint(deployments.bp)
    app.register_blueprint(nodes.bp)
    if settings.run_jobs:
        supervisor.start()
        services.datasets_pipeline.recover()
        services.datasets_pipeline.start_expiry()
    if checker is not None:
        checker.start()
    return app


def waitress_options(settings: Settings) -> dict:
    """Waitress settings: ``Settings.request_threads`` threads (it says why so many). Its default limit of 100
    connections stalls every client once reached (100 simultaneous submissions hung for minutes), so the
    limit is higher and poll() replaces select().
    Flask answers a too-large body with a JSON 413; waitress's own, plain-text limit is a backstop.
    nginx on this machine says whether the browser came over https (the session cookie is then Secure).
    Bodies are read from the socket in 256 KiB pieces (waitress's default, 8 KiB, made a dataset chunk of
    16 MiB cost 2048 turns of its event loop); a body past 512 KiB is spooled to a temporary file, never
    held in memory."""
    return {"threads": settings.request_threads, "connection_limit": settings.connection_limit, "asyncore_use_poll": True,
            "max_request_body_size": max(4 * settings.max_request_bytes, 2 * settings.dataset_chunk_mb * 2**20),
            "recv_bytes": 256 * 1024, "ident": "cauchy",
            "trusted_proxy": "127.0.0.1", "trusted_proxy_headers": {"x-forwarded-proto"},
            "channel_request_lookahead": 1}  # lets a waiting request see that its client went away


def serve(settings: Settings | None = None) -> None:
    """Run the service under waitress until interrupted; running jobs are left to the next start."""
    from waitress import serve as waitress_serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings or load_settings()
    app = create_app(settings)
    svc = app.extensions["cauchy"]
    write_pid(settings.home)
    install_handler()
    log.info("%s", LEAVES_JOBS)
    try:
        waitress_serve(app, host=settings.host, port=settings.port, **waitress_options(settings))
        log.info("%s", LEAVES_JOBS)
    except ShutdownRequested:
        stopped = stop_everything(svc, timeout=settings.stop_grace_s + 30)
        log.info("cauchy shutdown: stopped jobs %s and every viewer", stopped)
    finally:
        svc.close()
        remove_pid(settings.home)
