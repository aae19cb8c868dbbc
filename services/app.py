"""The control service: ``create_app(settings)`` builds it; ``serve`` runs it under waitress."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Flask

from services.api import frontdoor, jobs, legacy, openapi, weights
from services.api.errors import JobIdConverter, register_error_handlers
from services.api.jsonbody import CheckedJSONProvider
from services.api.limits import LIMITS_KEY, UserLimits
from services.config import Settings, load_settings
from services.jobs.store import Store
from services.jobs.supervisor import Supervisor


@dataclass
class Services:
    """What the blueprints share, kept in ``app.extensions["cauchy"]``."""

    settings: Settings
    store: Store
    supervisor: Supervisor


def create_app(settings: Settings | None = None) -> Flask:
    """The Flask app over ``settings`` (default: environment and config file); starts the supervisor
    thread unless ``settings.run_jobs`` is false."""
    settings = settings or load_settings()
    settings.jobs_dir.mkdir(parents=True, exist_ok=True)
    app = Flask(__name__)
    app.json = CheckedJSONProvider(app)
    app.url_map.converters["int"] = JobIdConverter  # before the blueprints' rules are built
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json.sort_keys = False
    store = Store(settings.db_url)
    supervisor = Supervisor(settings, store)
    app.extensions["cauchy"] = Services(settings, store, supervisor)
    app.extensions[LIMITS_KEY] = UserLimits(settings, store)
    register_error_handlers(app)
    app.register_blueprint(jobs.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(legacy.bp)
    app.register_blueprint(weights.bp)
    app.register_blueprint(frontdoor.bp)
    if settings.run_jobs:
        supervisor.start()
    return app


def waitress_options(settings: Settings) -> dict:
    """Waitress settings. Its default limit of 100 connections stalls every client once reached (100
    simultaneous submissions hung for minutes), so the limit is higher and poll() replaces select().
    Flask answers a too-large body with a JSON 413; waitress's own, plain-text limit is a backstop."""
    return {"threads": settings.threads, "connection_limit": settings.connection_limit, "asyncore_use_poll": True,
            "max_request_body_size": 4 * settings.max_request_bytes, "ident": "cauchy",
            "channel_request_lookahead": 1}  # lets a waiting request see that its client went away


def serve(settings: Settings | None = None) -> None:
    """Run the service under waitress until interrupted; running jobs are left to the next start."""
    from waitress import serve as waitress_serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings or load_settings()
    app = create_app(settings)
    try:
        waitress_serve(app, host=settings.host, port=settings.port, **waitress_options(settings))
    finally:
        app.extensions["cauchy"].supervisor.shutdown()
