"""Site lists the channel rules match a source (utm_source or referrer host) against.

Entries without a dot are brand names: they match a bare source (``google``) and a host whose
first label is the brand (``www.google.co.uk``, ``l.facebook.com``). Entries with a dot match
that host or any sub-domain of it (``t.co``, ``news.ycombinator.com``).
"""

from __future__ import annotations

SEARCH: frozenset[str] = frozenset(
    {
        "google", "bing", "yahoo", "search.yahoo.com", "duckduckgo", "baidu", "yandex",
        "ecosia", "ask", "aol", "naver", "seznam", "startpage", "qwant", "search.brave.com",
        "sogou", "so.com", "msn", "daum", "kagi", "perplexity",
    }
)  # fmt: skip

SOCIAL: frozenset[str] = frozenset(
    {
        "facebook", "fb", "instagram", "ig", "linkedin", "lnkd.in", "twitter", "x.com", "t.co",
        "tiktok", "pinterest", "reddit", "snapchat", "threads", "threads.net", "mastodon",
        "tumblr", "quora", "news.ycombinator.com", "whatsapp", "t.me", "telegram", "discord",
        "vk", "weibo", "meetup", "medium", "bsky.app", "bluesky", "nextdoor", "messenger",
    }
)  # fmt: skip

VIDEO: frozenset[str] = frozenset(
    {"youtube", "youtu.be", "vimeo", "twitch", "dailymotion", "wistia", "vidyard", "loom"}
)

EMAIL_WORDS: frozenset[str] = frozenset({"email", "e-mail", "e_mail", "e mail"})

# Hosts whose first label is one of these are reduced to the next label (www.google.com ->
# google.com): mobile and link-shim prefixes that say nothing about the site.
HOST_PREFIXES: frozenset[str] = frozenset({"www", "m", "l", "lm", "mobile", "web", "amp"})


def normalise_source(source: str) -> str:
    """Lower-case, trimmed, without a scheme, path or meaningless host prefix."""
    text = source.strip().lower()
    if "://" in text:
        text = text.split("://", 1)[1]
    text = text.split("/", 1)[0].split(":", 1)[0]
    labels = text.split(".")
    while len(labels) > 2 and labels[0] in HOST_PREFIXES:
        labels = labels[1:]
    return ".".join(labels)


def in_list(source: str | None, sites: frozenset[str]) -> bool:
    """Whether a normalised source belongs to a site list (see the module docstring)."""
    if not source:
        return False
    if source in sites:
        return True
    labels = source.split(".")
    if len(labels) > 1 and labels[0] in sites:
        return True
    return any(source.endswith("." + site) for site in sites if "." in site)
