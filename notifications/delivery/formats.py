"""The documents a webhook receives: drsorch's JSON payload, a Slack incoming-webhook message
(text and blocks) or a Microsoft Teams message with an Adaptive Card."""

from ..choices import WebhookFormat
from .summary import summarize


def slack_message(payload: dict) -> dict:
    """A Slack incoming-webhook message: `text` (the notification's fallback) and `blocks`."""
    summary = summarize(payload)
    facts = [(label, value) for label, value in summary.facts if label != "Link"]
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": summary.title[:150]}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{label}*\n{value}"[:2000]}
                                       for label, value in facts[:10]]},
    ]
    if summary.link:
        blocks.append({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Open in drsorch"}, "url": summary.link}
        ]})
    return {"text": summary.title, "blocks": blocks}


def teams_message(payload: dict) -> dict:
    """A Microsoft Teams incoming-webhook message carrying one Adaptive Card."""
    summary = summarize(payload)
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": summary.title, "weight": "Bolder", "size": "Medium", "wrap": True},
            {"type": "FactSet", "facts": [{"title": label, "value": value}
                                          for label, value in summary.facts if label != "Link"]},
        ],
    }
    if summary.link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open in drsorch", "url": summary.link}]
    return {
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
                         "content": card}],
    }


def webhook_document(webhook_format: str, payload: dict) -> dict:
    """What a webhook of `webhook_format` is sent for `payload` (with sent_at)."""
    if webhook_format == WebhookFormat.SLACK:
        return slack_message(payload)
    if webhook_format == WebhookFormat.TEAMS:
        return teams_message(payload)
    return payload
