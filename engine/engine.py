"""The engine's core: messages in, window records and dead letters out, state checkpointed.

:class:`Engine` knows nothing of Kafka. A source hands it :class:`Messages` (one partition's
records of one poll); it decodes them (:func:`driftline.events.decode_batch`), routes the
events to one :class:`Stream` per (model, version, source topic kind) — created on the first
event, with the baseline the :class:`BaselineResolver` gives — pushes them through the
stream's windower and, for every window that closes, publishes two records through the
:class:`Sink`: ``skew`` (against the training baseline) and ``drift`` (against the stream's
previous window; from the second window on). Health per model version is tracked over
windows with hysteresis (:mod:`driftline.health`).

Determinism is what makes crash recovery exact: a stream's windows depend only on the order
of its events, which Kafka keeps within a partition (events are keyed by model). Missing
event times fall back to the Kafka record timestamp, not the wall clock, for the same
reason.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from driftline import baseline as bl
from driftline.baseline import Baseline
from driftline.config import MAX_VERSIONS, Config, WindowConfig
from driftline.events import MESSAGE, DeadLetter, Decoded, FieldMap, decode_batch, decode_labels
from driftline.exceptions import BaselineError, RegistryError
from driftline.health import Change, Health, HealthTracker, fold
from driftline.monitor import Monitor, Prepared, policy_for, resolve_columns
from driftline.proxy import ProxyBaseline, ProxyConfig, ProxyTracker
from driftline.quality import QualityStreams
from driftline.state import Snapshot, offsets_from_json, offsets_to_json
from driftline.windows import CountWindower, TimeWindower, Window, Windower, restore_windower

log = logging.getLogger("driftline.engine")

MAX_UNKNOWN = 10_000
"""Model versions without a baseline remembered (when to look each up again)."""
INFERENCE = "inference"
FEATURES = "features"
LABELS = "labels"


class BaselineResolver(Protocol):
    """Where a model version's baseline comes from (config today; the registry later)."""

    def resolve(self, model: str, version: str) -> Baseline | None: ...


class ConfigBaselines:
    """Baselines named in the config file, each file loaded once."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._loaded: dict[Path, Baseline] = {}

    def resolve(self, model: str, version: str) -> Baseline | None:
        m = self.config.model(model)
        path = m.baseline_for(version) if m is not None else None
        if path is None:
            return None
        if path not in self._loaded:
            self._loaded[path] = bl.load(path)
        return self._loaded[path]


class WindowListener(Protocol):
    """Told of every closed window's records (after health), e.g. the action policies;
    its state is part of the engine's checkpoint."""

    def on_window(
        self,
        model: str,
        version: str,
        source: str,
        skew: dict[str, Any],
        drift: dict[str, Any] | None,
    ) -> None: ...

    def forget(self, model: str, version: str) -> None:
        """The version was retired (``models[].max_versions``): drop what is kept of it."""

    def snapshot(self) -> Any: ...

    def restore(self, state: Any) -> None: ...


@dataclass(frozen=True)
class Origin:
    """Where a message came from."""

    topic: str
    partition: int
    offset: int


class Sink(Protocol):
    """Where window records and dead letters go. ``flush`` returns once everything given so
    far is durable (for Kafka: acknowledged by the broker)."""

    def publish(self, record: dict[str, Any]) -> None: ...

    def dead_letter(self, letter: DeadLetter, origin: Origin) -> None: ...

    def flush(self) -> None: ...


@dataclass(frozen=True)
class Messages:
    """One partition's messages from one poll, as parallel sequences."""

    topic: str
    partition: int
    offsets: Sequence[int]
    values: Sequence[bytes | None]
    content_types: Sequence[str | None]
    timestamps: Sequence[float]
    """Record timestamps in seconds: the event time of events that carry none."""


@dataclass
class Stream:
    model: str
    version: str
    source: str
    monitor: Monitor
    windower: Windower
    previous: dict[str, Prepared | None] | None = None
    partitions: set[tuple[str, int]] = field(default_factory=set)
    """The partitions its events came from (one, when events are keyed by model)."""
    last: int = 0
    """When its last events were pushed, in the engine's count of pushed batches: which
    version of a model was active longest ago (``models[].max_versions``)."""


def sliding(w: WindowConfig) -> bool:
    """Whether consecutive windows overlap (a step shorter than the window)."""
    length = w.duration if w.duration is not None else w.size
    return w.step is not None and length is not None and w.step < length


def make_windower(w: WindowConfig, time_column: str = "ts") -> Windower:
    if w.duration is not None:
        return TimeWindower(w.duration, time_column, w.step, w.lateness)
    assert w.size is not None
    return CountWindower(w.size, None if w.step is None else int(w.step), time_column)


@dataclass
class Histogram:
    """Observations counted in cumulative buckets (Prometheus's histogram shape), written by
    the engine thread and read at scrape time."""

    bounds: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
    counts: list[int] = field(init=False)
    """Per bucket (``le`` = ``bounds[i]``), not cumulative; the last one is ``+Inf``."""
    sum: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float, n: int = 1) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += n
        self.sum += value * n
        self.count += n


@dataclass
class EngineCounters:
    events: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """Events by (model, version, source)."""
    invalid: Counter[str] = field(default_factory=Counter)
    """Dead-lettered messages (or Arrow rows) by reason code."""
    windows: int = 0
    labels: int = 0
    """Label events read (valid ones)."""
    close_seconds: Histogram = field(default_factory=Histogram)
    """Seconds to close a window (statistics, health and publishing), per window."""
    windows_by: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """Records published by (model, version, kind)."""
    retired: int = 0
    """Model versions retired to make room for a new one (``models[].max_versions``)."""

    @property
    def records(self) -> int:
        """Records published."""
        return sum(self.windows_by.values())


class Engine:
    def __init__(
        self,
        config: Config,
        sink: Sink,
        resolver: BaselineResolver | None = None,
        *,
        fields: FieldMap | None = None,
        threads: int = 0,
        on_change: Callable[[str, str, Change], None] | None = None,
        listener: WindowListener | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.sink = sink
        self.resolver = resolver or ConfigBaselines(config)
        self.fields = fields or config.fields
        self.streams: dict[tuple[str, str, str], Stream] = {}
        self.health: dict[tuple[str, str], HealthTracker] = {}
        self.proxies: dict[tuple[str, str], ProxyTracker] = {}
        """The proxy series of each model version (its inference stream's windows)."""
        self.positions: dict[tuple[str, int], int] = {}
        """Next offset to read per (topic, partition): everything before it is in the state."""
        self.counters = EngineCounters()
        self.on_change = on_change
        self.listener = listener
        topics = config.kafka.topics
        self._sources = {topics.inference: INFERENCE}
        if topics.features:
            self._sources[topics.features] = FEATURES
        self.quality: QualityStreams | None = None
        """The label join and performance windows (``Config.read_labels``)."""
        if config.read_labels:
            if topics.labels:
                self._sources[topics.labels] = LABELS
            self.quality = QualityStreams(config.labels)
        self._workers = threads or 2
        self._pool = (
            ThreadPoolExecutor(self._workers, "driftline-column") if self._workers > 1 else None
        )
        self._clock = clock
        self._unknown: OrderedDict[tuple[str, str], float] = OrderedDict()
        """Model versions without a baseline, and when (``clock``) to look theirs up again;
        at most MAX_UNKNOWN (the oldest forgotten first)."""
        self._pushes = 0
        """Batches pushed so far (what ``Stream.last`` counts)."""
        self._closed: dict[tuple[str, str, str], list[Window]] = {}
        """The windows the batch being pushed has closed so far, per stream (closed together
        at its end); a stream retired before then closes its own first."""

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()

    @property
    def topics(self) -> list[str]:
        return list(self._sources)

    # -- processing ----------------------------------------------------------------------

    def process(self, msgs: Messages) -> None:
        """Decode one partition's messages and push their events through the windows."""
        if not msgs.offsets:
            return
        source = self._sources.get(msgs.topic, INFERENCE)
        tp = (msgs.topic, msgs.partition)
        if source == LABELS:
            decoded_labels = decode_labels(msgs.values, msgs.content_types, self.fields)
            for letter in decoded_labels.dead:
                self._dead(letter, msgs)
            self._labels(decoded_labels.ids, decoded_labels.values)
        else:
            decoded = decode_batch(msgs.values, msgs.content_types, self.fields, msgs.timestamps)
            for letter in decoded.dead:
                self._dead(letter, msgs)
            self._push(decoded, source, tp, msgs)
        self.positions[tp] = msgs.offsets[-1] + 1

    def ingest(
        self, source: str, values: Sequence[bytes], content_types: Sequence[str | None], now: float
    ) -> tuple[int, list[DeadLetter]]:
        """Events from outside Kafka (``POST /v1/events``), all or nothing: when any message
        is invalid, nothing is processed and the dead letters are returned (and counted) for
        the caller to report; no offset is involved, so these events are in the state only
        from the next checkpoint on. ``source`` is ``inference``, ``features`` or ``labels``.
        Returns the events processed and the dead letters."""
        msgs = Messages(
            f"http:{source}", -1, range(len(values)), values, content_types, [now] * len(values)
        )
        if source == LABELS:
            if self.quality is None:
                raise ValueError(
                    "labels are not read: set kafka.topics.labels (or [labels] without Kafka)"
                )
            labels = decode_labels(values, content_types, self.fields)
            if labels.dead:
                self.counters.invalid.update(d.code for d in labels.dead)
                return 0, labels.dead
            self._labels(labels.ids, labels.values)
            return len(labels.ids), []
        decoded = decode_batch(values, content_types, self.fields, msgs.timestamps)
        dead = list(decoded.dead)
        for (model, version), tables in decoded.tables.items():
            if self._stream(model, version, source) is None:
                for t in tables:
                    dead.extend(self._no_baseline(model, version, t, values))
        if dead:
            self.counters.invalid.update(d.code for d in dead)
            return 0, sorted(dead, key=lambda d: d.message)
        self._push(decoded, source, None, msgs)
        return sum(t.num_rows for ts in decoded.tables.values() for t in ts), []

    def _push(
        self, decoded: Decoded, source: str, tp: tuple[str, int] | None, msgs: Messages
    ) -> None:
        closed = self._closed = {}
        for (model, version), tables in decoded.tables.items():
            stream = self._stream(model, version, source)
            if stream is not None and tp is not None:
                stream.partitions.add(tp)
            for table in tables:
                if stream is None:
                    for letter in self._no_baseline(model, version, table, msgs.values):
                        self._dead(letter, msgs)
                    continue
                self.counters.events[(model, version, source)] += table.num_rows
                self._pushes += 1
                stream.last = self._pushes
                if self.quality is not None and source == INFERENCE:
                    self.quality.predictions(model, version, table)
                windows = stream.windower.push(self._columns(stream, table))
                if windows:
                    closed.setdefault((model, version, source), []).extend(windows)
        self._closed = {}
        for key, windows in closed.items():  # computed together: see Monitor.compare_windows
            self._close(self.streams[key], windows)

    def _dead(self, letter: DeadLetter, msgs: Messages) -> None:
        origin = Origin(msgs.topic, msgs.partition, msgs.offsets[letter.message])
        self.counters.invalid[letter.code] += 1
        self.sink.dead_letter(letter, origin)

    def _labels(self, ids: list[str], values: Sequence[float]) -> None:
        """Label events: joined to their predictions; closed performance windows published."""
        assert self.quality is not None
        self.counters.labels += len(ids)
        array = np.asarray(values, dtype=np.float64)
        for record in self.quality.labels(ids, array, self._setup):
            key = (record["model"], record["version"])
            tracker = self.health.get(key)
            record["health"] = str(tracker.state) if tracker is not None else "ok"
            self.sink.publish(record)
            self.counters.windows_by[(record["model"], record["version"], record["kind"])] += 1

    def _setup(self, model: str, version: str) -> tuple[Baseline, ProxyConfig] | None:
        stream = self.streams.get((model, version, INFERENCE))
        if stream is None:
            return None
        return stream.monitor.baseline, self._proxy_config(model)

    def _no_baseline(
        self, model: str, version: str, table: pa.Table, values: Sequence[bytes | None]
    ) -> list[DeadLetter]:
        """The dead letters of ``table``'s messages: their version has no baseline."""
        reason = f"no baseline configured for model '{model}' version '{version}'"
        return [
            DeadLetter(values[int(i)] or b"", reason, "no_baseline", int(i))
            for i in np.unique(table.column(MESSAGE).to_numpy())
        ]

    def _stream(self, model: str, version: str, source: str) -> Stream | None:
        key = (model, version, source)
        stream = self.streams.get(key)
        if stream is not None:
            return stream
        baseline = self._baseline(model, version)
        if baseline is None:
            return None
        self._make_room(model, version)
        stream = Stream(
            model,
            version,
            source,
            self._monitor(baseline, model, version),
            make_windower(self.config.window),
        )
        self.streams[key] = stream
        log.info("monitoring model %r version %r (%s events)", model, version, source)
        return stream

    def _baseline(self, model: str, version: str) -> Baseline | None:
        """The version's baseline, or None. A version without one (not configured, not
        linked in the registry yet, the registry down, a bad file) is looked up again once
        ``registry.retry`` has passed, not on every event."""
        version_key = (model, version)
        retry_at = self._unknown.get(version_key)
        now = self._clock()
        if retry_at is not None and now < retry_at:
            return None
        error = None
        try:
            baseline = self.resolver.resolve(model, version)
        except (BaselineError, RegistryError) as exc:  # a bad file, a registry that is down
            baseline, error = None, exc
        if baseline is not None:
            if retry_at is not None:
                log.info("model %r version %r: baseline found, monitored from now on", *version_key)
                del self._unknown[version_key]
            return baseline
        if retry_at is None:  # logged once, not at every retry
            if error is not None:
                log.error("model %r version %r: no baseline: %s", model, version, error)
            log.warning(
                "no baseline for model %r version %r: its events are dead-lettered and it is "
                "looked up again every %g s (add it to [[models]] in the config, or link it "
                "in the registry)",
                model,
                version,
                self.config.registry_retry,
            )
        self._unknown[version_key] = now + self.config.registry_retry
        self._unknown.move_to_end(version_key)
        while len(self._unknown) > MAX_UNKNOWN:  # event after event of made-up versions
            self._unknown.popitem(last=False)
        return None

    def _make_room(self, model: str, version: str) -> None:
        """Before a stream of a new version of ``model`` is made: when the model already
        has ``models[].max_versions`` versions, retire the one active longest ago."""
        active: dict[str, int] = {}
        for (m, v, _), stream in self.streams.items():
            if m == model:
                active[v] = max(active.get(v, 0), stream.last)
        m_cfg = self.config.model(model)
        cap = m_cfg.max_versions if m_cfg is not None else MAX_VERSIONS
        if version in active or len(active) < cap:
            return
        oldest = min(active, key=lambda v: active[v])
        self._retire(model, oldest, version)

    def _retire(self, model: str, version: str, newcomer: str) -> None:
        """Stop monitoring ``version``: its open windows are published as partial windows
        (no event goes unreported), then its streams, health, proxy series and realised
        quality are forgotten. Should it come back, it starts afresh."""
        log.warning(
            "model %r: version %r retired to make room for version %r "
            "(models[].max_versions versions are monitored at once)",
            model,
            version,
            newcomer,
        )
        for key in [k for k in self.streams if k[:2] == (model, version)]:
            stream = self.streams[key]
            flushed = self._closed.pop(key, []) + stream.windower.flush()
            if flushed:
                self._close(stream, flushed)
            stream.monitor.close()
            del self.streams[key]
        self.health.pop((model, version), None)
        self.proxies.pop((model, version), None)
        if self.quality is not None:
            self.quality.forget(model, version)
        if self.listener is not None:
            self.listener.forget(model, version)
        for counter in (self.counters.events, self.counters.windows_by):
            for k in [k for k in counter if k[:2] == (model, version)]:
                del counter[k]
        self.counters.retired += 1

    def _proxy_config(self, model: str) -> ProxyConfig:
        m = self.config.model(model)
        return m.proxy if m is not None else ProxyConfig()

    def _monitor(self, baseline: Baseline, model: str, version: str) -> Monitor:
        return Monitor(
            baseline,
            policy_for(baseline, self.config.policy),
            model,
            version,
            threads=self._workers,
            pool=self._pool,
            proxy=self._proxy_config(model),
            two_window=not sliding(self.config.window),
        )

    def _tracker(self, stream: Stream) -> ProxyTracker:
        key = (stream.model, stream.version)
        tracker = self.proxies.get(key)
        if tracker is None:
            cfg = self._proxy_config(stream.model)
            baseline = ProxyBaseline.of(stream.monitor.baseline, cfg)
            tracker = self.proxies[key] = ProxyTracker(cfg, baseline)
        return tracker

    def _columns(self, stream: Stream, table: pa.Table) -> pa.Table:
        """The event table reduced to the time and the baseline's columns, under their
        baseline names (the event's ``prediction`` is the baseline's prediction column)."""
        mapping = resolve_columns(stream.monitor.baseline, table.column_names)
        mapping.pop("ts", None)  # the event time, whatever the baseline calls a column
        have = set(table.column_names)
        for name in stream.monitor.proxy.fields if stream.monitor.proxy else ():
            if name in mapping.values():  # a baseline column already
                continue
            found = next((c for c in (name, f"features.{name}") if c in have), None)
            if found is not None and found not in mapping:
                mapping[found] = name
        return table.select(["ts", *mapping]).rename_columns(["ts", *mapping.values()])

    def _close(self, stream: Stream, windows: list[Window]) -> None:
        start = time.perf_counter()
        records, stream.previous = stream.monitor.compare_windows(windows, stream.previous)
        for window, (skew, drift) in zip(windows, records, strict=True):
            self._publish(stream, window, skew, drift)
        self.counters.close_seconds.observe(
            (time.perf_counter() - start) / len(windows), len(windows)
        )

    def _publish(
        self,
        stream: Stream,
        window: Window,
        skew: dict[str, Any],
        drift: dict[str, Any] | None,
    ) -> None:
        # verdicts of the version's other series: its proxy metrics (this window) and its
        # realised quality (the latest performance window), folded into the skew record
        verdicts: list[tuple[Health, list[str]]] = []
        proxy = skew.get("proxy")
        if proxy is not None and stream.source == INFERENCE:
            series = self._tracker(stream)
            changes, proxy_reasons, severity = series.update(proxy)
            proxy["baseline"] = dict(series.baseline.values)
            proxy["changes"] = changes
            verdicts.append((Health.parse(severity), proxy_reasons))
        if self.quality is not None and stream.source == INFERENCE:
            verdicts.append(self.quality.verdict(stream.model, stream.version))
        for level, extra in verdicts:
            fold(skew, level, extra)
        observed = Health.parse(skew["health"])
        if drift is not None and drift["dataset_drift"]["drift"]:
            observed = max(observed, Health.WARNING)
        reasons = tuple(skew["reasons"])
        if drift is not None:  # what the skew reasons do not already say
            seen = set(reasons)
            reasons += tuple(f"vs previous window: {r}" for r in drift["reasons"] if r not in seen)
        key = (stream.model, stream.version)
        tracker = self.health.get(key)
        if tracker is None:
            tracker = self.health[key] = HealthTracker(self.config.hysteresis)
        change = tracker.update(observed, window.index, reasons)
        self.counters.windows += 1
        for record in (skew, drift):
            if record is None:
                continue
            record["source"] = stream.source
            record["observed_health"] = record["health"]
            record["health"] = str(tracker.state)
            if change is not None:
                record["health_change"] = {
                    "from": str(change.previous),
                    "to": str(change.current),
                }
            self.sink.publish(record)
            self.counters.windows_by[(stream.model, stream.version, record["kind"])] += 1
        if change is not None:
            log.warning(
                "model %r version %r: health %s -> %s (%s)",
                stream.model,
                stream.version,
                change.previous,
                change.current,
                "; ".join(change.reasons) or "recovered",
            )
            if self.on_change is not None:
                self.on_change(stream.model, stream.version, change)
        if self.listener is not None:
            self.listener.on_window(stream.model, stream.version, stream.source, skew, drift)

    # -- partitions ----------------------------------------------------------------------

    def release(self, partitions: set[tuple[str, int]]) -> None:
        """The source no longer owns ``partitions`` (a consumer-group rebalance moved them).

        Their positions are forgotten; a stream that was fed only from them closes its open
        window as a partial window now (so that no event in it goes unreported), and is
        dropped: the new owner starts its windows from the committed offset.
        """
        for tp in partitions:
            self.positions.pop(tp, None)
        for key, stream in list(self.streams.items()):
            if not stream.partitions or not stream.partitions <= partitions:
                stream.partitions -= partitions
                continue
            flushed = stream.windower.flush()
            if flushed:
                self._close(stream, flushed)
            stream.monitor.close()
            del self.streams[key]

    # -- checkpoints ---------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The state as a checkpoint (call :meth:`Sink.flush` first: see :mod:`.state`)."""
        streams: list[dict[str, Any]] = []
        tables: dict[str, list[pa.Table]] = {}
        arrays: dict[str, NDArray[Any]] = {}
        for i, s in enumerate(self.streams.values()):
            wmeta, wtables = s.windower.snapshot()
            tables[f"s{i}"] = wtables
            previous: list[list[Any]] | None = None
            if s.previous is not None:
                previous = []
                for j, (name, p) in enumerate(s.previous.items()):
                    if p is None:
                        previous.append([name, None])
                        continue
                    arrays[f"s{i}.{j}"] = p.values
                    previous.append(
                        [name, [p.numeric, p.count, p.missing, p.nonfinite, p.type_errors]]
                    )
            streams.append(
                {
                    "model": s.model,
                    "version": s.version,
                    "source": s.source,
                    "partitions": sorted([t, p] for t, p in s.partitions),
                    "windower": wmeta,
                    "previous": previous,
                    "last": s.last,
                }
            )
        health = [{"model": m, "version": v, **t.snapshot()} for (m, v), t in self.health.items()]
        proxies = []
        for i, ((m, v), tracker) in enumerate(self.proxies.items()):
            arrays[f"proxy{i}"] = np.frombuffer(tracker.dumps(), dtype=np.uint8)
            proxies.append([m, v])
        meta = {
            "positions": offsets_to_json(self.positions),
            "streams": streams,
            "health": health,
            "proxies": proxies,
        }
        if self.listener is not None:
            meta["listener"] = self.listener.snapshot()
        if self.quality is not None:
            meta["quality"], quality_arrays = self.quality.snapshot()
            arrays.update({f"q.{k}": v for k, v in quality_arrays.items()})
        return Snapshot(meta, tables, arrays)

    def restore(self, snap: Snapshot) -> None:
        """Resume from a checkpoint (before processing anything). The streams' baselines are
        resolved first: a registry that is down raises :class:`RegistryError` before any
        state is taken, so the call can be made again."""
        meta = snap.meta
        baselines = [self.resolver.resolve(s["model"], s["version"]) for s in meta["streams"]]
        self.positions = offsets_from_json(meta["positions"])
        for h in meta["health"]:
            state = {k: v for k, v in h.items() if k not in ("model", "version")}
            state["hysteresis"] = self.config.hysteresis
            self.health[(h["model"], h["version"])] = HealthTracker.restore(state)
        if self.listener is not None and "listener" in meta:
            self.listener.restore(meta["listener"])
        proxy_state = {
            (m, v): snap.arrays[f"proxy{i}"].tobytes()
            for i, (m, v) in enumerate(meta.get("proxies", []))
        }
        for i, (s, baseline) in enumerate(zip(meta["streams"], baselines, strict=True)):
            if baseline is None:
                log.warning(
                    "checkpoint: model %r version %r has no baseline any more; its open "
                    "window is dropped",
                    s["model"],
                    s["version"],
                )
                continue
            windower = restore_windower(s["windower"], snap.tables.get(f"s{i}", []))
            previous: dict[str, Prepared | None] | None = None
            if s["previous"] is not None:
                previous = {}
                for j, (name, p) in enumerate(s["previous"]):
                    if p is None:
                        previous[name] = None
                        continue
                    numeric, count, missing, nonfinite, errors = p
                    previous[name] = Prepared(
                        bool(numeric), snap.arrays[f"s{i}.{j}"], count, missing, nonfinite, errors
                    )
            stream = Stream(
                s["model"],
                s["version"],
                s["source"],
                self._monitor(baseline, s["model"], s["version"]),
                windower,
                previous,
                {(str(t), int(p)) for t, p in s["partitions"]},
                int(s.get("last", 0)),
            )
            self._pushes = max(self._pushes, stream.last)
            self.streams[(stream.model, stream.version, stream.source)] = stream
            data = proxy_state.get((stream.model, stream.version))
            if data is not None and stream.source == INFERENCE:
                self._tracker(stream).loads(data)
        if self.quality is not None and "quality" in meta:  # after the streams: _setup
            arrays = {k[2:]: v for k, v in snap.arrays.items() if k.startswith("q.")}
            self.quality.restore(meta["quality"], arrays, self._setup)
        log.info(
            "resumed from the checkpoint: %d streams, %d partitions",
            len(self.streams),
            len(self.positions),
        )
