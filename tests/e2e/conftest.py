"""What every browser test shares: headless Chromium (Debian's, driven by Playwright) on the
live server, a background thread that drives the engine as the django-q2 worker would, and
screenshots in $ARTIFACTS (default artifacts/, tests/e2e/support.py)."""

import os
import threading
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in the test's thread; Django's ORM calls made from
# the test itself are still synchronous.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (make test-e2e installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


@pytest.fixture
def engine_driver():
    """Tick the engine every 0.5 s in a background thread until stopped; the exceptions it
    met, for the test to assert none."""
    from django.db import connections

    from executions import engine
    from executions.tasks import launch_budget_seconds

    stop = threading.Event()
    errors = []

    def run():
        try:
            while not stop.is_set():
                engine.tick(launch_budget_seconds=launch_budget_seconds())
                stop.wait(0.5)
        except Exception as exc:  # surfaced by the test, not lost in the thread
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name="engine-driver", daemon=True)
    thread.start()
    yield errors
    stop.set()
    thread.join(timeout=10)
