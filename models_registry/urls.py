"""The registry's JSON API: the models the current user may pick."""

from django.urls import path

from models_registry import api

urlpatterns = [
    path("api/models", api.model_list, name="api-models"),
]
