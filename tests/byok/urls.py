"""Vero's URLs plus byok's, for tests, until vero/urls.py includes `byok.urls` itself."""

from django.urls import include, path

from vero.urls import urlpatterns as vero_urlpatterns

urlpatterns = [path("", include("byok.urls")), *vero_urlpatterns]
