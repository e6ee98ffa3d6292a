"""The notification settings read from the environment: EMAIL_URL, DEFAULT_FROM_EMAIL,
DRSORCH_WEBHOOK_ALLOW_PRIVATE and DRSORCH_BASE_URL."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
NAMES = ["EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD", "EMAIL_USE_TLS",
         "DEFAULT_FROM_EMAIL", "DRSORCH_WEBHOOK_ALLOW_PRIVATE", "DRSORCH_BASE_URL"]


def settings_with(**env):
    clean = {k: v for k, v in os.environ.items() if k not in {"EMAIL_URL", "DEFAULT_FROM_EMAIL",
                                                                "DRSORCH_WEBHOOK_ALLOW_PRIVATE", "DRSORCH_BASE_URL"}}
    clean.update(DEBUG="true", **env)
    code = f"import json, drsorch.settings as s; print(json.dumps({{n: getattr(s, n, None) for n in {NAMES!r}}}))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_defaults_print_mail_and_refuse_private_webhooks():
    values = settings_with()
    assert values["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"
    assert values["DRSORCH_WEBHOOK_ALLOW_PRIVATE"] is False
    assert values["DEFAULT_FROM_EMAIL"] == "drsorch <drsorch@localhost>"
    assert values["DRSORCH_BASE_URL"] == "http://127.0.0.1:8000"


def test_smtp_from_email_url():
    values = settings_with(EMAIL_URL="smtp+tls://alerts:pa%40ss@smtp.example.com:587",
                           DEFAULT_FROM_EMAIL="DR <dr@example.com>", DRSORCH_WEBHOOK_ALLOW_PRIVATE="true",
                           DRSORCH_BASE_URL="https://dr.example.com")
    assert values["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (values["EMAIL_HOST"], values["EMAIL_PORT"], values["EMAIL_USE_TLS"]) == ("smtp.example.com", 587, True)
    assert (values["EMAIL_HOST_USER"], values["EMAIL_HOST_PASSWORD"]) == ("alerts", "pa@ss")
    assert values["DEFAULT_FROM_EMAIL"] == "DR <dr@example.com>"
    assert values["DRSORCH_WEBHOOK_ALLOW_PRIVATE"] is True
    assert values["DRSORCH_BASE_URL"] == "https://dr.example.com"
