from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.views import defaults
from django.views.decorators.cache import never_cache

from loyalty.core.api import error_body


@never_cache
def healthz(request):
    """For load balancers and orchestrators: 200 when the database and the cache answer, else 503."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not healthy"; say which
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        cache.set("healthz", "ok", 5)
        checks["cache"] = "ok" if cache.get("healthz") == "ok" else "error: no round trip"
    except Exception as exc:
        checks["cache"] = f"error: {exc.__class__.__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(checks, status=200 if healthy else 503)


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def page_not_found(request, exception):
    """handler404: the API's one error format under /api/ (a mistyped URL, a purchase id that is not a
    number); the site's page elsewhere."""
    if _is_api(request):
        message = _("There is no such API address: check the path against /api/docs/.")
        return JsonResponse(error_body("not_found", message), status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """handler500: a failure on our side, in the API's format under /api/ (the error is logged)."""
    if _is_api(request):
        message = _("Something went wrong on our side. Nothing was recorded; try again with the same Idempotency-Key.")
        return JsonResponse(error_body("server_error", message), status=500)
    return defaults.server_error(request)
