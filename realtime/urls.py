"""The browser cache's endpoints (docs/realtime.md)."""

from django.urls import path

from realtime import api

urlpatterns = [
    path("api/cache/sync", api.cache_sync, name="cache_sync"),
    path("api/cache/key", api.cache_key, name="cache_key"),
]
