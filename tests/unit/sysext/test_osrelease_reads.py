"""Reading os-release from a tree and from a file: inside the tree, bounded, one-line errors."""

from __future__ import annotations

import os
from pathlib import Path

import fixtures

from sysext_builder.errors import ReleaseError
from sysext_builder.sysext import osrelease
from tests.base import TestCase


class TestReadRoot(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.root = Path(self.useFixture(fixtures.TempDir()).path) / "base"
        (self.root / "etc").mkdir(parents=True)
        (self.root / "usr/lib").mkdir(parents=True)
        (self.root / "usr/lib/os-release").write_text("ID=thebase\nVERSION_ID=7\n")

    def test_absolute_link_gives_the_trees_identity(self) -> None:
        os.symlink("/usr/lib/os-release", self.root / "etc/os-release")
        self.assertEqual({"ID": "thebase", "VERSION_ID": "7"}, osrelease.read_root(self.root))

    def test_etc_wins(self) -> None:
        (self.root / "etc/os-release").write_text("ID=etc\n")
        self.assertEqual({"ID": "etc"}, osrelease.read_root(self.root))

    def test_dangling_etc_link_falls_back(self) -> None:
        os.symlink("/nowhere", self.root / "etc/os-release")
        self.assertEqual("thebase", (osrelease.read_root(self.root) or {})["ID"])

    def test_link_to_a_host_file_is_not_followed_out(self) -> None:
        # /etc/passwd exists on the host, not in the tree: falls back
        os.symlink("/etc/passwd", self.root / "etc/os-release")
        self.assertEqual("thebase", (osrelease.read_root(self.root) or {})["ID"])

    def test_neither(self) -> None:
        os.unlink(self.root / "usr/lib/os-release")
        self.assertIsNone(osrelease.read_root(self.root))

    def test_fifo_is_an_error_not_a_hang(self) -> None:
        os.mkfifo(self.root / "etc/os-release")
        exc = self.assertRaises(ReleaseError, osrelease.read_root, self.root)
        self.assertEqual(f"{self.root}/etc/os-release: not a regular file (fifo)", exc.message)
        self.assertEqual(23, exc.exit_code)

    def test_directory_is_an_error(self) -> None:
        (self.root / "etc/os-release").mkdir()
        exc = self.assertRaises(ReleaseError, osrelease.read_root, self.root)
        self.assertIn("not a regular file (directory)", exc.message)

    def test_too_large(self) -> None:
        with open(self.root / "usr/lib/os-release", "wb") as f:
            f.truncate(osrelease.MAX_BYTES + 1)
        exc = self.assertRaises(ReleaseError, osrelease.read_root, self.root)
        self.assertIn(f"larger than {osrelease.MAX_BYTES} bytes", exc.message)

    def test_invalid_utf8(self) -> None:
        (self.root / "usr/lib/os-release").write_bytes(b"ID=a\nNAME=\xff\xfe\n")
        exc = self.assertRaises(ReleaseError, osrelease.read_root, self.root)
        self.assertEqual(f"{self.root}/usr/lib/os-release:2: not UTF-8 text (invalid start "
                         "byte at byte 10)", exc.message)


class TestReadFile(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.dir = Path(self.useFixture(fixtures.TempDir()).path)

    def test_dev_zero(self) -> None:
        exc = self.assertRaises(ReleaseError, osrelease.read_file, Path("/dev/zero"))
        self.assertEqual("/dev/zero: not a regular file (character device)", exc.message)

    def test_fifo(self) -> None:
        os.mkfifo(self.dir / "p")
        exc = self.assertRaises(ReleaseError, osrelease.read_file, self.dir / "p")
        self.assertIn("not a regular file (fifo)", exc.message)

    def test_too_large_and_invalid(self) -> None:
        path = self.dir / "os-release"
        path.write_bytes(b"ID=x\n" * (osrelease.MAX_BYTES // 5 + 1))
        self.assertIn("larger than", self.assertRaises(
            ReleaseError, osrelease.read_file, path).message)
        path.write_bytes(b"ID=\xc3\n")
        self.assertIn("not UTF-8", self.assertRaises(
            ReleaseError, osrelease.read_file, path).message)


class TestQuotedValuesAreBounded(TestCase):

    def test_long_line_without_equals_is_ignored(self) -> None:
        self.assertEqual({"ID": "a"}, osrelease.parse("x" * 100_000 + "\nID=a\n", "f"))

    def test_long_bad_key_is_cut(self) -> None:
        exc = self.assertRaises(ReleaseError, osrelease.validate_value, "k" * 10_000, "v")
        self.assertLess(len(exc.message), 200)
