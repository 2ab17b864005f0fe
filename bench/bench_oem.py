#!/usr/bin/env python3
"""Build time and image size of ``azure-oem simple-init`` per format, cold and warm cache.

    python bench/bench_oem.py [--base TARBALL] [--formats squashfs erofs directory]

For each format: one build with an empty cache directory (cold: PyPI wheels,
sources and -- with --base -- apt lists and packages are fetched) and one
with the cache the cold build left (warm).  Prints seconds and the image size
(for ``directory`` the apparent size of the tree).  Needs the network for the
cold builds; with --base needs root.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                total += os.path.getsize(full)
    return total


def build(fmt: str, cache: Path, out: Path, base: str | None) -> tuple[float, int]:
    argv = [sys.executable, "-m", "sysext_builder", "sysext-create", "azure-oem",
            "simple-init", "-t", fmt, "-o", f"{out}/", "--cache-dir", str(cache)]
    if base:
        argv += ["--base", base]
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"build failed ({fmt}):\n{proc.stderr[-3000:]}")
    image = out / ("oem-azure" if fmt == "directory" else "oem-azure.raw")
    return seconds, tree_size(image)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", help="build against this base (tarball/dir/image)")
    parser.add_argument("--formats", nargs="+", default=["squashfs", "erofs", "directory"])
    args = parser.parse_args()
    rows = []
    for fmt in args.formats:
        top = Path(tempfile.mkdtemp(prefix="bench-oem-"))
        try:
            cache = top / "cache"
            cold = build(fmt, cache, top / "cold", args.base)
            warm = build(fmt, cache, top / "warm", args.base)
            rows.append((fmt, cold, warm))
            print(f"{fmt}: cold {cold[0]:.1f} s, warm {warm[0]:.1f} s, "
                  f"{cold[1] / 1024:.0f} KiB", flush=True)
        finally:
            shutil.rmtree(top, ignore_errors=True)
    print()
    print(f"azure-oem simple-init ({'base ' + args.base if args.base else 'no base'})")
    print(f"{'format':<10} {'cold s':>8} {'warm s':>8} {'size KiB':>10}")
    for fmt, cold, warm in rows:
        print(f"{fmt:<10} {cold[0]:8.1f} {warm[0]:8.1f} {cold[1] / 1024:10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
