from django.apps import AppConfig


class DrsorchConfig(AppConfig):
    """The project's shared core (web mixins, roles, template tags, metrics and health) and its
    project-wide commands (bootstrap, setup_schedules, sandbox)."""

    name = "drsorch"
    label = "drsorch"
    verbose_name = "drsorch"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        """A django-q2 task that counted DRS calls (an inventory sync) stores them when it ends."""
        from django_q.signals import post_execute_in_worker

        post_execute_in_worker.connect(_flush_after_task, dispatch_uid="drsorch-metrics-flush-after-task")


def _flush_after_task(**_):
    from drsorch import metrics

    if metrics.has_pending():
        metrics.flush()
