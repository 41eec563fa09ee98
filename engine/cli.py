"""The ``driftline`` command line.

Exit codes: 0 success; 1 drift found, only with ``replay --fail-on-drift``; 2 bad input
(an option, a file, a baseline), with a one-line reason on stderr naming what is at fault.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import get_args

from driftline import __version__
from driftline.exceptions import ConfigError, DriftlineError

EXIT_OK = 0
EXIT_DRIFT = 1
EXIT_USAGE = 2


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip()) if text else ()


def _int_at_least(minimum: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got '{text}'") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value

    return parse


_positive = _int_at_least(1, "a positive integer")
_count = _int_at_least(0, "a whole number >= 0")


def _port(text: str) -> int:
    value = _count(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number (0 to 65535), got {value}")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got '{text}'") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="driftline",
        description="Streaming drift and model-quality monitor.",
        epilog="Example: driftline example data/ && "
        "driftline baseline build data/training.parquet -o data/fraud.dlb "
        "--prediction score --label label && "
        "driftline replay data/serving.parquet --baseline data/fraud.dlb --window 5000",
    )
    p.add_argument("--version", action="version", version=f"driftline {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    b = sub.add_parser("baseline", help="build or inspect a baseline file")
    bsub = b.add_subparsers(dest="baseline_command", required=True, metavar="SUBCOMMAND")
    build = bsub.add_parser(
        "build",
        help="build a baseline from training data (Parquet, CSV, JSONL, Arrow)",
        description="Read a training (or reference) dataset and write a baseline file: per "
        "numeric column quantile bin edges, proportions, a sorted sample, count, mean, std, "
        "min, max and missing rate; per categorical column the top-K category mix.",
        epilog="Example: driftline baseline build training.parquet -o fraud.dlb "
        "--categorical country --prediction score --label label "
        "--calibrate --window 5000 --false-alarm-rate 0.01",
    )
    build.add_argument("data", help="training data file (.parquet .csv .jsonl .arrow)")
    build.add_argument("-o", "--output", required=True, help="baseline file to write (.dlb)")
    build.add_argument("--categorical", help="columns to treat as categorical (comma-separated)")
    build.add_argument("--numeric", help="columns to treat as numeric (comma-separated)")
    build.add_argument("--exclude", help="columns to leave out (ids, timestamps, …)")
    build.add_argument("--prediction", help="the model's prediction (score or class) column")
    build.add_argument("--label", help="the ground-truth label column")
    build.add_argument("--bins", type=_positive, default=10, help="quantile bins (default 10)")
    build.add_argument(
        "--sample", type=_positive, default=100_000, help="reference sample size (default 100000)"
    )
    build.add_argument("--top-k", type=_positive, default=50, help="categories kept (default 50)")
    build.add_argument("--seed", type=int, default=0, help="seed of the reservoir sample")
    build.add_argument("--model", help="model name to record in the baseline")
    build.add_argument("--model-version", help="model version to record in the baseline")
    build.add_argument(
        "--calibrate",
        action="store_true",
        help="store per-feature thresholds that hit --false-alarm-rate on windows of --window rows",
    )
    build.add_argument("--window", type=_positive, help="window size to calibrate for (rows)")
    build.add_argument(
        "--false-alarm-rate", type=_rate, default=0.01, help="per-feature rate (default 0.01)"
    )
    build.add_argument("--resamples", type=_positive, help="bootstrap windows per feature")
    build.add_argument("-q", "--quiet", action="store_true", help="no progress output")

    show = bsub.add_parser("show", help="summarise a baseline file")
    show.add_argument("baseline")
    show.add_argument("--format", choices=["table", "json"], default="table")

    r = sub.add_parser(
        "replay",
        help="compare a serving-data file with a baseline, window by window",
        description="Stream a data file through tumbling windows (by rows, or by event time "
        "with --time-column) and compare every window with the baseline. jsonl prints one "
        "record per closed window (the output contract); table prints a readable summary.",
        epilog="Examples: driftline replay serving.parquet --baseline fraud.dlb --window 10000 "
        "--format jsonl -o windows.jsonl ;  driftline replay serving.parquet --baseline "
        "fraud.dlb --time-column ts --window 5m",
    )
    r.add_argument("data", help="serving data file (.parquet .csv .jsonl .arrow)")
    r.add_argument("--baseline", required=True, help="baseline file from 'baseline build'")
    r.add_argument("--window", required=True, help="rows per window (10000) or a duration (5m)")
    r.add_argument("--time-column", help="event-time column (epoch seconds, timestamp, ISO-8601)")
    r.add_argument("--lateness", help="allowed lateness for event-time windows (e.g. 30s)")
    r.add_argument(
        "--format",
        choices=["jsonl", "table", "html"],
        default="table",
        help="table (default), jsonl, or html: the drift report (driftline report), to -o",
    )
    r.add_argument("-o", "--output", help="write here instead of standard output")
    r.add_argument(
        "--model", help="model name in records (default: the baseline's, or its file name)"
    )
    r.add_argument(
        "--model-version", help="model version in records (default: the baseline's, or 0)"
    )
    r.add_argument("--threshold", type=float, help="distance threshold (default 0.1)")
    r.add_argument(
        "--min-rows", type=int, help="windows smaller than this use tests (default 1000)"
    )
    r.add_argument("--alpha", type=float, help="test level after BH correction (default 0.05)")
    r.add_argument(
        "--drift-share",
        type=float,
        help="share of drifted features for dataset drift (default 0.5)",
    )
    r.add_argument(
        "--shift-alpha",
        type=float,
        help="level of the shift test (mean shift / chi-square) that flags a slow drift "
        "before its distance reaches the threshold (default 1e-5; 0 turns it off)",
    )
    r.add_argument(
        "--threads",
        type=_count,
        default=0,
        help="columns computed in parallel (default 0: one thread per CPU)",
    )
    r.add_argument(
        "--task",
        choices=["classification", "regression"],
        default="classification",
        help="with a label column in the baseline and the data: how the label grades the "
        "prediction, window by window (a 'performance' record each; default classification)",
    )
    r.add_argument(
        "--score-threshold",
        type=float,
        default=0.5,
        help="classification: a score at or above it is a positive call (default 0.5)",
    )
    r.add_argument("--fail-on-drift", action="store_true", help="exit 1 if any window drifted")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress output")

    dm = sub.add_parser(
        "demo",
        help="the whole story on one machine: drift, alerts, a canary abort, a rollback",
        description="Start the embedded Kafka-protocol broker (Tansu, from the demo extra), "
        "driftline serve with its API and three local webhook receivers; register a "
        "production version and a canary of the example fraud model in a SQLite registry; "
        "replay serving traffic in which the canary's scores shift (it is aborted) and then "
        "the world changes (on-call is paged, a retrain is triggered, a rollback waits for "
        "approval and is approved over the API). Ends with a summary and a drift report. "
        "Without the broker binary (or with --http) the same story runs with Kafka off, "
        "the events sent over the API.",
        epilog="Example: driftline demo --dir driftline-demo --keep-running (then open "
        "http://127.0.0.1:8080/)",
    )
    dm.add_argument("--dir", default="driftline-demo", help="where data, state and the report go")
    dm.add_argument(
        "--keep-running",
        action="store_true",
        help="leave the engine, its API and status page up until Ctrl-C",
    )
    dm.add_argument(
        "--api-port",
        type=_port,
        default=8080,
        help="the API's port (default 8080; 0: a free one, picked by serve and printed)",
    )
    dm.add_argument(
        "--http",
        action="store_true",
        help="no broker: serve without Kafka, the traffic sent over POST /v1/events (the "
        "fallback taken when the demo extra's broker binary is not installed)",
    )
    dm.add_argument("--no-colour", action="store_true", help="plain output")

    c = sub.add_parser(
        "check",
        help="validate a driftline.toml without starting anything",
        description="Read the config, check every key, type and range, and that every "
        "baseline file it names can be read. Exit 0 if it is valid, 2 with the key at fault "
        "if not.",
        epilog="Example: driftline check --config driftline.toml",
    )
    c.add_argument("--config", required=True, help="the TOML config file")

    sv = sub.add_parser(
        "serve",
        help="run the engine: consume Kafka events, publish window records",
        description="Consume inference (and feature) events from Kafka, window them per model "
        "version, compare every window with the training baseline (skew) and with the "
        "previous window (drift), with proxy metrics of the predictions ([models.proxy]), "
        "track health with hysteresis, publish one record per closed window to the windows "
        "topic and bad messages to the dead-letter topic; every health change is an alert "
        "on the alerts topic and to each [[alerts.receivers]] webhook (durable outbox, "
        "retries), and is written to the registry ([registry] url). "
        "State is checkpointed under state.dir; offsets are committed only after the "
        "checkpoint covering them is durable. SIGTERM drains and exits 0. "
        "An HTTP API runs beside it ([api]; default 127.0.0.1:8080): the status page at /, "
        "Prometheus metrics at /metrics, probes at /healthz and /readyz, models, windows, "
        "alerts and actions under /v1/, event ingestion at POST /v1/events, OpenAPI at /docs.",
        epilog="Example: driftline serve --config driftline.toml --create-topics, then open "
        "http://127.0.0.1:8080/ (status page) or curl http://127.0.0.1:8080/v1/models",
    )
    sv.add_argument("--config", required=True, help="the TOML config file")
    sv.add_argument(
        "--create-topics",
        action="store_true",
        help="create missing topics (1 partition) instead of stopping with an error",
    )
    sv.add_argument(
        "--idle-exit",
        type=float,
        metavar="SECONDS",
        help="drain and exit 0 after this many seconds without a message (batch jobs, tests)",
    )
    sv.add_argument("--threads", type=_count, default=0, help="column threads (default 0: two)")
    sv.add_argument(
        "--api-port",
        type=_port,
        metavar="PORT",
        help="the HTTP API's port (overrides [api] port; 0 picks a free one)",
    )
    sv.add_argument("--no-api", action="store_true", help="run without the HTTP API")
    sv.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="info")

    pr = sub.add_parser(
        "produce",
        help="send a data file's rows to the inference topic as events (to try serve)",
        description="Read a data file (Parquet, CSV, JSONL, Arrow) and send every row to the "
        "config's inference topic as a driftline event, keyed by model: one JSON message per "
        "row, or one Arrow IPC message per batch with --arrow. Columns id and ts keep their "
        "meaning, --prediction names the score column, the rest are features.",
        epilog="Example: driftline produce examples/data/serving.parquet --config "
        "examples/driftline.toml --model fraud --model-version 7 --prediction score "
        "--exclude label",
    )
    pr.add_argument("data", help="data file (.parquet .csv .jsonl .arrow)")
    pr.add_argument("--config", required=True, help="the TOML config file (for kafka.*)")
    pr.add_argument("--model", required=True)
    pr.add_argument("--model-version", required=True)
    pr.add_argument("--prediction", help="the column holding the model's score")
    pr.add_argument("--exclude", help="columns not to send (comma-separated)")
    pr.add_argument("--arrow", action="store_true", help="Arrow IPC batches instead of JSON")
    pr.add_argument(
        "--batch", type=_positive, default=10_000, help="rows per read (and Arrow message)"
    )
    pr.add_argument(
        "--rate",
        type=float,
        metavar="EVENTS_PER_S",
        help="send at most this many events per second, evenly (default: as fast as possible; "
        "with --arrow whole messages of --batch rows are paced)",
    )
    pr.add_argument("--create-topics", action="store_true", help="create the topic if missing")
    pr.add_argument("-q", "--quiet", action="store_true", help="no progress output")

    rg = sub.add_parser(
        "registry",
        help="the model registry: register versions with their baselines, set aliases, show",
        description="Model versions, their baselines, aliases (production, canary, ...) and "
        "the health driftline writes back (tags driftline.health, driftline.reason, "
        "driftline.updated). The registry is --registry URL, else the --config file's "
        "[registry] url, else $DRIFTLINE_REGISTRY. URL: sqlite:///path.db (the built-in "
        "registry, created on first use) or mlflow+http://host:port, mlflow+https://host "
        "(an MLflow Model Registry; versions are MLflow's version numbers).",
        epilog="Example: driftline registry register fraud 7 --baseline fraud.dlb "
        "--registry sqlite:///registry.db && driftline registry alias fraud production 7 "
        "--registry sqlite:///registry.db && driftline registry show fraud "
        "--registry sqlite:///registry.db",
    )
    rsub = rg.add_subparsers(dest="registry_command", required=True, metavar="ACTION")
    reg_common = argparse.ArgumentParser(add_help=False)
    reg_common.add_argument(
        "--registry", metavar="URL", help="sqlite:///path.db or mlflow+http://host:port"
    )
    reg_common.add_argument("--config", help="a driftline.toml whose [registry] url to use")
    rr = rsub.add_parser(
        "register", parents=[reg_common], help="register a model version and link its baseline"
    )
    rr.add_argument("model")
    rr.add_argument("version")
    rr.add_argument("--baseline", required=True, help="the version's baseline file (.dlb)")
    ra = rsub.add_parser(
        "alias", parents=[reg_common], help="point an alias (production, canary) at a version"
    )
    ra.add_argument("model")
    ra.add_argument("alias")
    ra.add_argument("version")
    rs = rsub.add_parser(
        "show", parents=[reg_common], help="a model's versions, aliases, baselines and health"
    )
    rs.add_argument("model")
    rs.add_argument("--format", choices=["text", "json"], default="text")

    ac = sub.add_parser(
        "actions",
        help="list, show, approve or reject the actions driftline proposed",
        description="Actions (retrain, rollback, canary_abort) proposed by the "
        "[[actions.policies]] of a running `driftline serve`, from its action store "
        "([actions] db, default <state.dir>/actions.db). An action in mode 'approve' waits, "
        "pending, until approved here; the engine then carries it out within a second. IDs "
        "may be abbreviated to 6 or more characters.",
        epilog="Example: driftline actions list --config driftline.toml --status pending && "
        "driftline actions approve 3f9c2a --config driftline.toml --by alice",
    )
    from driftline.action_store import Status

    asub = ac.add_subparsers(dest="actions_command", required=True, metavar="ACTION")
    act_common = argparse.ArgumentParser(add_help=False)
    where = act_common.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", help="the engine's driftline.toml (finds the action store)")
    where.add_argument("--db", help="the action store file itself")
    al = asub.add_parser("list", parents=[act_common], help="the newest actions first")
    al.add_argument(
        "--status",
        choices=get_args(Status),
        help="only actions in this status",
    )
    al.add_argument("--limit", type=_positive, default=50)
    al.add_argument("--format", choices=["text", "json"], default="text")
    ash = asub.add_parser("show", parents=[act_common], help="one action and its audit log")
    ash.add_argument("id")
    ash.add_argument("--format", choices=["text", "json"], default="text")
    for name, verb in (("approve", "approve"), ("reject", "reject")):
        ad = asub.add_parser(name, parents=[act_common], help=f"{verb} a pending action")
        ad.add_argument("id")
        ad.add_argument("--by", default=None, help="who decides (default: $USER)")
        ad.add_argument("--note", default="", help="why, for the audit log")

    rp = sub.add_parser(
        "report",
        help="write a self-contained HTML drift report from window records",
        description="Read window records (a JSONL file as 'replay --format jsonl' writes it or "
        "as read from the windows topic, or a running engine's API with --from-api) and write "
        "one HTML file with no script and no external reference: per model version a summary, "
        "each feature's decision statistic over time against its threshold, a drift heatmap, "
        "the training distribution of the last window's drifted features (with --baseline), "
        "data quality, proxy metrics, realised quality, and the alerts, health changes and "
        "actions. Needs matplotlib: pip install 'driftline[report]'.",
        epilog="Examples: driftline replay serving.parquet --baseline fraud.dlb --window 5000 "
        "--format jsonl -o windows.jsonl && driftline report windows.jsonl --baseline fraud.dlb "
        "-o report.html ;  driftline report --from-api http://127.0.0.1:8080 "
        "--token-env DRIFTLINE_API_TOKEN -o report.html",
    )
    rp.add_argument("windows", nargs="?", help="window records, one JSON object a line")
    rp.add_argument("--from-api", metavar="URL", help="read a running driftline serve's API")
    rp.add_argument("-o", "--output", required=True, help="the HTML file to write")
    rp.add_argument("--baseline", help="baseline file: draws drifted features' training data")
    rp.add_argument("--title", default="driftline drift report", help="the page's title")
    rp.add_argument(
        "--limit",
        type=_positive,
        help="with --from-api: window records per model version (default 100; at most the "
        "API's keep_windows)",
    )
    rp_token = rp.add_mutually_exclusive_group()
    rp_token.add_argument("--token-env", metavar="VAR", help="variable holding the API token")
    rp_token.add_argument(
        "--token", help="the API's bearer token (visible in ps: prefer --token-env)"
    )

    e = sub.add_parser(
        "example",
        help="write the example fraud dataset (training + drifting serving data)",
        description="Generate a seeded example: training.parquet (a fraud model's training "
        "set, with its scores and labels) and serving.parquet (traffic in which, part-way, "
        "amounts shift, a new country appears and an upstream field breaks).",
    )
    e.add_argument("directory", help="where to write the files")
    e.add_argument("--rows", type=_positive, default=50_000, help="training rows (default 50000)")
    e.add_argument("--serving-rows", type=_positive, default=60_000, help="serving rows")
    e.add_argument("--seed", type=int, default=7)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "baseline" and args.baseline_command == "build":
            _lean_process()
            return _baseline_build(args)
        if args.command == "baseline":
            return _baseline_show(args)
        if args.command == "replay":
            _lean_process()
            return _replay(args)
        if args.command == "check":
            return _check(args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "produce":
            return _produce(args)
        if args.command == "registry":
            return _registry(args)
        if args.command == "actions":
            return _actions(args)
        if args.command == "demo":
            return _demo(args)
        if args.command == "report":
            return _report(args)
        return _example(args)
    except DriftlineError as exc:
        print(f"driftline: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`driftline replay … | head`): stop quietly, like any filter
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _lean_process() -> None:
    """Less resident memory for the file commands (``replay``, ``baseline build``), which
    own their process: Arrow's jemalloc pool, which hands freed memory back, instead of its
    default (mimalloc), and Numba without its BLAS probe
    (:func:`driftline.detectors._jit.numpy_support_without_blas`). Their sum with the other
    savings is what ``benchmarks/peers.py`` measures. Not done for ``serve``, whose
    throughput was measured with the defaults."""
    import pyarrow as pa

    from driftline.detectors._jit import numpy_support_without_blas

    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:  # the user's choice stands
        with contextlib.suppress(NotImplementedError, pa.ArrowNotImplementedError):
            pa.set_memory_pool(pa.jemalloc_memory_pool())  # fails if built without jemalloc
    numpy_support_without_blas()


def _baseline_build(args: argparse.Namespace) -> int:
    from driftline import baseline as bl
    from driftline.build import BuildOptions, build_from_file
    from driftline.calibrate import calibrate
    from driftline.output import Progress

    if args.calibrate and args.window is None:
        raise ConfigError("--calibrate needs --window (the window size to calibrate for)")
    if args.window is not None and not args.calibrate:
        raise ConfigError("--window is only used with --calibrate")
    opts = BuildOptions(
        categorical=_names(args.categorical),
        numeric=_names(args.numeric),
        exclude=_names(args.exclude),
        prediction=args.prediction,
        label=args.label,
        bins=args.bins,
        sample=args.sample,
        top_k=args.top_k,
        seed=args.seed,
        model=args.model,
        version=args.model_version,
    )
    prog = Progress(not args.quiet)
    t0 = time.perf_counter()
    baseline, report = build_from_file(
        args.data, opts, progress=lambda n: prog.update(f"read {n:,} rows")
    )
    if args.calibrate:
        prog.update("calibrating thresholds", force=True)
        baseline = calibrate(
            baseline,
            window=args.window,
            false_alarm_rate=args.false_alarm_rate,
            resamples=args.resamples,
            seed=args.seed,
        )
    path = bl.save(baseline, args.output)
    prog.done()
    if not args.quiet:
        kinds = [c.kind for c in baseline.columns]
        print(
            f"wrote {path}: {report.rows:,} rows, {kinds.count('numeric')} numeric and "
            f"{kinds.count('categorical')} categorical columns in {time.perf_counter() - t0:.1f}s",
            file=sys.stderr,
        )
        for name, why in report.inferred.items():
            print(f"  {name}: {why}", file=sys.stderr)
        for name, why in report.skipped.items():
            print(f"  skipped {name}: {why}", file=sys.stderr)
        if baseline.calibration is not None:
            cal = baseline.calibration
            print(
                f"  calibrated for windows of {cal.window} rows at a false-alarm rate of "
                f"{cal.false_alarm_rate} ({cal.resamples} resamples per column)",
                file=sys.stderr,
            )
    return EXIT_OK


def _baseline_show(args: argparse.Namespace) -> int:
    import orjson

    from driftline import baseline as bl
    from driftline.detectors import NumericReference

    b = bl.load(args.baseline)
    rows = []
    for c in b.columns:
        ref = c.reference
        row: dict[str, object] = {"name": c.name, "role": c.role.value, "type": c.kind}
        row["count"] = ref.count
        row["missing_rate"] = ref.missing_rate
        if isinstance(ref, NumericReference):
            row.update(
                mean=ref.mean, std=ref.std, min=ref.min, max=ref.max, bins=len(ref.proportions)
            )
        else:
            row.update(categories=len(ref.categories), top=list(ref.categories[:5]))
        if b.calibration is not None and c.name in b.calibration.thresholds:
            row["calibrated_threshold"] = b.calibration.thresholds[c.name]
        rows.append(row)
    if args.format == "json":
        info = {"model": b.model, "version": b.version, "created": b.created, "columns": rows}
        sys.stdout.write(orjson.dumps(info, option=orjson.OPT_INDENT_2).decode() + "\n")
        return EXIT_OK
    model, version = b.model or "-", b.version or "-"
    print(f"baseline {args.baseline}: model {model} version {version}, built {b.created}")
    for row in rows:
        if row["type"] == "numeric":
            extra = (
                f"mean {row['mean']:.4g} std {row['std']:.4g} "
                f"range [{row['min']:.4g}, {row['max']:.4g}]"
            )
        else:
            top = ", ".join(map(str, row["top"]))  # type: ignore[call-overload]
            extra = f"{row['categories']} categories, top: {top}"
        head = f"  {row['name']:<20} {row['role']:<10} {row['type']:<11}"
        print(f"{head} missing {row['missing_rate']:.2%}  {extra}")
    return EXIT_OK


def _replay(args: argparse.Namespace) -> int:
    from driftline.replay import ReplayOptions, replay

    opts = ReplayOptions(
        data=args.data,
        baseline=args.baseline,
        window=args.window,
        time_column=args.time_column,
        lateness=args.lateness,
        model=args.model,
        version=args.model_version,
        threshold=args.threshold,
        min_rows=args.min_rows,
        alpha=args.alpha,
        drift_share=args.drift_share,
        shift_alpha=args.shift_alpha,
        threads=args.threads,
        task=args.task,
        score_threshold=args.score_threshold,
    )
    if args.format == "html":
        from driftline.report import replay_report

        drifted = replay_report(opts, args.output, quiet=args.quiet)
    else:
        drifted = replay(opts, fmt=args.format, output=args.output, quiet=args.quiet)
    return EXIT_DRIFT if (args.fail_on_drift and drifted) else EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from driftline.demo import DemoOptions, run_demo

    colour = sys.stdout.isatty() and not args.no_colour
    opts = DemoOptions(Path(args.dir), keep_running=args.keep_running, api_port=args.api_port,
                       colour=colour, http=args.http)  # fmt: skip
    return run_demo(opts)


def _check(args: argparse.Namespace) -> int:
    from driftline import config

    cfg = config.load(args.config)
    w = cfg.window
    if w.duration is not None:
        window = f"{w.duration:g} s of event time" + (f", step {w.step:g} s" if w.step else "")
    else:
        window = f"{w.size} events" + (f", step {w.step}" if w.step else "")
    t = cfg.kafka.topics
    print(f"{cfg.path}: ok")
    if cfg.kafka.enabled:
        sec = cfg.kafka.security.protocol
        print(f"  kafka {cfg.kafka.bootstrap_servers}, group {cfg.kafka.group_id} ({sec})")
        print(
            f"  topics: inference {t.inference}, windows {t.windows}, dead letter "
            f"{t.dead_letter}, alerts {t.alerts}"
        )
    else:
        print(
            "  kafka disabled: events over POST /v1/events only; records, alerts, actions "
            f"and dead letters in {cfg.state_dir / 'out'}/*.jsonl"
        )
    print(f"  windows of {window}; health changes after {cfg.hysteresis} windows")
    print(f"  state in {cfg.state_dir}")
    if cfg.registry:
        dirs = ", ".join(str(d) for d in cfg.baseline_dirs)
        print(f"  registry {cfg.registry}; its baselines read from under {dirs} only")
    receivers = ", ".join(f"{r.name} ({r.format})" for r in cfg.alerts.receivers)
    print(f"  alerts to the alerts topic{' and ' + receivers if receivers else ''}")
    if cfg.read_labels:
        lb = cfg.labels
        print(
            f"  labels from {t.labels if cfg.kafka.enabled else 'the API'}: joined within "
            f"{lb.ttl:g} s of event time, "
            f"performance windows of {lb.window} pairs"
        )
    for pol in cfg.actions.policies:
        print(f"  action policy {pol.name}: {pol.action} ({pol.mode})")
    api = cfg.api
    if api.enabled:
        writes = f"token from ${api.token_env}" if api.token_env else "writes disabled (no token)"
        print(f"  API on http://{api.host}:{api.port} (/ status page, /metrics); {writes}")
    else:
        print("  API disabled")
    for m in cfg.models:
        versions = ", ".join(f"{v}: {p}" for v, p in m.versions.items())
        print(
            f"  model {m.name}: baseline {m.baseline or '-'}"
            + (f"; {versions}" if versions else "")
        )
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    import logging

    from driftline import config
    from driftline.serve import ServeOptions, serve

    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    cfg = config.load(args.config)
    if args.api_port is not None or args.no_api:
        api = dataclasses.replace(
            cfg.api,
            enabled=cfg.api.enabled and not args.no_api,
            port=cfg.api.port if args.api_port is None else args.api_port,
        )
        cfg = dataclasses.replace(cfg, api=api)
    return serve(
        cfg,
        ServeOptions(
            idle_exit=args.idle_exit, create_topics=args.create_topics, threads=args.threads
        ),
    )


def _produce(args: argparse.Namespace) -> int:
    import math

    from driftline import config
    from driftline.connectors.files import read_batches
    from driftline.connectors.kafka import check_topics, produce_file
    from driftline.output import Progress

    if args.rate is not None and not (math.isfinite(args.rate) and args.rate > 0):
        raise ConfigError(
            f"--rate must be a positive number of events per second, got {args.rate:g}"
        )
    cfg = config.load(args.config)
    check_topics(cfg.kafka, [cfg.kafka.topics.inference], create=args.create_topics)
    progress = Progress(not args.quiet)
    sent = produce_file(
        cfg.kafka,
        read_batches(Path(args.data), batch_rows=args.batch),
        model=args.model,
        version=args.model_version,
        prediction=args.prediction,
        exclude=_names(args.exclude),
        arrow=args.arrow,
        rate=args.rate,
        on_progress=lambda n: progress.update(f"{n:,} events sent"),
    )
    progress.done(f"{sent:,} events sent to {cfg.kafka.topics.inference}")
    return EXIT_OK


def _registry(args: argparse.Namespace) -> int:
    import json

    from driftline import config
    from driftline.registry import (
        HEALTH_TAG,
        REASON_TAG,
        open_registry,
        register,
        registry_url,
    )

    cfg = config.load(args.config) if args.config else None
    url = registry_url(args.registry, cfg.registry if cfg is not None else None)
    registry = open_registry(url, cfg.path.parent if cfg is not None else None)
    try:
        if args.registry_command == "register":
            register(registry, args.model, args.version, Path(args.baseline))
            print(f"registered {args.model} version {args.version} ({registry.url})")
        elif args.registry_command == "alias":
            registry.set_alias(args.model, args.alias, args.version)
            print(f"{args.model}@{args.alias} -> version {args.version}")
        else:
            info = registry.model(args.model)
            if args.format == "json":
                print(json.dumps(info.to_json(), indent=2))
            else:
                by_version: dict[str, list[str]] = {}
                for alias, version in info.aliases.items():
                    by_version.setdefault(version, []).append(alias)
                print(f"model {info.name} ({registry.url})")
                for v in info.versions:
                    aliases = ", ".join(by_version.get(v.version, []))
                    health = v.tags.get(HEALTH_TAG, "-")
                    print(
                        f"  version {v.version}"
                        + (f" [{aliases}]" if aliases else "")
                        + f": health {health}, baseline {v.baseline or '-'}"
                    )
                    reason = v.tags.get(REASON_TAG)
                    if reason:
                        print(f"    {reason}")
    finally:
        registry.close()
    return EXIT_OK


def _actions(args: argparse.Namespace) -> int:
    import datetime as dt
    import getpass
    import json

    from driftline import config
    from driftline.action_store import ActionStore

    if args.db is not None:
        path = Path(args.db)
        if not path.exists():
            raise ConfigError(f"--db {path}: no such action store")
    else:
        cfg = config.load(args.config)
        path = cfg.actions_db
        if not path.exists():
            raise ConfigError(f"{path}: no action store yet (the engine creates it when it starts)")

    def when(t: float) -> str:
        return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds")

    store = ActionStore(path)
    try:
        cmd = args.actions_command
        if cmd == "list":
            records = store.recent(args.status, args.limit)
            if args.format == "json":
                print(json.dumps([r.to_json() for r in records], indent=2))
            elif not records:
                print("no actions" + (f" {args.status}" if args.status else ""))
            for r in records if args.format == "text" else ():
                print(
                    f"{r.id}  {r.status:<8} {r.action:<12} {r.model} version {r.version}  "
                    f"{when(r.created)}  policy {r.policy} ({r.mode})"
                )
        elif cmd == "show":
            r = store.get(args.id)
            entries = store.audit(r.id)
            if args.format == "json":
                doc = r.to_json()
                doc["audit"] = [
                    {"at": a.at, "event": a.event, "actor": a.actor, "detail": a.detail}
                    for a in entries
                ]
                print(json.dumps(doc, indent=2))
            else:
                print(f"action {r.id}: {r.action} of {r.model} version {r.version}, {r.status}")
                print(f"  policy {r.policy} ({r.mode}), window {r.window}, health {r.health}")
                print(f"  reason: {r.reason}")
                if r.result:
                    print(f"  result: {r.result}")
                for a in entries:
                    print(f"  {when(a.at)}  {a.event:<9} by {a.actor}: {a.detail}")
        else:
            actor = args.by or getpass.getuser()
            r = store.decide(args.id, cmd == "approve", actor, args.note)
            print(f"action {r.id} ({r.action} of {r.model} version {r.version}) {r.status}")
    finally:
        store.close()
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    import os

    from driftline import baseline as bl
    from driftline import report

    if (args.windows is None) == (args.from_api is None):
        raise ConfigError("report: give a window-records file or --from-api URL, one of them")
    if args.from_api is None:
        options = (
            ("--token", args.token),
            ("--token-env", args.token_env),
            ("--limit", args.limit),
        )
        for flag, given in options:
            if given is not None:
                raise ConfigError(f"{flag} applies to --from-api only")
    report.require_matplotlib()
    base = bl.load(args.baseline) if args.baseline else None
    alerts: list[dict[str, object]] = []
    actions: list[dict[str, object]] = []
    if args.from_api is not None:
        token = args.token
        if args.token_env is not None:
            token = os.environ.get(args.token_env)
            if not token:
                raise ConfigError(f"--token-env {args.token_env}: the variable is not set")
        data = report.from_api(args.from_api, token=token, limit=args.limit or report.API_LIMIT)
        records, alerts, actions, source = data.records, data.alerts, data.actions, data.source
    else:
        records, source = report.load_jsonl(args.windows), Path(args.windows).name
    path = report.write_report(
        records,
        args.output,
        alerts=alerts,
        actions=actions,
        title=args.title,
        baseline=base,
        source=source,
    )
    print(f"wrote {path} ({len(records)} window records)", file=sys.stderr)
    return EXIT_OK


def _example(args: argparse.Namespace) -> int:
    from driftline.example import write_example

    paths = write_example(
        Path(args.directory), rows=args.rows, serving_rows=args.serving_rows, seed=args.seed
    )
    for p in paths:
        print(f"wrote {p}", file=sys.stderr)
    return EXIT_OK
