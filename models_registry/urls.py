from django.urls import path

from models_registry import api

urlpatterns = [
    path("api/models", api.model_list, name="api-models"),
]
