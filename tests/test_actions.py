"""Actions: policies on windows, the action store and its audit log (real SQLite files),
the executor against a real HTTP receiver and the built-in registry, the CLI, and the
engine proposing actions from a real stream (canary aborted, production rolled back after
approval)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from kafka_io import json_messages
from receivers import Answer, HookServer
from sinks import MemorySink

from driftline import config as cfgmod
from driftline.action_store import ActionStore
from driftline.actions import Hook, Policies, Policy, Proposal, action_key, render_body
from driftline.cli import main
from driftline.connectors.sqlite_registry import SqliteRegistry
from driftline.engine import Engine
from driftline.exceptions import ActionError, ConfigError
from driftline.executor import Executor, rollback_target
from driftline.health import Health
from driftline.outbox import RetryPolicy
from driftline.registry import HEALTH_TAG, VersionInfo
from driftline.serve import Acting

SECRET = b"hook-secret"


def record(index: int, health: str, observed: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "window": {"index": index},
        "health": health,
        "observed_health": observed or health,
        "features": extra.get("features", {}),
        "dataset_drift": {"share": extra.get("share", 0.0)},
    }


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# -- policies --------------------------------------------------------------------------


def test_health_must_hold_for_the_given_windows() -> None:
    p = Policy("rt", "retrain", health=Health.CRITICAL, for_windows=2, topic=True)
    pol = Policies((p,))
    states = ["warning", "critical", "ok", "critical", "critical", "critical"]
    fired = [bool(pol.on_window("m", "1", "inference", record(i, s), None, {}))
             for i, s in enumerate(states)]  # fmt: skip
    assert fired == [False, False, False, False, True, True]  # the cooldown is the store's


def test_warning_counts_critical_too() -> None:
    pol = Policies((Policy("rt", "retrain", health=Health.WARNING, for_windows=2, topic=True),))
    out = [pol.on_window("m", "1", "inference", record(i, s), None, {}) for i, s in
           enumerate(["warning", "critical"])]  # fmt: skip
    assert not out[0] and out[1][0].reason == "health warning or worse for 2 windows"


def test_statistic_conditions() -> None:
    feats = {"amount": {"psi": 0.4}, "age": {"psi": 0.05}}
    any_feature = Policy("a", "retrain", statistic="psi", threshold=0.3, topic=True)
    age = Policy("b", "retrain", statistic="psi", feature="age", threshold=0.3, topic=True)
    share = Policy("c", "retrain", statistic="dataset_drift_share", threshold=0.4, topic=True)
    on_drift = Policy("d", "retrain", statistic="psi", threshold=0.3, kind="drift", topic=True)
    pol = Policies((any_feature, age, share, on_drift))
    out = pol.on_window("m", "1", "inference", record(0, "ok", features=feats, share=0.5), None, {})
    assert {(p.policy.name, p.reason) for p in out} == {
        ("a", "amount psi 0.4 > 0.3"),
        ("c", "dataset_drift_share 0.5 > 0.4"),
    }
    drift = record(0, "ok", features={"amount": {"psi": 0.31}})
    out = pol.on_window("m", "1", "inference", record(1, "ok"), drift, {})
    assert [p.policy.name for p in out] == ["d"]


def test_all_conditions_must_hold() -> None:
    p = Policy("x", "retrain", health=Health.WARNING, statistic="psi", threshold=0.3, topic=True)
    pol = Policies((p,))
    hot = {"amount": {"psi": 0.4}}
    assert not pol.on_window("m", "1", "s", record(0, "ok", features=hot), None, {})
    assert not pol.on_window("m", "1", "s", record(1, "warning"), None, {})
    assert pol.on_window("m", "1", "s", record(2, "warning", features=hot), None, {})


def test_canary_worse_compares_with_the_stable_versions_latest_window() -> None:
    p = Policy("abort", "canary_abort", canary_worse=True, mode="auto")
    pol = Policies((p,))
    aliases = {"production": "7", "canary": "8"}
    # no window of the stable version yet: nothing to compare with
    assert not pol.on_window("m", "8", "s", record(0, "ok", "critical"), None, aliases)
    assert not pol.on_window("m", "7", "s", record(0, "ok", "warning"), None, aliases)
    assert not pol.on_window("m", "8", "s", record(1, "ok", "warning"), None, aliases)
    out = pol.on_window("m", "8", "s", record(2, "ok", "critical"), None, aliases)
    assert len(out) == 1
    assert out[0].reason == "canary observed critical, worse than production version 7 (warning)"
    # the same condition on a version that is not the canary does not apply
    assert not pol.on_window("m", "9", "s", record(0, "ok", "critical"), None, aliases)


def test_alias_and_model_narrow_a_policy() -> None:
    p = Policy("rb", "rollback", health=Health.CRITICAL, model="fraud")
    assert p.alias == "production"
    assert p.applies("fraud", "7", {"production": "7"})
    assert not p.applies("fraud", "8", {"production": "7"})
    assert not p.applies("spam", "7", {"production": "7"})


def test_keys_are_stable_per_window_and_policy() -> None:
    # a fixed value: a key stored by an earlier run (or release) must match the replayed window
    assert action_key("p", "m", "1", "inference", 3) == "f04c01506b935786"
    variants = [("p", "m", "1", "inference", 3), ("q", "m", "1", "inference", 3),
                ("p", "n", "1", "inference", 3), ("p", "m", "2", "inference", 3),
                ("p", "m", "1", "features", 3), ("p", "m", "1", "inference", 4)]  # fmt: skip
    assert len({action_key(*v) for v in variants}) == len(variants)


def test_policy_state_survives_a_checkpoint() -> None:
    p = Policy("rt", "retrain", health=Health.CRITICAL, for_windows=3, topic=True)
    a = Policies((p,))
    for i in range(2):
        a.on_window("m", "1", "s", record(i, "critical"), None, {})
    b = Policies((p,))
    b.restore(json.loads(json.dumps(a.snapshot())))
    assert b.on_window("m", "1", "s", record(2, "critical"), None, {})
    assert a.on_window("m", "1", "s", record(2, "critical"), None, {})
    b.forget("m", "1")  # retired (models[].max_versions): its streak starts again
    assert b.snapshot() == []
    assert not b.on_window("m", "1", "s", record(3, "critical"), None, {})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give a condition"),
        ({"health": Health.OK}, "health must be 'warning' or 'critical'"),
        ({"statistic": "psi"}, "statistic and threshold go together"),
        ({"health": Health.WARNING, "kind": "both"}, "kind must be one of"),
        ({"health": Health.WARNING, "hook": Hook()}, "exactly one of url and url_env"),
        ({"health": Health.WARNING, "hook": Hook(url="ftp://x")}, "http:// or https://"),
        ({"health": Health.WARNING, "hook": Hook(url="http://x", body="{bad")}, "not valid JSON"),
        ({"health": Health.WARNING, "hook": Hook(url="http://x", body='"{modle}"')}, "{modle}"),
        ({"health": Health.WARNING, "topic": False}, "needs url"),
    ],
)
def test_bad_policies_are_refused(kwargs: dict[str, Any], message: str) -> None:
    args = {"topic": True, **kwargs}
    with pytest.raises(ConfigError, match=message):
        Policy("p", "retrain", **args)


def test_body_templates_fill_json_safely() -> None:
    body = render_body('{"model": "{model}", "why": "{reason}", "v": {"n": 1}}',
                       {"model": 'a"b', "reason": "x\ny"})  # fmt: skip
    assert orjson.loads(body) == {"model": 'a"b', "why": "x\ny", "v": {"n": 1}}
    with pytest.raises(ConfigError, match=r"unknown placeholder \{modle\}"):
        render_body('{"m": "{modle}"}', {})
    with pytest.raises(ConfigError, match="not valid JSON"):
        render_body('{"m": {model}}', {"model": "fraud"})


# -- the store --------------------------------------------------------------------------


def proposal(policy: Policy, window: int = 0, version: str = "7") -> Proposal:
    key = action_key(policy.name, "fraud", version, "inference", window)
    return Proposal(key, policy, "fraud", version, window, "critical", "health critical")


def test_store_dedups_replays_and_keeps_the_cooldown(tmp_path: Path) -> None:
    clock = Clock()
    store = ActionStore(tmp_path / "a.db", clock=clock)
    p = Policy("rt", "retrain", health=Health.CRITICAL, topic=True, cooldown=600, mode="auto")
    assert store.propose(proposal(p, 0)) == "created"
    assert store.propose(proposal(p, 0)) == "duplicate"  # the same window, replayed
    clock.t += 599
    assert store.propose(proposal(p, 1)) == "cooldown"
    assert store.propose(proposal(p, 1, version="8")) == "created"  # per model version
    clock.t += 1
    assert store.propose(proposal(p, 2)) == "created"
    assert [(r.window, r.version) for r in store.recent()] == [(2, "7"), (1, "8"), (0, "7")]
    assert {r.status for r in store.recent()} == {"queued"}
    store.close()


def test_approval_and_rejection_are_audited(tmp_path: Path) -> None:
    store = ActionStore(tmp_path / "a.db")
    p = Policy("rb", "rollback", health=Health.CRITICAL)  # mode approve by default
    a, b = proposal(p, 0), proposal(p, 1, version="8")
    store.propose(a)
    store.propose(b)
    assert store.due(1e12) == []  # pending: not runnable
    with pytest.raises(ActionError, match="at least 6 characters"):
        store.decide(a.key[:3], True, "alice")
    with pytest.raises(ActionError, match="no action 'ffffffff'"):
        store.decide("ffffffff", True, "alice")
    r = store.decide(a.key[:8], True, "alice", "looked at the dashboard")
    assert r.status == "approved" and [x.id for x in store.due(1e12)] == [a.key]
    store.decide(b.key, False, "bob")
    with pytest.raises(ActionError, match="is rejected, not pending"):
        store.decide(b.key, True, "bob")
    store.close()
    again = ActionStore(tmp_path / "a.db")  # another process reads the same file
    events_ = [(e.event, e.actor, e.detail) for e in again.audit(a.key)]
    assert events_ == [
        ("proposed", "engine", "approve: health critical"),
        ("approved", "alice", "looked at the dashboard"),
    ]
    assert again.get(b.key).status == "rejected"
    again.close()


# -- the executor -----------------------------------------------------------------------


def registry_with(tmp_path: Path, versions: list[str], **aliases: str) -> SqliteRegistry:
    reg = SqliteRegistry(tmp_path / "registry.db")
    for v in versions:
        reg.register("fraud", v, None)
    for alias, v in aliases.items():
        reg.set_alias("fraud", alias, v)
    return reg


def executor(store: ActionStore, policies: tuple[Policy, ...], reg: Any, **kw: Any) -> Executor:
    return Executor(
        store,
        policies,
        reg,
        retry=RetryPolicy(base=0.01, cap=0.02, max_attempts=kw.pop("max_attempts", None)),
        rng=random.Random(1),
        environ={"HOOK_SECRET": SECRET.decode()},
        **kw,
    )


def run_until_final(ex: Executor, key: str, tries: int = 200) -> str:
    import time

    for _ in range(tries):
        ex.run_once()
        status = ex.store.get(key).status
        if status not in ("queued", "approved"):
            return status
        time.sleep(0.01)
    return ex.store.get(key).status


def test_retrain_posts_the_templated_body_signed_once_after_an_outage(tmp_path: Path) -> None:
    hook = HookServer(SECRET)
    body = '{"pipeline": "train-{model}", "from_version": "{version}", "action": "{id}"}'
    p = Policy("rt", "retrain", mode="auto", health=Health.CRITICAL,
               hook=Hook(hook.url, secret_env="HOOK_SECRET", body=body))  # fmt: skip
    store = ActionStore(tmp_path / "a.db")
    prop = proposal(p)
    store.propose(prop)
    ex = executor(store, (p,), None)
    ex.run_once()  # the receiver is down: retried later
    assert store.get(prop.key).status == "queued" and store.get(prop.key).attempts == 1
    hook.answer(Answer(503))
    with hook:
        assert run_until_final(ex, prop.key) == "done"
    got = hook.received()
    assert [r.answered for r in got] == [503, 200]
    assert all(r.signed and r.key == prop.key for r in got)
    assert got[-1].json() == {"pipeline": "train-fraud", "from_version": "7", "action": prop.key}
    assert hook.delivered() == {prop.key: 1}
    assert ex.counters.snapshot() == {("retrain", "retried"): 2, ("retrain", "done"): 1}
    events_ = [e.event for e in store.audit(prop.key)]
    assert events_ == ["proposed", "retry", "retry", "step", "done"]


def test_a_trigger_token_comes_from_the_environment(tmp_path: Path) -> None:
    """``headers_env``: e.g. an Airflow or GitHub token, read from a variable, sent as the
    header, kept out of the recorded result."""
    with HookServer() as hook:
        p = Policy("rt", "retrain", mode="auto", health=Health.CRITICAL,
                   hook=Hook(hook.url, headers_env={"Authorization": "PIPELINE_AUTH"}))  # fmt: skip
        hook.answer(Answer(403, b"token Bearer gh-token-123456 lacks scope"))
        store = ActionStore(tmp_path / "a.db")
        store.propose(proposal(p))
        ex = Executor(store, (p,), None, retry=RetryPolicy(base=0.01, cap=0.02),
                      environ={"PIPELINE_AUTH": "Bearer gh-token-123456"})  # fmt: skip
        assert run_until_final(ex, proposal(p).key) == "failed"
        [req] = hook.received()
    assert req.headers["Authorization"] == "Bearer gh-token-123456"
    result = store.get(proposal(p).key).result
    assert result is not None and "gh-token-123456" not in result and "***" in result
    with pytest.raises(ConfigError, match=r"\$PIPELINE_AUTH, which is not set"):
        Executor(store, (p,), None, environ={})


def test_a_refused_trigger_fails_the_action(tmp_path: Path) -> None:
    with HookServer() as hook:
        p = Policy("rt", "retrain", mode="auto", health=Health.CRITICAL, hook=Hook(hook.url))
        hook.answer(Answer(400, b"unknown pipeline"))
        store = ActionStore(tmp_path / "a.db")
        store.propose(proposal(p))
        ex = executor(store, (p,), None)
        assert run_until_final(ex, proposal(p).key) == "failed"
        assert store.get(proposal(p).key).result == "POST refused: HTTP 400: unknown pipeline"


def test_max_attempts_gives_up(tmp_path: Path) -> None:
    p = Policy(
        "rt", "retrain", mode="auto", health=Health.CRITICAL, hook=Hook(HookServer().url)
    )  # fmt: skip  (never up)
    store = ActionStore(tmp_path / "a.db")
    store.propose(proposal(p))
    ex = executor(store, (p,), None, max_attempts=3)
    assert run_until_final(ex, proposal(p).key) == "failed"
    r = store.get(proposal(p).key)
    assert r.attempts == 3 and r.result is not None and r.result.startswith("gave up after 3")


def test_rollback_moves_the_alias_to_the_previous_healthy_version(tmp_path: Path) -> None:
    reg = registry_with(tmp_path, ["5", "6", "7"], production="7")
    reg.set_tags("fraud", "6", {HEALTH_TAG: "critical"})  # never a rollback target
    with HookServer(SECRET) as hook:
        p = Policy("rb", "rollback", mode="auto", health=Health.CRITICAL, cooldown=0,
                   hook=Hook(hook.url, secret_env="HOOK_SECRET"))  # fmt: skip
        store = ActionStore(tmp_path / "a.db")
        prop = proposal(p)
        store.propose(prop)
        ex = executor(store, (p,), reg)
        assert run_until_final(ex, prop.key) == "done"
        assert reg.model("fraud").aliases == {"production": "5"}
        (note,) = hook.received()
        doc = note.json()
        assert isinstance(doc, dict) and note.signed and note.key == prop.key
        assert doc["action"] == "rollback" and doc["detail"]["registry"]["to"] == "5"
        assert store.get(prop.key).result == "moved production 7 -> 5; POST HTTP 200"
        # approved again by mistake after a restart: the alias is elsewhere, nothing moves
        again = proposal(p, window=9)
        assert store.propose(again) == "created"
        assert run_until_final(ex, again.key) == "skipped"
        assert reg.model("fraud").aliases == {"production": "5"}


def test_rollback_without_a_healthy_previous_version_fails(tmp_path: Path) -> None:
    reg = registry_with(tmp_path, ["6", "7"], production="7")
    reg.set_tags("fraud", "6", {HEALTH_TAG: "warning"})
    p = Policy("rb", "rollback", mode="auto", health=Health.CRITICAL)
    store = ActionStore(tmp_path / "a.db")
    store.propose(proposal(p))
    assert run_until_final(executor(store, (p,), reg), proposal(p).key) == "failed"
    assert reg.model("fraud").aliases == {"production": "7"}
    assert store.get(proposal(p).key).result == "no version before 7 with health ok to roll back to"


def test_rollback_target_order() -> None:
    def v(version: str, created: float, health: str | None = None) -> VersionInfo:
        return VersionInfo(version, None, created, {HEALTH_TAG: health} if health else {})

    versions = [v("10", 3.0), v("9", 2.0, "ok"), v("2", 1.0), v("11", 3.0, "critical")]
    assert rollback_target(versions, "11") == versions[0]  # same time: by number, 10 < 11
    assert rollback_target(versions, "10") == versions[1]
    assert rollback_target(versions, "2") is None
    assert rollback_target(versions, "12") is None


def test_canary_abort_removes_the_alias(tmp_path: Path) -> None:
    reg = registry_with(tmp_path, ["7", "8"], production="7", canary="8")
    store = ActionStore(tmp_path / "a.db")
    published: list[tuple[str, bytes]] = []
    p = Policy("abort", "canary_abort", mode="auto", canary_worse=True, topic=True)
    prop = proposal(p, version="8")
    store.propose(prop)
    ex = executor(store, (p,), reg, publish=lambda k, v: published.append((k, v)))
    assert run_until_final(ex, prop.key) == "done"
    assert reg.model("fraud").aliases == {"production": "7"}
    ((key, value),) = published
    doc = orjson.loads(value)
    assert (
        key == "fraud/8" and doc["id"] == prop.key and doc["detail"]["registry"]["removed"] == "8"
    )


def test_dry_run_changes_nothing_and_records_the_plan(tmp_path: Path) -> None:
    reg = registry_with(tmp_path, ["6", "7"], production="7")
    with HookServer() as hook:
        p = Policy("rb", "rollback", mode="dry-run", health=Health.CRITICAL, hook=Hook(hook.url))
        store = ActionStore(tmp_path / "a.db")
        store.propose(proposal(p))
        assert run_until_final(executor(store, (p,), reg), proposal(p).key) == "dry-run"
        assert hook.received() == []
    assert reg.model("fraud").aliases == {"production": "7"}
    plan = store.get(proposal(p).key).result
    assert plan == "would move production 7 -> 6; would POST to the policy's url"


# -- config and CLI ---------------------------------------------------------------------


def write_config(tmp: Path, data: Path, actions: str, registry: bool = True) -> Path:
    path = tmp / "driftline.toml"
    path.write_text(
        f"[state]\ndir = '{tmp / 'state'}'\n[window]\nsize = 2000\n[health]\nhysteresis = 1\n"
        + (f"[registry]\nurl = 'sqlite:///{tmp / 'registry.db'}'\n" if registry else "")
        + f"[[models]]\nname = 'fraud'\nbaseline = '{data / 'fraud.dlb'}'\n"
        + actions
    )
    return path


def test_config_reads_policies(data: Path, tmp_path: Path) -> None:
    path = write_config(tmp_path, data, """
[actions]
max_attempts = 4
[[actions.policies]]
name = "abort"
action = "canary_abort"
canary_worse = true
mode = "auto"
[[actions.policies]]
name = "rollback"
action = "rollback"
health = "critical"
for_windows = 2
cooldown = "30m"
url = "http://serving:8080/rollback"
secret_env = "SERVING_SECRET"
[[actions.policies]]
name = "retrain"
health = "warning"
statistic = "psi"
feature = "amount"
threshold = 0.25
topic = true
body = '{"model": "{model}"}'
url_env = "PIPELINE_URL"
""")  # fmt: skip
    cfg = cfgmod.load(path)
    abort, rollback, retrain = cfg.actions.policies
    assert (abort.action, abort.alias, abort.mode, abort.canary_worse) == (
        "canary_abort", "canary", "auto", True)  # fmt: skip
    assert (rollback.alias, rollback.health, rollback.for_windows, rollback.cooldown) == (
        "production", Health.CRITICAL, 2, 1800.0)  # fmt: skip
    assert rollback.mode == "approve" and rollback.hook is not None
    assert rollback.hook.secret_env == "SERVING_SECRET"
    assert retrain.action == "retrain" and retrain.threshold == 0.25 and retrain.topic
    assert cfg.actions.max_attempts == 4 and cfg.actions.topic
    assert cfg.kafka.topics.actions == "driftline.actions"


@pytest.mark.parametrize(
    ("actions", "registry", "message"),
    [
        ("[[actions.policies]]\nname='x'\naction='rollback'\nhealth='critical'\n", False,
         r"actions.policies\[0\]: rollback needs the model registry"),
        ("[[actions.policies]]\nname='x'\nhealth='critical'\ntopic=true\nspeed=1\n", True,
         r"actions.policies\[0\].speed: unknown key"),
        ("[[actions.policies]]\nname='x'\nhealth='critical'\ntopic=true\nmode='yolo'\n", True,
         r"actions.policies\[0\].mode must be one of"),
        ("[[actions.policies]]\nname='x'\nhealth='bad'\ntopic=true\n", True,
         r"actions.policies\[0\].health must be 'warning' or 'critical'"),
        ("[[actions.policies]]\nname='x'\nhealth='critical'\ntopic=true\nmodel='spam'\n", True,
         r"actions.policies\[0\].model: 'spam' is not a configured model"),
        ("[[actions.policies]]\nname='x'\nstatistic='psi'\nthreshold='high'\ntopic=true\n", True,
         r"actions.policies\[0\].threshold must be a number"),
        ("[[actions.policies]]\nname='x'\nhealth='critical'\nsecret_env='S'\ntopic=true\n", True,
         r"secret_env, headers, headers_env, body and timeout need url"),
        ("[[actions.policies]]\nname='x'\nhealth='critical'\ntopic=true\n"
         "[[actions.policies]]\nname='x'\nhealth='warning'\ntopic=true\n", True,
         r"actions.policies\[1\].name: policy 'x' is configured twice"),
    ],
)  # fmt: skip
def test_config_errors_name_the_key(
    data: Path, tmp_path: Path, actions: str, registry: bool, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        cfgmod.load(write_config(tmp_path, data, actions, registry))


def test_cli_lists_shows_approves_and_rejects(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, data, "")
    assert main(["actions", "list", "--config", str(path)]) == 2
    assert "no action store yet" in capsys.readouterr().err
    store = ActionStore(tmp_path / "state" / "actions.db")
    p = Policy("rb", "rollback", health=Health.CRITICAL)
    a, b = proposal(p, 0), proposal(p, 1, version="8")
    store.propose(a)
    store.propose(b)
    cfg = ["--config", str(path)]
    assert main(["actions", "list", *cfg, "--status", "pending", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [x["id"] for x in listed] == [b.key, a.key]
    assert main(["actions", "approve", a.key[:7], *cfg, "--by", "alice"]) == 0
    assert (
        capsys.readouterr().out.strip() == f"action {a.key} (rollback of fraud version 7) approved"
    )
    assert main(["actions", "reject", b.key, "--db", str(store.path), "--note", "a test"]) == 0
    assert main(["actions", "approve", b.key, *cfg]) == 2
    assert f"action {b.key} is rejected, not pending" in capsys.readouterr().err
    assert main(["actions", "show", a.key, *cfg]) == 0
    out = capsys.readouterr().out
    assert f"action {a.key}: rollback of fraud version 7, approved" in out
    assert "approved  by alice" in out
    assert main(["actions", "list", "--db", str(tmp_path / "nope.db")]) == 2
    store.close()


# -- the engine, end to end without Kafka ----------------------------------------------


def test_engine_aborts_a_drifting_canary_and_rolls_production_back_after_approval(
    data: Path, tmp_path: Path
) -> None:
    path = write_config(tmp_path, data, """
[kafka.topics]
inference = "inf"
[[actions.policies]]
name = "abort-canary"
action = "canary_abort"
canary_worse = true
mode = "auto"
[[actions.policies]]
name = "rollback"
action = "rollback"
health = "critical"
for_windows = 1
""")  # fmt: skip
    cfg = cfgmod.load(path)
    reg = registry_with(tmp_path, ["6", "7", "8"], production="7", canary="8")
    table = pq.read_table(data / "serving.parquet")
    calm, drifting = table.slice(0, 4000), table.slice(6000, 6000)

    sink = MemorySink()
    acting = Acting(cfg, reg, sink)
    acting.executor.poll_interval = 0.05
    engine = Engine(cfg, sink, listener=acting)
    acting.start()
    try:
        engine.process(json_messages(calm, 0, version="7"))  # production: two calm windows
        engine.process(json_messages(drifting, 4000, version="8"))  # the canary drifts
        store = acting.store
        (abort,) = store.recent()
        assert (abort.action, abort.version, abort.policy) == ("canary_abort", "8", "abort-canary")
        assert _wait(lambda: store.get(abort.id).status == "done")
        assert reg.model("fraud").aliases == {"production": "7"}

        engine.process(json_messages(drifting, 10_000, version="7"))  # now production degrades
        (rollback,) = store.recent("pending")
        assert (rollback.action, rollback.version) == ("rollback", "7")
        assert reg.model("fraud").aliases == {"production": "7"}  # waits for approval
        assert main(["actions", "approve", rollback.id, "--config", str(path)]) == 0
        assert _wait(lambda: store.get(rollback.id).status == "done")
        assert reg.model("fraud").aliases == {"production": "6"}
        # later critical windows of version 7 are in the cooldown: nothing new
        engine.process(json_messages(drifting, 16_000, version="7"))
        assert len(store.recent()) == 2
        assert acting.counters.snapshot()[("rollback", "cooldown")] >= 1
    finally:
        acting.close()
        engine.close()
        reg.close()


def _wait(condition: Any, timeout: float = 10.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False
