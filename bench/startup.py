"""What starting `imagepipe process` costs: CPU seconds of whole runs on one
tiny PNG (so almost all of it is interpreter start-up and imports), and
which of the heavy modules each run imported.

    .venv/bin/python bench/startup.py [--runs 20] [--jobs 1]

Each run is `imagepipe process --jobs N --out DIR tiny.png` with the
product venv; its CPU is the children's rusage (user + system), so the
figure includes everything the process did. One unmeasured run first, so
that bytecode is cached as after an install. Median and quartiles over the
runs, with the load average (the machine is shared: CPU time, not wall).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ROOT / ".venv" / "bin" / "imagepipe"


def run_cpu(command: list[str], env: dict[str, str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def imports_numpy(command: list[str], env: dict[str, str]) -> bool:
    """Whether the run imported numpy (`-X importtime` on stderr)."""
    probe = [str(ROOT / ".venv" / "bin" / "python"), "-X", "importtime", *command]
    stderr = subprocess.run(probe, env=env, check=True, capture_output=True, text=True).stderr
    return any(line.rsplit("|", 1)[-1].strip() == "numpy" for line in stderr.splitlines())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as tmp:
        tiny = Path(tmp) / "tiny.png"
        Image.new("RGB", (16, 16), (200, 120, 40)).save(tiny)
        command = [str(PRODUCT), "process", "--jobs", str(args.jobs), str(tiny)]
        loads = [os.getloadavg()[0]]
        cpu = []
        for i in range(args.runs + 1):
            with tempfile.TemporaryDirectory() as out:
                seconds = run_cpu([*command, "--out", out], env)
            if i:
                cpu.append(seconds)
        loads.append(os.getloadavg()[0])
        with tempfile.TemporaryDirectory() as out:
            numpy = imports_numpy([*command, "--out", out], env)
    quartiles = statistics.quantiles(cpu, n=4)
    print(
        f"imagepipe process --jobs {args.jobs} (one 16x16 PNG): CPU s per run median"
        f" {statistics.median(cpu):.3f} (quartiles {quartiles[0]:.3f}-{quartiles[2]:.3f},"
        f" min {min(cpu):.3f}, max {max(cpu):.3f}; {len(cpu)} runs)"
    )
    print(f"imports numpy: {'yes' if numpy else 'no'}")
    print(f"load average (1 min) from {min(loads):.2f} to {max(loads):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
