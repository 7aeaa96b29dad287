"""The tools service: the only place where DuckLM touches the machine, and the approvals service
that gates it (both served by one process).

It holds the workspace (the one folder file tools may touch), the command allowlist and policy
(config/tools.yaml), and the SQLite record of every approval decision.

It must never: touch a path outside the workspace (no `..`, absolute path or link may lead out),
run a program through a shell or outside the allowlist, or run a gated action without a
matching, unexpired, unused approval for the exact action hash.
"""
