"""Actions: what driftline does, by policy, when a model version's health degrades.

A policy (``[[actions.policies]]``) maps a condition on a model version's windows to one
action:

- ``retrain``: POST a templated JSON body to the user's pipeline trigger (``url``) and/or
  publish the action on the ``driftline.actions`` topic (``topic = true``);
- ``rollback``: move a registry alias (``alias``, default ``production``) from the degraded
  version back to the previous version whose own health is ``ok``, then notify serving
  (``url``, and/or the topic);
- ``canary_abort``: remove the canary's alias (``alias``, default ``canary``) and notify.

The conditions, all of which must hold when several are given:

- ``health = "warning" | "critical"`` held (``for_windows``, default 1) windows in a row:
  the tracked health, after hysteresis;
- ``statistic`` over ``threshold`` in the window's skew (or ``kind = "drift"``) record: a
  feature statistic such as ``psi`` of ``feature`` (or of any feature when none is named),
  or ``dataset_drift_share``;
- ``canary_worse = true``: the version holding the canary alias observed a worse health on
  its window than the version holding ``stable_alias`` (default ``production``) did on its
  latest window.

``alias`` also narrows a policy to the version that holds that alias (a rollback of
``production`` only ever starts from the production version).

Each proposal gets an idempotency key derived from (policy, model, version, window), so a
window replayed after a crash proposes nothing new; a ``cooldown`` (default one hour) per
(policy, model version) keeps a condition that stays true from proposing an action every
window. The mode decides what happens next: ``auto`` runs it, ``approve`` keeps it pending
until ``driftline actions approve ID`` (or the API), ``dry-run`` only records what it
would have done. Every step is written to the audit log (:mod:`driftline.action_store`);
:mod:`driftline.executor` carries actions out.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from driftline.connectors.webhooks import (
    check_env_name,
    check_headers,
    check_headers_env,
    check_url,
)
from driftline.exceptions import ConfigError
from driftline.health import Health

Action = Literal["retrain", "rollback", "canary_abort"]
Mode = Literal["auto", "approve", "dry-run"]
ACTIONS: tuple[Action, ...] = ("retrain", "rollback", "canary_abort")
MODES: tuple[Mode, ...] = ("auto", "approve", "dry-run")
KINDS = ("skew", "drift")
DATASET_SHARE = "dataset_drift_share"
"""The ``statistic`` name of the window's share of drifted features."""
DEFAULT_ALIAS: Mapping[str, str | None] = {
    "retrain": None,
    "rollback": "production",
    "canary_abort": "canary",
}


@dataclass(frozen=True)
class Hook:
    """Where an action POSTs: the pipeline trigger (``retrain``) or serving's notification
    endpoint (``rollback``, ``canary_abort``). ``body`` is a JSON template whose
    ``{placeholders}`` are filled from the action (see :func:`render_body`); without one the
    action's JSON document is sent."""

    url: str | None = field(default=None, repr=False)
    url_env: str | None = None
    secret_env: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout: float = 10.0
    body: str | None = None
    headers_env: Mapping[str, str] = field(default_factory=dict)
    """Headers whose values are read from the environment (name → variable)."""

    def check(self, where: str) -> None:
        if (self.url is None) == (self.url_env is None):
            raise ConfigError(f"{where}: give exactly one of url and url_env")
        if self.url is not None:
            check_url(self.url, where)
        for key in ("url_env", "secret_env"):
            value = getattr(self, key)
            if value is not None:
                check_env_name(value, key, where)
        check_headers(self.headers, where)
        check_headers_env(self.headers_env, self.headers, where)
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ConfigError(f"{where}: timeout must be a positive number, got {self.timeout}")
        if self.body is not None:
            render_body(self.body, PLACEHOLDER_EXAMPLE, where)


PLACEHOLDERS = ("id", "action", "policy", "model", "version", "health", "reason", "window")
PLACEHOLDER_EXAMPLE = {name: name for name in PLACEHOLDERS}


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def render_body(template: str, values: Mapping[str, Any], where: str = "body") -> bytes:
    """``template`` with every ``{name}`` (an identifier in braces, one of
    :data:`PLACEHOLDERS`) replaced by the JSON-escaped text of ``values[name]``, so that
    ``"{model}"`` stays a valid JSON string whatever the model is called. Other braces (the
    JSON's own) are kept. The result must be valid JSON.

    >>> render_body('{"model": "{model}", "n": 1}', {"model": 'say "hi"'})
    b'{"model": "say \\\\"hi\\\\"", "n": 1}'
    """

    def fill(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in PLACEHOLDERS:
            raise ConfigError(
                f"{where}: unknown placeholder {{{name}}} (known: {', '.join(PLACEHOLDERS)})"
            )
        return orjson.dumps(str(values.get(name, ""))).decode()[1:-1]

    body = _PLACEHOLDER.sub(fill, template).encode()
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{where}: the body is not valid JSON once filled in: {exc}") from None
    return body


@dataclass(frozen=True)
class Policy:
    """One ``[[actions.policies]]``."""

    name: str
    action: Action
    mode: Mode = "approve"
    model: str | None = None
    """Only this model's versions (None: every model)."""
    alias: str | None = None
    """Only the version holding this alias; the alias a rollback moves or an abort removes."""
    health: Health | None = None
    for_windows: int = 1
    statistic: str | None = None
    feature: str | None = None
    threshold: float | None = None
    kind: str = "skew"
    canary_worse: bool = False
    stable_alias: str = "production"
    cooldown: float = 3600.0
    hook: Hook | None = None
    topic: bool = False
    """Publish the action on ``kafka.topics.actions`` when it runs."""

    def __post_init__(self) -> None:
        where = f"actions.policies {self.name!r}"
        if self.action not in ACTIONS:
            raise ConfigError(f"{where}: action must be one of {list(ACTIONS)}")
        if self.mode not in MODES:
            raise ConfigError(f"{where}: mode must be one of {list(MODES)}")
        if self.health is None and self.statistic is None and not self.canary_worse:
            raise ConfigError(
                f"{where}: give a condition: health (with for_windows), statistic with "
                "threshold, or canary_worse = true"
            )
        if self.health is not None and self.health == Health.OK:
            raise ConfigError(f"{where}: health must be 'warning' or 'critical'")
        if (self.statistic is None) != (self.threshold is None):
            raise ConfigError(f"{where}: statistic and threshold go together")
        if self.feature is not None and self.statistic in (None, DATASET_SHARE):
            raise ConfigError(f"{where}: feature names the feature of a feature statistic")
        if not (math.isfinite(self.cooldown) and self.cooldown >= 0):
            raise ConfigError(f"{where}: cooldown must be a duration >= 0, got {self.cooldown}")
        if self.for_windows < 1:
            raise ConfigError(f"{where}: for_windows must be >= 1, got {self.for_windows}")
        if self.kind not in KINDS:
            raise ConfigError(f"{where}: kind must be one of {list(KINDS)}, got {self.kind!r}")
        if self.action != "retrain" and self.alias is None:
            object.__setattr__(self, "alias", DEFAULT_ALIAS[self.action])
        if self.canary_worse and self.alias is None:
            object.__setattr__(self, "alias", "canary")
        if self.canary_worse and self.alias == self.stable_alias:
            raise ConfigError(f"{where}: the canary alias and stable_alias must differ")
        if self.hook is None and not self.topic and self.action == "retrain":
            raise ConfigError(f"{where}: a retrain needs url (or url_env) and/or topic = true")
        if self.hook is not None:
            self.hook.check(where)

    def applies(self, model: str, version: str, aliases: Mapping[str, str]) -> bool:
        if self.model is not None and self.model != model:
            return False
        return self.alias is None or aliases.get(self.alias) == version


@dataclass(frozen=True)
class Proposal:
    """A policy's condition held on a window: the action to record (and maybe run)."""

    key: str
    """Idempotency key: the same window proposes the same key again after a replay."""
    policy: Policy
    model: str
    version: str
    window: int
    health: str
    reason: str


def action_key(policy: str, model: str, version: str, source: str, window: int) -> str:
    raw = "\x00".join((policy, model, version, source, str(window)))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


@dataclass
class _Seen:
    streak: dict[str, int] = field(default_factory=dict)
    """Windows in a row with tracked health at or above each level."""
    observed: int = 0
    """The observed health of the latest window (a canary comparison's other side)."""


class Policies:
    """Evaluates the policies on every closed window of a model version.

    ``on_window`` is called by the engine with the window's records (after health); it
    returns the proposals whose conditions hold. Its state (health streaks, the latest
    observed health of each version) is part of the engine's checkpoint, so a restart
    proposes exactly what an uninterrupted run would."""

    def __init__(self, policies: tuple[Policy, ...]) -> None:
        self.policies = policies
        self._seen: dict[tuple[str, str], _Seen] = {}

    def on_window(
        self,
        model: str,
        version: str,
        source: str,
        skew: Mapping[str, Any],
        drift: Mapping[str, Any] | None,
        aliases: Mapping[str, str],
    ) -> list[Proposal]:
        seen = self._seen.setdefault((model, version), _Seen())
        state = Health.parse(skew["health"])
        observed = Health.parse(skew.get("observed_health", skew["health"]))
        for level in (Health.WARNING, Health.CRITICAL):
            name = str(level)
            seen.streak[name] = seen.streak.get(name, 0) + 1 if state >= level else 0
        seen.observed = int(observed)
        window = int(skew["window"]["index"])
        out = []
        for p in self.policies:
            if not p.applies(model, version, aliases):
                continue
            reasons = self._holds(p, model, seen, skew, drift, aliases, observed)
            if reasons is None:
                continue
            out.append(
                Proposal(
                    action_key(p.name, model, version, source, window),
                    p,
                    model,
                    version,
                    window,
                    str(state),
                    "; ".join(reasons),
                )
            )
        return out

    def _holds(
        self,
        p: Policy,
        model: str,
        seen: _Seen,
        skew: Mapping[str, Any],
        drift: Mapping[str, Any] | None,
        aliases: Mapping[str, str],
        observed: Health,
    ) -> list[str] | None:
        """The reasons the policy's conditions all hold, or None."""
        reasons = []
        if p.health is not None:
            n = seen.streak.get(str(p.health), 0)
            if n < p.for_windows:
                return None
            reasons.append(f"health {p.health} or worse for {n} windows")
        if p.statistic is not None:
            assert p.threshold is not None
            record = skew if p.kind == "skew" else drift
            if record is None:
                return None
            hit = _over(record, p.statistic, p.feature, p.threshold)
            if hit is None:
                return None
            reasons.append(hit)
        if p.canary_worse:
            stable = aliases.get(p.stable_alias)
            other = self._seen.get((model, stable)) if stable is not None else None
            if other is None or observed <= other.observed:
                return None
            reasons.append(
                f"canary observed {observed}, worse than {p.stable_alias} version {stable} "
                f"({Health(other.observed)})"
            )
        return reasons

    def forget(self, model: str, version: str) -> None:
        """The engine retired the version: its streaks go."""
        self._seen.pop((model, version), None)

    def snapshot(self) -> list[list[Any]]:
        return [[m, v, s.streak, s.observed] for (m, v), s in self._seen.items()]

    def restore(self, state: list[list[Any]]) -> None:
        self._seen = {
            (str(m), str(v)): _Seen({str(k): int(n) for k, n in streak.items()}, int(observed))
            for m, v, streak, observed in state
        }


def _over(
    record: Mapping[str, Any], statistic: str, feature: str | None, threshold: float
) -> str | None:
    """Why ``statistic`` is over ``threshold`` in the record, or None."""
    if statistic == DATASET_SHARE:
        share = record.get("dataset_drift", {}).get("share")
        if share is not None and share > threshold:
            return f"{DATASET_SHARE} {share:.3g} > {threshold:g}"
        return None
    features: Mapping[str, Any] = record.get("features", {})
    names = [feature] if feature is not None else sorted(features)
    over = []
    for name in names:
        value = (features.get(name) or {}).get(statistic)
        if isinstance(value, int | float) and value > threshold:
            over.append(f"{name} {statistic} {value:.3g} > {threshold:g}")
    return "; ".join(over) if over else None
