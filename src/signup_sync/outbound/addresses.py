"""Which addresses the service may connect to, and resolving a host name to checked ones.

By default only global unicast addresses are allowed: loopback, private, shared (CGNAT),
link-local (the cloud metadata address 169.254.169.254 among them), multicast, reserved and
unspecified addresses are refused, IPv4 and IPv6 alike; an IPv4-mapped IPv6 address is judged
as the IPv4 address it carries. The operator allows more with SIGNUP_SYNC_OUTBOUND_ALLOW.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# (host, port) -> the addresses it resolves to, as text.
Resolver = Callable[[str, int], Awaitable[list[str]]]

ALLOW_SETTING = "SIGNUP_SYNC_OUTBOUND_ALLOW"
# A config-time look-up that takes longer than this is left to the connect-time check.
CONFIG_RESOLVE_SECONDS = 3.0


class OutboundRefused(Exception):
    """A connection the policy does not allow; the message names the host and the rule."""


class UnresolvedHost(OSError):
    """The host name does not resolve (a network problem, not a policy decision)."""


def parse_allow(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs (or single addresses) from the allow setting; ValueError names a bad one."""
    networks: list[IPNetwork] = []
    for raw in values:
        text = raw.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"{text!r} is not an address or a CIDR such as 10.0.0.0/8") from None
    return tuple(networks)


def _kind(ip: IPAddress) -> str | None:
    """Why an address is refused by default, or None for a global unicast address."""
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private:
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "non-public"
    return None


def as_address(text: str) -> IPAddress | None:
    """The address a text names (brackets and an IPv6 zone dropped), else None."""
    text = text.strip().strip("[]").split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver (getaddrinfo), addresses in its order, no repeats."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvedHost(f"{host} does not resolve ({type(exc).__name__})") from None
    seen: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in seen:
            seen.append(address)
    return seen


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """The addresses outbound connections may reach; strict unless ``allow`` widens it."""

    allow: tuple[IPNetwork, ...] = ()
    resolver: Resolver = field(default=system_resolver, compare=False)

    @classmethod
    def allowing(cls, *cidrs: str, resolver: Resolver | None = None) -> OutboundPolicy:
        return cls(allow=parse_allow(cidrs), resolver=resolver or system_resolver)

    def refusal(self, ip: IPAddress) -> str | None:
        """Why this address is refused (its kind), or None when it may be reached."""
        if any(ip.version == net.version and ip in net for net in self.allow):
            return None
        return _kind(ip)

    def _refused(self, host: str, ip: IPAddress, kind: str) -> OutboundRefused:
        shown = host if as_address(host) is not None else f"{host} (resolves to {ip})"
        return OutboundRefused(
            f"{shown} is a {kind} address; outbound requests go only to public addresses "
            f"unless {ALLOW_SETTING} allows it (e.g. {ALLOW_SETTING}={ip}/32)"
        )

    async def resolve(self, host: str, port: int) -> list[str]:
        """Every address ``host`` resolves to, all checked; raises OutboundRefused.

        One refused address refuses the host: a name that answers both public and private
        addresses could be steered to the private one.
        """
        literal = as_address(host)
        if literal is not None:
            kind = self.refusal(literal)
            if kind is not None:
                raise self._refused(host, literal, kind)
            return [str(literal)]
        answers = await self.resolver(host, port)
        if not answers:
            raise UnresolvedHost(f"{host} does not resolve")
        for answer in answers:
            ip = as_address(answer)
            if ip is None:
                raise OutboundRefused(f"{host} resolves to something that is not an address")
            kind = self.refusal(ip)
            if kind is not None:
                raise self._refused(host, ip, kind)
        return [str(as_address(a)) for a in answers]

    async def check_host(self, host: str, port: int) -> None:
        """The config-time check: refuse a host that is, or resolves to, a refused address.

        A name that does not resolve now (offline, not yet created) is accepted: the
        connect-time check decides when the service actually connects.
        """
        try:
            async with asyncio.timeout(CONFIG_RESOLVE_SECONDS):
                await self.resolve(host, port)
        except (UnresolvedHost, OSError, TimeoutError):
            return

    async def check_url(self, url: str) -> None:
        """``check_host`` for a URL; ValueError when it is not an http(s) URL with a host."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError:
            raise ValueError("is not a URL") from None
        if parts.scheme.lower() not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL")
        if not parts.hostname:
            raise ValueError("must name a host")
        default = 443 if parts.scheme.lower() == "https" else 80
        await self.check_host(parts.hostname, port or default)
