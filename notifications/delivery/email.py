"""Send a notification by email (Django's mail, EMAIL_URL): a text and an HTML part, the
subject naming the plan, the event and the RTO verdict, and the execution's link."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from . import Sent
from .summary import summarize

SUBJECT_PREFIX = "[drsorch] "


def send(*, address: str, payload: dict) -> Sent:
    """Mail `payload` to `address`; delivered once the mail server accepted it."""
    summary = summarize(payload)
    context = {"summary": summary, "payload": payload}
    message = EmailMultiAlternatives(
        subject=(SUBJECT_PREFIX + summary.title)[:250],
        body=render_to_string("notifications/email/notification.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[address],
    )
    message.attach_alternative(render_to_string("notifications/email/notification.html", context), "text/html")
    try:
        message.send(fail_silently=False)
    except Exception as exc:  # smtplib, socket and backend errors alike: the attempt failed
        return Sent(ok=False, error=f"{type(exc).__name__}: {exc}"[:1000])
    return Sent(ok=True)
