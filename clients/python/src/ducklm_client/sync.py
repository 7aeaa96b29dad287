"""`Client`: the same API as `AsyncClient`, blocking. It runs an `AsyncClient` on a private event
loop, so it must not be used from inside a running event loop (use `AsyncClient` there).

    with Client() as client:
        print(client.chat("Hello!").reply)
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterator
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

from ducklm_client.client import AsyncClient
from ducklm_client.config import Connection

__all__ = ["Client"]

P = ParamSpec("P")
T = TypeVar("T")


def _blocking(
    method: Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[Client, P], T]:
    """`AsyncClient`'s method, run to completion on the client's loop: the same signature and
    docstring, so the two clients cannot drift apart."""

    @functools.wraps(method)
    def call(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._run(method(self._client, *args, **kwargs))

    return call


def _blocking_stream(
    method: Callable[Concatenate[AsyncClient, P], AsyncGenerator[T, None]],
) -> Callable[Concatenate[Client, P], Iterator[T]]:
    """`AsyncClient`'s streaming method as an iterator that blocks for each item."""

    @functools.wraps(method)
    def call(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        return self._iterate(method(self._client, *args, **kwargs))

    return call


class Client:
    """Blocking DuckLM client. Use as `with Client() as client:` or call `close()`."""

    def __init__(self, connection: Connection | None = None, **addresses: str) -> None:
        self._runner = asyncio.Runner()
        # The channels must belong to the loop that will run the calls: create the client there.
        self._client = self._runner.run(self._open(connection, addresses))

    @staticmethod
    async def _open(connection: Connection | None, addresses: dict[str, str]) -> AsyncClient:
        return AsyncClient(connection, **addresses)

    @property
    def connection(self) -> Connection:
        return self._client.connection

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._runner.run(self._client.close())
        finally:
            self._runner.close()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coroutine)

    def _iterate(self, stream: AsyncGenerator[T, None]) -> Iterator[T]:
        async def step() -> T:
            return await anext(stream)

        async def close() -> None:
            await stream.aclose()

        try:
            while True:
                try:
                    yield self._runner.run(step())
                except StopAsyncIteration:
                    return
        finally:
            # Stopping early cancels the call on the server too.
            self._runner.run(close())

    # AsyncClient's methods, each run to completion (see there for what they do).
    chat = _blocking(AsyncClient.chat)
    stream_chat = _blocking_stream(AsyncClient.stream_chat)
    get_task = _blocking(AsyncClient.get_task)
    list_tasks = _blocking(AsyncClient.list_tasks)
    cancel_task = _blocking(AsyncClient.cancel_task)
    list_events = _blocking(AsyncClient.list_events)
    stream_events = _blocking_stream(AsyncClient.stream_events)
    stream_until_rest = _blocking_stream(AsyncClient.stream_until_rest)
    replay = _blocking(AsyncClient.replay)
    list_approvals = _blocking(AsyncClient.list_approvals)
    get_approval = _blocking(AsyncClient.get_approval)
    approve = _blocking(AsyncClient.approve)
    deny = _blocking(AsyncClient.deny)
    list_skills = _blocking(AsyncClient.list_skills)
    get_skill = _blocking(AsyncClient.get_skill)
    validate_skill = _blocking(AsyncClient.validate_skill)
    list_proposals = _blocking(AsyncClient.list_proposals)
    get_proposal = _blocking(AsyncClient.get_proposal)
    promote_proposal = _blocking(AsyncClient.promote_proposal)
    reject_proposal = _blocking(AsyncClient.reject_proposal)
    remember = _blocking(AsyncClient.remember)
    search = _blocking(AsyncClient.search)
    get_memory = _blocking(AsyncClient.get_memory)
    forget = _blocking(AsyncClient.forget)
    list_memories = _blocking(AsyncClient.list_memories)
    promote_memory = _blocking(AsyncClient.promote_memory)
    update_memory = _blocking(AsyncClient.update_memory)
    forget_matching = _blocking(AsyncClient.forget_matching)
    forget_scope = _blocking(AsyncClient.forget_scope)
    health = _blocking(AsyncClient.health)
