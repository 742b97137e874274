"""The OpenAPI document describes the error bodies the service really sends."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from signup_sync.api.roles import document_roles


class FieldProblem(BaseModel):
    field: str = Field(description="the input at fault, dotted for nested fields")
    message: str
    type: str | None = None
    allowed: str | None = Field(default=None, description="allowed values, for enum fields")


class ErrorBody(BaseModel):
    """Every 4xx/5xx body: a code, a sentence, and (for bad input) the fields at fault."""

    error: str = Field(description="machine-readable code, e.g. validation_error")
    detail: Any = Field(description="what went wrong, for a person")
    errors: list[FieldProblem] | None = None


_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


def install_openapi(app: FastAPI) -> None:
    """Replace FastAPI's default 422 schema with ours and give every error response a body."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        body_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(body_schema.pop("$defs", {}))
        schemas["ErrorBody"] = body_schema
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        for path, methods in spec.get("paths", {}).items():
            for operation in methods.values():
                _document_errors(path, operation)
                _derive_examples(operation, schemas)
        document_roles(app, spec)
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


def _document_errors(path: str, operation: dict[str, Any]) -> None:
    """Add the error responses the middleware and handlers can send for this operation."""
    responses = operation.setdefault("responses", {})
    for status, response in responses.items():
        if status.startswith(("4", "5")):
            response["content"] = {"application/json": {"schema": _ERROR_REF}}
    if "security" in operation:
        responses.setdefault("401", _error("Missing or invalid bearer token"))
    if operation.get("parameters") or "requestBody" in operation:
        responses.setdefault("422", _error("Invalid input: `errors` names each field"))
    if "requestBody" in operation:
        responses.setdefault("400", _error("The body cannot be decoded"))
        responses.setdefault("413", _error("The body is larger than the limit"))
    if path != "/":
        responses.setdefault("503", _error("The database does not answer; retry later"))


def _component_examples(schema: dict[str, Any], schemas: dict[str, Any]) -> list[tuple[str, Any]]:
    """(name, example) pairs a schema carries: its own, its component's, each branch's of a
    union (``null`` left out), one item's for an array."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return [(name, value) for _, value in _component_examples(schemas.get(name, {}), schemas)]
    if "example" in schema:
        return [("example", schema["example"])]
    if schema.get("examples"):
        return [("example", value) for value in schema["examples"]]
    branches = schema.get("anyOf") or schema.get("oneOf") or []
    if branches:
        return [
            pair
            for branch in branches
            if branch.get("type") != "null"
            for pair in _component_examples(branch, schemas)
        ]
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        items = _component_examples(schema["items"], schemas)
        return [(items[0][0], [items[0][1]])] if items else []
    return []


def _derive_examples(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Give a body or 2xx answer whose schema is a union or an array the examples of its
    parts, so Swagger UI and ReDoc show each shape (they show a component's own anyway)."""
    media_types = list(operation.get("requestBody", {}).get("content", {}).values())
    for status, response in operation.get("responses", {}).items():
        if status.startswith("2"):
            media_types.extend(response.get("content", {}).values())
    for media in media_types:
        schema = media.get("schema")
        if not schema or "example" in media or "examples" in media or "$ref" in schema:
            continue
        pairs = _component_examples(schema, schemas)
        if len(pairs) == 1:
            media["example"] = pairs[0][1]
        elif pairs:
            named: dict[str, Any] = {}
            for name, value in pairs:
                key = name if name not in named else f"{name} ({len(named) + 1})"
                named[key] = {"summary": key, "value": value}
            media["examples"] = named
