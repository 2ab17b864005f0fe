"""Extracting the extension from the overlay's upper layer (no mounts needed)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import fixtures
import testtools

from sysext_builder.errors import TreeRuleError
from sysext_builder.staging.overlay import Overlay, extract


class TestExtract(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        top = Path(self.useFixture(fixtures.TempDir()).path)
        self.lower = top / "lower"
        for rel, text in (("usr/bin/sh", "shell"), ("usr/share/doc/base/README", "base doc"),
                          ("etc/os-release", "ID=x\n")):
            (self.lower / rel).parent.mkdir(parents=True, exist_ok=True)
            (self.lower / rel).write_text(text)
        (top / "work").mkdir()
        self.overlay = Overlay.under(self.lower, top / "work")
        self.dest = top / "ext"
        self.dest.mkdir()

    def upper(self, rel: str, text: str, mode: int = 0o644) -> Path:
        path = self.overlay.upper / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)
        return path

    def test_keeps_new_and_changed_drops_identical_and_outside(self) -> None:
        self.upper("usr/bin/hello", "new", 0o755)
        self.upper("usr/share/doc/base/README", "base doc")       # identical copy-up
        self.upper("usr/bin/sh", "patched shell", 0o755)           # changed: kept
        self.upper("var/lib/dpkg/status", "db")                    # package db: dropped
        self.upper("etc/hello.conf", "x")                          # added: kept, to lower
        self.upper("etc/os-release", "ID=x\n")                     # identical copy-up
        self.upper("opt/tool/run", "t", 0o755)
        counts = extract(self.overlay, self.dest)
        found = sorted(str(p.relative_to(self.dest)) for p in self.dest.rglob("*")
                       if not p.is_dir())
        self.assertEqual(["etc/hello.conf", "opt/tool/run", "usr/bin/hello", "usr/bin/sh"],
                         found)
        self.assertEqual({"kept": 4, "identical": 2, "dropped": 1}, counts)
        self.assertEqual(0o755, stat.S_IMODE((self.dest / "usr/bin/hello").stat().st_mode))

    def test_mode_change_alone_is_kept(self) -> None:
        self.upper("usr/share/doc/base/README", "base doc", 0o600)
        extract(self.overlay, self.dest)
        self.assertTrue((self.dest / "usr/share/doc/base/README").exists())

    def test_whiteout_of_a_base_file_is_an_error_naming_it(self) -> None:
        if os.geteuid() != 0:
            self.skipTest("creating an overlay whiteout (a 0:0 character device) needs root")
        (self.overlay.upper / "usr/bin").mkdir(parents=True)
        os.mknod(self.overlay.upper / "usr/bin/sh", stat.S_IFCHR | 0o000, os.makedev(0, 0))
        err = self.assertRaises(TreeRuleError, extract, self.overlay, self.dest)
        self.assertEqual("the build removed files of the base: /usr/bin/sh (deleted)",
                         err.message)
        self.assertIn("can only add files", err.hint or "")
        self.assertEqual([], os.listdir(self.dest), "nothing is moved on error")
