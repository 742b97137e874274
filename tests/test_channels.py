"""The channel rules, table-tested: each row is one event's marketing fields and its channel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from signup_sync.channels import RULES, Channel, derive_channel
from signup_sync.channels.sites import in_list, normalise_source

C = Channel
CASES: list[tuple[str, dict[str, Any], Channel]] = [
    # Direct
    ("direct_signup", {}, C.DIRECT),
    ("direct_signup", {"utm_source": "(direct)", "utm_medium": "(none)"}, C.DIRECT),
    ("manual", {"utm_source": "direct"}, C.DIRECT),
    # Paid Search: a search site with a paid medium, a paid-search medium, or a click id
    ("direct_signup", {"utm_source": "google", "utm_medium": "cpc"}, C.PAID_SEARCH),
    ("direct_signup", {"utm_source": "bing", "utm_medium": "paid"}, C.PAID_SEARCH),
    ("direct_signup", {"utm_source": "duckduckgo", "utm_medium": "retargeting"}, C.PAID_SEARCH),
    ("direct_signup", {"utm_source": "newsletter-partner", "utm_medium": "ppc"}, C.PAID_SEARCH),
    ("direct_signup", {"gclid": "Cj0KCQ"}, C.PAID_SEARCH),
    ("direct_signup", {"msclkid": "abc"}, C.PAID_SEARCH),
    ("direct_signup", {"landing_page": "https://ex.com/?gclid=xyz"}, C.PAID_SEARCH),
    # Paid Social
    ("direct_signup", {"utm_source": "facebook", "utm_medium": "cpc"}, C.PAID_SOCIAL),
    ("direct_signup", {"utm_source": "linkedin", "utm_medium": "paid_social"}, C.PAID_SOCIAL),
    ("direct_signup", {"utm_source": "ig", "utm_medium": "paid"}, C.PAID_SOCIAL),
    ("direct_signup", {"utm_source": "partner", "utm_medium": "paid-social"}, C.PAID_SOCIAL),
    (
        "direct_signup",
        {"utm_source": "facebook", "fbclid": "x", "utm_medium": "cpm"},
        C.PAID_SOCIAL,
    ),
    # Video (paid and organic)
    ("direct_signup", {"utm_source": "youtube", "utm_medium": "cpv"}, C.VIDEO),
    ("direct_signup", {"utm_source": "vimeo"}, C.VIDEO),
    ("direct_signup", {"utm_source": "partner", "utm_medium": "video"}, C.VIDEO),
    ("direct_signup", {"referrer": "https://m.youtube.com/watch?v=1"}, C.VIDEO),
    # Display
    ("direct_signup", {"utm_source": "adnetwork", "utm_medium": "display"}, C.DISPLAY),
    ("direct_signup", {"utm_source": "adnetwork", "utm_medium": "banner"}, C.DISPLAY),
    ("direct_signup", {"utm_source": "adnetwork", "utm_medium": "cpm"}, C.DISPLAY),
    # Organic Social
    ("direct_signup", {"utm_source": "twitter"}, C.ORGANIC_SOCIAL),
    ("direct_signup", {"utm_source": "partner", "utm_medium": "social"}, C.ORGANIC_SOCIAL),
    ("direct_signup", {"fbclid": "IwAR0"}, C.ORGANIC_SOCIAL),
    ("direct_signup", {"referrer": "https://l.facebook.com/l.php?u=x"}, C.ORGANIC_SOCIAL),
    ("direct_signup", {"referrer": "https://t.co/abc"}, C.ORGANIC_SOCIAL),
    ("direct_signup", {"referrer": "https://news.ycombinator.com/item?id=1"}, C.ORGANIC_SOCIAL),
    # Organic Search
    ("direct_signup", {"utm_source": "google", "utm_medium": "organic"}, C.ORGANIC_SEARCH),
    ("direct_signup", {"utm_source": "partner", "utm_medium": "organic"}, C.ORGANIC_SEARCH),
    ("direct_signup", {"referrer": "https://www.google.co.uk/"}, C.ORGANIC_SEARCH),
    ("direct_signup", {"referrer": "https://duckduckgo.com/"}, C.ORGANIC_SEARCH),
    # Referral
    ("direct_signup", {"utm_source": "partner.com", "utm_medium": "referral"}, C.REFERRAL),
    ("direct_signup", {"referrer": "https://blog.partner.com/post"}, C.REFERRAL),
    ("direct_signup", {"referrer": "https://mail.google.com/"}, C.REFERRAL),
    ("referral", {}, C.REFERRAL),
    # Email
    ("direct_signup", {"utm_source": "newsletter", "utm_medium": "email"}, C.EMAIL),
    ("direct_signup", {"utm_source": "e-mail"}, C.EMAIL),
    ("zoom", {"utm_source": "mailchimp", "utm_medium": "e_mail"}, C.EMAIL),
    ("direct_signup", {"landing_page": "/p?utm_source=news&utm_medium=email"}, C.EMAIL),
    # Affiliates
    ("direct_signup", {"utm_source": "partner", "utm_medium": "affiliate"}, C.AFFILIATES),
    # Our own sources are channels of their own unless UTM tags say otherwise
    ("easyappointments", {}, C.APPOINTMENTS),
    ("zoom", {}, C.WEBINARS),
    ("eventbrite", {}, C.EVENTS),
    ("poshvip", {}, C.EVENTS),
    ("eventbrite", {"utm_source": "facebook", "utm_medium": "paid"}, C.PAID_SOCIAL),
    ("eventbrite", {"utm_campaign": "spring"}, C.EVENTS),  # a campaign alone names no channel
    ("zoom", {"utm_source": "mystery", "utm_medium": "thing"}, C.WEBINARS),
    ("poshvip", {"referrer": "https://www.google.com/"}, C.EVENTS),
    # Unassigned: tagged but matching no rule, or nothing known about a manual lead
    ("direct_signup", {"utm_source": "mystery", "utm_medium": "thing"}, C.UNASSIGNED),
    ("direct_signup", {"utm_medium": "print"}, C.UNASSIGNED),
    ("manual", {}, C.UNASSIGNED),
    # A self-referral (the site linking to itself) is no referral
    (
        "direct_signup",
        {"referrer": "https://www.ex.com/a", "landing_page": "https://ex.com/b"},
        C.DIRECT,
    ),
    # Case and whitespace do not matter
    ("direct_signup", {"utm_source": " Google ", "utm_medium": "CPC"}, C.PAID_SEARCH),
    ("direct_signup", {"referrer": "not a url at all"}, C.DIRECT),  # not a host: ignored
    ("direct_signup", {"referrer": "http://[::1"}, C.DIRECT),  # unparseable: ignored
]


@pytest.mark.parametrize(("source_type", "fields", "expected"), CASES)
def test_channel_rules(source_type: str, fields: dict[str, Any], expected: Channel) -> None:
    assert derive_channel(source_type, **fields) == expected.value


def test_every_channel_is_reachable() -> None:
    assert {c for _, _, c in CASES} == set(Channel)


def test_every_rule_is_documented() -> None:
    docs = (Path(__file__).resolve().parent.parent / "docs" / "analytics.md").read_text()
    for rule in RULES:
        assert rule.description in docs, rule.description


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("https://www.Google.com/search?q=x", "google.com"),
        ("l.facebook.com", "facebook.com"),
        ("m.youtube.com", "youtube.com"),
        ("t.co", "t.co"),
        ("Google", "google"),
    ],
)
def test_source_normalisation(raw: str, normalised: str) -> None:
    assert normalise_source(raw) == normalised


def test_site_list_matching() -> None:
    social = frozenset({"facebook", "t.co", "news.ycombinator.com"})
    assert in_list("facebook", social)
    assert in_list("facebook.com", social)
    assert in_list("t.co", social)
    assert in_list("news.ycombinator.com", social)
    assert not in_list("ycombinator.com", social)
    assert not in_list("notfacebook.com", social)
    assert not in_list("", social)
    assert not in_list(None, social)
