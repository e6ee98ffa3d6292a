from django.apps import AppConfig


class ExecutionsConfig(AppConfig):
    """Executions of recovery plans, the engine that drives them and the poller."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "executions"
    verbose_name = "Executions"

    def ready(self):
        """Start a poller whenever a django-q2 worker process starts (executions/poller.py)."""
        from django_q.signals import post_spawn

        from .poller import poller_start_on_worker_spawn

        post_spawn.connect(poller_start_on_worker_spawn, dispatch_uid="executions.poller_start")
