"""The control panel for creators, providers, models, their routes, the catalog and tiers."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest

from models_registry.models import (
    Creator,
    Modality,
    Model,
    ModelProvider,
    Provider,
    ProviderCatalog,
    ProviderKind,
    Tier,
)
from models_registry.resolver import provider_endpoint, provider_key_source
from models_registry.services import (
    catalog_entry_promote,
    model_provider_set_default,
    model_set_enabled,
    provider_key_clear,
    provider_key_set,
    provider_set_enabled,
    registry_row_mark_edited,
)


class _EditTrackingAdmin[T: Creator | Provider | Model | ModelProvider | Tier](admin.ModelAdmin[T]):
    """Remembers that an admin changed a row, so `seed_registry` will not undo it."""

    def save_model(self, request: HttpRequest, obj: T, form: Any, change: bool) -> None:
        registry_row_mark_edited(row=obj)
        super().save_model(request, obj, form, change)


@admin.register(Creator)
class CreatorAdmin(_EditTrackingAdmin[Creator]):
    list_display = ["name", "slug", "admin_edited"]
    search_fields = ["name", "slug"]
    readonly_fields = ["admin_edited", "created_at", "updated_at"]


# -- providers ----------------------------------------------------------------------------------


class ProviderForm(forms.ModelForm[Provider]):
    api_key = forms.CharField(
        label="API key",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Stored encrypted and never shown again. Leave empty to keep the current "
        "key; without a stored key the environment's key (e.g. OPENAI_API_KEY) is used.",
    )
    clear_api_key = forms.BooleanField(label="Forget the stored key", required=False)

    class Meta:
        model = Provider
        fields = ["slug", "name", "kind", "base_url", "enabled"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("kind") == ProviderKind.CUSTOM and not cleaned.get("base_url"):
            self.add_error(
                "base_url",
                "An OpenAI-compatible endpoint needs its base URL, e.g. http://localhost:11434/v1.",
            )
        if cleaned.get("api_key") and cleaned.get("clear_api_key"):
            self.add_error("clear_api_key", "Either set a new key or forget the stored one.")
        return cleaned


@admin.register(Provider)
class ProviderAdmin(_EditTrackingAdmin[Provider]):
    form = ProviderForm
    list_display = ["name", "slug", "kind", "base_url", "enabled", "key_source"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name", "slug", "base_url"]
    readonly_fields = ["key_source", "admin_edited", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["slug", "name", "kind", "base_url", "enabled"]}),
        ("Key", {"fields": ["key_source", "api_key", "clear_api_key"]}),
        ("History", {"fields": ["admin_edited", "created_at", "updated_at"]}),
    ]
    actions = ["enable", "disable", "test_connection"]

    @admin.display(description="key")
    def key_source(self, provider: Provider) -> str:
        return provider_key_source(provider=provider)

    def save_model(self, request: HttpRequest, obj: Provider, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if form.cleaned_data.get("api_key"):
            provider_key_set(provider=obj, api_key=form.cleaned_data["api_key"])
        elif form.cleaned_data.get("clear_api_key"):
            provider_key_clear(provider=obj)

    @admin.action(description="Enable the selected providers")
    def enable(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        count = provider_set_enabled(
            provider_ids=queryset.values_list("pk", flat=True), enabled=True
        )
        self.message_user(request, f"{count} provider(s) enabled.", messages.SUCCESS)

    @admin.action(description="Disable the selected providers")
    def disable(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        count = provider_set_enabled(
            provider_ids=queryset.values_list("pk", flat=True), enabled=False
        )
        self.message_user(request, f"{count} provider(s) disabled.", messages.SUCCESS)

    @admin.action(description="Test the connection (lists the provider's models)")
    def test_connection(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        from models_registry.calls import LLMError
        from models_registry.llm import provider_ping

        for provider in queryset:
            endpoint = provider_endpoint(provider=provider)
            try:
                report = async_to_sync(provider_ping)(
                    kind=endpoint.kind, api_base=endpoint.api_base, api_key=endpoint.api_key
                )
            except LLMError as error:
                self.message_user(request, f"{provider.name}: {error.message}", messages.ERROR)
            else:
                self.message_user(request, f"{provider.name}: {report}", messages.SUCCESS)


# -- models and their routes --------------------------------------------------------------------


class _RouteFormSet(BaseInlineFormSet[ModelProvider, Model, forms.ModelForm[ModelProvider]]):
    def clean(self) -> None:
        super().clean()
        enabled = defaults = 0
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE"):
                continue
            if data.get("enabled"):
                enabled += 1
                defaults += bool(data.get("is_default"))
        if enabled and defaults != 1:
            raise ValidationError(
                "Mark exactly one enabled provider as the default "
                f"(now {defaults} of the {enabled} enabled ones are)."
            )


class ModelProviderInline(admin.TabularInline[ModelProvider, Model]):
    model = ModelProvider
    formset = _RouteFormSet
    extra = 0
    fields = [
        "provider",
        "provider_model_id",
        "is_default",
        "enabled",
        "price_input_per_million",
        "price_output_per_million",
        "price_reasoning_per_million",
        "price_cached_input_per_million",
        "extra_params",
    ]
    autocomplete_fields = ["provider"]


class ModelForm(forms.ModelForm[Model]):
    input_modalities = forms.MultipleChoiceField(
        choices=[choice for choice in Modality.choices if choice[0] != Modality.TEXT],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Every model takes text; tick what else it accepts.",
    )

    class Meta:
        model = Model
        fields = [
            "id",
            "creator",
            "display_name",
            "description",
            "input_modalities",
            "supports_tools",
            "supports_reasoning",
            "context_window",
            "max_output_tokens",
            "enabled",
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        model_id, creator = cleaned.get("id"), cleaned.get("creator")
        if model_id and creator and not str(model_id).startswith(f"{creator.slug}:"):
            self.add_error("id", f"The id must start with the creator's slug: {creator.slug}:…")
        return cleaned


@admin.register(Model)
class ModelAdmin(_EditTrackingAdmin[Model]):
    form = ModelForm
    inlines = [ModelProviderInline]
    list_display = [
        "id",
        "display_name",
        "creator",
        "enabled",
        "supports_tools",
        "supports_reasoning",
        "context_window",
        "default_provider",
    ]
    list_filter = ["enabled", "creator", "supports_tools", "supports_reasoning", "routes__provider"]
    search_fields = ["id", "display_name", "description", "routes__provider_model_id"]
    list_select_related = ["creator"]
    readonly_fields = ["admin_edited", "created_at", "updated_at"]
    actions = ["enable", "disable"]

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        # A model's id is its identity (chats refer to it): fixed once created.
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "id"] if obj is not None else fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Model]:
        return super().get_queryset(request).prefetch_related("routes__provider").distinct()

    @admin.display(description="default provider")
    def default_provider(self, model: Model) -> str:
        for route in model.routes.all():
            if route.is_default and route.enabled:
                return route.provider.name
        return "—"

    @admin.action(description="Enable the selected models")
    def enable(self, request: HttpRequest, queryset: QuerySet[Model]) -> None:
        count = model_set_enabled(model_ids=queryset.values_list("pk", flat=True), enabled=True)
        self.message_user(request, f"{count} model(s) enabled.", messages.SUCCESS)

    @admin.action(description="Disable the selected models")
    def disable(self, request: HttpRequest, queryset: QuerySet[Model]) -> None:
        count = model_set_enabled(model_ids=queryset.values_list("pk", flat=True), enabled=False)
        self.message_user(request, f"{count} model(s) disabled.", messages.SUCCESS)


@admin.register(ModelProvider)
class ModelProviderAdmin(_EditTrackingAdmin[ModelProvider]):
    list_display = [
        "model",
        "provider",
        "provider_model_id",
        "is_default",
        "enabled",
        "price_input_per_million",
        "price_output_per_million",
    ]
    list_filter = ["provider", "is_default", "enabled"]
    search_fields = ["model__id", "model__display_name", "provider_model_id"]
    list_select_related = ["model", "provider"]
    autocomplete_fields = ["model", "provider"]
    readonly_fields = ["admin_edited", "created_at", "updated_at"]
    actions = ["set_default"]

    @admin.action(description="Make the selected routes their model's default provider")
    def set_default(self, request: HttpRequest, queryset: QuerySet[ModelProvider]) -> None:
        routes = list(queryset.select_related("model"))
        model_ids = [route.model_id for route in routes]
        if len(set(model_ids)) != len(model_ids):
            self.message_user(
                request, "Pick at most one provider per model to make default.", messages.ERROR
            )
            return
        for route in routes:
            model_provider_set_default(route=route)
        self.message_user(request, f"{len(routes)} default provider(s) set.", messages.SUCCESS)


# -- catalog ------------------------------------------------------------------------------------


@admin.register(ProviderCatalog)
class ProviderCatalogAdmin(admin.ModelAdmin[ProviderCatalog]):
    list_display = [
        "provider_model_id",
        "provider",
        "suggested_model_id",
        "supports_tools",
        "supports_reasoning",
        "context_window",
        "price_input_per_million",
        "price_output_per_million",
        "promoted_model",
        "last_seen_at",
    ]
    list_filter = ["provider", "source", "supports_tools", "supports_reasoning"]
    search_fields = ["provider_model_id", "suggested_model_id", "name"]
    list_select_related = ["provider", "promoted_model"]
    actions = ["promote"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # entries come from `manage.py sync_catalog`

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(
        description="Promote to models (served by the entry's provider)", permissions=["promote"]
    )
    def promote(self, request: HttpRequest, queryset: QuerySet[ProviderCatalog]) -> None:
        promoted: list[str] = []
        for entry in queryset.select_related("provider"):
            try:
                promoted.append(catalog_entry_promote(entry=entry).id)
            except ValidationError as error:
                self.message_user(
                    request,
                    f"{entry.provider_model_id}: {'; '.join(error.messages)}",
                    messages.ERROR,
                )
        if promoted:
            self.message_user(
                request,
                f"Promoted: {', '.join(promoted)}. Add them to tiers to offer them.",
                messages.SUCCESS,
            )

    # Promoting creates models, so it needs the permission to add them (not to change entries).
    def has_promote_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("models_registry.add_model")


# -- tiers --------------------------------------------------------------------------------------


class TierForm(forms.ModelForm[Tier]):
    class Meta:
        model = Tier
        fields = [
            "slug",
            "name",
            "includes_all_models",
            "allowed_models",
            "bucket_capacity",
            "refill_amount",
            "refill_interval_seconds",
            "max_output_tokens",
        ]

    def clean_allowed_models(self) -> QuerySet[Model]:
        chosen: QuerySet[Model] = self.cleaned_data["allowed_models"]
        served = set(
            ModelProvider.objects.filter(
                model__in=chosen, enabled=True, provider__enabled=True
            ).values_list("model_id", flat=True)
        )
        unserved = sorted(model.id for model in chosen if model.id not in served)
        if unserved:
            raise ValidationError(
                "A tier cannot include a model without an enabled provider: "
                + ", ".join(unserved)
                + ". Enable a provider for it first."
            )
        return chosen


@admin.register(Tier)
class TierAdmin(_EditTrackingAdmin[Tier]):
    form = TierForm
    list_display = [
        "slug",
        "name",
        "includes_all_models",
        "model_count",
        "bucket_capacity",
        "refill_amount",
        "refill_interval_seconds",
        "max_output_tokens",
    ]
    search_fields = ["slug", "name"]
    filter_horizontal = ["allowed_models"]
    readonly_fields = ["admin_edited", "created_at", "updated_at"]

    @admin.display(description="models")
    def model_count(self, tier: Tier) -> str:
        return "all" if tier.includes_all_models else str(tier.allowed_models.count())
