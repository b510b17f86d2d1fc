"""The Keys & endpoints page and its actions (one URL per action)."""

from django.urls import path

from byok import views

urlpatterns = [
    path("settings/keys/", views.byok_settings, name="byok_settings"),
    path("settings/keys/provider", views.key_set, name="byok_key_set"),
    path("settings/keys/provider/<str:provider>/delete", views.key_delete, name="byok_key_delete"),
    path("settings/keys/provider/<str:provider>/test", views.key_test, name="byok_key_test"),
    path("settings/keys/provider/<str:provider>/models", views.key_models, name="byok_key_models"),
    path("settings/keys/endpoints", views.endpoint_create, name="byok_endpoint_create"),
    path(
        "settings/keys/endpoints/<slug:slug>/delete",
        views.endpoint_delete,
        name="byok_endpoint_delete",
    ),
    path(
        "settings/keys/endpoints/<slug:slug>/test", views.endpoint_test, name="byok_endpoint_test"
    ),
    path(
        "settings/keys/endpoints/<slug:slug>/models",
        views.endpoint_models,
        name="byok_endpoint_models",
    ),
    path(
        "settings/keys/models/<int:model_pk>/delete", views.model_delete, name="byok_model_delete"
    ),
]
