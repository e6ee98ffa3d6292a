"""drill.overdue: once a day (UTC) for each plan whose last successful drill is older than its
`drill_max_age_days` (plans.selectors.DrillAge decides; a plan never drilled successfully
counts from its creation).

Each notice is recorded as a `PlanOverdueNotice` row (unique per plan and day) in the same
transaction that sends the event, so running the watch many times a day, in several workers
at once, sends it once, and the record shows what was sent when, even without any
notification channel."""

import logging
from datetime import UTC, datetime

from django.db import IntegrityError, transaction

from executions.notable import DRILL_OVERDUE, NotableEvent, notable_events_send
from plans.models import PlanOverdueNotice, RecoveryPlan
from plans.selectors import plan_drill_age, plans_with_drill_age

logger = logging.getLogger(__name__)


def overdue_dedupe_key(*, plan_id: int, now: datetime) -> str:
    """The key that makes a drill.overdue notice once a day per channel."""
    return f"{DRILL_OVERDUE}:{plan_id}:{now.astimezone(UTC).date().isoformat()}"


def plans_overdue_notify(*, now: datetime) -> list[int]:
    """Send drill.overdue for every OVERDUE plan not yet told about today (UTC); returns the
    ids of the plans notified now. One plan failing is logged and does not stop the others."""
    day = now.astimezone(UTC).date()
    plans = plans_with_drill_age(RecoveryPlan.objects.filter(drill_max_age_days__isnull=False)).order_by("name")
    sent = []
    for plan in plans:
        age = plan_drill_age(plan, now=now)
        if age is None or not age.overdue:
            continue
        details = {"plan": {"id": plan.pk, "name": plan.name}, **age.as_json()}
        try:
            with transaction.atomic():
                try:
                    with transaction.atomic():
                        PlanOverdueNotice.objects.create(plan=plan, day=day, sent_at=now, details=details)
                except IntegrityError:
                    continue  # already told today (another run, or another worker right now)
                notable_events_send(
                    [
                        NotableEvent(
                            event=DRILL_OVERDUE,
                            plan_id=plan.pk,
                            details=details,
                            dedupe_key=overdue_dedupe_key(plan_id=plan.pk, now=now),
                        )
                    ]
                )
        except Exception:
            logger.exception("The drill.overdue notice of plan %s failed", plan.name)
            continue
        logger.info("Plan %s is OVERDUE (%s): drill.overdue sent", plan.name, details)
        sent.append(plan.pk)
    return sent
