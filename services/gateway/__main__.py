"""`python -m services.gateway`: serve the gateway with settings from DUCKLM_GATEWAY_*."""

import uvicorn

from services.common.config import load_settings
from services.common.logs import configure_logging
from services.gateway.app import create_app
from services.gateway.config import Settings


def main() -> None:
    configure_logging("gateway")
    settings = load_settings(Settings, "gateway")
    # uvicorn handles SIGTERM/SIGINT with a graceful shutdown (the lifespan closes the channels).
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")


if __name__ == "__main__":
    main()
