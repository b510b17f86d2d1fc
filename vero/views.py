"""Pages that belong to no single app: the health check, the favicon, the CSRF refusal, the
service worker and the app shell it keeps for offline use."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import uuid
from functools import cache

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.staticfiles.finders import FileSystemFinder
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.shortcuts import render
from django.template.loader import get_template
from django.templatetags.static import static
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_GET, require_safe

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


# What the service worker keeps for the app shell: the project's own static files (the layout's
# scripts, styles, icons and vendored libraries), never an app's admin assets.
SHELL_STATIC_PREFIXES = ("js/", "css/", "img/", "vendor/")


@cache
def _shell_assets() -> tuple[str, ...]:
    """The URLs of the shell's static files, as pages name them (hashed once collected).

    ES modules import each other by their plain names, so both names are kept when they differ.
    Cached per process: static files change only with a deploy, which restarts the process.
    """
    urls: set[str] = set()
    for path, _storage in FileSystemFinder().list([]):
        name = path.replace("\\", "/")
        if name.startswith(SHELL_STATIC_PREFIXES) and not name.endswith((".md", ".map")):
            urls.add(settings.STATIC_URL + name)
            with contextlib.suppress(ValueError):  # not collected: only its plain name is served
                urls.add(static(name))
    return tuple(sorted(urls))


def _shell_version(assets: tuple[str, ...]) -> str:
    """A version that changes with the assets' names and the shell's template, so a deploy
    installs a new worker (and drops the old cache) while an unchanged one is left alone."""
    digest = hashlib.sha256("\n".join(assets).encode())
    for name in ("shell.html", "base.html"):
        digest.update(get_template(name).template.source.encode())  # type: ignore[attr-defined]
    return digest.hexdigest()[:16]


@require_GET
def service_worker(request: VeroRequest) -> HttpResponse:
    """The service worker, at the root so that its scope is the whole site.

    Served by a view (not as a static file) for that scope and for the list of assets it
    caches, which names the files as this deploy does. `no-cache`: the browser checks for a
    new worker at every navigation instead of keeping an old one for a day.
    """
    assets = _shell_assets()
    context = {"assets_json": json.dumps(list(assets)), "version": _shell_version(assets)}
    response = render(request, "sw.js", context, content_type="text/javascript")
    response["Service-Worker-Allowed"] = "/"
    response["Cache-Control"] = "no-cache"
    return response


@require_safe
def app_shell(request: VeroRequest) -> HttpResponse:
    """The layout without any user data, which the service worker opens when offline.

    Cached by the service worker, so it must hold nothing of the person who fetched it: no
    chats, no name, no CSRF token, no flash messages (templates/shell.html overrides them all).
    """
    response = render(request, "shell.html")
    response["Cache-Control"] = "no-store"
    return response
