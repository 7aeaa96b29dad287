"""Code every DuckLM service shares: config, the gRPC server shape, errors, SQLite, paging.

Nothing here knows about one service's domain; a module that does belongs in that service.
"""
