"""The gateway's access log: one line per request, with method, path, status and duration, and
never the query string or a token."""

from __future__ import annotations

import logging

import pytest

from services.gateway.access_log import ACCESS_LOGGER
from services.gateway.config import Settings
from tests.gateway.conftest import gateway_in_process


async def test_each_request_is_logged_without_its_query_or_token(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER.name):
        async with gateway_in_process(Settings()) as client:
            await client.get("/openapi.json?secret=hunter2", headers={"Authorization": "Bearer tok-123"})
            await client.get("/static/nope.js")
    lines = [record.getMessage() for record in caplog.records if record.name == ACCESS_LOGGER.name]
    assert len(lines) == 2, lines
    assert lines[0].startswith("GET /openapi.json 200 ")
    assert lines[1].startswith("GET /static/nope.js 404 ")
    assert all("ms " in line for line in lines)
    assert not any("hunter2" in line or "tok-123" in line for line in lines)
