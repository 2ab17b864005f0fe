#!/usr/bin/env python3
"""Ours against the floors: the same packages as an extension of the same base.

    sudo python bench/bench_floors.py [--base debian:bookworm] [--rounds 3]
                                      [--set hello] [--set "waagent chrony hyperv-daemons"]

For each package set, ``--rounds`` interleaved rounds of three contenders, each
once cold and once warm (the warm run right after the cold one, reusing what
the cold run left: package lists, downloaded .debs, our cache):

ours
    ``sysext-create PKGS-element --base BASE`` (the element only lists the
    packages in ``package-installs.yaml``).  Cold: an empty ``--cache-dir``
    whose ``bases/`` is the shared one (making the base is not timed).
apt floor
    what any tool must at least do: an overlay over the base, chrooted
    ``apt-get update`` and ``apt-get install --no-install-recommends PKGS``,
    ``mksquashfs`` of the upper layer's ``usr`` with our options.  Cold: empty
    package lists and archive; warm: both kept.
dpkg floor
    no maintainer scripts: the packages apt would install, downloaded and
    unpacked with ``dpkg-deb -x`` into one tree (merged ``/usr`` folded),
    ``mksquashfs`` of its ``usr``.  Cold: empty archive; warm: .debs kept.

Prints one line per run and a table of medians with ratios to each floor.
Needs root, mmdebstrap (for the base) and the Debian mirror.  Prints numbers;
the targets of issue 14 are in bench/README.rst.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from functools import partial
from pathlib import Path

SQUASHFS = ["-noappend", "-all-root", "-no-progress", "-comp", "zstd", "-reproducible"]
MERGED = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


def run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False,  # type: ignore[call-overload]
                          **kw)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv[:6])} failed:\n{proc.stderr[-3000:]}")
    return proc


def base_tree(spec: str, cache: Path) -> Path:
    """The named base's tree (made once, in the shared cache)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from sysext_builder.install.cache import Cache
    from sysext_builder.staging.base import open_base

    store = Cache(cache)
    with store.lock():
        return open_base(spec, store.subdir("bases")).path


def element(top: Path, packages: list[str]) -> Path:
    path = top / "elements" / "floor-pkgs"
    path.mkdir(parents=True, exist_ok=True)
    (path / "package-installs.yaml").write_text("".join(f"{p}:\n" for p in packages))
    (path / "README.rst").write_text("benchmark: packages only\n")
    return path.parent


def ours(top: Path, base: str, shared: Path, cache: Path, packages: list[str]) -> float:
    if not cache.exists():
        cache.mkdir(parents=True)
        (cache / "bases").symlink_to(shared / "bases")
    out = top / "out-ours"
    shutil.rmtree(out, ignore_errors=True)
    start = time.monotonic()
    run([sys.executable, "-m", "sysext_builder", "sysext-create", "floor-pkgs",
         "--element-path", str(element(top, packages)), "--base", base,
         "--cache-dir", str(cache), "-o", f"{out}/floor.raw"])
    return time.monotonic() - start


_APT = r"""
set -eu
base=$1 work=$2 state=$3 out=$4; shift 4
mkdir -p "$work/upper" "$work/ovl" "$work/merged" "$state/lists/partial" "$state/archives/partial"
mount -t overlay overlay -o "lowerdir=$base,upperdir=$work/upper,workdir=$work/ovl" "$work/merged"
m=$work/merged
mount -t proc proc "$m/proc"
mount --bind /etc/resolv.conf "$m/etc/resolv.conf"
mount --bind "$state/lists" "$m/var/lib/apt/lists"
mount --bind "$state/archives" "$m/var/cache/apt/archives"
chroot "$m" apt-get -q update >/dev/null
DEBIAN_FRONTEND=noninteractive chroot "$m" \
    apt-get -q -y --no-install-recommends install "$@" >/dev/null
umount "$m/var/cache/apt/archives" "$m/var/lib/apt/lists" "$m/etc/resolv.conf" "$m/proc"
"""


def apt_floor(top: Path, tree: Path, state: Path, packages: list[str]) -> float:
    work = top / "apt-work"
    shutil.rmtree(work, ignore_errors=True)
    out = top / "apt.raw"
    start = time.monotonic()
    run(["unshare", "-m", "--propagation", "private", "bash", "-c", _APT, "apt-floor",
         str(tree), str(work), str(state), str(out), *packages])
    run(["mksquashfs", str(work / "upper/usr"), str(out), *SQUASHFS],
        env={**os.environ, "SOURCE_DATE_EPOCH": "0"})
    took = time.monotonic() - start
    shutil.rmtree(work, ignore_errors=True)
    return took


_URIS = r"""
set -eu
base=$1 state=$2; shift 2
m=$(mktemp -d); w=$(mktemp -d); mkdir "$w/u" "$w/o"
trap 'umount -R "$m"; rm -rf "$w"; rmdir "$m"' EXIT
mount -t overlay overlay -o "lowerdir=$base,upperdir=$w/u,workdir=$w/o" "$m"
mount --bind /etc/resolv.conf "$m/etc/resolv.conf"
mkdir -p "$state/lists/partial"
mount --bind "$state/lists" "$m/var/lib/apt/lists"
[ -n "$(ls "$state/lists" | grep -v partial)" ] || chroot "$m" apt-get -q update >/dev/null
chroot "$m" apt-get -q -y --no-install-recommends --print-uris install "$@" \
    | sed -n "s/^'\([^']*\)' .*/\1/p"
"""


def dpkg_floor(top: Path, tree: Path, state: Path, packages: list[str]) -> float:
    archive = state / "debs"
    archive.mkdir(parents=True, exist_ok=True)
    work = top / "dpkg-tree"
    shutil.rmtree(work, ignore_errors=True)
    out = top / "dpkg.raw"
    start = time.monotonic()
    uris = run(["unshare", "-m", "--propagation", "private", "bash", "-c", _URIS, "uris",
                str(tree), str(state), *packages]).stdout.split()
    missing = [u for u in uris if not (archive / u.rsplit("/", 1)[1]).exists()]
    for uri in missing:
        with urllib.request.urlopen(uri, timeout=120) as response:  # noqa: S310 (the mirror)
            (archive / uri.rsplit("/", 1)[1]).write_bytes(response.read())
    for uri in uris:
        run(["dpkg-deb", "-x", str(archive / uri.rsplit("/", 1)[1]), str(work)])
    for name in MERGED:  # fold merged /usr
        src = work / name
        if src.is_dir() and not src.is_symlink():
            run(["cp", "-a", f"{src}/.", str(work / "usr" / name)])
            shutil.rmtree(src)
    run(["mksquashfs", str(work / "usr"), str(out), *SQUASHFS],
        env={**os.environ, "SOURCE_DATE_EPOCH": "0"})
    took = time.monotonic() - start
    shutil.rmtree(work, ignore_errors=True)
    return took


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", default="debian:bookworm")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--set", action="append", dest="sets",
                   help="a package set (space separated); repeatable")
    p.add_argument("--cache", type=Path, default=Path(
        os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))) / "sysext-builder")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_floors: needs root (overlay mounts, chroot, named bases)")
    sets = [s.split() for s in (args.sets or ["hello", "waagent chrony hyperv-daemons"])]
    tree = base_tree(args.base, args.cache)
    times: dict[tuple[str, str, str], list[float]] = {}
    for round_no in range(1, args.rounds + 1):
        for packages in sets:
            label = " ".join(packages)
            with tempfile.TemporaryDirectory(prefix="bench-floors-", dir="/var/tmp") as scratch:
                top = Path(scratch)
                contenders: dict[str, Callable[[], float]] = {
                    "ours": partial(ours, top, args.base, args.cache, top / "cache", packages),
                    "apt floor": partial(apt_floor, top, tree, top / "apt-state", packages),
                    "dpkg floor": partial(dpkg_floor, top, tree, top / "dpkg-state",
                                          packages),
                }
                for name, contender in contenders.items():
                    for temp in ("cold", "warm"):
                        took = contender()
                        times.setdefault((label, name, temp), []).append(took)
                        print(f"round {round_no} {label:32} {name:10} {temp}: {took:6.2f} s",
                              flush=True)
    print()
    print(f"medians of {args.rounds} rounds against {args.base}")
    for packages in sets:
        label = " ".join(packages)
        for temp in ("cold", "warm"):
            med = {n: statistics.median(times[(label, n, temp)])
                   for n in ("ours", "apt floor", "dpkg floor")}
            print(f"{label:32} {temp}: ours {med['ours']:6.2f} s   apt floor "
                  f"{med['apt floor']:6.2f} s ({med['ours'] / med['apt floor']:.2f}x)   "
                  f"dpkg floor {med['dpkg floor']:6.2f} s "
                  f"({med['ours'] / med['dpkg floor']:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
