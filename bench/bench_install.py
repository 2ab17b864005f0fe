#!/usr/bin/env python3
"""Installing against a base: image size with and without base exclusion, cold and warm cache.

    sudo python bench/bench_install.py --base TARBALL [--packages waagent chrony ...]

1. Builds ``azure-oem simple-init`` against the base twice, with an empty
   cache (cold) and again with the cache the first build filled (warm):
   prints both times.
2. Packs the same content "naively", as a tool without base exclusion would:
   every file of the full dependency closure of the requested packages
   (``apt-cache depends --recurse``, downloaded with the host's apt and
   unpacked with ``dpkg-deb -x``, merged-/usr folded into usr/) plus the
   image's own files, with the same mksquashfs options: prints both sizes.
The host must be Debian of the same release as the base (its apt resolves the
closure).  Needs root and the network.
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

MERGED = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


def run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload]
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv[:4])} failed:\n{proc.stderr[-3000:]}")
    return proc


def build(base: str, cache: Path, out: Path, fmt: str) -> float:
    start = time.monotonic()
    run([sys.executable, "-m", "sysext_builder", "sysext-create", "azure-oem", "simple-init",
         "--base", base, "--cache-dir", str(cache), "-t", fmt, "-o", f"{out}/"])
    return time.monotonic() - start


def closure(packages: list[str]) -> list[str]:
    out = run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
               "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances",
               *packages]).stdout
    return sorted({line.strip() for line in out.splitlines()
                   if line and not line.startswith((" ", "<"))})


def naive_tree(packages: list[str], top: Path) -> Path:
    debs, root = top / "debs", top / "naive"
    debs.mkdir()
    root.mkdir()
    names = closure(packages)
    print(f"naive: {len(names)} packages in the closure of {' '.join(packages)}", flush=True)
    run(["apt-get", "download", *names], cwd=debs)
    for deb in sorted(debs.glob("*.deb")):
        run(["dpkg-deb", "-x", str(deb), str(root)])
    for top_dir in MERGED:  # merged-/usr: /bin etc. live under /usr on the target
        src = root / top_dir
        if src.is_dir() and not src.is_symlink():
            shutil.copytree(src, root / "usr" / top_dir, symlinks=True, dirs_exist_ok=True)
            shutil.rmtree(src)
    for name in os.listdir(root):
        if name not in ("usr", "opt"):
            shutil.rmtree(root / name, ignore_errors=True)
    return root


def overlay_missing(src: Path, dest: Path) -> None:
    """Copy what ``src`` has and ``dest`` lacks (the image's own, non-package files)."""
    for dirpath, _dirs, files in os.walk(src):
        rel = Path(dirpath).relative_to(src)
        (dest / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            target = dest / rel / name
            if not os.path.lexists(target):
                shutil.copy2(Path(dirpath) / name, target, follow_symlinks=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True)
    parser.add_argument("--packages", nargs="+", default=["waagent", "chrony", "hyperv-daemons"],
                        help="the distro packages the elements request")
    args = parser.parse_args()
    top = Path(tempfile.mkdtemp(prefix="bench-install-"))
    try:
        cache = top / "cache"
        cold = build(args.base, cache, top / "cold", "squashfs")
        warm = build(args.base, cache, top / "warm", "squashfs")
        build(args.base, cache, top / "dir", "directory")
        ours = (top / "cold" / "oem-azure.raw").stat().st_size
        naive = naive_tree(args.packages, top)
        overlay_missing(top / "dir" / "oem-azure", naive)
        naive_img = top / "naive.raw"
        env = dict(os.environ, SOURCE_DATE_EPOCH="0")
        run(["mksquashfs", str(naive), str(naive_img), "-all-root", "-noappend", "-comp",
             "zstd", "-no-progress", "-quiet"], env=env)
        size = naive_img.stat().st_size
        print()
        print(f"{'':28} {'seconds':>8}")
        print(f"{'build, cold cache':28} {cold:8.1f}")
        print(f"{'build, warm cache':28} {warm:8.1f}")
        print()
        print(f"{'':28} {'KiB':>8}")
        print(f"{'naive (full closure)':28} {size / 1024:8.0f}")
        print(f"{'base-excluded (ours)':28} {ours / 1024:8.0f}")
        print(f"ratio naive/ours: {size / ours:.1f}")
    finally:
        shutil.rmtree(top, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
