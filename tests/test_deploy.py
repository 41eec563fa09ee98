"""The deployment artifacts, offline: docker-compose.yml and everything it mounts, the
Dockerfile, the Prometheus config and alert rules (promtool), the Alertmanager config
(amtool), the Grafana dashboards (every PromQL expression through promtool) and the engine
config of the compose stack (``driftline check``).

promtool and amtool come from Debian's ``prometheus`` and ``prometheus-alertmanager``
packages; without them those tests skip (fail under ``DRIFTLINE_REQUIRE_SERVICES=1``).
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from deploy_files import (
    ALERTMANAGER_CONFIG,
    DOCKERFILE,
    DOCKERIGNORE,
    ENGINE_CONFIG,
    ENGINE_METRICS,
    OBSERVABILITY_DOC,
    PROMETHEUS_CONFIG,
    PROMETHEUS_METRICS,
    ROOT,
    RULES,
    RULES_TEST,
    TARGET_LABELS,
    Query,
    compose,
    dashboard_queries,
    dashboards,
    panels,
    queried_metrics,
    rule_queries,
    selectors,
    substitute,
    used_variables,
    variable_values,
    variables,
)
from services import missing_service

from driftline import config
from driftline.cli import main

GRAFANA_BUILTINS = {
    "__rate_interval",
    "__interval",
    "__range",
    "__data",
    "__url_time_range",
    "__all",
}


def tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing_service(f"{name} not installed (apt-get install -y {package})")
    assert path is not None
    return path


def run(*argv: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{result.args}:\n{result.stdout}\n{result.stderr}"


# --- docker-compose.yml ---------------------------------------------------------------------


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def bind_mounts(service: dict[str, Any]) -> list[tuple[Path, str]]:
    """(host path, container path) of every bind mount of a service."""
    out = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, _, rest = volume.partition(":")
            target = rest.split(":")[0]
            if source.startswith((".", "/", "~")):
                out.append((ROOT / source, target))
        elif volume.get("type") == "bind":
            out.append((ROOT / volume["source"], volume["target"]))
    return out


def named_volumes(service: dict[str, Any]) -> dict[str, str]:
    """Named volume -> container path, for every named volume a service mounts."""
    out = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, _, rest = volume.partition(":")
            if rest and not source.startswith((".", "/", "~")):
                out[source] = rest.split(":")[0]
        elif volume.get("type") == "volume":
            out[volume["source"]] = volume["target"]
    return out


def command_text(service: dict[str, Any]) -> str:
    command = service.get("command", "")
    return command if isinstance(command, str) else " ".join(command)


def test_compose_parses_and_every_image_is_pinned() -> None:
    doc = compose()
    assert {"kafka", "driftline", "producer", "prometheus", "alertmanager", "grafana"} <= set(
        doc["services"]
    )
    for name, service in doc["services"].items():
        image = service.get("image")
        if "build" in service:
            continue
        assert image, f"service {name}: neither image nor build"
        repository, _, tag = image.rpartition(":")
        pinned = "@sha256:" in image or (
            repository and "/" not in tag and tag not in ("", "latest")
        )
        assert pinned, f"service {name}: image {image!r} has no pinned tag"


def test_compose_references_only_paths_services_and_volumes_that_exist() -> None:
    doc = compose()
    declared_volumes = set(doc.get("volumes") or {})
    for name, service in doc["services"].items():
        for host, _ in bind_mounts(service):
            assert host.exists(), f"service {name} mounts {host}, which does not exist"
        for volume in named_volumes(service):
            assert volume in declared_volumes, f"service {name}: volume {volume!r} undeclared"
        env_files = service.get("env_file", [])
        for env_file in [env_files] if isinstance(env_files, str) else env_files:
            path = env_file if isinstance(env_file, str) else env_file["path"]
            assert (ROOT / path).is_file(), f"service {name}: env_file {path} missing"
        build = service.get("build")
        if build is not None:
            context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile")
            assert context.is_dir(), f"service {name}: build context {context} missing"
            assert (context / (dockerfile or "Dockerfile")).is_file()
        depends = service.get("depends_on", [])
        for other in depends if isinstance(depends, list) else list(depends):
            assert other in doc["services"], f"service {name} depends on unknown {other!r}"


def mounted_files() -> list[Path]:
    out = []
    for service in services().values():
        for host, _ in bind_mounts(service):
            out.extend(
                sorted(p for p in host.rglob("*") if p.is_file()) if host.is_dir() else [host]
            )
    return out


def test_every_mounted_config_file_parses() -> None:
    files = mounted_files()
    suffixes = {p.suffix for p in files}
    assert {".yml", ".json", ".toml"} <= suffixes, suffixes
    for path in files:
        text = path.read_text(encoding="utf-8")
        if path.suffix in (".yml", ".yaml"):
            assert list(yaml.safe_load_all(text)), path
        elif path.suffix == ".json":
            json.loads(text)
        elif path.suffix == ".toml":
            tomllib.loads(text)


def urls_in_configs() -> dict[str, list[str]]:
    """Every host:port the mounted configs point at, by the file that names it."""
    prometheus = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    targets = [
        t
        for job in prometheus["scrape_configs"]
        for sc in job.get("static_configs", [])
        for t in sc["targets"]
        if not t.startswith("localhost")
    ]
    targets += [
        t
        for am in prometheus["alerting"]["alertmanagers"]
        for sc in am["static_configs"]
        for t in sc["targets"]
    ]
    alertmanager = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    hooks = [
        urlsplit(w["url"]).netloc
        for r in alertmanager["receivers"]
        for w in r.get("webhook_configs", [])
    ]
    datasources = yaml.safe_load(
        (ROOT / "dashboards/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    engine = tomllib.loads(ENGINE_CONFIG.read_text())
    return {
        "prometheus.yml": targets,
        "alertmanager.yml": hooks,
        "grafana datasources": [urlsplit(d["url"]).netloc for d in datasources["datasources"]],
        "driftline.toml": [
            *engine["kafka"]["bootstrap_servers"].split(","),
            *(urlsplit(r["url"]).netloc for r in engine["alerts"]["receivers"]),
        ],
    }


def test_every_host_the_configs_name_is_a_compose_service() -> None:
    names = set(services())
    for where, addresses in urls_in_configs().items():
        assert addresses, where
        for address in addresses:
            host = address.rsplit(":", 1)[0]
            assert host in names, f"{where} points at {address}: no service {host!r}"


def test_the_stack_agrees_on_paths_and_ports() -> None:
    svc = services()
    engine = tomllib.loads(ENGINE_CONFIG.read_text())
    config_path = dockerfile_instructions()["CMD"][-1][-1]
    # the engine config is mounted where the image's CMD reads it, in both services
    for name in ("driftline", "producer"):
        mounts = {target: host for host, target in bind_mounts(svc[name])}
        assert mounts.get(config_path) == ENGINE_CONFIG, name
    assert config_path in command_text(svc["driftline"])
    # Prometheus scrapes the port the engine's API listens on, which compose publishes
    prometheus = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "driftline")
    assert job["static_configs"][0]["targets"] == [f"driftline:{engine['api']['port']}"]
    assert engine["api"]["host"] == "0.0.0.0"
    assert f"{engine['api']['port']}:{engine['api']['port']}" in svc["driftline"]["ports"]
    assert engine["api"]["token_env"] in svc["driftline"]["environment"]
    # the baseline is written by the producer into a volume the engine mounts too
    baseline = engine["models"][0]["baseline"]
    shared = set(named_volumes(svc["producer"]).items()) & set(
        named_volumes(svc["driftline"]).items()
    )
    assert any(baseline.startswith(target + "/") for _, target in shared), baseline
    assert f"-o {baseline}" in command_text(svc["producer"])
    assert "--rate" in command_text(svc["producer"])
    # the engine's state survives a restart
    assert engine["state"]["dir"] in named_volumes(svc["driftline"]).values()
    # the engine waits for the broker and for the baseline
    assert svc["driftline"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert svc["driftline"]["depends_on"]["producer"]["condition"] == "service_healthy"
    assert "healthcheck" in svc["kafka"] and "healthcheck" in svc["producer"]
    # Grafana: anonymous viewers, our provisioning and dashboards
    grafana = svc["grafana"]
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    provider = yaml.safe_load(
        (ROOT / "dashboards/grafana/provisioning/dashboards/driftline.yml").read_text()
    )
    grafana_mounts = dict((target, host) for host, target in bind_mounts(grafana))
    dashboards_dir = provider["providers"][0]["options"]["path"]
    assert grafana_mounts[dashboards_dir] == ROOT / "dashboards/grafana/dashboards"
    assert grafana_mounts["/etc/grafana/provisioning"] == ROOT / "dashboards/grafana/provisioning"


# --- Dockerfile ------------------------------------------------------------------------------


def dockerfile_instructions() -> dict[str, list[Any]]:
    """Instruction -> the arguments of each occurrence (JSON forms decoded)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out: dict[str, list[Any]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        args = args.strip()
        value: Any = json.loads(args) if args.startswith("[") else args
        out.setdefault(instruction.upper(), []).append(value)
    return out


def dockerignored(path: str) -> bool:
    """Whether .dockerignore keeps ``path`` (relative to the root) out of the context."""
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        options = {pattern, pattern.removeprefix("**/")}
        if any(fnmatch.fnmatchcase(p, o) for p in prefixes for o in options):
            ignored = not negate
    return ignored


def test_dockerfile_installs_the_package_and_runs_as_driftline() -> None:
    ins = dockerfile_instructions()
    assert ins["FROM"] == ["python:3.11-slim"]
    assert ins["WORKDIR"] == ["/app"]
    assert ins["EXPOSE"] == ["8080"]
    assert ins["USER"][-1] == "driftline"
    assert ins["ENTRYPOINT"] == [["driftline"]]
    assert ins["CMD"] == [["serve", "--config", "/etc/driftline/driftline.toml"]]
    installs = [r for r in ins["RUN"] if "pip install" in r]
    assert len(installs) == 1 and re.search(r"pip install \.(\s|$)", installs[0]), installs
    assert "[test]" not in installs[0]
    # every COPY source exists and is in the build context; the wheel's sources are all there
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = {"pyproject.toml", pyproject["project"]["readme"]}
    needed |= set(pyproject["tool"]["setuptools"]["package-dir"].values())
    copied = set()
    for args in ins["COPY"]:
        for source in args[:-1] if isinstance(args, list) else args.split()[:-1]:
            source = source.rstrip("/")
            assert (ROOT / source).exists(), f"COPY {source}: missing"
            assert not dockerignored(source), f"COPY {source}: excluded by .dockerignore"
            copied.add(source)
    assert needed <= copied, needed - copied


@pytest.mark.parametrize(
    "path",
    [
        ".venv",
        ".venv-mlflow",
        ".git",
        "build",
        "dist",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
        "examples/driftline-state",
        "engine/__pycache__",
        "driftline.egg-info",
    ],
)
def test_dockerignore_keeps_local_state_out_of_the_image(path: str) -> None:
    assert dockerignored(path)


# --- Prometheus and Alertmanager -------------------------------------------------------------


def test_promtool_checks_the_prometheus_config() -> None:
    promtool = tool("promtool", "prometheus")
    result = run(promtool, "check", "config", PROMETHEUS_CONFIG)
    assert_ok(result)
    assert "1 rule files found" in result.stdout + result.stderr


def test_promtool_checks_the_alert_rules() -> None:
    promtool = tool("promtool", "prometheus")
    assert_ok(run(promtool, "check", "rules", RULES))
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    assert alerts == {
        "DriftlineModelCritical",
        "DriftlineModelWarning",
        "DriftlineDatasetDriftShareHigh",
        "DriftlineNoEvents",
        "DriftlineConsumerLagHigh",
        "DriftlineDeadLetterRate",
        "DriftlineDown",
    }


def test_the_critical_alert_has_no_for_delay() -> None:
    rules = {r["alert"]: r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    assert "for" not in rules["DriftlineModelCritical"]
    assert "hysteresis" in rules["DriftlineModelCritical"]["annotations"]["description"]
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert {"summary", "description"} <= set(rule["annotations"]), name


def test_promtool_runs_the_rule_unit_tests() -> None:
    promtool = tool("promtool", "prometheus")
    assert_ok(run(promtool, "test", "rules", RULES_TEST.name, cwd=RULES_TEST.parent))
    tested = {
        case["alertname"]
        for test in yaml.safe_load(RULES_TEST.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case["exp_alerts"]
    }
    assert {"DriftlineModelCritical", "DriftlineNoEvents", "DriftlineDeadLetterRate"} <= tested


def test_amtool_checks_the_alertmanager_config() -> None:
    amtool = tool("amtool", "prometheus-alertmanager")
    assert_ok(run(amtool, "check-config", ALERTMANAGER_CONFIG))
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    assert config["route"]["group_by"] == ["alertname", "model", "version"]
    critical = [r for r in config["route"]["routes"] if 'severity="critical"' in r["matchers"]]
    assert critical and critical[0]["repeat_interval"] != config["route"]["repeat_interval"]


# --- Grafana dashboards ----------------------------------------------------------------------


def test_dashboards_parse_and_are_complete() -> None:
    boards = dashboards()
    assert set(boards) == {"fleet.json", "model.json", "engine.json"}
    uids = [b["uid"] for b in boards.values()]
    assert len(set(uids)) == len(uids) and all(uids)
    for name, board in boards.items():
        assert board["schemaVersion"] >= 36, name
        assert board["refresh"] == "10s", name
        assert board["title"].startswith("driftline"), name
        ds = variables(board)["datasource"]
        assert ds["type"] == "datasource" and ds["query"] == "prometheus", name
        ids = [p["id"] for p in panels(board)]
        assert len(set(ids)) == len(ids), f"{name}: duplicate panel ids"
        grids = [p["gridPos"] for p in board["panels"]]
        for i, a in enumerate(grids):
            for b in grids[i + 1 :]:
                overlap = (
                    a["x"] < b["x"] + b["w"]
                    and b["x"] < a["x"] + a["w"]
                    and a["y"] < b["y"] + b["h"]
                    and b["y"] < a["y"] + a["h"]
                )
                assert not overlap, f"{name}: panels overlap at {a} and {b}"
        defined = set(variables(board)) | GRAFANA_BUILTINS
        for panel in panels(board):
            where = f"{name}: panel {panel.get('title')!r}"
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, where
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
            assert panel["targets"], f"{where}: no targets"
            for t in panel["targets"]:
                assert t["expr"].strip(), f"{where}: empty expression"
                assert t["datasource"]["uid"] == "${datasource}", where
            undefined = used_variables(json.dumps(panel)) - defined
            assert not undefined, f"{where}: undefined variables {undefined}"


def test_every_dashboard_expression_is_valid_promql(tmp_path: Path) -> None:
    """promtool has no expression checker: the expressions, Grafana variables substituted
    (custom variables by their first value), go into a rules file as recording rules, which
    ``promtool check rules`` parses. (rules.yml has its own check above.)"""
    promtool = tool("promtool", "prometheus")
    first = {
        name: {k: v[0] for k, v in variable_values(board).items()}
        for name, board in dashboards().items()
    }
    queries = [
        Query(q.where, substitute(q.expr, first[q.where.split(":")[0]]))
        for q in dashboard_queries()
    ]
    assert len(queries) > 40
    rules = [{"record": f"check:expression_{i}", "expr": q.expr} for i, q in enumerate(queries)]
    path = tmp_path / "expressions.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = run(promtool, "check", "rules", path)
    if result.returncode != 0:
        named = re.findall(r"expression_(\d+)\b", result.stdout + result.stderr)
        culprits = [f"{queries[int(i)].where}: {queries[int(i)].expr}" for i in set(named)]
        pytest.fail(f"{result.stdout}{result.stderr}\n" + "\n".join(culprits))
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout


def allowed_metrics() -> dict[str, dict[str, tuple[str, ...] | None]]:
    out = {}
    for name, labels in {**ENGINE_METRICS, **PROMETHEUS_METRICS}.items():
        out[name] = {**labels, **dict.fromkeys(TARGET_LABELS)}
    return out


def test_queries_use_only_exported_metrics_labels_and_values() -> None:
    """Every metric a dashboard or rule queries is one the engine exports (or Prometheus
    makes), every label matcher names a label of that metric, and a label with a closed set
    of values is only matched against those (custom variables expanded)."""
    known = allowed_metrics()
    custom = {}
    for name, board in dashboards().items():
        custom[name] = variable_values(board)
    assert queried_metrics() <= set(ENGINE_METRICS), queried_metrics() - set(ENGINE_METRICS)
    for q in [*dashboard_queries(), *rule_queries()]:
        values_of = custom.get(q.where.split(":")[0], {})
        for metric, matchers in selectors(q.expr):
            assert metric in known, f"{q.where}: unknown metric {metric}"
            for label, op, value in matchers:
                assert label in known[metric], f"{q.where}: {metric} has no label {label!r}"
                allowed = known[metric][label]
                if allowed is None or op.startswith("!"):
                    continue
                names = used_variables(value)
                if names:
                    if not names <= set(values_of):
                        continue  # a query variable: values come from the metric itself
                    candidates = [substitute(value, {n: v}) for n in names for v in values_of[n]]
                else:
                    candidates = value.split("|") if op == "=~" else [value]
                bad = [c for c in candidates if c not in allowed]
                assert not bad, f"{q.where}: {metric}{{{label}}} matched against {bad}"


def test_queried_metrics_cover_the_exported_metrics() -> None:
    names = queried_metrics()
    assert {
        "driftline_model_health",
        "driftline_feature_drift",
        "driftline_window_close_seconds_bucket",
        "process_resident_memory_bytes",
    } <= names
    assert all(n.startswith(("driftline_", "process_")) for n in names)
    # nothing exported goes unwatched
    assert names == set(ENGINE_METRICS)


def test_the_dashboards_show_what_issue_5_asks_for() -> None:
    boards = dashboards()

    def exprs(name: str) -> str:
        return "\n".join(q.expr for q in dashboard_queries() if q.where.startswith(name))

    fleet, model, engine = exprs("fleet.json"), exprs("model.json"), exprs("engine.json")
    assert "driftline_model_health" in fleet and "driftline_consumer_lag" in fleet
    assert "sum by (state) (rate(driftline_alerts_total" in fleet
    assert "sum by (model, version, kind) (rate(driftline_events_total" in fleet
    assert 'statistic="$statistic", kind="skew"' in model
    assert 'kind="drift"' in model
    for metric in ("dataset_drift_share", "data_quality", "proxy_metric", "realised_quality"):
        assert f"driftline_{metric}" in model, metric
    assert "driftline_estimated_quality" in model
    p99 = "histogram_quantile(0.99, sum by (le) (rate(driftline_window_close_seconds_bucket"
    assert p99 in engine
    assert "sum by (reason) (rate(driftline_invalid_events_total" in engine
    assert "process_resident_memory_bytes" in engine and "process_cpu_seconds_total" in engine
    assert "driftline_actions_total" in engine
    types = {p["type"] for p in panels(boards["model.json"])}
    assert {"heatmap", "timeseries", "stat"} <= types
    assert "state-timeline" in {p["type"] for p in panels(boards["fleet.json"])}


# --- the engine config of the stack ----------------------------------------------------------


def test_driftline_check_accepts_the_compose_config(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The config as mounted, with its container paths (the baseline the producer writes to
    /data, the state volume) pointed at this machine's."""
    text = ENGINE_CONFIG.read_text()
    engine = tomllib.loads(text)
    text = text.replace(f'"{engine["models"][0]["baseline"]}"', f'"{data / "fraud.dlb"}"')
    text = text.replace(f'"{engine["state"]["dir"]}"', f'"{tmp_path / "state"}"')
    path = tmp_path / "driftline.toml"
    path.write_text(text)
    code = main(["check", "--config", str(path)])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "kafka kafka:9092" in out.out
    assert "oncall (json)" in out.out
    cfg = config.load(path)
    assert (cfg.api.host, cfg.api.port, cfg.api.token_env) == (
        "0.0.0.0",
        8080,
        "DRIFTLINE_API_TOKEN",
    )


# --- docs/observability.md -------------------------------------------------------------------

_FENCE = re.compile(r"(?P<before>[^\n]*)\n```(?P<lang>[\w-]*)\n(?P<body>.*?)\n```", re.S)


def doc_blocks() -> list[tuple[str, str, str]]:
    """(language, body, the line before) of every fenced block of docs/observability.md."""
    text = "\n" + OBSERVABILITY_DOC.read_text()
    return [(m["lang"], m["body"], m["before"].strip()) for m in _FENCE.finditer(text)]


def test_every_doc_block_is_checked_or_marked_illustrative(tmp_path: Path) -> None:
    """Shell blocks are the promtool/amtool checks, run here; YAML blocks are Alertmanager
    configs amtool accepts; anything else is ```text or follows <!-- illustrative -->."""
    blocks = doc_blocks()
    assert blocks
    checked = 0
    for i, (lang, body, before) in enumerate(blocks):
        if lang == "text" or before == "<!-- illustrative -->":
            continue
        if lang in ("sh", "bash"):
            for line in body.splitlines():
                argv = shlex.split(line, comments=True)
                if not argv:
                    continue
                assert argv[0] in ("promtool", "amtool"), f"unmarked command: {line}"
                assert_ok(run(tool(argv[0], "prometheus prometheus-alertmanager"), *argv[1:]))
                checked += 1
        elif lang == "yaml":
            path = tmp_path / f"block{i}.yml"
            path.write_text(body)
            assert "receivers" in yaml.safe_load(body), f"unmarked YAML block: {body[:80]}"
            assert_ok(run(tool("amtool", "prometheus-alertmanager"), "check-config", path))
            checked += 1
        else:
            pytest.fail(f"block {i} (```{lang}) is neither checked nor marked illustrative")
    assert checked >= 4


def test_the_doc_describes_every_alert_and_each_rule_links_there() -> None:
    text = OBSERVABILITY_DOC.read_text()
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            alert = rule["alert"]
            assert f"\n### {alert}\n" in text, alert
            assert rule["annotations"]["runbook"] == f"docs/observability.md#{alert.lower()}"
