"""One process's Kafka plumbing: a producer, and a reader of its own replies partition.

The client and the worker talk to the engine only through topics (see the last
section of ``schemas/README.md``): they produce ``Command`` records to
``<ns>.commands`` keyed by workflow id, and a request that wants an answer names
a partition of ``<ns>.replies`` in its ``reply_to``. A :class:`Transport` owns
that partition for its process: it reads it from the end offset it had at
connect, and hands each ``Reply`` to the coroutine waiting for its request id.

librdkafka is callback-driven and blocking, so two daemon threads serve it: one
polls the producer (delivery reports), one polls the replies consumer. Both
resolve asyncio futures through ``loop.call_soon_threadsafe``; no Kafka call
blocks the event loop.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from cadenza import schemas
from cadenza._consume import consume_available
from cadenza._eager_start import EagerStarts
from cadenza._ids import new_id
from cadenza._settings import Settings
from cadenza.exceptions import CadenzaError, RPCTimeoutOrCancelledError
from cadenza.topics import (
    commands_topic,
    history_topic,
    replies_topic,
    visibility_requests_topic,
)

__all__ = ["DeliveryError", "Transport", "TransportError", "default_identity"]

_log = logging.getLogger("cadenza.transport")
_log.addHandler(logging.NullHandler())
# librdkafka logs every failed connection attempt; routed through `logging` (silent
# unless the application configures it) so the caller sees one clear error instead.
_kafka_log = logging.getLogger("cadenza.transport.kafka")

DEFAULT_CONNECT_TIMEOUT = 10.0
"""Seconds :meth:`Transport.connect` waits for the cluster to answer."""

_POLL_INTERVAL = 0.1
_REPLY_BATCH = 500
"""Most replies taken from the consumer at once."""
_CLOSE_FLUSH_TIMEOUT = 10.0
_LEADER_MOVES = frozenset(
    {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError._TIMED_OUT}
)


class TransportError(CadenzaError):
    """Kafka cannot be used: unreachable, topics missing, or the transport is closed.

    The message says what is wrong and what to run about it.
    """


class DeliveryError(TransportError):
    """The broker did not acknowledge a record; it may not have been written."""

    def __init__(self, message: str, *, topic: str, error: KafkaError | None = None) -> None:
        """Create the error.

        Args:
            message: What failed and why.
            topic: The topic the record was meant for.
            error: librdkafka's error, when there is one.
        """
        super().__init__(message)
        self.topic = topic
        self.error = error


def default_identity() -> str:
    """``<pid>@<host>``, the identity Temporal's SDK uses by default."""
    return f"{os.getpid()}@{socket.gethostname()}"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _set_result(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


_Delivery = tuple["asyncio.Future[tuple[int, int]]", BaseException | None, tuple[int, int]]
"""A produced record's future, its delivery error, and its (partition, offset)."""


def _settle(items: list[_Delivery]) -> None:
    for future, error, position in items:
        if error is None:
            _set_result(future, position)
        else:
            _set_exception(future, error)


_Answer = tuple["asyncio.Future[dict[str, Any]]", dict[str, Any]]
"""A reply and the future of the request it answers."""


def _answer(answers: list[_Answer]) -> None:
    for future, reply in answers:
        _set_result(future, reply)


_Item = TypeVar("_Item", _Delivery, _Answer)


def _hand_to_loops(items: list[_Item], fn: Callable[[list[_Item]], None]) -> None:
    """Run ``fn`` on the items of each event loop (their futures' loops), in that loop:
    one wake-up per loop, not one per item. From any thread."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Item]] = {}
    for item in items:
        by_loop.setdefault(item[0].get_loop(), []).append(item)
    for loop, mine in by_loop.items():
        try:
            loop.call_soon_threadsafe(fn, mine)
        except RuntimeError:
            pass  # the loop is closed: nobody is waiting any more


def _call_in_loop(future: asyncio.Future[Any], fn: Any, *args: Any) -> None:
    """Run ``fn(*args)`` in the future's event loop, from any thread."""
    try:
        future.get_loop().call_soon_threadsafe(fn, *args)
    except RuntimeError:
        # The loop is closed: nobody is waiting any more.
        pass


class Transport:
    """One process's Kafka plumbing: a producer, and a reader of its own replies partition.

    Create it with :meth:`connect`; share it between the client and workers of one
    process; :meth:`close` it at the end.

    Attributes:
        settings: The settings it was connected with.
        identity: Written into every command's ``identity``.
        client_id: Unique per transport (uuid4 hex); the ``client_id`` of every ``reply_to``.
        reply_partition: The partition of ``<ns>.replies`` this transport reads.
    """

    settings: Settings
    identity: str
    client_id: str
    reply_partition: int

    def __init__(
        self,
        settings: Settings,
        *,
        identity: str,
        client_id: str,
        reply_partition: int,
        producer: Producer,
        consumer: Consumer,
        partition_counts: dict[str, int],
    ) -> None:
        """Internal: use :meth:`connect`."""
        self.settings = settings
        self.identity = identity
        self.client_id = client_id
        self.reply_partition = reply_partition
        self._producer = producer
        self._consumer = consumer
        self._partition_counts = partition_counts
        self._commands_topic = commands_topic(settings)
        self._replies_topic = replies_topic(settings)
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._pending_lock = threading.Lock()
        # Acknowledged records' futures, filled by delivery callbacks (deque: thread-safe).
        self._delivered: collections.deque[_Delivery] = collections.deque()
        self._closed = threading.Event()
        self._closing = False
        self.eager_starts = EagerStarts()
        """The workers sharing this transport that take eager starts' first tasks."""
        self._threads = [
            threading.Thread(
                target=self._poll_producer, name=f"cadenza-producer-{client_id[:8]}", daemon=True
            ),
            threading.Thread(
                target=self._read_replies, name=f"cadenza-replies-{client_id[:8]}", daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()

    # -- connecting --------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        settings: Settings,
        *,
        identity: str | None = None,
        timeout: float = DEFAULT_CONNECT_TIMEOUT,
    ) -> Transport:
        """Connect to the cluster ``settings`` names and start reading a replies partition.

        Checks that the cluster answers and that the namespace's ``commands``,
        ``history`` and ``replies`` topics exist, picks a partition of ``replies`` at
        random and starts reading it at its current end offset: every reply produced
        after this returns is seen.

        Args:
            settings: Cluster, security and namespace.
            identity: Written into every command (default ``<pid>@<host>``).
            timeout: Seconds to wait for the cluster to answer.

        Raises:
            TransportError: The cluster cannot be reached, or the namespace's topics
                do not exist (the message says to run ``cadenza topics create``).
        """
        return await asyncio.to_thread(
            cls._connect_blocking, settings, identity or default_identity(), timeout
        )

    @classmethod
    def _connect_blocking(cls, settings: Settings, identity: str, timeout: float) -> Transport:
        # librdkafka reports why it cannot connect only through error_cb; the latest
        # reasons go into the "cannot reach Kafka" message.
        errors: collections.deque[KafkaError] = collections.deque(maxlen=8)

        def on_error(error: KafkaError) -> None:
            errors.append(error)
            _log.debug("producer: %s", error.str())

        producer = Producer(
            {
                **settings.producer_config(),
                "error_cb": on_error,
                "logger": _kafka_log,
            }
        )
        try:
            counts = _check_topics(producer, settings, errors, timeout)
            client_id = uuid.uuid4().hex
            reply_partition = random.randrange(counts[replies_topic(settings)])
            consumer = _replies_consumer(settings, client_id, reply_partition, timeout)
        except BaseException:
            _close_producer(producer)
            raise
        return cls(
            settings,
            identity=identity,
            client_id=client_id,
            reply_partition=reply_partition,
            producer=producer,
            consumer=consumer,
            partition_counts=counts,
        )

    # -- partitions --------------------------------------------------------------------

    def partitions_of(self, topic: str) -> int:
        """Partition count of ``commands``, ``history`` or ``replies`` (as seen at connect)."""
        try:
            return self._partition_counts[topic]
        except KeyError:
            raise ValueError(f"the transport knows no partition count for {topic!r}") from None

    # -- requests and replies ----------------------------------------------------------

    def new_reply_to(self) -> tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]:
        """A fresh ``ReplyTo`` and the future its ``Reply`` will resolve.

        Call it from the event loop that will await the future, before producing the
        request. The future is resolved with the decoded ``cadenza.reply.Reply`` datum
        (``request_id``, ``workflow_id``, ``run_id``, ``body`` as ``(name, record)``);
        cancelling it stops waiting.

        Raises:
            TransportError: The transport is closed.
        """
        if self._closing:
            raise TransportError("the Kafka transport is closed")
        request_id = new_id()
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        with self._pending_lock:
            self._pending[request_id] = future
        future.add_done_callback(lambda _: self._forget(request_id))
        reply_to = {
            "client_id": self.client_id,
            "partition": self.reply_partition,
            "request_id": request_id,
        }
        return reply_to, future

    def _forget(self, request_id: str) -> None:
        with self._pending_lock:
            self._pending.pop(request_id, None)

    async def send(
        self, topic: str, key: bytes, value: bytes, *, partition: int | None = None
    ) -> tuple[int, int]:
        """Produce one record and wait until the broker acknowledges it (acks=all).

        Without ``partition`` the producer's murmur2 partitioner places the record by
        ``key``, as Kafka's Java client would.

        Returns:
            The record's partition and offset.

        Raises:
            DeliveryError: The broker did not acknowledge the record.
            TransportError: The transport is closed.
        """
        if self._closing:
            raise TransportError("the Kafka transport is closed")
        future: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            error = None
            if err is not None:
                error = DeliveryError(
                    f"Kafka did not accept a record for {topic}: {err.str()}",
                    topic=topic,
                    error=err,
                )
            self._delivered.append((future, error, (msg.partition() or 0, msg.offset() or 0)))

        extra: dict[str, Any] = {} if partition is None else {"partition": partition}
        while True:
            try:
                self._producer.produce(topic, value, key, on_delivery=on_delivery, **extra)
                break
            except BufferError:
                # The local queue is full: the poll thread drains it; wait a moment.
                await asyncio.sleep(0.01)
            except KafkaException as exc:
                err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
                reason = err.str() if err is not None else str(exc)
                raise DeliveryError(
                    f"cannot produce a record to {topic}: {reason}", topic=topic, error=err
                ) from None
        return await future

    async def send_command(
        self,
        workflow_id: str,
        body: tuple[str, dict[str, Any]],
        *,
        run_id: str | None = None,
        want_reply: bool = False,
        timeout: float | None = None,
    ) -> dict[str, Any] | None:
        """Send a ``Command`` to ``<ns>.commands`` (key: ``workflow_id``); maybe await its reply.

        Args:
            workflow_id: Target workflow; the record key.
            body: The command body as ``("cadenza.command.<Name>", record)``.
            run_id: Target run; ``None`` means the current run.
            want_reply: Name this transport's replies partition in ``reply_to`` and
                wait for the ``Reply``.
            timeout: Seconds to wait for the acknowledgement and the reply together;
                ``None`` waits as long as it takes.

        Returns:
            The ``Reply`` datum when ``want_reply``, else ``None`` (once acknowledged).

        Raises:
            RPCTimeoutOrCancelledError: No reply within ``timeout``.
            DeliveryError: The broker did not acknowledge the command.
            schemas.EncodeError: ``body`` does not match its schema.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        reply_to: dict[str, Any] | None = None
        future: asyncio.Future[dict[str, Any]] | None = None
        if want_reply:
            reply_to, future = self.new_reply_to()
        command = {
            "command_id": new_id(),
            "workflow_id": workflow_id,
            "run_id": run_id,
            "sent_time_ms": _now_ms(),
            "identity": self.identity,
            "reply_to": reply_to,
            "body": body,
        }
        try:
            value = schemas.encode(schemas.COMMAND, command)
            send = self.send(self._commands_topic, workflow_id.encode(), value)
            try:
                partition, offset = await asyncio.wait_for(send, _remaining(deadline))
            except TimeoutError:
                raise RPCTimeoutOrCancelledError(
                    f"{_short(body[0])} for workflow {workflow_id!r}: Kafka did not acknowledge "
                    f"the command within {timeout:g}s"
                ) from None
            if future is None:
                return None
            try:
                return await asyncio.wait_for(future, _remaining(deadline))
            except TimeoutError:
                # Where the command is lets an operator tell an engine that is down or
                # behind (its committed offset on that partition is below it) from one
                # that went past it.
                raise RPCTimeoutOrCancelledError(
                    f"no reply to {_short(body[0])} for workflow {workflow_id!r} within "
                    f"{timeout:g}s (the command is at {self._commands_topic}[{partition}]"
                    f"@{offset}): the engine may not be running (start it with "
                    "`cadenza processors run`) or may be behind"
                ) from None
        finally:
            if future is not None and not future.done():
                future.cancel()

    async def send_visibility_request(
        self, body: tuple[str, dict[str, Any]], *, timeout: float | None = None
    ) -> dict[str, Any]:
        """Ask the visibility projection (``<ns>.visibility-requests``) and await its reply.

        Args:
            body: The request body as ``("cadenza.visibility.<Name>", record)``.
            timeout: Seconds to wait for the acknowledgement and the reply together;
                ``None`` waits as long as it takes.

        Returns:
            The ``Reply`` datum.

        Raises:
            RPCTimeoutOrCancelledError: No reply within ``timeout``.
            DeliveryError: The broker did not acknowledge the request (for a namespace
                created before visibility existed: run ``cadenza topics create``).
            schemas.EncodeError: ``body`` does not match its schema.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        reply_to, future = self.new_reply_to()
        request = {
            "request_id": reply_to["request_id"],
            "reply_to": reply_to,
            "sent_time_ms": _now_ms(),
            "body": body,
        }
        topic = visibility_requests_topic(self.settings)
        try:
            value = schemas.encode(schemas.VISIBILITY_REQUEST, request)
            send = self.send(topic, reply_to["request_id"].encode(), value)
            try:
                await asyncio.wait_for(send, _remaining(deadline))
            except TimeoutError:
                raise RPCTimeoutOrCancelledError(
                    f"{_short(body[0])}: Kafka did not acknowledge the request on {topic} "
                    f"within {timeout:g}s (a namespace created before visibility existed "
                    "lacks the topic: run `cadenza topics create`)"
                ) from None
            try:
                return await asyncio.wait_for(future, _remaining(deadline))
            except TimeoutError:
                raise RPCTimeoutOrCancelledError(
                    f"no reply to {_short(body[0])} within {timeout:g}s: the visibility "
                    "processor may not be running (`cadenza processors run` runs it)"
                ) from None
        finally:
            if not future.done():
                future.cancel()

    async def send_reply(
        self,
        reply_to: dict[str, Any],
        *,
        workflow_id: str,
        run_id: str | None,
        body: tuple[str, dict[str, Any]],
    ) -> None:
        """Answer a request: a ``Reply`` to the ``replies`` partition ``reply_to`` names.

        The record key is the request id (used by workers answering query tasks).

        Raises:
            DeliveryError: The broker did not acknowledge the reply.
        """
        request_id = str(reply_to["request_id"])
        reply = {
            "request_id": request_id,
            "workflow_id": workflow_id,
            "run_id": run_id,
            "body": body,
        }
        value = schemas.encode(schemas.REPLY, reply)
        await self.send(
            self._replies_topic,
            request_id.encode(),
            value,
            partition=int(reply_to["partition"]),
        )

    # -- threads -----------------------------------------------------------------------

    def _poll_producer(self) -> None:
        while not self._closed.is_set():
            try:
                self._producer.poll(_POLL_INTERVAL)
            except Exception:  # a delivery callback must never kill the thread
                _log.exception("error while polling the producer")
            self._settle_deliveries()

    def _settle_deliveries(self) -> None:
        """Resolve the futures of the records acknowledged since the last call: one
        wake-up of each event loop per poll, not one per record."""
        items: list[_Delivery] = []
        while True:
            try:
                items.append(self._delivered.popleft())
            except IndexError:
                break
        _hand_to_loops(items, _settle)

    def _read_replies(self) -> None:
        """Resolve the futures of the replies that have arrived: what came together is
        decoded together and handed to each event loop in one wake-up, not one per
        reply (at 200 workflows in flight, two replies a workflow)."""
        while not self._closed.is_set():
            try:
                messages = consume_available(self._consumer, _REPLY_BATCH, _POLL_INTERVAL)
            except RuntimeError:  # the consumer was closed under us
                return
            except KafkaException as exc:
                _log.warning("replies consumer: %s", exc)
                continue
            answers: list[_Answer] = []
            for msg in messages:
                error = msg.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        _log.warning("replies consumer: %s", error.str())
                    continue
                answer = self._waiting_for(msg.value())
                if answer is not None:
                    answers.append(answer)
            _hand_to_loops(answers, _answer)

    def _waiting_for(self, value: bytes | None) -> _Answer | None:
        """The reply in ``value`` and the future waiting for it, if one is."""
        if value is None:
            return None
        try:
            reply = schemas.decode_as(value, schemas.REPLY)
        except schemas.DecodeError as exc:
            _log.warning("dropping an undecodable record on %s: %s", self._replies_topic, exc)
            return None
        with self._pending_lock:
            future = self._pending.pop(reply["request_id"], None)
        if future is None:
            # Another process's reply sharing the partition, or one nobody waits for.
            return None
        return future, reply

    # -- closing -----------------------------------------------------------------------

    async def close(self) -> None:
        """Stop reading replies, deliver what is queued, and release the Kafka clients.

        Requests still waiting for a reply fail with :class:`TransportError`.
        Calling it twice is harmless.
        """
        if self._closing:
            return
        self._closing = True
        with self._pending_lock:
            pending = list(self._pending.values())
            self._pending.clear()
        for future in pending:
            _call_in_loop(
                future, _set_exception, future, TransportError("the Kafka transport was closed")
            )
        await asyncio.to_thread(self._close_blocking)

    def _close_blocking(self) -> None:
        remaining = self._producer.flush(_CLOSE_FLUSH_TIMEOUT)
        if remaining:
            _log.warning("closing with %d records not acknowledged by Kafka", remaining)
        self._closed.set()
        for thread in self._threads:
            thread.join()
        self._settle_deliveries()  # what the flush acknowledged
        self._consumer.close()
        _close_producer(self._producer)

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _close_producer(producer: Producer) -> None:
    # Producer.close() releases librdkafka's threads at once; older confluent-kafka
    # releases them when the object is collected.
    close = getattr(producer, "close", None)
    if callable(close):
        close()


def _check_topics(
    producer: Producer,
    settings: Settings,
    errors: collections.deque[KafkaError],
    timeout: float,
) -> dict[str, int]:
    """Partition counts of the namespace's fixed topics; raise if Kafka or a topic is missing."""
    bootstrap = settings.resolved_bootstrap_servers
    try:
        metadata = producer.list_topics(timeout=timeout)
    except KafkaException as exc:
        reasons = "; ".join(dict.fromkeys(str(e.str()) for e in errors)) or str(exc)
        hint = (
            "start it with `cadenza kafka start`"
            if settings.uses_local_broker
            else "check CADENZA_BOOTSTRAP_SERVERS and the security settings"
        )
        raise TransportError(
            f"cannot reach Kafka at {bootstrap} within {timeout:g}s ({reasons}): {hint}"
        ) from None
    names = [commands_topic(settings), history_topic(settings), replies_topic(settings)]
    counts: dict[str, int] = {}
    missing = []
    for name in names:
        found = metadata.topics.get(name)
        if found is None or found.error is not None or not found.partitions:
            missing.append(name)
        else:
            counts[name] = len(found.partitions)
    if missing:
        raise TransportError(
            f"namespace {settings.namespace!r} has no topic {', '.join(missing)} on "
            f"{bootstrap}: create its topics with "
            f"`cadenza topics create --namespace {settings.namespace}`"
        )
    return counts


def _replies_consumer(
    settings: Settings, client_id: str, partition: int, timeout: float
) -> Consumer:
    """A consumer assigned to ``partition`` of ``replies`` at the partition's current end."""
    topic = replies_topic(settings)
    consumer = Consumer(
        {
            **settings.kafka_config(),
            # Required by the client library; never joined (the partition is
            # assigned, not subscribed) and nothing is committed.
            "group.id": f"{settings.namespace}.client.{client_id}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "logger": _kafka_log,
        }
    )
    try:
        end = _end_offset(consumer, TopicPartition(topic, partition), timeout)
        # An absolute start offset (not OFFSET_END, which is resolved later) pins the
        # position now, so no reply produced after connect() returns is skipped.
        consumer.assign([TopicPartition(topic, partition, end)])
    except BaseException:
        consumer.close()
        raise
    _log.debug(
        "transport %s reads %s partition %d from offset %d", client_id, topic, partition, end
    )
    return consumer


def _end_offset(consumer: Consumer, partition: TopicPartition, timeout: float) -> int:
    # Right after the topics are created a broker may not know the leader yet
    # (NOT_LEADER_FOR_PARTITION): retriable errors are retried until the deadline.
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        remaining = deadline - time.monotonic()
        try:
            watermarks = consumer.get_watermark_offsets(partition, timeout=max(remaining, 0.1))
            if watermarks is not None:
                return int(watermarks[1])
            reason = "no answer"
        except KafkaException as exc:
            err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
            if err is not None and not err.retriable() and err.code() not in _LEADER_MOVES:
                raise TransportError(
                    f"cannot read the end offset of {partition.topic} partition "
                    f"{partition.partition}: {err.str()}"
                ) from None
            reason = err.str() if err is not None else str(exc)
        if time.monotonic() + delay >= deadline:
            raise TransportError(
                f"cannot read the end offset of {partition.topic} partition "
                f"{partition.partition} within {timeout:g}s: {reason}"
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    return max(0.0, deadline - time.monotonic())


def _short(full_name: str) -> str:
    return full_name.rsplit(".", 1)[-1]
