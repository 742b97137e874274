"""Charts as inline SVG, drawn on the server: no script, no CDN, readable offline."""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup, escape

from signup_sync.analytics.schemas import Bucket, StageCount
from signup_sync.dashboard.service import WeekPoint, bucket_label

LEADS_COLOUR = "#8fb8e8"
CONVERSIONS_COLOUR = "#1f5fa8"
RATE_COLOUR = "#d9822b"
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


_LEFT, _RIGHT, _WIDTH, _HEIGHT, _BOTTOM, _TOP = 52, 52, 720, 240, 44, 24


def _y_axis(top: float, plot_h: float, *, right: bool, fmt: str) -> list[str]:
    """Three ticks (0, half, top) on the left or right edge, with light grid lines."""
    body = []
    for fraction in (0, 0.5, 1):
        y = _TOP + plot_h * (1 - fraction)
        tick = top * fraction
        label = fmt.format(tick)
        x = _WIDTH - _RIGHT + 6 if right else _LEFT - 6
        body.append(_text(x, y + 4, label, anchor="start" if right else "end", size=11))
        if not right:
            body.append(
                f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_WIDTH - _RIGHT}" y2="{y:.1f}" '
                f'stroke="{AXIS_COLOUR}" stroke-opacity="0.35"/>'
            )
    return body


def _week_axis(weeks: Sequence[WeekPoint], slot: float) -> list[str]:
    """Day and month under every few weeks; the year under the first and at each new year."""
    body = [
        f'<line x1="{_LEFT}" y1="{_HEIGHT - _BOTTOM}" x2="{_WIDTH - _RIGHT}" '
        f'y2="{_HEIGHT - _BOTTOM}" stroke="{AXIS_COLOUR}"/>'
    ]
    every = max(1, math.ceil(len(weeks) / 8))
    year = None
    for i, w in enumerate(weeks):
        if i % every:
            continue
        x = _LEFT + i * slot + slot / 2
        body.append(
            _text(x, _HEIGHT - _BOTTOM + 14, w.start.strftime("%b %d"), anchor="middle", size=11)
        )
        if w.start.year != year:
            year = w.start.year
            body.append(_text(x, _HEIGHT - _BOTTOM + 28, year, anchor="middle", size=11))
    return body


def _empty() -> Markup:
    return _svg(_WIDTH, 60, "No leads in this period", [_text(8, 30, "No leads in this period")])


def weekly_chart(weeks: Sequence[WeekPoint]) -> Markup:
    """New leads per week (bars), on their own axis."""
    if not weeks:
        return _svg(
            _WIDTH, 60, "No leads in this period", [_text(8, 30, "No leads in this period")]
        )
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _BOTTOM - _TOP
    top = nice_ceiling(max(w.leads for w in weeks))
    slot = plot_w / len(weeks)
    body = _y_axis(top, plot_h, right=False, fmt="{:,.0f}")
    for i, w in enumerate(weeks):
        h = plot_h * w.leads / top
        title = f"week of {w.start.isoformat()}: {w.leads:,} new leads"
        x = _LEFT + i * slot + slot * 0.15
        body.append(_rect(x, _TOP + plot_h - h, max(slot * 0.7, 1), h, LEADS_COLOUR, title))
    body += _week_axis(weeks, slot)
    body.append(_text(_LEFT, 13, "new leads (first seen that week)", size=11))
    return _svg(_WIDTH, _HEIGHT, "New leads per week", body)


def conversions_chart(weeks: Sequence[WeekPoint]) -> Markup:
    """Conversions per week (bars, left axis) and the conversion rate of each week's new leads
    (line, right axis): each on a scale of its own, so neither vanishes beside the leads."""
    if not weeks:
        return _svg(
            _WIDTH, 60, "No leads in this period", [_text(8, 30, "No leads in this period")]
        )
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _BOTTOM - _TOP
    top = nice_ceiling(max(w.conversions for w in weeks))
    rates = [w.conversion_rate for w in weeks]
    top_rate = min(1.0, nice_ceiling(math.ceil(max((r or 0) for r in rates) * 100)) / 100)
    slot = plot_w / len(weeks)
    body = _y_axis(top, plot_h, right=False, fmt="{:,.0f}")
    body += _y_axis(top_rate, plot_h, right=True, fmt="{:.0%}")
    points = []
    for i, w in enumerate(weeks):
        h = plot_h * w.conversions / top
        title = f"week of {w.start.isoformat()}: {w.conversions:,} conversions"
        x = _LEFT + i * slot
        body.append(
            _rect(
                x + slot * 0.15, _TOP + plot_h - h, max(slot * 0.7, 1), h, CONVERSIONS_COLOUR, title
            )
        )
        rate = rates[i]
        if rate is not None:
            points.append(f"{x + slot / 2:.1f},{_TOP + plot_h * (1 - rate / top_rate):.1f}")
    if points:
        body.append(
            f'<polyline points="{" ".join(points)}" fill="none" stroke="{RATE_COLOUR}" '
            'stroke-width="2"><title>conversion rate of each week\'s new leads</title></polyline>'
        )
    body += _week_axis(weeks, slot)
    body.append(_rect(_LEFT, 4, 10, 10, CONVERSIONS_COLOUR, "conversions"))
    body.append(_text(_LEFT + 14, 13, "conversions (first conversion that week)", size=11))
    body.append(_rect(_LEFT + 290, 8, 14, 2, RATE_COLOUR, "conversion rate"))
    body.append(_text(_LEFT + 308, 13, "conversion rate of the week's new leads", size=11))
    return _svg(_WIDTH, _HEIGHT, "Conversions and conversion rate per week", body)


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
