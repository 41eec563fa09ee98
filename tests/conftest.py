import importlib
import itertools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from brokers import tansu
from hypothesis import HealthCheck, settings
from mlflow_server import mlflow_executable
from services import missing_service

from driftline.example import write_example, write_example_baseline

# make test and CI: the same examples every run (derandomize), so that a red run is the
# change's and not a newly drawn example's; make test-random draws fresh ones
settings.register_profile(
    "ci",
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=50, deadline=None)
# CI's second pass with NUMBA_DISABLE_JIT (kernels run as Python, slower): fewer examples,
# the same every run as in "ci"
settings.register_profile("ci-nojit", settings.get_profile("ci"), max_examples=50)
# make test-random: fresh examples, ten times as many, to find the rare case before CI does
settings.register_profile(
    "random", max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


_topics = itertools.count()


@pytest.fixture(scope="session")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example fraud data set (8,000 training rows, 12,000 serving rows whose later
    windows drift) and its baseline ``fraud.dlb`` (prediction ``score``, label ``label``),
    written once per test session."""
    d = tmp_path_factory.mktemp("example")
    write_example(d, rows=8000, serving_rows=12_000, seed=3)
    write_example_baseline(d)
    return d


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of a real Kafka-protocol broker (Tansu), one per test session."""
    log = Path(tmp_path_factory.mktemp("tansu")) / "tansu.log"
    with tansu(log) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def mlflow_exe() -> Path:
    """The ``mlflow`` executable a real MLflow server is started with."""
    executable = mlflow_executable()
    if executable is None:
        missing_service("no mlflow server: `make test` installs one in .venv-mlflow")
    assert executable is not None
    return executable


@pytest.fixture
def topic(broker: str, request: pytest.FixtureRequest) -> str:
    """A fresh topic (one partition) for this test."""
    from kafka.admin import KafkaAdminClient, NewTopic

    name = f"t{next(_topics)}-{request.node.name[:40]}".replace("[", "-").replace("]", "")
    admin = KafkaAdminClient(bootstrap_servers=broker)
    try:
        admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        admin.close()
    return name


BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def bench_module() -> Iterator[Callable[[str], ModuleType]]:
    """Imports a script of benchmarks/ by name (the folder is on ``sys.path`` for the
    test module's duration, as when the scripts run)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield importlib.import_module
    finally:
        sys.path.remove(str(BENCHMARKS))
