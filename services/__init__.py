"""DuckLM's gRPC services, one folder each, plus `common` (the code they all share)."""
