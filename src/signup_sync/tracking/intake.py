"""From a decoded JSON body to parsed messages: request-level errors are 400s, message-level
problems in a batch reject that message only (Segment answers 200 for the rest)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from signup_sync.errors import PayloadTooLarge
from signup_sync.tracking.config import TrackingConfig
from signup_sync.tracking.decode import TrackingBadRequest
from signup_sync.tracking.messages import MessageRejected, Parsed, parse_message, sanitise
from signup_sync.tracking.schemas import (
    AliasMessage,
    GroupMessage,
    IdentifyMessage,
    Message,
    MessageBase,
    MessageProblem,
    PageMessage,
    ScreenMessage,
    SegmentBatch,
    TrackMessage,
)

SINGLE: dict[str, type[MessageBase]] = {
    "track": TrackMessage,
    "identify": IdentifyMessage,
    "page": PageMessage,
    "alias": AliasMessage,
    "group": GroupMessage,
    "screen": ScreenMessage,
}
_MESSAGE: TypeAdapter[MessageBase] = TypeAdapter(Message)
_TAGS = {"track", "identify", "page", "screen", "group", "alias"}


def _problems(exc: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = [str(p) for p in err["loc"]]
        if loc and loc[0] in _TAGS:  # a discriminated union puts the tag first
            loc = loc[1:]
        if err["type"] in ("union_tag_not_found", "union_tag_invalid"):
            loc = ["type"]
            message = "must be one of track, identify, page, screen, group, alias"
        else:
            message = str(err["msg"]).removeprefix("Value error, ")
        out.append({"field": ".".join([p for p in (prefix, *loc) if p]), "message": message})
    return out


def _bad(problems: list[dict[str, str]], summary: str) -> TrackingBadRequest:
    detail = f"{summary}: " + "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
    return TrackingBadRequest(detail, errors=problems)


def _validate(model: type[BaseModel], data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _bad(_problems(exc), "The message is not valid") from None


def read_single(
    kind: str, data: dict[str, Any], config: TrackingConfig, received_at: datetime
) -> Parsed:
    """``/v1/track`` and friends: the body is one message; anything wrong is a 400."""
    data = {key: value for key, value in data.items() if key != "writeKey"}
    model = _validate(SINGLE[kind], data)
    try:
        return parse_message(
            0,
            data,
            model,
            batch_sent_at=None,
            batch_context={},
            config=config,
            received_at=received_at,
        )
    except MessageRejected as exc:
        raise TrackingBadRequest(exc.message, field=exc.field) from None


def read_batch(
    data: dict[str, Any], config: TrackingConfig, received_at: datetime, max_messages: int
) -> tuple[list[Parsed], list[MessageProblem]]:
    """``/v1/batch``: parsed messages and the ones rejected (400 when none is usable)."""
    batch = _validate(SegmentBatch, data)
    if not batch.batch:
        raise TrackingBadRequest("The batch holds no messages", field="batch")
    if len(batch.batch) > max_messages:
        raise PayloadTooLarge(
            f"A batch holds at most {max_messages} messages; this one has {len(batch.batch)}",
            field="batch",
        )
    parsed: list[Parsed] = []
    rejected: list[MessageProblem] = []
    context = sanitise(batch.context or {})
    for index, raw in enumerate(batch.batch):
        try:
            model = _MESSAGE.validate_python(raw)
            parsed.append(
                parse_message(
                    index,
                    raw,
                    model,
                    batch_sent_at=batch.sentAt,
                    batch_context=context,
                    config=config,
                    received_at=received_at,
                )
            )
        except ValidationError as exc:
            rejected += [MessageProblem(index=index, **p) for p in _problems(exc)]
        except MessageRejected as exc:
            rejected.append(MessageProblem(index=index, field=exc.field, message=exc.message))
    if not parsed:
        problems = [{"field": f"batch.{p.index}.{p.field}", "message": p.message} for p in rejected]
        raise _bad(problems, "No message in the batch is valid")
    return parsed, rejected
