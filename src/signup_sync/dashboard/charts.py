"""Charts as inline SVG, drawn on the server: no script, no CDN, readable offline."""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup, escape

from signup_sync.analytics.schemas import Bucket, StageCount
from signup_sync.dashboard.service import WeekPoint, bucket_label

LEADS_COLOUR = "#8fb8e8"
CONVERSIONS_COLOUR = "#1f5fa8"
BAR_COLOUR = "#2f6fbe"
AXIS_COLOUR = "#9aa5b1"
TEXT_COLOUR = "#243b53"


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten that is >= value (at least 1)."""
    if value <= 1:
        return 1
    power = int(10 ** math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def _svg(width: int, height: int, label: str, body: list[str]) -> Markup:
    # Every piece of text in ``body`` went through escape() in _text/_rect.
    return Markup(  # noqa: S704
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{escape(label)}" class="chart">'
        f"<title>{escape(label)}</title>{''.join(body)}</svg>"
    )


def _text(x: float, y: float, text: object, *, anchor: str = "start", size: int = 12) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{TEXT_COLOUR}" '
        f'text-anchor="{anchor}">{escape(str(text))}</text>'
    )


def _rect(x: float, y: float, w: float, h: float, fill: str, title: str) -> str:
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" '
        f'fill="{fill}"><title>{escape(title)}</title></rect>'
    )


def funnel_chart(stages: Sequence[StageCount]) -> Markup:
    """One horizontal bar per stage, its length the share of the cohort that reached it."""
    width, label_w, bar_w, row_h = 720, 130, 320, 34
    height = row_h * len(stages) + 8
    top = max((s.leads for s in stages), default=0) or 1
    body = []
    for i, s in enumerate(stages):
        y = 4 + i * row_h
        length = bar_w * s.leads / top
        body.append(_text(0, y + 20, f"{s.stage}. {s.name.replace('_', ' ')}"))
        body.append(_rect(label_w, y + 4, length, row_h - 10, BAR_COLOUR, f"{s.leads:,} leads"))
        share = f"{s.leads:,}  ({s.rate_from_start:.1%} of all"
        share += f", {s.rate_from_previous:.1%} of previous)" if i else ")"
        body.append(_text(label_w + length + 8, y + 20, share))
    return _svg(width, height, "Leads reaching each funnel stage", body)


def weekly_chart(weeks: Sequence[WeekPoint]) -> Markup:
    """Leads (light) and conversions (dark) per week, as bars side by side."""
    width, height, left, bottom, top_pad = 720, 240, 48, 36, 24
    plot_w, plot_h = width - left - 8, height - bottom - top_pad
    if not weeks:
        return _svg(width, 60, "No leads in this period", [_text(8, 30, "No leads in this period")])
    top = nice_ceiling(max(max(w.leads, w.conversions) for w in weeks))
    slot = plot_w / len(weeks)
    body = [
        f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{width - 8}" y2="{top_pad + plot_h}" '
        f'stroke="{AXIS_COLOUR}"/>'
    ]
    for fraction in (0, 0.5, 1):
        y = top_pad + plot_h * (1 - fraction)
        tick = top * fraction
        label = f"{tick:,.0f}" if tick == int(tick) else f"{tick:,.1f}"
        body.append(_text(left - 6, y + 4, label, anchor="end", size=11))
        body.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - 8}" y2="{y:.1f}" '
            f'stroke="{AXIS_COLOUR}" stroke-opacity="0.35"/>'
        )
    label_every = max(1, math.ceil(len(weeks) / 8))
    for i, w in enumerate(weeks):
        x = left + i * slot
        bar = max(slot * 0.4, 1)
        for offset, value, colour, what in (
            (slot * 0.1, w.leads, LEADS_COLOUR, "leads"),
            (slot * 0.1 + bar, w.conversions, CONVERSIONS_COLOUR, "conversions"),
        ):
            h = plot_h * value / top
            title = f"week of {w.start.isoformat()}: {value:,} {what}"
            body.append(_rect(x + offset, top_pad + plot_h - h, bar, h, colour, title))
        if i % label_every == 0:
            body.append(
                _text(
                    x + slot / 2, height - 18, w.start.strftime("%b %d"), anchor="middle", size=11
                )
            )
    body.append(_rect(left, 4, 10, 10, LEADS_COLOUR, "leads"))
    body.append(_text(left + 14, 13, "new leads", size=11))
    body.append(_rect(left + 100, 4, 10, 10, CONVERSIONS_COLOUR, "conversions"))
    body.append(_text(left + 114, 13, "conversions", size=11))
    return _svg(width, height, "New leads and conversions per week", body)


def histogram_chart(buckets: Sequence[Bucket]) -> Markup:
    """Converted leads by days from first touch, one bar per bucket."""
    width, height, bottom, top_pad = 720, 220, 40, 20
    plot_h = height - bottom - top_pad
    top = nice_ceiling(max((b.leads for b in buckets), default=0))
    slot = width / max(len(buckets), 1)
    body = [
        f'<line x1="0" y1="{top_pad + plot_h}" x2="{width}" y2="{top_pad + plot_h}" '
        f'stroke="{AXIS_COLOUR}"/>'
    ]
    for i, b in enumerate(buckets):
        x = i * slot
        h = plot_h * b.leads / top
        label = bucket_label(b)
        title = f"{label} days: {b.leads:,} converted leads"
        body.append(_rect(x + slot * 0.15, top_pad + plot_h - h, slot * 0.7, h, BAR_COLOUR, title))
        body.append(_text(x + slot / 2, top_pad + plot_h - h - 4, f"{b.leads:,}", anchor="middle"))
        body.append(_text(x + slot / 2, height - 20, label, anchor="middle", size=11))
    body.append(
        _text(
            width / 2, height - 4, "days from first touch to conversion", anchor="middle", size=11
        )
    )
    return _svg(width, height, "Days from first touch to conversion", body)
