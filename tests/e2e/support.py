"""Helpers of the browser tests (their fixtures are in conftest.py)."""

import os
from pathlib import Path

ARTIFACTS = Path(os.environ.get("ARTIFACTS", "artifacts"))


def shot(page, name: str) -> None:
    """A full-page screenshot, ARTIFACTS/<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
