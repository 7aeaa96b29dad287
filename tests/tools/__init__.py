"""Tests of the tools service (and the approvals service it hosts)."""
