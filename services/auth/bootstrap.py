"""The first start: an admin when none exists, and the admin owns what was made before users existed."""
from __future__ import annotations

import logging
import secrets
import sys
from pathlib import Path

from sqlalchemy import update

from services.auth import access
from services.auth.accounts import Accounts
from services.auth.identity import ADMIN
from services.auth.secrets import ADMIN_PASSWORD_FILE, write_private
from services.jobs.store import Job, Store
from services.weights_store import adopt_unowned, weights_dir

ADMIN_NAME = "admin"
log = logging.getLogger("cauchy.auth")


def ensure_admin(accounts: Accounts, home: Path, password: str = "") -> str:
    """The admin's name; creates ``admin`` when there is no admin, with ``password`` or a generated one
    that is printed once and written to ``$CAUCHY_HOME/admin_password`` (0600)."""
    name = accounts.admin_name()
    if name is not None:
        return name
    generated = not password
    password = password or secrets.token_urlsafe(15)
    accounts.create_user(ADMIN_NAME, password, ADMIN, "Administrator")
    if generated:
        path = home / ADMIN_PASSWORD_FILE
        path.unlink(missing_ok=True)  # a file of an earlier admin would mislead
        write_private(path, (password + "\n").encode())
        print(f"Cauchy: created the admin user '{ADMIN_NAME}' with password {password}\n"
              f"  (also in {path}, mode 0600; change it with `cauchy user passwd {ADMIN_NAME}`)",
              file=sys.stderr, flush=True)
    else:
        log.info("created the admin user %r with the password of CAUCHY_ADMIN_PASSWORD", ADMIN_NAME)
    return ADMIN_NAME


def adopt_unowned_jobs(store: Store, admin: str) -> int:
    """Jobs from before users existed (no visibility yet) become the admin's, private."""
    with store.session() as session:
        query = update(Job).where(Job.visibility.is_(None)).values(user=admin, visibility=access.JOB_DEFAULT)
        return session.execute(query).rowcount


def bootstrap(accounts: Accounts, store: Store, home: Path, password: str = "") -> str:
    """Run at every start (idempotent); returns the admin's name."""
    admin = ensure_admin(accounts, home, password)
    jobs = adopt_unowned_jobs(store, admin)
    weights = adopt_unowned(weights_dir(home), admin)
    if jobs or weights:
        log.info("gave %d jobs and %d weights made before users existed to %r", jobs, weights, admin)
    return admin
