"""The daemon's latency (a photo's close -> its symlink in a person folder) and idle memory.

Starts the real daemon with the default pool and debounce on a temp folder, seeds it with a
person, then copies photos in one at a time and times each until its link appears. Memory is
the resident set of the daemon and its workers, read from /proc once the daemon is idle.

    python benchmarks/latency.py [--photos 6] [--debounce 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from faced.service.daemon import IDLE_POOL_SECONDS

REPO = Path(__file__).resolve().parent.parent
SMALL = REPO.parent / "shared" / "data" / "faces" / "fixture_small"


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MB."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(next(x for x in status.splitlines() if x.startswith("VmRSS")).split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration):
            continue
    return total / 1024


def linked(people: Path, name: str) -> bool:
    return any(p.name == name for p in people.glob("*/*") if p.is_symlink())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=6)
    parser.add_argument("--debounce", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        photos, people = root / "photos", root / "people"
        photos.mkdir()
        cfg = root / "faced.yaml"
        cfg.write_text(
            f"watch: [{photos}]\noutput: {people}\nstate: {root / 'state'}\n"
            f"daemon: {{debounce_seconds: {args.debounce}}}\n",
            encoding="utf-8",
        )
        # The installed `faced` command, as systemd starts it (its worker processes re-import
        # the command's module, so `python -m faced` would not measure quite the same thing).
        command = Path(sys.executable).with_name("faced")
        proc = subprocess.Popen([str(command), "run", "--config", str(cfg), "-q"], cwd=REPO)
        try:
            source = sorted((SMALL / "jerry_seinfeld").glob("*.jpg"))
            for p in source[:3]:  # a person to join
                shutil.copy(p, photos / p.name)
            deadline = time.monotonic() + 120
            while not linked(people, source[0].name) and time.monotonic() < deadline:
                time.sleep(0.2)
            latencies = []
            for p in source[3 : 3 + args.photos]:
                shutil.copy(p, photos / p.name)  # closed when copy returns
                start = time.monotonic()
                while not linked(people, p.name):
                    time.sleep(0.05)
                    if time.monotonic() - start > 120:
                        raise SystemExit(f"{p.name} never appeared")
                latencies.append(time.monotonic() - start)
            time.sleep(args.debounce + 5)  # idle: nothing queued, workers still warm
            rss_warm = tree_rss_mb(proc.pid)
            time.sleep(IDLE_POOL_SECONDS + 6 - args.debounce - 5)  # idle workers released
            rss_idle = tree_rss_mb(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    lat = sorted(latencies)
    print(f"workers: {os.cpu_count()} (default pool), debounce {args.debounce:.0f} s")
    print(
        f"latency close -> link: median {lat[len(lat) // 2]:.1f} s, max {lat[-1]:.1f} s "
        f"(goal: debounce + 5 s = {args.debounce + 5:.0f} s)"
    )
    print(
        f"memory (daemon + workers RSS): {rss_warm:.0f} MB just after work, "
        f"{rss_idle:.0f} MB idle (workers released after {IDLE_POOL_SECONDS:.0f} s; goal <= 400 MB)"
    )


if __name__ == "__main__":
    main()
