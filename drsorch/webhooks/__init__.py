"""Calling webhooks safely, for whoever sends them (notifications, wave actions): the URL
check that refuses private and link-local addresses (addresses.py) and the signed POST to the
very address that was checked (sending.py).

Plumbing below the apps: it imports none of them."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Sent:
    """What one attempt came to: whether it was delivered, the HTTP status (webhooks) and why not."""

    ok: bool
    status_code: int | None = None
    error: str = ""
