"""Every code block in docs/ runs, or says it does not.

A fenced block whose info string contains ``illustrative`` (```` ```yaml illustrative ````)
is skipped; so is one after a line ``<!-- illustrative -->`` (the form
tests/test_deploy.py understands, used in docs/observability.md). Every other block is
checked by its language:

- ``toml``: a driftline config, loaded with :func:`driftline.config.load`. A fragment with
  no ``[[models]]`` gets one; every relative baseline path it names is the test baseline.
  ``file=NAME`` in the info string also writes it as NAME into the directory the
  document's ``sh`` blocks run in (``127.0.0.1:9092`` there becomes the test broker).
- ``sh``: the document's blocks run in order in one temporary directory holding the
  example data in ``data/`` (``training.parquet``, ``serving.parquet``, ``fraud.dlb``).
  A ``driftline`` command runs in this process (``driftline.cli.main``) and must exit 0;
  any other line runs in bash.
- ``python``: the document's blocks run in order in one namespace, in that directory, with
  ``KAFKA_BOOTSTRAP`` set to a real test broker when a block reads it; every message such a
  document produced to ``DRIFTLINE_TOPIC`` must decode as a driftline event.
- ``json``: parsed. ``event`` in the info string: decoded as an inference event (with the
  ``[events]`` mapping of the nearest ``toml`` block above it that has one) with no dead
  letter; ``label``: decoded as a label event; ``record``: every field it shows is a field
  of a real window record; ``alert``: its fields are those of driftline's alert JSON.
- docs/observability.md's ``yaml`` blocks and ``promtool``/``amtool`` commands are run by
  tests/test_deploy.py.

docs/configuration.md is also checked against the config loader: every key the loader
reads appears in its reference tables, every key listed there is set in one of its
(loaded) examples, and every default written as a TOML value is what the loader gives when
the key is left out.
"""

from __future__ import annotations

import copy
import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from driftline import config
from driftline.alerts import Alert, RenderOptions, render_json
from driftline.cli import main
from driftline.events import FieldMap, decode, decode_labels
from driftline.example import write_example, write_example_baseline
from driftline.exceptions import ConfigError
from driftline.health import Change, Health

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
ILLUSTRATIVE = "illustrative"
BROKER_DEFAULT = "127.0.0.1:9092"
TESTED = ("toml", "sh", "python", "json")


# --- blocks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int
    lang: str
    tags: tuple[str, ...]
    body: str
    before: str

    @property
    def name(self) -> str:
        return f"{self.doc.relative_to(DOCS)}:{self.line}"

    @property
    def illustrative(self) -> bool:
        return ILLUSTRATIVE in self.tags or self.before == "<!-- illustrative -->"

    def tag(self, key: str) -> str | None:
        """The value of ``key=value`` in the info string."""
        return next((t.split("=", 1)[1] for t in self.tags if t.startswith(key + "=")), None)


def doc_blocks(doc: Path) -> list[Block]:
    out: list[Block] = []
    lines = doc.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\S*)(.*)$", lines[i])
        if not m:
            i += 1
            continue
        start = i
        i += 1
        while i < len(lines) and lines[i] != "```":
            i += 1
        assert i < len(lines), f"{doc}:{start + 1}: unclosed code block"
        before = lines[start - 1].strip() if start else ""
        body = "\n".join(lines[start + 1 : i])
        out.append(Block(doc, start + 1, m[1], tuple(m[2].split()), body, before))
        i += 1
    return out


DOC_FILES = sorted(DOCS.rglob("*.md"))
BLOCKS = [b for d in DOC_FILES for b in doc_blocks(d)]


def deploy_checked(b: Block) -> bool:
    """docs/observability.md's Alertmanager configs and promtool/amtool commands, which
    tests/test_deploy.py runs."""
    if b.doc.name != "observability.md":
        return False
    if b.lang == "yaml":
        return True
    tools = {line.split()[0] for line in b.body.splitlines() if line.strip()}
    return b.lang == "sh" and tools <= {"promtool", "amtool"}


def blocks(lang: str, doc: Path | None = None) -> list[Block]:
    return [
        b
        for b in BLOCKS
        if b.lang == lang
        and not b.illustrative
        and not deploy_checked(b)
        and (doc is None or b.doc == doc)
    ]


def _ids(bs: list[Block]) -> list[str]:
    return [b.name for b in bs]


def test_every_block_is_tested_or_marked_illustrative() -> None:
    assert len(DOC_FILES) >= 10
    bad = []
    for b in BLOCKS:
        if b.illustrative or b.lang in TESTED or deploy_checked(b):
            continue
        bad.append(f"{b.name} (```{b.lang or 'no language'})")
    assert not bad, "mark these blocks illustrative, or make them testable: " + ", ".join(bad)


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small example data set and its baseline (``fraud.dlb``)."""
    d = tmp_path_factory.mktemp("docs-example")
    write_example(d, rows=3000, serving_rows=6000, seed=3)
    write_example_baseline(d)
    return d


def _baseline_paths(data: dict[str, Any]) -> Iterator[str]:
    for m in data.get("models", []):
        if isinstance(m.get("baseline"), str):
            yield m["baseline"]
        for v in m.get("versions", {}).values():
            if isinstance(v, dict) and isinstance(v.get("baseline"), str):
                yield v["baseline"]


def with_model(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with a ``[[models]]`` table if it has none."""
    if "models" in data:
        return data
    return {**data, "models": [{"name": "fraud", "baseline": "baselines/fraud.dlb"}]}


def place_baselines(data: dict[str, Any], directory: Path, baseline: Path) -> None:
    """Every relative baseline path of ``data``, under ``directory``, is ``baseline``; the
    TLS files ``[kafka]`` names exist (empty)."""
    for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        name = data.get("kafka", {}).get(key)
        if isinstance(name, str) and not Path(name).is_absolute():
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            (directory / name).touch()
    for p in _baseline_paths(data):
        assert not Path(p).is_absolute(), f"use a relative baseline path in docs, not {p}"
        target = directory / p
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(baseline)


# --- toml ------------------------------------------------------------------------------------


def load_block(b: Block, directory: Path, baseline: Path) -> config.Config:
    data = with_model(tomllib.loads(b.body))
    place_baselines(data, directory, baseline)
    path = directory / "driftline.toml"
    body = b.body
    if "models" not in tomllib.loads(b.body):
        body += '\n[[models]]\nname = "fraud"\nbaseline = "baselines/fraud.dlb"\n'
    path.write_text(body)
    return config.load(path)


@pytest.mark.parametrize("b", blocks("toml"), ids=_ids(blocks("toml")))
def test_toml_block_is_a_valid_config(b: Block, example: Path, tmp_path: Path) -> None:
    load_block(b, tmp_path, example / "fraud.dlb")


# --- the configuration reference -------------------------------------------------------------

CONFIG_DOC = DOCS / "configuration.md"
_ROW = re.compile(r"^\| `([a-z_\[\]<>.]+)` \| ([^|]*) \| ([^|]*) \| (.*) \|$")


def reference() -> dict[str, str]:
    """Documented key → its default cell, from the reference tables."""
    out = {}
    for line in CONFIG_DOC.read_text().splitlines():
        m = _ROW.match(line)
        if m:
            assert m[1] not in out, f"{m[1]} is documented twice"
            out[m[1]] = m[3].strip()
    return out


def _segments(key: str) -> list[str]:
    return key.split(".")


def _covers(documented: str, key: str, *, prefix: bool) -> bool:
    """Whether ``documented`` names ``key`` (``<name>`` matches any one segment); with
    ``prefix``, also when ``key`` is a table on the way to ``documented``."""
    d, k = _segments(documented), _segments(key)
    if len(k) > len(d) or (len(k) < len(d) and not prefix):
        return False
    return all(
        a.removesuffix("[]") == b.removesuffix("[]") or a.startswith("<")
        for a, b in zip(d, k, strict=False)
    )


def normalise(key: str) -> str:
    return re.sub(r"\[\d+\]", "[]", key)


def keys_read(data: dict[str, Any], path: Path, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Every (table path, key) the loader reads while parsing ``data``, as dotted keys."""
    seen: set[str] = set()
    original = config._Table._get

    def record(self: config._Table, key: str) -> Any:
        seen.add(normalise(self._name(key)))
        return original(self, key)

    with monkeypatch.context() as m:
        m.setattr(config._Table, "_get", record)
        config.parse(data, path)
    return seen


def keys_given(data: Any, prefix: str = "") -> set[str]:
    """The dotted keys a TOML document sets (arrays of tables as ``name[]``)."""
    out: set[str] = set()
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            out |= keys_given(value, path)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for v in value:
                out |= keys_given(v, path + "[]")
        else:
            out.add(path)
    return out


def undocumented(read: set[str], documented: set[str]) -> set[str]:
    return {k for k in read if not any(_covers(d, k, prefix=True) for d in documented)}


@pytest.fixture
def config_dir(example: Path, tmp_path: Path) -> Path:
    for b in blocks("toml", CONFIG_DOC):
        place_baselines(with_model(tomllib.loads(b.body)), tmp_path, example / "fraud.dlb")
    return tmp_path


def _config_examples() -> list[dict[str, Any]]:
    return [with_model(tomllib.loads(b.body)) for b in blocks("toml", CONFIG_DOC)]


def test_every_key_the_loader_reads_is_documented(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    documented = set(reference())
    read: set[str] = set()
    for data in _config_examples():
        read |= keys_read(data, config_dir / "driftline.toml", monkeypatch)
    missing = undocumented(read, documented)
    assert not missing, (
        f"config.py reads keys docs/configuration.md does not list: {sorted(missing)}; "
        "add a row for each (and set it in an example there)"
    )


def test_every_documented_key_is_set_in_a_loaded_example() -> None:
    given: set[str] = set()
    for data in _config_examples():
        given |= keys_given(data)
    documented = reference()
    assert len(documented) > 90
    unshown = [d for d in documented if not any(_covers(d, g, prefix=False) for g in given)]
    assert not unshown, f"set these keys in an example of configuration.md: {unshown}"
    # every example loads (test_toml_block_is_a_valid_config): so each key is accepted


def test_the_check_catches_an_undocumented_key(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key added to config.py without a row in the reference is reported."""
    original = config._api

    def api_with_a_new_key(t: config._Table) -> config.ApiConfig:
        t.integer("new_undocumented_key", 1)
        return original(t)

    data = _config_examples()[0]
    documented = set(reference())
    before = undocumented(keys_read(data, config_dir / "driftline.toml", monkeypatch), documented)
    monkeypatch.setattr(config, "_api", api_with_a_new_key)
    after = undocumented(keys_read(data, config_dir / "driftline.toml", monkeypatch), documented)
    assert after - before == {"api.new_undocumented_key"}


def _choices(data: Any, segs: list[str]) -> Iterator[tuple[int, ...]]:
    """Each way to reach the table of ``segs[-1]``: one index per array of tables on the
    way."""
    if len(segs) == 1 or not isinstance(data, dict):
        yield ()
        return
    head, rest = segs[0], segs[1:]
    if head.endswith("[]"):
        for i, element in enumerate(data.get(head[:-2], [])):
            for more in _choices(element, rest):
                yield (i, *more)
    else:
        yield from _choices(data.get(head, {}), rest)


def _set(data: dict[str, Any], segs: list[str], choice: tuple[int, ...], value: Any) -> Any:
    """A copy of ``data`` with the key at ``segs`` (through the array elements ``choice``)
    removed (``value`` None) or set to ``value``."""
    whole = copy.deepcopy(data)
    table: Any = whole
    picks = iter(choice)
    for s in segs[:-1]:
        table = table[s[:-2]][next(picks)] if s.endswith("[]") else table.setdefault(s, {})
    if value is None:
        table.pop(segs[-1], None)
    else:
        table[segs[-1]] = value
    return whole


def _default(cell: str) -> tuple[bool, Any]:
    m = re.fullmatch(r"`([^`]*)`", cell)
    if not m:
        return False, None
    try:
        return True, tomllib.loads(f"v = {m[1]}")["v"]
    except tomllib.TOMLDecodeError:
        return False, None


def test_documented_defaults_are_the_loaders(config_dir: Path) -> None:
    """Leaving a key out and setting it to its documented default load the same config."""
    complete = max(_config_examples(), key=lambda d: len(keys_given(d)))
    path = config_dir / "driftline.toml"
    checked = 0
    for key, cell in reference().items():
        literal, value = _default(cell)
        if not literal or "<" in key:
            continue
        segs = _segments(key)
        errors = []
        for choice in _choices(complete, segs):
            try:
                left_out = config.parse(_set(complete, segs, choice, None), path)
                given = config.parse(_set(complete, segs, choice, value), path)
            except ConfigError as exc:
                errors.append(str(exc))
                continue
            assert left_out == given, f"{key}: the documented default {cell} is not the loader's"
            checked += 1
            break
        else:
            pytest.fail(f"{key}: no example in which to check its default: {errors}")
    assert checked > 60


# --- sh and python: one working directory per document ---------------------------------------


def _docs_with(lang: str) -> list[Path]:
    return sorted({b.doc for b in blocks(lang)})


def _commands(body: str) -> Iterator[str]:
    """Logical lines (backslash continuations joined), comments and blanks dropped."""
    joined = re.sub(r"\\\n\s*", " ", body)
    for line in joined.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            yield line


@dataclass
class Workdir:
    doc: Path
    path: Path
    broker: str | None
    topic: str | None = None


def _workdir(doc: Path, example: Path, tmp_path: Path, broker: str | None) -> Workdir:
    """``tmp_path`` with ``data/`` and the document's ``file=`` TOML blocks."""
    data = tmp_path / "data"
    data.mkdir()
    for name in ("training.parquet", "serving.parquet", "fraud.dlb"):
        (data / name).symlink_to(example / name)
    for b in blocks("toml", doc):
        name = b.tag("file")
        if name is None:
            continue
        text = b.body if broker is None else b.body.replace(BROKER_DEFAULT, broker)
        (tmp_path / name).write_text(text)
        place_baselines(tomllib.loads(text), tmp_path, example / "fraud.dlb")
    return Workdir(doc, tmp_path, broker)


def _needs_broker(doc: Path) -> bool:
    return any(
        "KAFKA_BOOTSTRAP" in b.body or re.search(r"driftline (serve|produce)", b.body)
        for b in blocks("sh", doc) + blocks("python", doc)
    )


@pytest.fixture
def workdir(
    request: pytest.FixtureRequest,
    example: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Workdir:
    doc: Path = request.param
    broker = request.getfixturevalue("broker") if _needs_broker(doc) else None
    w = _workdir(doc, example, tmp_path, broker)
    monkeypatch.chdir(w.path)
    if broker is not None:
        w.topic = f"docs-{doc.stem}-{request.node.name[5:25]}".replace("[", "-").strip("]")
        _create_topic(broker, w.topic)
        monkeypatch.setenv("KAFKA_BOOTSTRAP", broker)
        monkeypatch.setenv("DRIFTLINE_TOPIC", w.topic)
    return w


def _create_topic(broker: str, topic: str) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=broker)
    try:
        admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        admin.close()


@pytest.mark.parametrize("workdir", _docs_with("sh"), ids=lambda d: d.name, indirect=True)
def test_sh_blocks_run(workdir: Workdir, capsys: pytest.CaptureFixture[str]) -> None:
    for b in blocks("sh", workdir.doc):
        for line in _commands(b.body):
            argv = shlex.split(line, comments=True)
            if argv[0] == "driftline" and not {"|", "&&", ";", ">"} & set(argv):
                code = main(argv[1:])
                out = capsys.readouterr()
                assert code == 0, f"{b.name}: `{line}` exited {code}: {out.err[-2000:]}"
            else:
                env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
                run = subprocess.run(
                    ["bash", "-euo", "pipefail", "-c", line],
                    cwd=workdir.path,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                assert run.returncode == 0, f"{b.name}: `{line}`: {run.stderr[-2000:]}"


@pytest.mark.parametrize("workdir", _docs_with("python"), ids=lambda d: d.name, indirect=True)
def test_python_blocks_run(workdir: Workdir) -> None:
    from kafka import KafkaProducer

    namespace: dict[str, Any] = {"__name__": f"docs_{workdir.doc.stem}"}
    try:
        for b in blocks("python", workdir.doc):
            exec(compile(b.body, b.name, "exec"), namespace)
    finally:  # the documents' producers: what they sent is flushed, their sockets closed
        for value in namespace.values():
            if isinstance(value, KafkaProducer):
                value.close(timeout=10)
    if workdir.broker is not None:
        assert workdir.topic is not None
        messages = _consume(workdir.broker, workdir.topic)
        assert messages, f"{workdir.doc.name}: nothing was produced to the topic"
        for key, value, headers in messages:
            ctype = dict(headers).get("content-type", b"application/json").decode()
            decoded = decode(value, ctype, FieldMap(), 0.0)
            assert not decoded.dead, f"{workdir.doc.name}: {decoded.dead[0].reason}: {value!r}"
            assert decoded.events >= 1
            ((model, _),) = decoded.tables
            assert key == model.encode(), "events must be keyed by model"


def _consume(broker: str, topic: str) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=broker,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=3000,
        allow_auto_create_topics=False,
    )
    try:
        return [(m.key, m.value, list(m.headers or [])) for m in consumer]
    finally:
        consumer.close()


# --- json ------------------------------------------------------------------------------------


def _field_map_above(b: Block) -> FieldMap:
    """The ``[events]`` mapping of the nearest TOML block above ``b`` that has one."""
    above = [t for t in blocks("toml", b.doc) if t.line < b.line]
    for t in reversed(above):
        events = tomllib.loads(t.body).get("events")
        if events:
            return FieldMap(**events)
    return FieldMap()


@pytest.fixture(scope="module")
def window_record(example: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real skew record of a drifted window, as ``replay --format jsonl`` writes it."""
    out = tmp_path_factory.mktemp("records") / "windows.jsonl"
    code = main(
        [
            "replay",
            str(example / "serving.parquet"),
            "--baseline",
            str(example / "fraud.dlb"),
            "--window",
            "2000",
            "--format",
            "jsonl",
            "-o",
            str(out),
            "-q",
        ]
    )
    assert code == 0
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    return [r for r in records if r["kind"] == "skew"][-1]


def _shape_within(shown: Any, real: Any, where: str) -> None:
    """Every key ``shown`` has, ``real`` has too (dicts, recursively; a feature shown is
    compared with a real feature of the same type)."""
    if not isinstance(shown, dict):
        return
    assert isinstance(real, dict), f"{where} is not an object in a real record"
    for key, value in shown.items():
        if where == "features" and key not in real:
            kind = value.get("type") if isinstance(value, dict) else None
            match = [v for v in real.values() if isinstance(v, dict) and v.get("type") == kind]
            assert match, f"no {kind} feature in the real record"
            _shape_within(value, match[0], f"{where}.{key}")
            continue
        assert key in real, f"{where}.{key} is not a field of a window record"
        _shape_within(value, real[key], f"{where}.{key}" if where else key)


def _alert_fields() -> set[str]:
    change = Change(Health.OK, Health.WARNING, 3, ("amount: psi 0.2 >= 0.1",))
    alert = Alert.from_change("fraud", "7", change, sequence=1, now=1795300000.0)
    return set(render_json(alert, RenderOptions()))


@pytest.mark.parametrize("b", blocks("json"), ids=_ids(blocks("json")))
def test_json_block(b: Block, window_record: dict[str, Any]) -> None:
    value = orjson.loads(b.body)
    if "event" in b.tags:
        decoded = decode(b.body.encode(), None, _field_map_above(b), 0.0)
        assert not decoded.dead, decoded.dead[0].reason
        assert decoded.events == 1
    elif "label" in b.tags:
        labels = decode_labels([b.body.encode()], [None], _field_map_above(b))
        assert not labels.dead and len(labels.ids) == 1
    elif "record" in b.tags:
        _shape_within(value, window_record, "")
    elif "alert" in b.tags:
        assert set(value) == _alert_fields()


# --- links -----------------------------------------------------------------------------------


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda d: str(d.relative_to(DOCS)))
def test_relative_links_resolve(doc: Path) -> None:
    text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        assert file.exists(), f"{doc.name}: link to {target}: no such file"
        if anchor and file.suffix == ".md":
            headings = re.findall(r"^#+ (.*)$", file.read_text(), flags=re.M)
            assert anchor in {_anchor(h) for h in headings}, f"{doc.name}: no anchor {target}"
