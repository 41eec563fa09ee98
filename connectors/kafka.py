"""Kafka edges of the engine (kafka-python): the event source and the record/dead-letter sink.

:class:`KafkaSource` reads the input topics either as a member of a consumer group (several
engines split the partitions; events are keyed by model, so a model's events stay in one
partition and in order) or, in ``assign`` mode, every partition alone. Offsets are never
committed automatically: the engine commits what its checkpoint covers.

:class:`KafkaSink` publishes window records to the ``windows`` topic keyed by model, and
dead letters — the original message bytes — to the dead-letter topic with the reason in
headers (``driftline.reason``, ``driftline.code``, ``driftline.origin`` =
``topic/partition/offset``).

Messages written by any producer are read: librdkafka and the Java client write the same
record batches, and gzip, snappy, lz4 and zstd are decompressed by kafka-python (the codec
libraries come with the ``kafka-python[lz4,snappy,zstd]`` dependency).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
from kafka import (
    AsyncConsumerRebalanceListener,
    KafkaConsumer,
    KafkaProducer,
    OffsetAndMetadata,
    TopicPartition,
)
from kafka import errors as kafka_errors
from kafka.errors import KafkaError

from driftline.config import KafkaConfig
from driftline.engine import Messages, Origin
from driftline.events import DeadLetter
from driftline.exceptions import DriftlineError

log = logging.getLogger("driftline.kafka")

Partition = tuple[str, int]
REASON_HEADER = "driftline.reason"
CODE_HEADER = "driftline.code"
ORIGIN_HEADER = "driftline.origin"
MAX_REASON_BYTES = 1024
MAX_REQUEST_BYTES = 16 << 20
"""Largest record the sink sends: window records are a few kB; a dead letter as large as
the biggest accepted message (larger ones are sent cut, with ``driftline.truncated``)."""
RECONNECT_BACKOFF_MAX_MS = 2000
"""Longest wait between two tries to reach a broker that is down (kafka-python's default,
30 s, would leave the engine idle that long after the broker is back)."""
LINGER_MS = 100
"""How long the sink's producer gathers records into one request (see KafkaSink)."""
BATCH_BYTES = 1 << 20
"""The sink's batch size: a few window records fit in one."""
COMMIT_TIMEOUT_MS = 5000
"""How long an offset commit may wait for the broker before the next checkpoint retries it
(kafka-python's default is its request timeout, 305 s, during which nothing is polled)."""
SEND_BLOCK_MS = 10_000
"""Longest a send waits for topic metadata (a new producer while the broker is down)."""
RESEND_BACKOFF = (0.5, 10.0)
"""First and longest wait (seconds) before the sink resends through a new producer."""


class KafkaUnavailable(DriftlineError):
    """The broker cannot be reached, or a topic the config names does not exist."""


@dataclass(frozen=True)
class Reset:
    """A partition's position found out of range (the broker lost or deleted the records
    there, e.g. a broker restarted without its data) and reset by ``kafka.auto_offset_reset``:
    the records between the old position and the new one are skipped, or records read
    before are read again."""

    topic: str
    partition: int
    offset: int
    policy: str
    at: float
    truncated_to: int | None = None
    """Set when the broker truncated the log below ``offset`` (an unclean leader election
    rolled back records the engine had read): the position moved back to this offset,
    where the log diverged, rather than by the policy."""

    def describe(self) -> str:
        when = dt.datetime.fromtimestamp(self.at, dt.UTC).isoformat(timespec="seconds")
        if self.truncated_to is not None:
            return (
                f"log truncated below offset {self.offset} at {when} (records already read "
                f"were rolled back by the broker); read again from offset {self.truncated_to}: "
                "events may have been counted that the log no longer holds"
            )
        return (
            f"offset {self.offset} out of range at {when} (the broker lost or deleted those "
            f"records); reset to the {self.policy} offset: events may have been skipped"
        )


def _client(cfg: KafkaConfig) -> dict[str, Any]:
    """The options every kafka-python client here takes: the brokers, and TLS and SASL
    (``[kafka] security_protocol`` and friends, secrets from the environment)."""
    return {
        "bootstrap_servers": cfg.bootstrap_servers.split(","),
        "client_id": "driftline",
        **cfg.security.client_options(os.environ),
    }


def unreachable(cfg: KafkaConfig, exc: KafkaError) -> KafkaUnavailable:
    """The error of a client that could not reach the brokers. kafka-python reports a
    refused SASL password or TLS certificate only as a failed bootstrap, so with SASL or
    TLS the message says what else to check."""
    sec = cfg.security
    hints = []
    if sec.protocol.startswith("SASL"):
        hints.append(
            f"with {sec.protocol}, check kafka.sasl_mechanism ({sec.sasl_mechanism}), "
            f"kafka.sasl_username and ${sec.sasl_password_env}"
        )
    if sec.protocol.endswith("SSL"):
        hints.append("with TLS, check that kafka.ssl_cafile signed the broker's certificate")
    hint = "".join(f"; {h}" for h in hints)
    return KafkaUnavailable(
        f"kafka.bootstrap_servers {cfg.bootstrap_servers}: cannot connect: {exc}{hint}"
    )


def check_topics(cfg: KafkaConfig, topics: Iterable[str], *, create: bool = False) -> None:
    """Fail (naming them) when topics are missing; with ``create``, create them instead."""
    from kafka.admin import KafkaAdminClient, NewTopic

    try:
        admin = KafkaAdminClient(**_client(cfg), request_timeout_ms=10_000)
    except KafkaError as exc:
        raise unreachable(cfg, exc) from None
    try:
        existing = set(admin.list_topics())
        missing = [t for t in dict.fromkeys(topics) if t not in existing]
        if missing and create:
            admin.create_topics([NewTopic(t, 1, 1) for t in missing])
            log.info("created topics %s", ", ".join(missing))
        elif missing:
            raise KafkaUnavailable(
                f"topics missing on {cfg.bootstrap_servers}: {', '.join(missing)} "
                "(create them, or run serve --create-topics)"
            )
    finally:
        admin.close()


_CONTENT_TYPES: dict[bytes, str] = {}


def _content_type(headers: list[tuple[str, bytes]] | None) -> str | None:
    if headers:
        for key, value in headers:
            if key == "content-type" and value is not None:
                ctype = _CONTENT_TYPES.get(value)
                if ctype is None:
                    ctype = value.decode("utf-8", "replace")
                    if len(_CONTENT_TYPES) < 64:
                        _CONTENT_TYPES[value] = ctype
                return ctype
    return None


Revoked = Callable[[set[Partition]], "Future[dict[Partition, int]]"]
"""Partitions taken away: returns (later) the offsets to commit for them."""
Assigned = Callable[[set[Partition], dict[Partition, int | None]], "Future[dict[Partition, int]]"]
"""Partitions given, with their committed offsets: returns (later) where to seek."""


async def _wait(net: Any, future: Future[Any]) -> Any:
    """Wait for a thread's future without blocking kafka-python's IO loop."""
    while not future.done():
        await net.sleep(0.005)
    return future.result()


class KafkaSource:
    """Polls the input topics and hands back :class:`~driftline.engine.Messages`.

    Rebalances (group mode) call ``on_revoked`` and ``on_assigned``, which hand work to the
    engine's thread and return futures. kafka-python 3 runs rebalance listeners on its IO
    loop, where a blocking client call deadlocks, so the listener here is asynchronous: it
    awaits those futures and commits or fetches offsets with the coordinator's awaitable
    methods (``_commit_offsets_sync_async``, ``fetch_committed_offsets_async``; kafka-python
    is pinned to 3.0.x for them).
    """

    def __init__(
        self,
        cfg: KafkaConfig,
        topics: list[str],
        *,
        on_revoked: Revoked | None = None,
        on_assigned: Assigned | None = None,
    ) -> None:
        self.cfg = cfg
        self.topics = topics
        try:
            self.consumer = KafkaConsumer(
                **_client(cfg),
                group_id=cfg.group_id,
                enable_auto_commit=False,
                # out-of-range positions raise here, to be reset by the policy and reported
                auto_offset_reset="none",
                reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
                session_timeout_ms=cfg.session_timeout_ms,
                heartbeat_interval_ms=max(cfg.session_timeout_ms // 3, 100),
                max_poll_records=cfg.max_poll_records,
                fetch_max_bytes=64 << 20,
                max_partition_fetch_bytes=MAX_REQUEST_BYTES,
                allow_auto_create_topics=False,
            )
        except KafkaError as exc:
            raise unreachable(cfg, exc) from None
        self._on_revoked = on_revoked
        self._on_assigned = on_assigned
        self._resets: list[Reset] = []

    def start(self) -> None:
        if self.cfg.mode == "group":
            self.consumer.subscribe(self.topics, listener=self._listener())
            return
        parts: set[Partition] = set()
        for topic in self.topics:
            ids = self.consumer.partitions_for_topic(topic) or set()
            parts |= {(topic, p) for p in ids}
        self.consumer.assign([TopicPartition(t, p) for t, p in sorted(parts)])
        if self._on_assigned is not None:
            committed = {tp: self.committed(tp) for tp in parts}
            self.seek(self._on_assigned(parts, committed).result())

    def _listener(self) -> AsyncConsumerRebalanceListener:
        source = self
        coordinator = self.consumer._coordinator
        net = coordinator._net

        class Listener(AsyncConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: Any) -> None:
                parts = {(tp.topic, tp.partition) for tp in revoked}
                if source._on_revoked is None or not parts:
                    return
                positions = await _wait(net, source._on_revoked(parts))
                offsets = {
                    TopicPartition(t, p): OffsetAndMetadata(o, "", -1)
                    for (t, p), o in positions.items()
                    if (t, p) in parts
                }
                if offsets:
                    await coordinator._commit_offsets_sync_async(offsets)

            async def on_partitions_assigned(self, assigned: Any) -> None:
                if source._on_assigned is None:
                    return
                fetched = await coordinator.fetch_committed_offsets_async(set(assigned))
                committed: dict[Partition, int | None] = {
                    (tp.topic, tp.partition): None for tp in assigned
                }
                for tp, meta in fetched.items():
                    committed[(tp.topic, tp.partition)] = None if meta is None else meta.offset
                seeks = await _wait(net, source._on_assigned(set(committed), committed))
                source.seek(seeks)

        return Listener()

    def poll(self, timeout_ms: int) -> list[Messages]:
        try:
            polled = self.consumer.poll(timeout_ms=timeout_ms)
        except kafka_errors.OffsetOutOfRangeError as exc:  # {partition: offset}
            for tp, offset in exc.args[0].items():
                self._reset(tp, offset)
            return []
        except kafka_errors.NoOffsetForPartitionError as exc:  # {partition}: never committed
            for tp in exc.args[0]:
                self._reset(tp)
            return []
        except kafka_errors.LogTruncationError as exc:  # KIP-320: the log diverged
            for tp, divergent in exc.divergent_offsets.items():
                self._truncated(tp, None if divergent is None else divergent.offset)
            return []
        if not polled:
            self._beyond_the_end()
        out = []
        for tp, records in polled.items():
            if not records:
                continue
            out.append(
                Messages(
                    tp.topic,
                    tp.partition,
                    [r.offset for r in records],
                    [r.value for r in records],
                    [_content_type(r.headers) for r in records],
                    [r.timestamp / 1000.0 for r in records],
                )
            )
        return out

    def _beyond_the_end(self) -> None:
        """Positions past their partition's high watermark are out of range too: a broker
        that lost its data may answer a fetch there with no records and no error (Tansu
        does), which would leave the engine waiting until the new log reaches the old
        position and then skip everything before it."""
        for tp in self.consumer.assignment():
            high = self.consumer.highwater(tp)
            position = self._position(tp)
            if high is not None and position is not None and position > high:
                self._reset(tp, position)

    def _position(self, tp: TopicPartition) -> int | None:
        """The position without a request (kafka-python 3.0.x's subscription state)."""
        state = self.consumer._subscription.assignment.get(tp)
        return None if state is None or state.position is None else int(state.position.offset)

    def _truncated(self, tp: TopicPartition, divergent: int | None) -> None:
        """The broker truncated the log below the position (an unclean leader election):
        read again from where the log diverged, or by the policy when the broker does not
        know where that is; log and report it either way."""
        position = self._position(tp)
        if divergent is None or position is None:
            self._reset(tp, position if position is not None else -1)
            return
        log.error(
            "%s/%d: log truncated below offset %d by the broker (records read were rolled "
            "back): read again from offset %d",
            tp.topic, tp.partition, position, divergent,
        )  # fmt: skip
        policy = self.cfg.auto_offset_reset
        self._resets.append(Reset(tp.topic, tp.partition, position, policy, time.time(), divergent))
        self.consumer.seek(tp, divergent)

    def _reset(self, tp: TopicPartition, offset: int | None = None) -> None:
        """Move to the ``kafka.auto_offset_reset`` end of the partition; with ``offset`` (a
        position found out of range) log and report the gap."""
        if offset is not None:
            log.error(
                "%s/%d: offset %d out of range (the broker lost or deleted those records): "
                "reset to the %s offset",
                tp.topic, tp.partition, offset, self.cfg.auto_offset_reset,
            )  # fmt: skip
            policy = self.cfg.auto_offset_reset
            self._resets.append(Reset(tp.topic, tp.partition, offset, policy, time.time()))
        if self.cfg.auto_offset_reset == "latest":
            self.consumer.seek_to_end(tp)
        else:
            self.consumer.seek_to_beginning(tp)

    def take_resets(self) -> list[Reset]:
        """The positions reset since the last call."""
        resets, self._resets = self._resets, []
        return resets

    def highwaters(self) -> dict[Partition, int]:
        """The high watermark of each assigned partition, as of the last fetch (no request
        is sent; partitions not fetched yet are left out)."""
        out = {}
        for tp in self.consumer.assignment():
            high = self.consumer.highwater(tp)
            if high is not None:
                out[(tp.topic, tp.partition)] = int(high)
        return out

    def seek(self, positions: Mapping[Partition, int]) -> None:
        for (topic, partition), offset in positions.items():
            self.consumer.seek(TopicPartition(topic, partition), offset)

    def committed(self, partition: Partition) -> int | None:
        result = self.consumer.committed(TopicPartition(*partition))
        return None if result is None else int(result)

    def commit(self, positions: Mapping[Partition, int]) -> bool:
        """Commit; False when a group rebalance refused it (the offsets are in the checkpoint
        already: the revoke hook or the next checkpoint commits them). Raises
        :class:`KafkaUnavailable` when the broker does not answer in time."""
        if not positions:
            return True
        offsets = {
            TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in positions.items()
        }
        try:
            self.consumer.commit(offsets, timeout_ms=COMMIT_TIMEOUT_MS)
        except (kafka_errors.KafkaTimeoutError, kafka_errors.KafkaConnectionError) as exc:
            raise KafkaUnavailable(f"cannot commit offsets: {type(exc).__name__}") from None
        except (
            kafka_errors.RebalanceInProgressError,
            kafka_errors.CommitFailedError,
            kafka_errors.IllegalGenerationError,
            kafka_errors.UnknownMemberIdError,
        ) as exc:
            log.info("offset commit deferred: %s", type(exc).__name__)
            return False
        return True

    def close(self) -> None:
        self.consumer.close(autocommit=False)


Record = tuple[str, bytes, "bytes | None", list[tuple[str, bytes]]]
"""What the sink sends: topic, value, key, headers."""


class KafkaSink:
    """Window records, alerts and dead letters to Kafka; :meth:`flush` waits for the acks.

    Everything sent since the last successful flush is kept until the broker has it. When
    the broker is gone (or came back without its data, which leaves kafka-python's
    idempotent producer failed for good), :meth:`flush` backs off, makes a new producer and
    sends those records again, until they are acknowledged or ``stop`` is set: the engine
    waits for the broker instead of losing or skipping records (a record may then be
    published twice, identical)."""

    def __init__(
        self,
        cfg: KafkaConfig,
        *,
        flush_timeout: float = 30.0,
        stop: threading.Event | None = None,
        linger_ms: int = LINGER_MS,
        batch_bytes: int = BATCH_BYTES,
    ) -> None:
        self.cfg = cfg
        self.linger_ms = linger_ms
        self.batch_bytes = batch_bytes
        """The producer's batching (a benchmark compares other settings)."""
        self.windows_topic = cfg.topics.windows
        self.dead_letter_topic = cfg.topics.dead_letter
        self.alerts_topic = cfg.topics.alerts
        self.actions_topic = cfg.topics.actions
        self.flush_timeout = flush_timeout
        self.stop = stop or threading.Event()
        """Set it to make a :meth:`flush` that is waiting for the broker give up."""
        self.producer = self._producer()
        self._unacked: list[Record] = []
        self._failures: list[BaseException] = []

    def _producer(self) -> KafkaProducer:
        try:
            return KafkaProducer(
                **_client(self.cfg),
                acks="all",
                # Window records come one or two per window, ~10 kB each with 20 features.
                # kafka-python's sender spends ~1 ms of CPU per produce request, and its default
                # 16 kB batch holds one such record, a request of its own; with room for many
                # in a batch and 100 ms to gather them, far fewer requests go out
                # (benchmarks/sink_batching.py: 200 records of 11 kB, 0.30 -> 0.11 CPU-s). A
                # checkpoint flushes at once, so offsets are not committed later for it.
                linger_ms=self.linger_ms,
                batch_size=self.batch_bytes,
                max_request_size=MAX_REQUEST_BYTES,
                allow_auto_create_topics=False,
                reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
                max_block_ms=SEND_BLOCK_MS,
            )
        except KafkaError as exc:
            raise unreachable(self.cfg, exc) from None

    def _send(self, record: Record) -> None:
        topic, value, key, headers = record
        producer = self.producer
        failures = self._failures  # a new list with each new producer: old errbacks go there

        def failed(exc: BaseException) -> None:
            if producer is self.producer:
                failures.append(exc)

        try:
            self.producer.send(topic, value=value, key=key, headers=headers).add_errback(failed)
        except KafkaError as exc:  # a producer failed for good refuses at once
            failures.append(exc)

    def _publish(self, record: Record) -> None:
        self._unacked.append(record)
        self._send(record)

    def publish(self, record: dict[str, Any]) -> None:
        value = orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY)
        key = str(record["model"]).encode()
        self._publish((self.windows_topic, value, key, [("content-type", b"application/json")]))

    def publish_alert(self, fingerprint: str, alert: dict[str, Any]) -> None:
        """An alert in driftline's JSON format to the alerts topic, keyed by fingerprint (one
        model version's alerts stay in order on one partition)."""
        self._publish(
            (
                self.alerts_topic,
                orjson.dumps(alert),
                fingerprint.encode(),
                [("content-type", b"application/json")],
            )
        )

    def publish_action(self, key: str, document: bytes, timeout: float = 30.0) -> None:
        """An action (JSON) to the actions topic, keyed by model/version; returns once the
        broker has it (the executor records the step as done only then)."""
        try:
            self.producer.send(
                self.actions_topic,
                value=document,
                key=key.encode(),
                headers=[("content-type", b"application/json")],
            ).get(timeout=timeout)
        except KafkaError as exc:
            raise DriftlineError(f"topic {self.actions_topic!r}: {exc}") from None

    def dead_letter(self, letter: DeadLetter, origin: Origin) -> None:
        reason = letter.reason.encode("utf-8", "replace")[:MAX_REASON_BYTES]
        headers = [
            (REASON_HEADER, reason),
            (CODE_HEADER, letter.code.encode()),
            (ORIGIN_HEADER, f"{origin.topic}/{origin.partition}/{origin.offset}".encode()),
        ]
        value = letter.value
        if len(value) > MAX_REQUEST_BYTES - 64 * 1024:
            value = value[: MAX_REQUEST_BYTES - 64 * 1024]
            headers.append(("driftline.truncated", b"true"))
        self._publish((self.dead_letter_topic, value, None, headers))

    def _flushed(self) -> BaseException | None:
        """Wait for the acks of everything sent; the first failure, if any."""
        try:
            self.producer.flush(timeout=self.flush_timeout)
        except KafkaError as exc:
            failure: BaseException = exc
            return failure
        return self._failures[0] if self._failures else None

    def flush(self) -> None:
        """Return once everything published so far is acknowledged. While the broker cannot
        take it, retry with backoff through a new producer; raise :class:`KafkaUnavailable`
        only when ``stop`` is set meanwhile."""
        wait, cap = RESEND_BACKOFF
        while (failure := self._flushed()) is not None:
            log.error(
                "publishing to Kafka failed (%s: %s): %d records sent again in %.1f s",
                type(failure).__name__, failure, len(self._unacked), wait,
            )  # fmt: skip
            if self.stop.wait(wait):
                raise KafkaUnavailable(f"publishing to Kafka failed: {failure}")
            wait = min(wait * 2, cap)
            self.producer.close(timeout=0)
            self._failures = []
            try:
                self.producer = self._producer()
            except KafkaUnavailable as exc:
                self._failures.append(exc)
                continue
            for record in self._unacked:
                self._send(record)
                if self._failures:  # refused at once: back off again
                    break
        self._unacked.clear()

    def close(self) -> None:
        self.producer.close(timeout=self.flush_timeout)


def arrow_events(
    batch: pa.RecordBatch,
    model: str,
    version: str,
    prediction: str | None = None,
    exclude: tuple[str, ...] = (),
) -> bytes:
    """A batch of rows as one Arrow IPC event message: ``model`` and ``version`` columns,
    ``id`` and ``ts`` as they are, ``prediction`` from the named column, and the other
    columns not in ``exclude`` as flat feature columns."""
    meta = {"id", "ts", prediction, *exclude}
    n = batch.num_rows
    cols = {"model": pa.array([model] * n), "version": pa.array([version] * n)}
    cols.update({c: batch.column(c) for c in ("id", "ts") if c in batch.schema.names})
    cols.update({c: batch.column(c) for c in batch.schema.names if c not in meta})
    if prediction is not None:
        cols["prediction"] = batch.column(prediction)
    table = pa.table(cols)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def produce_file(
    cfg: KafkaConfig,
    batches: Iterable[Any],
    *,
    model: str,
    version: str,
    prediction: str | None = None,
    exclude: tuple[str, ...] = (),
    arrow: bool = False,
    rate: float | None = None,
    on_progress: Callable[[int], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Send a data file's rows to the inference topic as events (``driftline produce``):
    one JSON message per row, or with ``arrow`` one Arrow IPC message per record batch.
    Columns ``id`` and ``ts`` keep their meaning; ``prediction`` names the score column;
    every other column not in ``exclude`` is a feature. Returns the number of events.

    With ``rate`` (events per second) the n-th event is sent no earlier than ``n / rate``
    seconds after the first (an Arrow message when its last row is due): a steady stream
    whose average holds even when one send is late. ``clock`` and ``sleep`` are injected for
    tests."""
    from driftline.events import ARROW, JSON

    if rate is not None and not (math.isfinite(rate) and rate > 0):
        raise ValueError(f"rate must be a positive number of events per second, got {rate!r}")

    def pace(sent: int) -> None:
        if rate is not None:
            delay = start + sent / rate - clock()
            if delay > 0:
                sleep(delay)

    producer = KafkaProducer(
        **_client(cfg),
        linger_ms=20,
        batch_size=256 * 1024,
        max_request_size=MAX_REQUEST_BYTES,
        allow_auto_create_topics=False,
    )
    topic, key = cfg.topics.inference, model.encode()
    meta = {"id", "ts", prediction, *exclude}
    sent = 0
    start = clock()
    try:
        for batch in batches:
            names = [n for n in batch.schema.names if n not in meta]
            if arrow:
                value = arrow_events(batch, model, version, prediction, exclude)
                pace(sent + batch.num_rows - 1)
                producer.send(topic, value, key=key, headers=[("content-type", ARROW.encode())])
                sent += batch.num_rows
            else:
                header = [("content-type", JSON.encode())]
                for row in batch.to_pylist():
                    event = {"model": model, "version": version, "id": row.get("id")}
                    if "ts" in row:
                        event["ts"] = row["ts"]
                    event["features"] = {c: row[c] for c in names}
                    if prediction is not None:
                        event["prediction"] = row[prediction]
                    pace(sent)
                    producer.send(
                        topic,
                        orjson.dumps(event, option=orjson.OPT_NAIVE_UTC),
                        key=key,
                        headers=header,
                    )
                    sent += 1
            if on_progress is not None:
                on_progress(sent)
        producer.flush()
    except KafkaError as exc:
        raise KafkaUnavailable(f"cannot produce to {topic}: {exc}") from exc
    finally:
        producer.close()
    return sent
