"""allauth's adapters: links in mails at the site's public address; unconfigured sign-in
providers are not found rather than a server error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialApp
from django.conf import settings
from django.http import Http404, HttpRequest


@dataclass(frozen=True)
class _PublicSite:
    """What mail templates read of `current_site`, named after APP_BASE_URL's host."""

    domain: str
    name: str


def public_url(url: str) -> str:
    """Move an absolute link built from the request onto APP_BASE_URL (unchanged when unset)."""
    parts = urlsplit(url)
    if not settings.APP_BASE_URL or parts.scheme not in ("http", "https") or not parts.netloc:
        return url
    return settings.APP_BASE_URL + url[len(f"{parts.scheme}://{parts.netloc}") :]


class AccountAdapter(DefaultAccountAdapter):
    def send_mail(self, template_prefix: str, email: str, context: dict[str, Any]) -> None:
        """Send an allauth mail; behind a proxy that hides scheme and host, use APP_BASE_URL.

        allauth builds a mail's links (`password_reset_url`, `activate_url`, `signup_url`)
        from the request, which behind such a proxy names the internal address.
        """
        if settings.APP_BASE_URL:
            host = urlsplit(settings.APP_BASE_URL).netloc
            context = {
                "current_site": _PublicSite(domain=host, name=host),
                **{
                    key: public_url(value)
                    if key.endswith("_url") and isinstance(value, str)
                    else value
                    for key, value in context.items()
                },
            }
        super().send_mail(template_prefix, email, context)


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def get_app(self, request: HttpRequest, provider: str, client_id: str | None = None) -> Any:
        # Every provider's URLs exist, configured or not (the apps are installed so that
        # credentials alone turn one on): one without credentials is simply not there.
        try:
            return super().get_app(request, provider, client_id=client_id)
        except SocialApp.DoesNotExist as error:
            raise Http404("This sign-in method is not configured.") from error
