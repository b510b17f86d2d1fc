"""Users' own provider keys, their own OpenAI-compatible endpoints, and the models they added.

Secrets live in `SecretField`s (AES-GCM, see vero/lib/secrets.py), so `reencrypt_secrets`
finds and rotates them with every other stored secret. Only the last four characters of a key
are ever kept in the clear. A model belongs to exactly one source (a key or an endpoint) and
goes when its source goes.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from models_registry.models import BYOK_PREFIX, Modality, ProviderKind
from vero.lib.secrets import SecretField

# The platform providers a user may bring a key for (custom endpoints have their own model).
PLATFORM_KINDS: tuple[str, ...] = tuple(
    kind.value for kind in ProviderKind if kind != ProviderKind.CUSTOM
)
PLATFORM_KIND_CHOICES = [
    (kind.value, kind.label) for kind in ProviderKind if kind != ProviderKind.CUSTOM
]
CUSTOM_SOURCE = "custom"
# Lengths keep the longest id (`byok:custom:<30>:<150>`) within the 200 a chat message stores.
# What may follow the prefix of a BYOK id: a provider's own model name (`llama3.1:8b`,
# `anthropic/claude-sonnet-5.5`, `gpt-5.2`).
PROVIDER_MODEL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$"


class UserProviderKey(models.Model):
    """A user's own key for a platform provider (OpenAI, Google, OpenRouter, xAI)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="byok_keys"
    )
    provider = models.CharField(max_length=20, choices=PLATFORM_KIND_CHOICES)
    api_key_encrypted = SecretField(editable=False)
    api_key_last_four = models.CharField(max_length=4, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider"]
        verbose_name = "user provider key"
        constraints = [
            models.UniqueConstraint(fields=["user", "provider"], name="byok_key_user_provider"),
            models.CheckConstraint(
                condition=models.Q(provider__in=PLATFORM_KINDS), name="byok_key_platform_kind"
            ),
        ]

    def __str__(self) -> str:  # never the key
        return f"{self.get_provider_display()} key of {self.user_id}"


class UserCustomProvider(models.Model):
    """A user's own OpenAI-compatible endpoint (Ollama, vLLM, a hosted gateway, …)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="byok_endpoints"
    )
    slug = models.SlugField(max_length=30)
    name = models.CharField(max_length=80)
    base_url = models.URLField(max_length=300)
    api_key_encrypted = SecretField(blank=True, editable=False)
    api_key_last_four = models.CharField(max_length=4, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "slug"]
        verbose_name = "user custom endpoint"
        constraints = [
            models.UniqueConstraint(fields=["user", "slug"], name="byok_endpoint_user_slug"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

    @property
    def has_key(self) -> bool:
        return bool(self.api_key_encrypted)


class UserByokModel(models.Model):
    """A model a user added from one of their sources, with the capabilities they declared."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="byok_models"
    )
    # Exactly one source; deleting it deletes the models that need it.
    key = models.ForeignKey(
        UserProviderKey, null=True, blank=True, on_delete=models.CASCADE, related_name="models"
    )
    endpoint = models.ForeignKey(
        UserCustomProvider,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="models",
    )
    provider_model_id = models.CharField(max_length=150)
    display_name = models.CharField(max_length=120)
    input_modalities = ArrayField(
        models.CharField(max_length=10, choices=Modality.choices), default=list, blank=True
    )
    supports_tools = models.BooleanField(default=False)
    supports_reasoning = models.BooleanField(default=False)
    context_window = models.PositiveIntegerField(null=True, blank=True)
    max_output_tokens = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["display_name", "provider_model_id"]
        verbose_name = "user BYOK model"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(key__isnull=True) ^ models.Q(endpoint__isnull=True),
                name="byok_model_one_source",
            ),
            models.UniqueConstraint(
                fields=["key", "provider_model_id"],
                condition=models.Q(key__isnull=False),
                name="byok_model_unique_per_key",
            ),
            models.UniqueConstraint(
                fields=["endpoint", "provider_model_id"],
                condition=models.Q(endpoint__isnull=False),
                name="byok_model_unique_per_endpoint",
            ),
        ]
        indexes = [models.Index(fields=["user", "display_name"], name="byok_model_user_idx")]

    def __str__(self) -> str:
        return self.display_name

    @property
    def source_label(self) -> str:
        """Where the model is served from, as the picker and the settings page name it."""
        if self.endpoint is not None:
            return self.endpoint.name
        assert self.key is not None
        return self.key.get_provider_display()

    @property
    def model_id(self) -> str:
        """The id chats use: `byok:<provider>:<model>` or `byok:custom:<slug>:<model>`."""
        if self.endpoint is not None:
            return f"{BYOK_PREFIX}{CUSTOM_SOURCE}:{self.endpoint.slug}:{self.provider_model_id}"
        assert self.key is not None
        return f"{BYOK_PREFIX}{self.key.provider}:{self.provider_model_id}"
