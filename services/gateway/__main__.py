"""`python -m services.gateway`: serve the gateway with settings from DUCKLM_GATEWAY_*."""

import sys

import uvicorn

from services.common.config import ConfigError, load_settings
from services.common.logs import configure_logging
from services.common.tracing import configure_tracing
from services.gateway.app import create_app
from services.gateway.config import Settings


def main() -> int:
    configure_logging("gateway")
    # OTLP export when DUCKLM_OTEL_ENDPOINT is set; the batch exporter flushes at exit.
    configure_tracing("gateway")
    try:
        settings = load_settings(Settings, "gateway")
        app = create_app(settings)
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr, flush=True)
        return 2
    # uvicorn handles SIGTERM/SIGINT with a graceful shutdown (the lifespan closes the channels).
    # Open event streams are closed after a few seconds instead of holding the shutdown up.
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", timeout_graceful_shutdown=5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
