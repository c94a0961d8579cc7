"""Runs every benchmark in turn (`make bench`); each prints its own figures and goals."""

from __future__ import annotations

import sys

from bench import bench_commands, bench_detection, bench_import, bench_pulses, bench_webhooks


def main() -> int:
    status = 0
    for bench in (bench_import, bench_commands, bench_pulses, bench_detection, bench_webhooks):
        print(f"\n=== {bench.__name__} ===", flush=True)
        status = max(status, bench.main([]))
    return status


if __name__ == "__main__":
    sys.exit(main())
