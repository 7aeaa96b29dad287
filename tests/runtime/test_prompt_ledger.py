"""The token ledger: which kept tokens a new prompt can reuse, and units made from llama-server's
`/tokenize` pieces, including tokens that are only part of a character."""

from __future__ import annotations

from services.runtime.prompt_ledger import TokenLedger, Unit, units_of_pieces


def test_a_grown_prompt_reuses_every_kept_unit_and_a_changed_one_stops_there() -> None:
    ledger = TokenLedger()
    ledger.reset([Unit("Request: hi\n", (1, 2, 3)), Unit("Next step:", (4, 5)), Unit(' {"a": 1}', (6, 7))])
    grown = ledger.match('Request: hi\nNext step: {"a": 1}\nResult:')
    assert grown.tokens == [1, 2, 3, 4, 5, 6, 7] and grown.rest == "\nResult:"
    changed = ledger.match("Request: hi\nNext step: answer")
    assert changed.tokens == [1, 2, 3, 4, 5] and changed.rest == " answer"
    assert ledger.match("Other").tokens == [] and len(ledger) == 7


def test_pieces_that_split_a_character_become_one_unit() -> None:
    # "é" as two byte tokens, then a special token of no text, then plain text.
    pieces = [{"id": 10, "piece": "caf"}, {"id": 11, "piece": [195]}, {"id": 12, "piece": [169]},
              {"id": 13, "piece": ""}, {"id": 14, "piece": "!"}]
    assert units_of_pieces(pieces) == [Unit("caf", (10,)), Unit("é", (11, 12, 13)), Unit("!", (14,))]
    # A tail that never decodes is left out: the ledger ends before it.
    assert units_of_pieces([{"id": 1, "piece": "a"}, {"id": 2, "piece": [195]}]) == [Unit("a", (1,))]
