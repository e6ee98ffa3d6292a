"""Settings for the test suite: the real settings with a fixed test key and fast hashing."""

import os

os.environ.setdefault("SECRET_KEY", "drsorch-test-suite-key-not-secret-0123456789abcdefghijklmnop")
os.environ.setdefault("DRSORCH_SANDBOX_LAUNCH_SECONDS", "20")

from .settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
WHITENOISE_AUTOREFRESH = True
# Tasks enqueued by services are not run by a worker in tests; tests drive the engine.
Q_CLUSTER = {**Q_CLUSTER, "sync": False}  # noqa: F405

# SQLite test databases live in files, not shared memory, so the suite exercises what
# production uses (WAL, busy timeout, IMMEDIATE transactions) and concurrency tests can
# run real threads against one database. pytest-xdist adds a per-worker suffix.
import tempfile  # noqa: E402

for _alias, _config in DATABASES.items():  # noqa: F405
    if _config["ENGINE"] == "django.db.backends.sqlite3":
        _config["TEST"] = {"NAME": os.path.join(tempfile.gettempdir(), f"drsorch-test-{os.getpid()}-{_alias}.sqlite3")}
