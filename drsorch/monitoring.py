"""/metrics and /healthz: thin views over drsorch.metrics and drsorch.health. No login.

/metrics is open unless DRSORCH_METRICS_TOKEN is set; then it requires
`Authorization: Bearer <token>` (compared in constant time) and answers 401 otherwise.
"""

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from drsorch import health, metrics


def _bearer_token_ok(request: HttpRequest, expected: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Every drsorch_ metric in Prometheus' text format, read from the database now."""
    token = settings.DRSORCH_METRICS_TOKEN
    if token and not _bearer_token_ok(request, token):
        response = HttpResponse("401 Unauthorized: /metrics requires 'Authorization: Bearer <token>' "
                                "(DRSORCH_METRICS_TOKEN).\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="drsorch metrics"'
        return response
    return HttpResponse(metrics.render(), content_type=CONTENT_TYPE_LATEST)


@never_cache
@require_GET
def healthz_view(request: HttpRequest) -> JsonResponse:
    """The health report as JSON: 200 when ok or degraded, 503 when down."""
    report = health.health_report()
    return JsonResponse(report, status=503 if report["status"] == health.DOWN else 200)


class MetricsFlushMiddleware:
    """Stores what this process counted (DRS calls of a readiness check or an inventory sync)
    at the end of a request that writes anyway (POST, PUT, PATCH, DELETE), while its database
    connection is still open. A read (GET, HEAD) writes nothing: what it counted waits for the
    next writing request or scrape this process answers."""

    SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Answer the request, then flush this process's pending metrics after a writing request."""
        response = self.get_response(request)
        if request.method not in self.SAFE_METHODS and metrics.has_pending():
            metrics.flush()
        return response
