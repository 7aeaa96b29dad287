"""Opaque page tokens for List RPCs (AIP-158): an offset, base64-encoded, never parsed by clients."""

from __future__ import annotations

import base64
import binascii

from services.common.errors import InvalidArgument

__all__ = ["next_page_token", "page_bounds"]


def page_bounds(page_size: int, page_token: str, *, default: int = 50, maximum: int = 500) -> tuple[int, int]:
    """Returns (offset, limit) for a List request; rejects negative sizes and foreign tokens."""
    if page_size < 0:
        raise InvalidArgument("page_size must not be negative")
    limit = min(page_size or default, maximum)
    if not page_token:
        return 0, limit
    try:
        decoded = base64.urlsafe_b64decode(page_token.encode()).decode()
        kind, _, value = decoded.partition(":")
        offset = int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidArgument("page_token is not one this service issued") from None
    if kind != "o" or offset < 0:
        raise InvalidArgument("page_token is not one this service issued")
    return offset, limit


def next_page_token(offset: int, limit: int, returned: int) -> str:
    """The token for the page after this one, or "" when this page was the last."""
    if returned < limit:
        return ""
    return base64.urlsafe_b64encode(f"o:{offset + returned}".encode()).decode()
