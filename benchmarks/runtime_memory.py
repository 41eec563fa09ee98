"""Runtime memory: what a process holds before it holds any data, step by step.

    python benchmarks/runtime_memory.py

The peer comparison's memory bar compares whole processes, each holding the same 194 MB of
arrays. This script measures what sits under that: each step runs in a fresh interpreter,
and its resident memory (``VmRSS``; anonymous and file-backed parts from
``/proc/self/status``) is read when the step is done:

1. ``import numpy`` (every tool has it);
2. ``import scipy.stats`` after it (the NumPy/SciPy baseline and frouros use it);
3. ``import driftline.detectors`` after numpy (imports Numba);
4. then the first calls of driftline's kernels on small data (a reference and a window's
   statistics): Numba loads the cached machine code through LLVM here, and the resident
   part of ``libllvmlite.so`` (from ``/proc/self/smaps``) is printed too.

Linux only (``/proc``). Prints a table; nothing is written.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

STEPS = {
    "numpy": "import numpy",
    "numpy + scipy.stats": "import numpy, scipy.stats",
    "numpy + driftline.detectors": "import numpy, driftline.detectors",
    "... + first kernel calls": (
        "import numpy as np\n"
        "from driftline.detectors import numeric_reference, numeric_statistics\n"
        "rng = np.random.default_rng(0)\n"
        "numeric_statistics(numeric_reference(rng.normal(size=1000)), rng.normal(size=100))"
    ),
}

PROBE = """
import json
{code}
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
kb = lambda key: int(status[key].split()[0])
llvm, mapping = 0, ""
for line in open("/proc/self/smaps"):
    head = line.split()
    if "-" in head[0] and len(head) >= 5:
        mapping = head[5] if len(head) > 5 else ""
    elif head[0] == "Rss:" and mapping.endswith("libllvmlite.so"):
        llvm += int(head[1])
print(json.dumps({{"rss": kb("VmRSS"), "anon": kb("RssAnon"), "file": kb("RssFile"),
                  "llvm": llvm}}))
"""


def measure(code: str) -> dict[str, float]:
    """MB resident in a fresh interpreter after running ``code``."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(code=code)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {k: v / 1024 for k, v in json.loads(out.splitlines()[-1]).items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.parse_args(argv)
    print(f"{'step':<30} {'RSS MB':>7} {'anon':>6} {'file':>6} {'of it libllvmlite.so':>21}")
    base = None
    for label, code in STEPS.items():
        m = measure(code)
        base = m["rss"] if base is None else base
        print(
            f"{label:<30} {m['rss']:>7.0f} {m['anon']:>6.0f} {m['file']:>6.0f} "
            f"{m['llvm']:>21.0f}   (+{m['rss'] - base:.0f} over numpy)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
