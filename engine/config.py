"""``driftline.toml``: the engine's configuration, read once into frozen values.

Every key is checked at load: an unknown key, a value of the wrong type or range, or a
baseline file that cannot be read raises :class:`ConfigError` naming the key
(``window.size must be a positive integer, got -5``). Relative paths are relative to the
config file's directory.

```toml
[kafka]
bootstrap_servers = "127.0.0.1:9092"
group_id = "driftline"
[kafka.topics]
inference = "inference"
windows = "driftline.windows"
dead_letter = "driftline.dead-letter"
[state]
dir = "./driftline-state"
[window]
size = 10000                  # events; or duration = "5m" (with step, lateness)
[[models]]
name = "fraud"
baseline = "baselines/fraud.dlb"
```
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from driftline import baseline as bl
from driftline.actions import ACTIONS, KINDS, MODES, Hook, Policy
from driftline.alerts import FORMATS, RenderOptions
from driftline.connectors.webhooks import Receiver, check_env_name, read_env
from driftline.detectors import DriftPolicy, Statistic
from driftline.events import FieldMap
from driftline.exceptions import BaselineError, ConfigError
from driftline.health import Health
from driftline.outbox import RetryPolicy
from driftline.proxy import DETECTORS, SERIES, SEVERITIES, TASKS, ProxyConfig, Rule
from driftline.quality import METRICS, LabelsConfig
from driftline.windows import parse_duration


class _Table:
    """Typed, path-aware access to one TOML table; :meth:`done` rejects unknown keys."""

    def __init__(self, data: Mapping[str, Any], path: str) -> None:
        self.data = data
        self.path = path
        self.used: set[str] = set()

    def _name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _get(self, key: str) -> Any:
        self.used.add(key)
        return self.data.get(key)

    def string(self, key: str, default: str | None = None, *, required: bool = False) -> str:
        value = self._get(key)
        if value is None:
            if required or default is None:
                raise ConfigError(f"{self._name(key)} is required")
            return default
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{self._name(key)} must be a non-empty string, got {value!r}")
        return value

    def optional_string(self, key: str) -> str | None:
        return self.string(key) if self.data.get(key) is not None else self._get(key)

    def integer(self, key: str, default: int, *, minimum: int = 1) -> int:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise ConfigError(f"{self._name(key)} must be {what}, got {value!r}")
        return value

    def choice(self, key: str, options: tuple[str, ...], default: str) -> str:
        value = self.string(key, default)
        if value not in options:
            raise ConfigError(f"{self._name(key)} must be one of {list(options)}, got {value!r}")
        return value

    def number(
        self, key: str, default: float, *, low: float, high: float, with_low: bool = False
    ) -> float:
        """A number in (low, high], or [low, high] with ``with_low``."""
        value = self._get(key)
        if value is None:
            return default
        inside = isinstance(value, int | float) and (
            (low <= value if with_low else low < value) and value <= high
        )
        if isinstance(value, bool) or not inside:
            bounds = f"{'[' if with_low else '('}{low}, {high}]"
            raise ConfigError(f"{self._name(key)} must be a number in {bounds}, got {value!r}")
        return float(value)

    def duration(self, key: str) -> float | None:
        value = self._get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise ConfigError(f'{self._name(key)} must be a duration such as "5m", got {value!r}')
        try:
            seconds = parse_duration(value)
        except ConfigError as exc:
            raise ConfigError(f"{self._name(key)}: {exc}") from None
        if not math.isfinite(seconds):  # "999…9s", 400 digits: infinite seconds
            raise ConfigError(f"{self._name(key)}: a duration must be finite, got {value[:40]!r}")
        return seconds

    def boolean(self, key: str, default: bool = False) -> bool:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(f"{self._name(key)} must be true or false, got {value!r}")
        return value

    def optional_number(self, key: str) -> float | None:
        value = self._get(key)
        if value is None:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ConfigError(f"{self._name(key)} must be a number, got {value!r}")
        return float(value)

    def strings(self, key: str) -> tuple[str, ...]:
        value = self._get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{self._name(key)} must be a list of strings, got {value!r}")
        return tuple(value)

    def table(self, key: str) -> _Table:
        value = self._get(key)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(f"{self._name(key)} must be a table, got {value!r}")
        return _Table(value, self._name(key))

    def tables(self, key: str) -> list[_Table]:
        value = self._get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ConfigError(f"{self._name(key)} must be an array of tables ([[{key}]])")
        return [_Table(v, f"{self._name(key)}[{i}]") for i, v in enumerate(value)]

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            known = ", ".join(sorted(self.used))
            raise ConfigError(f"{self._name(unknown[0])}: unknown key (known here: {known})")


@dataclass(frozen=True)
class Topics:
    inference: str = "inference"
    features: str | None = None
    labels: str | None = None
    windows: str = "driftline.windows"
    alerts: str = "driftline.alerts"
    actions: str = "driftline.actions"
    dead_letter: str = "driftline.dead-letter"


SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class KafkaSecurity:
    """``[kafka]`` TLS and SASL settings, passed to kafka-python's clients. Secrets (the
    SASL password, the key's password) are read from the environment variables named
    here, never from the file."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password_env: str | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_password_env: str | None = None
    ssl_check_hostname: bool = True

    def client_options(self, environ: Mapping[str, str]) -> dict[str, Any]:
        """kafka-python's keyword arguments, with the secrets read from ``environ``
        (:class:`ConfigError` naming the variable when one is unset)."""
        out: dict[str, Any] = {"security_protocol": self.protocol}
        if self.protocol.startswith("SASL"):
            out["sasl_mechanism"] = self.sasl_mechanism
            out["sasl_plain_username"] = self.sasl_username
            assert self.sasl_password_env is not None  # checked by the parser
            out["sasl_plain_password"] = read_env(
                environ, self.sasl_password_env, "kafka", "the SASL password"
            )
        if self.protocol.endswith("SSL"):
            out["ssl_check_hostname"] = self.ssl_check_hostname
            for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
                value = getattr(self, key)
                if value is not None:
                    out[key] = str(value)
            if self.ssl_password_env is not None:
                out["ssl_password"] = read_env(
                    environ, self.ssl_password_env, "kafka", "the SSL key's password"
                )
        return out


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap_servers: str = "127.0.0.1:9092"
    group_id: str = "driftline"
    session_timeout_ms: int = 10_000
    topics: Topics = field(default_factory=Topics)
    mode: str = "group"
    """``group``: join the consumer group (instances split the partitions); ``assign``: read
    every partition of the input topics, alone."""
    auto_offset_reset: str = "earliest"
    """Where to start a partition with no committed offset and no checkpoint."""
    max_poll_records: int = 10_000
    enabled: bool = True
    """``false``: no Kafka at all. Events come only over the API (``POST /v1/events``);
    window records, alerts, actions and dead letters are appended to JSONL files under
    ``state.dir/out/``."""
    security: KafkaSecurity = field(default_factory=KafkaSecurity)


@dataclass(frozen=True)
class WindowConfig:
    """Count windows (``size`` events) or event-time windows (``duration`` seconds);
    ``step`` makes them sliding; ``lateness`` is the allowed lateness for event time."""

    size: int | None = 10_000
    duration: float | None = None
    step: int | float | None = None
    lateness: float = 0.0


MAX_VERSIONS = 10
"""``models[].max_versions``' default; also the cap of a model known only to the registry."""


@dataclass(frozen=True)
class ModelConfig:
    name: str
    baseline: Path | None
    versions: Mapping[str, Path] = field(default_factory=dict)
    categorical: tuple[str, ...] = ()
    """Columns expected to be categorical: checked against every baseline named here (a
    column of another type or missing is a config error)."""
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    """``[models.proxy]``: proxy metrics, their change detectors and rules."""
    max_versions: int = MAX_VERSIONS
    """Versions of this model monitored at once: a new one beyond this retires the one
    whose last event came longest ago (its open window published as a partial window)."""

    def baseline_for(self, version: str) -> Path | None:
        """The baseline of ``version``: its own, or the model's default."""
        return self.versions.get(version, self.baseline)


@dataclass(frozen=True)
class AlertsConfig:
    """``[alerts]`` and its ``[[alerts.receivers]]``."""

    receivers: tuple[Receiver, ...] = ()
    outbox: Path | None = None
    """The durable outbox (SQLite); default ``<state.dir>/alerts.db``."""
    outbox_max_rows: int = 10_000
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    render: RenderOptions = field(default_factory=RenderOptions)


@dataclass(frozen=True)
class ActionsConfig:
    """``[actions]`` and its ``[[actions.policies]]``."""

    policies: tuple[Policy, ...] = ()
    db: Path | None = None
    """The action store and audit log (SQLite); default ``<state.dir>/actions.db``."""
    max_attempts: int = 10
    """Failed attempts (registry or endpoint down) before an action is given up."""

    @property
    def topic(self) -> bool:
        """Whether some policy publishes on the actions topic."""
        return any(p.topic for p in self.policies)


@dataclass(frozen=True)
class ApiConfig:
    """``[api]``: the HTTP API, ``/metrics`` and the status page that ``serve`` runs."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8080
    """0 picks a free port (tests); the port taken is logged."""
    token_env: str | None = None
    """The environment variable holding the bearer token of the mutating endpoints
    (``POST``). Without it they answer 403: there is no unauthenticated write."""
    protect_reads: bool = False
    """Whether the read endpoints need the token too (``/healthz``, ``/readyz`` and
    ``/metrics`` stay open for probes and Prometheus)."""
    max_body_bytes: int = 10 << 20
    """Largest ``POST /v1/events`` body; a longer one is answered 413."""
    keep_windows: int = 100
    """Recent window records kept per model version for ``GET .../windows``."""


@dataclass(frozen=True)
class MetricsConfig:
    """``[metrics]``: label cardinality of ``/metrics``."""

    max_versions: int = 100
    """Model versions exported with per-version series (the ones with the most recent
    windows); the rest are counted in ``driftline_metrics_versions_dropped``."""
    max_features: int = 50
    """Features exported per model version: the ones named in ``features`` first, then
    the baseline's in order, up to this many."""
    features: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    path: Path
    kafka: KafkaConfig
    state_dir: Path
    window: WindowConfig
    models: tuple[ModelConfig, ...]
    policy: DriftPolicy
    hysteresis: int
    checkpoint_interval: float = 5.0
    """Seconds between checkpoints (and offset commits)."""
    fields: FieldMap = field(default_factory=FieldMap)
    registry: str | None = None
    """``[registry] url``: where versions' baselines are resolved and health is written."""
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    actions: ActionsConfig = field(default_factory=ActionsConfig)
    labels: LabelsConfig = field(default_factory=LabelsConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    registry_retry: float = 30.0
    """``[registry] retry``: seconds before a model version whose baseline could not be
    resolved (registry down, version not linked yet, no baseline in the config) is looked
    up again; its events are dead-lettered meanwhile."""
    baseline_dirs: tuple[Path, ...] = ()
    """``[registry] baseline_dirs``: the directories a baseline named by the registry may be
    read from (default: the config file's directory). Paths in the config file itself are
    not confined: whoever writes the config decides."""
    read_labels: bool = False
    """Whether label events are read and joined: ``kafka.topics.labels`` is set, or Kafka
    is off (``kafka.enabled = false``) and a ``[labels]`` table is given."""

    @property
    def actions_db(self) -> Path:
        """The action store: ``[actions] db``, else ``<state.dir>/actions.db``."""
        return self.actions.db or self.state_dir / "actions.db"

    def model(self, name: str) -> ModelConfig | None:
        return next((m for m in self.models if m.name == name), None)


def _security(k: _Table, base: Path) -> KafkaSecurity:
    protocol = k.choice("security_protocol", SECURITY_PROTOCOLS, "PLAINTEXT")

    def file(key: str) -> Path | None:
        value = k.optional_string(key)
        if value is None:
            return None
        path = _resolve(base, value)
        if not path.is_file():
            raise ConfigError(f"kafka.{key}: no such file: {path}")
        return path

    def env(key: str) -> str | None:
        value = k.optional_string(key)
        if value is not None:
            check_env_name(value, key, "kafka")
        return value

    sec = KafkaSecurity(
        protocol=protocol,
        sasl_mechanism=k.optional_string("sasl_mechanism"),
        sasl_username=k.optional_string("sasl_username"),
        sasl_password_env=env("sasl_password_env"),
        ssl_cafile=file("ssl_cafile"),
        ssl_certfile=file("ssl_certfile"),
        ssl_keyfile=file("ssl_keyfile"),
        ssl_password_env=env("ssl_password_env"),
        ssl_check_hostname=k.boolean("ssl_check_hostname", True),
    )
    if sec.sasl_mechanism is not None and sec.sasl_mechanism not in SASL_MECHANISMS:
        raise ConfigError(
            f"kafka.sasl_mechanism must be one of {list(SASL_MECHANISMS)}, "
            f"got {sec.sasl_mechanism!r}"
        )
    sasl = protocol.startswith("SASL")
    given = [n for n in ("sasl_mechanism", "sasl_username", "sasl_password_env")
             if getattr(sec, n) is not None]  # fmt: skip
    if sasl and len(given) < 3:
        missing = next(
            n for n in ("sasl_mechanism", "sasl_username", "sasl_password_env") if n not in given
        )
        raise ConfigError(f"kafka.{missing} is required with security_protocol = {protocol!r}")
    if given and not sasl:
        raise ConfigError(
            f"kafka.{given[0]} needs security_protocol SASL_PLAINTEXT or SASL_SSL, got {protocol!r}"
        )
    tls = [n for n in ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_password_env")
           if getattr(sec, n) is not None]  # fmt: skip
    if tls and not protocol.endswith("SSL"):
        raise ConfigError(
            f"kafka.{tls[0]} needs security_protocol SSL or SASL_SSL, got {protocol!r}"
        )
    if sec.ssl_keyfile is not None and sec.ssl_certfile is None:
        raise ConfigError("kafka.ssl_keyfile needs kafka.ssl_certfile (the client certificate)")
    return sec


def _window(t: _Table) -> WindowConfig:
    duration = t.duration("duration")
    size = t.integer("size", 0) if t.data.get("size") is not None else None
    if duration is not None and size is not None:
        raise ConfigError("window: give either size (events) or duration (event time), not both")
    if duration is None and size is None:
        size = 10_000
    step: int | float | None
    if duration is not None:
        step = t.duration("step")
        if step is not None and step > duration:
            raise ConfigError("window.step must not be longer than window.duration")
        if step is not None and abs(duration / step - round(duration / step)) > 1e-9:
            raise ConfigError("window.duration must be a whole multiple of window.step")
    else:
        step = t.integer("step", 0) if t.data.get("step") is not None else None
        if step is not None and size is not None and step > size:
            raise ConfigError("window.step must not be larger than window.size")
    lateness = t.duration("lateness") or 0.0
    if lateness and duration is None:
        raise ConfigError("window.lateness applies to event-time windows (window.duration)")
    t.done()
    return WindowConfig(size=size, duration=duration, step=step, lateness=lateness)


def _resolve(base: Path, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else base / p


def _check_baseline(key: str, path: Path) -> bl.Baseline:
    try:
        return bl.load(path)
    except BaselineError as exc:
        raise ConfigError(f"{key}: {exc}") from None


def _check_categorical(key: str, names: tuple[str, ...], path: Path, b: bl.Baseline) -> None:
    """``categorical``: the columns the user expects to be categorical are so in the
    baseline (types are fixed when it is built: ``driftline baseline build --categorical``)."""
    for name in names:
        try:
            column = b.column(name)
        except KeyError:
            raise ConfigError(f"{key}: {name!r} is not a column of the baseline {path}") from None
        if column.kind != "categorical":
            raise ConfigError(
                f"{key}: {name!r} is {column.kind} in the baseline {path}; rebuild it with "
                f"driftline baseline build --categorical {name}"
            )


def _models(
    tables: list[_Table], base: Path, registry: str | None = None
) -> tuple[ModelConfig, ...]:
    if not tables:
        raise ConfigError("models: at least one [[models]] table is required")
    out: list[ModelConfig] = []
    for t in tables:
        name = t.string("name", required=True)
        if any(m.name == name for m in out):
            raise ConfigError(f"{t.path}.name: model '{name}' is configured twice")
        default = t.optional_string("baseline")
        baseline = _resolve(base, default) if default else None
        categorical = t.strings("categorical")
        if baseline is not None:
            loaded = _check_baseline(f"{t.path}.baseline", baseline)
            _check_categorical(f"{t.path}.categorical", categorical, baseline, loaded)
        versions: dict[str, Path] = {}
        vt = t.table("versions")
        for version in list(vt.data):
            v = vt.table(version)
            path = _resolve(base, v.string("baseline", required=True))
            loaded = _check_baseline(f"{v.path}.baseline", path)
            _check_categorical(f"{t.path}.categorical", categorical, path, loaded)
            versions[version] = path
            v.done()
        vt.done()
        if baseline is None and not versions and registry is None:
            raise ConfigError(
                f"{t.path}.baseline is required (or one per version under versions, or a "
                "[registry] that links baselines to versions)"
            )
        max_versions = t.integer("max_versions", MAX_VERSIONS)
        proxy = _proxy(t.table("proxy"))
        out.append(ModelConfig(name, baseline, versions, categorical, proxy, max_versions))
        t.done()
    return tuple(out)


def _proxy(t: _Table) -> ProxyConfig:
    inf = float("inf")
    fields = t.strings("fields")
    for name in fields:
        if name in SERIES or name in METRICS:
            raise ConfigError(f"{t.path}.fields: {name!r} is a built-in metric")
    rules = []
    metrics = (*SERIES, *fields, *METRICS)
    for r in t.tables("rules"):
        metric = r.string("metric", required=True)
        if metric not in metrics:
            raise ConfigError(f"{r.path}.metric must be one of {list(metrics)}, got {metric!r}")
        rule = Rule(
            metric,
            r.number("max_ratio", 0.0, low=0.0, high=inf) or None,
            r.number("min_ratio", 0.0, low=0.0, high=inf) or None,
            r.choice("severity", SEVERITIES, "warning"),
        )
        if rule.max_ratio is None and rule.min_ratio is None:
            raise ConfigError(f"{r.path}: give max_ratio and/or min_ratio")
        rules.append(rule)
        r.done()
    cfg = ProxyConfig(
        task=t.choice("task", TASKS, "classification"),
        threshold=t.number("threshold", 0.5, low=-inf, high=inf),
        fields=fields,
        detector=t.choice("detector", DETECTORS, "page_hinkley"),
        rules=tuple(rules),
        ph_threshold=t.number("ph_threshold", 1.0, low=0.0, high=inf),
        min_windows=t.integer("min_windows", 5),
        cusum_k=t.number("cusum_k", 1.0, low=0.0, high=inf, with_low=True),
        cusum_h=t.number("cusum_h", 5.0, low=0.0, high=inf),
    )
    t.done()
    return cfg


def _string_map(t: _Table, key: str) -> dict[str, str]:
    table = t.table(key)
    out = {k: table.string(k) for k in list(table.data)}
    table.done()
    return out


def _given(**values: Any) -> dict[str, Any]:
    """The keys a config table gives, so that a dataclass keeps its own defaults."""
    return {k: v for k, v in values.items() if v is not None}


def _alerts(t: _Table, base: Path) -> AlertsConfig:
    receivers = []
    for r in t.tables("receivers"):
        receivers.append(
            Receiver(
                name=r.string("name", required=True),
                url=r.optional_string("url"),
                format=r.choice("format", FORMATS, "json"),  # type: ignore[arg-type]
                url_env=r.optional_string("url_env"),
                secret_env=r.optional_string("secret_env"),
                routing_key_env=r.optional_string("routing_key_env"),
                headers=_string_map(r, "headers"),
                headers_env=_string_map(r, "headers_env"),
                **_given(timeout=r.duration("timeout")),
            )
        )
        r.done()
    names = [r.name for r in receivers]
    if len(set(names)) != len(names):
        raise ConfigError(f"{t.path}.receivers: names must be unique, got {names}")
    outbox = t.optional_string("outbox")
    retry = RetryPolicy(
        **_given(
            base=t.duration("retry_base"),
            cap=t.duration("retry_cap"),
            max_attempts=t.integer("max_attempts", 0) or None,
            max_age=t.duration("max_age"),
        )
    )
    render = RenderOptions(
        external_url=t.optional_string("external_url") or "",
        labels=_string_map(t, "labels"),
        **_given(source=t.optional_string("source"), firing_ttl=t.duration("firing_ttl")),
    )
    cfg = AlertsConfig(
        receivers=tuple(receivers),
        outbox=_resolve(base, outbox) if outbox else None,
        outbox_max_rows=t.integer("outbox_max_rows", 10_000),
        retry=retry,
        render=render,
    )
    t.done()
    return cfg


_POLICY_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(Policy)}


def _actions(t: _Table, base: Path, registry: str | None, models: tuple[str, ...]) -> ActionsConfig:
    policies: list[Policy] = []
    for r in t.tables("policies"):
        name = r.string("name", required=True)
        if any(p.name == name for p in policies):
            raise ConfigError(f"{r.path}.name: policy {name!r} is configured twice")
        model = r.optional_string("model")
        if model is not None and model not in models:
            raise ConfigError(f"{r.path}.model: {model!r} is not a configured model {list(models)}")
        health = r.optional_string("health")
        if health is not None and health not in ("warning", "critical"):
            raise ConfigError(f"{r.path}.health must be 'warning' or 'critical', got {health!r}")
        url, url_env = r.optional_string("url"), r.optional_string("url_env")
        hook = None
        headers = _string_map(r, "headers")
        headers_env = _string_map(r, "headers_env")
        secret_env = r.optional_string("secret_env")
        body = r.optional_string("body")
        timeout = r.duration("timeout")
        if url is not None or url_env is not None:
            hook = Hook(
                url,
                url_env,
                secret_env,
                headers,
                headers_env=headers_env,
                **_given(timeout=timeout, body=body),
            )
        elif secret_env or headers or headers_env or body or timeout:
            raise ConfigError(
                f"{r.path}: secret_env, headers, headers_env, body and timeout need url or url_env"
            )
        cooldown = r.duration("cooldown")
        d = _POLICY_DEFAULTS
        policy = Policy(
            name=name,
            action=r.choice("action", ACTIONS, "retrain"),  # type: ignore[arg-type]
            mode=r.choice("mode", MODES, d["mode"]),  # type: ignore[arg-type]
            model=model,
            alias=r.optional_string("alias"),
            health=None if health is None else Health.parse(health),
            for_windows=r.integer("for_windows", d["for_windows"]),
            statistic=r.optional_string("statistic"),
            feature=r.optional_string("feature"),
            threshold=r.optional_number("threshold"),
            kind=r.choice("kind", KINDS, d["kind"]),
            canary_worse=r.boolean("canary_worse"),
            stable_alias=r.string("stable_alias", d["stable_alias"]),
            cooldown=d["cooldown"] if cooldown is None else cooldown,
            hook=hook,
            topic=r.boolean("topic"),
        )
        if registry is None and (policy.action != "retrain" or policy.canary_worse):
            raise ConfigError(
                f"{r.path}: {policy.action}{' with canary_worse' if policy.canary_worse else ''} "
                "needs the model registry: add [registry] url"
            )
        if registry is None and policy.alias is not None:
            raise ConfigError(f"{r.path}.alias: aliases live in the registry: add [registry] url")
        policies.append(policy)
        r.done()
    db = t.optional_string("db")
    cfg = ActionsConfig(
        policies=tuple(policies),
        db=_resolve(base, db) if db else None,
        max_attempts=t.integer("max_attempts", 10),
    )
    t.done()
    return cfg


def _policy(t: _Table) -> DriftPolicy:
    stats = {s.value for s in Statistic}
    numeric = t.string("numeric_statistic", Statistic.PSI.value)
    categorical = t.string("categorical_statistic", Statistic.PSI.value)
    for key, value in (("numeric_statistic", numeric), ("categorical_statistic", categorical)):
        if value not in stats:
            raise ConfigError(f"{t.path}.{key} must be one of {sorted(stats)}, got {value!r}")
    try:
        policy = DriftPolicy(
            numeric_statistic=Statistic(numeric),
            categorical_statistic=Statistic(categorical),
            threshold=t.number("threshold", 0.1, low=0.0, high=float("inf")),
            min_rows_for_distance=t.integer("min_rows_for_distance", 1000, minimum=0),
            alpha=t.number("alpha", 0.05, low=0.0, high=0.5),
            drift_share=t.number("drift_share", 0.5, low=0.0, high=1.0),
            shift_alpha=t.number("shift_alpha", 1e-5, low=0.0, high=0.5, with_low=True),
            min_mean_shift=t.number(
                "min_mean_shift", 0.02, low=0.0, high=float("inf"), with_low=True
            ),
            min_linf=t.number("min_linf", 0.005, low=0.0, high=1.0, with_low=True),
        )
    except ValueError as exc:
        raise ConfigError(f"{t.path}: {exc}") from None
    t.done()
    return policy


def parse(data: Mapping[str, Any], path: Path) -> Config:
    root = _Table(data, "")
    base = path.parent
    k = root.table("kafka")
    topics_t = k.table("topics")
    topics = Topics(
        inference=topics_t.string("inference", "inference"),
        features=topics_t.optional_string("features"),
        labels=topics_t.optional_string("labels"),
        windows=topics_t.string("windows", "driftline.windows"),
        alerts=topics_t.string("alerts", "driftline.alerts"),
        actions=topics_t.string("actions", "driftline.actions"),
        dead_letter=topics_t.string("dead_letter", "driftline.dead-letter"),
    )
    topics_t.done()
    kafka = KafkaConfig(
        bootstrap_servers=k.string("bootstrap_servers", "127.0.0.1:9092"),
        group_id=k.string("group_id", "driftline"),
        session_timeout_ms=k.integer("session_timeout_ms", 10_000, minimum=1000),
        topics=topics,
        mode=k.choice("mode", ("group", "assign"), "group"),
        auto_offset_reset=k.choice("auto_offset_reset", ("earliest", "latest"), "earliest"),
        max_poll_records=k.integer("max_poll_records", 10_000),
        enabled=k.boolean("enabled", True),
        security=_security(k, base),
    )
    k.done()
    state = root.table("state")
    state_dir = _resolve(base, state.string("dir", "./driftline-state"))
    interval = state.duration("checkpoint_interval")
    state.done()
    ev = root.table("events")
    defaults = FieldMap()
    fields = FieldMap(
        **{name: ev.string(name, getattr(defaults, name)) for name in FieldMap.__dataclass_fields__}
    )
    ev.done()
    window = _window(root.table("window"))
    health = root.table("health")
    hysteresis = health.integer("hysteresis", 2)
    health.done()
    policy = _policy(root.table("policy"))
    reg = root.table("registry")
    registry = reg.optional_string("url")
    baseline_dirs = tuple(_resolve(base, d) for d in reg.strings("baseline_dirs")) or (base,)
    registry_retry = reg.duration("retry")
    if registry is not None and not registry.startswith(("sqlite:///", "mlflow+")):
        raise ConfigError(
            "registry.url must be sqlite:///path.db or mlflow+http(s)://host:port, "
            f"got {registry!r}"
        )
    reg.done()
    alerts = _alerts(root.table("alerts"), base)
    models = _models(root.tables("models"), base, registry)
    actions = _actions(root.table("actions"), base, registry, tuple(m.name for m in models))
    lt = root.table("labels")
    labels = LabelsConfig(
        **_given(
            ttl=lt.duration("ttl"),
            max_pending=lt.integer("max_pending", 0) or None,
            window=lt.integer("window", 0) or None,
        )
    )
    if lt.data and not topics.labels and kafka.enabled:
        raise ConfigError("labels: set kafka.topics.labels, the topic label events come on")
    lt.done()
    api = _api(root.table("api"))
    mt = root.table("metrics")
    metrics = MetricsConfig(
        max_versions=mt.integer("max_versions", 100),
        max_features=mt.integer("max_features", 50),
        features=mt.strings("features"),
    )
    mt.done()
    root.done()
    if not kafka.enabled and not (api.enabled and api.token_env):
        raise ConfigError(
            "kafka.enabled = false: events then come only over the API, which needs "
            "[api] enabled with token_env (POST /v1/events takes the bearer token)"
        )
    return Config(
        path,
        kafka,
        state_dir,
        window,
        models,
        policy,
        hysteresis,
        checkpoint_interval=5.0 if interval is None else interval,
        fields=fields,
        registry=registry,
        registry_retry=30.0 if registry_retry is None else registry_retry,
        alerts=alerts,
        actions=actions,
        labels=labels,
        api=api,
        metrics=metrics,
        read_labels=bool(topics.labels) or (not kafka.enabled and bool(lt.data)),
        baseline_dirs=baseline_dirs,
    )


def _api(t: _Table) -> ApiConfig:
    token_env = t.optional_string("token_env")
    if token_env is not None:
        check_env_name(token_env, "token_env", "api")
    port = t.integer("port", 8080, minimum=0)
    if port > 65535:
        raise ConfigError(f"api.port must be a port number (0 to 65535), got {port}")
    api = ApiConfig(
        enabled=t.boolean("enabled", True),
        host=t.string("host", "127.0.0.1"),
        port=port,
        token_env=token_env,
        protect_reads=t.boolean("protect_reads", False),
        max_body_bytes=t.integer("max_body_bytes", 10 << 20),
        keep_windows=t.integer("keep_windows", 100),
    )
    if api.protect_reads and token_env is None:
        raise ConfigError("api.protect_reads needs api.token_env, the token's variable")
    t.done()
    return api


def load(path: str | Path) -> Config:
    """Read and validate a config file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the config: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: not UTF-8 text ({exc.reason})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    try:
        return parse(data, p)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None
