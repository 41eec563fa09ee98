"""``driftline serve``: the engine as a long-running Kafka sidecar.

Two threads share the work. The main thread polls Kafka (kafka-python is pure Python and
holds the interpreter while it parses record batches); a worker thread decodes, windows,
computes and publishes (pyarrow's JSON reader and the Numba kernels release the
interpreter, so the two overlap on two cores). A bounded queue between them applies
back-pressure.

Every ``state.checkpoint_interval`` the worker flushes the sink, writes the checkpoint and
hands its offsets back; only then does the main thread commit them (kafka-python's consumer
is not thread-safe, so every consumer call stays on the main thread). On SIGTERM or SIGINT
the loop stops polling, the worker finishes what it was given, a last checkpoint is written
and committed, and the process exits 0. After ``kill -9`` a restart resumes from the last
checkpoint.
"""

from __future__ import annotations

import gc
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from driftline.action_store import ActionStore
from driftline.actions import Policies
from driftline.alerts import Alert, AlertCounters, Alerter, render_json
from driftline.config import Config
from driftline.connectors.webhooks import Dispatcher, read_env
from driftline.engine import Engine, Messages
from driftline.exceptions import ActionError, DriftlineError, RegistryError
from driftline.executor import ActionCounters, Executor
from driftline.health import Change
from driftline.outbox import Outbox
from driftline.registry import HEALTH_TAG, AliasCache, HealthTags, Registry
from driftline.service import Faults, Recent, Service, items
from driftline.state import Snapshot, StateDir, StateError

if TYPE_CHECKING:
    from driftline.connectors.http import HttpServer

log = logging.getLogger("driftline.serve")

T = TypeVar("T")
Partition = tuple[str, int]


class _Worker:
    """One thread running submitted calls in order; a failure stops it and is re-raised
    to the main thread by :meth:`check`."""

    def __init__(self, depth: int = 2) -> None:
        self._queue: queue.Queue[tuple[Callable[[], Any], Future[Any]] | None] = queue.Queue(depth)
        self.error: BaseException | None = None
        self._inflight = 0  # submitted and not finished
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="driftline-engine", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, future = item
            if self.error is not None:
                future.cancel()
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:  # surfaced on the main thread
                self.error = exc
                future.set_exception(exc)
            finally:
                with self._lock:
                    self._inflight -= 1

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        while True:
            self.check()
            try:
                with self._lock:
                    self._inflight += 1
                self._queue.put((fn, future), timeout=0.5)
                return future
            except queue.Full:
                with self._lock:
                    self._inflight -= 1
                continue

    def busy(self) -> bool:
        """Whether submitted work is still running or queued."""
        return self._inflight > 0

    def full(self) -> bool:
        """Whether the worker is behind (a submit now would wait)."""
        return self._queue.full()

    def call(self, fn: Callable[[], T]) -> T:
        return self.submit(fn).result()

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()


def merge(batch: list[Messages]) -> list[Messages]:
    """Consecutive polls' messages, one :class:`Messages` per partition, in order."""
    by_tp: dict[Partition, list[Messages]] = {}
    for m in batch:
        by_tp.setdefault((m.topic, m.partition), []).append(m)
    out = []
    for (topic, partition), parts in by_tp.items():
        if len(parts) == 1:
            out.append(parts[0])
            continue
        out.append(
            Messages(
                topic,
                partition,
                [o for m in parts for o in m.offsets],
                [v for m in parts for v in m.values],
                [c for m in parts for c in m.content_types],
                [t for m in parts for t in m.timestamps],
            )
        )
    return out


@dataclass
class ServeOptions:
    idle_exit: float | None = None
    """Stop (draining, exit 0) after this many seconds without a message."""
    create_topics: bool = False
    threads: int = 0
    status_every: float = 10.0
    hold_messages: int = 100_000
    """Most polled messages held back (merged) while the worker is busy."""
    stop_when: Callable[[Engine], bool] | None = None
    """Stop (draining) once this returns true; checked after every poll (benchmarks)."""


class Server:
    """Wires a source, the engine, its sink and the state directory together."""

    def __init__(
        self,
        config: Config,
        engine: Engine,
        source_factory: Callable[..., Any],
        state: StateDir,
        opts: ServeOptions,
        service: Service | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.config = config
        self.engine = engine
        self.state = state
        self.opts = opts
        self.service = service
        self.lag: dict[Partition, int] = {}
        """Messages behind each partition's end (``driftline_consumer_lag``), refreshed about
        every second on the main thread."""
        self.stop = stop if stop is not None else threading.Event()
        """Set to drain and stop; given, when signals set it before the server exists."""
        self.worker = _Worker()
        self.source = source_factory(on_revoked=self._revoked, on_assigned=self._assigned)
        self.faults = service.faults if service is not None else Faults()
        self._owned: set[Partition] = set()
        self._closing = False
        self._state_error: StateError | None = None
        self.periodic: list[Callable[[], None]] = []
        """Called on the engine thread with every checkpoint (retries of side effects)."""

    def _problem(self, component: str, problem: str | None) -> None:
        """Mark the engine not ready because of ``component`` (None: no longer)."""
        if self.service is None:
            return
        if problem is None:
            self.service.problems.pop(component, None)
        else:
            self.service.problems[component] = problem

    # -- called on the worker thread -----------------------------------------------------

    def _checkpoint(self) -> dict[Partition, int] | None:
        """Flush, persist the state, and return the offsets it covers for the main thread to
        commit; None when the state could not be written (a full or read-only disk): then
        nothing is committed, the engine reports not ready, and the next interval retries."""
        self.engine.sink.flush()  # 1. outputs durable
        for fn in self.periodic:
            fn()
        try:
            self.state.write(self.engine.snapshot())  # 2. state durable
        except StateError as exc:
            self.faults.checkpoint_failures += 1
            if self._state_error is None:
                log.error("checkpoint failed, offsets not committed (retried): %s", exc)
            self._state_error = exc
            self._problem("state", f"{exc}; offsets are not committed until a checkpoint is")
            return None
        self.faults.checkpoints += 1
        if self._state_error is not None:
            log.warning("checkpoint written again after %s", self._state_error)
            self._state_error = None
            self._problem("state", None)
        return dict(self.engine.positions)  # 3. the caller commits these

    def _process(self, batch: list[Messages]) -> None:
        for msgs in batch:
            self.engine.process(msgs)

    # -- rebalance callbacks (kafka-python's IO thread: hand the work to the worker) -----

    def _revoked(self, partitions: set[Partition]) -> Future[dict[Partition, int]]:
        if self._closing:  # the final checkpoint is written and committed already
            done: Future[dict[Partition, int]] = Future()
            done.set_result({})
            return done
        return self.worker.submit(lambda: self._checkpoint() or {})

    def _assigned(
        self, partitions: set[Partition], committed: dict[Partition, int | None]
    ) -> Future[dict[Partition, int]]:
        def work() -> dict[Partition, int]:
            lost = self._owned - partitions
            known = dict(self.engine.positions)
            # another engine read past our checkpoint meanwhile: our state of it is stale
            stale = {
                tp
                for tp in partitions & set(known)
                if (c := committed.get(tp)) is not None and c > known[tp]
            }
            if lost or stale:
                self.engine.release(lost | stale)
            self._owned = set(partitions)
            if self.service is not None:
                self.service.assigned = True
            seek = {tp: o for tp, o in known.items() if tp in partitions and tp not in stale}
            log.info(
                "assigned %d partitions (%d resumed from the checkpoint)",
                len(partitions),
                len(seek),
            )
            return seek

        return self.worker.submit(work)

    # -- main loop -----------------------------------------------------------------------

    def run(self) -> None:
        snap = self.state.read()
        if snap is not None:
            if not self._restore(snap):  # stopped while the registry was down
                self.source.close()
                self.worker.stop()
                return  # the checkpoint stays as it was
            self._owned = set(self.engine.positions)
        if self.service is not None:
            self.service.restored = True
        self.source.start()
        # What is alive now (modules, compiled kernels, baselines, the restored state) lives
        # as long as the process: moved out of the cyclic collector's sight, it is not walked
        # again by every full collection while events flow (gc.freeze). To see what such
        # walks cost: `perf record -g` on `python benchmarks/kafka_throughput.py`, symbol
        # gc_collect_main.
        gc.collect()
        gc.freeze()
        interval = self.config.checkpoint_interval
        next_checkpoint = time.monotonic() + interval
        pending: Future[dict[Partition, int] | None] | None = None
        last_message = time.monotonic()
        last_status = last_lag = time.monotonic()
        events_seen = 0
        held: list[Messages] = []
        held_messages = 0
        try:
            while not self.stop.is_set():
                # While the worker is busy, poll briefly: its results (a checkpoint to
                # commit, the stop condition) are then acted on within ~20 ms
                busy = self.worker.busy() or bool(held)
                batch = self.source.poll(timeout_ms=20 if busy else 200)
                now = time.monotonic()
                if batch:
                    last_message = now
                    n = sum(len(m.offsets) for m in batch)
                    events_seen += n
                    held_messages += n
                    held.extend(batch)
                # While the worker is behind, polls are held and merged into one larger
                # batch: windows that close together are computed together
                # (Monitor.compare_windows). Past hold_messages, submit waits for room.
                if held and (not self.worker.full() or held_messages >= self.opts.hold_messages):
                    self.worker.submit(partial(self._process, merge(held)))
                    held, held_messages = [], 0
                if pending is not None and pending.done():
                    self._commit(pending.result())
                    pending = None
                if pending is None and now >= next_checkpoint:
                    pending = self.worker.submit(self._checkpoint)
                    next_checkpoint = now + interval
                self._resets()
                if now - last_lag >= 1.0:
                    self._lag()
                    last_lag = now
                if now - last_status >= self.opts.status_every:
                    self._status(events_seen, now - last_status)
                    events_seen, last_status = 0, now
                if self.opts.stop_when is not None and self.opts.stop_when(self.engine):
                    break
                idle = self.opts.idle_exit
                if idle is not None and now - last_message >= idle:
                    log.info("no message for %.0f s: stopping", idle)
                    break
                self.worker.check()
            if held:
                self.worker.submit(partial(self._process, merge(held)))
            if pending is not None:
                self._commit(pending.result())
            last = self.worker.call(self._checkpoint)
            if last is None:
                raise StateError(
                    f"stopped without a last checkpoint ({self._state_error}); the next start "
                    "resumes from the last one written"
                )
            if not self._commit(last):
                raise StateError("stopped with its last offsets not committed (see above)")
            log.info("drained: checkpoint written and offsets committed")
        finally:
            self._closing = True
            self.source.close()
            self.worker.stop()

    def _restore(self, snap: Snapshot) -> bool:
        """Resume from the checkpoint. Its versions' baselines may come from a registry that
        is down: the engine then waits for it, not ready, trying again with a backoff of at
        most ``registry.retry``, rather than resume without their open windows. False when
        stopped while waiting."""
        delay = 1.0
        while True:
            try:
                self.engine.restore(snap)
            except RegistryError as exc:
                if self.service is None or "registry" not in self.service.problems:
                    log.error("cannot resume yet, the checkpoint's baselines: %s", exc)
                self._problem("registry", f"the checkpoint's baselines not resolved: {exc}")
                if self.stop.wait(delay):
                    log.info("stopped before resuming: the checkpoint is left as it was")
                    return False
                delay = min(delay * 2, self.config.registry_retry)
                continue
            if self.service is not None and "registry" in self.service.problems:
                log.warning("the registry answers again: resumed from the checkpoint")
                self._problem("registry", None)
            return True

    def _commit(self, positions: dict[Partition, int] | None) -> bool:
        """Commit what a checkpoint covers (nothing when it failed). A broker that cannot be
        reached makes the engine not ready until a commit succeeds again; the offsets are in
        the checkpoint, and the next checkpoint commits them."""
        if positions is None:
            return False
        try:
            self.source.commit(positions)
        except DriftlineError as exc:  # KafkaUnavailable
            self.faults.commit_failures += 1
            if self.service is None or "kafka" not in self.service.problems:
                log.error("offset commit failed (retried at the next checkpoint): %s", exc)
            self._problem("kafka", f"offsets not committed: {exc}")
            return False
        if self.service is not None and "kafka" in self.service.problems:
            log.warning("offsets committed again")
            self._problem("kafka", None)
        return True

    def _resets(self) -> None:
        """Partitions the source found out of range and reset (the broker lost or deleted
        what the engine was to read next): counted, and reported by readiness."""
        take = getattr(self.source, "take_resets", None)
        for reset in take() if take is not None else ():
            tp = (reset.topic, reset.partition)
            self.faults.offset_resets[tp] = self.faults.offset_resets.get(tp, 0) + 1
            if self.service is not None:
                self.service.notices[f"kafka {reset.topic}/{reset.partition}"] = reset.describe()

    def _lag(self) -> None:
        """Each owned partition's high watermark (from the last fetch) minus the engine's
        position in it: what is read but not yet processed counts as lag."""
        positions = dict(items(self.engine.positions))  # the worker thread writes it
        lag = {}
        for tp, high in self.source.highwaters().items():
            position = positions.get(tp)
            if position is not None:
                lag[tp] = max(high - position, 0)
        self.lag = lag

    def _status(self, messages: int, seconds: float) -> None:
        c = self.engine.counters
        log.info(
            "%.0f messages/s; %d events, %d windows, %d dead letters, %d streams",
            messages / seconds if seconds else 0.0,
            sum(c.events.values()),
            c.windows,
            sum(c.invalid.values()),
            len(self.engine.streams),
        )


class RetriedHealthTags(HealthTags):
    """:class:`~driftline.registry.HealthTags` that keeps what a registry that is down did
    not take: each version's latest health is written by :meth:`retry` (with every
    checkpoint, at most every ``every`` seconds) once the registry is back."""

    def __init__(
        self, registry: Registry, every: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(registry)
        self.every = every
        self.clock = clock
        self.unwritten: dict[tuple[str, str], dict[str, str]] = {}
        """The latest tags of each version that the registry did not take."""
        self._next_retry = 0.0

    def _write(self, model: str, version: str, tags: dict[str, str]) -> None:
        self.unwritten.pop((model, version), None)  # a newer change replaces them
        try:
            super()._write(model, version, tags)
        except RegistryError:
            self.unwritten[(model, version)] = tags
            self._next_retry = self.clock() + self.every
            raise

    def retry(self) -> None:
        if not self.unwritten or self.clock() < self._next_retry:
            return
        for (model, version), tags in list(self.unwritten.items()):
            try:
                self._write(model, version, tags)
            except RegistryError as exc:
                log.info("registry still unreachable, health tags kept: %s", exc)
                return
            log.warning(
                "model %r version %r: health %s written to the registry (it was unreachable)",
                model, version, tags[HEALTH_TAG],
            )  # fmt: skip


def install_signal_handlers(stop: threading.Event) -> None:
    def handler(signum: int, _frame: Any) -> None:
        log.info("%s: draining", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


class Alerting:
    """Every health change as an alert: kept in the durable outbox under the state
    directory (``[alerts] outbox``), sent to each ``[[alerts.receivers]]`` by a background
    dispatcher (retried with backoff until delivered), and published to the
    ``kafka.topics.alerts`` topic in driftline's JSON format."""

    def __init__(self, config: Config, sink: Any) -> None:
        cfg = config.alerts
        path = cfg.outbox or config.state_dir / "alerts.db"
        self.options = cfg.render
        self.sink = sink
        self.counters = AlertCounters()  # driftline_alerts_total
        self.outbox = Outbox(path, max_rows=cfg.outbox_max_rows, policy=cfg.retry)
        self.alerter = Alerter(
            self.outbox,
            [r.name for r in cfg.receivers],
            counters=self.counters,
            republish=self._publish,
        )
        self.dispatcher = (
            Dispatcher(self.outbox, cfg.receivers, options=cfg.render, counters=self.counters)
            if cfg.receivers
            else None
        )

    def start(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.start()

    def __call__(self, model: str, version: str, change: Change) -> None:
        # None: a repeat (published again by the alerter: at least once on the topic), or
        # refused by a full outbox (the alerter logs and counts both)
        alert = self.alerter.on_change(model, version, change)
        if alert is not None:
            self._publish(alert)

    def _publish(self, alert: Alert) -> None:
        self.sink.publish_alert(alert.fingerprint, render_json(alert, self.options))

    def close(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.stop(timeout=5.0)
        self.outbox.close()


class Acting:
    """The action policies (``[[actions.policies]]``) on every closed window: proposals
    recorded in the action store (``<state.dir>/actions.db``), carried out by the executor
    thread. The engine's :class:`~driftline.engine.WindowListener`."""

    def __init__(self, config: Config, registry: Registry | None, sink: Any) -> None:
        cfg = config.actions
        self.store = ActionStore(config.actions_db)
        self.policies = Policies(cfg.policies)
        self.counters = ActionCounters()  # driftline_actions_total
        # read from the registry on windows only when some policy depends on an alias
        uses_aliases = any(p.alias is not None for p in cfg.policies)
        self.aliases = AliasCache(registry) if registry is not None and uses_aliases else None
        self.executor = Executor(
            self.store,
            cfg.policies,
            registry,
            publish=sink.publish_action if cfg.topic else None,
            retry=replace(config.alerts.retry, max_attempts=cfg.max_attempts),
            counters=self.counters,
            on_done=self.aliases.forget if self.aliases is not None else None,
        )

    def start(self) -> None:
        self.executor.start()

    def on_window(
        self,
        model: str,
        version: str,
        source: str,
        skew: dict[str, Any],
        drift: dict[str, Any] | None,
    ) -> None:
        aliases = self.aliases(model) if self.aliases is not None else {}
        for p in self.policies.on_window(model, version, source, skew, drift, aliases):
            try:
                outcome = self.store.propose(p)
            except ActionError as exc:  # the store is unusable: logged, the engine goes on
                log.error("action %s of %r version %r not recorded: %s", p.policy.action,
                          model, version, exc)  # fmt: skip
                continue
            if outcome == "cooldown":
                self.counters.inc(p.policy.action, "cooldown")
            elif outcome == "created":
                self.counters.inc(p.policy.action, "proposed")
                log.warning(
                    "action %s proposed: %s of %r version %r by policy %r (%s): %s",
                    p.key, p.policy.action, model, version, p.policy.name, p.policy.mode,
                    p.reason,
                )  # fmt: skip

    def forget(self, model: str, version: str) -> None:
        self.policies.forget(model, version)

    def snapshot(self) -> Any:
        return self.policies.snapshot()

    def restore(self, state: Any) -> None:
        self.policies.restore(state)

    def close(self) -> None:
        self.executor.stop(timeout=5.0)
        self.store.close()


def api_server(
    config: Config,
    service: Service,
    server: Server,
    alerting: Alerting,
    acting: Acting | None,
    token: str | None,
) -> HttpServer:
    """The HTTP API with ``/metrics`` (a fresh registry of its own), bound and not started."""
    from driftline.api import create_app
    from driftline.connectors.http import HttpServer
    from driftline.metrics import EngineCollector, make_registry

    collector = EngineCollector(
        service,
        config.metrics,
        alerts=alerting.counters,
        actions=acting.counters if acting is not None else None,
        lag=lambda: server.lag,
    )
    app = create_app(service, config.api, registry=make_registry(collector), token=token)
    return HttpServer(app, config.api.host, config.api.port)


def _sink(config: Config) -> Any:
    """Where records, alerts, actions and dead letters go: Kafka's topics, or (Kafka off)
    JSONL files under ``<state.dir>/out/``."""
    if not config.kafka.enabled:
        from driftline.connectors.jsonl import JsonlSink

        log.info("kafka disabled: events over the API only; outputs in %s/out", config.state_dir)
        return JsonlSink(config.state_dir / "out")
    from driftline.connectors.kafka import KafkaSink

    return KafkaSink(config.kafka)


def serve(config: Config, opts: ServeOptions) -> int:
    """Run until SIGTERM/SIGINT (or ``idle_exit``); returns the exit code."""
    token = None  # read first: a missing variable stops the start before anything connects
    if config.api.enabled and config.api.token_env is not None:
        token = read_env(os.environ, config.api.token_env, where="api", what="the API token")
    topics = config.kafka.topics
    inputs = [t for t in (topics.inference, topics.features, topics.labels) if t]
    if config.kafka.enabled:
        from driftline.connectors.kafka import check_topics

        config.kafka.security.client_options(os.environ)  # its secrets are set, too
        outputs = [topics.windows, topics.dead_letter, topics.alerts]
        if config.actions.topic:
            outputs.append(topics.actions)
        check_topics(config.kafka, [*inputs, *outputs], create=opts.create_topics)
    registry = resolver = tags = None
    if config.registry is not None:
        from driftline.engine import ConfigBaselines
        from driftline.registry import RegistryBaselines, open_registry

        registry = open_registry(config.registry, config.path.parent)
        resolver = RegistryBaselines(registry, ConfigBaselines(config), config.baseline_dirs)
        tags = RetriedHealthTags(registry)
    # From the moment the state directory is ours, SIGTERM drains: a signal during the rest
    # of the start-up (clients, the engine, the API) stops the engine once it runs, exit 0
    stop = threading.Event()
    install_signal_handlers(stop)
    with StateDir(config.state_dir) as state:
        sink = _sink(config)
        recent = Recent(sink, keep=config.api.keep_windows)
        alerting = Alerting(config, sink)
        acting = Acting(config, registry, sink) if config.actions.policies else None
        callbacks = [c for c in (tags, alerting) if c is not None]

        def on_change(model: str, version: str, change: Change) -> None:
            for callback in callbacks:
                callback(model, version, change)

        engine = Engine(
            config, recent, resolver, threads=opts.threads, on_change=on_change, listener=acting
        )
        http = None
        try:
            alerting.start()
            if acting is not None:
                acting.start()

            def factory(**callbacks: Any) -> Any:
                if not config.kafka.enabled:
                    from driftline.connectors.jsonl import NoSource

                    return NoSource(**callbacks)
                from driftline.connectors.kafka import KafkaSource

                return KafkaSource(config.kafka, inputs, **callbacks)

            service = Service(
                engine,
                recent,
                outbox=alerting.outbox,
                render=alerting.options,
                store=acting.store if acting is not None else None,
            )
            server = Server(config, engine, factory, state, opts, service, stop)
            if tags is not None:
                server.periodic.append(tags.retry)
            if config.kafka.enabled:
                sink.stop = server.stop  # a flush waiting for the broker gives up on SIGTERM
            service.run = server.worker.call
            if config.api.enabled:
                http = api_server(config, service, server, alerting, acting, token)
                http.start()
            server.run()
        finally:
            if http is not None:
                http.stop()
            if acting is not None:
                acting.close()
            alerting.close()
            engine.close()
            sink.close()
            if registry is not None:
                registry.close()
    c = engine.counters
    log.info(
        "stopped: %d events, %d windows, %d records, %d dead letters",
        sum(c.events.values()),
        c.windows,
        c.records,
        sum(c.invalid.values()),
    )
    return 0
