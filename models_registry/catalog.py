"""Read model catalogs (OpenRouter's /api/v1/models, LiteLLM's model map) into plain entries.

Prices in both formats are USD per token; entries carry USD per million tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from models_registry.models import Modality

_MILLION = Decimal(1_000_000)
_MICRO = Decimal("0.000001")
_EXTRA_MODALITIES = {Modality.IMAGE, Modality.FILE, Modality.AUDIO, Modality.VIDEO}

# LiteLLM's provider names for the provider kinds we serve, and its prefix on model keys.
LITELLM_PROVIDER_KINDS: Mapping[str, str] = {
    "openai": "openai",
    "gemini": "google",
    "xai": "xai",
    "openrouter": "openrouter",
}
_KIND_CREATOR = {"openai": "openai", "google": "google", "xai": "xai"}


@dataclass(frozen=True)
class CatalogEntry:
    provider_kind: str
    provider_model_id: str
    suggested_model_id: str
    name: str = ""
    description: str = ""
    input_modalities: tuple[str, ...] = ()
    supports_tools: bool = False
    supports_reasoning: bool = False
    context_window: int | None = None
    max_output_tokens: int | None = None
    price_input_per_million: Decimal | None = None
    price_output_per_million: Decimal | None = None
    price_reasoning_per_million: Decimal | None = None
    price_cached_input_per_million: Decimal | None = None


def per_million(value: Any) -> Decimal | None:
    """Convert a per-token USD price (string or number) to USD per million; None if unknown."""
    if value is None or value == "":
        return None
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        return None
    if price < 0:  # OpenRouter marks variable-priced routers with -1
        return None
    return (price * _MILLION).quantize(_MICRO)


def _positive_int(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _modalities(values: Iterable[str]) -> tuple[str, ...]:
    found = {value for value in values if value in _EXTRA_MODALITIES}
    return tuple(modality for modality in Modality.values if modality in found)


def suggested_model_id(*, creator: str, model: str) -> str:
    return f"{creator.strip().lower()}:{model.strip()}"


def openrouter_entries(payload: Mapping[str, Any]) -> list[CatalogEntry]:
    """Read OpenRouter's `/api/v1/models` answer."""
    entries: list[CatalogEntry] = []
    for item in payload.get("data") or []:
        model_id = str(item.get("id") or "")
        creator, _, model = model_id.partition("/")
        if not model:
            continue
        architecture = item.get("architecture") or {}
        inputs = architecture.get("input_modalities")
        if inputs is None:  # older answers only had "text+image->text"
            inputs = str(architecture.get("modality") or "").split("->")[0].split("+")
        parameters = set(item.get("supported_parameters") or [])
        pricing = item.get("pricing") or {}
        top_provider = item.get("top_provider") or {}
        reasoning_price = per_million(pricing.get("internal_reasoning"))
        entries.append(
            CatalogEntry(
                provider_kind="openrouter",
                provider_model_id=model_id,
                suggested_model_id=suggested_model_id(creator=creator, model=model),
                name=str(item.get("name") or ""),
                description=str(item.get("description") or ""),
                input_modalities=_modalities(inputs),
                supports_tools="tools" in parameters,
                supports_reasoning=bool(parameters & {"reasoning", "include_reasoning"}),
                context_window=_positive_int(
                    item.get("context_length") or top_provider.get("context_length")
                ),
                max_output_tokens=_positive_int(top_provider.get("max_completion_tokens")),
                price_input_per_million=per_million(pricing.get("prompt")),
                price_output_per_million=per_million(pricing.get("completion")),
                # A zero reasoning price means reasoning tokens are billed as output tokens.
                price_reasoning_per_million=reasoning_price if reasoning_price else None,
                price_cached_input_per_million=per_million(pricing.get("input_cache_read")),
            )
        )
    return entries


def litellm_entries(model_map: Mapping[str, Any], *, today: date) -> list[CatalogEntry]:
    """Read LiteLLM's model map: chat models of the providers we serve, not yet deprecated."""
    entries: list[CatalogEntry] = []
    for key, item in model_map.items():
        if not isinstance(item, dict) or item.get("mode") != "chat":
            continue
        kind = LITELLM_PROVIDER_KINDS.get(str(item.get("litellm_provider")))
        if kind is None:
            continue
        deprecation = str(item.get("deprecation_date") or "")
        if deprecation and deprecation < today.isoformat():
            continue
        prefix = f"{item['litellm_provider']}/"
        provider_model_id = key.removeprefix(prefix)
        if kind == "openrouter":
            creator, _, model = provider_model_id.partition("/")
            if not model:
                continue
        else:
            creator, model = _KIND_CREATOR[kind], provider_model_id
        modalities = list(item.get("supported_modalities") or [])
        if item.get("supports_vision"):
            modalities.append("image")
        if item.get("supports_pdf_input"):
            modalities.append("file")
        if item.get("supports_audio_input"):
            modalities.append("audio")
        entries.append(
            CatalogEntry(
                provider_kind=kind,
                provider_model_id=provider_model_id,
                suggested_model_id=suggested_model_id(creator=creator, model=model),
                name=provider_model_id,
                input_modalities=_modalities(modalities),
                supports_tools=bool(item.get("supports_function_calling")),
                supports_reasoning=bool(item.get("supports_reasoning")),
                context_window=_positive_int(item.get("max_input_tokens")),
                max_output_tokens=_positive_int(item.get("max_output_tokens")),
                price_input_per_million=per_million(item.get("input_cost_per_token")),
                price_output_per_million=per_million(item.get("output_cost_per_token")),
                price_reasoning_per_million=per_million(
                    item.get("output_cost_per_reasoning_token")
                ),
                price_cached_input_per_million=per_million(item.get("cache_read_input_token_cost")),
            )
        )
    return entries
