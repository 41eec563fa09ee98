"""Baselines: the frozen training-time reference of every column a model sees.

A baseline file (``.dlb``) is a zip archive:

* ``manifest.json`` — ``format: "driftline-baseline"``, ``format_version``, when and from
  what it was built, the build options, and per column its name, role (feature, prediction
  or label), type and summaries (count, missing, mean, std, min, max, bin edges and
  proportions, or categories and their proportions), and any calibrated thresholds;
* ``columns/<i>/sample.npy`` — the sorted reference sample of numeric column ``i``
  (NumPy's ``.npy`` format, read without pickle).

Floats in the manifest are written in shortest round-trip form, so edges and proportions
come back bit for bit. A reader refuses a newer ``format_version`` than it knows.
"""

from __future__ import annotations

import datetime as dt
import enum
import io
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from driftline import __version__
from driftline.detectors import CategoricalReference, NumericReference
from driftline.exceptions import BaselineError

FORMAT = "driftline-baseline"
FORMAT_VERSION = 1


class Role(enum.StrEnum):
    FEATURE = "feature"
    PREDICTION = "prediction"
    LABEL = "label"


Reference = NumericReference | CategoricalReference


@dataclass(frozen=True)
class Column:
    name: str
    role: Role
    reference: Reference

    @property
    def kind(self) -> str:
        return "numeric" if isinstance(self.reference, NumericReference) else "categorical"


@dataclass(frozen=True)
class Calibration:
    """Per-column thresholds that hit ``false_alarm_rate`` on windows of ``window`` rows."""

    window: int
    false_alarm_rate: float
    resamples: int
    seed: int
    numeric_statistic: str
    categorical_statistic: str
    thresholds: Mapping[str, float]


@dataclass(frozen=True)
class Baseline:
    columns: tuple[Column, ...]
    model: str | None = None
    version: str | None = None
    created: str = ""
    source: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    calibration: Calibration | None = None

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def features(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.role is Role.FEATURE)

    @property
    def prediction(self) -> Column | None:
        return next((c for c in self.columns if c.role is Role.PREDICTION), None)

    @property
    def label(self) -> Column | None:
        return next((c for c in self.columns if c.role is Role.LABEL), None)

    @property
    def monitored(self) -> tuple[Column, ...]:
        """The columns compared window by window: the features, then the prediction."""
        pred = self.prediction
        return self.features + ((pred,) if pred is not None else ())


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def _floats(a: np.ndarray) -> list[float]:
    return [float(x) for x in a]


def _column_manifest(i: int, col: Column) -> dict[str, Any]:
    ref = col.reference
    out: dict[str, Any] = {"name": col.name, "role": col.role.value, "type": col.kind}
    if isinstance(ref, NumericReference):
        out.update(
            count=ref.count,
            missing=ref.missing,
            nonfinite=ref.nonfinite,
            mean=ref.mean,
            std=ref.std,
            min=ref.min,
            max=ref.max,
            edges=_floats(ref.edges),
            proportions=_floats(ref.proportions),
            sample=f"columns/{i}/sample.npy",
            sample_size=int(ref.sample.shape[0]),
        )
    else:
        out.update(
            count=ref.count,
            missing=ref.missing,
            categories=list(ref.categories),
            proportions=_floats(ref.proportions),
            vocabulary=list(ref.vocabulary),
            vocabulary_complete=ref.vocabulary_complete,
        )
    return out


def save(baseline: Baseline, path: str | Path) -> Path:
    """Write ``baseline`` to ``path`` atomically (a temporary file renamed into place)."""
    p = Path(path)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "driftline_version": __version__,
        "created": baseline.created or now_iso(),
        "model": baseline.model,
        "version": baseline.version,
        "source": dict(baseline.source),
        "options": dict(baseline.options),
        "columns": [_column_manifest(i, c) for i, c in enumerate(baseline.columns)],
        "calibration": None,
    }
    if baseline.calibration is not None:
        cal = baseline.calibration
        manifest["calibration"] = {
            "window": cal.window,
            "false_alarm_rate": cal.false_alarm_rate,
            "resamples": cal.resamples,
            "seed": cal.seed,
            "method": "multinomial bootstrap of the reference at the window size",
            "numeric_statistic": cal.numeric_statistic,
            "categorical_statistic": cal.categorical_statistic,
            "thresholds": dict(cal.thresholds),
        }
    tmp = p.with_name(p.name + ".tmp")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("manifest.json", orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
            for i, col in enumerate(baseline.columns):
                if isinstance(col.reference, NumericReference):
                    buf = io.BytesIO()
                    np.save(buf, col.reference.sample, allow_pickle=False)
                    # stored, not deflated: floats barely compress, and inflating them
                    # delayed every engine start-up
                    zf.writestr(
                        f"columns/{i}/sample.npy", buf.getvalue(), compress_type=zipfile.ZIP_STORED
                    )
        tmp.replace(p)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BaselineError(f"{p}: cannot write the baseline: {exc.strerror or exc}") from exc
    return p


def load(path: str | Path) -> Baseline:
    """Read a baseline file; every problem is a :class:`BaselineError` naming the file."""
    p = Path(path)
    if not p.is_file():
        raise BaselineError(f"{p}: no such baseline file")
    try:
        with zipfile.ZipFile(p) as zf:
            manifest = orjson.loads(zf.read("manifest.json"))
            return _from_manifest(p, manifest, zf)
    except BaselineError:
        raise
    except zipfile.BadZipFile as exc:
        raise BaselineError(f"{p}: not a driftline baseline (not a zip archive)") from exc
    except KeyError as exc:
        raise BaselineError(f"{p}: corrupt baseline, {exc.args[0]} is missing") from exc
    except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
        raise BaselineError(f"{p}: corrupt baseline ({exc})") from exc
    except (zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        # what zipfile raises for a damaged member: bad deflate data, an unknown
        # compression method or version, or flags that say "encrypted"
        raise BaselineError(f"{p}: corrupt baseline (zip archive: {exc})") from exc
    except OSError as exc:
        raise BaselineError(f"{p}: cannot read: {exc.strerror or exc}") from exc


def _from_manifest(p: Path, m: dict[str, Any], zf: zipfile.ZipFile) -> Baseline:
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise BaselineError(f"{p}: not a driftline baseline (format is not '{FORMAT}')")
    version = m.get("format_version")
    if not isinstance(version, int):
        raise BaselineError(f"{p}: corrupt baseline, format_version is {version!r}")
    if version > FORMAT_VERSION:
        raise BaselineError(
            f"{p}: baseline format version {version} was written by driftline "
            f"{m.get('driftline_version', '?')}; this driftline ({__version__}) reads up to "
            f"version {FORMAT_VERSION}. Upgrade driftline to read it."
        )
    columns = _samples_in_one_array(tuple(_column(p, c, zf) for c in m["columns"]))
    cal = m.get("calibration")
    calibration = None
    if cal:
        calibration = Calibration(
            window=int(cal["window"]),
            false_alarm_rate=float(cal["false_alarm_rate"]),
            resamples=int(cal["resamples"]),
            seed=int(cal["seed"]),
            numeric_statistic=str(cal["numeric_statistic"]),
            categorical_statistic=str(cal["categorical_statistic"]),
            thresholds={str(k): float(v) for k, v in _mapping(cal["thresholds"]).items()},
        )
    return Baseline(
        columns=columns,
        model=m.get("model"),
        version=m.get("version"),
        created=str(m.get("created", "")),
        source=_mapping(m.get("source") or {}),
        options=_mapping(m.get("options") or {}),
        calibration=calibration,
    )


def _column(p: Path, c: dict[str, Any], zf: zipfile.ZipFile) -> Column:
    name = str(c["name"])
    role = Role(c["role"])
    props = np.array(c["proportions"], dtype=np.float64)
    ref: Reference
    if c["type"] == "numeric":
        with zf.open(c["sample"]) as fh:
            sample = _sample(p, name, fh.read())
        ref = NumericReference(
            sample=sample,
            edges=np.array(c["edges"], dtype=np.float64),
            proportions=props,
            count=int(c["count"]),
            missing=int(c["missing"]),
            nonfinite=int(c["nonfinite"]),
            mean=float(c["mean"]) if c["mean"] is not None else float("nan"),
            std=float(c["std"]) if c["std"] is not None else float("nan"),
            min=float(c["min"]) if c["min"] is not None else float("nan"),
            max=float(c["max"]) if c["max"] is not None else float("nan"),
        )
    elif c["type"] == "categorical":
        ref = CategoricalReference(
            categories=tuple(str(x) for x in c["categories"]),
            proportions=props,
            vocabulary=tuple(str(x) for x in c["vocabulary"]),
            vocabulary_complete=bool(c["vocabulary_complete"]),
            count=int(c["count"]),
            missing=int(c["missing"]),
        )
    else:
        raise BaselineError(f"{p}: corrupt baseline, column '{name}' has type {c['type']!r}")
    return Column(name, role, ref)


_ROLE_ORDER = {Role.FEATURE: 0, Role.PREDICTION: 1, Role.LABEL: 2}


def _samples_in_one_array(columns: tuple[Column, ...]) -> tuple[Column, ...]:
    """The numeric samples moved into one array, each sample a view of it, laid out in
    :attr:`Baseline.monitored` order (the features, then the prediction; the label last).
    A monitor's :class:`~driftline.numeric.NumericColumns` needs the monitored samples end
    to end for its kernels: laid out so, it takes a view, not a copy, and the samples are
    held once (20 × 100,000 float64 reference values are 16 MB)."""
    numeric = [(c, c.reference) for c in columns if isinstance(c.reference, NumericReference)]
    if len(numeric) < 2:
        return columns
    numeric.sort(key=lambda cr: _ROLE_ORDER[cr[0].role])  # stable: columns in file order
    joined = np.empty(sum(ref.sample.shape[0] for _, ref in numeric))
    moved: dict[str, Column] = {}
    start = 0
    for c, ref in numeric:
        end = start + ref.sample.shape[0]
        joined[start:end] = ref.sample
        moved[c.name] = Column(c.name, c.role, replace(ref, sample=joined[start:end]))
        start = end
    return tuple(moved.get(c.name, c) for c in columns)


def _mapping(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected a JSON object, got {type(value).__name__}")
    return value


def _sample(p: Path, name: str, raw: bytes) -> NDArray[np.float64]:
    """A ``.npy`` sample, its header checked against its length before anything is
    allocated: a header that claims 10**12 values must not become a 7 TiB allocation."""
    buf = io.BytesIO(raw)
    version = np.lib.format.read_magic(buf)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(buf)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(buf)
    else:
        raise BaselineError(f"{p}: corrupt baseline, sample of '{name}' is .npy {version}")
    if dtype != np.float64 or len(shape) != 1:
        raise BaselineError(f"{p}: corrupt baseline, sample of '{name}' is not 1-D float64")
    have = len(raw) - buf.tell()
    if shape[0] * dtype.itemsize != have:
        raise BaselineError(
            f"{p}: corrupt baseline, sample of '{name}' says {shape[0]} values but holds "
            f"{have} bytes"
        )
    sample: NDArray[np.float64] = np.load(io.BytesIO(raw), allow_pickle=False)
    return sample
