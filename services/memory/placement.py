"""Which collection a memory goes to. A collection holds vectors of one embedding model and one
dimension, fixed when it is made; vectors of two models are never mixed in one.

A request that names a collection gets that one, and a refusal when the runtime's embedding
model is not the collection's. A request that names none gets the default collection for the
model the runtime embeds with now: the configured default (`memories`) while it holds that
model's vectors (or does not exist yet), otherwise `memories-<model>`, made when first needed
and announced in the log. Memories of the earlier model stay where they are, listed by
ListCollections and reachable by naming their collection; they are not searched with vectors
they cannot be compared with.
"""

from __future__ import annotations

import logging
import re

from services.common.errors import DuckLMError, FailedPrecondition
from services.memory.backend import MemoryBackend
from services.memory.embeddings import Embedder, Embeddings
from services.memory.limits import check_collection
from services.memory.records import CollectionSpec

__all__ = ["Placement", "check_compatible", "collection_for_model"]

log = logging.getLogger(__name__)

_SLUG = re.compile(r"[^a-z0-9_-]+")


def collection_for_model(base: str, model: str) -> str:
    """`base-<model>`, made a valid collection name (at most 64 characters)."""
    slug = _SLUG.sub("-", model.lower()).strip("-_") or "model"
    return f"{base}-{slug}"[:64].rstrip("-_")


class Placement:
    def __init__(self, backend: MemoryBackend, embedder: Embedder, *, default: str) -> None:
        self._backend = backend
        self._embedder = embedder
        self.default = check_collection(default)
        # The default collection for the embedding model seen last (None until one is seen).
        self._current: str | None = None

    async def for_embeddings(self, requested: str, embeddings: Embeddings, *, create: bool) -> CollectionSpec | None:
        """The collection these vectors belong in: checked to match them, made when `create`
        and missing; None when it does not exist and `create` is false."""
        if requested:
            name = check_collection(requested)
        else:
            name = await self._default_for(embeddings.model)
        spec = await self._backend.spec(name)
        if spec is None:
            if not create:
                return None
            spec = await self._backend.create_collection(CollectionSpec(name, embeddings.dimension, embeddings.model))
            if name != self.default:
                log.warning(
                    "the embedding model is now %r: memories go to the new collection %r; those in %r "
                    "(model %r) are kept there and no longer searched by default",
                    embeddings.model, name, self.default, (await self._backend.spec(self.default) or spec).embedding_model,
                )
        check_compatible(spec, embeddings)
        return spec

    async def current(self, requested: str) -> str:
        """The collection a request without vectors (list, get, update, forget) works on."""
        if requested:
            return check_collection(requested)
        if self._current is None:
            try:
                # One tiny embedding tells which model the runtime has now.
                probe = await self._embedder.embed(["memory"])
            except DuckLMError:
                # No embeddings (disabled or unreachable): the configured default is all there is.
                return self.default
            return await self._default_for(probe.model)
        return self._current

    async def _default_for(self, model: str) -> str:
        spec = await self._backend.spec(self.default)
        if spec is None or not model or not spec.embedding_model or spec.embedding_model == model:
            name = self.default
        else:
            name = collection_for_model(self.default, model)
        self._current = name
        return name


def check_compatible(spec: CollectionSpec, embeddings: Embeddings) -> None:
    """Refuses vectors from another embedding model: mixing them would corrupt the collection
    (another dimension) or make its scores meaningless (another model, same dimension)."""
    fix = (
        "Go back to that model in config/models.yaml, or leave `collection` empty: the default "
        "collection follows the embedding model"
    )
    if embeddings.dimension != spec.dimension:
        raise FailedPrecondition(
            f"embedding dimension mismatch: collection {spec.name!r} holds {spec.dimension}-dimensional "
            f"vectors from model {spec.embedding_model!r}, but the runtime's embedding model "
            f"{embeddings.model!r} gives {embeddings.dimension}. The call was refused and nothing "
            f"changed. {fix}.",
            reason="EMBEDDING_DIMENSION_MISMATCH",
        )
    if embeddings.model and spec.embedding_model and embeddings.model != spec.embedding_model:
        raise FailedPrecondition(
            f"embedding model mismatch: collection {spec.name!r} holds vectors from model "
            f"{spec.embedding_model!r}, but the runtime now embeds with {embeddings.model!r}; their "
            f"vectors are not comparable. The call was refused and nothing changed. {fix}.",
            reason="EMBEDDING_MODEL_MISMATCH",
        )
