"""Model registry: who made a model (Creator), who serves it (Provider), and who may use it (Tier).

A model's identity (`creator:model`, e.g. `openai:gpt-5.2`) is separate from the providers that
serve it (ModelProvider rows, one default among the enabled ones, each with its own pricing).
Rows seeded from `data/registry.json` carry `admin_edited`: once an admin changes one,
`seed_registry` leaves it alone unless run with `--reset`.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.core.validators import RegexValidator
from django.db import models

from vero.lib.secrets import SecretField

MODEL_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]*:[A-Za-z0-9][A-Za-z0-9._:/@+-]*$"
BYOK_PREFIX = "byok:"


class Modality(models.TextChoices):
    TEXT = "text", "Text"
    IMAGE = "image", "Image"
    FILE = "file", "File"
    AUDIO = "audio", "Audio"
    VIDEO = "video", "Video"


class ProviderKind(models.TextChoices):
    OPENAI = "openai", "OpenAI"
    GOOGLE = "google", "Google (Gemini API)"
    OPENROUTER = "openrouter", "OpenRouter"
    XAI = "xai", "xAI"
    CUSTOM = "custom", "OpenAI-compatible endpoint (Ollama, vLLM, …)"


class Creator(models.Model):
    """Who made a model (OpenAI, Anthropic, Google, …): the first half of a model id."""

    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80)
    admin_edited = models.BooleanField(
        default=False, help_text="Set when an admin edits the row: seeding then leaves it alone."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(slug="byok"), name="creator_slug_not_byok"),
        ]

    def __str__(self) -> str:
        return self.name


class Provider(models.Model):
    """An API that serves models: a platform provider or an admin-defined compatible endpoint."""

    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80)
    kind = models.CharField(max_length=20, choices=ProviderKind.choices)
    base_url = models.URLField(
        max_length=300,
        blank=True,
        help_text="Empty: the provider's public API. Required for OpenAI-compatible endpoints "
        "(e.g. http://localhost:11434/v1 for Ollama).",
    )
    api_key_encrypted = SecretField(blank=True, editable=False)
    api_key_last_four = models.CharField(max_length=4, blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    admin_edited = models.BooleanField(
        default=False, help_text="Set when an admin edits the row: seeding then leaves it alone."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(kind="custom") | ~models.Q(base_url=""),
                name="provider_custom_has_base_url",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Model(models.Model):
    """A model by identity (`creator:model`) and its capabilities, which UI and server honour."""

    id = models.CharField(
        primary_key=True,
        max_length=200,
        validators=[
            RegexValidator(MODEL_ID_PATTERN, "Use creator:model, e.g. openai:gpt-5.2."),
        ],
        help_text="creator:model, e.g. openai:gpt-5.2",
    )
    creator = models.ForeignKey(Creator, on_delete=models.PROTECT, related_name="models")
    display_name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    input_modalities = ArrayField(
        models.CharField(max_length=10, choices=Modality.choices),
        default=list,
        blank=True,
        help_text="Inputs the model accepts besides text: image, file, audio, video.",
    )
    supports_tools = models.BooleanField(default=False)
    supports_reasoning = models.BooleanField(default=False)
    context_window = models.PositiveIntegerField(null=True, blank=True)
    max_output_tokens = models.PositiveIntegerField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    admin_edited = models.BooleanField(
        default=False, help_text="Set when an admin edits the row: seeding then leaves it alone."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["creator__name", "display_name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(id__regex=MODEL_ID_PATTERN), name="model_id_creator_colon_model"
            ),
        ]

    def __str__(self) -> str:
        return self.id


class ModelProvider(models.Model):
    """One way to call a model: a provider, its model string, its prices per million tokens."""

    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="routes")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="routes")
    provider_model_id = models.CharField(
        max_length=200, help_text="The provider's name for it, e.g. anthropic/claude-sonnet-5.5."
    )
    price_input_per_million = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True, help_text="USD"
    )
    price_output_per_million = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True, help_text="USD"
    )
    price_reasoning_per_million = models.DecimalField(
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="USD; empty: reasoning tokens are billed as output tokens.",
    )
    price_cached_input_per_million = models.DecimalField(
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="USD; empty: cached input tokens are billed as input tokens.",
    )
    extra_params = models.JSONField(
        default=dict, blank=True, help_text="Extra request parameters sent with every call."
    )
    is_default = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)
    admin_edited = models.BooleanField(
        default=False, help_text="Set when an admin edits the row: seeding then leaves it alone."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model_id", "-is_default", "provider__name"]
        verbose_name = "model provider"
        constraints = [
            models.UniqueConstraint(fields=["model", "provider"], name="model_provider_unique"),
            models.UniqueConstraint(
                fields=["model"],
                condition=models.Q(is_default=True, enabled=True),
                name="model_provider_one_default",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model_id} via {self.provider}"


class ProviderCatalog(models.Model):
    """What a catalog sync found for a provider; admins promote entries into Model rows."""

    class Source(models.TextChoices):
        OPENROUTER = "openrouter", "OpenRouter model list"
        LITELLM = "litellm", "LiteLLM model map"

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="catalog")
    provider_model_id = models.CharField(max_length=200)
    source = models.CharField(max_length=20, choices=Source.choices)
    suggested_model_id = models.CharField(max_length=200)
    name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    input_modalities = ArrayField(models.CharField(max_length=10), default=list, blank=True)
    supports_tools = models.BooleanField(default=False)
    supports_reasoning = models.BooleanField(default=False)
    context_window = models.PositiveIntegerField(null=True, blank=True)
    max_output_tokens = models.PositiveIntegerField(null=True, blank=True)
    price_input_per_million = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True
    )
    price_output_per_million = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True
    )
    price_reasoning_per_million = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True
    )
    price_cached_input_per_million = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True
    )
    promoted_model = models.ForeignKey(
        Model, null=True, blank=True, on_delete=models.SET_NULL, related_name="catalog_entries"
    )
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["provider__name", "provider_model_id"]
        verbose_name = "catalog entry"
        verbose_name_plural = "provider catalog"
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_model_id"], name="provider_catalog_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider_model_id} ({self.provider})"


class Tier(models.Model):
    """A class of users: which platform models they may use and their token bucket."""

    GUEST = "guest"
    REGULAR = "regular"
    PRO = "pro"

    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80)
    bucket_capacity = models.PositiveIntegerField(default=20)
    refill_amount = models.PositiveIntegerField(default=20)
    refill_interval_seconds = models.PositiveIntegerField(default=3600)
    max_output_tokens = models.PositiveIntegerField(
        default=4096,
        help_text="The most tokens an answer may have for this tier's users; a model's own "
        "lower maximum wins.",
    )
    storage_quota_bytes = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="Bytes of attachments each user may keep stored; empty: the "
        "USER_STORAGE_QUOTA_BYTES setting.",
    )
    allowed_models = models.ManyToManyField(Model, blank=True, related_name="tiers")
    includes_all_models = models.BooleanField(
        default=False, help_text="Every enabled model, including ones added later."
    )
    admin_edited = models.BooleanField(
        default=False, help_text="Set when an admin edits the row: seeding then leaves it alone."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["bucket_capacity", "slug"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(refill_interval_seconds__gt=0),
                name="tier_refill_interval_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.name
