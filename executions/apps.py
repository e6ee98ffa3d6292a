from django.apps import AppConfig


class ExecutionsConfig(AppConfig):
    """Executions of recovery plans, the engine that drives them and the poller."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "executions"
    verbose_name = "Executions"
