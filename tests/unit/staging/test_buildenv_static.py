"""buildenv.copy_static: element static/ trees copied without writing through
anything already in the staging tree (a canary beside it stays untouched)."""

from __future__ import annotations

import os
from pathlib import Path

import fixtures
import testtools

from sysext_builder.errors import TreeRuleError
from sysext_builder.model.element import Element
from sysext_builder.staging import buildenv


class TestCopyStatic(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.top = Path(self.useFixture(fixtures.TempDir()).path)
        self.root = self.top / "root"
        self.root.mkdir()
        self.canary = self.top / "canary"
        self.canary.mkdir()
        (self.canary / "keep").write_text("canary\n")

    def tearDown(self) -> None:
        self.assertEqual(["keep"], sorted(os.listdir(self.canary)), "the canary was touched")
        self.assertEqual("canary\n", (self.canary / "keep").read_text())
        super().tearDown()

    def element(self, name: str) -> Element:
        path = self.top / "elements" / name
        (path / "static").mkdir(parents=True)
        return Element(name=name, path=path, origin="test", entries=frozenset({"static"}))

    def test_copies_files_links_and_modes(self) -> None:
        a = self.element("a")
        (a.path / "static/usr/bin").mkdir(parents=True)
        (a.path / "static/usr/bin/tool").write_text("#!/bin/sh\n")
        (a.path / "static/usr/bin/tool").chmod(0o4755)
        (a.path / "static/usr/bin/alias").symlink_to("tool")
        (a.path / "static/usr/bin").chmod(0o750)
        b = self.element("b")
        (b.path / "static/usr/bin").mkdir(parents=True)
        (b.path / "static/usr/bin/tool").write_text("replaced\n")
        (b.path / "static/usr/bin/tool").chmod(0o755)
        (b.path / "static/usr/bin/alias").symlink_to("tool")  # the same link again: fine
        buildenv.copy_static([a], self.root)
        self.assertEqual(0o4755, (self.root / "usr/bin/tool").stat().st_mode & 0o7777)
        self.assertEqual(0o750, (self.root / "usr/bin").stat().st_mode & 0o7777)
        self.assertEqual("tool", os.readlink(self.root / "usr/bin/alias"))
        buildenv.copy_static([b], self.root)
        self.assertEqual("replaced\n", (self.root / "usr/bin/tool").read_text())
        self.assertEqual(0o755, (self.root / "usr/bin").stat().st_mode & 0o7777)

    def test_a_symlink_planted_by_an_earlier_element_is_not_followed(self) -> None:
        a = self.element("a")
        (a.path / "static/usr/lib").mkdir(parents=True)
        (a.path / "static/usr/lib/foo").symlink_to(self.canary)
        b = self.element("b")
        (b.path / "static/usr/lib/foo").mkdir(parents=True)
        (b.path / "static/usr/lib/foo/x").write_text("pwned\n")
        err = self.assertRaises(TreeRuleError, buildenv.copy_static, [a, b], self.root)
        self.assertEqual(f"element b: static/usr/lib/foo cannot be copied: usr/lib/foo is a "
                         f"symlink (to {self.canary}) in the staging tree", str(err))
        self.assertIn("never writes through a symlink", err.hint or "")

    def test_a_symlink_planted_by_a_hook_at_a_file(self) -> None:
        (self.root / "usr/lib").mkdir(parents=True)
        (self.root / "usr/lib/keep").symlink_to(self.canary / "keep")
        a = self.element("a")
        (a.path / "static/usr/lib").mkdir(parents=True)
        (a.path / "static/usr/lib/keep").write_text("pwned\n")
        err = self.assertRaises(TreeRuleError, buildenv.copy_static, [a], self.root)
        self.assertIn("static/usr/lib/keep cannot be copied: usr/lib/keep is a symlink",
                      str(err))

    def test_a_symlinked_top_level_directory(self) -> None:
        (self.root / "usr").symlink_to(self.canary)
        a = self.element("a")
        (a.path / "static/usr").mkdir(parents=True)
        (a.path / "static/usr/x").write_text("pwned\n")
        err = self.assertRaises(TreeRuleError, buildenv.copy_static, [a], self.root)
        self.assertIn("usr is a symlink", str(err))

    def test_a_different_symlink_already_there(self) -> None:
        (self.root / "usr").mkdir()
        (self.root / "usr/l").symlink_to("one")
        a = self.element("a")
        (a.path / "static/usr").mkdir(parents=True)
        (a.path / "static/usr/l").symlink_to("two")
        err = self.assertRaises(TreeRuleError, buildenv.copy_static, [a], self.root)
        self.assertIn("static/usr/l cannot be copied: usr/l exists already", str(err))

    def test_a_fifo_in_static_is_one_line_not_a_hang(self) -> None:
        a = self.element("a")
        os.mkfifo(a.path / "static/pipe")
        err = self.assertRaises(TreeRuleError, buildenv.copy_static, [a], self.root)
        self.assertIn("element a: static/pipe is a fifo", str(err))
