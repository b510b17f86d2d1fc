"""WebSocket routes: the realtime socket (realtime/consumers.py)."""

from typing import Any

from django.urls import path

from realtime.consumers import EventsConsumer

websocket_urlpatterns: list[Any] = [path("ws/", EventsConsumer.as_asgi())]
