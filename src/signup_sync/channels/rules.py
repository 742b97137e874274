"""The channel of an event, from one ordered table of rules (first match wins).

Adapted from GA4's default channel group (see docs/analytics.md for the full table and
what differs). Our own appointment, webinar and event sources are channels of their own
unless UTM tags or click ids name a known channel.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from urllib.parse import parse_qs, urlsplit

from signup_sync.channels.sites import (
    EMAIL_WORDS,
    SEARCH,
    SOCIAL,
    VIDEO,
    in_list,
    normalise_source,
)


class Channel(StrEnum):
    DIRECT = "Direct"
    ORGANIC_SEARCH = "Organic Search"
    PAID_SEARCH = "Paid Search"
    ORGANIC_SOCIAL = "Organic Social"
    PAID_SOCIAL = "Paid Social"
    EMAIL = "Email"
    REFERRAL = "Referral"
    AFFILIATES = "Affiliates"
    DISPLAY = "Display"
    VIDEO = "Video"
    EVENTS = "Events"
    WEBINARS = "Webinars"
    APPOINTMENTS = "Appointments"
    UNASSIGNED = "Unassigned"


# GA4's "paid" medium pattern: anything with "cp" (cpc, cpm, cpa...), ppc, retargeting, paid*.
PAID_MEDIUM = re.compile(r"^(.*cp.*|ppc|retargeting|paid.*)$")
PAID_SEARCH_MEDIUMS = frozenset({"cpc", "ppc", "paidsearch", "paid_search", "paid-search", "sem"})
PAID_SOCIAL_MEDIUMS = frozenset({"paid_social", "paid-social", "paidsocial", "social_paid"})
DISPLAY_MEDIUMS = frozenset({"display", "banner", "expandable", "interstitial", "cpm"})
SOCIAL_MEDIUMS = frozenset(
    {"social", "social-network", "social-media", "sm", "social network", "social media"}
)
HOSTNAME = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")
NO_MEDIUM = frozenset({"", "(none)", "(not set)", "none"})
OWN_SOURCE_CHANNELS = {
    "easyappointments": Channel.APPOINTMENTS,
    "zoom": Channel.WEBINARS,
    "eventbrite": Channel.EVENTS,
    "poshvip": Channel.EVENTS,
}


@dataclass(frozen=True, slots=True)
class Signals:
    """What the rules look at, derived from one event (see ``signals``)."""

    source_type: str
    source: str  # utm_source, else implied by a click id; normalised
    medium: str  # utm_medium, else implied by a click id; lower-case
    campaign: str
    tagged: bool  # any utm_source / utm_medium or click id
    referrer_host: str  # external referrer host, normalised; "" when none or same site


@dataclass(frozen=True, slots=True)
class Rule:
    channel: Channel
    description: str
    applies: Callable[[Signals], bool]


def _paid(s: Signals) -> bool:
    return bool(PAID_MEDIUM.match(s.medium))


RULES: tuple[Rule, ...] = (
    Rule(
        Channel.DIRECT,
        "source is `(direct)` or `direct` and medium is empty, `(none)` or `(not set)`",
        lambda s: s.source in ("(direct)", "direct") and s.medium in NO_MEDIUM,
    ),
    Rule(
        Channel.PAID_SEARCH,
        "source is a search site and medium is paid",
        lambda s: in_list(s.source, SEARCH) and _paid(s),
    ),
    Rule(
        Channel.PAID_SOCIAL,
        "source is a social site and medium is paid",
        lambda s: in_list(s.source, SOCIAL) and _paid(s),
    ),
    Rule(
        Channel.VIDEO,
        "source is a video site and medium is paid",
        lambda s: in_list(s.source, VIDEO) and _paid(s),
    ),
    Rule(
        Channel.DISPLAY,
        "medium is `display`, `banner`, `expandable`, `interstitial` or `cpm`",
        lambda s: s.medium in DISPLAY_MEDIUMS,
    ),
    Rule(
        Channel.PAID_SEARCH,
        "medium is `cpc`, `ppc`, `paidsearch`, `paid_search`, `paid-search` or `sem`",
        lambda s: s.medium in PAID_SEARCH_MEDIUMS,
    ),
    Rule(
        Channel.PAID_SOCIAL,
        "medium is `paid_social`, `paid-social`, `paidsocial` or `social_paid`",
        lambda s: s.medium in PAID_SOCIAL_MEDIUMS,
    ),
    Rule(
        Channel.ORGANIC_SOCIAL,
        "source is a social site, or medium is `social`, `social-network`, `social-media`, "
        "`sm`, `social network` or `social media`",
        lambda s: in_list(s.source, SOCIAL) or s.medium in SOCIAL_MEDIUMS,
    ),
    Rule(
        Channel.VIDEO,
        "source is a video site, or medium contains `video`",
        lambda s: in_list(s.source, VIDEO) or "video" in s.medium,
    ),
    Rule(
        Channel.ORGANIC_SEARCH,
        "source is a search site, or medium is `organic`",
        lambda s: in_list(s.source, SEARCH) or s.medium == "organic",
    ),
    Rule(
        Channel.REFERRAL,
        "medium is `referral`, `app` or `link`",
        lambda s: s.medium in ("referral", "app", "link"),
    ),
    Rule(
        Channel.EMAIL,
        "source or medium is `email`, `e-mail`, `e_mail` or `e mail`",
        lambda s: s.source in EMAIL_WORDS or s.medium in EMAIL_WORDS,
    ),
    Rule(
        Channel.AFFILIATES,
        "medium is `affiliate` or `affiliates`",
        lambda s: s.medium in ("affiliate", "affiliates"),
    ),
    Rule(
        Channel.APPOINTMENTS,
        "no rule above matched and the event comes from `easyappointments`",
        lambda s: s.source_type == "easyappointments",
    ),
    Rule(
        Channel.WEBINARS,
        "no rule above matched and the event comes from `zoom`",
        lambda s: s.source_type == "zoom",
    ),
    Rule(
        Channel.EVENTS,
        "no rule above matched and the event comes from `eventbrite` or `poshvip`",
        lambda s: s.source_type in ("eventbrite", "poshvip"),
    ),
    Rule(
        Channel.UNASSIGNED,
        "tagged (a UTM source/medium or a click id) but no rule above matched",
        lambda s: s.tagged,
    ),
    Rule(
        Channel.ORGANIC_SEARCH,
        "untagged, and the referrer is a search site",
        lambda s: in_list(s.referrer_host, SEARCH),
    ),
    Rule(
        Channel.ORGANIC_SOCIAL,
        "untagged, and the referrer is a social site",
        lambda s: in_list(s.referrer_host, SOCIAL),
    ),
    Rule(
        Channel.VIDEO,
        "untagged, and the referrer is a video site",
        lambda s: in_list(s.referrer_host, VIDEO),
    ),
    Rule(
        Channel.REFERRAL,
        "untagged, and another site referred (or the event comes from `referral`)",
        lambda s: bool(s.referrer_host) or s.source_type == "referral",
    ),
    Rule(
        Channel.DIRECT,
        "untagged, no referrer, and the event comes from `direct_signup`",
        lambda s: s.source_type == "direct_signup",
    ),
    Rule(Channel.UNASSIGNED, "anything else (e.g. an untagged `manual` lead)", lambda s: True),
)

# A click id with no UTM source says which ad network the click came from.
CLICK_IDS = (("gclid", "google"), ("msclkid", "bing"), ("fbclid", "facebook"))


def _host(url: str | None) -> str:
    if not url:
        return ""
    text = url.strip()
    if "://" not in text:
        text = "//" + text
    try:
        host = normalise_source(urlsplit(text).hostname or "")
    except ValueError:
        return ""
    return host if HOSTNAME.match(host) else ""


def _landing_params(landing_page: str | None) -> dict[str, str]:
    """UTM tags and click ids in the landing page's query, used when the fields are empty."""
    if not landing_page or "?" not in landing_page:
        return {}
    try:
        query = parse_qs(urlsplit(landing_page).query)
    except ValueError:
        return {}
    return {k.lower(): v[0].strip() for k, v in query.items() if v and v[0].strip()}


def signals(
    source_type: str,
    *,
    utm_source: str | None = None,
    utm_medium: str | None = None,
    utm_campaign: str | None = None,
    referrer: str | None = None,
    landing_page: str | None = None,
    gclid: str | None = None,
    fbclid: str | None = None,
    msclkid: str | None = None,
) -> Signals:
    url = _landing_params(landing_page)
    source = utm_source or url.get("utm_source") or ""
    medium = (utm_medium or url.get("utm_medium") or "").strip().lower()
    campaign = (utm_campaign or url.get("utm_campaign") or "").strip().lower()
    clicks = {"gclid": gclid, "msclkid": msclkid, "fbclid": fbclid}
    clicked = [name for name, _ in CLICK_IDS if clicks[name] or url.get(name)]
    if not source and clicked:
        source = dict(CLICK_IDS)[clicked[0]]
    # Google and Microsoft add their click ids to paid clicks only; Facebook adds fbclid to
    # every outbound link, so it names the site but not whether the click was paid.
    if not medium and clicked and clicked[0] in ("gclid", "msclkid"):
        medium = "cpc"
    referrer_host = _host(referrer)
    if referrer_host and referrer_host == _host(landing_page):
        referrer_host = ""  # a self-referral says nothing about where the visitor came from
    return Signals(
        source_type=source_type,
        source=normalise_source(source) if source else "",
        medium=medium,
        campaign=campaign,
        tagged=bool(source or medium),
        referrer_host=referrer_host,
    )


def channel_of(s: Signals) -> Channel:
    return next(rule.channel for rule in RULES if rule.applies(s))


# Pure and called once per stored event: a bounded memo (a few hundred distinct
# tag combinations cover almost all traffic) saves the URL parsing and the rule walk.
@lru_cache(maxsize=8192)
def derive_channel(
    source_type: str,
    *,
    utm_source: str | None = None,
    utm_medium: str | None = None,
    utm_campaign: str | None = None,
    referrer: str | None = None,
    landing_page: str | None = None,
    gclid: str | None = None,
    fbclid: str | None = None,
    msclkid: str | None = None,
) -> str:
    """The channel name of one event (a ``Channel`` value)."""
    return channel_of(
        signals(
            source_type,
            utm_source=utm_source,
            utm_medium=utm_medium,
            utm_campaign=utm_campaign,
            referrer=referrer,
            landing_page=landing_page,
            gclid=gclid,
            fbclid=fbclid,
            msclkid=msclkid,
        )
    ).value
