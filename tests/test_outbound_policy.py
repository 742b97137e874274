"""The outbound policy: which addresses are refused, at connect time, on redirects, on rebinding."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from signup_sync.outbound import OutboundPolicy, OutboundRefused, guarded_client
from signup_sync.outbound.addresses import parse_allow
from signup_sync.sources.access import SourceAccess
from signup_sync.sources.base import RetryPolicy, SourceConfig, SourceContext
from signup_sync.sources.errors import FatalSourceError
from signup_sync.sources.http import SourceHttp
from tests.fakes.listener import Listener, listening

STRICT = OutboundPolicy()
REFUSED = [
    "127.0.0.1",
    "127.1.2.3",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # shared address space (CGNAT)
    "0.0.0.0",  # noqa: S104 - an address to refuse, not to bind
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:169.254.169.254",
    "[::ffff:10.0.0.1]",
]


def fixed(*answers: str) -> object:
    async def resolver(host: str, port: int) -> list[str]:
        return list(answers)

    return resolver


@pytest.mark.parametrize("host", REFUSED)
async def test_the_default_refuses_internal_addresses(host: str) -> None:
    with pytest.raises(OutboundRefused, match="SIGNUP_SYNC_OUTBOUND_ALLOW"):
        await STRICT.resolve(host, 80)


async def test_public_addresses_pass_and_the_allow_list_widens() -> None:
    assert await STRICT.resolve("93.184.216.34", 443) == ["93.184.216.34"]
    assert await STRICT.resolve("2606:2800:220:1::1", 443) == ["2606:2800:220:1::1"]
    lan = OutboundPolicy.allowing("10.0.0.0/8", "::1")
    assert await lan.resolve("10.9.8.7", 80) == ["10.9.8.7"]
    assert await lan.resolve("::1", 80) == ["::1"]
    with pytest.raises(OutboundRefused):
        await lan.resolve("127.0.0.1", 80)
    with pytest.raises(ValueError, match="not an address or a CIDR"):
        parse_allow(["10.0.0.0/33"])


async def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    policy = OutboundPolicy(resolver=fixed("10.1.1.1"))  # type: ignore[arg-type]
    with pytest.raises(OutboundRefused, match=r"internal\.example \(resolves to 10\.1\.1\.1\)"):
        await policy.resolve("internal.example", 443)
    # One private answer among public ones refuses the name (it could be steered there).
    mixed = OutboundPolicy(resolver=fixed("93.184.216.34", "192.168.0.2"))  # type: ignore[arg-type]
    with pytest.raises(OutboundRefused):
        await mixed.resolve("mixed.example", 443)
    with pytest.raises(OutboundRefused):
        await STRICT.check_url("http://localhost:8001/")  # the system resolver: /etc/hosts


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_ipv4_and_its_mapped_ipv6_form_are_judged_alike(value: int) -> None:
    ip = ipaddress.IPv4Address(value)
    mapped = ipaddress.IPv6Address(f"::ffff:{ip}")
    v4, v6 = STRICT.refusal(ip), STRICT.refusal(mapped.ipv4_mapped or mapped)
    assert v4 == v6
    # Allowed exactly when the address is global unicast.
    assert (v4 is None) == (ip.is_global and not ip.is_multicast)


def context(policy: OutboundPolicy) -> SourceContext:
    return SourceContext(
        source_id=1,
        source_type="eventbrite",
        name="t",
        config=SourceConfig(),
        secrets={},
        cursor=None,
        run_started_at=datetime.now(UTC),
        retry=RetryPolicy(attempts=1, wait_scale=0),
        access=SourceAccess(outbound=policy),
    )


async def test_a_request_to_loopback_is_refused_before_anything_is_sent() -> None:
    listener = Listener()
    with listening(listener) as base_url:
        async with guarded_client(STRICT) as client:
            with pytest.raises(OutboundRefused, match="loopback"):
                await client.get(base_url + "/v3/users/me/")
        http = SourceHttp(context(STRICT), base_url=base_url)
        try:
            with pytest.raises(FatalSourceError, match=r"refused: 127\.0\.0\.1 is a loopback"):
                await http.get_json("x")
        finally:
            await http.aclose()
    assert listener.seen == []


async def test_it_connects_to_the_checked_address_and_keeps_the_host_name() -> None:
    listener = Listener(body=b"{}", content_type="application/json")
    policy = OutboundPolicy.allowing("127.0.0.1/32", resolver=fixed("127.0.0.1"))  # type: ignore[arg-type]
    with listening(listener) as base_url:
        port = httpx.URL(base_url).port
        async with guarded_client(policy) as client:
            # ".invalid" never resolves through DNS: the connection went to the checked address.
            r = await client.get(f"http://api.source.invalid:{port}/ping")
    assert r.status_code == 200
    assert listener.seen[0]["host"] == f"api.source.invalid:{port}"


async def test_every_redirect_hop_is_checked() -> None:
    inner = Listener(body=b"secret metadata")
    with listening(inner) as inner_url:
        outer = Listener(redirect_to=inner_url.replace("127.0.0.1", "metadata.internal") + "/x")
        resolver = {"metadata.internal": ["10.0.0.5"], "front.example": ["127.0.0.1"]}

        async def resolve(host: str, port: int) -> list[str]:
            return resolver[host]

        policy = OutboundPolicy.allowing("127.0.0.1/32", resolver=resolve)
        with listening(outer) as outer_url:
            port = httpx.URL(outer_url).port
            async with guarded_client(policy, follow_redirects=True) as client:
                with pytest.raises(OutboundRefused, match=r"10\.0\.0\.5"):
                    await client.get(f"http://front.example:{port}/start")
                # A redirect straight to an address literal is refused the same way.
                outer.redirect_to = "http://169.254.169.254/latest/meta-data/"
                with pytest.raises(OutboundRefused, match="link-local"):
                    await client.get(f"http://front.example:{port}/start")
    assert len(outer.seen) == 2 and inner.seen == []


async def test_dns_rebinding_is_caught_at_connect_time() -> None:
    """The name passes the config-time check, then resolves to a private address."""
    listener = Listener(body=b"{}", content_type="application/json")
    answers = iter([["127.0.0.1"]])  # first look-up: the allowed address; then: private

    async def rebinding(host: str, port: int) -> list[str]:
        return next(answers, ["10.0.0.9"])

    policy = OutboundPolicy.allowing("127.0.0.1/32", resolver=rebinding)
    with listening(listener) as base_url:
        port = httpx.URL(base_url).port
        url = f"http://rebind.example:{port}/v3/"
        await policy.check_url(url)  # what POST /sources does: accepted
        http = SourceHttp(context(policy), base_url=url)
        try:
            with pytest.raises(FatalSourceError, match=r"10\.0\.0\.9"):
                await http.get_json("users/me/")
        finally:
            await http.aclose()
    assert listener.seen == []


async def test_unix_sockets_and_env_proxies_are_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    listener = Listener()
    with listening(listener) as base_url:
        # A proxy would connect on our behalf to wherever it likes: it is ignored.
        monkeypatch.setenv("HTTP_PROXY", base_url)
        monkeypatch.setenv("ALL_PROXY", base_url)
        async with guarded_client(STRICT) as client:
            with pytest.raises(OutboundRefused):
                await client.get("http://10.0.0.1/")
    assert listener.seen == []
