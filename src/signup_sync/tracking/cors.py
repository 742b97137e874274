"""Allowed browser origins of a public write key: exact origins and ``*.example.com`` patterns.

An origin is ``scheme://host[:port]`` (RFC 6454). A rule is either an exact origin
(``https://www.example.com``, ``http://127.0.0.1:8080``) or a subdomain pattern
(``*.example.com`` = ``https://*.example.com``; ``http://*.example.com:8080`` names the scheme and
port). A pattern matches one or more labels in front of the domain, never the bare domain:
list ``https://example.com`` as well to allow it. Matching compares the normalised scheme,
host and port, so ``https://WWW.Example.com:443`` is ``https://www.example.com``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
# Browsers send hosts as lower-case ASCII (IDNs in punycode).
_HOST = re.compile(r"([a-z0-9_]([a-z0-9_-]*[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?")


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return _HOST.fullmatch(host) is not None
    return True


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class OriginRule:
    """``host`` is the exact host, or the domain a ``*.`` pattern ends with."""

    scheme: str
    host: str
    port: int
    wildcard: bool

    def matches(self, origin: Origin) -> bool:
        if (origin.scheme, origin.port) != (self.scheme, self.port):
            return False
        if not self.wildcard:
            return origin.host == self.host
        return origin.host.endswith("." + self.host)

    def __str__(self) -> str:
        host = f"*.{self.host}" if self.wildcard else self.host
        if ":" in host:  # an IPv6 literal
            host = f"[{host}]"
        port = "" if DEFAULT_PORTS[self.scheme] == self.port else f":{self.port}"
        return f"{self.scheme}://{host}{port}"


def parse_origin(value: str) -> Origin | None:
    """The browser's ``Origin`` header, normalised; None for ``null`` or anything malformed."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or not _valid_host(parts.hostname):
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        return None
    return Origin(scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme])


def parse_rule(value: str) -> OriginRule:
    """One configured rule; ValueError says what is wrong (the value holds no secret)."""
    text = value.strip()
    if "://" not in text:
        text = "https://" + text
    scheme, _, rest = text.partition("://")
    wildcard = rest.startswith("*.")
    origin = parse_origin(f"{scheme}://{rest[2:] if wildcard else rest}")
    if origin is None or "*" in origin.host or "*" in rest[2:]:
        raise ValueError(
            f"{value!r} is not an origin: use https://www.example.com, "
            "http://127.0.0.1:8080 or *.example.com"
        )
    if wildcard:
        try:
            ipaddress.ip_address(origin.host)
        except ValueError:
            pass
        else:
            raise ValueError(f"{value!r}: a *. pattern needs a domain name, not an address")
        if "." not in origin.host:
            raise ValueError(f"{value!r}: a *. pattern needs a domain with a dot (*.example.com)")
    return OriginRule(origin.scheme, origin.host, origin.port, wildcard)


def parse_rules(value: str) -> tuple[OriginRule, ...]:
    """``origin|origin|...`` as written after a write key's ``@``."""
    rules = tuple(parse_rule(part) for part in value.split("|") if part.strip())
    if not rules:
        raise ValueError("an '@' must be followed by at least one origin")
    return rules


def allowed(rules: tuple[OriginRule, ...], origin: str) -> bool:
    """Whether a browser at ``origin`` (the header's value) may use a key with these rules."""
    parsed = parse_origin(origin)
    return parsed is not None and any(rule.matches(parsed) for rule in rules)
