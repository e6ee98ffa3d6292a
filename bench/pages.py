"""Render time of the execution detail page (and its live partial) at 1,000 servers.

Sets up its own SQLite database in a temporary directory, migrates it, creates one
execution of 1,000 servers in 3 waves, renders the pages with Django's test client and
prints the median and p95 in milliseconds as JSON.

    .venv/bin/python bench/pages.py [--servers 1000] [--runs 15]
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--waves", type=int, default=3)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="drsorch-bench-pages-")
    os.environ["DJANGO_SETTINGS_MODULE"] = "drsorch.test_settings"
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir}/bench.sqlite3"
    os.environ.pop("DRSORCH_SANDBOX_DATABASE_URL", None)

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_test_environment

    settings.ALLOWED_HOSTS = ["testserver"]
    setup_test_environment()
    call_command("migrate", verbosity=0)
    call_command("migrate", database="sandbox", verbosity=0)

    from django.contrib.auth.models import Group, User
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import build_execution

    user = User.objects.create_user("bench", password="pw")
    user.groups.add(Group.objects.get(name="Operator"))
    execution = build_execution(servers=args.servers, waves=args.waves)
    client = Client()
    client.force_login(user)

    results = {"servers": args.servers, "waves": args.waves, "runs": args.runs}
    for name, url in [("detail", execution.get_absolute_url()),
                      ("live_partial", f"/executions/{execution.pk}/live/"),
                      ("report", f"/executions/{execution.pk}/report/")]:
        client.get(url)
        timings = []
        for _ in range(args.runs):
            started = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.status_code
        with CaptureQueriesContext(connection) as queries:
            client.get(url)
        timings.sort()
        results[name] = {
            "median_ms": round(statistics.median(timings), 1),
            "p95_ms": round(timings[min(len(timings) - 1, int(round(0.95 * (len(timings) - 1))))], 1),
            "queries": len(queries),
            "bytes": len(response.content),
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
