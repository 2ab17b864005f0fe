"""``sysext-check`` gives the real systemd-sysext's verdict, per systemd version.

Each case is a host os-release (written as text, so systemd's syntax rules are
part of the test) and a directory image.  The real tool merges the image alone
into a scratch root whose ``etc/os-release`` is that text
(``systemd-sysext --root=ROOT merge`` in a private mount namespace); the image
counts as accepted when its marker file appears under ``ROOT/usr``.  Then
``sysext-check`` answers the same question for the same version; the two must
agree on every case.

systemd 252 is this machine's (Debian 12); 257 is Debian 13's, run chrooted
into the cached ``debian:trixie`` base (which is bind-mounted, never
written).  Needs root, mmdebstrap and the Debian mirror for the base.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import testtools

from sysext_builder import paths
from sysext_builder.cli import check
from tests.base import require
from tests.functional import base
from tests.functional.debian_base import remove_tree
from tests.functional.test_named_base import mirror_problem

DEB12 = "ID=debian\nVERSION_ID=12\n"
# name -> (host os-release text, image directory name, extension-release fields)
CASES: dict[str, tuple[str, str, str]] = {
    "same": (DEB12, "same", "ID=debian\nVERSION_ID=12\n"),
    "other-version": (DEB12, "other-version", "ID=debian\nVERSION_ID=11\n"),
    "other-id": (DEB12, "other-id", "ID=fedora\nVERSION_ID=12\n"),
    "any-id": (DEB12, "any-id", "ID=_any\n"),
    "id-like": ("ID=ubuntu\nID_LIKE=debian\nVERSION_ID=12\n", "id-like",
                "ID=debian\nVERSION_ID=12\n"),
    "level": ("ID=debian\nVERSION_ID=12\nSYSEXT_LEVEL=1.0\n", "level",
              "ID=debian\nVERSION_ID=99\nSYSEXT_LEVEL=1.0\n"),
    "other-level": ("ID=debian\nSYSEXT_LEVEL=1.0\n", "other-level",
                    "ID=debian\nSYSEXT_LEVEL=2.0\n"),
    "rolling": ("ID=debian\n", "rolling", "ID=debian\nVERSION_ID=1\n"),
    "no-version": (DEB12, "no-version", "ID=debian\n"),
    "arch": (DEB12, "arch", "ID=debian\nVERSION_ID=12\nARCHITECTURE=arm64\n"),
    "arch-any": (DEB12, "arch-any", "ID=debian\nVERSION_ID=12\nARCHITECTURE=_any\n"),
    "scope-initrd": (DEB12, "scope-initrd", "ID=debian\nVERSION_ID=12\nSYSEXT_SCOPE=initrd\n"),
    "scope-empty": (DEB12, "scope-empty", "ID=debian\nVERSION_ID=12\nSYSEXT_SCOPE=\n"),
    # systemd's env-file syntax in the host os-release
    "unquoted-spaces": ("; a comment\nNAME=Debian GNU/Linux\nID = debian\nVERSION_ID=12  \n",
                        "unquoted-spaces", "ID=debian\nVERSION_ID=12\n"),
    "lower-case-key": ("id=debian\nVERSION_ID=12\n", "lower-case-key", "ID=debian\n"),
    "continuation": ("ID=deb\\\nian\nVERSION_ID=\"1\\\n2\"\n", "continuation",
                     "ID=debian\nVERSION_ID=12\n"),
    "comment-escape": ("ID=debian\n# note \\\nVERSION_ID=13\n", "comment-escape",
                       "ID=debian\nVERSION_ID=12\n"),
    "no-equals": ("ID debian\nID=debian\nVERSION_ID 12\n", "no-equals",
                  "ID=debian\nVERSION_ID=12\n"),
    # names: 256 and later cut NAME at '_'
    "versioned-name": (DEB12, "versioned_1.2", "ID=debian\nVERSION_ID=12\n"),
    # a directory named NAME.raw: 252 keeps the suffix in the name, 257 drops it
    "raw-named-directory": (DEB12, "rawdir.raw", "ID=debian\nVERSION_ID=12\n"),
}

GOOD = "ID=debian\nVERSION_ID=12\n"
# name -> [(extension directory, image directory name, release file suffix, fields,
#           ships usr/lib/os-release)]: several images merged at once
SETS: dict[str, list[tuple[str, str, str, str, bool]]] = {
    "skips-incompatible": [("var/lib/extensions", "good", "good", GOOD, False),
                           ("var/lib/extensions", "old", "old", "ID=debian\nVERSION_ID=11\n",
                            False)],
    "skips-name-mismatch": [("var/lib/extensions", "good", "good", GOOD, False),
                            ("var/lib/extensions", "bad", "other", GOOD, False)],
    "skips-no-id": [("var/lib/extensions", "good", "good", GOOD, False),
                    ("var/lib/extensions", "noid", "noid", "VERSION_ID=12\n", False)],
    "first-of-a-name-wins": [("etc/extensions", "x", "x", GOOD, False),
                             ("var/lib/extensions", "x", "x", GOOD, False)],
    "os-release-aborts": [("var/lib/extensions", "good", "good", GOOD, False),
                          ("var/lib/extensions", "o", "o", GOOD, True)],
    "usr-lib-directories": [("var/lib/extensions", "good", "good", GOOD, False),
                            ("usr/lib/extensions", "a", "a", GOOD, False),
                            ("usr/local/lib/extensions", "b", "b", GOOD, False)],
    "run-and-etc": [("run/extensions", "r", "r", GOOD, False),
                    ("etc/extensions", "e", "e", GOOD, False)],
}

_MERGE = r"""
set -u
base=$1 root=$2 sysext=$3
mount --make-rshared / || exit 90  # systemd-sysext mounts in a child namespace
if [ -n "$base" ]; then
    mount --bind "$base" "$base" && mount -o remount,bind,ro "$base" || exit 90
    mount -t proc proc "$base/proc" || exit 90
    mount -t tmpfs tmpfs "$base/run" || exit 90
    mount -t tmpfs tmpfs "$base/mnt" || exit 90
    mkdir "$base/mnt/root" && mount --bind "$root" "$base/mnt/root" || exit 90
    chroot "$base" "$sysext" --root=/mnt/root merge
    root=$base/mnt/root
else
    mount -t tmpfs tmpfs /run || exit 90
    "$sysext" --root="$root" merge
fi
echo "rc=$?" >&2
for marker in "$root"/usr/share/sysext-matrix/*; do
    [ -e "$marker" ] && echo "merged ${marker##*/}"
done
exit 0
"""


def cache() -> Path:
    return Path(os.environ.get("SYSEXT_TEST_CACHE") or paths.user_cache_dir())


class MatrixCase(testtools.TestCase):
    systemd = 0

    def setUp(self) -> None:
        super().setUp()
        base.require_root("merging with the real systemd-sysext")
        self.work = Path(tempfile.mkdtemp(prefix="sysext-matrix-", dir="/var/tmp"))
        self.addCleanup(remove_tree, self.work)

    def real_verdict(self, name: str, host: str, image: str, release: str,
                     base_root: Path | None, sysext: str) -> tuple[bool, str]:
        root = self.work / name / "root"
        for rel in ("etc", "usr", "opt", "var/lib/extensions"):
            (root / rel).mkdir(parents=True)
        (root / "etc/os-release").write_text(host)
        img = root / "var/lib/extensions" / image
        (img / "usr/share/sysext-matrix").mkdir(parents=True)
        (img / "usr/share/sysext-matrix" / name).write_text("x\n")
        (img / "usr/lib/extension-release.d").mkdir(parents=True)
        release_name = image.split("_")[0].removesuffix(".raw")
        (img / f"usr/lib/extension-release.d/extension-release.{release_name}").write_text(
            release)
        proc = subprocess.run(
            ["unshare", "-m", "--propagation", "private", "bash", "-c", _MERGE, "merge",
             str(base_root or ""), str(root), sysext],
            capture_output=True, text=True, timeout=120, check=False)
        self.assertNotIn("rc=90", proc.stderr, proc.stderr)
        return f"merged {name}" in proc.stdout.splitlines(), proc.stderr[-600:]

    def our_verdict(self, name: str, host: str, image: str, release: str,
                    extra: list[str]) -> bool:
        top = self.work / name / "check"
        img = top / image
        (img / "usr/lib/extension-release.d").mkdir(parents=True)
        release_name = image.split("_")[0].removesuffix(".raw")
        (img / f"usr/lib/extension-release.d/extension-release.{release_name}").write_text(
            release)
        (top / "os-release").write_text(host)
        code = check.main(["--os-release", str(top / "os-release"), "--arch", "x86-64",
                           "--systemd-version", str(self.systemd), *extra,
                           str(img)])
        return code == 0

    def real_set(self, name: str, images: list[tuple[str, str, str, str, bool]],
                 base_root: Path | None, sysext: str) -> tuple[set[str], Path, str]:
        root = self.work / name / "root"
        for rel in ("etc", "usr", "opt"):
            (root / rel).mkdir(parents=True, exist_ok=True)
        (root / "etc/os-release").write_text(DEB12)
        for directory, image, release_name, release, os_release in images:
            img = root / directory / image
            (img / "usr/share/sysext-matrix").mkdir(parents=True)
            (img / "usr/share/sysext-matrix" / f"{image}@{directory.replace('/', '_')}"
             ).write_text("x\n")
            (img / "usr/lib/extension-release.d").mkdir(parents=True)
            (img / f"usr/lib/extension-release.d/extension-release.{release_name}"
             ).write_text(release)
            if os_release:
                (img / "usr/lib/os-release").write_text(DEB12)
        proc = subprocess.run(
            ["unshare", "-m", "--propagation", "private", "bash", "-c", _MERGE, "merge",
             str(base_root or ""), str(root), sysext],
            capture_output=True, text=True, timeout=120, check=False)
        self.assertNotIn("rc=90", proc.stderr, proc.stderr)
        merged = {line.split(" ", 1)[1] for line in proc.stdout.splitlines()
                  if line.startswith("merged ")}
        return merged, root, proc.stderr[-600:]

    def compare_sets(self, base_root: Path | None, sysext: str, id_like: bool) -> None:
        from sysext_builder.sysext import compat, installed

        disagreements = []
        for name, images in sorted(SETS.items()):
            real, root, log = self.real_set(name, images, base_root, sysext)
            found = installed.scan(root, self.systemd, lambda f: compat.incompatibility(
                f, {"ID": "debian", "VERSION_ID": "12"}, host_arch="x86-64",
                id_like=id_like))
            ours = set() if any(e.verdict == installed.ABORTS for e in found) else {
                e.rel.rsplit("/", 1)[1] + "@" + e.rel.rsplit("/", 1)[0].replace("/", "_")
                for e in found if e.verdict == installed.MERGED}
            if real != ours:
                disagreements.append(f"{name}: systemd {self.systemd} merged {sorted(real)}, "
                                     f"sysext-check says {sorted(ours)}; {log}")
        self.assertEqual([], disagreements)

    def compare(self, base_root: Path | None, sysext: str, extra: list[str]) -> None:
        disagreements, merged = [], 0
        for name, (host, image, release) in sorted(CASES.items()):
            real, log = self.real_verdict(name, host, image, release, base_root, sysext)
            ours = self.our_verdict(name, host, image, release, extra)
            merged += real
            if real != ours:
                disagreements.append(f"{name}: systemd {self.systemd} merged={real}, "
                                     f"sysext-check compatible={ours}; {log}")
        self.assertEqual([], disagreements)
        # a matrix where everything merges (or nothing does) would prove nothing
        self.assertTrue(0 < merged < len(CASES), f"{merged} of {len(CASES)} merged")


class TestMatrix252(MatrixCase):
    systemd = 252

    def test_verdicts_equal_the_hosts_systemd_sysext(self) -> None:
        out = subprocess.run(["systemd-sysext", "--version"], capture_output=True, text=True,
                             check=False).stdout
        require("tools", out.startswith("systemd 252"), f"this host's systemd-sysext is "
                f"not 252: {out.splitlines()[:1]}")
        self.compare(None, shutil.which("systemd-sysext") or "systemd-sysext", [])

    def test_installed_images_as_one_merge(self) -> None:
        self.compare_sets(None, shutil.which("systemd-sysext") or "systemd-sysext", False)


class TestMatrix257(MatrixCase):
    systemd = 257

    def trixie(self) -> Path:
        base.require_tool("mmdebstrap", "mmdebstrap")
        problem = mirror_problem()
        require("network", problem is None, f"no Debian mirror: {problem}")
        from sysext_builder.install.cache import Cache
        from sysext_builder.staging import base as staging_base

        store = Cache(cache())
        with store.lock():  # as a build does: another test may be making the same base
            return staging_base.open_base("debian:trixie", store.subdir("bases")).path

    def test_verdicts_equal_debian_13s_systemd_sysext(self) -> None:
        # Debian's 257 (from its dpkg database) matches ID_LIKE: the default says so
        self.compare(self.trixie(), "/usr/bin/systemd-sysext", ["--id-like"])

    def test_installed_images_as_one_merge(self) -> None:
        self.compare_sets(self.trixie(), "/usr/bin/systemd-sysext", True)
