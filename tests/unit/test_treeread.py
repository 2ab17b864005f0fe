"""Reads inside a tree: links resolved in the tree, only regular files, bounded."""

from __future__ import annotations

import os
from pathlib import Path

import fixtures

from sysext_builder import treeread
from sysext_builder.treeread import ReadRefused, read_in_root, read_prefix, read_regular
from tests.base import TestCase


class TestReadInRoot(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.top = Path(self.useFixture(fixtures.TempDir()).path)
        self.root = self.top / "root"
        (self.root / "etc").mkdir(parents=True)
        (self.root / "usr/lib").mkdir(parents=True)
        (self.root / "usr/lib/os-release").write_text("ID=inside\n")
        # what a link that escaped would find instead
        (self.top / "usr/lib").mkdir(parents=True)
        (self.top / "usr/lib/os-release").write_text("ID=outside\n")

    def link(self, target: str, rel: str = "etc/os-release") -> None:
        os.symlink(target, self.root / rel)

    def read(self, rel: str = "etc/os-release", limit: int = 1024) -> bytes:
        return read_in_root(self.root, rel, limit)

    def test_plain_file(self) -> None:
        self.assertEqual(b"ID=inside\n", self.read("usr/lib/os-release"))

    def test_relative_link_inside(self) -> None:
        self.link("../usr/lib/os-release")
        self.assertEqual(b"ID=inside\n", self.read())

    def test_absolute_link_means_the_tree_not_the_host(self) -> None:
        self.link("/usr/lib/os-release")
        self.assertEqual(b"ID=inside\n", self.read())

    def test_dotdot_escape_is_clamped_at_the_top(self) -> None:
        self.link("../../../../../../../usr/lib/os-release")
        self.assertEqual(b"ID=inside\n", self.read())

    def test_dotdot_in_the_requested_path_is_clamped(self) -> None:
        self.assertEqual(b"ID=inside\n", self.read("../../usr/lib/os-release"))

    def test_link_in_a_directory_component(self) -> None:
        os.symlink("/usr", self.root / "u")
        self.assertEqual(b"ID=inside\n", self.read("u/lib/os-release"))
        os.symlink("../../..", self.root / "usr/up")
        self.assertEqual(b"ID=inside\n", self.read("usr/up/usr/lib/os-release"))

    def test_link_to_a_host_only_file_is_missing(self) -> None:
        self.link(str(self.top / "usr/lib/os-release"))  # the host path, not in the tree
        exc = self.assertRaises(ReadRefused, self.read)
        self.assertTrue(exc.missing)

    def test_dangling_link_is_missing(self) -> None:
        self.link("nowhere")
        self.assertTrue(self.assertRaises(ReadRefused, self.read).missing)

    def test_link_loop_gives_up_after_max_links(self) -> None:
        self.link("loop")
        os.symlink("os-release", self.root / "etc/loop")
        exc = self.assertRaises(ReadRefused, self.read)
        self.assertEqual(f"{self.root}/etc/os-release: more than {treeread.MAX_LINKS} "
                         "symbolic links (a link loop?)", str(exc))
        self.assertFalse(exc.missing)

    def test_a_chain_of_40_links_is_followed_not_41(self) -> None:
        # 40 as in Linux's path resolution (and RESOLVE_IN_ROOT)
        for n in range(39):
            os.symlink(f"l{n + 1}", self.root / f"etc/l{n}")
        os.symlink("/usr/lib/os-release", self.root / "etc/l39")
        self.link("l0")
        exc = self.assertRaises(ReadRefused, self.read)  # 41 links
        self.assertIn("more than 40 symbolic links", str(exc))
        os.unlink(self.root / "etc/os-release")
        self.assertEqual(b"ID=inside\n", self.read("etc/l0"))  # exactly 40

    def test_fifo_is_refused_without_blocking(self) -> None:
        os.mkfifo(self.root / "usr/lib/fifo")
        self.link("/usr/lib/fifo")
        exc = self.assertRaises(ReadRefused, self.read)
        self.assertIn("not a regular file (fifo)", str(exc))
        self.assertIn("resolved inside", str(exc))
        self.assertIn("/usr/lib/fifo", str(exc))

    def test_device_via_a_link_is_refused(self) -> None:
        # the host's / as the tree: dev/zero is a character device there
        exc = self.assertRaises(ReadRefused, read_in_root, "/", "dev/zero", 10)
        self.assertEqual("/dev/zero: not a regular file (character device)", str(exc))

    def test_directory_is_refused(self) -> None:
        (self.root / "etc/os-release").mkdir()
        exc = self.assertRaises(ReadRefused, self.read)
        self.assertEqual(f"{self.root}/etc/os-release: not a regular file (directory)",
                         str(exc))
        self.assertFalse(exc.missing)

    def test_link_to_the_top_is_a_directory(self) -> None:
        self.link("/")
        self.assertIn("not a regular file (directory)", str(self.assertRaises(
            ReadRefused, self.read)))

    def test_file_as_a_directory_component(self) -> None:
        exc = self.assertRaises(ReadRefused, self.read, "usr/lib/os-release/x")
        self.assertIn("usr/lib/os-release is not a directory", str(exc))

    def test_size_limit(self) -> None:
        self.assertEqual(b"ID=inside\n", self.read("usr/lib/os-release", limit=10))
        exc = self.assertRaises(ReadRefused, self.read, "usr/lib/os-release", 9)
        self.assertIn("larger than 9 bytes (10); refused", str(exc))

    def test_bytes_are_returned_undecoded(self) -> None:
        (self.root / "usr/lib/os-release").write_bytes(b"ID=\xff\n")
        self.assertEqual(b"ID=\xff\n", self.read("usr/lib/os-release"))


class TestReadRegular(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.top = Path(self.useFixture(fixtures.TempDir()).path)

    def test_regular_file(self) -> None:
        (self.top / "f").write_bytes(b"abc")
        self.assertEqual(b"abc", read_regular(self.top / "f", 3))
        self.assertIn("larger than 2 bytes", str(self.assertRaises(
            ReadRefused, read_regular, self.top / "f", 2)))

    def test_dev_zero_and_a_link_to_it(self) -> None:
        os.symlink("/dev/zero", self.top / "z")
        for path in ("/dev/zero", self.top / "z"):
            exc = self.assertRaises(ReadRefused, read_regular, path, 10)
            self.assertEqual(f"{path}: not a regular file (character device)", str(exc))

    def test_fifo(self) -> None:
        os.mkfifo(self.top / "p")
        exc = self.assertRaises(ReadRefused, read_regular, self.top / "p", 10)
        self.assertIn("not a regular file (fifo)", str(exc))

    def test_missing(self) -> None:
        exc = self.assertRaises(ReadRefused, read_regular, self.top / "none", 10)
        self.assertTrue(exc.missing)

    def test_prefix(self) -> None:
        (self.top / "f").write_bytes(b"abcdef")
        self.assertEqual((b"abc", True), read_prefix(self.top / "f", 3))
        self.assertEqual((b"abcdef", False), read_prefix(self.top / "f", 6))
        os.mkfifo(self.top / "p")
        self.assertRaises(ReadRefused, read_prefix, self.top / "p", 3)


class TestBoundedCaseReads(TestCase):
    """authoring/testing/cases.py reads expect files and checked files bounded."""

    def test_expect_file_fifo_is_an_error(self) -> None:
        from sysext_builder.authoring.testing import cases
        from sysext_builder.errors import ElementFormatError
        top = Path(self.useFixture(fixtures.TempDir()).path)
        os.mkfifo(top / "expect")
        err = self.assertRaises(ElementFormatError, cases.parse_expect, top / "expect")
        self.assertIn(str(top / "expect"), str(err))

    def test_contains_on_huge_file_is_a_problem_not_a_blowup(self) -> None:
        from sysext_builder.authoring.testing import cases
        top = Path(self.useFixture(fixtures.TempDir()).path)
        with open(top / "big", "wb") as f:
            f.truncate(cases.MAX_CONTAINS_BYTES + 1)
        rule = cases.Expectation(line=1, pattern="big", negate=False, check="contains",
                                 text="x")
        problem = cases._problem(top / "big", rule)
        self.assertIsNotNone(problem)
        self.assertIn("cannot be read", problem or "")
