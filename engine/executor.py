"""Carries out actions (:mod:`driftline.actions`) from the action store, in a background
thread of ``driftline serve``.

Every runnable action (``queued``, or ``approved``) is run in steps, each recorded before
the next, so a retry after a failure or a restart never repeats a step already done:

1. the registry change: ``rollback`` moves the alias from the degraded version to the
   previous version whose own health is ``ok`` (:func:`rollback_target`); ``canary_abort``
   deletes the alias. When the alias no longer points at the degraded version, someone (or
   an earlier attempt) moved it: nothing is changed and the action is ``skipped``, unless
   the record says this action made that move;
2. the POST to the policy's ``url`` (the pipeline trigger of a ``retrain``, serving's
   notification otherwise), with ``Idempotency-Key: <action id>`` and the HMAC signature
   when ``secret_env`` is set — the same headers as alert webhooks;
3. the message on ``kafka.topics.actions`` (``topic = true``).

A step that fails in a way that may pass (the registry or the endpoint down, 5xx, 429) is
retried with the alerts' backoff (``[alerts] retry_base``/``retry_cap``) until
``max_attempts``; a permanent refusal (4xx) fails the action. ``dry-run`` actions run no
step: the executor records what it would do (``dry-run`` status, the plan in the detail).
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from driftline.action_store import ActionStore, Record
from driftline.actions import Hook, Policy, render_body
from driftline.background import Passes
from driftline.connectors.webhooks import Endpoint, Outcome, opener, post_json
from driftline.exceptions import ConfigError, DriftlineError, RegistryError
from driftline.outbox import RetryPolicy
from driftline.registry import HEALTH_TAG, Registry, VersionInfo

log = logging.getLogger("driftline.executor")


@dataclass
class ActionCounters:
    """``driftline_actions_total{action,outcome}``."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def inc(self, action: str, outcome: str) -> None:
        with self._lock:
            self.counts[(action, outcome)] += 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self.counts)


def _order(v: VersionInfo) -> tuple[float, int, str]:
    return (v.created, int(v.version) if v.version.isdigit() else -1, v.version)


def rollback_target(versions: list[VersionInfo], current: str) -> VersionInfo | None:
    """The version registered last before ``current`` whose health is ``ok``: its
    ``driftline.health`` tag is ``ok``, or absent (driftline never saw it degrade). None
    when there is none (a rollback then fails rather than move to an unhealthy version)."""
    ordered = sorted(versions, key=_order)
    at = next((i for i, v in enumerate(ordered) if v.version == current), None)
    if at is None:
        return None
    for v in reversed(ordered[:at]):
        if v.tags.get(HEALTH_TAG, "ok") == "ok":
            return v
    return None


class _Retry(Exception):
    """A step failed in a way that may pass: try again after the backoff."""


class _Fail(Exception):
    """A step failed for good."""


class Executor(Passes):
    """Runs due actions; ``start()``/``stop()`` the thread, or call :meth:`run_once`."""

    def __init__(
        self,
        store: ActionStore,
        policies: tuple[Policy, ...],
        registry: Registry | None,
        *,
        publish: Callable[[str, bytes], None] | None = None,
        retry: RetryPolicy | None = None,
        counters: ActionCounters | None = None,
        poll_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        environ: Mapping[str, str] | None = None,
        rng: random.Random | None = None,
        on_done: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(poll_interval, clock)
        self.store = store
        self.policies = {p.name: p for p in policies}
        self.registry = registry
        self.publish = publish
        self.retry = retry if retry is not None else RetryPolicy()
        self.counters = counters if counters is not None else ActionCounters()
        self.rng = rng if rng is not None else random.Random()
        self.on_done = on_done
        """Called with the model after every action that changed the registry."""
        env = os.environ if environ is None else environ
        self._hooks = {p.name: self._resolve(p, env) for p in policies if p.hook is not None}
        self._opener = opener()
        store.subscribe(self.wake)

    @staticmethod
    def _resolve(p: Policy, env: Mapping[str, str]) -> Endpoint:
        hook = p.hook
        assert hook is not None
        return Endpoint.read(
            f"actions.policies {p.name!r}",
            env,
            url=hook.url,
            url_env=hook.url_env,
            secret_env=hook.secret_env,
            headers=hook.headers,
            headers_env=hook.headers_env,
        )

    # -- the thread (start, stop: Passes) -----------------------------------------------

    WHAT = "action executor"

    def next_due(self) -> float | None:
        return self.store.next_due()

    # -- one pass ------------------------------------------------------------------------

    def run_once(self) -> int:
        """Run every due action once; returns how many were tried."""
        records = self.store.due(self.clock())
        for record in records:
            if self.stopping:
                break
            self._run_one(record)
        return len(records)

    def _run_one(self, r: Record) -> None:
        policy = self.policies.get(r.policy)
        if policy is None:
            self._finish(r, "failed", f"policy {r.policy!r} is no longer configured")
            return
        if r.mode == "dry-run":
            self._finish(r, "dry-run", self._plan(r, policy))
            return
        detail = dict(r.detail)
        try:
            if r.action in ("rollback", "canary_abort") and "registry" not in detail:
                detail["registry"] = self._registry_step(r, policy)
                self.store.progress(r.id, detail, detail["registry"]["note"])
                if self.on_done is not None and not detail["registry"].get("skipped"):
                    self.on_done(r.model)
                if detail["registry"].get("skipped"):
                    self._finish(r, "skipped", detail["registry"]["note"])
                    return
            if policy.hook is not None and "hook" not in detail:
                detail["hook"] = self._hook_step(r, policy, detail)
                self.store.progress(r.id, detail, f"POST: {detail['hook']}")
            if policy.topic and "topic" not in detail:
                self._topic_step(r, detail)
                detail["topic"] = True
                self.store.progress(r.id, detail, "published on the actions topic")
        except _Retry as exc:
            if self.retry.max_attempts is not None and r.attempts + 1 >= self.retry.max_attempts:
                self._finish(r, "failed", f"gave up after {r.attempts + 1} attempts: {exc}")
                return
            delay = self.retry.delay(r.attempts + 1, self.rng)
            self.store.retry(r.id, str(exc), self.clock() + delay)
            self.counters.inc(r.action, "retried")
            log.info("action %s (%s): %s; retry in %.1f s", r.id, r.action, exc, delay)
            return
        except _Fail as exc:
            self._finish(r, "failed", str(exc))
            return
        self._finish(r, "done", self._summary(r, detail))

    def _finish(self, r: Record, status: Any, result: str) -> None:
        self.store.finish(r.id, status, result)
        self.counters.inc(r.action, status)
        level = logging.WARNING if status == "failed" else logging.INFO
        log.log(level, "action %s %s of %r version %r: %s: %s", r.id, r.action, r.model,
                r.version, status, result)  # fmt: skip

    @staticmethod
    def _summary(r: Record, detail: Mapping[str, Any]) -> str:
        parts = []
        if "registry" in detail:
            parts.append(detail["registry"]["note"])
        if "hook" in detail:
            parts.append(f"POST {detail['hook']}")
        if detail.get("topic"):
            parts.append("published on the actions topic")
        return "; ".join(parts) or r.action

    # -- steps ---------------------------------------------------------------------------

    def _change(self, r: Record, policy: Policy) -> tuple[str, str | None, str | None]:
        """(alias, the version holding it now, the rollback target) read from the registry;
        the target is None for a canary abort, or when no version qualifies."""
        if self.registry is None:
            raise _Fail(f"{r.action} needs a registry ([registry] url)")
        try:
            info = self.registry.model(r.model)
        except RegistryError as exc:
            raise _Retry(f"registry: {exc}") from None
        alias = policy.alias or ""
        target = None
        if r.action == "rollback":
            found = rollback_target(info.versions, r.version)
            target = found.version if found is not None else None
        return alias, info.aliases.get(alias), target

    def _plan(self, r: Record, policy: Policy) -> str:
        steps = []
        if r.action in ("rollback", "canary_abort"):
            try:
                alias, holder, target = self._change(r, policy)
            except (_Retry, _Fail) as exc:
                steps.append(f"would change the registry, which said: {exc}")
            else:
                if holder != r.version:
                    steps.append(f"nothing: {alias} points at {holder}")
                elif r.action == "canary_abort":
                    steps.append(f"would remove alias {alias} from version {r.version}")
                elif target is not None:
                    steps.append(f"would move {alias} {r.version} -> {target}")
                else:
                    steps.append(f"would fail: no version before {r.version} with health ok")
        if policy.hook is not None:
            steps.append("would POST to the policy's url")
        if policy.topic:
            steps.append("would publish on the actions topic")
        return "; ".join(steps)

    def _registry_step(self, r: Record, policy: Policy) -> dict[str, Any]:
        alias, holder, target = self._change(r, policy)
        if holder != r.version:
            return {"skipped": True, "note": f"{alias} points at {holder}, not {r.version}"}
        if r.action == "rollback" and target is None:
            raise _Fail(f"no version before {r.version} with health ok to roll back to")
        assert self.registry is not None  # _change checked
        try:
            if target is None:  # canary_abort
                self.registry.delete_alias(r.model, alias)
                return {"alias": alias, "removed": r.version,
                        "note": f"removed alias {alias} from version {r.version}"}  # fmt: skip
            self.registry.set_alias(r.model, alias, target)
        except RegistryError as exc:
            raise _Retry(f"registry: {exc}") from None
        return {"alias": alias, "from": r.version, "to": target,
                "note": f"moved {alias} {r.version} -> {target}"}  # fmt: skip

    def document(self, r: Record, detail: Mapping[str, Any]) -> dict[str, Any]:
        doc = r.to_json()
        doc["detail"] = dict(detail)
        doc["status"] = "running"
        return doc

    def _hook_step(self, r: Record, policy: Policy, detail: Mapping[str, Any]) -> str:
        hook: Hook | None = policy.hook
        assert hook is not None
        if hook.body is not None:
            try:
                body = render_body(hook.body, r.to_json())
            except ConfigError as exc:
                raise _Fail(str(exc)) from None
        else:
            body = orjson.dumps(self.document(r, detail))
        endpoint = self._hooks[policy.name]
        outcome: Outcome = post_json(
            endpoint,
            body,
            key=r.id,
            headers=endpoint.headers,
            timeout=hook.timeout,
            now=self.clock(),
            opener=self._opener,
        )
        if outcome.result == "retry":
            raise _Retry(f"POST: {outcome.reason}")
        if outcome.result == "permanent":
            raise _Fail(f"POST refused: {outcome.reason}")
        return outcome.reason

    def _topic_step(self, r: Record, detail: Mapping[str, Any]) -> None:
        if self.publish is None:
            raise _Fail("topic = true, but there is no Kafka producer (serve runs one)")
        try:
            self.publish(f"{r.model}/{r.version}", orjson.dumps(self.document(r, detail)))
        except DriftlineError as exc:
            raise _Retry(f"actions topic: {exc}") from None
