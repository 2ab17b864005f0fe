"""Merging with the real systemd-sysext in a private mount namespace (root only).

Each test packs a hand-made tree, merges it into a scratch root whose
os-release matches (files appear) or does not (systemd-sysext ignores the
extension), and checks that no mount and no scratch directory is left.
"""

from __future__ import annotations

import os
from pathlib import Path

import fixtures

from sysext_builder import formats
from sysext_builder.errors import ImageError
from sysext_builder.sysext import verify
from tests.functional import base
from tests.functional.test_formats import (
    DEBIAN_12,
    FormatTestCase,
    make_tree,
    require_format,
)

EXPECTED = ("opt/hello/data", "usr/bin/hello", "usr/bin/hi",
            "usr/lib/extension-release.d/extension-release.hello")


def require_merge() -> None:
    base.require_root("merging with systemd-sysext")
    base.require_tool("systemd-sysext", "systemd")
    base.require_tool("unshare", "util-linux")


def mounts() -> str:
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        return handle.read()


class MergeTestCase(FormatTestCase):
    def setUp(self) -> None:
        super().setUp()
        require_merge()
        self.scratch = Path(self.useFixture(fixtures.TempDir()).path)
        self.host_had_hello = os.path.lexists("/usr/bin/hello")

    def build(self, fmt: str, name: str = "hello",
              fields: dict[str, str] | None = None, file_name: str | None = None) -> Path:
        if fmt != "directory":
            require_format(fmt)
        driver = formats.get(fmt)
        tree = make_tree(self.dir / f"tree-{fmt}-{name}", name, fields or DEBIAN_12)
        out = self.dir / "out"
        out.mkdir(exist_ok=True)
        return self.pack(fmt, tree, out / (file_name or name + driver.suffix))

    def merge(self, img: Path, os_release: dict[str, str]) -> verify.MergeResult:
        result = verify.merge(img, os_release, workdir=self.scratch)
        self.assertEqual([], os.listdir(self.scratch), "scratch root left behind")
        self.assertNotIn(str(self.scratch), mounts(), "a mount leaked into our namespace")
        self.assertEqual(self.host_had_hello, os.path.lexists("/usr/bin/hello"),
                         "the host /usr changed")
        return result


class TestMergeMatching(MergeTestCase):

    def _merges(self, fmt: str) -> None:
        result = self.merge(self.build(fmt), DEBIAN_12)
        self.assertTrue(result.accepted, result.log)
        self.assertEqual(("hello",), result.merged)
        for path in EXPECTED:
            self.assertIn(path, result.appeared)
        self.assertEqual([], [p for p in result.appeared if ".systemd-sysext" in p])
        self.assertIsNone(result.refusal())

    def test_squashfs(self) -> None:
        self._merges("squashfs")

    def test_erofs(self) -> None:
        self._merges("erofs")

    def test_directory(self) -> None:
        self._merges("directory")

    def test_level_and_arch(self) -> None:
        fields = {"ID": "flatcar", "SYSEXT_LEVEL": "1.0", "ARCHITECTURE": "_any"}
        img = self.build("squashfs", fields=fields)
        host = {"ID": "flatcar", "VERSION_ID": "3815.2.0", "SYSEXT_LEVEL": "1.0"}
        self.assertTrue(self.merge(img, host).accepted)

    def test_os_release_file(self) -> None:
        host = self.dir / "os-release"
        host.write_text('NAME="Debian"\nID=debian\nVERSION_ID="12"\n')
        self.assertTrue(self.merge(self.build("squashfs"), host).accepted)


class TestMergeRefused(MergeTestCase):

    def _refused(self, fmt: str) -> None:
        img = self.build(fmt)
        result = self.merge(img, {"ID": "debian", "VERSION_ID": "11"})
        self.assertFalse(result.accepted)
        self.assertEqual((), result.merged)
        self.assertNotIn("usr/bin/hello", result.appeared)
        self.assertEqual((), result.appeared)
        self.assertIn("is for OS '12', but deployed on top of '11'", result.refusal() or "")

    def test_squashfs(self) -> None:
        self._refused("squashfs")

    def test_erofs(self) -> None:
        self._refused("erofs")

    def test_directory(self) -> None:
        self._refused("directory")

    def test_other_id(self) -> None:
        result = self.merge(self.build("squashfs"), {"ID": "fedora", "VERSION_ID": "12"})
        self.assertFalse(result.accepted)
        self.assertNotIn("usr/bin/hello", result.appeared)

    def test_os_release_inside_is_refused(self) -> None:
        tree = make_tree(self.dir / "tree", "hello")
        (tree / "usr/lib/os-release").write_text("ID=debian\nVERSION_ID=12\n")
        img = self.pack("squashfs", tree, self.dir / "hello.raw")
        result = self.merge(img, DEBIAN_12)
        self.assertFalse(result.accepted)
        self.assertIn("/usr/lib/os-release", result.refusal() or "")

    def test_name_mismatch_aborts_on_252(self) -> None:
        img = self.build("squashfs", file_name="other.raw")
        version = verify.systemd_version() or 0
        base.require("tools", version < 256, f"systemd {version} ignores instead of aborting: "
                     "this test needs systemd < 256 (Debian 12 has 252)")
        err = self.assertRaises(ImageError, self.merge, img, DEBIAN_12)
        self.assertIn("No medium found", err.message)
        self.assertEqual([], os.listdir(self.scratch))


class TestCheckCommandMerge(MergeTestCase):
    """sysext-check --merge end to end, as a subprocess."""

    def test_merge_lists_files(self) -> None:
        img = self.build("squashfs")
        host = self.dir / "os-release"
        host.write_text("ID=debian\nVERSION_ID=12\n")
        proc = base.run("sysext-check", "--os-release", str(host), "--merge", str(img))
        self.assertEqual(0, proc.returncode, proc.stderr)
        lines = proc.stdout.splitlines()
        self.assertEqual("compatible", lines[0])
        self.assertRegex(lines[1], r"^merged: \d+ files appeared under usr/ and opt/$")
        self.assertIn("  usr/bin/hello", lines)
        self.assertIn("  opt/hello/data", lines)

    def test_incompatible_is_not_merged(self) -> None:
        img = self.build("erofs")
        host = self.dir / "os-release"
        host.write_text("ID=debian\nVERSION_ID=11\n")
        proc = base.run("sysext-check", "--os-release", str(host), "--merge", str(img))
        self.assertEqual(30, proc.returncode, proc.stderr)
        self.assertEqual("incompatible: extension VERSION_ID '12' does not match host "
                         "VERSION_ID '11'\n", proc.stdout)
