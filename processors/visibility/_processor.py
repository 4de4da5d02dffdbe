"""The visibility processor: fold ``history`` into a queryable store; answer list and count.

One loop, two consumers:

- ``history``: every partition, *assigned* (not subscribed: each instance keeps a
  whole copy of the projection), read_committed, from the offsets its store
  reflects. Each batch of events and the next offsets go to RocksDB in one
  write batch, so a restart resumes exactly where the store is.
- ``visibility-requests``: subscribed in group ``<ns>.visibility`` (one partition,
  so one instance answers at a time), each ``VisibilityRequest`` answered with a
  ``Reply`` on the ``replies`` partition its ``reply_to`` names. Reads change
  nothing, so offsets are auto-committed and a request answered twice is harmless.

Answers are eventually consistent: a run appears once its events reach
``history`` and this loop has read them (usually within tens of milliseconds).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from cadenza import schemas
from cadenza._settings import Settings
from cadenza.topics import (
    consumer_group,
    dead_letters_topic,
    history_topic,
    replies_topic,
    visibility_requests_topic,
)

from .. import _runtime
from .._dead_letters import dead_letter
from . import _listing
from ._metrics import VisibilityMetrics
from ._query import QueryError, parse
from ._store import Fold, VisibilityStore

if TYPE_CHECKING:
    from cadenza.runtime._prometheus import MetricsServer

__all__ = ["Visibility"]

_log = logging.getLogger("cadenza.visibility")

_R = "cadenza.reply."
_V = "cadenza.visibility."
CHILD_PROCESS_PREFIX = "cadenza_visibility_process"
"""Names the ``process_*`` metrics of a visibility child on its engine's page."""
_STALE_REQUEST_MS = 5 * 60_000
"""Requests older than this are skipped: their clients have long given up."""


class Visibility:
    """One visibility processor; :meth:`run` until :meth:`stop`.

    Args:
        settings: Cluster and namespace.
        data_dir: Parent of the store (``<data_dir>/visibility/<namespace>``);
            ``settings.data_dir`` when None.
        batch_size: Most history events folded into one write batch.
        metrics: Where to count what it does (a new one when None).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        data_dir: str | None = None,
        batch_size: int = 1000,
        metrics: VisibilityMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.batch_size = batch_size
        self.home = Path(data_dir or settings.data_dir) / "visibility" / settings.namespace
        self.history = history_topic(settings)
        self.requests = visibility_requests_topic(settings)
        self.replies = replies_topic(settings)
        self.dead_letters = dead_letters_topic(settings)
        self.metrics = metrics or VisibilityMetrics(settings.namespace)
        self.metrics.lag = self.lag
        self._next_offsets: dict[int, int] = {}
        self.store = VisibilityStore(self.home / "store")
        self._running = False
        self._assigned = False
        self.history_consumer = Consumer(
            {
                **settings.kafka_config(),
                # Required by librdkafka; the partitions are assigned and nothing is
                # committed (the offsets live in the store).
                "group.id": f"{consumer_group(settings, 'visibility')}.history",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 500,
            }
        )
        self.request_consumer = Consumer(
            {
                **settings.kafka_config(),
                "group.id": consumer_group(settings, "visibility"),
                "auto.offset.reset": "earliest",
                "enable.auto.commit": True,
                "session.timeout.ms": 6000,
                "heartbeat.interval.ms": 1000,
                "fetch.wait.max.ms": 500,
                "client.id": f"cadenza-visibility-{uuid.uuid4().hex[:8]}",
            }
        )
        self.producer = Producer({**settings.producer_config(), "linger.ms": 1})

    # -- lifecycle ----------------------------------------------------------------------------

    def run(self) -> None:
        """Fold history and answer requests until :meth:`stop`."""
        self._running = True
        self.request_consumer.subscribe([self.requests])
        _log.info("visibility %s reading %s, answering %s", self.home, self.history, self.requests)
        try:
            while self._running:
                self.step()
        finally:
            self.producer.flush(10)
            close = getattr(self.producer, "close", None)  # confluent-kafka >= 2.x
            if callable(close):
                close()
            self.request_consumer.close()
            self.history_consumer.close()
            self.store.close()

    def stop(self) -> None:
        """Make :meth:`run` return after the current step."""
        self._running = False

    def step(self) -> int:
        """Fold what ``history`` has, then answer what was asked. Returns events folded."""
        if not self._assigned:
            self._assign_history()
        folded = self._fold(self.history_consumer.consume(self.batch_size, 0.05))
        for msg in self.request_consumer.consume(100, 0.02 if folded else 0.05):
            error = msg.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    _log.warning("requests consumer: %s", error)
                continue
            self._answer(msg)
        self.producer.poll(0)
        return folded

    # -- history ------------------------------------------------------------------------------

    def _assign_history(self) -> None:
        try:
            metadata = self.history_consumer.list_topics(self.history, timeout=5)
        except KafkaException as exc:
            _log.warning("cannot read the partitions of %s yet: %s", self.history, exc)
            return
        topic = metadata.topics.get(self.history)
        if topic is None or topic.error is not None or not topic.partitions:
            return
        offsets = self.store.offsets()
        self._next_offsets = {p: offsets.get(p, 0) for p in sorted(topic.partitions)}
        self.history_consumer.assign(
            [
                TopicPartition(self.history, p, offsets.get(p, OFFSET_BEGINNING))
                for p in sorted(topic.partitions)
            ]
        )
        self._assigned = True

    def _fold(self, messages: list[Message]) -> int:
        fold = Fold(self.store)
        offsets: dict[int, int] = {}
        folded = skipped = 0
        for msg in messages:
            error = msg.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    _log.warning("history consumer: %s", error)
                continue
            offsets[msg.partition() or 0] = (msg.offset() or 0) + 1
            try:
                event = schemas.decode_as(msg.value() or b"", schemas.HISTORY_EVENT)
            except schemas.DecodeError as exc:
                # Not an event the engine wrote: skip it, as a projection must keep moving.
                # It stays on the topic (history is the record); the metric shows it.
                _log.warning(
                    "skipped %s[%d]@%d: %s", msg.topic(), msg.partition(), msg.offset(), exc
                )
                skipped += 1
                continue
            fold.apply(event)
            folded += 1
        if offsets:
            self.store.write(fold.flush(), offsets)
            self._next_offsets.update(offsets)
            self.metrics.folded(events=folded, skipped=skipped)
        return folded

    def lag(self) -> int | None:
        """Records of ``history`` not folded yet, from the consumer's cached end offsets.

        Safe to call from another thread (the metrics server's). ``None`` until the
        partitions are assigned and Kafka has said where they end.
        """
        if not self._assigned:
            return None
        mine = dict(self._next_offsets)
        try:
            positions = self.history_consumer.position(
                [TopicPartition(self.history, p) for p in mine]
            )
        except KafkaException:
            return None
        total, known = 0, False
        for where in positions:
            _low, high = self.history_consumer.get_watermark_offsets(where, cached=True)
            if high < 0:
                continue
            # The consumer's position passes the markers that end transactions, which
            # are never delivered; before its first fetch it has none.
            position = where.offset if where.offset >= 0 else mine[where.partition]
            total += max(0, high - max(position, mine[where.partition]))
            known = True
        return total if known else None

    # -- requests -----------------------------------------------------------------------------

    def _answer(self, msg: Message) -> None:
        began = time.perf_counter()
        try:
            request = schemas.decode_as(msg.value() or b"", schemas.VISIBILITY_REQUEST)
        except schemas.DecodeError as exc:
            self._dead_letter(msg, f"not a visibility request: {exc}")
            return
        kind = _KINDS.get(request["body"][0], "unknown")
        sent = request.get("sent_time_ms") or 0
        if sent and sent < int(time.time() * 1000) - _STALE_REQUEST_MS:
            self.metrics.request(kind, "stale", None)
            return
        body = self.answer(request["body"])
        self._reply(request, body)
        outcome = body[1]["code"].lower() if body[0] == _R + "CommandRejected" else "ok"
        self.metrics.request(kind, outcome, time.perf_counter() - began)

    def _dead_letter(self, msg: Message, reason: str) -> None:
        self.metrics.dead_letters += 1
        dead_letter(self.producer, self.dead_letters, msg, reason)

    def answer(self, body: tuple[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
        """The reply body for a request body (``CommandRejected`` when it cannot be answered)."""
        name, request = body
        try:
            query = parse(request.get("query"))
            if name == _V + "CountWorkflowsRequest":
                return (_R + "CountWorkflowsResult", {"count": _listing.count(self.store, query)})
            if name == _V + "ListWorkflowsRequest":
                executions, token = _listing.list_page(
                    self.store,
                    query,
                    request.get("query") or "",
                    int(request["page_size"]),
                    bytes(request.get("next_page_token") or b""),
                )
                return (
                    _R + "ListWorkflowsResult",
                    {"executions": executions, "next_page_token": token},
                )
            return _rejected("INVALID_ARGUMENT", f"unknown visibility request {name}")
        except QueryError as exc:
            return _rejected("INVALID_ARGUMENT", f"invalid query: {exc}")
        except Exception as exc:  # a bug must not stop the projection: say so to the caller
            _log.exception("visibility error")
            return _rejected("INTERNAL", f"visibility error: {type(exc).__name__}: {exc}")

    def _reply(self, request: dict[str, Any], body: tuple[str, dict[str, Any]]) -> None:
        reply_to = request["reply_to"]
        reply = {
            "request_id": reply_to["request_id"],
            "workflow_id": "",
            "run_id": None,
            "body": body,
        }
        while True:
            try:
                self.producer.produce(
                    self.replies,
                    schemas.encode(schemas.REPLY, reply),
                    reply_to["request_id"].encode(),
                    partition=int(reply_to["partition"]),
                )
                return
            except BufferError:
                self.producer.poll(0.05)


_KINDS = {_V + "ListWorkflowsRequest": "list", _V + "CountWorkflowsRequest": "count"}


def _rejected(code: str, message: str) -> tuple[str, dict[str, Any]]:
    return (_R + "CommandRejected", {"code": code, "message": message})


def run_visibility(
    settings: Settings,
    *,
    data_dir: str | None = None,
    parent_pid: int | None = None,
    metrics_address: str | None = None,
    metrics_port_fd: int | None = None,
) -> None:
    """Run a visibility processor in the foreground until SIGTERM or SIGINT.

    Args:
        parent_pid: Also stop when this process is gone (the engine that started this
            one as its child, even if it was killed with SIGKILL).
        metrics_address: Serve ``/metrics`` on this ``HOST:PORT``.
        metrics_port_fd: Serve ``/metrics`` on a free loopback port and write its
            number (a line) to this pipe: how an engine's child tells the engine,
            which serves these metrics on its own page.

    Raises:
        MetricsAddressError: ``metrics_address`` cannot be served.
    """
    _runtime.tune_gc()
    metrics = VisibilityMetrics(settings.namespace)
    server = _serve_metrics(metrics, metrics_address, metrics_port_fd)
    projection = Visibility(settings, data_dir=data_dir, metrics=metrics)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: projection.stop())
    if parent_pid is not None:
        threading.Thread(
            target=_stop_without_parent,
            args=(parent_pid, projection),
            name="cadenza-parent-watch",
            daemon=True,
        ).start()
    try:
        projection.run()
    finally:
        if server is not None:
            server.close()


class MetricsAddressError(OSError):
    """The address given for ``/metrics`` cannot be served (taken, or not this host's)."""


def _serve_metrics(
    metrics: VisibilityMetrics, address: str | None, port_fd: int | None
) -> MetricsServer | None:
    if address is None and port_fd is None:
        return None
    # Imported only to serve, as the engine imports its HTTP side.
    from cadenza.runtime._prometheus import MetricsServer

    if address is not None:
        try:
            server = MetricsServer(address, metrics.render)
        except OSError as exc:
            raise MetricsAddressError(
                f"cannot serve /metrics on {address}: {exc.strerror or exc}"
            ) from None
        _log.info("visibility /metrics on %s:%d", *server.address)
        return server
    assert port_fd is not None
    server = MetricsServer(
        "127.0.0.1:0", lambda: metrics.render(process_prefix=CHILD_PROCESS_PREFIX)
    )
    with os.fdopen(port_fd, "w") as pipe:
        pipe.write(f"{server.address[1]}\n")
    return server


def _stop_without_parent(parent_pid: int, projection: Visibility) -> None:
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    _log.info("parent process %d is gone: stopping", parent_pid)
    projection.stop()
