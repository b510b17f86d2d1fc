"""Writes to the model registry: seeding, catalog sync and promotion, keys, defaults, switches."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from models_registry.cache import registry_write
from models_registry.catalog import CatalogEntry, litellm_entries, openrouter_entries
from models_registry.models import (
    Creator,
    Model,
    ModelProvider,
    Provider,
    ProviderCatalog,
    ProviderKind,
    Tier,
)
from vero.lib.secrets import secret_encrypt, secret_last_four

REGISTRY_DATA = Path(__file__).resolve().parent / "data" / "registry.json"
OPENROUTER_FALLBACK = "openrouter"


@dataclass
class SeedReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    kept_admin_edits: int = 0


def _price(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value).quantize(Decimal("0.000001"))


def ollama_base_url(url: str) -> str:
    """Return Ollama's OpenAI-compatible base URL for OLLAMA_BASE_URL (which may omit /v1)."""
    url = url.strip().rstrip("/")
    return url if url.endswith("/v1") else f"{url}/v1"


@registry_write
def registry_seed(*, reset: bool = False, data_file: Path = REGISTRY_DATA) -> SeedReport:
    """Insert the versioned defaults and refresh the rows no admin edited (all when `reset`)."""
    data: dict[str, Any] = json.loads(data_file.read_text())
    seeding = _Seeding(reset=reset)
    with transaction.atomic():
        providers = _seed_providers(seeding, rows=_provider_rows(data))
        creators, direct = _seed_creators(seeding, rows=data.get("creators", []))
        for row in data.get("models", []):
            _seed_model(seeding, row=row, providers=providers, creators=creators, direct=direct)
        for row in data.get("tiers", []):
            _seed_tier(seeding, row=row)
    return seeding.report


@dataclass
class _Seeding:
    """One seeding run: whether admins' edits are overwritten, and what was done so far."""

    reset: bool
    report: SeedReport = field(default_factory=SeedReport)

    def row(
        self, model_class: type[models.Model], *, lookup: dict[str, Any], fields: dict[str, Any]
    ) -> tuple[Any, str]:
        """Create the row, or bring it up to date unless an admin edited it.

        Return the row and what happened to it: created, updated, unchanged or kept (edited).
        """
        report = self.report
        row: Any = model_class._default_manager.filter(**lookup).first()
        if row is None:
            row = model_class._default_manager.create(**lookup, **fields)
            report.created += 1
            return row, "created"
        if row.admin_edited and not self.reset:
            report.kept_admin_edits += 1
            return row, "kept"
        changed = {name: value for name, value in fields.items() if getattr(row, name) != value}
        if not changed and not row.admin_edited:
            report.unchanged += 1
            return row, "unchanged"
        for name, value in {**changed, "admin_edited": False}.items():
            setattr(row, name, value)
        row.save()
        report.updated += 1
        return row, "updated"


def _provider_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The data file's providers, and a local Ollama when OLLAMA_BASE_URL names one."""
    rows = list(data.get("providers", []))
    if settings.OLLAMA_BASE_URL:
        rows.append(
            {
                "slug": "ollama",
                "name": "Ollama (local)",
                "kind": ProviderKind.CUSTOM,
                "base_url": ollama_base_url(settings.OLLAMA_BASE_URL),
            }
        )
    return rows


def _seed_providers(seeding: _Seeding, *, rows: list[dict[str, Any]]) -> dict[str, Provider]:
    providers: dict[str, Provider] = {}
    for row in rows:
        fields = {"name": row["name"], "kind": row["kind"], "base_url": row.get("base_url", "")}
        providers[row["slug"]], _state = seeding.row(
            Provider, lookup={"slug": row["slug"]}, fields=fields
        )
    return providers


def _seed_creators(
    seeding: _Seeding, *, rows: list[dict[str, Any]]
) -> tuple[dict[str, Creator], dict[str, str | None]]:
    """Seed the creators; return them and each one's direct provider (None: OpenRouter's)."""
    creators: dict[str, Creator] = {}
    direct: dict[str, str | None] = {}
    for row in rows:
        creators[row["slug"]], _state = seeding.row(
            Creator, lookup={"slug": row["slug"]}, fields={"name": row["name"]}
        )
        direct[row["slug"]] = row.get("direct_provider")
    return creators, direct


def _seed_model(
    seeding: _Seeding,
    *,
    row: dict[str, Any],
    providers: dict[str, Provider],
    creators: dict[str, Creator],
    direct: dict[str, str | None],
) -> None:
    """Seed a model and its route; a new route becomes the default when the model has none."""
    creator_slug, _, model_name = row["id"].partition(":")
    model, _state = seeding.row(
        Model,
        lookup={"id": row["id"]},
        fields={
            "creator": creators[creator_slug],
            "display_name": row["display_name"],
            "description": row.get("description", ""),
            "input_modalities": list(row.get("input_modalities", [])),
            "supports_tools": row.get("supports_tools", False),
            "supports_reasoning": row.get("supports_reasoning", False),
            "context_window": row.get("context_window"),
            "max_output_tokens": row.get("max_output_tokens"),
        },
    )
    # Creators without a direct provider are served through OpenRouter.
    provider = providers[direct.get(creator_slug) or OPENROUTER_FALLBACK]
    price = row.get("price", {})
    route, state = seeding.row(
        ModelProvider,
        lookup={"model": model, "provider": provider},
        fields={
            "provider_model_id": row.get("provider_model_id", model_name),
            "price_input_per_million": _price(price.get("input")),
            "price_output_per_million": _price(price.get("output")),
            "price_reasoning_per_million": _price(price.get("reasoning")),
            "price_cached_input_per_million": _price(price.get("cached_input")),
        },
    )
    if state == "created" and not _has_other_default(route=route):
        ModelProvider.objects.filter(pk=route.pk).update(is_default=True, enabled=True)


def _seed_tier(seeding: _Seeding, *, row: dict[str, Any]) -> None:
    """Seed a tier and, unless an admin edited it, the models it allows."""
    tier, state = seeding.row(
        Tier,
        lookup={"slug": row["slug"]},
        fields={
            "name": row["name"],
            "bucket_capacity": row["bucket_capacity"],
            "refill_amount": row["refill_amount"],
            "refill_interval_seconds": row["refill_interval_seconds"],
            "includes_all_models": row.get("includes_all_models", False),
        },
    )
    if state == "kept":
        return
    wanted = set(Model.objects.filter(id__in=row.get("models", [])).values_list("id", flat=True))
    if wanted != set(tier.allowed_models.values_list("id", flat=True)):
        tier.allowed_models.set(wanted)
        if state == "unchanged":  # its models changed: the tier counts as updated
            seeding.report.unchanged -= 1
            seeding.report.updated += 1


def _has_other_default(*, route: ModelProvider) -> bool:
    return (
        ModelProvider.objects.filter(model_id=route.model_id, is_default=True, enabled=True)
        .exclude(pk=route.pk)
        .exists()
    )


# -- admin edits --------------------------------------------------------------------------------


def registry_row_mark_edited(*, row: Creator | Provider | Model | ModelProvider | Tier) -> None:
    """Remember that an admin changed this row, so seeding leaves it alone (until --reset)."""
    row.admin_edited = True


@registry_write
def provider_key_set(*, provider: Provider, api_key: str) -> Provider:
    """Store the provider's key encrypted (it overrides the environment's key)."""
    api_key = api_key.strip()
    provider.api_key_encrypted = secret_encrypt(plaintext=api_key)
    provider.api_key_last_four = secret_last_four(plaintext=api_key)
    provider.admin_edited = True
    if provider.pk is not None:
        provider.save(update_fields=["api_key_encrypted", "api_key_last_four", "admin_edited"])
    return provider


@registry_write
def provider_key_clear(*, provider: Provider) -> Provider:
    """Forget the stored key: the environment's key (if any) applies again."""
    provider.api_key_encrypted = ""
    provider.api_key_last_four = ""
    provider.admin_edited = True
    if provider.pk is not None:
        provider.save(update_fields=["api_key_encrypted", "api_key_last_four", "admin_edited"])
    return provider


@registry_write
def provider_set_enabled(*, provider_ids: Iterable[int], enabled: bool) -> int:
    """Enable or disable providers; return how many rows changed."""
    return Provider.objects.filter(pk__in=list(provider_ids)).update(
        enabled=enabled, admin_edited=True, updated_at=timezone.now()
    )


@registry_write
def model_set_enabled(*, model_ids: Iterable[str], enabled: bool) -> int:
    """Enable or disable models; return how many rows changed."""
    return Model.objects.filter(pk__in=list(model_ids)).update(
        enabled=enabled, admin_edited=True, updated_at=timezone.now()
    )


@registry_write
def model_provider_set_default(*, route: ModelProvider) -> ModelProvider:
    """Make `route` the model's default (and enabled) provider; the others stop being it."""
    with transaction.atomic():
        list(ModelProvider.objects.select_for_update().filter(model_id=route.model_id))
        ModelProvider.objects.filter(model_id=route.model_id).exclude(pk=route.pk).update(
            is_default=False
        )
        ModelProvider.objects.filter(pk=route.pk).update(
            is_default=True, enabled=True, admin_edited=True, updated_at=timezone.now()
        )
    route.refresh_from_db()
    return route


# -- catalog ------------------------------------------------------------------------------------


@dataclass
class SyncReport:
    created: int = 0
    updated: int = 0
    skipped: list[str] = field(default_factory=list)


def _catalog_store(*, entries: list[CatalogEntry], source: str) -> SyncReport:
    report = SyncReport()
    providers = {
        provider.kind: provider
        for provider in Provider.objects.exclude(kind=ProviderKind.CUSTOM).order_by("-pk")
    }
    now = timezone.now()
    with transaction.atomic():
        for entry in entries:
            provider = providers.get(entry.provider_kind)
            if provider is None:
                report.skipped.append(entry.provider_model_id)
                continue
            _, created = ProviderCatalog.objects.update_or_create(
                provider=provider,
                provider_model_id=entry.provider_model_id,
                defaults={
                    "source": source,
                    "suggested_model_id": entry.suggested_model_id,
                    "name": entry.name,
                    "description": entry.description,
                    "input_modalities": list(entry.input_modalities),
                    "supports_tools": entry.supports_tools,
                    "supports_reasoning": entry.supports_reasoning,
                    "context_window": entry.context_window,
                    "max_output_tokens": entry.max_output_tokens,
                    "price_input_per_million": entry.price_input_per_million,
                    "price_output_per_million": entry.price_output_per_million,
                    "price_reasoning_per_million": entry.price_reasoning_per_million,
                    "price_cached_input_per_million": entry.price_cached_input_per_million,
                    "last_seen_at": now,
                },
            )
            if created:
                report.created += 1
            else:
                report.updated += 1
    return report


def catalog_sync_openrouter(*, payload: dict[str, Any]) -> SyncReport:
    """Record OpenRouter's model list (the `/api/v1/models` answer) in the catalog."""
    entries = openrouter_entries(payload)
    return _catalog_store(entries=entries, source=ProviderCatalog.Source.OPENROUTER)


def catalog_sync_litellm(*, model_map: dict[str, Any], today: date | None = None) -> SyncReport:
    """Record LiteLLM's model map (chat models of the providers we serve) in the catalog."""
    entries = litellm_entries(model_map, today=today or timezone.now().date())
    return _catalog_store(entries=entries, source=ProviderCatalog.Source.LITELLM)


@registry_write
def catalog_entry_promote(*, entry: ProviderCatalog) -> Model:
    """Turn a catalog entry into a Model served by the entry's provider, with its prices.

    An existing model keeps an admin's edits; otherwise its capabilities follow the catalog.
    """
    creator_slug, _, _ = entry.suggested_model_id.partition(":")
    with transaction.atomic():
        creator, _ = Creator.objects.get_or_create(
            slug=creator_slug, defaults={"name": _creator_name(entry=entry, slug=creator_slug)}
        )
        capabilities = {
            "input_modalities": list(entry.input_modalities),
            "supports_tools": entry.supports_tools,
            "supports_reasoning": entry.supports_reasoning,
            "context_window": entry.context_window,
            "max_output_tokens": entry.max_output_tokens,
        }
        model = Model.objects.select_for_update().filter(id=entry.suggested_model_id).first()
        if model is None:
            model = Model(
                id=entry.suggested_model_id,
                creator=creator,
                display_name=_display_name(entry=entry),
                description=entry.description,
                **capabilities,
            )
            model.full_clean()
            model.save()
        elif not model.admin_edited:
            Model.objects.filter(pk=model.pk).update(**capabilities, updated_at=timezone.now())
        prices = {
            "provider_model_id": entry.provider_model_id,
            "price_input_per_million": entry.price_input_per_million,
            "price_output_per_million": entry.price_output_per_million,
            "price_reasoning_per_million": entry.price_reasoning_per_million,
            "price_cached_input_per_million": entry.price_cached_input_per_million,
        }
        route, created = ModelProvider.objects.get_or_create(
            model=model, provider=entry.provider, defaults=prices
        )
        if not created and not route.admin_edited:
            ModelProvider.objects.filter(pk=route.pk).update(**prices, updated_at=timezone.now())
        if not _has_other_default(route=route) and route.enabled:
            ModelProvider.objects.filter(pk=route.pk).update(is_default=True)
        ProviderCatalog.objects.filter(pk=entry.pk).update(promoted_model=model)
    entry.promoted_model = model
    return model


def _creator_name(*, entry: ProviderCatalog, slug: str) -> str:
    # OpenRouter names read "Anthropic: Claude Sonnet 5.5".
    prefix, separator, _ = entry.name.partition(": ")
    return prefix if separator else slug.replace("-", " ").title()


def _display_name(*, entry: ProviderCatalog) -> str:
    _, separator, rest = entry.name.partition(": ")
    name = rest if separator else entry.name
    return (name or entry.suggested_model_id.partition(":")[2])[:120]
