"""Custom endpoints cannot reach the server's own network: refused when saved and when called."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiohttp import web
from django.test import Client
from pytest_django.fixtures import Settings

from accounts.models import User
from byok.models import UserByokModel, UserCustomProvider
from byok.services import ByokInputError, byok_endpoint_create, byok_model_add
from byok.urlguard import UnsafeURLError, url_guard_check
from chats.models import Chat, Message
from tests.byok.helpers import ALICE_ENDPOINT_KEY, assert_no_secret
from tests.chats.helpers import send

PUBLIC_ADDRESS = "93.184.216.34"

Resolver = Callable[..., list[Any]]


def _resolving(mapping: dict[str, str], real: Resolver) -> Resolver:
    """A getaddrinfo that answers for the names in `mapping` (DNS is outside the test)."""

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if isinstance(host, bytes):
            host = host.decode()
        if host in mapping:
            address = mapping[host]
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sockaddr = (
                (address, int(port or 0), 0, 0) if ":" in address else (address, int(port or 0))
            )
            return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)]
        return real(host, port, *args, **kwargs)

    return getaddrinfo


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, str]], None]:
    real = socket.getaddrinfo

    def set_records(mapping: dict[str, str]) -> None:
        monkeypatch.setattr(socket, "getaddrinfo", _resolving(mapping, real))

    return set_records


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:11434/v1", "127.0.0.1 is a loopback address"),
        ("http://10.1.2.3/v1", "10.1.2.3 is a private network address"),
        ("http://192.168.1.20:8000/v1", "a private network address"),
        ("http://100.64.0.9/v1", "a private network address"),
        ("http://169.254.169.254/latest/meta-data", "a cloud metadata address"),
        ("http://[::1]:8000/v1", "::1 is a loopback address"),
        ("http://[fd00:ec2::254]/", "a cloud metadata address"),
        ("http://[fe80::1]/v1", "a link-local address"),
        ("http://[::ffff:127.0.0.1]/v1", "a loopback address"),
        ("http://0.0.0.0:8000/v1", "a reserved address"),
        ("http://224.0.0.1/v1", "a multicast address"),
        ("http://2130706433/v1", "2130706433 (127.0.0.1) is a loopback address"),
        ("http://0x7f.0.0.1/v1", "(127.0.0.1) is a loopback address"),
        ("http://localhost:8000/v1", "is a loopback address"),
    ],
)
def test_alice_cannot_add_an_endpoint_on_a_non_public_address(
    alice_client: Client, url: str, reason: str
) -> None:
    response = alice_client.post(
        "/settings/keys/endpoints",
        {"name": "Sneaky", "base_url": url, "api_key": ALICE_ENDPOINT_KEY},
    )

    assert response.status_code == 400
    assert reason in response.content.decode()
    assert "does not allow custom endpoints to reach" in response.content.decode()
    # The form comes back filled in to be fixed, except for the key.
    assert 'value="Sneaky"' in response.content.decode()
    assert_no_secret(response)
    assert not UserCustomProvider.objects.exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://files.example.com/v1", "Only http:// and https:// addresses can be used."),
        ("file:///etc/passwd", "Only http:// and https:// addresses can be used."),
        ("https://", "The URL has no host."),
        ("https://user:pw@llm.example.com/v1", "Put the key in the key field, not in the URL."),
        ("http://[::1/v1", "This is not a valid URL."),
    ],
)
def test_alice_gets_a_clear_error_for_a_malformed_url(
    alice_client: Client, url: str, message: str
) -> None:
    response = alice_client.post("/settings/keys/endpoints", {"name": "Odd", "base_url": url})

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not UserCustomProvider.objects.exists()


def test_a_hostname_that_resolves_to_a_private_address_is_refused(
    alice_client: Client, dns: Callable[[dict[str, str]], None]
) -> None:
    dns({"llm.internal.example": "10.0.0.7"})

    response = alice_client.post(
        "/settings/keys/endpoints",
        {"name": "Internal", "base_url": "https://llm.internal.example/v1"},
    )

    assert response.status_code == 400
    assert "llm.internal.example (10.0.0.7) is a private network address" in (
        response.content.decode()
    )
    assert not UserCustomProvider.objects.exists()


def test_a_host_with_any_private_address_is_refused(
    alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    def two_records(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_ADDRESS, 443)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 443)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", two_records)

    with pytest.raises(ByokInputError, match="loopback"):
        byok_endpoint_create(user=alice, name="Mixed", base_url="https://mixed.example/v1")


def test_a_public_hostname_is_accepted_and_stored_with_v1_when_it_has_no_path(
    alice: User, dns: Callable[[dict[str, str]], None]
) -> None:
    dns({"llm.example.com": PUBLIC_ADDRESS})

    endpoint = byok_endpoint_create(user=alice, name="Gateway", base_url="https://llm.example.com/")

    assert (endpoint.slug, endpoint.base_url) == ("gateway", "https://llm.example.com/v1")
    assert not endpoint.has_key


def test_private_networks_are_allowed_by_setting_but_metadata_never(settings: Settings) -> None:
    settings.BYOK_ALLOW_PRIVATE_NETWORKS = True

    for url in ("http://127.0.0.1:11434/v1", "http://10.1.2.3/v1", "http://[::1]/v1"):
        url_guard_check(url)
    for url in ("http://169.254.169.254/", "http://[fd00:ec2::254]/", "http://[fe80::1]/"):
        with pytest.raises(UnsafeURLError):
            url_guard_check(url)


def test_an_admin_can_allow_one_network_without_allowing_all(settings: Settings) -> None:
    settings.BYOK_ALLOWED_NETWORKS = ["10.0.0.5/32"]

    url_guard_check("http://10.0.0.5:8000/v1")
    with pytest.raises(UnsafeURLError):
        url_guard_check("http://10.0.0.6:8000/v1")


def test_a_name_that_rebinds_to_a_private_address_after_saving_is_refused_at_call_time(
    alice: User, alice_client: Client, dns: Callable[[dict[str, str]], None], fake_llm: Any
) -> None:
    dns({"rebind.example": PUBLIC_ADDRESS})
    endpoint = byok_endpoint_create(
        user=alice, name="Rebinder", base_url="http://rebind.example/v1"
    )
    model = byok_model_add(user=alice, endpoint=endpoint, provider_model_id="fake-model")
    dns({"rebind.example": "127.0.0.1"})

    response = send(alice_client, "hello", model.model_id)

    assert response.status_code == 400
    assert "rebind.example (127.0.0.1) is a loopback address" in response.content.decode()
    assert not Chat.objects.exists() and not Message.objects.exists()
    assert fake_llm.requests == []


@pytest.fixture
def redirector(fake_llm: Any) -> Iterator[str]:
    """A server on 127.0.0.2 that redirects every request to the fake provider on 127.0.0.1."""
    target = fake_llm.origin
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner_box: list[web.AppRunner] = []

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"{target}{request.path}")

    async def serve() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", redirect)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.2", 0).start()
        runner_box.append(runner)

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(serve())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(5)
    port = runner_box[0].addresses[0][1]
    yield f"http://127.0.0.2:{port}/v1"
    asyncio.run_coroutine_threadsafe(runner_box[0].cleanup(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def test_listing_models_does_not_follow_a_redirect_to_a_private_address(
    alice: User, alice_client: Client, settings: Settings, redirector: str, fake_llm: Any
) -> None:
    # The admin allowed exactly the redirector's address, not the rest of the loopback net.
    settings.BYOK_ALLOWED_NETWORKS = ["127.0.0.2/32"]
    endpoint = byok_endpoint_create(
        user=alice, name="Bouncer", base_url=redirector, api_key=ALICE_ENDPOINT_KEY
    )

    response = alice_client.get(f"/settings/keys/endpoints/{endpoint.slug}/models")

    assert response.status_code == 200
    body = response.content.decode()
    assert "127.0.0.1 is a loopback address" in body
    assert_no_secret(response)
    assert fake_llm.requests == []
    assert not UserByokModel.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_name_that_rebinds_between_the_check_and_the_connection_is_refused_by_the_connection(
    alice: User,
    alice_client: Client,
    dns: Callable[[dict[str, str]], None],
    fake_llm: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check at resolution passed (the name was public then); the connection the answer
    opens resolves the name again, gets the fake provider's loopback address and refuses."""
    import byok.hook
    from tests.chats.helpers import wait_for_answer

    dns({"rebind-late.example": PUBLIC_ADDRESS})
    endpoint = byok_endpoint_create(
        user=alice, name="Late", base_url=f"http://rebind-late.example:{fake_llm.port}/v1"
    )
    model = byok_model_add(user=alice, endpoint=endpoint, provider_model_id="fake-model")
    monkeypatch.setattr(byok.hook, "url_guard_check", lambda url: None)  # passed, back then
    dns({"rebind-late.example": "127.0.0.1"})

    response = send(alice_client, "hello", model.model_id)

    assert response.status_code == 302
    answer = wait_for_answer(Message.objects.get(role="assistant").id)
    assert answer.status == "error"
    assert "rebind-late.example (127.0.0.1) is a loopback address" in answer.error
    assert fake_llm.requests == []
