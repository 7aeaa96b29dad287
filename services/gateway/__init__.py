"""The gateway: WebChat, the REST API (JSON + Server-Sent Events) and an OpenAI-compatible
endpoint, each route a thin translation to one gRPC call of a backend service.

It holds no state and no domain logic, and checks who may call it (services/gateway/auth.py).
It must never talk to a model server, and never insert model or tool output into the page as
HTML. See docs/rest-api.md.
"""
