"""Where a user-supplied URL may point: only http(s), and by default only public addresses.

A custom endpoint's base URL is checked when it is saved and again before every call, each time
against the addresses its host resolves to *then*, so a name that later resolves to a private
address (DNS rebinding) is refused at call time. Our own requests to such endpoints (model
lists, tests) go through `GuardedResolver`, which checks the very addresses aiohttp connects
to, and follow no redirect without checking its target first.

`BYOK_ALLOW_PRIVATE_NETWORKS` lets self-hosted servers (Ollama, vLLM) on loopback, private,
CGNAT and unique-local addresses through; `BYOK_ALLOWED_NETWORKS` lets chosen networks through
one by one. Link-local, multicast, reserved and cloud metadata addresses are never allowed.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from django.conf import settings

from models_registry.calls import AddressRefusedError
from vero.errors import ErrorKind, VeroError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Cloud instance metadata services (AWS/GCP/Azure/OpenStack, AWS IPv6, ECS tasks, Alibaba):
# refused even when private networks are allowed, since they hand out the host's credentials.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(address)
    for address in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200")
)
# What BYOK_ALLOW_PRIVATE_NETWORKS opens: where self-hosted model servers live.
PRIVATE_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(network)
    for network in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "::1/128",
        "fc00::/7",
    )
)
# IPv6 forms that carry an IPv4 address: NAT64's well-known prefix (6to4, Teredo and mapped
# addresses have their own accessors).
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeURLError(VeroError):
    """A URL may not be called from this server; the message says why, in plain words."""

    code = "unsafe_url"
    kind = ErrorKind.INVALID
    default_message = "This URL may not be called from this server."


class UnsafeAddressError(AddressRefusedError):
    """Raised inside aiohttp's connector when a host resolves to a refused address."""


@dataclass(frozen=True)
class GuardPolicy:
    """What a user's endpoint may reach; also the `ConnectGuard` of calls to it."""

    allow_private: bool
    allowed_networks: tuple[IPNetwork, ...]

    def resolver(self) -> GuardedResolver:
        return GuardedResolver(policy=self)


def guard_policy() -> GuardPolicy:
    """Read the policy from settings (per call, so tests and admins can change it)."""
    networks = tuple(
        ipaddress.ip_network(item.strip(), strict=False)
        for item in getattr(settings, "BYOK_ALLOWED_NETWORKS", []) or []
        if item.strip()
    )
    return GuardPolicy(
        allow_private=bool(getattr(settings, "BYOK_ALLOW_PRIVATE_NETWORKS", False)),
        allowed_networks=networks,
    )


def _embedded_ipv4(address: IPAddress) -> IPAddress:
    """Return the IPv4 address an IPv6 address carries (mapped, 6to4, Teredo, NAT64), or itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _describe(address: IPAddress) -> str:
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if any(address in network for network in PRIVATE_NETWORKS):
        return "a private network address"
    return "a reserved address"


def address_refusal(address: IPAddress, *, policy: GuardPolicy) -> str | None:
    """Return why `address` may not be reached (e.g. "a loopback address"), or None if it may."""
    inner = _embedded_ipv4(address)
    for candidate in {address, inner}:
        if candidate in METADATA_ADDRESSES:
            return _describe(candidate)
    # An address that carries an IPv4 address is judged by the address it leads to.
    if any(inner in network for network in policy.allowed_networks):
        return None
    if inner.is_global and not inner.is_multicast:
        return None
    if policy.allow_private and any(inner in network for network in PRIVATE_NETWORKS):
        return None
    return _describe(inner)


def _refusal_message(host: str, address: IPAddress, reason: str) -> str:
    shown = host if host == str(address) else f"{host} ({address})"
    return f"{shown} is {reason}, which this server does not allow custom endpoints to reach."


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise UnsafeURLError(f"The host {host} cannot be found.") from error
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        # Scoped IPv6 addresses come as "fe80::1%eth0".
        text = str(sockaddr[0]).split("%", 1)[0]
        addresses.append(ipaddress.ip_address(text))
    if not addresses:
        raise UnsafeURLError(f"The host {host} cannot be found.")
    return addresses


def url_split_checked(url: str) -> tuple[str, str, int]:
    """Check a URL's form (http(s), a host, no credentials); return scheme, host and port."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise UnsafeURLError("This is not a valid URL.") from error
    if parts.scheme not in ("http", "https"):
        raise UnsafeURLError("Only http:// and https:// addresses can be used.")
    if not parts.hostname:
        raise UnsafeURLError("The URL has no host.")
    if parts.username or parts.password:
        raise UnsafeURLError("Put the key in the key field, not in the URL.")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def url_guard_check(url: str, *, policy: GuardPolicy | None = None) -> None:
    """Raise UnsafeURLError unless `url` is http(s) and every address of its host is allowed.

    Every address must pass, not just one: the client may connect to any of them.
    """
    policy = policy or guard_policy()
    _scheme, host, port = url_split_checked(url)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    addresses = [literal] if literal is not None else _resolve(host, port)
    for address in addresses:
        reason = address_refusal(address, policy=policy)
        if reason is not None:
            raise UnsafeURLError(_refusal_message(host, address, reason))


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, refusing hosts that resolve to an address the policy refuses.

    aiohttp skips the resolver for IP literals, so URLs are also checked with
    `url_guard_check` before each request.
    """

    def __init__(self, *, policy: GuardPolicy) -> None:
        self._policy = policy
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            address = ipaddress.ip_address(str(result["host"]).split("%", 1)[0])
            reason = address_refusal(address, policy=self._policy)
            if reason is not None:
                raise UnsafeAddressError(_refusal_message(host, address, reason))
        return results

    async def close(self) -> None:
        await self._inner.close()
