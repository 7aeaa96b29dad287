"""Which model server (and llama-server slot) serves each call of a role.

A role in models.yaml may list several endpoints. A task (a *session*) sticks to the endpoint
and slot that hold its prompt prefix, so the server's cache keeps serving it; a new task goes
to the endpoint with the fewest calls in flight and the slot idle the longest. An endpoint that
fails its health check, or a call, is skipped until a check passes again; a task on it moves to
another endpoint with a fresh prefix, and its next call says so (`Lease.moved`). Holds state
only: nothing here sends a request.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from services.runtime.models_config import ModelsConfig, RoleConfig
from services.runtime.prompt_ledger import TokenLedger

__all__ = ["MAX_SESSIONS", "EndpointPool", "Lease"]

# Sessions whose placement is remembered; the oldest is forgotten first (it just starts afresh).
MAX_SESSIONS = 1024


@dataclass
class _Placement:
    endpoint: str
    slot: int
    ledger: TokenLedger = field(default_factory=TokenLedger)


@dataclass
class Lease:
    """One call's place: the endpoint, the slot (-1: the server picks) and the session's ledger
    there (empty after a move). `moved` says why the session left its endpoint, else ""."""

    endpoint: str
    slot: int
    ledger: TokenLedger
    moved: str = ""


@dataclass
class _Endpoint:
    slots: int = 0  # 0 until known (llama-server's /props total_slots)
    in_flight: int = 0
    down: str = ""  # why it is skipped, "" while it is healthy
    slot_busy: dict[int, int] = field(default_factory=dict)
    slot_used: dict[int, float] = field(default_factory=dict)
    slot_holder: dict[int, str] = field(default_factory=dict)


class EndpointPool:
    """Placements of sessions on the endpoints of each role; one per runtime."""

    def __init__(self, config: ModelsConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._clock = clock
        self._endpoints: dict[str, _Endpoint] = {}
        self._sessions: OrderedDict[tuple[str, str], _Placement] = OrderedDict()

    def endpoints(self, role: str) -> list[str]:
        return list(self._config.require(role).endpoints)

    def _state(self, endpoint: str) -> _Endpoint:
        return self._endpoints.setdefault(endpoint, _Endpoint())

    def problem(self, endpoint: str) -> str:
        return self._state(endpoint).down

    def slots_known(self, endpoint: str) -> bool:
        return self._state(endpoint).slots > 0

    def set_slots(self, endpoint: str, slots: int) -> None:
        self._state(endpoint).slots = max(slots, 0)

    def mark_down(self, endpoint: str, reason: str) -> None:
        self._state(endpoint).down = reason or "it failed"

    def mark_up(self, endpoint: str) -> None:
        self._state(endpoint).down = ""

    def healthy(self, role: str) -> list[str]:
        return [url for url in self.endpoints(role) if not self._state(url).down]

    def acquire(self, role: str, session: str = "") -> Lease:
        """The place for the next call of `session` (a task id; "" for a call of no task). Call
        `release` when it is done."""
        config = self._config.require(role)
        # With every endpoint down, try them anyway: a check may be stale, and the call's own
        # error then says what is wrong.
        candidates = self.healthy(role) or list(config.endpoints)
        key = (role, session)
        placed = self._sessions.get(key) if session else None
        moved = ""
        if placed is not None and placed.endpoint not in candidates:
            moved = f"left {placed.endpoint}: {self._state(placed.endpoint).down or 'it is not configured'}"
            placed = None
        if placed is None:
            endpoint = self._least_loaded(config, candidates)
            placed = _Placement(endpoint, -1)
            if session:
                self._sessions[key] = placed
                while len(self._sessions) > MAX_SESSIONS:
                    self._sessions.popitem(last=False)
        elif session:
            self._sessions.move_to_end(key)
        placed.slot = self._pick_slot(placed, session)
        state = self._state(placed.endpoint)
        state.in_flight += 1
        if placed.slot >= 0:
            state.slot_busy[placed.slot] = state.slot_busy.get(placed.slot, 0) + 1
            state.slot_used[placed.slot] = self._clock()
            state.slot_holder[placed.slot] = session
        # A call of no task keeps no ledger: nothing later continues its prompt.
        ledger = placed.ledger if session else TokenLedger()
        return Lease(placed.endpoint, placed.slot, ledger, moved)

    def release(self, lease: Lease) -> None:
        state = self._state(lease.endpoint)
        state.in_flight = max(0, state.in_flight - 1)
        if lease.slot >= 0:
            state.slot_busy[lease.slot] = max(0, state.slot_busy.get(lease.slot, 0) - 1)
            state.slot_used[lease.slot] = self._clock()

    def forget(self, role: str, session: str) -> None:
        """Drops a session's placement (its ledger no longer describes what the server holds)."""
        self._sessions.pop((role, session), None)

    def _least_loaded(self, config: RoleConfig, candidates: list[str]) -> str:
        placed: dict[str, int] = {}
        for placement in self._sessions.values():
            placed[placement.endpoint] = placed.get(placement.endpoint, 0) + 1
        order = {url: index for index, url in enumerate(config.endpoints)}
        return min(candidates, key=lambda url: (self._state(url).in_flight, placed.get(url, 0), order.get(url, 0)))

    def _pick_slot(self, placed: _Placement, session: str) -> int:
        """The slot that holds the session's prefix while it is free; else the free slot idle
        the longest (a busy one is waited for only when every slot is busy)."""
        state = self._state(placed.endpoint)
        if state.slots <= 0:
            return -1
        slots = range(state.slots)
        holds = 0 <= placed.slot < state.slots and state.slot_holder.get(placed.slot) == session
        if holds and (not state.slot_busy.get(placed.slot) or all(state.slot_busy.get(s) for s in slots)):
            return placed.slot
        # Another slot of the same server: it holds none of the session's tokens, but the
        # ledger's tokens stay valid to send there (same model, same tokenizer).
        free = [s for s in slots if not state.slot_busy.get(s)] or list(slots)
        if not session:
            # A call of no task goes where no task's prompt is held, while there is such a slot.
            free = [s for s in free if not state.slot_holder.get(s)] or free
        return min(free, key=lambda s: state.slot_used.get(s, float("-inf")))
