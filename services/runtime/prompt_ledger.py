"""What one llama-server slot holds for one task: the exact token ids it evaluated (prompt and
generated), each run of them with the text it stands for.

The next prompt is sent as tokens: the ledger's tokens for the longest part of it the ledger
already covers, then the rest tokenised anew. So a prompt that only grows reuses, token for
token, what the server evaluated and sampled before, even where re-tokenising the same text
would give other tokens (a grammar-constrained `{"` is not the tokenizer's `{"`). Pure data:
nothing here calls a server.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["LedgerMatch", "TokenLedger", "Unit", "units_of_pieces"]


@dataclass(frozen=True)
class Unit:
    """Tokens and the text they decode to (never empty: a unit of no text would match anywhere)."""

    text: str
    tokens: tuple[int, ...]


@dataclass(frozen=True)
class LedgerMatch:
    units: tuple[Unit, ...]
    # The part of the prompt the units do not cover, to tokenise.
    rest: str

    @property
    def tokens(self) -> list[int]:
        return [token for unit in self.units for token in unit.tokens]


class TokenLedger:
    """The tokens a slot holds for one session, in order."""

    def __init__(self) -> None:
        self.units: list[Unit] = []

    def __len__(self) -> int:
        return sum(len(unit.tokens) for unit in self.units)

    def match(self, prompt: str) -> LedgerMatch:
        """The longest run of units, from the start, whose text begins `prompt`."""
        at = 0
        kept: list[Unit] = []
        for unit in self.units:
            if not prompt.startswith(unit.text, at):
                break
            kept.append(unit)
            at += len(unit.text)
        return LedgerMatch(tuple(kept), prompt[at:])

    def reset(self, units: Iterable[Unit]) -> None:
        self.units = [unit for unit in units if unit.text and unit.tokens]

    def clear(self) -> None:
        self.units = []


def units_of_pieces(pieces: Sequence[Any]) -> list[Unit]:
    """Units from llama-server's `/tokenize` with `with_pieces`: `[{"id": 1, "piece": "ab"}]`,
    where a piece that is not whole UTF-8 comes as a list of byte values. Such tokens are joined
    until their bytes decode; a tail that never decodes is left out (the ledger then ends
    before it, and that text is tokenised again next time)."""
    units: list[Unit] = []
    pending: list[int] = []
    raw = b""
    for item in pieces:
        token, piece = int(item["id"]), item.get("piece", "")
        if piece == "" and units and not raw:
            # A token of no text (a special one) travels with the text before it.
            units[-1] = Unit(units[-1].text, (*units[-1].tokens, token))
            continue
        pending.append(token)
        if isinstance(piece, str) and not raw:
            units.append(Unit(piece, tuple(pending)))
            pending = []
            continue
        raw += piece.encode() if isinstance(piece, str) else bytes(int(value) & 0xFF for value in piece)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        units.append(Unit(text, tuple(pending)))
        pending, raw = [], b""
    return [unit for unit in units if unit.text]
