from django.apps import AppConfig


class ExecutionsConfig(AppConfig):
    """Executions of recovery plans, the engine that drives them and the poller."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "executions"
    verbose_name = "Executions"

    def ready(self):
        """Give the core what only executions knows (its /metrics gauges, whether work waits
        for the poller for /healthz, a log line per status change), and start a poller whenever
        a django-q2 worker process starts (executions/poller.py)."""
        from django_q.signals import post_spawn

        from drsorch import health, metrics

        from . import metrics as execution_metrics
        from . import signals, status_log
        from .poller import poller_start_on_worker_spawn

        metrics.register_collector(execution_metrics.collect_execution_metrics)
        health.register_work_check(execution_metrics.executions_need_work)
        signals.execution_status_changed.connect(status_log.log_execution_status, dispatch_uid="executions-status-log")
        signals.wave_status_changed.connect(status_log.log_wave_status, dispatch_uid="executions-wave-status-log")
        post_spawn.connect(poller_start_on_worker_spawn, dispatch_uid="executions.poller_start")
