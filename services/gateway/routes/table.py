"""The gateway's route table, in matching order: the app serves it and the OpenAPI document is
built from it (services/gateway/openapi.py), so the two cannot disagree. Holds no handler."""

from __future__ import annotations

from starlette.routing import BaseRoute

from services.gateway import auth
from services.gateway.routes import approvals, completions, memory, pages, skills, tasks

__all__ = ["ROUTES"]

ROUTES: list[BaseRoute] = [
    *pages.routes,
    *auth.routes,
    *completions.routes,  # before tasks: /v1/chat/completions is not a chat
    *tasks.routes,
    *approvals.routes,
    *skills.routes,
    *memory.routes,
]
