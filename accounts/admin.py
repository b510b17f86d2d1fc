"""The admin's user pages; a tier changed here goes through `user_tier_change`."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.http import HttpRequest

from accounts.models import User
from ratelimit.services import user_tier_change


class _UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class _UserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = _UserChangeForm
    add_form = _UserCreationForm
    ordering = ["-date_joined"]
    list_display = ["__str__", "is_guest", "tier", "is_staff", "is_active", "date_joined"]
    list_filter = ["is_guest", "tier", "is_staff", "is_superuser", "is_active"]
    search_fields = ["email", "name", "id"]
    list_select_related = ["tier"]
    readonly_fields = ["id", "date_joined", "last_login"]
    fieldsets = (
        (None, {"fields": ("id", "email", "password", "is_guest", "tier")}),
        ("Preferences", {"fields": ("name", "occupation", "custom_instructions")}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "usable_password", "password1", "password2", "tier"),
            },
        ),
    )

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        # The form has already put the new tier on `obj`; the service reads the stored one, so
        # the user's bucket follows from the old tier to the new (what was spent stays spent).
        if change and "tier" in form.changed_data:
            user_tier_change(user=obj, tier=obj.tier)
        super().save_model(request, obj, form, change)
