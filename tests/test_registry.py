"""The built-in registry (a real SQLite file): versions, aliases and tags; the CLI; the
engine resolving baselines through it and writing health back."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from kafka_io import events
from sinks import MemorySink

from driftline import config as cfgmod
from driftline.cli import main
from driftline.connectors.sqlite_registry import SqliteRegistry
from driftline.engine import ConfigBaselines, Engine, Messages
from driftline.events import JSON
from driftline.exceptions import BaselineError, ConfigError, RegistryError
from driftline.registry import ENV, HealthTags, RegistryBaselines, open_registry


def test_versions_aliases_and_tags_persist(tmp_path: Path) -> None:
    path = tmp_path / "reg.db"
    reg = SqliteRegistry(path)
    reg.register("fraud", "7", "/b/7.dlb")
    reg.register("fraud", "8", "/b/8.dlb")
    reg.set_alias("fraud", "production", "7")
    reg.set_alias("fraud", "canary", "8")
    reg.set_alias("fraud", "production", "8")
    reg.delete_alias("fraud", "canary")
    reg.set_tags("fraud", "8", {"driftline.health": "warning", "owner": "risk"})
    reg.set_tags("fraud", "8", {"driftline.health": "ok"})
    reg.close()

    again = SqliteRegistry(path)  # a new connection reads what the first wrote
    info = again.model("fraud")
    assert [v.version for v in info.versions] == ["7", "8"]
    assert info.aliases == {"production": "8"}
    assert info.versions[1].tags == {"driftline.health": "ok", "owner": "risk"}
    assert again.baseline("fraud", "7") == "/b/7.dlb"
    assert again.baseline("fraud", "9") is None
    with pytest.raises(RegistryError, match="version '9' is not registered"):
        again.set_alias("fraud", "production", "9")
    with pytest.raises(RegistryError, match="'spam' is not in the registry"):
        again.model("spam")
    again.close()
    # the file is plain SQLite: any tool can read it
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version FROM aliases WHERE alias = 'production'").fetchone() == (
            "8",
        )


def test_registry_urls(tmp_path: Path) -> None:
    reg = open_registry("sqlite:///reg.db", tmp_path)
    assert reg.url == f"sqlite:///{tmp_path / 'reg.db'}"
    reg.close()
    mlflow = open_registry("mlflow+http://127.0.0.1:5000/")  # not contacted until used
    assert mlflow.url == "mlflow+http://127.0.0.1:5000"
    mlflow.close()
    with pytest.raises(ConfigError, match=r"expected sqlite:///path\.db, mlflow\+http://"):
        open_registry("postgres://x")
    with pytest.raises(ConfigError, match="expected sqlite"):
        open_registry("mlflow+ftp://x")


def test_cli_register_alias_show(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'reg.db'}"
    base = str(data / "fraud.dlb")
    assert main(["registry", "register", "fraud", "7", "--baseline", base, "--registry", url]) == 0
    monkeypatch.setenv(ENV, url)  # the environment variable names the registry too
    assert main(["registry", "alias", "fraud", "production", "7"]) == 0
    capsys.readouterr()
    assert main(["registry", "show", "fraud", "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["aliases"] == {"production": "7"}
    assert shown["versions"][0]["baseline"] == str(Path(base).resolve())
    assert main(["registry", "show", "fraud"]) == 0
    assert "version 7 [production]: health -" in capsys.readouterr().out

    # failures: exit 2 with the reason
    assert main(["registry", "alias", "fraud", "canary", "8"]) == 2
    assert "version '8' is not registered" in capsys.readouterr().err
    bad = ["registry", "register", "fraud", "8", "--baseline", str(tmp_path / "none.dlb")]
    assert main(bad) == 2
    assert "no such baseline file" in capsys.readouterr().err
    monkeypatch.delenv(ENV)
    assert main(["registry", "show", "fraud"]) == 2
    assert "no registry" in capsys.readouterr().err


def write_config(tmp: Path, extra: str = "") -> Path:
    path = tmp / "driftline.toml"
    path.write_text(
        "[kafka.topics]\ninference = 'inf'\n"
        f"[state]\ndir = '{tmp / 'state'}'\n[window]\nsize = 2000\n[health]\nhysteresis = 2\n"
        f"{extra}[[models]]\nname = 'fraud'\n"
    )
    return path


def test_config_needs_a_baseline_or_a_registry(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="baseline is required"):
        cfgmod.load(write_config(tmp_path))
    cfg = cfgmod.load(write_config(tmp_path, "[registry]\nurl = 'sqlite:///reg.db'\n"))
    assert cfg.registry == "sqlite:///reg.db"
    with pytest.raises(ConfigError, match=r"registry\.url must be"):
        cfgmod.load(write_config(tmp_path, "[registry]\nurl = 'reg.db'\n"))


def test_engine_resolves_baselines_and_writes_health(data: Path, tmp_path: Path) -> None:
    """No baseline in the config: the registry links it; the drifting serving data move the
    version's health, and the registry's tags follow every change."""
    cfg = cfgmod.load(write_config(tmp_path, "[registry]\nurl = 'sqlite:///reg.db'\n"))
    reg = open_registry(cfg.registry or "", cfg.path.parent)
    link = ["registry", "register", "fraud", "7", "--baseline", str(data / "fraud.dlb")]
    assert main([*link, "--registry", reg.url]) == 0
    sink = MemorySink()
    changes = []
    tags = HealthTags(reg)

    def on_change(model: str, version: str, change: object) -> None:
        changes.append(change)
        tags(model, version, change)  # type: ignore[arg-type]

    engine = Engine(cfg, sink, RegistryBaselines(reg, ConfigBaselines(cfg)), on_change=on_change)
    values = [orjson.dumps(e) for e in events(pq.read_table(data / "serving.parquet"))]
    n = len(values)
    engine.process(Messages("inf", 0, list(range(n)), values, [JSON] * n, [0.0] * n))
    engine.close()
    assert sink.records, "the registry's baseline was not used"
    assert not sink.dead
    assert changes, "the example's serving data drift: health must change"
    info = reg.model("fraud")
    got = info.versions[0].tags
    assert got["driftline.health"] == str(changes[-1].current)
    assert got["driftline.reason"] == "; ".join(changes[-1].reasons)[:500]
    assert got["driftline.updated"].endswith("+00:00")

    # a version known only to the config file is registered on its first health change
    HealthTags(reg)("fraud", "9", changes[-1])
    assert reg.model("fraud").versions[-1].version == "9"
    reg.close()


def test_registry_baselines_are_confined_to_baseline_dirs(
    data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A path from the registry outside ``[registry] baseline_dirs`` (default: the config's
    directory) is refused, links followed: its events are dead-lettered as having no
    baseline, and the file is never read."""
    import shutil

    inside = tmp_path / "baselines"
    inside.mkdir()
    shutil.copy(data / "fraud.dlb", inside / "fraud.dlb")
    (inside / "sneaky.dlb").symlink_to(data / "fraud.dlb")  # a link out of the directory
    cfg = cfgmod.load(write_config(tmp_path, "[registry]\nurl = 'sqlite:///reg.db'\n"))
    assert cfg.baseline_dirs == (tmp_path,)  # the default
    cfg = cfgmod.load(
        write_config(
            tmp_path, "[registry]\nurl = 'sqlite:///reg.db'\nbaseline_dirs = ['baselines']\n"
        )
    )
    assert cfg.baseline_dirs == (inside,)
    reg = open_registry(cfg.registry or "", cfg.path.parent)
    reg.register("fraud", "7", str(inside / "fraud.dlb"))
    reg.register("fraud", "8", str(data / "fraud.dlb"))  # outside
    reg.register("fraud", "9", str(inside / "sneaky.dlb"))
    reg.register("fraud", "10", str(inside / ".." / ".." / data.name / "fraud.dlb"))
    resolver = RegistryBaselines(reg, ConfigBaselines(cfg), cfg.baseline_dirs)
    assert resolver.resolve("fraud", "7") is not None
    for version in ("8", "9", "10"):
        with pytest.raises(BaselineError, match=r"outside \[registry\] baseline_dirs"):
            resolver.resolve("fraud", version)
    sink = MemorySink()
    engine = Engine(cfg, sink, resolver)
    table = pq.read_table(data / "serving.parquet").slice(0, 100)
    values = [orjson.dumps(e) for e in events(table, version="8")]
    n = len(values)
    engine.process(Messages("inf", 0, list(range(n)), values, [JSON] * n, [0.0] * n))
    engine.close()
    assert len(sink.dead) == n and {d.code for d, _ in sink.dead} == {"no_baseline"}
    assert "outside [registry] baseline_dirs" in caplog.text
    reg.close()


def test_a_registry_that_is_down_dead_letters_a_new_versions_events(
    data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Resolving a new version's baseline while the registry (here MLflow on a port nobody
    listens on) is down is no crash: its events are dead-lettered and counted."""
    from brokers import free_port

    cfg = cfgmod.load(write_config(tmp_path, "[registry]\nurl = 'sqlite:///reg.db'\n"))
    reg = open_registry(f"mlflow+http://127.0.0.1:{free_port()}?timeout=1", tmp_path)
    engine = Engine(cfg, MemorySink(), RegistryBaselines(reg, ConfigBaselines(cfg)))
    values = [orjson.dumps(e) for e in events(pq.read_table(data / "serving.parquet").slice(0, 50))]
    n = len(values)
    engine.process(Messages("inf", 0, list(range(n)), values, [JSON] * n, [0.0] * n))
    engine.close()
    assert engine.counters.invalid["no_baseline"] == n
    assert "no baseline:" in caplog.text
    reg.close()
