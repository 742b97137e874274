"""Every operation's request body and 2xx answer has an example, and every example is valid."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from signup_sync.app import create_app
from signup_sync.settings import load_settings

METHODS = ("get", "post", "put", "patch", "delete")
# Examples may leave fields out: answers list every field, so their schemas mark all required.
_Lenient = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, validators={"required": lambda *_: None}
)


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    app = create_app(
        load_settings(database_url="sqlite:///unused.db", service_tokens="example-token-1")
    )
    return app.openapi()


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _examples(media: dict[str, Any], spec: dict[str, Any]) -> list[Any]:
    """The examples a reader of this media type sees: its own, else its schema's."""
    if "example" in media:
        return [media["example"]]
    if "examples" in media:
        return [item["value"] for item in media["examples"].values()]
    schema = _resolve(media.get("schema", {}), spec)
    if "example" in schema:
        return [schema["example"]]
    return list(schema.get("examples", []))


def _media(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(where, media type object) of every request body and 2xx answer."""
    found = []
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method not in item:
                continue
            operation = item[method]
            where = f"{method.upper()} {path}"
            for kind, media in operation.get("requestBody", {}).get("content", {}).items():
                found.append((f"{where} request {kind}", media))
            for status, response in operation["responses"].items():
                if not status.startswith("2") or status == "204":
                    continue
                content = response.get("content")
                if not content:
                    found.append((f"{where} {status} (no content described)", {}))
                for kind, media in (content or {}).items():
                    found.append((f"{where} {status} {kind}", media))
    return found


def test_every_request_body_and_2xx_answer_has_an_example(spec: dict[str, Any]) -> None:
    media = _media(spec)
    assert len(media) > 50  # the walk sees the whole API
    missing = [where for where, item in media if not _examples(item, spec)]
    assert missing == [], "no example: " + "; ".join(missing)


def test_every_example_matches_its_schema(spec: dict[str, Any]) -> None:
    """Types, enums and shapes are checked (not which fields an example leaves out)."""
    problems = []
    for where, item in _media(spec):
        schema = item.get("schema")
        if not schema or "binary" in str(schema):  # an upload's example is the file's text
            continue
        validator = _Lenient({**schema, "components": spec["components"]})
        for example in _examples(item, spec):
            for error in validator.iter_errors(example):
                problems.append(f"{where}: {error.message} at {list(error.absolute_path)}")
    assert problems == [], "\n".join(problems)


def test_sync_status_never_claims_a_202(spec: dict[str, Any]) -> None:
    """Only the sync runs start in the background; the status answers 200."""
    assert "202" not in spec["paths"]["/sync/status/{source_type}"]["get"]["responses"]
