from django.contrib import admin

from models_registry.models import Tier


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin[Tier]):
    list_display = ["slug", "name", "bucket_capacity", "refill_amount", "refill_interval_seconds"]
    search_fields = ["slug", "name"]
