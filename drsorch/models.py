"""The core's own rows: the metrics the worker records for /metrics (drsorch.metrics)."""

from django.db import models
from django.utils import timezone


class MetricSample(models.Model):
    """One series of a metric, as the processes that counted it added it up.

    The worker is another process (possibly on another host) than the web server that
    answers /metrics, and a process's memory is lost on restart; so counters live here and
    every process adds its own increments in one upsert (`drsorch.metrics.flush`). A
    `counter` row is added to; a `latest` row (the poller's last tick) is overwritten.
    """

    COUNTER = "counter"
    LATEST = "latest"
    KIND_CHOICES = [(COUNTER, "Counter (added to)"), (LATEST, "Latest value (overwritten)")]

    name = models.CharField(max_length=100)
    # The labels as canonical JSON (sorted keys, no spaces): one row per series.
    labels = models.CharField(max_length=255, default="{}")
    kind = models.CharField(max_length=8, choices=KIND_CHOICES, default=COUNTER)
    value = models.FloatField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "labels"], name="metric_sample_series_unique")]

    def __str__(self):
        return f"{self.name}{self.labels} = {self.value}"
