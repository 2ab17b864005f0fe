"""World-writable entries and set-id files: a warning, or a TreeRuleError with --strict."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import fixtures
import testtools

from sysext_builder.errors import TreeRuleError
from sysext_builder.sysext import modes


class ModesTestCase(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.root = Path(self.useFixture(fixtures.TempDir()).path)
        self.log = self.useFixture(fixtures.FakeLogger(level=logging.WARNING))
        (self.root / "usr/bin").mkdir(parents=True)

    def file(self, rel: str, mode: int) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
        os.chmod(path, mode)
        return path


class TestScan(ModesTestCase):

    def test_a_clean_tree_says_nothing(self) -> None:
        self.file("usr/bin/tool", 0o755)
        self.file("usr/share/doc/f", 0o644)
        self.assertFalse(modes.check(self.root, strict=True, name="img"))
        self.assertEqual("", self.log.output)

    def test_world_writable_files_and_directories_are_listed(self) -> None:
        self.file("usr/share/open", 0o666)
        (self.root / "usr/lib/shared").mkdir(parents=True)
        os.chmod(self.root / "usr/lib/shared", 0o777)
        found = modes.scan(self.root)
        self.assertEqual(("usr/lib/shared (0777)", "usr/share/open (0666)"),
                         found.world_writable)
        self.assertEqual((), found.set_id)

    def test_sticky_directories_and_symlinks_are_not_world_writable(self) -> None:
        (self.root / "usr/tmp").mkdir()
        os.chmod(self.root / "usr/tmp", 0o1777)
        os.symlink("tool", self.root / "usr/bin/link")
        self.assertFalse(modes.scan(self.root))

    def test_set_id_files_but_not_set_gid_directories(self) -> None:
        self.file("usr/bin/su", 0o4755)
        self.file("usr/bin/crontab", 0o2755)
        (self.root / "usr/local").mkdir()
        os.chmod(self.root / "usr/local", 0o2775)  # Debian's /usr/local directories
        self.assertEqual(("usr/bin/crontab (2755)", "usr/bin/su (4755)"),
                         modes.scan(self.root).set_id)


class TestCheck(ModesTestCase):

    def test_warning_lists_paths(self) -> None:
        self.file("usr/bin/su", 0o4755)
        self.file("usr/share/open", 0o666)
        modes.check(self.root, strict=False, name="img")
        self.assertIn("extension img ships 1 world-writable entry: usr/share/open (0666)",
                      self.log.output)
        self.assertIn("extension img ships 1 set-id file: usr/bin/su (4755)", self.log.output)

    def test_strict_refuses_with_one_line(self) -> None:
        self.file("usr/bin/su", 0o4755)
        err = self.assertRaises(TreeRuleError, modes.check, self.root, strict=True, name="img")
        self.assertEqual("--strict: extension img ships 1 set-id file: usr/bin/su (4755)",
                         err.message)
        self.assertNotIn("\n", err.message)
        self.assertIn("u-s,g-s", err.hint or "")

    def test_the_list_is_bounded_with_a_count(self) -> None:
        for i in range(25):
            self.file(f"usr/share/w{i:02d}", 0o666)
        modes.check(self.root, strict=False, name="img")
        line, = [ln for ln in self.log.output.splitlines() if "world-writable" in ln]
        self.assertIn("25 world-writable entries: usr/share/w00 (0666)", line)
        self.assertIn("usr/share/w09 (0666) and 15 more", line)
        self.assertNotIn("w10", line)
