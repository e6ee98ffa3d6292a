"""Sending one notification through its channel: webhook (drsorch.webhooks.sending), email (email.py) and
SNS (sns.py). Each sender returns a `Sent` and never raises for a delivery failure."""

from drsorch.webhooks import Sent

__all__ = ["Sent"]
