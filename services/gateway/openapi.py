"""The OpenAPI 3.1 document of the gateway, served at /openapi.json, built from the declared routes
(services/gateway/api.py): each `ApiRoute` of the route table gives one operation, its path
parameters from its path, its query parameters, request body model and answers from its `Doc`.

Request bodies are the routes' own pydantic models; response shapes are in openapi_schemas.py.
Tests check every route is described and that responses match it (schemathesis). This module
only reads the declarations; it never describes a route by hand.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from starlette.routing import BaseRoute

from services.gateway.api import ApiRoute, Doc, path_params
from services.gateway.openapi_schemas import INT, REF_TEMPLATE, SCHEMAS, STR, Schema, ref

__all__ = ["openapi_document"]

# One Server-Sent Event as clients parse it; `data` is one line of JSON (or "[DONE]").
_SSE = {
    "text/event-stream": {
        "schema": {
            "type": "object",
            "properties": {"event": STR, "data": STR, "id": STR, "retry": INT},
            "required": ["data"],
        }
    }
}
_ERROR_TEXT = {
    400: "Invalid request",
    401: "Token required",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict with the resource's state",
    413: "Request body too large",
    415: "Not sent as Content-Type: application/json",
    429: "Too many requests",
    502: "A backend failed",
    503: "A backend is down or too slow (the error names it), or too many streams are open",
    504: "The task did not come to rest in time",
}
# What a route that calls a backend can answer besides its own errors.
_BACKEND = (502, 503)
# What services/gateway/sites.py answers before any route that changes something.
_SITE_REFUSALS = (403, 415)


def _json(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": ref(name)}}


def _error(status: int) -> dict[str, Any]:
    return {"description": _ERROR_TEXT.get(status, "Error"), "content": _json("Error")}


def _responses(doc: Doc) -> dict[str, Any]:
    if doc.responses is not None:
        return dict(doc.responses)
    content = {**(_json(doc.reply) if doc.reply else {}), **(_SSE if doc.stream else {})}
    answers: dict[str, Any] = {str(doc.ok): {"description": "OK", "content": content} if content else {"description": "OK"}}
    for status in sorted({*doc.errors, *(_BACKEND if doc.backend else ()), 400, 401}):
        answers[str(status)] = _error(status)
    return answers


def _operation(route: ApiRoute) -> dict[str, Any]:
    doc = route.doc
    operation: dict[str, Any] = {"summary": doc.summary, "tags": [doc.tag], "responses": _responses(doc)}
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in path_params(route.path)
    ]
    parameters += [
        {"name": p.name, "in": "query", "required": False, "schema": p.schema, "description": p.description}
        for p in doc.params
    ]
    if parameters:
        operation["parameters"] = parameters
    if doc.body is not None:
        operation["requestBody"] = {"required": doc.body_required, "content": _json(doc.body.__name__)}
        operation["responses"]["413"] = _error(413)
    if route.method not in ("get", "head", "options"):
        for status in _SITE_REFUSALS:
            operation["responses"].setdefault(str(status), _error(status))
    if doc.public:
        operation["security"] = []
    return operation


def _body_schemas(models: Iterable[type[BaseModel]]) -> dict[str, Schema]:
    schemas: dict[str, Schema] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=REF_TEMPLATE)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def build_document(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """The document of the `ApiRoute`s among `routes` (pages and mounts are not API)."""
    declared = [route for route in routes if isinstance(route, ApiRoute)]
    paths: dict[str, dict[str, Any]] = {}
    for route in declared:
        paths.setdefault(route.path, {})[route.method] = _operation(route)
    bodies = {route.doc.body.__name__: route.doc.body for route in declared if route.doc.body is not None}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "DuckLM gateway",
            "version": "1.0.0",
            "description": "REST, Server-Sent Events and an OpenAI-compatible endpoint over DuckLM's "
            'gRPC services. Errors are {"error": {"code", "message"}}; see docs/rest-api.md.',
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": {**SCHEMAS, **_body_schemas(bodies.values())},
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "DUCKLM_GATEWAY_TOKEN, when the gateway has one",
                }
            },
        },
    }


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The document of the gateway's route table (built once)."""
    # Imported here: the table holds the page that serves this document.
    from services.gateway.routes.table import ROUTES

    return build_document(ROUTES)
