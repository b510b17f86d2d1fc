from django.urls import path

from accounts import views

urlpatterns = [
    path("settings/", views.preferences, name="preferences"),
]
