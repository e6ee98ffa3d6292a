"""Settings read from the environment: production posture and the sandbox database."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_settings(**env):
    """Import drsorch.settings in a fresh interpreter with exactly these variables."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "SECRET_KEY", "DATABASE_URL", "DRSORCH_SANDBOX_DATABASE_URL", "REDIS_URL"}
    }
    clean.update(env)
    code = (
        "import json, drsorch.settings as s; print(json.dumps({'sandbox': s.DATABASES['sandbox'], "
        "'default': s.DATABASES['default'], 'q': s.Q_CLUSTER, 'secure': getattr(s, 'SESSION_COOKIE_SECURE', None)},"
        " default=str))"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True)


def test_production_refuses_to_start_without_secret_key(tmp_path):
    result = load_settings(DEBUG="false", DOTENV="none")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is false" in result.stderr


def test_production_posture_with_secret_key():
    import json

    result = load_settings(DEBUG="false", SECRET_KEY="x" * 50)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["secure"] is True


def test_sandbox_database_is_a_sibling_sqlite_file():
    import json

    result = load_settings(DEBUG="true", DATABASE_URL="sqlite:////data/drsorch.sqlite3")
    config = json.loads(result.stdout)
    assert config["sandbox"]["NAME"] == "/data/drsorch-sandbox.sqlite3"
    assert config["default"]["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in config["default"]["OPTIONS"]["init_command"]


def test_sandbox_database_shares_postgres_through_a_second_connection():
    import json

    result = load_settings(DEBUG="true", DATABASE_URL="postgres://u:p@127.0.0.1:5432/dr")
    config = json.loads(result.stdout)
    assert config["sandbox"]["NAME"] == config["default"]["NAME"] == "dr"
    assert config["sandbox"]["TEST"]["NAME"] == "test_dr_sandbox"
    assert config["default"]["ENGINE"] == "django.db.backends.postgresql"


def test_redis_broker_when_redis_url_is_set():
    import json

    result = load_settings(DEBUG="true", REDIS_URL="redis://127.0.0.1:6379/0")
    q = json.loads(result.stdout)["q"]
    assert q["redis"] == "redis://127.0.0.1:6379/0" and "orm" not in q
    q = json.loads(load_settings(DEBUG="true").stdout)["q"]
    assert q["orm"] == "default"


def test_drs_concurrency_below_one_refuses_to_start_naming_the_variable():
    result = load_settings(DEBUG="true", DRSORCH_DRS_CONCURRENCY="0")
    assert result.returncode != 0
    assert "DRSORCH_DRS_CONCURRENCY must be at least 1, not 0." in result.stderr
