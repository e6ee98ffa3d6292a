"""Settings for the test suite: the real settings with a fixed test key and fast hashing."""

import os

os.environ.setdefault("SECRET_KEY", "drsorch-test-suite-key-not-secret-0123456789abcdefghijklmnop")
os.environ.setdefault("DRSORCH_SANDBOX_LAUNCH_SECONDS", "20")

from .settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
WHITENOISE_AUTOREFRESH = True
# Tasks enqueued by services are not run by a worker in tests; tests drive the engine.
Q_CLUSTER = {**Q_CLUSTER, "sync": False}  # noqa: F405
