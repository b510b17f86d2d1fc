"""Pages that belong to no single app: the health check, the favicon, the CSRF refusal."""

from __future__ import annotations

import logging
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_GET

from vero.http import VeroRequest

logger = logging.getLogger(__name__)


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        logger.exception("healthz: database check failed")
        return False


async def _channel_layer_roundtrip() -> bool:
    layer = get_channel_layer()
    if layer is None:
        return False
    channel = await layer.new_channel("healthz.")
    token = uuid.uuid4().hex
    await layer.send(channel, {"type": "healthz.ping", "token": token})
    message = await layer.receive(channel)
    return message.get("token") == token


def _channel_layer_ok() -> bool:
    try:
        return async_to_sync(_channel_layer_roundtrip)()
    except Exception:
        logger.exception("healthz: channel layer check failed")
        return False


@never_cache
@require_GET
def healthz(request: VeroRequest) -> JsonResponse:
    """Report whether the database and the channel layer answer; 503 when either does not."""
    checks = {
        "database": "ok" if _database_ok() else "error",
        "channel_layer": "ok" if _channel_layer_ok() else "error",
    }
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503
    )


@cache_control(max_age=86400, public=True)
@require_GET
def favicon(request: VeroRequest) -> HttpResponsePermanentRedirect:
    """Point `/favicon.ico` at the static icon.

    Browsers ask for it on pages that name no icon (the JSON health check, for one). Left to the
    404 page, that request rendered a page with a CSRF token and, racing the page the user was
    on, could replace the CSRF cookie that page's forms were signed with.
    """
    return HttpResponsePermanentRedirect(static("img/favicon.svg"))


# Tells the page's script that a request was refused for its CSRF token (static/js/requests.js
# retries it once with the token the cookie holds now).
CSRF_FAILURE_HEADER = "Vero-CSRF-Failure"


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Explain a refused form in words (CSRF_FAILURE_VIEW), not with Django's debugging page.

    Rendering the page hands out a token (and its cookie, when there was none), so trying
    again works.
    """
    logger.info("CSRF refusal: %s", reason)
    response = render(request, "403_csrf.html", status=403)
    response[CSRF_FAILURE_HEADER] = "1"
    return response
