"""Sending one notification through its channel: webhook (webhook.py), email (email.py) and
SNS (sns.py). Each sender returns a `Sent` and never raises for a delivery failure."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Sent:
    """What one attempt came to: whether it was delivered, the HTTP status (webhooks) and why not."""

    ok: bool
    status_code: int | None = None
    error: str = ""
