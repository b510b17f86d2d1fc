"""Our own small requests to a user's provider: list its models, check that it answers.

Chat completions go through `models_registry.llm`; this module only lists models, which
`llm.provider_ping` counts but does not return. Requests to custom endpoints are guarded
(urlguard): the URL is checked before each hop, the connector checks every address it
connects to, and redirects are followed by hand, each target checked like the first URL.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import aiohttp
import orjson
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
    errors_redacted,
)
from models_registry.llm import GEMINI_API_BASE, _error_message, http_error

MAX_REDIRECTS = 3
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_MODELS = 1000


@dataclass(frozen=True)
class RemoteModel:
    """A model a provider lists: its id and, when the provider gives one, a readable name."""

    id: str
    name: str


class EndpointRequestRefusedError(LLMError):
    """The URL guard refused a request of ours (listing models) to the endpoint or to one of
    its redirects; a refusal at call time is `byok.hook.EndpointUnsafeError`."""

    code = "endpoint_request_refused"
    default_message = "This server may not reach the endpoint's address."


def _models_request(*, kind: str, base_url: str | None, api_key: str | None) -> tuple[str, dict]:
    if kind == "google":
        url = f"{(base_url or GEMINI_API_BASE).rstrip('/')}/v1beta/models?pageSize=1000"
        return url, ({"x-goog-api-key": api_key} if api_key else {})
    if not base_url:
        raise ProviderUnreachableError("The provider has no base URL configured.")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return f"{base_url.rstrip('/')}/models", headers


def _parse_models(raw: bytes) -> list[RemoteModel]:
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ProviderBadRequestError("The provider's model list could not be read.") from error
    if not isinstance(payload, dict):
        return []
    items = payload.get("data") or payload.get("models") or []
    found: dict[str, RemoteModel] = {}
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        # OpenAI-compatible lists carry `id`; Gemini's carries `name` ("models/gemini-…").
        model_id = str(item.get("id") or item.get("name") or "").removeprefix("models/")
        if model_id and model_id not in found:
            name = str(item.get("name") or item.get("displayName") or model_id)
            found[model_id] = RemoteModel(id=model_id, name=name.removeprefix("models/"))
        if len(found) >= MAX_MODELS:
            break
    return sorted(found.values(), key=lambda model: model.id.lower())


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
                raise http_error(response.status, _error_message(raw))
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
    url, headers = _models_request(kind=kind, base_url=base_url, api_key=api_key)
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
    return _parse_models(raw)
