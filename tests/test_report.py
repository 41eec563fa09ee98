"""``driftline report`` and ``replay --format html``: the HTML drift report.

The oracle for every number in the report is the window records it was made from: the
JSONL that ``driftline replay`` wrote, or what the engine behind a real API published.
"""

from __future__ import annotations

import itertools
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson
import pytest
from brokers import free_port
from kafka_io import events
from services import colours, near, screenshot
from sinks import MemorySink
from test_api import TOKEN, Rig, serving
from test_quality import config as labels_config
from test_quality import inference, label_messages, labels_of

from driftline.actions import Policy, Proposal, action_key
from driftline.alerts import Alerter
from driftline.cli import main
from driftline.connectors.http import HttpServer
from driftline.engine import Engine
from driftline.health import Health
from driftline.output import jsonl
from driftline.report import PREDICTION, load_jsonl

VOID = {"meta", "br", "img", "input", "link", "hr", "col", "area", "base", "wbr", "source"}


# -- reading the page ---------------------------------------------------------------------


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    def walk(self) -> Iterator[Node]:
        yield self
        for c in self.children:
            yield from c.walk()

    def find(self, tag: str, **attrs: str) -> list[Node]:
        """Descendants with ``tag`` whose attributes contain ``attrs`` (``class_`` is a
        class name among the element's classes)."""
        out = []
        for n in self.walk():
            if n.tag != tag:
                continue
            want = dict(attrs)
            css = want.pop("class_", None)
            if css is not None and css not in n.attrs.get("class", "").split():
                continue
            if all(n.attrs.get(k) == v for k, v in want.items()):
                out.append(n)
        return out

    def all_text(self) -> str:
        """The text below, in document order."""
        return "".join(t for n in self.walk() if n.tag == "#text" for t in n.text)

    def texts(self) -> list[str]:
        """The own text of every element below that has some, one string per element."""
        own = ["".join(c.text) for n in self.walk() for c in n.children if c.tag == "#text"]
        return [t for t in own if t]


class Tree(HTMLParser):
    """A tree of the page that fails on any element closed out of order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(Node("#text", {}, text=[data]))


def parse(path: Path) -> Node:
    tree = Tree()
    tree.feed(path.read_text(encoding="utf-8"))
    tree.close()
    assert [n.tag for n in tree.stack] == ["#root"], "unclosed elements"
    return tree.root


def columns(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = dict(record["features"])
    if record.get("prediction"):
        out[PREDICTION] = record["prediction"]
    return out


def number(text: str) -> float | None:
    return None if text == "" else float(text)


def per_window(
    page: Node, section: Node | None = None
) -> dict[tuple[str, str], list[float | None]]:
    """The per-window table: (feature, its statistic) -> exact value per window."""
    table = (section or page).find("table", class_="per-window")[0]
    return {
        (tr.attrs["data-feature"], tr.attrs["data-statistic"]): [
            number(td.attrs["data-value"]) for td in tr.find("td")[2:]
        ]
        for tr in table.find("tr")
        if "data-feature" in tr.attrs
    }


def assert_self_contained(path: Path) -> None:
    html = path.read_text(encoding="utf-8")
    for bad in ("http://", "https://", "src=", "<script", "<link", "@import"):
        assert bad not in html, bad
    assert not re.findall(r"url\((?!#)", html)  # only the charts' own clip paths
    # links and SVG references stay in the page; the heatmap's raster is inline
    assert not re.findall(r"href=\"(?!#|data:image/png;base64,)", html)
    page = parse(path)
    ids = {n.attrs["id"] for n in page.walk() if "id" in n.attrs}
    for a in page.find("a"):
        assert a.attrs["href"].startswith("#") and a.attrs["href"][1:] in ids, a.attrs


def assert_matches_records(page: Node, records: list[dict[str, Any]], *, baseline: bool) -> None:
    """Every number and mark of the report's drift sections against the records."""
    skew = [r for r in records if r["kind"] == "skew"]
    last = skew[-1]
    # the per-window table: every window's decision statistic (PSI, in the example data:
    # also where a window too small decided on a test), exactly
    table = per_window(page)
    assert set(table) == {(name, "psi") for name in columns(last)}
    for (name, stat), values in table.items():
        assert values == [columns(r)[name][stat] for r in skew], name
    # the last window's statistics table
    lw = page.find("table", class_="last-window")[0]
    keys = [th.attrs["data-statistic"] for th in lw.find("th") if "data-statistic" in th.attrs]
    assert "psi" in keys and "ks_pvalue" in keys
    for tr in lw.find("tr"):
        if "data-feature" not in tr.attrs:
            continue
        entry = columns(last)[tr.attrs["data-feature"]]
        cells = [td for td in tr.find("td") if "data-value" in td.attrs]
        assert [number(td.attrs["data-value"]) for td in cells] == [entry.get(k) for k in keys]
    # the heatmap: a row per feature, a × on every drifted cell and on no other
    heat = page.find("figure", class_="heatmap")[0]
    labels = heat.texts()
    drifted = {(n, r["window"]["index"]) for r in skew for n, e in columns(r).items() if e["drift"]}
    assert drifted, "the example data drift"
    for name, _ in drifted:
        assert f"{name} (psi)" in labels, name
    assert sum(t.startswith("×") for t in labels) == len(drifted)
    # the drifted features of the last window: a chart each, or the stated reason
    now = [n for n, e in columns(last).items() if e["drift"]]
    section = page.find("figure", class_="histograms")
    charted = section[0].texts() if section else []
    reasons = {li.attrs["data-feature"]: li.all_text() for li in page.find("li") if li.attrs}
    for name in now:
        titled = any(t.startswith(f"{name}: ") for t in charted)
        if baseline or "bins" in columns(last)[name]:
            assert titled, name
        else:
            assert not titled and "not drawn" in reasons[name], name
    # the summary: the last window's health and reasons
    assert f"health now{last['health']}" in page.find("dl", class_="facts")[0].all_text()
    listed = page.all_text()
    for reason in last["reasons"]:
        assert reason in listed


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def windows(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "windows.jsonl"
    argv = ["replay", str(data / "serving.parquet"), "--baseline", str(data / "fraud.dlb")]
    argv += ["--model-version", "7"]
    assert main([*argv, "--window", "2000", "--format", "jsonl", "-o", str(out), "-q"]) == 0
    # the example data carries its label, so replay writes a performance record after each
    # skew record; these tests compare the page with the skew records alone
    skew = [r for r in load_jsonl(out) if r["kind"] == "skew"]
    out.write_bytes(b"".join(jsonl(r) for r in skew))
    return out


@pytest.fixture(scope="module")
def report(data: Path, windows: Path) -> Path:
    out = windows.parent / "report.html"
    assert (
        main(["report", str(windows), "--baseline", str(data / "fraud.dlb"), "-o", str(out)]) == 0
    )
    return out


# -- the report of a JSONL file ----------------------------------------------------------


def test_report_shows_what_the_records_say(report: Path, windows: Path) -> None:
    records = load_jsonl(windows)
    assert {r["kind"] for r in records} == {"skew"} and len(records) == 6
    assert_self_contained(report)
    page = parse(report)
    assert_matches_records(page, records, baseline=True)
    # a section per model version, each part in the table of contents
    section = page.find("section", class_="version")
    assert len(section) == 1
    anchor = section[0].attrs["id"]
    toc = {a.attrs["href"] for a in page.find("a")}
    for part in ("summary", "drift", "heatmap", "histograms", "quality", "proxy", "timeline"):
        assert f"#{anchor}-{part}" in toc
    # one chart per feature of its decision statistic over time, with its threshold
    drift = section[0].find("svg")[0].texts()
    for name in columns(records[-1]):
        assert f"{name} · psi" in drift
    assert "threshold" in drift
    # replay's records carry no proxy metrics, performance or health_change: said, not drawn
    text = page.all_text()
    assert "carry no proxy metrics" in text
    assert "No performance records" in text
    changes = page.find("table", class_="changes")[0]
    health = [r["health"] for r in records]
    want = sum(a != b for a, b in itertools.pairwise(health))
    assert want and len(changes.find("tr")) - 1 == want
    # data quality: the missing rate of age in the problems table, window by window
    problems = [r for r in records if r["quality"]["problems"]]
    for r in problems:
        for p in r["quality"]["problems"]:
            assert p in text


def test_histograms_come_from_the_records_bins(windows: Path, tmp_path: Path) -> None:
    """No baseline needed: each drifted feature's training and window shares are drawn from
    its record's ``bins``, bar for bar."""
    records = load_jsonl(windows)
    out = tmp_path / "r.html"
    assert main(["report", str(windows), "-o", str(out)]) == 0
    assert_self_contained(out)
    page = parse(out)
    assert_matches_records(page, records, baseline=False)
    last = [r for r in records if r["kind"] == "skew"][-1]
    binned = {n: e["bins"] for n, e in columns(last).items() if e["drift"]}
    assert binned and "amount" in binned
    figure = page.find("figure", class_="histograms")[0]
    text = figure.all_text()
    assert "Training (grey) against window" in text and "no baseline given" not in text
    for name, bins in binned.items():
        labels = bins.get("categories")
        if labels:  # a categorical feature's bars are labelled with its categories
            assert all(str(c) in text for c in labels), name


def test_records_without_bins_and_no_baseline_say_why(windows: Path, tmp_path: Path) -> None:
    records = load_jsonl(windows)
    for r in records:
        for e in columns(r).values():
            e.pop("bins", None)
    old = tmp_path / "old.jsonl"
    old.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    out = tmp_path / "r.html"
    assert main(["report", str(old), "-o", str(out)]) == 0
    page = parse(out)
    assert_matches_records(page, records, baseline=False)
    assert "the record has no bins, and no baseline was given" in page.all_text()


def test_records_of_several_versions_and_repeated_windows(windows: Path, tmp_path: Path) -> None:
    records = load_jsonl(windows)
    eight = [{**r, "version": "8"} for r in records[:3]]
    mixed = tmp_path / "mixed.jsonl"
    lines = [*records, *eight, records[2], {**records[0], "kind": "future"}]
    mixed.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in lines))
    out = tmp_path / "r.html"
    assert main(["report", str(mixed), "-o", str(out), "--title", "fraud <weekly>"]) == 0
    assert_self_contained(out)
    html = out.read_text(encoding="utf-8")
    assert "<title>fraud &lt;weekly&gt;</title>" in html
    page = parse(out)
    sections = page.find("section", class_="version")
    headings = [s.find("h2")[0].all_text() for s in sections]
    assert [h.split(" ")[:4] for h in headings] == [["fraud", "·", "version", v] for v in "78"]
    # the repeated window 2 counts once; version 8 has its own three windows
    assert {len(v) for v in per_window(page, sections[0]).values()} == {len(records)}
    assert {len(v) for v in per_window(page, sections[1]).values()} == {3}
    assert "Ignored: 1 record(s) of kind 'future'" in page.all_text()


def test_replay_format_html(data: Path, windows: Path, tmp_path: Path) -> None:
    out = tmp_path / "replay.html"
    argv = ["replay", str(data / "serving.parquet"), "--baseline", str(data / "fraud.dlb")]
    argv += ["--model-version", "7"]
    argv += ["--window", "2000", "--format", "html", "-q"]
    assert main([*argv, "-o", str(out)]) == 0
    assert_self_contained(out)
    page = parse(out)
    assert_matches_records(page, load_jsonl(windows), baseline=True)  # same records
    assert main([*argv, "-o", str(tmp_path / "again.html"), "--fail-on-drift"]) == 1


def test_windows_topic_records_with_performance(data: Path, tmp_path: Path) -> None:
    """The engine's records as on the windows topic: skew, drift and performance windows of
    joined labels."""
    sink = MemorySink()
    engine = Engine(labels_config(data, tmp_path), sink)
    table = serving(data)
    engine.process(inference(table))
    engine.process(label_messages(labels_of(table)))
    engine.close()
    topic = tmp_path / "topic.jsonl"
    topic.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in sink.records))
    performance = [r for r in sink.records if r["kind"] == "performance"]
    assert len(performance) == 12
    out = tmp_path / "r.html"
    assert main(["report", str(topic), "-o", str(out)]) == 0
    assert_self_contained(out)
    page = parse(out)
    assert_matches_records(page, sink.records, baseline=False)
    realised = performance[-1]["realised"]
    table_ = next(t for t in page.find("table") if "last performance window" in t.all_text())
    cells = {td.attrs["data-value"] for td in table_.find("td") if "data-value" in td.attrs}
    metrics = [k for k in realised if k != "pairs"]
    assert {"" if realised[k] is None else repr(realised[k]) for k in metrics} == cells
    charts = "".join(t for svg in page.find("svg") for t in svg.texts())
    for metric in metrics:
        assert metric in charts
    assert "estimated" in charts and "training estimate" in charts


# -- the report of a running API ----------------------------------------------------------


def _propose(rig: Rig, window: int) -> str:
    policy = Policy("rb", "rollback", mode="approve", health=Health.CRITICAL, cooldown=0.0)
    key = action_key("rb", "fraud", "7", "inference", window)
    proposal = Proposal(key, policy, "fraud", "7", window, "critical", "amount drifted")
    assert rig.store.propose(proposal) == "created"
    return rig.store.recent()[0].id


def test_from_api(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rig = Rig(data, tmp_path, protect_reads=True)
    rig.engine.on_change = Alerter(rig.outbox, []).on_change
    assert rig.post_events(events(serving(data))).status_code == 200
    action = _propose(rig, 5)
    alerts = rig.client.get("/v1/alerts", headers={"Authorization": f"Bearer {TOKEN}"})
    fired = alerts.json()["alerts"]
    assert [(a["previous_health"], a["health"]) for a in fired] == [("ok", "critical")]
    server = HttpServer(rig.app, "127.0.0.1", 0)
    server.start()
    out = tmp_path / "api.html"
    try:
        monkeypatch.setenv("REPORT_TOKEN", TOKEN)
        argv = ["report", "--from-api", server.url + "/", "-o", str(out)]
        assert main([*argv, "--token-env", "REPORT_TOKEN"]) == 0
        capsys.readouterr()
        assert main(argv) == 2  # the API protects reads
        err = capsys.readouterr().err
        assert f"{server.url}/v1/models: HTTP 401" in err and "--token-env" in err
        assert main([*argv, "--token", "wrong"]) == 2
        assert "HTTP 403" in capsys.readouterr().err
        monkeypatch.delenv("REPORT_TOKEN")
        assert main([*argv, "--token-env", "REPORT_TOKEN"]) == 2
        assert "REPORT_TOKEN" in capsys.readouterr().err
    finally:
        server.stop()
    assert_self_contained(out)
    page = parse(out)
    published = rig.sink.records
    assert {r["kind"] for r in published} == {"skew", "drift"}
    assert_matches_records(page, published, baseline=False)
    text = page.all_text()
    assert f"from the API at 127.0.0.1:{server.port}" in text  # the source, in the header
    # the engine's records carry proxy metrics and drift against the previous window
    charts = "".join(t for svg in page.find("svg") for t in svg.texts())
    for metric in ("prediction_mean", "positive_rate", "vs previous window"):
        assert metric in charts
    # the alerts and the action, in the timeline
    table = page.find("table", class_="alerts")[0]
    rows = [tr.all_text() for tr in table.find("tr")[1:]]
    assert len(rows) == len(fired) == 1
    for a, row in zip(sorted(fired, key=lambda a: a["changed_at"]), rows, strict=True):
        assert a["changed_at"] in row and a["severity"] in row
        assert "; ".join(a["reasons"]) in row
    assert action[:12] in page.find("table", class_="actions")[0].all_text()


# -- failures -----------------------------------------------------------------------------


def test_failures_exit_2_naming_the_fault(
    data: Path, windows: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "r.html")

    def fails(*argv: str) -> str:
        assert main(list(argv)) == 2
        return capsys.readouterr().err

    missing = tmp_path / "nowhere.jsonl"
    assert f"{missing}: no such file" in fails("report", str(missing), "-o", out)
    bad = tmp_path / "bad.jsonl"
    lines = windows.read_bytes().splitlines()
    bad.write_bytes(b"\n".join([lines[0], lines[1], b"{not json", lines[2]]) + b"\n")
    assert f"{bad}: line 3 is not JSON" in fails("report", str(bad), "-o", out)
    bad.write_bytes(lines[0] + b"\n[1, 2]\n")
    assert f"{bad}: line 2 is not a window record" in fails("report", str(bad), "-o", out)
    bad.write_bytes(b"\n")
    assert "no window records" in fails("report", str(bad), "-o", out)
    url = f"http://127.0.0.1:{free_port()}"
    err = fails("report", "--from-api", url, "-o", out)
    assert f"{url}/v1/models: cannot reach the driftline API" in err
    assert "--from-api" in fails("report", "-o", out)
    assert "one of them" in fails("report", str(windows), "--from-api", url, "-o", out)
    assert "--from-api only" in fails("report", str(windows), "--token-env", "X", "-o", out)
    assert "http://" in fails("report", "--from-api", "127.0.0.1:8080", "-o", out)
    err = fails("report", str(windows), "-o", str(tmp_path / "no" / "dir" / "r.html"))
    assert "cannot write" in err
    replay = ["replay", str(data / "serving.parquet"), "--baseline", str(data / "fraud.dlb")]
    assert "give -o" in fails(*replay, "--window", "2000", "--format", "html", "-q")
    assert not Path(out).exists()


def test_without_matplotlib(
    windows: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    assert main(["report", str(windows), "-o", str(tmp_path / "r.html")]) == 2
    assert "pip install 'driftline[report]'" in capsys.readouterr().err


# -- in a browser -------------------------------------------------------------------------


def test_report_renders_in_chromium(report: Path, tmp_path: Path) -> None:
    pixels = screenshot(report.as_uri(), tmp_path / "report.png", 1280, 2000)
    assert colours(pixels) > 200  # text, badges, charts: not blank
    assert near(pixels, (0x1D, 0x4E, 0xD8)) > 500  # the statistic's lines in the drift charts
    assert near(pixels, (0x1D, 0x23, 0x30)) > 20_000  # the header bar
    assert near(pixels, (0xC6, 0x28, 0x28)) > 200  # critical: badge, strip, drifted points
    assert near(pixels, (0x2E, 0x7D, 0x32)) > 100  # ok windows in the health strip
