"""Users' BYOK rows for admins: who brought which key or endpoint. Never a key, only its end.

Rows are the users' own: admins may look and delete (an abusive endpoint, a leaked key), not
add or edit.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from byok.models import UserByokModel, UserCustomProvider, UserProviderKey


class _UsersOwnRows(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(UserProviderKey)
class UserProviderKeyAdmin(_UsersOwnRows):
    list_display = ["user", "provider", "api_key_last_four", "updated_at"]
    list_filter = ["provider"]
    list_select_related = ["user"]
    search_fields = ["user__email"]
    fields = ["user", "provider", "api_key_last_four", "created_at", "updated_at"]


@admin.register(UserCustomProvider)
class UserCustomProviderAdmin(_UsersOwnRows):
    list_display = ["user", "name", "slug", "base_url", "api_key_last_four", "updated_at"]
    list_select_related = ["user"]
    search_fields = ["user__email", "slug", "base_url"]
    fields = ["user", "name", "slug", "base_url", "api_key_last_four", "created_at", "updated_at"]


@admin.register(UserByokModel)
class UserByokModelAdmin(_UsersOwnRows):
    list_display = ["user", "display_name", "provider_model_id", "key", "endpoint", "created_at"]
    list_select_related = ["user", "key", "endpoint"]
    search_fields = ["user__email", "provider_model_id", "display_name"]
