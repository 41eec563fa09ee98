"""The MLflow backend of the registry against a real ``mlflow server`` (SQLite store, one per
module): versions as MLflow numbers them, aliases, tags, baselines; what driftline writes
read back through MLflow's own REST API; the CLI; errors. Each test uses its own model."""

from __future__ import annotations

import json
import logging
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from brokers import free_port
from kafka_io import events, json_messages
from mlflow_server import mlflow_server
from sinks import MemorySink

from driftline import baseline as bl
from driftline import config as cfgmod
from driftline.action_store import ActionStore
from driftline.actions import Policy, Proposal, action_key
from driftline.baseline import Baseline
from driftline.cli import main
from driftline.connectors.mlflow_registry import MlflowError, MlflowRegistry
from driftline.engine import ConfigBaselines, Engine, Messages
from driftline.events import JSON
from driftline.exceptions import ConfigError, RegistryError, UnknownVersion
from driftline.executor import Executor
from driftline.health import Change, Health
from driftline.registry import HealthTags, RegistryBaselines, open_registry, register


@pytest.fixture(scope="module")
def server(mlflow_exe: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The http:// address of a real MLflow tracking server."""
    with mlflow_server(mlflow_exe, tmp_path_factory.mktemp("mlflow")) as address:
        yield address


@pytest.fixture
def url(server: str) -> str:
    return "mlflow+" + server


@pytest.fixture
def reg(url: str) -> Iterator[MlflowRegistry]:
    registry = MlflowRegistry(url)
    yield registry
    registry.close()


def rest(server: str, method: str, endpoint: str, **params: str) -> dict[str, Any]:
    """MLflow's own REST API, without driftline: GET with a query, POST with a JSON body."""
    url = f"{server}/api/2.0/mlflow/{endpoint}"
    data = None
    if method == "GET":
        url += "?" + urllib.parse.urlencode(params)
    else:
        data = json.dumps(params).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def rest_error(server: str, method: str, endpoint: str, **params: str) -> dict[str, Any]:
    with pytest.raises(urllib.error.HTTPError) as caught:
        rest(server, method, endpoint, **params)
    return json.loads(caught.value.read())  # type: ignore[no-any-return]


def change(current: Health, *reasons: str) -> Change:
    return Change(previous=Health.OK, current=current, window=3, reasons=reasons)


def test_versions_aliases_and_tags_round_trip(reg: MlflowRegistry, url: str) -> None:
    started = time.time()
    reg.register("rt", "1", "/b/1.dlb")
    reg.register("rt", "2", "/b/2.dlb")
    reg.set_alias("rt", "production", "1")
    reg.set_alias("rt", "canary", "2")
    reg.set_alias("rt", "production", "2")
    reg.delete_alias("rt", "canary")
    reg.delete_alias("rt", "canary")  # deleting what is not there is no error
    reg.set_tags("rt", "2", {"driftline.health": "warning", "owner": "risk"})
    reg.set_tags("rt", "2", {"driftline.health": "ok"})

    again = MlflowRegistry(url)  # a second client reads what the first wrote
    info = again.model("rt")
    assert info.name == "rt"
    assert [v.version for v in info.versions] == ["1", "2"]
    assert info.aliases == {"production": "2"}
    assert [v.baseline for v in info.versions] == ["/b/1.dlb", "/b/2.dlb"]
    assert info.versions[1].tags == {"driftline.health": "ok", "owner": "risk"}
    assert info.versions[0].tags == {}  # the baseline is its own field, not a tag
    for v in info.versions:
        assert started - 5 < v.created < time.time() + 5  # ms since epoch → seconds
    assert again.baseline("rt", "1") == "/b/1.dlb"
    assert again.baseline("rt", "9") is None
    assert again.baseline("rt", "v1") is None
    assert again.baseline("no-such-model", "1") is None
    shown = info.to_json()
    assert shown["versions"][1]["created"].endswith("+00:00")


def test_versions_are_mlflow_version_numbers(reg: MlflowRegistry, server: str) -> None:
    with pytest.raises(RegistryError, match="the next version of 'num' is 1"):
        reg.register("num", "7", "/b/7.dlb")
    with pytest.raises(RegistryError, match="MLflow numbers versions 1, 2, 3"):
        reg.register("num", "v1", None)
    reg.register("num", "1", None)
    with pytest.raises(RegistryError, match="the next version of 'num' is 2"):
        reg.register("num", "3", "/b/3.dlb")
    got = rest(server, "GET", "model-versions/get", name="num", version="1")["model_version"]
    assert got["source"] == "driftline://models/num"  # a URI: MLflow refuses a bare local path
    assert "tags" not in got

    # a version the training pipeline registered with MLflow: register links the baseline
    # and leaves the version as it is
    rest(server, "POST", "model-versions/create", name="num", source="s3://models/num/2")
    reg.register("num", "2", "/b/2.dlb")
    reg.register("num", "2", "/b/2-rebuilt.dlb")  # registering again moves the link
    got = rest(server, "GET", "model-versions/get", name="num", version="2")["model_version"]
    assert got["source"] == "s3://models/num/2"
    assert got["tags"] == [{"key": "driftline.baseline", "value": "/b/2-rebuilt.dlb"}]
    reg.register("num", "2", None)  # as the built-in registry: no baseline unlinks it
    assert reg.baseline("num", "2") is None
    assert [v.version for v in reg.model("num").versions] == ["1", "2"]

    # MLflow never reuses a deleted version's number, and does not say which one it gives
    # next: asked for 3 after 3 was deleted, it gives 4, which driftline keeps (deleting it
    # would use up another number on every try) and names
    rest(server, "POST", "model-versions/create", name="num", source="s3://models/num/3")
    rest(server, "DELETE", "model-versions/delete", name="num", version="3")
    with pytest.raises(RegistryError, match="numbered the new version 4, not 3"):
        reg.register("num", "3", "/b/3.dlb")
    assert reg.baseline("num", "4") == "/b/3.dlb"
    with pytest.raises(RegistryError, match="it was deleted, and MLflow never reuses"):
        reg.register("num", "3", "/b/3.dlb")
    reg.register("num", "5", None)
    assert [v.version for v in reg.model("num").versions] == ["1", "2", "4", "5"]


def test_health_tags_are_visible_through_mlflow(
    reg: MlflowRegistry, server: str, caplog: pytest.LogCaptureFixture
) -> None:
    reg.register("tags", "1", None)
    HealthTags(reg)("tags", "1", change(Health.WARNING, "amount: psi 0.31 > 0.2"))
    got = rest(server, "GET", "model-versions/get", name="tags", version="1")["model_version"]
    tags = {t["key"]: t["value"] for t in got["tags"]}
    assert tags["driftline.health"] == "warning"
    assert tags["driftline.reason"] == "amount: psi 0.31 > 0.2"
    assert tags["driftline.updated"].endswith("+00:00")

    # a version known only to the config file is registered on its first health change,
    # when it is the number MLflow gives next …
    HealthTags(reg)("tags", "2", change(Health.CRITICAL, "dataset drift"))
    got = rest(server, "GET", "model-versions/get", name="tags", version="2")["model_version"]
    assert {t["key"]: t["value"] for t in got["tags"]}["driftline.health"] == "critical"
    # … and otherwise the health is not written, logged, and the engine goes on
    with caplog.at_level(logging.WARNING, logger="driftline.registry"):
        HealthTags(reg)("tags", "9", change(Health.CRITICAL, "dataset drift"))
    assert "the next version of 'tags' is 3" in caplog.text
    assert [v.version for v in reg.model("tags").versions] == ["1", "2"]


def test_alias_set_and_deleted_through_mlflow(reg: MlflowRegistry, server: str) -> None:
    reg.register("alias", "1", None)
    reg.set_alias("alias", "canary", "1")
    got = rest(server, "GET", "registered-models/alias", name="alias", alias="canary")
    assert got["model_version"]["version"] == "1"
    reg.delete_alias("alias", "canary")
    error = rest_error(server, "GET", "registered-models/alias", name="alias", alias="canary")
    assert "alias canary not found" in error["message"]
    assert reg.model("alias").aliases == {}


def test_rollback_is_visible_through_mlflow(
    reg: MlflowRegistry, server: str, tmp_path: Path
) -> None:
    """The rollback action moves the alias to the previous healthy version (skipping one
    tagged critical); serving that loads models:/NAME@production sees it. A canary abort
    removes the canary alias."""
    for v in ("1", "2", "3", "4"):
        reg.register("rollback", v, None)
    reg.set_alias("rollback", "production", "3")
    reg.set_alias("rollback", "canary", "4")
    reg.set_tags("rollback", "2", {"driftline.health": "critical"})
    store = ActionStore(tmp_path / "actions.db")
    rollback = Policy("rb", "rollback", mode="auto", health=Health.CRITICAL)
    abort = Policy("abort", "canary_abort", mode="auto", canary_worse=True)
    proposals = [
        Proposal(action_key("rb", "rollback", "3", "inference", 0), rollback, "rollback", "3", 0,
                 "critical", "health critical"),
        Proposal(action_key("abort", "rollback", "4", "inference", 0), abort, "rollback", "4", 0,
                 "ok", "canary worse"),
    ]  # fmt: skip
    for prop in proposals:
        assert store.propose(prop) == "created"
    Executor(store, (rollback, abort), reg).run_once()
    assert [store.get(p.key).status for p in proposals] == ["done", "done"]
    got = rest(server, "GET", "registered-models/alias", name="rollback", alias="production")
    assert got["model_version"]["version"] == "1"
    model = rest(server, "GET", "registered-models/get", name="rollback")["registered_model"]
    assert model["aliases"] == [{"alias": "production", "version": "1"}]
    store.close()


class NoBaselines:
    def resolve(self, model: str, version: str) -> Baseline | None:
        return None


def test_baselines_resolve_through_mlflow(reg: MlflowRegistry, data: Path, server: str) -> None:
    path = data / "fraud.dlb"
    register(reg, "resolve", "1", path)  # checks the file, links its absolute path
    got = rest(server, "GET", "model-versions/get", name="resolve", version="1")
    assert got["model_version"]["tags"] == [
        {"key": "driftline.baseline", "value": str(path.resolve())}
    ]
    baselines = RegistryBaselines(reg, NoBaselines())
    found = baselines.resolve("resolve", "1")
    assert found is not None
    loaded = bl.load(path)
    assert [c.name for c in found.columns] == [c.name for c in loaded.columns]
    assert found.created == loaded.created
    assert baselines.resolve("resolve", "1") is found  # loaded once
    assert baselines.resolve("resolve", "2") is None  # not in MLflow: the fallback's answer


def test_engine_resolves_baselines_and_writes_health(data: Path, tmp_path: Path, url: str) -> None:
    """As with the built-in registry: no baseline in the config, MLflow links it, and the
    version's tags follow every health change."""
    path = tmp_path / "driftline.toml"
    path.write_text(
        "[kafka.topics]\ninference = 'inf'\n"
        f"[state]\ndir = '{tmp_path / 'state'}'\n[window]\nsize = 2000\n[health]\nhysteresis = 2\n"
        f"[registry]\nurl = '{url}'\n[[models]]\nname = 'engine'\n"
    )
    cfg = cfgmod.load(path)
    reg = open_registry(cfg.registry or "", cfg.path.parent)
    assert isinstance(reg, MlflowRegistry)
    register(reg, "engine", "1", data / "fraud.dlb")
    sink = MemorySink()
    changes: list[Change] = []
    tags = HealthTags(reg)

    def on_change(model: str, version: str, c: Change) -> None:
        changes.append(c)
        tags(model, version, c)

    engine = Engine(cfg, sink, RegistryBaselines(reg, ConfigBaselines(cfg)), on_change=on_change)
    table = pq.read_table(data / "serving.parquet")
    values = [orjson.dumps({**e, "model": "engine", "version": "1"}) for e in events(table)]
    n = len(values)
    engine.process(Messages("inf", 0, list(range(n)), values, [JSON] * n, [0.0] * n))
    engine.close()
    assert sink.records, "MLflow's baseline was not used"
    assert changes, "the example's serving data drift: health must change"
    got = reg.model("engine").versions[0].tags
    assert got["driftline.health"] == str(changes[-1].current)
    assert got["driftline.reason"] == "; ".join(changes[-1].reasons)[:500]


def test_unknown_models_and_versions(reg: MlflowRegistry) -> None:
    reg.register("known", "1", None)
    with pytest.raises(RegistryError, match=r"model 'spam' is not in the registry \(mlflow\+http"):
        reg.model("spam")
    with pytest.raises(UnknownVersion, match="model 'known' version '2' is not registered"):
        reg.set_alias("known", "production", "2")
    with pytest.raises(UnknownVersion, match="version '2' is not registered"):
        reg.set_tags("known", "2", {"owner": "risk"})
    with pytest.raises(UnknownVersion, match="model 'spam' version '1' is not registered"):
        reg.set_tags("spam", "1", {"owner": "risk"})
    with pytest.raises(UnknownVersion, match="model 'spam' version '1' is not registered"):
        reg.set_alias("spam", "production", "1")
    with pytest.raises(UnknownVersion, match="version 'v1' is not registered"):
        reg.set_alias("known", "production", "v1")
    reg.delete_alias("spam", "production")  # no model, no alias: nothing to delete


def test_mlflow_errors_name_the_url_status_and_code(reg: MlflowRegistry, url: str) -> None:
    reg.register("errors", "1", None)
    with pytest.raises(MlflowError) as caught:
        reg.set_alias("errors", "latest", "1")  # MLflow reserves it
    assert caught.value.status == 400
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    message = str(caught.value)
    assert url in message
    assert "POST /api/2.0/mlflow/registered-models/alias: HTTP 400 INVALID_PARAMETER_VALUE" in (
        message
    )
    assert "'latest' alias name (case insensitive) is reserved" in message

    wrong = MlflowRegistry(url + "/not-mlflow")  # a server, but no MLflow API there
    with pytest.raises(RegistryError, match=r"model-versions/get: HTTP 404"):
        wrong.baseline("errors", "1")


def test_names_with_quotes(reg: MlflowRegistry) -> None:
    """MLflow's search filter has no escapes for quotes: each kind of name still lists its
    own versions, and only its own."""
    names = ("o'neil", 'say "hi"', 'o\'neil "the" model', 'o_neil "the" model')
    for name in names:
        reg.register(name, "1", f"/b/{name}.dlb")
    for name in names:  # the third is searched with LIKE 'o_neil "the" model': the fourth too
        info = reg.model(name)
        assert [(v.version, v.baseline) for v in info.versions] == [("1", f"/b/{name}.dlb")]


def test_server_down_and_timeout() -> None:
    port = free_port()  # nothing listens there
    down = MlflowRegistry(f"mlflow+http://127.0.0.1:{port}")
    with pytest.raises(RegistryError, match=rf"mlflow\+http://127\.0\.0\.1:{port}: cannot connect"):
        down.model("fraud")
    with pytest.raises(RegistryError, match="is the MLflow server running"):
        down.register("fraud", "1", None)

    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        address = f"mlflow+http://127.0.0.1:{silent.getsockname()[1]}"
        slow = MlflowRegistry(f"{address}?timeout=0.3")
        assert slow.timeout == 0.3
        started = time.monotonic()
        with pytest.raises(RegistryError, match=r"no answer to GET .* within 0\.3 s"):
            slow.baseline("fraud", "1")
        assert time.monotonic() - started < 5


def test_urls() -> None:
    reg = MlflowRegistry("mlflow+https://mlflow.example.com/prefix/")
    assert reg.url == "mlflow+https://mlflow.example.com/prefix"
    assert reg.timeout == 10.0
    assert MlflowRegistry("mlflow+http://h:5000", timeout=2.5).timeout == 2.5
    for bad, message in [
        ("mlflow+http://h:5000?retries=3", "unknown option 'retries'"),
        ("mlflow+http://h:5000?timeout=soon", "timeout must be a number of seconds"),
        ("mlflow+http://h:5000?timeout=0", "timeout must be a positive number"),
        ("mlflow+http://h:5000?timeout=inf", "timeout must be a positive number"),
        ("mlflow+http://h:port", "the port must be a number"),
        ("mlflow+http://user:secret@h:5000", "without user, password"),
        ("mlflow+http://", "expected mlflow\\+http://host:port"),
    ]:
        with pytest.raises(ConfigError, match=message):
            MlflowRegistry(bad)


def test_cli_register_alias_show(
    url: str, server: str, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = str(data / "fraud.dlb")
    reg = ["--registry", url]
    assert main(["registry", "register", "cli", "1", "--baseline", base, *reg]) == 0
    assert f"registered cli version 1 ({url})" in capsys.readouterr().out
    assert main(["registry", "register", "cli", "2", "--baseline", base, *reg]) == 0
    assert main(["registry", "alias", "cli", "production", "2", *reg]) == 0
    assert main(["registry", "alias", "cli", "production", "1", *reg]) == 0  # a rollback
    capsys.readouterr()
    assert main(["registry", "show", "cli", "--format", "json", *reg]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["aliases"] == {"production": "1"}
    assert [v["version"] for v in shown["versions"]] == ["1", "2"]
    assert shown["versions"][0]["baseline"] == str(Path(base).resolve())
    assert main(["registry", "show", "cli", *reg]) == 0
    out = capsys.readouterr().out
    assert f"model cli ({url})" in out
    assert "version 1 [production]: health -" in out
    got = rest(server, "GET", "registered-models/alias", name="cli", alias="production")
    assert got["model_version"]["version"] == "1"

    # failures: exit 2 with the reason
    assert main(["registry", "alias", "cli", "canary", "8", *reg]) == 2
    assert "version '8' is not registered" in capsys.readouterr().err
    assert main(["registry", "register", "cli", "7", "--baseline", base, *reg]) == 2
    assert "the next version of 'cli' is 3" in capsys.readouterr().err
    assert main(["registry", "show", "spam", *reg]) == 2
    assert "'spam' is not in the registry" in capsys.readouterr().err
    config = tmp_path / "driftline.toml"  # the registry named by a config file
    config.write_text(
        f"[kafka.topics]\ninference = 'inf'\n[registry]\nurl = '{url}'\n[[models]]\nname = 'cli'\n"
    )
    assert main(["registry", "show", "cli", "--config", str(config)]) == 0
    assert "version 1 [production]" in capsys.readouterr().out
    down = f"mlflow+http://127.0.0.1:{free_port()}"
    assert main(["registry", "show", "cli", "--registry", down]) == 2
    assert f"MLflow registry {down}: cannot connect" in capsys.readouterr().err


def late_config(tmp_path: Path, url: str) -> cfgmod.Config:
    path = tmp_path / "driftline.toml"
    path.write_text(
        "[kafka.topics]\ninference = 'inf'\n"
        f"[state]\ndir = '{tmp_path / 'state'}'\n[window]\nsize = 1000\n"
        f"[registry]\nurl = '{url}'\nretry = '30s'\n[[models]]\nname = 'late'\n"
    )
    return cfgmod.load(path)


def late_messages(data: Path, start: int, stop: int) -> Messages:
    table = pq.read_table(data / "serving.parquet").slice(start, stop - start)
    return json_messages(table, start, model="late", version="1")


def test_a_new_version_seen_while_mlflow_is_down_is_looked_up_again_once_it_is_back(
    data: Path, tmp_path: Path, mlflow_exe: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The first events of a version arrive while MLflow is down: they are dead-lettered and
    counted, and the version is not asked for again before ``registry.retry`` has passed.
    Once MLflow is back (with the version linked) and the retry is due, its events are
    monitored."""
    port = free_port()
    cfg = late_config(tmp_path, f"mlflow+http://127.0.0.1:{port}?timeout=1")
    assert cfg.registry_retry == 30.0
    now = [0.0]
    reg = open_registry(cfg.registry or "")
    sink = MemorySink()
    engine = Engine(cfg, sink, RegistryBaselines(reg, ConfigBaselines(cfg)), clock=lambda: now[0])
    caplog.set_level(logging.INFO, "driftline.engine")
    engine.process(late_messages(data, 0, 100))  # MLflow down
    assert engine.counters.invalid["no_baseline"] == 100
    assert "cannot connect" in caplog.text and "looked up again every 30 s" in caplog.text
    store = tmp_path / "mlflow"
    store.mkdir()
    with mlflow_server(mlflow_exe, store, port=port) as address:
        up = MlflowRegistry(f"mlflow+{address}")
        register(up, "late", "1", data / "fraud.dlb")
        up.close()
        now[0] = 29.0  # not yet due: not asked again, though MLflow would answer now
        engine.process(late_messages(data, 100, 200))
        assert engine.counters.invalid["no_baseline"] == 200
        assert not engine.streams
        now[0] = 30.0
        engine.process(late_messages(data, 200, 3200))
    engine.close()
    reg.close()
    assert engine.counters.invalid["no_baseline"] == 200  # nothing more
    assert engine.counters.events[("late", "1", "inference")] == 3000
    assert [r["window"]["count"] for r in sink.records if r["kind"] == "skew"] == [1000] * 3
    assert "baseline found, monitored from now on" in caplog.text


def test_a_restore_waits_for_the_registry_that_links_its_baselines(
    data: Path, tmp_path: Path, mlflow_exe: Path
) -> None:
    """A checkpoint's version whose baseline MLflow links: resumed while MLflow is down, the
    restore raises before taking any state, and once MLflow is back the same call resumes,
    so that the records equal those of an uninterrupted run."""
    store, port = tmp_path / "mlflow", free_port()
    store.mkdir()
    cfg = late_config(tmp_path, f"mlflow+http://127.0.0.1:{port}?timeout=1")
    with mlflow_server(mlflow_exe, store, port=port):
        reg = open_registry(cfg.registry or "")
        register(reg, "late", "1", data / "fraud.dlb")
        whole, first = MemorySink(), MemorySink()
        uninterrupted = Engine(cfg, whole, RegistryBaselines(reg, ConfigBaselines(cfg)))
        uninterrupted.process(late_messages(data, 0, 3500))
        uninterrupted.close()
        stopped = Engine(cfg, first, RegistryBaselines(reg, ConfigBaselines(cfg)))
        stopped.process(late_messages(data, 0, 1500))  # window 1 open
        snap = stopped.snapshot()
        stopped.close()
    rest = MemorySink()
    resumed = Engine(cfg, rest, RegistryBaselines(reg, ConfigBaselines(cfg)))
    with pytest.raises(RegistryError, match="cannot connect"):
        resumed.restore(snap)  # MLflow down
    assert not resumed.streams and not resumed.positions and not resumed.health
    with mlflow_server(mlflow_exe, store, port=port):
        resumed.restore(snap)
        resumed.process(late_messages(data, 1500, 3500))
    resumed.close()
    reg.close()
    assert len(whole.records) == 5  # 3 skew, 2 drift: the test compares something
    assert first.records + rest.records == whole.records
