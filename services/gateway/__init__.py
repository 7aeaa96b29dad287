"""The gateway: a Starlette app that translates WebChat and REST into gRPC calls.

It holds no state and no domain logic; every route is a thin translation to a backend service.
It never talks to a model server.
"""
