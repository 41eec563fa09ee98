"""benchmarks/kafka_throughput.py's CPU accounting: finding the broker's process by its
listener URL, reading a process's CPU seconds from /proc, and the two figures made of them.
(The benchmark itself runs in CI as ``kafka_throughput.py --quick``.)"""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


@pytest.fixture(scope="module")
def kt(bench_module):  # type: ignore[no-untyped-def]
    return bench_module("kafka_throughput")


def test_a_process_is_found_by_its_listener_url_and_its_cpu_read(kt) -> None:  # type: ignore[no-untyped-def]
    # a stand-in for the broker: busy for ~0.4 s of CPU, then asleep, with the URL in argv;
    # its name in /proc/PID/stat holds ") (" as a process name may (PR_SET_NAME), so the
    # fields are found after the last ")"
    spin = (
        "import ctypes, time\n"
        "ctypes.CDLL(None).prctl(15, b'a) (b', 0, 0, 0)\n"
        "t = time.process_time()\n"
        "while time.process_time() - t < 0.4: pass\n"
        "print('spun', flush=True)\n"
        "time.sleep(30)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", spin, "--listener-url", "tcp://127.0.0.1:12"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "spun\n"
        assert "a) (b" in Path(f"/proc/{proc.pid}/stat").read_text()
        assert kt.broker_pid("127.0.0.1:12") == proc.pid
        assert kt.broker_pid("127.0.0.1:1") is None  # a prefix of the URL is another port
        assert kt.broker_pid("127.0.0.1:2") is None
        spent = kt.cpu_seconds(proc.pid)
        assert 0.35 <= spent < 5.0
        time.sleep(0.2)  # asleep: no more CPU
        assert kt.cpu_seconds(proc.pid) - spent < 0.05
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert math.isnan(kt.cpu_seconds(proc.pid))  # gone
    assert math.isnan(kt.cpu_seconds(None))


def test_span_counts_every_thread_of_this_process(kt) -> None:  # type: ignore[no-untyped-def]
    def spin() -> None:
        t = time.thread_time()
        while time.thread_time() - t < 0.2:
            pass

    span = kt.Span(None)
    other = threading.Thread(target=spin)  # the engine's work is on threads of its own
    other.start()
    other.join()
    took = span.stop()
    assert took["cpu_s"] >= 0.2 and took["seconds"] >= 0.2
    assert math.isnan(took["broker_cpu_s"])  # no broker process given


def test_cores_busy_and_the_ratio_at_full_use(kt) -> None:  # type: ignore[no-untyped-def]
    run = {
        "bare_seconds": 0.6,
        "engine_seconds": 1.2,
        "engine_cpu_s": 1.5,
        "engine_broker_cpu_s": 0.5,
    }
    # 2.0 CPU-s in 1.2 s on 2 cores: 2.0 / 2.4 of their time
    assert kt.cores_busy(run, 2) == pytest.approx(2.0 / 2.4)
    # spread over 2 cores the 2.0 CPU-s take 1.0 s at best: 0.6 / 1.0
    assert kt.at_full_use(run, 2) == pytest.approx(0.6)
    assert kt.at_full_use(run, 4) == pytest.approx(1.2)


def test_thread_cpu_is_counted_by_thread_name(kt) -> None:  # type: ignore[no-untyped-def]
    go, done = threading.Event(), threading.Event()
    finished = [threading.Event(), threading.Event()]

    def spin(seconds: float, finish: threading.Event) -> None:
        go.wait()
        t = time.thread_time()
        while time.thread_time() - t < seconds:
            pass
        finish.set()
        done.wait()  # alive, idle, until the reading

    spun = threading.Event()

    def busy_before() -> None:
        t = time.thread_time()
        while time.thread_time() - t < 0.2:
            pass
        spun.set()
        done.wait()

    early = threading.Thread(target=busy_before, name="before")
    early.start()
    spun.wait()
    spent = kt.ThreadCPU()  # "before" ran 0.2 s before this: not counted
    workers = [
        threading.Thread(target=spin, args=(0.3, finished[0]), name="spinner"),
        threading.Thread(target=spin, args=(0.1, finished[1]), name="spinner"),
        threading.Thread(target=done.wait, name="sleeper"),
    ]
    for w in workers:
        w.start()
    go.set()
    for f in finished:
        assert f.wait(60)
    by_name = spent.read()
    done.set()
    for w in [early, *workers]:
        w.join()
    assert 0.4 <= by_name["spinner"] < 0.5  # both spinners, under one name
    assert by_name["sleeper"] < 0.05 and by_name["before"] < 0.05
    assert list(by_name) == sorted(by_name, key=lambda n: -by_name[n])
    assert spent.read() is by_name  # the first reading is kept


def test_median_threads_counts_a_missing_thread_as_zero(kt) -> None:  # type: ignore[no-untyped-def]
    runs = [{"a": 1.0, "b": 0.5}, {"a": 3.0}, {"a": 2.0, "b": 0.7}]
    assert kt.median_threads(runs) == {"a": 2.0, "b": 0.5}
    assert list(kt.median_threads(runs)) == ["a", "b"]
