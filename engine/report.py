"""``driftline report``: one self-contained HTML page of a model's window records.

The input is window records (the output contract): a JSONL file as ``driftline replay
--format jsonl`` writes it or as read from the windows topic (:func:`load_jsonl`), or a
running engine's HTTP API (:func:`from_api`). :func:`write_report` writes, per model
version, a summary, each feature's decision statistic over time against its threshold, a
heatmap of features × windows, training against window histograms of the last window's
drifted features, data quality, proxy metrics, realised quality and the alert and action
timeline.

Charts are drawn with matplotlib (the ``report`` extra, imported only here) and embedded as
inline SVG whose text stays text; the page has no script, no stylesheet link and no URL, so
it opens anywhere, offline, and can be attached to a ticket.

Only what the records say is drawn. A skew record carries, for each drifted feature,
``bins``: the training's and the window's shares on the training's bins (PSI bins or top
categories), from which the histograms are drawn. For records without them (written by an
older version) the report draws the training distribution from the baseline, if given, and
says why nothing is drawn otherwise.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import math
import re
import tempfile
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import orjson

from driftline import __version__
from driftline.detectors import OTHER
from driftline.exceptions import ConfigError, DataError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

    from driftline.baseline import Baseline, Column
    from driftline.replay import ReplayOptions

INSTALL_HINT = "pip install 'driftline[report]'"
KINDS = ("skew", "drift", "performance")
PREDICTION = "(prediction)"
"""The prediction's row name, as in the API and in ``driftline_feature_drift``."""
API_LIMIT = 100
"""Window records read per model version from the API: its ``keep_windows`` default."""
ANNOTATE_CELLS = 600
"""Heatmaps with at most this many cells print each cell's value."""
LINES_SHOWN = 8
"""Lines per data-quality chart: the features with the worst rates (a legend stays legible)."""

HEALTH_COLOURS = {"ok": "#2e7d32", "warning": "#ef8f00", "critical": "#c62828"}
LINE = "#1d4ed8"
DRIFT = "#c62828"
MUTED = "#8a94a6"

# the statistics of a feature entry shown in the last window's table, and their headings
_STATISTICS = {
    "psi": "PSI",
    "ks_statistic": "KS",
    "ks_pvalue": "KS p",
    "js_distance": "JS",
    "wasserstein": "Wasserstein",
    "linf": "L∞",
    "chi2_pvalue": "χ² p",
    "missing_rate": "missing",
    "unseen_rate": "unseen",
}
_PROXY_EXTRA = ("estimated", "baseline", "changes")  # keys of `proxy` that are not metrics


# -- reading ---------------------------------------------------------------------------------


def _check_record(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DataError(f"{where} is not a window record: expected a JSON object")
    missing = [k for k in ("model", "version", "kind", "window") if k not in value]
    if missing:
        raise DataError(f"{where} is not a window record: no {', '.join(map(repr, missing))}")
    window = value["window"]
    if not isinstance(window, dict) or not isinstance(window.get("index"), int):
        raise DataError(f"{where} is not a window record: 'window' has no integer 'index'")
    return value


def load_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The window records of a JSONL file, one JSON object a line (blank lines skipped).
    Raises :class:`DataError` naming the file, and the line, at fault."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{p}: no such file") from None
    except OSError as exc:
        raise DataError(f"{p}: cannot read: {exc.strerror}") from None
    records = []
    for n, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise DataError(f"{p}: line {n} is not JSON ({exc.msg}, column {exc.colno})") from None
        records.append(_check_record(value, f"{p}: line {n}"))
    if not records:
        raise DataError(f"{p}: no window records (the file is empty)")
    return records


@dataclass(frozen=True)
class ApiData:
    """What :func:`from_api` read: window records oldest first, alerts and actions."""

    records: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    source: str
    """Where from, for the page ("the API at host:port"; the page holds no URL)."""


def _get(url: str, token: str | None, timeout: float) -> dict[str, Any]:
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        try:
            detail = orjson.loads(exc.read()).get("detail")
        except (orjson.JSONDecodeError, AttributeError, OSError):
            detail = None
        hint = {
            401: " (the API protects reads: give --token-env VARIABLE)",
            403: " (wrong token)",
            422: " (is --limit above the API's keep_windows?)",
        }.get(exc.code, "")
        said = f": {detail}" if isinstance(detail, str) else ""
        raise DataError(f"{url}: HTTP {exc.code}{said}{hint}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DataError(f"{url}: cannot reach the driftline API: {reason}") from None
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise DataError(f"{url}: the answer is not JSON: is this a driftline API?") from None
    if not isinstance(value, dict):
        raise DataError(f"{url}: expected a JSON object, got {type(value).__name__}")
    return value


def _list(answer: dict[str, Any], key: str, url: str) -> list[Any]:
    value = answer.get(key)
    if not isinstance(value, list):
        raise DataError(f"{url}: no '{key}' list in the answer: is this a driftline API?")
    return value


def from_api(
    url: str, *, token: str | None = None, limit: int = API_LIMIT, timeout: float = 10.0
) -> ApiData:
    """Read a running engine's API: ``GET /v1/models``, each version's last ``limit`` window
    records (``/v1/models/{m}/versions/{v}/windows``), ``/v1/alerts`` and ``/v1/actions``
    (1000 each). ``token`` is the bearer token of an API with ``protect_reads``."""
    base = url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ConfigError(f"--from-api {url}: expected an http:// or https:// URL")
    where = f"{base}/v1/models"
    models = _list(_get(where, token, timeout), "models", where)
    records: list[dict[str, Any]] = []
    for m in models:
        if not isinstance(m, dict) or "model" not in m or "version" not in m:
            raise DataError(f"{where}: a model entry without 'model' and 'version': {m!r}")
        path = f"/v1/models/{quote(str(m['model']), safe='')}/versions/"
        path += f"{quote(str(m['version']), safe='')}/windows?limit={limit}"
        newest_first = _list(_get(base + path, token, timeout), "windows", base + path)
        for i, r in enumerate(reversed(newest_first)):
            records.append(_check_record(r, f"{base}{path}: window {i}"))
    alerts = _list(_get(f"{base}/v1/alerts?limit=1000", token, timeout), "alerts", base)
    actions = _list(_get(f"{base}/v1/actions?limit=1000", token, timeout), "actions", base)
    parts = urlsplit(base)
    return ApiData(records, alerts, actions, f"the API at {parts.netloc}{parts.path}")


# -- grouping --------------------------------------------------------------------------------


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _columns(record: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A skew or drift record's feature entries, and the prediction as ``(prediction)``."""
    out = {str(k): v for k, v in (record.get("features") or {}).items() if isinstance(v, dict)}
    if isinstance(record.get("prediction"), dict):
        out[PREDICTION] = record["prediction"]
    return out


@dataclass(frozen=True)
class Decision:
    """The statistic a feature is decided on and its threshold."""

    statistic: str
    threshold: float
    from_record: bool
    """False when the record carries no distance decision: PSI at the policy default."""


def _decision(entry: Mapping[str, Any], default: float) -> Decision:
    d = entry.get("decision") or {}
    stat, threshold = d.get("statistic"), _float(d.get("threshold"))
    if d.get("method", "distance") == "distance" and isinstance(stat, str) and threshold:
        return Decision(stat, threshold, True)
    return Decision("psi", default, False)


def _verdict(entry: Mapping[str, Any], default: float) -> str:
    """How the record decided the feature: "psi 0.216 ≥ 0.1", or for a small window's test
    "ks_pvalue 0.003 (BH) < 0.05", the p-value Benjamini-Hochberg-adjusted."""
    d = entry.get("decision") or {}
    if d.get("method") == "test":
        stat, adjusted = d.get("statistic"), d.get("adjusted_pvalue")
        compare = "<" if entry.get("drift") else "≥"
        return f"{stat} {_fmt(adjusted, 3)} (BH) {compare} {_fmt(d.get('threshold'), 3)}"
    rule = _decision(entry, default)
    compare = "≥" if entry.get("drift") else "<"
    value = _fmt(_float(entry.get(rule.statistic)), 3)
    return f"{rule.statistic} {value} {compare} {_fmt(rule.threshold, 3)}"


@dataclass
class Series:
    """The records of one model version, each kind ordered by window index (a window
    published twice, e.g. after an engine restart, counts once: the later record)."""

    model: str
    version: str
    skew: list[dict[str, Any]] = field(default_factory=list)
    drift: list[dict[str, Any]] = field(default_factory=list)
    performance: list[dict[str, Any]] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return (self.model, self.version)

    def names(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.skew:
            for name in _columns(r):
                if name != PREDICTION:
                    seen[name] = None
        if any(PREDICTION in _columns(r) for r in self.skew):
            seen[PREDICTION] = None
        return list(seen)

    def decision(self, name: str, default: float) -> Decision:
        """The feature's most frequent distance decision in the records; PSI at ``default``
        when they carry none (no decision, or tests on small windows only)."""
        entries = (_columns(r).get(name) for r in self.skew)
        found = Counter(d for e in entries if e and (d := _decision(e, default)).from_record)
        return found.most_common(1)[0][0] if found else Decision("psi", default, False)


def group(records: Iterable[Mapping[str, Any]]) -> tuple[list[Series], Counter[str]]:
    """Records by model version (sorted), and the count of records of other kinds."""
    by: dict[tuple[str, str], dict[str, dict[int, dict[str, Any]]]] = {}
    other: Counter[str] = Counter()
    for r in records:
        kind = str(r.get("kind"))
        if kind not in KINDS:
            other[kind] += 1
            continue
        kinds = by.setdefault((str(r["model"]), str(r["version"])), {k: {} for k in KINDS})
        kinds[kind][int(r["window"]["index"])] = dict(r)
    out = []
    for (model, version), kinds in sorted(by.items()):
        ordered = {k: [v[i] for i in sorted(v)] for k, v in kinds.items()}
        out.append(Series(model, version, **ordered))
    return out, other


# -- HTML helpers ----------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or isinstance(value, bool):
        return "–" if value is None else str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if math.isfinite(value) else "–"
    return escape(str(value))


def _cell(value: Any, css: str = "num", digits: int = 4) -> str:
    """A number's cell: shown rounded, the exact value in ``data-value``."""
    v = _float(value)
    exact = "" if v is None else repr(v)
    return f'<td class="{css}" data-value="{exact}">{_fmt(value, digits)}</td>'


def _when(epoch: Any) -> str:
    t = _float(epoch)
    if t is None:
        return "–"
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _badge(health: Any) -> str:
    h = escape(str(health))
    css = h if h in HEALTH_COLOURS else "unknown"
    return f'<span class="badge {css}">{h}</span>'


def _anchor(i: int, s: Series) -> str:
    return f"v{i}-" + re.sub(r"[^A-Za-z0-9_-]+", "-", f"{s.model}-{s.version}").strip("-")


def _note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def _figure(svg: str, caption: str, css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return f"<figure{cls}>{svg}<figcaption>{escape(caption)}</figcaption></figure>"


# -- charts ----------------------------------------------------------------------------------


def require_matplotlib() -> None:
    """Raise :class:`ConfigError` with the install command when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigError(f"the drift report needs matplotlib: {INSTALL_HINT}") from None


_RC: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",  # text stays text: searchable, and drawn in the page's font
    "svg.hashsalt": "driftline",  # the same ids for the same chart: reproducible files
    "text.parse_math": False,  # a '$' in a feature name is a dollar sign
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#9aa3af",
    "axes.grid": True,
    "grid.color": "#e6e8ec",
    "grid.linewidth": 0.8,
    "legend.fontsize": 8,
    "legend.frameon": False,
}


def _new(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _svg(fig: Figure, label: str) -> str:
    """The figure as an inline ``<svg>`` element: no XML prolog, no metadata and no
    namespace declarations (HTML does not need them, and they are URLs)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    text = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text)
    text = text.replace("<svg", f'<svg role="img" aria-label="{escape(label)}"', 1)
    return text


def _window_axis(ax: Axes) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("window")


def _grid(n: int, ncols: int, row_height: float, width: float = 11.0) -> tuple[Figure, list[Axes]]:
    cols = max(1, min(ncols, n))
    rows = max(1, math.ceil(n / cols))
    fig = _new(width, row_height * rows + 0.4)
    axes = list(fig.subplots(rows, cols, squeeze=False).flat)
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _value(entry: Mapping[str, Any] | None, stat: str) -> float:
    v = _float(entry.get(stat)) if entry is not None else None
    return math.nan if v is None else v


def _drift_over_time(s: Series, names: Sequence[str], default: float) -> str:
    fig, axes = _grid(len(names), 3, 2.2)
    x = [r["window"]["index"] for r in s.skew]
    xd = [r["window"]["index"] for r in s.drift]
    for ax, name in zip(axes, names, strict=True):
        d = s.decision(name, default)
        entries = [_columns(r).get(name) for r in s.skew]
        y = [_value(e, d.statistic) for e in entries]
        # each window's threshold where it was decided on this statistic (not by a test)
        window_decisions = [_decision(e, default) if e is not None else None for e in entries]
        thresholds = [
            w.threshold
            if w and (w.statistic, w.from_record) == (d.statistic, d.from_record)
            else math.nan
            for w in window_decisions
        ]
        ax.plot(x, y, color=LINE, lw=1.6, marker="o", ms=3, label=f"{d.statistic} vs training")
        ax.plot(x, thresholds, color=DRIFT, lw=1, ls="--", label="threshold")
        hit = [i for i, e in enumerate(entries) if e and e.get("drift")]
        if hit:
            xs, ys = [x[i] for i in hit], [y[i] for i in hit]
            ax.scatter(xs, ys, color=DRIFT, s=22, zorder=3, label="drifted")
        if s.drift:
            yd = [_value(_columns(r).get(name), d.statistic) for r in s.drift]
            ax.plot(xd, yd, color=MUTED, lw=1, ls=":", label="vs previous window")
        ax.set_title(f"{name} · {d.statistic}")
        ax.set_ylim(bottom=0)
        _window_axis(ax)
    handles: dict[str, Any] = {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, h)
    fig.legend(list(handles.values()), list(handles), loc="outside upper right", ncols=4)
    return _svg(fig, f"{s.model} {s.version}: decision statistic per feature over windows")


def _heatmap(s: Series, names: Sequence[str], default: float) -> tuple[str, str, float]:
    """The heatmap's SVG, its statistic ("psi", or "mixed") and the colour scale's centre."""
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.patches import Rectangle

    decisions = [s.decision(n, default) for n in names]
    x = [r["window"]["index"] for r in s.skew]
    values = np.full((len(names), len(x)), np.nan)
    drifted = np.zeros(values.shape, dtype=bool)
    for j, r in enumerate(s.skew):
        cols = _columns(r)
        for i, (name, d) in enumerate(zip(names, decisions, strict=True)):
            values[i, j] = _value(cols.get(name), d.statistic)
            drifted[i, j] = bool((cols.get(name) or {}).get("drift"))
    centre = Counter(d.threshold for d in decisions).most_common(1)[0][0]
    finite = values[np.isfinite(values)]
    top = max(float(finite.max()) if finite.size else 0.0, 2 * centre)
    cmap = colormaps["RdYlGn_r"].with_extremes(bad="#eceff3")
    fig = _new(11.0, 0.9 + 0.34 * len(names))
    ax = fig.subplots()
    image = ax.imshow(
        np.ma.masked_invalid(values),
        aspect="auto",
        cmap=cmap,
        norm=TwoSlopeNorm(vmin=0.0, vcenter=centre, vmax=top),
        interpolation="nearest",
    )
    ax.grid(False)
    ax.set_yticks(
        range(len(names)), [f"{n} ({d.statistic})" for n, d in zip(names, decisions, strict=True)]
    )
    step = max(1, math.ceil(len(x) / 30))
    ax.set_xticks(range(0, len(x), step), [str(v) for v in x[::step]])
    ax.set_xlabel("window")
    for i, j in zip(*np.nonzero(drifted), strict=True):
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="#111827", lw=1.6))
    if values.size <= ANNOTATE_CELLS:
        for (i, j), v in np.ndenumerate(values):
            if math.isfinite(v):
                mark = "×" if drifted[i, j] else ""
                ax.text(j, i, f"{mark}{v:.2g}", ha="center", va="center", fontsize=7)
    bar = fig.colorbar(image, ax=ax, pad=0.01, fraction=0.04)
    bar.ax.axhline(centre, color="#111827", lw=1)
    stats = {d.statistic for d in decisions}
    stat = stats.pop() if len(stats) == 1 else "mixed"
    bar.set_label(stat if stat != "mixed" else "decision statistic")
    return _svg(fig, f"{s.model} {s.version}: drift heatmap"), stat, centre


def _reference_chart(ax: Axes, column: Column, entry: Mapping[str, Any]) -> None:
    """The training distribution of ``column``, and the window's figures from its record."""
    import numpy as np

    from driftline.detectors import NumericReference

    ref = column.reference
    if isinstance(ref, NumericReference):
        # quantile bins hold equal shares by construction: the sample shows the shape
        sample = np.asarray(ref.sample, dtype=np.float64)
        if sample.size:
            # the middle 99 %: a long tail would squeeze the rest into one bar
            low, high = (float(q) for q in np.quantile(sample, [0.005, 0.995]))
            weights = np.full(sample.size, 1.0 / sample.size)
            span = (low, high) if high > low else None
            ax.hist(sample, bins=40, range=span, weights=weights, color="#94a3b8")
        for edge in ref.edges:
            ax.axvline(float(edge), color="#475569", lw=0.7, ls="--", alpha=0.6)
        ax.set_xlabel(f"{column.name}: middle 99 % of training; dashed: the PSI bin edges")
        window = (
            f"window: missing {_pct(entry.get('missing_rate'))}, outside the training range "
            f"{_pct(entry.get('out_of_range_rate'))}, KS {_fmt(entry.get('ks_statistic'), 3)}"
        )
    else:
        props = [float(p) for p in ref.proportions]
        labels = [*map(str, ref.categories), OTHER]  # the proportions end with OTHER's
        ax.bar(range(len(props)), props, color="#94a3b8")
        ax.set_xticks(range(len(props)), labels, rotation=40, ha="right", fontsize=7)
        ax.grid(axis="x", visible=False)
        window = (
            f"window: unseen categories {_pct(entry.get('unseen_rate'))}, missing "
            f"{_pct(entry.get('missing_rate'))}, L∞ {_fmt(entry.get('linf'), 3)}"
        )
    ax.set_ylabel("share (training)")
    ax.text(
        0.98,
        0.97,
        window,
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize=7.5,
        bbox={"boxstyle": "round", "fc": "white", "ec": "#dde1e7"},
    )


def _bins_chart(ax: Axes, name: str, bins: Mapping[str, Any]) -> None:
    """Training against the window on the training's bins (a record's ``bins``)."""
    import numpy as np

    train = [float(x) for x in bins["training"]]
    window = [float(x) for x in bins["window"]]
    if "categories" in bins:
        labels = [str(c) for c in bins["categories"]]
    else:
        edges = [float(e) for e in bins["edges"]]
        bounds = ["", *(f"{e:.4g}" for e in edges), ""]
        labels = [f"{lo}–{hi}" if lo and hi else (f"< {hi}" if hi else f"≥ {lo}")
                  for lo, hi in itertools.pairwise(bounds)]  # fmt: skip
    x = np.arange(len(train))
    ax.bar(x - 0.2, train, 0.4, label="training", color="#94a3b8")
    ax.bar(x + 0.2, window, 0.4, label="window", color="#dc2626")
    ax.set_xticks(x, labels, rotation=40, ha="right", fontsize=7)
    ax.grid(axis="x", visible=False)
    ax.set_ylabel("share")
    what = "category" if "categories" in bins else "PSI bin"
    ax.set_xlabel(f"{name}: share of values per training {what}")
    ax.legend(fontsize=7, loc="upper right")


def _pct(value: Any) -> str:
    v = _float(value)
    return "–" if v is None else f"{v:.1%}"


def _chart_figure(
    items: Mapping[str, Any],
    draw: Callable[[Axes, str, Any], None],
    title: Callable[[str], str],
    label: str,
    caption: str,
) -> str:
    """One chart per item, two to a row, in one figure of the drifted-features section."""
    fig, axes = _grid(len(items), 2, 2.8)
    for ax, (name, item) in zip(axes, items.items(), strict=True):
        draw(ax, name, item)
        ax.set_title(title(name))
    return _figure(_svg(fig, label), caption, "histograms")


def _baseline_columns(
    names: Sequence[str], baseline: Baseline | None, s: Series
) -> tuple[dict[str, Column], dict[str, str]]:
    """The baseline's columns of ``names`` to draw the training distribution from, and why
    each of the others cannot be drawn."""
    if baseline is None:
        why = "the record has no bins, and no baseline was given (--baseline FILE draws the "
        return {}, dict.fromkeys(names, why + "training distribution)")
    if (baseline.model, baseline.version) not in ((None, None), (s.model, s.version)):
        why = f"the baseline is of model {baseline.model} version {baseline.version}"
        return {}, dict.fromkeys(names, why)
    drawable: dict[str, Column] = {}
    reasons: dict[str, str] = {}
    pred = baseline.prediction
    for n in names:
        try:
            drawable[n] = pred if n == PREDICTION and pred else baseline.column(n)
        except KeyError:
            reasons[n] = f"the baseline has no column {n!r}"
    return drawable, reasons


def _histograms(s: Series, baseline: Baseline | None, default: float) -> str:
    last = s.skew[-1] if s.skew else None
    if last is None:
        return _note("No skew window: nothing drifted against training.")
    cols = _columns(last)
    drifted = [n for n, e in cols.items() if e.get("drift")]
    index = last["window"]["index"]
    if not drifted:
        return _note(f"No feature drifted in the last window ({index}).")
    binned = {n: cols[n]["bins"] for n in drifted if isinstance(cols[n].get("bins"), dict)}
    rest = [n for n in drifted if n not in binned]  # records written before bins existed
    drawable, reasons = _baseline_columns(rest, baseline, s) if rest else ({}, {})

    def title(name: str) -> str:
        return f"{name}: {_verdict(cols[name], default)} in window {index}"

    parts = []
    if binned:
        parts.append(
            _chart_figure(
                binned,
                _bins_chart,
                title,
                f"{s.model} {s.version}: training and window distributions",
                f"Training (grey) against window {index} (red) on the training's bins, for the "
                f"features that drifted: {', '.join(binned)}. Numeric features use the PSI "
                "bins (quantiles of training), categorical ones the top training categories "
                f"and {escape(OTHER)}.",
            )
        )
    if drawable:
        parts.append(
            _chart_figure(
                drawable,
                lambda ax, name, column: _reference_chart(ax, column, cols[name]),
                title,
                f"{s.model} {s.version}: training distribution of drifted features",
                f"The training distribution (from the baseline) of the features that drifted in "
                f"window {index} whose records carry no bins: {', '.join(drawable)}; the box "
                "gives the window's figures from its record.",
            )
        )
    if reasons:
        items = "".join(
            f'<li data-feature="{escape(n)}"><b>{escape(n)}</b>: not drawn: {escape(r)}</li>'
            for n, r in reasons.items()
        )
        parts.append(f'<ul class="reasons">{items}</ul>')
    return "".join(parts)


def _rates(ax: Axes, s: Series, stat: str, title: str, empty: str) -> None:
    """One line per feature with a non-zero ``stat``, the worst :data:`LINES_SHOWN`."""
    x = [r["window"]["index"] for r in s.skew]
    series = {n: [_value(_columns(r).get(n), stat) for r in s.skew] for n in s.names()}
    worst: dict[str, float] = {}
    for name, y in series.items():
        top = max((v for v in y if math.isfinite(v)), default=0.0)
        if top > 0:
            worst[name] = top
    shown = sorted(worst, key=lambda n: -worst[n])[:LINES_SHOWN]
    for name in shown:
        ax.plot(x, series[name], lw=1.4, marker="o", ms=2.5, label=name)
    more = len(worst) - len(shown)
    ax.set_title(title + (f" (the worst {len(shown)}; {more} more)" if more else ""))
    if shown:
        ax.legend()
    else:
        ax.text(0.5, 0.5, empty, ha="center", transform=ax.transAxes)


def _quality_chart(s: Series) -> str:
    fig, axes = _grid(3, 3, 2.4)
    missing, errors, unseen = axes
    _rates(missing, s, "missing_rate", "missing rate", "none missing")
    x = [r["window"]["index"] for r in s.skew]
    counts = [int((r.get("quality") or {}).get("type_errors") or 0) for r in s.skew]
    errors.bar(x, counts, color="#ef8f00")
    errors.set_title("type errors (values of the wrong type)")
    if not any(counts):
        errors.text(0.5, 0.5, "none", ha="center", transform=errors.transAxes)
    _rates(unseen, s, "unseen_rate", "unseen categories (share)", "none unseen")
    for ax in axes:
        ax.set_ylim(bottom=0)
        _window_axis(ax)
    return _svg(fig, f"{s.model} {s.version}: data quality over windows")


def _quality(s: Series) -> str:
    if not s.skew:
        return _note("No skew window.")
    rows = []
    for r in s.skew:
        q = r.get("quality") or {}
        counts = {k: q.get(k) for k in ("missing_fields", "late_events", "invalid_events")}
        problems = list(q.get("problems") or [])
        if problems or any(counts.values()):
            rows.append(
                f"<tr><td class='num'>{r['window']['index']}</td>"
                + "".join(_cell(v) for v in counts.values())
                + f"<td>{escape('; '.join(map(str, problems))) or '–'}</td></tr>"
            )
    table = (
        "<table><tr><th class='num'>window</th><th class='num'>absent columns</th>"
        "<th class='num'>late events</th><th class='num'>invalid events</th>"
        "<th>problems</th></tr>" + "".join(rows) + "</table>"
        if rows
        else _note("No data-quality problem in any window.")
    )
    chart = _figure(
        _quality_chart(s), "Missing rate, type errors and unseen categories per window."
    )
    return chart + table


def _proxy(s: Series) -> str:
    with_proxy = [r for r in s.skew if isinstance(r.get("proxy"), dict)]
    if not with_proxy:
        return _note(
            "These records carry no proxy metrics (the engine's skew records do; "
            "driftline replay does not compute them)."
        )
    metrics: dict[str, None] = {}
    for r in with_proxy:
        for k, v in r["proxy"].items():
            if k not in _PROXY_EXTRA and (_float(v) is not None or v is None):
                metrics[k] = None
    estimated: dict[str, None] = {}
    for r in with_proxy:
        estimated.update(dict.fromkeys((r["proxy"].get("estimated") or {}), None))
    n = len(metrics) + (1 if estimated else 0)
    fig, axes = _grid(n, 3, 2.2)
    x = [r["window"]["index"] for r in with_proxy]
    baseline = with_proxy[-1]["proxy"].get("baseline") or {}
    for ax, metric in zip(axes, metrics, strict=False):
        y = [_value(r["proxy"], metric) for r in with_proxy]
        ax.plot(x, y, color=LINE, lw=1.6, marker="o", ms=3, label="window")
        base = _float(baseline.get(metric))
        if base is not None:
            ax.axhline(base, color=MUTED, ls="--", lw=1, label="training")
        changed = [
            i
            for i, r in enumerate(with_proxy)
            if any(c.get("metric") == metric for c in r["proxy"].get("changes") or ())
        ]
        if changed:
            xs, ys = [x[i] for i in changed], [y[i] for i in changed]
            ax.scatter(xs, ys, color=DRIFT, s=24, zorder=3, label="change")
        ax.set_title(metric)
        ax.legend()
        _window_axis(ax)
    if estimated:
        ax = axes[-1]
        for metric in estimated:
            y = [_value(r["proxy"].get("estimated"), metric) for r in with_proxy]
            ax.plot(x, y, lw=1.4, marker="o", ms=2.5, label=metric)
        ax.set_title("estimated quality (CBPE, from the scores)")
        ax.legend()
        _window_axis(ax)
    svg = _svg(fig, f"{s.model} {s.version}: proxy metrics")
    caption = "Proxy metrics of the model's output per window; dashed: training; red: a "
    caption += "change detector or rule fired ([models.proxy])."
    return _figure(svg, caption)


def _performance(s: Series) -> str:
    if not s.performance:
        return _note(
            "No performance records: realised quality needs labels joined to predictions "
            "(kafka.topics.labels)."
        )
    metrics: dict[str, None] = {}
    for r in s.performance:
        metrics.update(dict.fromkeys(k for k in (r.get("realised") or {}) if k != "pairs"))
    fig, axes = _grid(len(metrics), 3, 2.2)
    x = [r["window"]["index"] for r in s.performance]
    for ax, metric in zip(axes, metrics, strict=True):
        real = [_value(r.get("realised"), metric) for r in s.performance]
        est = [_value(r.get("estimated"), metric) for r in s.performance]
        base = [_value(r.get("baseline"), metric) for r in s.performance]
        ax.plot(x, real, color=LINE, lw=1.6, marker="o", ms=3, label="realised")
        if any(math.isfinite(v) for v in est):
            ax.plot(x, est, color="#7c3aed", lw=1.2, ls="--", label="estimated")
        if any(math.isfinite(v) for v in base):
            ax.plot(x, base, color=MUTED, lw=1, ls=":", label="training estimate")
        ax.set_title(metric)
        ax.legend()
        ax.set_xlabel("performance window")
    svg = _svg(fig, f"{s.model} {s.version}: realised quality")
    last = s.performance[-1]
    head = "".join(f"<th class='num'>{escape(m)}</th>" for m in metrics)
    row = "".join(_cell((last.get("realised") or {}).get(m)) for m in metrics)
    table = (
        f"<table><tr><th>last performance window</th>{head}</tr>"
        f"<tr><td>{last['window']['index']} ({_fmt(last['window'].get('count'))} pairs)</td>"
        f"{row}</tr></table>"
    )
    return _figure(svg, "Realised quality per performance window of joined labels.") + table


@dataclass(frozen=True)
class Mark:
    """One event on the timeline: a health change, an alert or an action."""

    window: int
    row: str
    label: str
    colour: str


def _timeline_chart(s: Series, marks: Sequence[Mark]) -> str:
    fig = _new(11.0, 1.9)
    ax = fig.subplots()
    rows = ["health", *dict.fromkeys(m.row for m in marks)]
    for r in s.skew:
        colour = HEALTH_COLOURS.get(str(r.get("health")), "#cfd4dc")
        i = r["window"]["index"]
        ax.barh(0, 1, left=i - 0.5, height=0.7, color=colour, ec="white", lw=0.5)
    for m in marks:
        y = rows.index(m.row)
        ax.scatter([m.window], [y], marker="D", s=46, color=m.colour, ec="#111827", zorder=3)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.grid(False)
    _window_axis(ax)
    return _svg(fig, f"{s.model} {s.version}: health, alerts and actions over windows")


def _timeline(s: Series, alerts: Sequence[Mapping[str, Any]], actions: Sequence[Any]) -> str:
    mine = [a for a in alerts if (str(a.get("model")), str(a.get("version"))) == s.key]
    acts = [a for a in actions if (str(a.get("model")), str(a.get("version"))) == s.key]
    marks: list[Mark] = []
    parts: list[str] = []
    if mine:
        rows = []
        for a in sorted(mine, key=lambda a: str(a.get("changed_at"))):
            firing = a.get("status") == "firing"
            colour = HEALTH_COLOURS.get(str(a.get("severity")), MUTED) if firing else "#2e7d32"
            if isinstance(a.get("window"), int):
                marks.append(Mark(a["window"], "alerts", str(a.get("status")), colour))
            rows.append(
                f"<tr><td>{_fmt(a.get('changed_at'))}</td><td>{_fmt(a.get('status'))}</td>"
                f"<td>{_badge(a.get('severity'))}</td>"
                f"<td>{_fmt(a.get('previous_health'))} → {_fmt(a.get('health'))}</td>"
                f"<td class='num'>{_fmt(a.get('window'))}</td>"
                f"<td>{escape('; '.join(map(str, a.get('reasons') or ()))) or '–'}</td></tr>"
            )
        parts.append(
            "<h3>Alerts</h3><table class='alerts'><tr><th>changed at</th><th>status</th>"
            "<th>severity</th><th>health</th><th class='num'>window</th><th>reasons</th></tr>"
            + "".join(rows)
            + "</table>"
        )
    else:
        changes = _health_changes(s)
        source = (
            "the records' health_change"
            if any("health_change" in r for r in s.skew + s.drift)
            else "the health of consecutive windows (these records carry no health_change; "
            "replay's health is each window's own, without hysteresis)"
        )
        if alerts or actions:
            source += "; no alert of this model version"
        rows = []
        for index, before, after, reasons in changes:
            marks.append(Mark(index, "health changes", after, HEALTH_COLOURS.get(after, MUTED)))
            rows.append(
                f"<tr><td class='num'>{index}</td><td>{_badge(before)} → {_badge(after)}</td>"
                f"<td>{escape('; '.join(reasons)) or '–'}</td></tr>"
            )
        parts.append(f"<h3>Health changes</h3>{_note('From ' + source + '.')}")
        parts.append(
            "<table class='changes'><tr><th class='num'>window</th><th>health</th>"
            "<th>reasons</th></tr>" + "".join(rows) + "</table>"
            if rows
            else _note("No health change.")
        )
    if acts:
        rows = []
        for a in sorted(acts, key=lambda a: _float(a.get("created")) or 0.0):
            if isinstance(a.get("window"), int):
                marks.append(Mark(a["window"], "actions", str(a.get("action")), "#7c3aed"))
            rows.append(
                f"<tr><td>{_when(a.get('created'))}</td><td><code>"
                f"{escape(str(a.get('id', ''))[:12])}</code></td><td>{_fmt(a.get('action'))}</td>"
                f"<td>{_fmt(a.get('policy'))} ({_fmt(a.get('mode'))})</td>"
                f"<td>{_fmt(a.get('status'))}</td><td class='num'>{_fmt(a.get('window'))}</td>"
                f"<td>{_fmt(a.get('reason'))}</td></tr>"
            )
        parts.append(
            "<h3>Actions</h3><table class='actions'><tr><th>created</th><th>id</th>"
            "<th>action</th><th>policy</th><th>status</th><th class='num'>window</th>"
            "<th>reason</th></tr>" + "".join(rows) + "</table>"
        )
    elif actions or alerts:
        parts.append(_note("No action for this model version."))
    chart = ""
    if s.skew:
        chart = _figure(
            _timeline_chart(s, marks),
            "Health of each window (green ok, amber warning, red critical) with the alerts, "
            "health changes and actions at the window that caused them.",
        )
    return chart + "".join(parts)


def _health_changes(s: Series) -> list[tuple[int, str, str, list[str]]]:
    """(window, from, to, reasons) of each health change of the version."""
    out: list[tuple[int, str, str, list[str]]] = []
    reasons = {r["window"]["index"]: list(map(str, r.get("reasons") or ())) for r in s.skew}
    flagged = [r for r in s.skew + s.drift if isinstance(r.get("health_change"), dict)]
    if flagged:
        seen: set[tuple[int, str, str]] = set()
        for r in sorted(flagged, key=lambda r: int(r["window"]["index"])):
            i, c = r["window"]["index"], r["health_change"]
            key = (i, str(c.get("from")), str(c.get("to")))
            if key not in seen:
                seen.add(key)
                out.append((*key, reasons.get(i, [])))
        return out
    for before, after in zip(s.skew, s.skew[1:], strict=False):
        if before.get("health") != after.get("health"):
            i = after["window"]["index"]
            out.append((i, str(before.get("health")), str(after.get("health")), reasons[i]))
    return out


# -- the page --------------------------------------------------------------------------------

_CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;
 background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:14px 24px}
header h1{font-size:22px;margin:0 0 4px}header p{margin:0;opacity:.85}
main{padding:16px 24px;max-width:1240px;margin:0 auto}
section.card{background:#fff;border:1px solid #dde1e7;border-radius:6px;margin:0 0 16px;
 padding:12px 18px}
h2{font-size:18px;margin:4px 0 10px}h3{font-size:15px;margin:18px 0 6px;
 border-bottom:1px solid #eef0f3;padding-bottom:3px}
nav ol{margin:4px 0;padding-left:22px}nav li{margin:2px 0}nav ol ol{columns:2}
a{color:#1d4ed8;text-decoration:none}a:hover{text-decoration:underline}
table{border-collapse:collapse;width:100%;margin:6px 0 10px}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eef0f3;vertical-align:top}
th{font-weight:600;color:#555;background:#fafbfc}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.scroll{overflow-x:auto}table.per-window td,table.per-window th{font-size:12px;padding:3px 5px}
.badge{display:inline-block;padding:1px 9px;border-radius:10px;color:#fff;font-weight:600;
 font-size:12px}
.ok{background:#2e7d32}.warning{background:#ef8f00}.critical{background:#c62828}
.unknown{background:#8a94a6}
td.drift,span.drift{color:#c62828;font-weight:700}td.drift{background:#fdecea}
.strip{display:flex;flex-wrap:wrap;gap:2px;margin:4px 0 8px}
.strip span{width:14px;height:18px;border-radius:2px;display:inline-block}
.note{color:#5b6472;margin:6px 0}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:6px 0}
dl.facts dt{color:#555;font-weight:600}dl.facts dd{margin:0}
figure{margin:8px 0}figure svg{max-width:100%;height:auto;display:block}
figcaption{color:#5b6472;font-size:13px;margin-top:2px}
ul.reasons{margin:4px 0;padding-left:20px}
"""

_SECTIONS = (
    ("summary", "Summary"),
    ("drift", "Drift over time"),
    ("heatmap", "Drift heatmap"),
    ("histograms", "Drifted features"),
    ("quality", "Data quality"),
    ("proxy", "Proxy metrics"),
    ("performance", "Realised quality"),
    ("timeline", "Alerts and actions"),
)


def _summary(s: Series) -> str:
    skew = s.skew
    if not skew:
        return _note("No skew record (against training) for this model version.")
    last = skew[-1]
    first_index, last_index = skew[0]["window"]["index"], last["window"]["index"]
    events = sum(int(r["window"].get("count") or 0) for r in skew)
    starts = [t for r in skew if (t := _float(r["window"].get("start"))) is not None]
    ends = [t for r in skew if (t := _float(r["window"].get("end"))) is not None]
    span = f"{_when(min(starts))} – {_when(max(ends))}" if starts and ends else "–"
    kinds = ", ".join(
        f"{len(v)} {k}"
        for k, v in (("skew", s.skew), ("drift", s.drift), ("performance", s.performance))
        if v
    )
    share = (last.get("dataset_drift") or {}).get("share")
    strip = "".join(
        f'<span class="{escape(str(r.get("health")))}" '
        f'title="window {r["window"]["index"]}: {escape(str(r.get("health")))}"></span>'
        for r in skew
    )
    reasons = "".join(f"<li>{escape(str(x))}</li>" for x in last.get("reasons") or ())
    return (
        '<dl class="facts">'
        f"<dt>health now</dt><dd>{_badge(last.get('health'))} (window {last_index})</dd>"
        f"<dt>windows</dt><dd>{len(skew)} (index {first_index} to {last_index}); "
        f"records: {kinds}</dd>"
        f"<dt>events</dt><dd>{events:,} in these windows</dd>"
        f"<dt>event time</dt><dd>{span}</dd>"
        f"<dt>drifted share, last window</dt><dd>{_fmt(share)}</dd></dl>"
        f"<h3>Health over time</h3><div class='strip'>{strip}</div>"
        f"<h3>Reasons of the last window ({last_index})</h3>"
        + (f"<ul>{reasons}</ul>" if reasons else _note("None: the window is ok."))
    )


def _last_window_table(s: Series, default: float) -> str:
    last = s.skew[-1]
    cols = _columns(last)
    head = "".join(
        f'<th class="num" data-statistic="{k}">{label}</th>' for k, label in _STATISTICS.items()
    )
    rows = []
    for name, e in cols.items():
        drifted = bool(e.get("drift"))
        css = "drift" if drifted else ""
        rows.append(
            f'<tr data-feature="{escape(name)}"><td class="{css}">{escape(name)}</td>'
            f"<td>{_fmt(e.get('type'))}</td>"
            + "".join(_cell(e.get(k)) for k in _STATISTICS)
            + f"<td>{escape(_verdict(e, default))}</td>"
            f'<td class="{css}">{"drift" if drifted else "ok"}</td></tr>'
        )
    return (
        f"<h3>Statistics of the last window ({last['window']['index']}) against training</h3>"
        f"<div class='scroll'><table class='last-window'><tr><th>feature</th><th>type</th>"
        f"{head}<th>decision</th><th></th></tr>{''.join(rows)}</table></div>"
    )


def _per_window_table(s: Series, names: Sequence[str], default: float) -> str:
    """Every window's decision statistic per feature; drifted cells marked."""
    head = "".join(f"<th class='num'>{r['window']['index']}</th>" for r in s.skew)
    rows = []
    for name in names:
        d = s.decision(name, default)
        cells = []
        for r in s.skew:
            e = _columns(r).get(name)
            value = e.get(d.statistic) if e is not None else None
            cells.append(_cell(value, "num drift" if e and e.get("drift") else "num", 3))
        rows.append(
            f'<tr data-feature="{escape(name)}" data-statistic="{escape(d.statistic)}">'
            f"<td>{escape(name)}</td><td>{escape(d.statistic)}</td>{''.join(cells)}</tr>"
        )
    return (
        "<div class='scroll'><table class='per-window'><tr><th>feature</th><th>statistic</th>"
        f"{head}</tr>{''.join(rows)}</table></div>"
    )


def _version_section(
    i: int,
    s: Series,
    baseline: Baseline | None,
    alerts: Sequence[Mapping[str, Any]],
    actions: Sequence[Mapping[str, Any]],
    default: float,
) -> str:
    a = _anchor(i, s)
    health = s.skew[-1].get("health") if s.skew else None
    out = [
        f'<section class="card version" id="{a}">'
        f"<h2>{escape(s.model)} · version {escape(s.version)} {_badge(health)}</h2>",
        f'<h3 id="{a}-summary">Summary</h3>{_summary(s)}',
    ]
    names = s.names()
    if s.skew and names:
        defaults = [n for n in names if not s.decision(n, default).from_record]
        note = (
            _note(
                f"No distance decision in the records for {', '.join(defaults)} (none, or "
                f"tests on small windows only): PSI against the default threshold {default:g}."
            )
            if defaults
            else ""
        )
        drift_caption = (
            "Each feature's decision statistic against the training baseline, with the "
            "threshold the record carries; red dots: windows where the feature drifted"
            + ("; dotted: against the previous window." if s.drift else ".")
        )
        out.append(
            f'<h3 id="{a}-drift">Drift over time</h3>{note}'
            + _figure(_drift_over_time(s, names, default), drift_caption)
            + _last_window_table(s, default)
        )
        svg, stat, centre = _heatmap(s, names, default)
        out.append(
            f'<h3 id="{a}-heatmap">Drift heatmap</h3>'
            + _figure(
                svg,
                f"Features × windows; colour: {stat} (the colour scale turns red at "
                f"{centre:g}); boxed and ×: drifted.",
                "heatmap",
            )
            + _per_window_table(s, names, default)
        )
    else:
        out.append(f'<h3 id="{a}-drift">Drift over time</h3>{_note("No skew record.")}')
        out.append(f'<h3 id="{a}-heatmap">Drift heatmap</h3>{_note("No skew record.")}')
    out.append(f'<h3 id="{a}-histograms">Drifted features in the last window</h3>')
    out.append(_histograms(s, baseline, default))
    out.append(f'<h3 id="{a}-quality">Data quality</h3>{_quality(s)}')
    out.append(f'<h3 id="{a}-proxy">Proxy metrics</h3>{_proxy(s)}')
    out.append(f'<h3 id="{a}-performance">Realised quality</h3>{_performance(s)}')
    out.append(f'<h3 id="{a}-timeline">Alerts and actions</h3>{_timeline(s, alerts, actions)}')
    out.append("</section>")
    return "".join(out)


def render(
    records: Iterable[Mapping[str, Any]],
    *,
    alerts: Iterable[Mapping[str, Any]] = (),
    actions: Iterable[Mapping[str, Any]] = (),
    title: str = "driftline drift report",
    baseline: Baseline | None = None,
    source: str | None = None,
) -> str:
    """The report as an HTML document (see :func:`write_report`)."""
    require_matplotlib()
    from matplotlib import rc_context

    from driftline.detectors.policy import DEFAULT_THRESHOLD

    series, other = group(records)
    if not series:
        raise DataError("no window records to report")
    alert_list, action_list = list(alerts), list(actions)
    toc = []
    for i, s in enumerate(series):
        a = _anchor(i, s)
        health = s.skew[-1].get("health") if s.skew else None
        subs = "".join(f'<li><a href="#{a}-{k}">{t}</a></li>' for k, t in _SECTIONS)
        toc.append(
            f'<li><a href="#{a}">{escape(s.model)} · version {escape(s.version)}</a> '
            f"{_badge(health)}<ol>{subs}</ol></li>"
        )
    with rc_context(_RC):
        sections = [
            _version_section(i, s, baseline, alert_list, action_list, DEFAULT_THRESHOLD)
            for i, s in enumerate(series)
        ]
    ignored = (
        _note(
            "Ignored: "
            + ", ".join(f"{n} record(s) of kind {k!r}" for k, n in sorted(other.items()))
            + "."
        )
        if other
        else ""
    )
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    where = f"from {escape(source)} · " if source else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{escape(title)}</h1><p>{where}{len(series)} model version(s) · "
        f"generated {generated} by driftline {escape(__version__)}</p></header><main>"
        f'<section class="card"><nav id="contents"><h2>Contents</h2><ol>{"".join(toc)}'
        f"</ol></nav>{ignored}</section>" + "".join(sections) + "</main></body></html>"
    )


def write_report(
    records: Iterable[Mapping[str, Any]],
    path: str | Path,
    *,
    alerts: Iterable[Mapping[str, Any]] = (),
    actions: Iterable[Mapping[str, Any]] = (),
    title: str = "driftline drift report",
    baseline: Baseline | None = None,
    source: str | None = None,
) -> Path:
    """Write the HTML report of ``records`` (window records of any model versions, any
    order) to ``path``: self-contained, no script, no URL. ``alerts`` and ``actions`` are the
    API's JSON (``/v1/alerts``, ``/v1/actions``); ``baseline`` draws the training
    distribution of drifted features; ``source`` is named in the header."""
    page = render(
        records, alerts=alerts, actions=actions, title=title, baseline=baseline, source=source
    )
    out = Path(path)
    try:
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"-o {out}: cannot write: {exc.strerror}") from None
    return out


def report_from_api(
    url: str,
    path: str | Path,
    *,
    token: str | None = None,
    limit: int = API_LIMIT,
    title: str = "driftline drift report",
    baseline: Baseline | None = None,
) -> Path:
    """:func:`from_api`, then :func:`write_report` of what it read."""
    data = from_api(url, token=token, limit=limit)
    return write_report(
        data.records,
        path,
        alerts=data.alerts,
        actions=data.actions,
        title=title,
        baseline=baseline,
        source=data.source,
    )


def replay_report(opts: ReplayOptions, output: str | None, *, quiet: bool = False) -> bool:
    """``driftline replay --format html``: the replay's records as a report in ``output``,
    with the replay's baseline. Returns whether any window drifted."""
    from driftline import baseline as bl
    from driftline.replay import replay

    if output is None:
        raise ConfigError("--format html writes a file: give -o report.html")
    require_matplotlib()
    base = bl.load(opts.baseline)
    with tempfile.TemporaryDirectory(prefix="driftline-report-") as tmp:
        windows = Path(tmp) / "windows.jsonl"
        drifted = replay(opts, fmt="jsonl", output=str(windows), quiet=quiet)
        if not windows.stat().st_size:
            raise DataError(f"{opts.data}: no window closed, nothing to report")
        records = load_jsonl(windows)
    write_report(records, output, baseline=base, source=Path(opts.data).name)
    return drifted
