"""The account pages allauth does not provide (preferences) or that replace one of its own."""

from django.urls import path

from accounts import views

urlpatterns = [
    path("settings/", views.preferences, name="preferences"),
    # In place of allauth's own (vero/urls.py includes these first).
    path("accounts/email/", views.email, name="account_email"),
]
