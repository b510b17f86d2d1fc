"""Reads about people."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class SocialProvider:
    id: str
    name: str


_NAMES = {"google": "Google", "github": "GitHub"}


def social_providers_available() -> list[SocialProvider]:
    """Return the OAuth/SSO providers whose credentials are configured (none when disabled)."""
    if not settings.SOCIAL_LOGIN_ENABLED:
        return []
    providers: list[SocialProvider] = []
    for provider_id, config in settings.SOCIALACCOUNT_PROVIDERS.items():
        for app in config.get("APPS", []):
            if provider_id == "openid_connect":
                providers.append(SocialProvider(id=app["provider_id"], name=app["name"]))
            else:
                providers.append(SocialProvider(id=provider_id, name=_NAMES.get(provider_id, provider_id)))
    return providers
