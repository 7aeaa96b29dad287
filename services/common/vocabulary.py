"""Words and limits more than one service (and the clients) use, spelled once.

Where a concept crosses a service boundary and the proto cannot hold it (a limit, a set of
enum values with a meaning), it is defined here and imported; nothing here holds logic.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["MAX_MESSAGE_CHARS", "REST_STATUSES", "TURN_ENDING_ACTIONS", "ApprovalState"]

# The longest user message, in characters, the gateway and the runtime accept.
MAX_MESSAGE_CHARS = 32_000

# The directive actions that end a turn with a message to the user (`Directive.action`).
TURN_ENDING_ACTIONS = ("respond", "finish")

# Task statuses (the words of `TaskStatus`) in which the loop has handed control back to a
# person: an event stream of a turn ends at the status change into one of them.
REST_STATUSES = frozenset({"waiting_approval", "completed", "failed", "cancelled"})


class ApprovalState(str, Enum):
    """Mirrors ducklm.approvals.v1.ApprovalState by word (`APPROVAL_STATE_USED` is "used"); a
    decision recorded in an `approval_decided` event is one of these words too."""

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    # Approved, then consumed by the execution it allowed (single use).
    USED = "used"
    EXPIRED = "expired"
