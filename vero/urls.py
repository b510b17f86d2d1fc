"""The site's URL map: the project's own pages, the admin, allauth and each app's URLs."""

from django.contrib import admin
from django.urls import include, path

from vero import views

admin.site.site_header = "Vero administration"
admin.site.site_title = "Vero admin"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("sw.js", views.service_worker, name="service_worker"),
    path("shell", views.app_shell, name="app_shell"),
    path("admin/", admin.site.urls),
    # Ours first: accounts.urls replaces one of allauth's pages (/accounts/email/).
    path("", include("accounts.urls")),
    path("accounts/", include("allauth.urls")),
    path("", include("models_registry.urls")),
    path("", include("chats.urls")),
    path("", include("byok.urls")),
    path("", include("archive.urls")),
    path("", include("realtime.urls")),
]
