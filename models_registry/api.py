"""JSON API of the model registry: the models the current user may pick."""

from __future__ import annotations

from typing import Any, cast

from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from accounts.selectors import actor_get
from models_registry.selectors import (
    model_default_id,
    models_grouped_by_creator,
    models_usable_for_user,
)
from vero.http import VeroRequest


class _CapabilitiesOut(serializers.Serializer[Any]):
    input_modalities = serializers.ListField(child=serializers.CharField())
    tools = serializers.BooleanField(source="supports_tools")
    reasoning = serializers.BooleanField(source="supports_reasoning")
    context_window = serializers.IntegerField(allow_null=True)
    max_output_tokens = serializers.IntegerField(allow_null=True)


class _ModelOut(serializers.Serializer[Any]):
    id = serializers.CharField()
    name = serializers.CharField(source="display_name")
    byok = serializers.BooleanField()
    capabilities = _CapabilitiesOut()


class _CreatorOut(serializers.Serializer[Any]):
    slug = serializers.CharField()
    name = serializers.CharField()
    models = _ModelOut(many=True)


class ModelListOut(serializers.Serializer[Any]):
    default_model = serializers.CharField(allow_null=True)
    creators = _CreatorOut(many=True)


def _actor(request: Request) -> User | None:
    user = request.user  # DRF's authentication, which sets the user on the Django request too
    if isinstance(user, User) and user.is_authenticated:
        return user
    return actor_get(cast(VeroRequest, request._request))  # the guest our middleware named


@api_view(["GET"])
def model_list(request: Request) -> Response:
    """List the models the current user (account or guest) may use, grouped by creator."""
    options = models_usable_for_user(user=_actor(request))
    payload = {
        "default_model": model_default_id(options=options),
        "creators": models_grouped_by_creator(options=options),
    }
    return Response(ModelListOut(payload).data, headers={"Cache-Control": "private, no-cache"})
