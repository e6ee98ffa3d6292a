"""Shared by the benchmarks: a fresh, migrated SQLite database in a temporary folder."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_django(folder):
    """Point Django at `folder`/bench.sqlite3 (and its sandbox sibling), set it up, migrate both."""
    os.environ.update({
        "DEBUG": "true",
        "DATABASE_URL": f"sqlite:///{folder}/bench.sqlite3",
        "DJANGO_SETTINGS_MODULE": "drsorch.settings",
        "LOG_LEVEL": "WARNING",
    })
    os.environ.pop("DRSORCH_SANDBOX_DATABASE_URL", None)
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    call_command("migrate", database="sandbox", verbosity=0)
