"""Structured logs with a bound request id; emails and phones masked, secrets never logged.

JSON lines (one object per line, for log collectors) or readable console lines: ``LOG_FORMAT``
chooses; unset, a terminal gets console lines and anything else JSON.

Phones: any value under a key naming a phone is masked whole; in free text, numbers
written the way phones are (``+`` and 7-15 digits, or groups such as ``(305) 555-0188``)
are masked. A bare run of digits is left alone: it cannot be told from an id or a count.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_EMAIL = re.compile(r"([A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]*@([A-Za-z0-9.\-]+\.[A-Za-z]{2,})")
_SECRET_KEYS = ("token", "secret", "password", "authorization", "api_key", "apikey")
_PHONE_KEYS = ("phone", "mobile", "e164")
# International: + then digits with optional spaces, dots, dashes, parentheses.
_PHONE_INTL = r"\+\d[\d\s().\-]{5,22}\d"
# National with separators: (305) 555-0188, 305-555-0188, 305 555 0188, 0612 345 678.
_PHONE_NATIONAL = r"\(?\d{2,4}\)?[ \-]\d{3,4}[ \-]\d{3,4}"
_PHONE = re.compile(rf"(?<![\w+]){_PHONE_INTL}(?!\w)|(?<![\w+.\-/:]){_PHONE_NATIONAL}(?![\w\-/:])")


def mask_emails(text: str) -> str:
    """``john.doe@example.com`` → ``j***@example.com``."""
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)


def _mask_phone(match: re.Match[str]) -> str:
    digits = [c for c in match.group(0) if c.isdigit()]
    if not 7 <= len(digits) <= 15:
        return match.group(0)
    return "***" + "".join(digits[-2:])


def mask_phones(text: str) -> str:
    """``+1 (305) 555-0188`` → ``***88``; ``2026-06-01`` and ``7800000012`` stay."""
    return _PHONE.sub(_mask_phone, text)


def mask_personal(text: str) -> str:
    return mask_phones(mask_emails(text))


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return mask_personal(value)
    if isinstance(value, dict):
        return {k: _scrub_item(k, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def _scrub_item(key: Any, value: Any) -> Any:
    if _is_secret(key):
        return "[redacted]"
    if _is_phone(key) and value is not None and not isinstance(value, bool | int | float):
        return "[phone]"
    return _scrub(value)


def _is_phone(key: Any) -> bool:
    return isinstance(key, str) and any(part in key.lower() for part in _PHONE_KEYS)


def _is_secret(key: Any) -> bool:
    return isinstance(key, str) and any(part in key.lower() for part in _SECRET_KEYS)


def scrub_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        event_dict[key] = _scrub_item(key, event_dict[key])
    return event_dict


LOG_FORMATS = ("console", "json")
# Alembic announces its dialect and DDL mode at info on every start: not news for an operator.
_ALEMBIC_CHATTER = ("Context impl ", "Will assume ")


class _AlembicChatter(logging.Filter):
    """Moves Alembic's start-up chatter to debug (the "Running upgrade" lines stay at info)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and str(record.msg).startswith(_ALEMBIC_CHATTER):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


def resolve_format(log_format: str | None, stream: Any = None) -> str:
    """``console`` or ``json``: as asked, else console on a terminal and JSON otherwise."""
    if log_format:
        return log_format
    stream = stream if stream is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    return "console" if callable(isatty) and isatty() else "json"


def configure_logging(level: str = "info", log_format: str | None = None) -> None:
    """Log lines on stderr, for the service and the libraries it drives."""
    fmt = resolve_format(log_format)
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=resolve_format(None) == "console")
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        scrub_processor,
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        # Resolve sys.stderr per logger so redirected streams (tests, daemons) are honoured.
        logger_factory=lambda *_: structlog.PrintLogger(sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[*shared[1:], structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Uvicorn's own access log is replaced by ours (it carries the request id).
    logging.getLogger("uvicorn.access").handlers[:] = []
    logging.getLogger("uvicorn.access").propagate = False
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # aiosqlite's debug lines print every statement with its parameters: personal data.
    logging.getLogger("aiosqlite").setLevel(max(root.level, logging.INFO))
    alembic = logging.getLogger("alembic.runtime.migration")
    alembic.filters[:] = [f for f in alembic.filters if not isinstance(f, _AlembicChatter)]
    alembic.addFilter(_AlembicChatter())


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
