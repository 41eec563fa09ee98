"""driftline.toml: valid configs load into frozen values; every mistake names its key."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from driftline import baseline as bl
from driftline import config
from driftline.build import BuildOptions, build_from_batches
from driftline.exceptions import ConfigError

MINIMAL = """
[kafka]
bootstrap_servers = "127.0.0.1:19092"
[window]
size = 500
[[models]]
name = "fraud"
baseline = "fraud.dlb"
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    import pyarrow as pa

    rng = np.random.default_rng(0)
    table = pa.table({"x": rng.normal(size=500), "country": rng.choice(["DE", "FR"], 500)})
    b, _ = build_from_batches(table.to_batches(), BuildOptions(categorical=("country",)))
    bl.save(b, tmp_path / "fraud.dlb")
    bl.save(b, tmp_path / "fraud-v8.dlb")
    return tmp_path


def write(folder: Path, text: str) -> Path:
    p = folder / "driftline.toml"
    p.write_text(text)
    return p


def test_minimal_config_and_defaults(folder: Path) -> None:
    cfg = config.load(write(folder, MINIMAL))
    assert cfg.kafka.bootstrap_servers == "127.0.0.1:19092"
    assert cfg.kafka.group_id == "driftline"
    assert cfg.kafka.topics.windows == "driftline.windows"
    assert cfg.kafka.topics.features is None
    assert cfg.window.size == 500 and cfg.window.duration is None
    assert cfg.state_dir == folder / "driftline-state"  # relative to the config file
    m = cfg.model("fraud")
    assert m is not None and m.baseline == folder / "fraud.dlb"
    assert cfg.policy.threshold == 0.1 and cfg.hysteresis == 2


def test_full_config(folder: Path) -> None:
    text = """
[kafka]
bootstrap_servers = "k1:9092,k2:9092"
group_id = "g"
session_timeout_ms = 6000
[kafka.topics]
inference = "inf"
features = "feat"
labels = "lab"
windows = "w"
dead_letter = "dl"
[state]
dir = "/tmp/state"
[window]
duration = "5m"
step = "1m"
lateness = "30s"
[health]
hysteresis = 3
[policy]
threshold = 0.2
numeric_statistic = "wasserstein"
drift_share = 0.3
[[models]]
name = "fraud"
categorical = ["country"]
[models.versions."7"]
baseline = "fraud.dlb"
[models.versions."8"]
baseline = "fraud-v8.dlb"
"""
    cfg = config.load(write(folder, text))
    assert cfg.kafka.topics.labels == "lab" and cfg.kafka.session_timeout_ms == 6000
    assert (cfg.window.duration, cfg.window.step, cfg.window.lateness) == (300.0, 60.0, 30.0)
    assert cfg.window.size is None
    assert cfg.hysteresis == 3 and cfg.policy.drift_share == 0.3
    assert cfg.policy.numeric_statistic == "wasserstein"
    m = cfg.models[0]
    assert m.categorical == ("country",)
    assert m.baseline_for("8") == folder / "fraud-v8.dlb"
    assert m.baseline_for("9") is None  # no model-wide default


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("size = 500", "size = -5"), "window.size must be a positive integer, got -5"),
        (("size = 500", 'size = "big"'), "window.size must be a positive integer, got 'big'"),
        (("size = 500", 'size = 500\nduration = "5m"'), "either size (events) or duration"),
        (("size = 500", 'duration = "5 minutes"'), "window.duration: a duration looks like"),
        (("[window]", "[windw]"), "windw: unknown key"),
        (("group", "group"), None),
        (
            ('bootstrap_servers = "127.0.0.1:19092"', "bootstrap_servers = 9092"),
            "kafka.bootstrap_servers must be a non-empty string",
        ),
        (
            ('bootstrap_servers = "127.0.0.1:19092"', 'bootstrap_servers = "x"\ntopcs = 1'),
            "kafka.topcs: unknown key",
        ),
        (('baseline = "fraud.dlb"', 'baseline = "missing.dlb"'), "models[0].baseline: "),
        (('name = "fraud"', 'nme = "fraud"'), "models[0].name is required"),
        (('baseline = "fraud.dlb"', ""), "models[0].baseline is required"),
        (("[[models]]", "[models]"), "models must be an array of tables"),
        (("size = 500", 'size = 500\nlateness = "1m"'), "window.lateness applies to event-time"),
        (("size = 500", "size = 500\nstep = 900"), "window.step must not be larger"),
        (("[kafka]", "[kafka\n"), "not valid TOML"),
    ],
)
def test_mistakes_name_the_key(folder: Path, change: tuple[str, str], message: str | None) -> None:
    text = MINIMAL.replace(change[0], change[1], 1)
    if message is None:
        config.load(write(folder, text))
        return
    with pytest.raises(ConfigError) as exc:
        config.load(write(folder, text))
    assert message in str(exc.value)
    assert str(exc.value).startswith(str(folder / "driftline.toml"))


def test_policy_values_are_checked(folder: Path) -> None:
    with pytest.raises(ConfigError, match=r"policy\.numeric_statistic must be one of"):
        config.load(write(folder, MINIMAL + '[policy]\nnumeric_statistic = "t-test"\n'))
    with pytest.raises(ConfigError, match=r"policy: numeric_statistic cannot be linf"):
        config.load(write(folder, MINIMAL + '[policy]\nnumeric_statistic = "linf"\n'))
    with pytest.raises(ConfigError, match=r"policy.alpha must be a number in \(0.0, 0.5\]"):
        config.load(write(folder, MINIMAL + "[policy]\nalpha = 0.9\n"))
    with pytest.raises(ConfigError, match=r"policy.shift_alpha must be a number in \[0.0, 0.5\]"):
        config.load(write(folder, MINIMAL + "[policy]\nshift_alpha = -1e-5\n"))
    with pytest.raises(ConfigError, match=r"policy.min_linf must be a number in \[0.0, 1.0\]"):
        config.load(write(folder, MINIMAL + '[policy]\nmin_linf = "0.1"\n'))
    off = config.load(write(folder, MINIMAL + "[policy]\nshift_alpha = 0\nmin_mean_shift = 0\n"))
    assert off.policy.shift_alpha == 0.0 and off.policy.min_mean_shift == 0.0
    assert config.load(write(folder, MINIMAL)).policy.shift_alpha == 1e-5


def test_duplicate_models_and_corrupt_baseline(folder: Path) -> None:
    twice = MINIMAL + '[[models]]\nname = "fraud"\nbaseline = "fraud.dlb"\n'
    with pytest.raises(ConfigError, match=r"models\[1\]\.name: model 'fraud' is configured twice"):
        config.load(write(folder, twice))
    (folder / "fraud.dlb").write_bytes(b"junk")
    with pytest.raises(ConfigError, match="not a driftline baseline"):
        config.load(write(folder, MINIMAL))


def test_check_command(folder: Path) -> None:
    good = write(folder, MINIMAL)
    r = subprocess.run(
        [sys.executable, "-m", "driftline", "check", "--config", str(good)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and f"{good}: ok" in r.stdout and "model fraud" in r.stdout
    bad = write(folder, MINIMAL.replace("size = 500", "size = 0"))
    r = subprocess.run(
        [sys.executable, "-m", "driftline", "check", "--config", str(bad)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert (
        r.stderr.strip()
        == f"driftline: error: {bad}: window.size must be a positive integer, got 0"
    )
    r = subprocess.run(
        [sys.executable, "-m", "driftline", "check", "--config", str(folder / "none.toml")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "cannot read the config" in r.stderr


def test_shipped_example_config_loads(folder: Path) -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "driftline.toml"
    (folder / "data").mkdir()
    (folder / "fraud.dlb").rename(folder / "data" / "fraud.dlb")
    cfg = config.load(write(folder, example.read_text()))
    assert cfg.window.size == 5000 and cfg.kafka.mode == "group"
    assert cfg.checkpoint_interval == 5.0 and cfg.kafka.topics.labels is None
    assert cfg.models[0].baseline == folder / "data" / "fraud.dlb"


ALERTS = """
[alerts]
retry_base = "2s"
retry_cap = "1m"
max_age = "1h"
max_attempts = 20
outbox = "alerts/outbox.db"
labels = { team = "risk" }
[[alerts.receivers]]
name = "oncall"
url = "https://hooks.example.com/driftline"
secret_env = "HOOK_SECRET"
headers = { "X-Team" = "risk" }
timeout = "3s"
[[alerts.receivers]]
name = "pd"
url = "https://events.pagerduty.com/v2/enqueue"
format = "pagerduty"
routing_key_env = "PD_KEY"
"""


def test_alerts_config(folder: Path) -> None:
    cfg = config.load(write(folder, MINIMAL + ALERTS)).alerts
    assert [r.name for r in cfg.receivers] == ["oncall", "pd"]
    oncall, pd = cfg.receivers
    assert oncall.format == "json" and oncall.secret_env == "HOOK_SECRET"
    assert oncall.timeout == 3.0 and dict(oncall.headers) == {"X-Team": "risk"}
    assert pd.format == "pagerduty" and pd.routing_key_env == "PD_KEY"
    assert (cfg.retry.base, cfg.retry.cap, cfg.retry.max_age) == (2.0, 60.0, 3600.0)
    assert cfg.retry.max_attempts == 20
    assert cfg.outbox == folder / "alerts" / "outbox.db"
    assert dict(cfg.render.labels) == {"team": "risk"}
    plain = config.load(write(folder, MINIMAL))
    assert plain.alerts.receivers == () and plain.alerts.outbox is None
    assert plain.kafka.topics.alerts == "driftline.alerts"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('format = "pagerduty"', 'format = "teams"'), "alerts.receivers[1].format must be one of"),
        (('routing_key_env = "PD_KEY"', ""), "routing_key_env"),
        (('name = "pd"', 'name = "oncall"'), "alerts.receivers: names must be unique"),
        (('timeout = "3s"', "timeout = 3"), "alerts.receivers[0].timeout must be a duration"),
        (('timeout = "3s"', 'tiemout = "3s"'), "alerts.receivers[0].tiemout: unknown key"),
        (
            ('retry_cap = "1m"', 'retry_cap = "1s"'),
            "alerts.retry_cap must be at least alerts.retry_base",
        ),
        (('secret_env = "HOOK_SECRET"', 'secret_env = "hook secret!"'), "environment variable"),
        (
            ("hooks.example.com/driftline", "hooks.example.com:99999/driftline"),
            "url has an invalid port",
        ),
        (('labels = { team = "risk" }', 'external_url = ""'), "alerts.external_url must be"),
    ],
)
def test_alerts_mistakes_name_the_key(folder: Path, change: tuple[str, str], message: str) -> None:
    text = (MINIMAL + ALERTS).replace(*change)
    with pytest.raises(ConfigError, match=re.escape(message)):
        config.load(write(folder, text))


def test_api_and_metrics_defaults_and_values(folder: Path) -> None:
    cfg = config.load(write(folder, MINIMAL))
    assert (cfg.api.enabled, cfg.api.host, cfg.api.port) == (True, "127.0.0.1", 8080)
    assert cfg.api.token_env is None and not cfg.api.protect_reads
    assert cfg.api.max_body_bytes == 10 << 20 and cfg.api.keep_windows == 100
    assert (cfg.metrics.max_versions, cfg.metrics.max_features) == (100, 50)
    text = MINIMAL + (
        '[api]\nhost = "0.0.0.0"\nport = 0\ntoken_env = "DL_TOKEN"\nprotect_reads = true\n'
        "max_body_bytes = 1000\nkeep_windows = 5\n"
        '[metrics]\nmax_versions = 3\nmax_features = 4\nfeatures = ["amount"]\n'
    )
    cfg = config.load(write(folder, text))
    assert (cfg.api.host, cfg.api.port, cfg.api.token_env) == ("0.0.0.0", 0, "DL_TOKEN")
    assert cfg.api.protect_reads and cfg.api.max_body_bytes == 1000 and cfg.api.keep_windows == 5
    assert cfg.metrics.features == ("amount",) and cfg.metrics.max_versions == 3


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("[api]\nport = 70000", "api.port must be a port number (0 to 65535), got 70000"),
        ("[api]\nport = -1", "api.port must be an integer >= 0, got -1"),
        ('[api]\nport = "80"', "api.port must be an integer >= 0, got '80'"),
        ('[api]\ntoken_env = "not a name"', "api: token_env must name an environment variable"),
        ("[api]\nprotect_reads = true", "api.protect_reads needs api.token_env"),
        ("[api]\nmax_body_bytes = 0", "api.max_body_bytes must be a positive integer, got 0"),
        ("[api]\nenabled = 1", "api.enabled must be true or false, got 1"),
        ("[api]\nprot = true", "api.prot: unknown key"),
        ("[metrics]\nmax_versions = 0", "metrics.max_versions must be a positive integer"),
        ("[metrics]\nfeatures = 3", "metrics.features must be a list of strings, got 3"),
        ('[registry]\nretry = "0s"', "registry.retry: a duration must be positive, got '0s'"),
        ("[registry]\nretry = 30", 'registry.retry must be a duration such as "5m", got 30'),
        ('[registry]\nretyr = "1m"', "registry.retyr: unknown key"),
    ],
)
def test_api_and_metrics_mistakes_name_the_key(folder: Path, table: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        config.load(write(folder, MINIMAL + table + "\n"))
    assert message in str(exc.value)


def test_serve_without_the_token_variable_exits_2(folder: Path) -> None:
    text = MINIMAL + '[api]\ntoken_env = "DRIFTLINE_TEST_NO_SUCH_TOKEN"\n'
    r = subprocess.run(
        [sys.executable, "-m", "driftline", "serve", "--config", str(write(folder, text))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert "$DRIFTLINE_TEST_NO_SUCH_TOKEN, which is not set or empty" in r.stderr


def test_kafka_security_defaults_and_values(folder: Path) -> None:
    cfg = config.load(write(folder, MINIMAL))
    assert cfg.kafka.security.protocol == "PLAINTEXT"
    assert cfg.kafka.security.client_options({}) == {"security_protocol": "PLAINTEXT"}
    (folder / "ca.pem").write_text("ca")
    (folder / "client.pem").write_text("cert")
    (folder / "client.key").write_text("key")
    text = MINIMAL.replace(
        "[kafka]\n",
        '[kafka]\nsecurity_protocol = "SASL_SSL"\nsasl_mechanism = "SCRAM-SHA-512"\n'
        'sasl_username = "driftline"\nsasl_password_env = "DL_SASL"\nssl_cafile = "ca.pem"\n'
        'ssl_certfile = "client.pem"\nssl_keyfile = "client.key"\n'
        'ssl_password_env = "DL_KEY"\nssl_check_hostname = false\n',
    )
    cfg = config.load(write(folder, text))
    assert "secret" not in repr(cfg)  # only the variables' names are in the config
    assert cfg.kafka.security.client_options({"DL_SASL": "s3cret", "DL_KEY": "k3y"}) == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "driftline",
        "sasl_plain_password": "s3cret",
        "ssl_check_hostname": False,
        "ssl_cafile": str(folder / "ca.pem"),  # relative to the config file
        "ssl_certfile": str(folder / "client.pem"),
        "ssl_keyfile": str(folder / "client.key"),
        "ssl_password": "k3y",
    }
    with pytest.raises(ConfigError, match=r"\$DL_SASL, which is not set or empty"):
        cfg.kafka.security.client_options({"DL_KEY": "k3y"})


@pytest.mark.parametrize(
    ("kafka", "message"),
    [
        ('security_protocol = "TLS"', "kafka.security_protocol must be one of ['PLAINTEXT',"),
        ('security_protocol = "SASL_SSL"', "kafka.sasl_mechanism is required with"),
        (
            'security_protocol = "SASL_PLAINTEXT"\nsasl_mechanism = "PLAIN"\nsasl_username = "u"',
            "kafka.sasl_password_env is required with security_protocol = 'SASL_PLAINTEXT'",
        ),
        ('sasl_mechanism = "PLAIN"', "kafka.sasl_mechanism needs security_protocol SASL_"),
        (
            'security_protocol = "SASL_SSL"\nsasl_mechanism = "GSSAPI"',
            "kafka.sasl_mechanism must be one of ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512']",
        ),
        ('ssl_cafile = "ca.pem"', "kafka.ssl_cafile: no such file"),
        ('sasl_password_env = "not a name"', "kafka: sasl_password_env must name an environment"),
        ("ssl_check_hostname = 1", "kafka.ssl_check_hostname must be true or false"),
        ("enabled = 0", "kafka.enabled must be true or false, got 0"),
    ],
)
def test_kafka_security_mistakes_name_the_key(folder: Path, kafka: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        config.load(write(folder, MINIMAL.replace("[kafka]\n", f"[kafka]\n{kafka}\n")))
    assert message in str(exc.value)


def test_ssl_files_need_an_ssl_protocol(folder: Path) -> None:
    (folder / "ca.pem").write_text("ca")
    text = MINIMAL.replace("[kafka]\n", '[kafka]\nssl_cafile = "ca.pem"\n')
    with pytest.raises(ConfigError, match=r"kafka.ssl_cafile needs security_protocol SSL"):
        config.load(write(folder, text))


def test_kafka_off_needs_the_api_with_a_token(folder: Path) -> None:
    off = MINIMAL.replace("[kafka]\n", "[kafka]\nenabled = false\n")
    with pytest.raises(ConfigError, match=r"kafka.enabled = false: events then come only over"):
        config.load(write(folder, off))
    with pytest.raises(ConfigError, match=r"kafka.enabled = false"):
        config.load(write(folder, off + '[api]\nenabled = false\ntoken_env = "T"\n'))
    cfg = config.load(write(folder, off + '[api]\ntoken_env = "T"\n[labels]\nwindow = 100\n'))
    assert not cfg.kafka.enabled and cfg.read_labels  # labels come over the API too
    assert not config.load(write(folder, off + '[api]\ntoken_env = "T"\n')).read_labels
    with pytest.raises(ConfigError, match=r"labels: set kafka.topics.labels"):
        config.load(write(folder, MINIMAL + "[labels]\nwindow = 100\n"))  # Kafka on
    path = write(folder, off + '[api]\ntoken_env = "T"\n[labels]\nwindow = 100\n')
    r = subprocess.run(
        [sys.executable, "-m", "driftline", "check", "--config", str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "kafka disabled: events over POST /v1/events only" in r.stdout
    assert "labels from the API" in r.stdout


def test_categorical_columns_are_checked_against_the_baselines(folder: Path) -> None:
    ok = MINIMAL + 'categorical = ["country"]\n'
    assert config.load(write(folder, ok)).models[0].categorical == ("country",)
    with pytest.raises(
        ConfigError, match=r"models\[0\].categorical: 'x' is numeric in the baseline"
    ):
        config.load(write(folder, MINIMAL + 'categorical = ["x"]\n'))
    with pytest.raises(ConfigError, match=r"'device' is not a column of the baseline"):
        text = MINIMAL.replace(
            'baseline = "fraud.dlb"', '[models.versions."8"]\nbaseline = "fraud-v8.dlb"'
        )
        config.load(
            write(
                folder, text.replace('name = "fraud"', 'name = "fraud"\ncategorical = ["device"]')
            )
        )
