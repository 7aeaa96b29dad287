"""Chooses the skills offered in a turn: ranked by relevance to the user's request, unrelated ones
dropped, the rest cut to a token budget counted with the chat model's own tokenizer.

Relevance is lexical (Okapi BM25 over each skill's name and description), so it works the same
whether or not embeddings are configured. A skill is offered only when the request shares enough
of its words (`_relevant`): a catalogue of a hundred skills must not tempt a small model into
loading one that has nothing to do with the request. The budget is a share of the context window;
whatever does not fit is left out and counted, so the model is told how many it is not seeing.
Nothing here may fail a chat: an unreachable tokenizer falls back to a cautious estimate.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from services.runtime.peers import SkillSummary

__all__ = ["DESCRIPTION_CHARS", "OfferedSkills", "SkillCatalogue", "catalogue_line", "estimate_text_tokens"]

# A catalogue line shows at most this much of a description (the spec allows 1024 characters).
DESCRIPTION_CHARS = 300
# How long estimates stand in after the tokenizer failed.
TOKENIZER_RETRY_SECONDS = 60.0
# BM25's usual constants.
_K1 = 1.2
_B = 0.75
_WORD = re.compile(r"[a-z0-9]+")
# Words that say nothing about which skill fits ("use this when the user asks to ..."), and verbs
# so common in requests ("write", "create") that sharing one is chance.
_STOP_TEXT = """a about all also an and any are as ask asked asks at be been but by can could do does for from
    get give has have help how i if in into is it its just like make me more my need needs no not
    of on one or other our out please should skill so some such than that the their them then there
    these they this to up us use used uses using want was we what when where which while who why
    will with would you your write writes create creates generate new"""
_STOPWORDS = frozenset(_STOP_TEXT.split())

TokenCounter = Callable[[str], Awaitable[int]]


def estimate_text_tokens(text: str) -> int:
    """A cautious estimate (3 characters a token) for when no tokenizer answers."""
    return len(text) // 3 + 1


def catalogue_line(skill: SkillSummary) -> str:
    description = " ".join(skill.description.split())
    if len(description) > DESCRIPTION_CHARS:
        description = description[: DESCRIPTION_CHARS - 1].rstrip() + "…"
    return f"- {skill.name}: {description}"


@dataclass(frozen=True)
class OfferedSkills:
    """The skills shown this turn, best first; `left_out` counts every loaded skill not shown
    (`unrelated` of them for want of relevance, the rest for want of room)."""

    skills: tuple[SkillSummary, ...]
    left_out: int = 0
    unrelated: int = 0
    tokens: int = 0


class SkillCatalogue:
    """Ranks and budgets skills; keeps each catalogue line's token count, so a hundred skills cost
    one tokenizer call each once, not every turn."""

    def __init__(self, count_tokens: TokenCounter | None = None, *, min_terms: int = 2) -> None:
        self._count_tokens = count_tokens
        self._min_terms = min_terms
        self._counts: dict[str, int] = {}
        # After a tokenizer failure, estimates for a while rather than one failing call per line.
        self._tokenizer_down_until = float("-inf")

    async def offer(
        self, skills: Sequence[SkillSummary], request: str, budget_tokens: int, *, always: str = ""
    ) -> OfferedSkills:
        """The relevant skills for `request` that fit in `budget_tokens`, best first. `always`
        names a skill the person asked for: it is offered whatever its relevance."""
        ranked = rank(skills, request, min_terms=self._min_terms)
        relevant = [skill for skill, _ in ranked]
        if always and all(skill.name != always for skill in relevant):
            relevant = [skill for skill in skills if skill.name == always] + relevant
        chosen: list[SkillSummary] = []
        spent = 0
        for skill in relevant:
            cost = await self.count(catalogue_line(skill))
            if spent + cost > budget_tokens and skill.name != always:
                continue
            chosen.append(skill)
            spent += cost
        return OfferedSkills(
            skills=tuple(chosen),
            left_out=len(skills) - len(chosen),
            unrelated=len(skills) - len(relevant),
            tokens=spent,
        )

    async def count(self, text: str) -> int:
        """Tokens of `text` with the chat model's tokenizer (cached), else the estimate."""
        cached = self._counts.get(text)
        if cached is not None:
            return cached
        tokens = estimate_text_tokens(text)
        if self._count_tokens is None or time.monotonic() < self._tokenizer_down_until:
            return tokens  # not cached: the tokenizer may answer next time
        try:
            tokens = await self._count_tokens(text)
        except Exception:  # noqa: BLE001 - any tokenizer failure falls back; a chat never fails on it
            self._tokenizer_down_until = time.monotonic() + TOKENIZER_RETRY_SECONDS
            return tokens
        self._counts[text] = tokens
        return tokens


def terms(text: str) -> list[str]:
    """Lower-case content words with a light suffix strip, so "tests"/"testing" meet "test"."""
    return [_stem(word) for word in _WORD.findall(text.lower()) if word not in _STOPWORDS and len(word) > 1]


def rank(skills: Sequence[SkillSummary], request: str, *, min_terms: int = 2) -> list[tuple[SkillSummary, float]]:
    """The skills relevant to `request` with their BM25 scores, best first (ties by name)."""
    query = list(dict.fromkeys(terms(request)))
    if not query or not skills:
        return []
    documents = [terms(skill.name.replace("-", " ") + " " + skill.description) for skill in skills]
    average = sum(len(doc) for doc in documents) / len(documents) or 1.0
    frequency = Counter(term for doc in documents for term in set(doc))
    total = len(documents)
    scored: list[tuple[SkillSummary, float]] = []
    for skill, doc in zip(skills, documents, strict=True):
        counts = Counter(doc)
        matched = [term for term in query if counts[term]]
        if not _relevant(skill, request, query, matched, min_terms):
            continue
        score = 0.0
        for term in matched:
            # Lucene's idf: never negative, even for a word every skill shares.
            idf = math.log(1 + (total - frequency[term] + 0.5) / (frequency[term] + 0.5))
            tf = counts[term]
            score += idf * tf * (_K1 + 1) / (tf + _K1 * (1 - _B + _B * len(doc) / average))
        scored.append((skill, score))
    scored.sort(key=lambda item: (-item[1], item[0].name))
    return scored


def _relevant(skill: SkillSummary, request: str, query: list[str], matched: list[str], min_terms: int) -> bool:
    """Named outright, or sharing `min_terms` content words with the request (all of them when the
    request has fewer): one shared word such as "code" or "file" is chance, not relevance."""
    if skill.name in request.lower() or (len(skill.name) > 3 and skill.name.replace("-", " ") in request.lower()):
        return True
    return len(matched) >= min(min_terms, len(query))


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word
