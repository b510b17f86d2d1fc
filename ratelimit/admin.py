"""The admin's view of the buckets: what each user has left, and resetting them."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import ActionLocation
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest

from ratelimit.models import UserRateLimit
from ratelimit.selectors import ratelimit_statuses_for_rows
from ratelimit.services import ratelimit_reset


@admin.register(UserRateLimit)
class UserRateLimitAdmin(admin.ModelAdmin[UserRateLimit]):
    """Buckets as they stand now; a bucket without a row is full. Tiers are edited elsewhere."""

    list_display = [
        "user",
        "bucket",
        "available_now",
        "refill",
        "last_request_at",
        "last_admitted",
    ]
    list_filter = ["bucket", "last_admitted"]
    search_fields = ["user__email", "=user__id"]
    list_select_related = ["user", "user__tier"]
    list_per_page = 100
    readonly_fields = [
        "user",
        "bucket",
        "tokens",
        "refilled_at",
        "last_request_at",
        "last_admitted",
    ]
    actions = ["reset_buckets"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Rows are written by requests only; a missing row already means a full bucket.
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(
        self, request: HttpRequest, action_location: ActionLocation = ActionLocation.CHANGE_LIST
    ) -> dict[str, Any]:
        actions = super().get_actions(request, action_location=action_location)
        actions.pop("delete_selected", None)  # deleting a row is what a reset does
        return actions

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        changelist = super().get_changelist_instance(request)
        # One batch for the whole page, instead of a tier lookup per row.
        rows = list(changelist.result_list)
        statuses = ratelimit_statuses_for_rows(rows=rows)
        for row in rows:
            row.status_now = statuses[row.pk]
        return changelist

    @admin.display(description="Available now")
    def available_now(self, row: UserRateLimit) -> str:
        status = getattr(row, "status_now", None)
        if status is None:
            return str(row.tokens)
        return f"{status.remaining} / {status.capacity}"

    @admin.display(description="Next refill")
    def refill(self, row: UserRateLimit) -> str:
        status = getattr(row, "status_now", None)
        if status is None:
            return ""
        if status.is_full:
            return "full"
        return f"+{status.refill_amount} in {status.refill_in}" if status.refill_in else "never"

    @admin.action(description="Reset selected buckets (fill them)")
    def reset_buckets(self, request: HttpRequest, queryset: QuerySet[UserRateLimit]) -> None:
        count = 0
        for user_id, bucket in queryset.values_list("user_id", "bucket"):
            count += ratelimit_reset(user_id=user_id, bucket=bucket)
        self.message_user(
            request,
            f"Reset {count} bucket{'s' if count != 1 else ''}: full again from the next request.",
            messages.SUCCESS,
        )
