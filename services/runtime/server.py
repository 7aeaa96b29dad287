"""The runtime's gRPC servicers (translation between protos and the domain, nothing more) and
`create_server`, which wires storage, the model client, the loop and the servers together."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
from ducklm.common.v1 import common_pb2
from ducklm.runtime.v1 import runtime_pb2, runtime_pb2_grpc
from opentelemetry.trace import SpanKind

from services.common.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable, grpc_errors
from services.common.paging import next_page_token, page_bounds
from services.common.protos import from_struct, to_struct, to_timestamp
from services.common.server import GrpcServer, ServiceBinding, build_server
from services.common.tracing import span
from services.common.vocabulary import MAX_MESSAGE_CHARS
from services.runtime import events as ev
from services.runtime.client_functions import check_functions
from services.runtime.completion_client import LlamaCompletions
from services.runtime.config import Settings
from services.runtime.directives import DirectiveSchema
from services.runtime.event_protos import PayloadMismatch, fill_payload
from services.runtime.leases import LeaseKeeper
from services.runtime.loop import RuntimeLoop
from services.runtime.model_client import ModelClient
from services.runtime.model_health import ModelHealth
from services.runtime.models_config import load_models_config
from services.runtime.peers import GrpcPeers, PeerError
from services.runtime.pg_store import PostgresTaskStore
from services.runtime.reflection import reflect
from services.runtime.replay import replay_events
from services.runtime.runner import TaskRunner
from services.runtime.skill_catalogue import SkillCatalogue
from services.runtime.staged_step import make_decider
from services.runtime.states import REST_STATES, TaskStatus
from services.runtime.storage import TaskStorage, open_task_store
from services.runtime.store import EventRecord, TaskRecord

__all__ = ["EmbeddingServicer", "RuntimeServicer", "create_server", "event_to_proto", "task_to_proto"]

log = logging.getLogger(__name__)


def task_to_proto(task: TaskRecord) -> runtime_pb2.Task:
    return runtime_pb2.Task(
        id=task.id,
        # By label: the constructor checks it (ValueError on an unknown one) and keeps the enum type.
        status=f"TASK_STATUS_{task.status.name}",
        title=task.title,
        create_time=to_timestamp(task.create_time),
        update_time=to_timestamp(task.update_time),
        last_reply=task.last_reply,
        error=task.error,
        steps=task.steps,
        usage=common_pb2.ModelUsage(
            prompt_tokens=task.prompt_tokens,
            completion_tokens=task.completion_tokens,
            cached_prompt_tokens=task.cached_prompt_tokens,
        ),
        pending_approval_id=task.pending_approval_id,
    )


def event_to_proto(event: EventRecord) -> common_pb2.Event:
    message = common_pb2.Event(
        task_id=event.task_id,
        seq=event.seq,
        type=f"EVENT_TYPE_{event.type.upper()}",  # by label, as for Task.status
        create_time=to_timestamp(event.create_time),
        data=to_struct(event.data),
    )
    payload = event.payload
    if not isinstance(payload, ev.Unknown):
        # The typed payload from the same fields (events.py reads old shapes too); one the proto
        # cannot hold (a value of the wrong type in an old log) leaves only `data`.
        try:
            fill_payload(getattr(message, payload.type), payload)
        except PayloadMismatch as exc:
            message.ClearField(payload.type)
            log.warning("event %s:%s has no typed payload: %s", event.task_id, event.seq, exc)
    return message


def _message(request: runtime_pb2.ChatRequest) -> str:
    message = request.message.strip()
    if not message:
        raise InvalidArgument("message must not be empty")
    if len(message) > MAX_MESSAGE_CHARS:
        raise InvalidArgument(f"message is longer than {MAX_MESSAGE_CHARS} characters")
    return message


def _extras(request: runtime_pb2.ChatRequest) -> dict[str, Any]:
    """What the client adds to the turn: its own functions and a schema for the answer."""
    extras: dict[str, Any] = {}
    if request.client_functions:
        extras["client_functions"] = check_functions(
            [
                {"name": f.name, "description": f.description, "parameters": from_struct(f.parameters)}
                for f in request.client_functions
            ]
        )
    if request.HasField("reply_schema"):
        extras["reply_schema"] = from_struct(request.reply_schema)
    return extras


def _status_filter(value: int) -> TaskStatus | None:
    if value == common_pb2.TASK_STATUS_UNSPECIFIED:
        return None
    if value not in common_pb2.TaskStatus.values():
        raise InvalidArgument(f"status {value} is not a TaskStatus")
    name = common_pb2.TaskStatus.Name(value).removeprefix("TASK_STATUS_")
    return TaskStatus[name]


class RuntimeServicer(runtime_pb2_grpc.RuntimeServiceServicer):
    def __init__(self, settings: Settings, store: TaskStorage, runner: TaskRunner, models: ModelClient,
                 schema: DirectiveSchema, peers: GrpcPeers | None) -> None:
        self._settings = settings
        self._store = store
        self._runner = runner
        self._models = models
        self._schema = schema
        self._peers = peers

    async def _skill(self, request: runtime_pb2.ChatRequest) -> str:
        """The skill the request asks for, checked to exist before any task is touched."""
        if not request.skill:
            return ""
        if self._peers is None:
            raise FailedPrecondition("skills need the skills service; the runtime runs standalone")
        try:
            await self._peers.get_skill(request.skill)
        except PeerError as exc:
            if exc.code == "NOT_FOUND":
                raise NotFound(f"no skill named {request.skill!r}") from None
            if exc.code == "INVALID_ARGUMENT":
                raise InvalidArgument(f"skill: {exc.message}") from None
            raise Unavailable(f"skills service: {exc.message}") from None
        return request.skill

    @grpc_errors
    async def ReplayTask(
        self,
        request: runtime_pb2.ReplayTaskRequest,
        context: grpc.aio.ServicerContext[runtime_pb2.ReplayTaskRequest, runtime_pb2.ReplayTaskResponse],
    ) -> runtime_pb2.ReplayTaskResponse:
        await self._store.get_task(request.task_id)
        events = await self._store.list_events(request.task_id, limit=1_000_000)
        result = await replay_events(self._settings, self._models.config, self._schema, events)
        return runtime_pb2.ReplayTaskResponse(directives=result.directives, matches=result.matches, mismatch=result.mismatch)

    @grpc_errors
    async def Reflect(
        self,
        request: runtime_pb2.ReflectRequest,
        context: grpc.aio.ServicerContext[runtime_pb2.ReflectRequest, runtime_pb2.ReflectResponse],
    ) -> runtime_pb2.ReflectResponse:
        if self._peers is None:
            raise FailedPrecondition("reflection needs the skills service; the runtime runs standalone")
        result = await reflect(self._models, self._peers, self._store, list(request.experience_ids))
        return runtime_pb2.ReflectResponse(proposal_id=result.proposal_id, outcome=result.outcome)

    @grpc_errors
    async def Chat(
        self,
        request: runtime_pb2.ChatRequest,
        context: grpc.aio.ServicerContext[runtime_pb2.ChatRequest, runtime_pb2.ChatResponse],
    ) -> runtime_pb2.ChatResponse:
        task, _ = await self._runner.send_message(
            request.task_id or None, _message(request), await self._skill(request), _extras(request),
            memory=not request.without_memory,
        )
        await self._runner.wait(task.id)
        task = await self._store.get_task(task.id)
        reply = task.last_reply if task.status is TaskStatus.COMPLETED else ""
        return runtime_pb2.ChatResponse(task=task_to_proto(task), reply=reply)

    @grpc_errors
    async def GetTask(
        self,
        request: runtime_pb2.GetTaskRequest,
        context: grpc.aio.ServicerContext[runtime_pb2.GetTaskRequest, runtime_pb2.Task],
    ) -> runtime_pb2.Task:
        return task_to_proto(await self._store.get_task(request.task_id))

    @grpc_errors
    async def ListTasks(
        self,
        request: runtime_pb2.ListTasksRequest,
        context: grpc.aio.ServicerContext[runtime_pb2.ListTasksRequest, runtime_pb2.ListTasksResponse],
    ) -> runtime_pb2.ListTasksResponse:
        offset, limit = page_bounds(request.page_size, request.page_token)
        tasks = await self._store.list_tasks(offset, limit, _status_filter(request.status))
        return runtime_pb2.ListTasksResponse(
            tasks=[task_to_proto(task) for task in tasks],
            next_page_token=next_page_token(offset, limit, len(tasks)),
        )

    @grpc_errors
    async def CancelTask(
        self,
        request: runtime_pb2.CancelTaskRequest,
        context: grpc.aio.ServicerContext[runtime_pb2.CancelTaskRequest, runtime_pb2.Task],
    ) -> runtime_pb2.Task:
        return task_to_proto(await self._runner.cancel(request.task_id, request.reason))

    @grpc_errors
    async def UpdateTask(
        self,
        request: runtime_pb2.UpdateTaskRequest,
        context: grpc.aio.ServicerContext[runtime_pb2.UpdateTaskRequest, runtime_pb2.Task],
    ) -> runtime_pb2.Task:
        title = " ".join(request.title.split())
        if not title or len(title) > 200:
            raise InvalidArgument("title must be 1 to 200 characters")
        return task_to_proto(await self._store.rename_task(request.task_id, title))

    @grpc_errors
    async def DeleteTask(
        self,
        request: runtime_pb2.DeleteTaskRequest,
        context: grpc.aio.ServicerContext[runtime_pb2.DeleteTaskRequest, runtime_pb2.DeleteTaskResponse],
    ) -> runtime_pb2.DeleteTaskResponse:
        task = await self._store.get_task(request.task_id)
        if task.status is TaskStatus.WAITING_APPROVAL:
            task = await self._runner.cancel(task.id, "deleted")
        if task.status in (TaskStatus.PENDING, TaskStatus.RUNNING):
            raise FailedPrecondition(f"task {task.id} is {task.status.value}; cancel it before deleting it")
        await self._store.delete_task(task.id)
        return runtime_pb2.DeleteTaskResponse()

    @grpc_errors
    async def ListTaskEvents(
        self,
        request: runtime_pb2.ListTaskEventsRequest,
        context: grpc.aio.ServicerContext[runtime_pb2.ListTaskEventsRequest, runtime_pb2.ListTaskEventsResponse],
    ) -> runtime_pb2.ListTaskEventsResponse:
        await self._store.get_task(request.task_id)
        offset, limit = page_bounds(request.page_size, request.page_token, default=200, maximum=1000)
        events = await self._store.list_events(request.task_id, after_seq=offset, limit=limit)
        return runtime_pb2.ListTaskEventsResponse(
            events=[event_to_proto(event) for event in events],
            next_page_token=next_page_token(offset, limit, len(events)),
        )

    @grpc_errors
    async def StreamChat(
        self,
        request: runtime_pb2.ChatRequest,
        context: grpc.aio.ServicerContext[runtime_pb2.ChatRequest, common_pb2.Event],
    ) -> AsyncIterator[common_pb2.Event]:
        task, user_seq = await self._runner.send_message(
            request.task_id or None, _message(request), await self._skill(request), _extras(request),
            memory=not request.without_memory,
        )
        # The turn's loop has been scheduled but has not run yet: subscribing now misses nothing.
        # A new task's stream starts at its task_created event, a continued one at the message.
        after_seq = user_seq - 1 if request.task_id else 0
        async for event in self._follow(task.id, after_seq=after_seq, follow=False):
            yield event

    @grpc_errors
    async def StreamTaskEvents(
        self,
        request: runtime_pb2.StreamTaskEventsRequest,
        context: grpc.aio.ServicerContext[runtime_pb2.StreamTaskEventsRequest, common_pb2.Event],
    ) -> AsyncIterator[common_pb2.Event]:
        task = await self._store.get_task(request.task_id)
        async for event in self._follow(task.id, after_seq=request.after_seq, follow=request.follow):
            yield event

    async def _follow(self, task_id: str, *, after_seq: int, follow: bool) -> AsyncIterator[common_pb2.Event]:
        """Stored events after `after_seq`, then live ones, until the task rests (unless `follow`)."""
        # Subscribe before reading the backlog so no event falls between the two.
        queue = self._store.subscribe(task_id)
        try:
            last_seq = after_seq
            for event in await self._store.list_events(task_id, after_seq=last_seq, limit=1_000_000):
                last_seq = event.seq
                yield event_to_proto(event)
            task = await self._store.get_task(task_id)
            if task.status in REST_STATES and not self._runner.is_running(task_id) and not follow:
                return
            while True:
                event = await queue.get()
                if event.seq and event.seq <= last_seq:
                    continue
                last_seq = max(last_seq, event.seq)
                yield event_to_proto(event)
                if isinstance(event.payload, ev.StatusChanged) and TaskStatus(event.payload.to) in REST_STATES and not follow:
                    return
        finally:
            self._store.unsubscribe(task_id, queue)


class EmbeddingServicer(runtime_pb2_grpc.EmbeddingServiceServicer):
    def __init__(self, models: ModelClient) -> None:
        self._models = models

    @grpc_errors
    async def Embed(
        self,
        request: runtime_pb2.EmbedRequest,
        context: grpc.aio.ServicerContext[runtime_pb2.EmbedRequest, runtime_pb2.EmbedResponse],
    ) -> runtime_pb2.EmbedResponse:
        if not request.texts:
            raise InvalidArgument("texts must not be empty")
        # A model call of its own (GenAI conventions); the model's name is known once it answered.
        with span("embeddings", {"gen_ai.operation.name": "embeddings", "gen_ai.provider.name": "llama.cpp",
                                 "ducklm.embeddings.texts": len(request.texts)}, kind=SpanKind.CLIENT) as current:
            vectors, model = await self._models.embed(list(request.texts))
            current.update_name(f"embeddings {model}")
            current.set_attribute("gen_ai.request.model", model)
        return runtime_pb2.EmbedResponse(
            embeddings=[runtime_pb2.Embedding(values=vector) for vector in vectors],
            model=model,
            dimension=len(vectors[0]) if vectors else 0,
        )


async def create_server(settings: Settings) -> GrpcServer:
    """Opens the task store, loads models.yaml and the directive schema, resumes tasks a crash
    interrupted, and serves RuntimeService and EmbeddingService."""
    models_config = load_models_config(settings.models_file)
    models = ModelClient(models_config)
    completions = LlamaCompletions(models_config, http=models.http, pool=models.pool)
    schema = DirectiveSchema.load(settings.directive_schema)
    store = await open_task_store(settings)
    peers = None
    if not settings.standalone:
        peers = GrpcPeers(
            tools_address=settings.tools_address,
            skills_address=settings.skills_address,
            memory_address=settings.memory_address,
            wait_seconds=settings.peer_wait_seconds,
        )
    # Skills offered by relevance within a token budget, counted with the chat model's tokenizer.
    catalogue = SkillCatalogue(lambda text: models.count_tokens("chat", text))
    loop = RuntimeLoop(settings, store, models, schema, peers, decider=make_decider(settings, completions),
                       skill_catalogue=catalogue)
    runner = TaskRunner(store, loop, approval_retry_seconds=settings.approval_retry_seconds)
    if peers is not None and settings.reflect_after_task:
        reflecting_peers = peers

        async def reflect_on(experience_id: str) -> None:
            await reflect(models, reflecting_peers, store, [experience_id])

        runner.after_experience = reflect_on
    server = await build_server(
        [
            ServiceBinding(
                RuntimeServicer(settings, store, runner, models, schema, peers),
                runtime_pb2_grpc.add_RuntimeServiceServicer_to_server,
                runtime_pb2.DESCRIPTOR.services_by_name["RuntimeService"].full_name,
            ),
            ServiceBinding(
                EmbeddingServicer(models),
                runtime_pb2_grpc.add_EmbeddingServiceServicer_to_server,
                runtime_pb2.DESCRIPTOR.services_by_name["EmbeddingService"].full_name,
            ),
        ],
        settings.address,
    )
    # On PostgreSQL several replicas may share the tasks: they are resumed through their leases.
    keeper = LeaseKeeper(store, runner) if isinstance(store, PostgresTaskStore) else None
    if keeper is not None:
        server.add_cleanup(keeper.stop)  # first: it must not resume what is being shut down
    health = ModelHealth(models, server, settings.model_probe_seconds)
    server.add_cleanup(health.stop)
    server.add_cleanup(runner.shutdown)
    if peers is not None:
        server.add_cleanup(peers.close)
    server.add_cleanup(models.close)
    server.add_cleanup(completions.close)
    server.add_cleanup(store.close)
    if keeper is not None:
        keeper.start()
    else:
        await runner.resume_unfinished()
    runner.watch_approvals()
    health.start()
    return server


