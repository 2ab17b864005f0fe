"""Containment of the builder's writes (fileutil.open_dir_in, makedirs_in,
write_file_in): no symlink in a tree sends a write outside it.

Each test has a canary directory beside the tree that must stay empty."""

from __future__ import annotations

import os
from pathlib import Path

import fixtures
import testtools

from sysext_builder import fileutil
from sysext_builder.fileutil import NotContained


class TestContainedWrites(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        top = Path(self.useFixture(fixtures.TempDir()).path)
        self.root = top / "root"
        self.canary = top / "canary"
        (self.root / "usr/lib").mkdir(parents=True)
        self.canary.mkdir()
        (self.canary / "keep").write_text("canary\n")

    def tearDown(self) -> None:
        self.assertEqual(["keep"], sorted(os.listdir(self.canary)), "the canary was touched")
        self.assertEqual("canary\n", (self.canary / "keep").read_text())
        super().tearDown()

    def refused(self, rel: str, write: str = "usr/lib/foo/x") -> NotContained:
        err = self.assertRaises(NotContained, fileutil.write_file_in, self.root, write, b"x")
        self.assertEqual(rel, err.path)
        err2 = self.assertRaises(NotContained, fileutil.makedirs_in, self.root, write)
        self.assertEqual(rel, err2.path)
        return err

    def test_writes_and_makes_parents_with_modes(self) -> None:
        old = os.umask(0o077)
        try:
            fileutil.write_file_in(self.root, "usr/lib/a/b/file", b"data", 0o640)
        finally:
            os.umask(old)
        self.assertEqual(b"data", (self.root / "usr/lib/a/b/file").read_bytes())
        self.assertEqual(0o640, (self.root / "usr/lib/a/b/file").stat().st_mode & 0o7777)
        self.assertEqual(0o755, (self.root / "usr/lib/a").stat().st_mode & 0o7777)
        fileutil.write_file_in(self.root, "usr/lib/a/b/file", b"new")  # replaced
        self.assertEqual(b"new", (self.root / "usr/lib/a/b/file").read_bytes())

    def test_symlink_to_the_host_root(self) -> None:
        # only opened, never created in: a broken walk must not write to the host's /
        (self.root / "usr/lib/foo").symlink_to("/")
        err = self.assertRaises(NotContained, fileutil.open_dir_in, self.root, "usr/lib/foo/etc")
        self.assertEqual("usr/lib/foo", err.path)
        self.assertEqual("usr/lib/foo is a symlink (to /)", str(err))

    def test_symlink_to_the_canary(self) -> None:
        (self.root / "usr/lib/foo").symlink_to(self.canary)
        self.refused("usr/lib/foo")

    def test_symlink_up_and_out(self) -> None:
        (self.root / "usr/lib/foo").symlink_to("../../../canary")
        self.assertTrue((self.root / "usr/lib/foo/keep").exists())  # it does lead out
        self.refused("usr/lib/foo")

    def test_dangling_symlink(self) -> None:
        (self.root / "usr/lib/foo").symlink_to(self.canary / "missing")
        self.refused("usr/lib/foo")
        self.assertFalse((self.canary / "missing").exists())

    def test_absolute_symlink_inside_the_root_is_refused_too(self) -> None:
        # inside the image it would point at the target's /usr/share, not at the tree's
        (self.root / "usr/share").mkdir()
        (self.root / "usr/lib/foo").symlink_to("/usr/share")
        self.refused("usr/lib/foo")
        self.assertEqual([], os.listdir(self.root / "usr/share"))

    def test_relative_symlink_inside_the_root_is_refused(self) -> None:
        (self.root / "usr/share").mkdir()
        (self.root / "usr/lib/foo").symlink_to("../share")
        self.refused("usr/lib/foo")

    def test_symlinked_top_level(self) -> None:
        (self.root / "opt").symlink_to(self.canary)
        err = self.assertRaises(NotContained, fileutil.write_file_in, self.root, "opt/x", b"")
        self.assertEqual("opt", err.path)

    def test_file_where_a_directory_is_expected(self) -> None:
        (self.root / "usr/lib/foo").write_text("a file\n")
        err = self.refused("usr/lib/foo")
        self.assertEqual("usr/lib/foo is not a directory", str(err))

    def test_last_component_symlink_is_not_written_through(self) -> None:
        (self.root / "usr/lib/foo").mkdir()
        (self.root / "usr/lib/foo/x").symlink_to(self.canary / "keep")
        err = self.assertRaises(NotContained, fileutil.write_file_in, self.root,
                                "usr/lib/foo/x", b"pwned")
        self.assertEqual("usr/lib/foo/x", err.path)
        self.assertIn("is a symlink", err.reason)

    def test_last_component_directory_or_fifo(self) -> None:
        (self.root / "usr/lib/dir").mkdir()
        os.mkfifo(self.root / "usr/lib/fifo")
        err = self.assertRaises(NotContained, fileutil.write_file_in, self.root,
                                "usr/lib/dir", b"")
        self.assertEqual("usr/lib/dir is a directory", str(err))
        err = self.assertRaises(NotContained, fileutil.write_file_in, self.root,
                                "usr/lib/fifo", b"")
        self.assertEqual("usr/lib/fifo is a special file", str(err))

    def test_hard_link_to_an_outside_file_is_replaced_not_written(self) -> None:
        try:
            os.link(self.canary / "keep", self.root / "usr/lib/keep")
        except OSError as exc:  # pragma: no cover - another filesystem
            self.skipTest(f"no hard link: {exc}")
        fileutil.write_file_in(self.root, "usr/lib/keep", b"pwned")
        self.assertEqual(b"pwned", (self.root / "usr/lib/keep").read_bytes())

    def test_dot_dot_is_refused(self) -> None:
        err = self.assertRaises(NotContained, fileutil.makedirs_in, self.root, "usr/../../canary")
        self.assertIn("'..'", err.reason)

    def test_open_dir_without_create(self) -> None:
        self.assertRaises(FileNotFoundError, fileutil.open_dir_in, self.root, "usr/nope")
        fd = fileutil.open_dir_in(self.root, "usr/lib")
        try:
            self.assertEqual(os.stat(self.root / "usr/lib").st_ino, os.fstat(fd).st_ino)
        finally:
            os.close(fd)

    def test_unprintable_link_target_stays_on_one_line(self) -> None:
        (self.root / "usr/lib/foo").symlink_to("/x\nerror: forged")
        err = self.refused("usr/lib/foo")
        self.assertNotIn("\n", str(err))

    def test_a_symlinked_root_path_itself_is_trusted(self) -> None:
        link = self.root.parent / "root-link"
        link.symlink_to(self.root)
        fileutil.write_file_in(link, "usr/lib/y", b"y")
        self.assertEqual(b"y", (self.root / "usr/lib/y").read_bytes())
