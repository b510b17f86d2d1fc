"""Our own small requests to a user's provider: list its models, check that it answers.

Chat completions go through `models_registry.llm`, which also builds a model list's request
and reads its answer (`provider_models_request`, `provider_models_parse`, shared with the
admin's `provider_ping`). What this module adds is a user's endpoint's guard (urlguard): the
URL is checked before each hop, the connector checks every address it connects to, and
redirects are followed by hand, each target checked like the first URL.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urljoin, urlsplit

import aiohttp
from django.conf import settings

from byok.urlguard import (
    GuardedResolver,
    GuardPolicy,
    UnsafeAddressError,
    UnsafeURLError,
    url_guard_check,
)
from models_registry.calls import (
    LLMError,
    ProviderBadRequestError,
    ProviderTimeoutError,
    ProviderUnreachableError,
    RemoteModel,
    errors_redacted,
)
from models_registry.llm import (
    http_error,
    provider_error_detail,
    provider_models_parse,
    provider_models_request,
)

MAX_REDIRECTS = 3
MAX_BODY_BYTES = 4 * 1024 * 1024


class EndpointRequestRefusedError(LLMError):
    """The URL guard refused a request of ours (listing models) to the endpoint or to one of
    its redirects; a refusal at call time is `byok.hook.EndpointUnsafeError`."""

    code = "endpoint_request_refused"
    default_message = "This server may not reach the endpoint's address."


async def _get(
    session: aiohttp.ClientSession, url: str, headers: dict, policy: GuardPolicy | None
) -> bytes:
    for _hop in range(MAX_REDIRECTS + 1):
        if policy is not None:
            # In a thread: the check resolves the host, which blocks.
            await asyncio.to_thread(url_guard_check, url, policy=policy)
        async with session.get(url, headers=headers, allow_redirects=False) as response:
            if response.status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                target = urljoin(url, response.headers["Location"])
                if urlsplit(target).netloc != urlsplit(url).netloc:
                    headers = {}  # never hand the key to another host
                url = target
                continue
            raw = await response.content.read(MAX_BODY_BYTES + 1)
            if len(raw) > MAX_BODY_BYTES:
                raise ProviderBadRequestError("The provider's model list is too large.")
            if response.status >= 400:
                raise http_error(response.status, provider_error_detail(raw))
            return raw
    raise ProviderBadRequestError("The provider redirected too many times.")


async def models_list_remote(
    *,
    kind: str,
    base_url: str | None,
    api_key: str | None,
    policy: GuardPolicy | None,
) -> list[RemoteModel]:
    """Return the models a provider lists (GET <base>/models); raise LLMError in plain words.

    `policy` None means a platform provider's address, set by an admin and not guarded.
    """
    url, headers = provider_models_request(kind=kind, api_base=base_url, api_key=api_key)
    timeout = aiohttp.ClientTimeout(total=settings.LLM_CONNECT_TIMEOUT_SECONDS)
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(policy=policy) if policy is not None else None,
        use_dns_cache=False,  # each connection checks the addresses it really gets
    )
    # Some providers echo the key they refused: no error leaves here saying it.
    with errors_redacted(secrets=(api_key,)):
        try:
            async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
                raw = await _get(session, url, headers, policy)
        except UnsafeURLError as error:
            raise EndpointRequestRefusedError(error.message) from error
        except aiohttp.ClientConnectorError as error:
            if isinstance(error.os_error, UnsafeAddressError):
                raise EndpointRequestRefusedError(str(error.os_error)) from error
            raise ProviderUnreachableError(f"The provider cannot be reached: {error}") from error
        except TimeoutError as error:
            raise ProviderTimeoutError("The provider did not answer in time.") from error
        except aiohttp.ClientError as error:
            raise ProviderUnreachableError(f"The provider cannot be reached: {error}") from error
    return provider_models_parse(raw)
