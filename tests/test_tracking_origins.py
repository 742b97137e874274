"""Allowed origins of public write keys: parsing the SEGMENT_WRITE_KEYS syntax and matching."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signup_sync.settings import SettingsError, load_settings
from signup_sync.tracking.config import parse_write_keys
from signup_sync.tracking.cors import allowed, parse_origin, parse_rule, parse_rules

LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8).map(
    lambda label: f"a{label}z"  # no leading or trailing hyphen
)
DOMAIN = st.lists(LABEL, min_size=2, max_size=4).map(".".join)
SCHEME = st.sampled_from(["http", "https"])
PORT = st.one_of(st.none(), st.integers(min_value=1, max_value=65535))


def origin_of(scheme: str, host: str, port: int | None) -> str:
    return f"{scheme}://{host}" + (f":{port}" if port is not None else "")


@given(SCHEME, DOMAIN, PORT)
def test_an_exact_origin_allows_itself_whatever_the_spelling(
    scheme: str, host: str, port: int | None
) -> None:
    origin = origin_of(scheme, host, port)
    rules = (parse_rule(origin),)
    assert allowed(rules, origin)
    assert allowed(rules, origin_of(scheme.upper(), host.upper(), port))
    assert not allowed(rules, origin_of(scheme, "x" + host, port))
    assert not allowed(rules, origin_of(scheme, "a." + host, port))
    other = "https" if scheme == "http" else "http"
    assert not allowed(rules, origin_of(other, host, port))


@given(DOMAIN, st.lists(LABEL, min_size=1, max_size=3).map(".".join))
def test_a_pattern_allows_subdomains_only(domain: str, sub: str) -> None:
    rules = (parse_rule(f"*.{domain}"),)
    assert allowed(rules, f"https://{sub}.{domain}")
    assert allowed(rules, f"https://{sub}.{domain}:443")
    assert not allowed(rules, f"https://{domain}")  # the bare domain is listed on its own
    assert not allowed(rules, f"https://{sub}{domain}")  # a look-alike, not a subdomain
    assert not allowed(rules, f"http://{sub}.{domain}")  # no scheme in the rule: https
    assert not allowed(rules, f"https://{sub}.{domain}:8443")


@given(st.text(max_size=40))
def test_any_origin_header_is_answered_without_error(value: str) -> None:
    rules = parse_rules("https://www.example.com|*.example.net|http://127.0.0.1:8080")
    assert allowed(rules, value) in (True, False)


@pytest.mark.parametrize("value", ["null", "file://", "https://a.com/path", "ftp://a.com", ""])
def test_opaque_or_malformed_origins_match_nothing(value: str) -> None:
    assert parse_origin(value) is None


@pytest.mark.parametrize(
    "rule", ["www.example.com/x", "*.com", "*.127.0.0.1", "ftp://a.com", "https://*", "a*.b.com"]
)
def test_bad_rules_are_refused(rule: str) -> None:
    with pytest.raises(ValueError, match=r"origin|pattern"):
        parse_rule(rule)


def test_key_syntax_old_and_new() -> None:
    keys = parse_write_keys(
        [
            "wk-server-0000001",
            "wk-referral-000002=referral",
            "wk-public-0000003@https://www.example.com|*.example.net",
            "wk-public-0000004=referral@http://127.0.0.1:8080",
        ]
    )
    by_key = {k.decode(): v for k, v in keys.items()}
    assert not by_key["wk-server-0000001"].public
    assert by_key["wk-referral-000002"].source_type == "referral"
    public = by_key["wk-public-0000003"]
    assert (public.source_type, [str(r) for r in public.origins]) == (
        "direct_signup",
        ["https://www.example.com", "https://*.example.net"],
    )
    assert by_key["wk-public-0000004"].source_type == "referral"
    assert [str(r) for r in by_key["wk-public-0000004"].origins] == ["http://127.0.0.1:8080"]


def test_a_bad_origin_stops_start_up_without_echoing_the_key() -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(segment_write_keys="wk-secret-value-99@not an origin")
    message = str(error.value)
    assert "write key #1" in message and "SEGMENT_WRITE_KEYS" in message
    assert "wk-secret-value-99" not in message
