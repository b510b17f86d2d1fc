from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm

from accounts.models import User


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
