"""Jinja2 templates and the stylesheet, loaded from the installed package."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from decimal import Decimal
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from signup_sync.dashboard import charts


def number(value: int | float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def credit(value: float | None) -> str:
    """Attributed conversions: fractional under linear or time-decay models."""
    if value is None:
        return "-"
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def money(value: Decimal | float | None) -> str:
    return "-" if value is None else f"{Decimal(value):,.2f}"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def when(value: datetime | None) -> str:
    return "never" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


@functools.cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("signup_sync.dashboard", "templates"),
        autoescape=select_autoescape(["html"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(number=number, percent=percent, when=when, credit=credit, money=money)
    env.globals.update(
        funnel_chart=charts.funnel_chart,
        weekly_chart=charts.weekly_chart,
        conversions_chart=charts.conversions_chart,
        histogram_chart=charts.histogram_chart,
        one_day=timedelta(days=1),
    )
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


@functools.cache
def stylesheet() -> bytes:
    return (resources.files("signup_sync.dashboard") / "static" / "dashboard.css").read_bytes()
