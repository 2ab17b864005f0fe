"""Faults around the output directory, through the real sysext-create.

What a killed build left is removed by the next one; what the builder did not
write is never replaced.
"""

from __future__ import annotations

import os
from pathlib import Path

import fixtures
import testtools

from tests.functional import base

#: an identity that needs no base
ANY_TARGET = ("--os-id", "_any", "-a", "x86-64")


def create_hello(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Exit status and stderr of sysext-create building the fixture element hello."""
    proc = base.run("sysext-create", "--element-path", str(base.BUILD_ELEMENTS), "hello",
                    *args, env=env, timeout=120)
    return proc.returncode, proc.stderr


class TestOutputDirectory(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.out = Path(self.useFixture(fixtures.TempDir()).path)

    def create(self, *args: str) -> tuple[int, str]:
        return create_hello(*ANY_TARGET, *args)

    def test_a_dead_builds_temporary_image_is_removed_by_the_next_build(self) -> None:
        base.require_tool("mksquashfs", "squashfs-tools")
        dead = self.out / ".hello.raw.tmp-999999999-0badcafe.1-abcd1234"
        dead.write_bytes(b"half an image")
        canary = self.out / ".hello.raw.notes"
        canary.write_text("not the builder's")
        code, err = self.create("-o", f"{self.out}/hello.raw")
        self.assertEqual(0, code, err)
        self.assertIn(f"removed {dead.name}, left by a build that died", err)
        self.assertFalse(dead.exists())
        self.assertEqual("not the builder's", canary.read_text())
        self.assertTrue((self.out / "hello.raw").is_file())

    def test_a_users_directory_named_like_the_image_is_kept(self) -> None:
        base.require_tool("mksquashfs", "squashfs-tools")
        mine = self.out / "hello-ext.raw"  # the name the fixture's image gets
        mine.mkdir()
        (mine / "thesis.tex").write_text("years of work")
        code, err = self.create("-o", f"{self.out}/")
        self.assertEqual(24, code, err)
        errors = [ln for ln in err.splitlines() if ": error: " in ln]
        self.assertEqual(1, len(errors), err)
        self.assertIn("is a directory that is not an extension image; not replacing it",
                      errors[0])
        self.assertNotIn("Traceback", err)
        self.assertEqual("years of work", (mine / "thesis.tex").read_text())
        self.assertEqual(["hello-ext.raw"], sorted(p.name for p in self.out.iterdir()))

    def test_a_directory_image_the_builder_wrote_is_replaced(self) -> None:
        for _ in range(2):
            code, err = self.create("-t", "directory", "-o", f"{self.out}/hello")
            self.assertEqual(0, code, err)
        self.assertTrue((self.out / "hello/usr/lib/extension-release.d").is_dir())


def one_error(case: testtools.TestCase, code: int, err: str, want: int, *words: str) -> str:
    """The one error line of a failed run: exit ``want``, no traceback, ``words`` in it."""
    case.assertEqual(want, code, err)
    case.assertNotIn("Traceback", err)
    errors = [ln for ln in err.splitlines() if ": error: " in ln]
    case.assertEqual(1, len(errors), err)
    for word in words:
        case.assertIn(word, errors[0])
    return errors[0]


class TestBrokenBases(testtools.TestCase):
    """Archives that do not unpack, trees that are no OS: exit 27, no cache entry."""

    def setUp(self) -> None:
        super().setUp()
        base.require_root("building against --base")
        base.require_tool("tar", "tar")
        self.dir = Path(self.useFixture(fixtures.TempDir()).path)
        self.out = self.dir / "out"
        self.cache = self.dir / "cache"

    def create(self, source: Path) -> tuple[int, str]:
        return create_hello("--base", str(source), "--cache-dir", str(self.cache),
                            "-o", f"{self.out}/")

    def assert_refused(self, source: Path, *words: str) -> None:
        code, err = self.create(source)
        one_error(self, code, err, 27, f"--base {source}", *words)
        self.assertFalse(self.out.exists() and any(self.out.iterdir()), "an output was written")
        bases = self.cache / "bases"
        left = [p.name for p in bases.iterdir()] if bases.is_dir() else []
        self.assertEqual([], [n for n in left if ".tmp-" in n], "a temporary base was left")

    def test_an_empty_file_does_not_unpack(self) -> None:
        (self.dir / "empty.tar").write_bytes(b"")
        self.assert_refused(self.dir / "empty.tar", "does not unpack", "tar")

    def test_garbage_does_not_unpack(self) -> None:
        (self.dir / "garbage.tar.gz").write_bytes(b"not gzip at all\n" * 64)
        self.assert_refused(self.dir / "garbage.tar.gz", "does not unpack")

    def test_a_truncated_archive_does_not_unpack(self) -> None:
        tree = self.dir / "tree"
        (tree / "usr/lib").mkdir(parents=True)
        (tree / "usr/lib/os-release").write_bytes(os.urandom(200_000))  # not compressible
        whole = self.dir / "whole.tar.gz"
        base.run_tool("tar", "-czf", str(whole), "-C", str(tree), ".")
        cut = self.dir / "cut.tar.gz"
        cut.write_bytes(whole.read_bytes()[:50_000])
        self.assert_refused(cut, "does not unpack", "unexpected end of file")

    def test_a_squashfs_with_a_broken_superblock(self) -> None:
        base.require_tool("unsquashfs", "squashfs-tools")
        (self.dir / "bad.raw").write_bytes(b"hsqs" + os.urandom(4092))
        self.assert_refused(self.dir / "bad.raw", "squashfs archive does not unpack")

    def test_an_empty_but_valid_archive_is_no_os_tree(self) -> None:
        empty = self.dir / "nothing.tar"
        base.run_tool("tar", "-cf", str(empty), "-T", "/dev/null")
        self.assert_refused(empty, "no etc/os-release or usr/lib/os-release")

    def test_a_base_whose_usr_is_a_link_to_the_hosts(self) -> None:
        tree = self.dir / "linked"
        (tree / "etc").mkdir(parents=True)
        (tree / "etc/os-release").write_text("ID=debian\nVERSION_ID=12\n")
        (tree / "usr").symlink_to("/usr")
        self.assert_refused(tree, "usr is a symlink")

    def test_a_killed_builds_temporary_base_is_removed_under_the_lock(self) -> None:
        (self.dir / "empty.tar").write_bytes(b"")
        dead = self.cache / "bases" / ".0123-tar.tmp-999999999-0badcafe.1"
        (dead / "usr").mkdir(parents=True)
        keep = self.cache / "bases" / "notes.txt"
        keep.write_text("mine")
        code, err = self.create(self.dir / "empty.tar")
        self.assertEqual(27, code, err)
        self.assertIn(f"removed {dead.name}, left by a build that died", err)
        self.assertFalse(dead.exists())
        self.assertEqual("mine", keep.read_text())


class TestFullOrReadOnly(testtools.TestCase):
    """Full or read-only output and work directories: exits 24 and 25, nothing left."""

    def setUp(self) -> None:
        super().setUp()
        base.require_root("mounting small tmpfs filesystems")
        base.require_tool("mksquashfs", "squashfs-tools")
        self.dir = Path(self.useFixture(fixtures.TempDir()).path)
        self.out = self.dir / "out"

    def filesystem(self, name: str, *, full: bool = False, read_only: bool = False) -> Path:
        where = self.dir / name
        where.mkdir()
        base.run_tool("mount", "-t", "tmpfs", "-o", "size=64k" + (",ro" if read_only else ""),
                      "tmpfs", str(where))
        self.addCleanup(base.run_tool, "umount", str(where))
        if full:
            fd = os.open(where / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                while os.write(fd, b"\0" * 512):
                    pass
            except OSError:
                pass
            finally:
                os.close(fd)
        return where

    def create(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
        return create_hello(*ANY_TARGET, *args, env=env)

    def assert_nothing_but(self, directory: Path, names: list[str]) -> None:
        self.assertEqual(sorted(names), sorted(p.name for p in directory.iterdir()))

    def test_a_full_output_directory(self) -> None:
        out = self.filesystem("out", full=True)
        code, err = self.create("-o", f"{out}/")
        one_error(self, code, err, 24, "packing", "No space left on device")
        self.assert_nothing_but(out, ["filler"])

    def test_a_read_only_output_directory(self) -> None:
        out = self.filesystem("out", read_only=True)
        for fmt in ("squashfs", "directory"):
            code, err = self.create("-t", fmt, "-o", f"{out}/")
            one_error(self, code, err, 24, "Read-only file system")
            self.assert_nothing_but(out, [])

    def test_a_full_work_directory(self) -> None:
        work = self.filesystem("work", full=True)
        code, err = self.create("--workdir", str(work), "-o", f"{self.out}/")
        one_error(self, code, err, 25, f"the work directory's filesystem ({work}) is full")
        self.assert_nothing_but(work, ["filler"])
        self.assertFalse(self.out.exists() and any(self.out.iterdir()))

    def test_a_full_tmpdir(self) -> None:
        work = self.filesystem("tmp", full=True)
        code, err = self.create("-o", f"{self.out}/", env={"TMPDIR": str(work)})
        one_error(self, code, err, 25, f"({work}) is full or read-only")
        self.assert_nothing_but(work, ["filler"])

    def test_a_read_only_work_directory(self) -> None:
        work = self.filesystem("work", read_only=True)
        code, err = self.create("--workdir", str(work), "-o", f"{self.out}/")
        one_error(self, code, err, 25, f"cannot create a work directory under {work}")
