"""Opening a --base: a directory in place, a tarball unpacked once per content hash."""

from __future__ import annotations

import os
import shutil
import struct
import tarfile
from pathlib import Path

import fixtures
import testtools

from sysext_builder import runner
from sysext_builder.errors import (
    BaseError,
    EnvironmentUnusableError,
    SysextBuilderError,
    UsageError,
)
from sysext_builder.staging import base

OS_RELEASE = 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'


def elf(machine: int, *, little: bool = True, elf_class: int = 2) -> bytes:
    """The first 20 bytes of an ELF executable for ``machine`` (padded)."""
    ident = b"\x7fELF" + bytes([elf_class, 1 if little else 2, 1]) + bytes(9)
    fmt = "<HH" if little else ">HH"
    return ident + struct.pack(fmt, 2, machine) + bytes(44)


def merged_usr_tree(root: Path, machine: int = 62) -> Path:
    """A tiny merged-/usr OS tree: bin -> usr/bin, sh -> dash (an ELF header)."""
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/lib").mkdir()
    (root / "etc").mkdir()
    (root / "usr/lib/os-release").write_text(OS_RELEASE)
    os.symlink("../usr/lib/os-release", root / "etc/os-release")
    os.symlink("usr/bin", root / "bin")
    (root / "usr/bin/dash").write_bytes(elf(machine))
    os.symlink("dash", root / "usr/bin/sh")
    return root


class BaseTestCase(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.dir = Path(self.useFixture(fixtures.TempDir()).path)
        self.cache = self.dir / "cache"
        self.useFixture(fixtures.FakeLogger(level=10))
        if os.geteuid() != 0:
            self.useFixture(fixtures.MonkeyPatch("os.geteuid", lambda: 0))

    def tarball(self, name: str = "base.tar") -> Path:
        tree = merged_usr_tree(self.dir / "src")
        path = self.dir / name
        with tarfile.open(path, "w") as tar:
            for entry in sorted(os.listdir(tree)):
                tar.add(tree / entry, arcname=entry)
        shutil.rmtree(tree)
        return path

    def count_runs(self) -> list[list[str]]:
        calls: list[list[str]] = []
        real = runner.run

        def counting(argv: list[str], **kw: object) -> runner.Completed:
            calls.append(list(argv))
            return real(argv, **kw)  # type: ignore[arg-type]

        self.useFixture(fixtures.MonkeyPatch("sysext_builder.runner.run", counting))
        return calls


class TestDirectoryBase(BaseTestCase):

    def test_directory_is_used_in_place_with_os_release_and_architecture(self) -> None:
        tree = merged_usr_tree(self.dir / "base")
        opened = base.open_base(tree, self.cache)
        self.assertEqual(tree.absolute(), opened.path)
        self.assertEqual(tree, opened.source)
        self.assertEqual({"ID": "debian", "VERSION_ID": "12", "VERSION_CODENAME": "bookworm"},
                         opened.os_release)
        self.assertEqual("x86-64", opened.architecture)
        self.assertFalse(self.cache.exists(), "a directory base is not copied")

    def test_relative_directory_is_made_absolute(self) -> None:
        merged_usr_tree(self.dir / "base")
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(self.dir)
        opened = base.open_base(Path("base"), self.cache)
        self.assertTrue(opened.path.is_absolute())
        self.assertEqual(self.dir / "base", opened.path)
        self.assertEqual("debian", opened.os_release["ID"])

    def test_absolute_links_are_followed_inside_the_base(self) -> None:
        tree = merged_usr_tree(self.dir / "base", machine=183)
        os.unlink(tree / "bin")
        os.symlink("/usr/bin", tree / "bin")
        os.unlink(tree / "usr/bin/sh")
        os.symlink("/usr/bin/dash", tree / "usr/bin/sh")
        self.assertEqual("arm64", base.open_base(tree, self.cache).architecture)

    def test_usr_lib_os_release_alone_is_enough(self) -> None:
        tree = merged_usr_tree(self.dir / "base")
        os.unlink(tree / "etc/os-release")
        self.assertEqual("debian", base.open_base(tree, self.cache).os_release["ID"])

    def test_unknown_architecture_is_none(self) -> None:
        tree = merged_usr_tree(self.dir / "base")
        (tree / "usr/bin/dash").write_text("#!/not/an/elf\n")
        self.assertIsNone(base.open_base(tree, self.cache).architecture)

    def test_without_os_release_is_a_base_error(self) -> None:
        tree = self.dir / "base"
        (tree / "usr/bin").mkdir(parents=True)
        err = self.assertRaises(BaseError, base.open_base, tree, self.cache)
        self.assertEqual(f"--base {tree}: no etc/os-release or usr/lib/os-release in it",
                         err.message)
        self.assertEqual(27, err.exit_code)

    def test_top_level_links_are_refused_before_anything_is_read(self) -> None:
        for name in ("usr", "etc", "opt"):
            tree = self.dir / f"linked-{name}"
            for real in ("usr/lib", "etc", "opt"):
                (tree / real).mkdir(parents=True, exist_ok=True)
            (tree / "usr/lib/os-release").write_text("ID=debian\n")
            os.rename(tree / name, self.dir / f"moved-{name}")
            (tree / name).symlink_to(f"/{name}")
            err = self.assertRaises(BaseError, base.open_base, tree, self.cache)
            self.assertEqual(f"--base {tree}: {name} is a symlink (to '/{name}'), not a "
                             "directory", err.message)

    def test_not_root_is_refused_before_anything(self) -> None:
        self.useFixture(fixtures.MonkeyPatch("os.geteuid", lambda: 1000))
        err = self.assertRaises(EnvironmentUnusableError, base.open_base,
                                self.dir / "missing", self.cache)
        self.assertEqual("building against --base needs root", err.message)
        self.assertEqual(25, err.exit_code)


class TestArchiveBase(BaseTestCase):

    def test_tarball_is_unpacked_into_the_cache_by_content_hash(self) -> None:
        source = self.tarball()
        calls = self.count_runs()
        opened = base.open_base(source, self.cache)
        digest = base.sha256_file(source)
        self.assertEqual(self.cache / f"{digest[:32]}-tar", opened.path)
        self.assertEqual("bookworm", opened.os_release["VERSION_CODENAME"])
        self.assertEqual("x86-64", opened.architecture)
        self.assertTrue((opened.path / "usr/bin/dash").is_file())
        self.assertEqual([opened.path.name], os.listdir(self.cache), "no temporary left")
        self.assertEqual(1, len(calls))
        self.assertEqual("tar", calls[0][0])

    def test_same_content_is_unpacked_only_once_whatever_its_name(self) -> None:
        source = self.tarball()
        calls = self.count_runs()
        first = base.open_base(source, self.cache)
        copy = self.dir / "renamed.tar"
        shutil.copy(source, copy)
        second = base.open_base(copy, self.cache)
        self.assertEqual(first.path, second.path)
        self.assertEqual(1, len(calls), "the second open uses the cached copy")
        self.assertEqual(copy, second.source)

    def test_different_content_gets_its_own_copy(self) -> None:
        source = self.tarball()
        first = base.open_base(source, self.cache)
        with tarfile.open(source, "a") as tar:
            extra = self.dir / "extra"
            extra.write_text("x")
            tar.add(extra, arcname="usr/extra")
        second = base.open_base(source, self.cache)
        self.assertNotEqual(first.path, second.path)
        self.assertTrue((second.path / "usr/extra").is_file())
        self.assertFalse((first.path / "usr/extra").exists())

    def test_corrupt_tarball_fails_naming_it_and_leaves_no_partial_copy(self) -> None:
        broken = self.dir / "broken.tar"
        broken.write_bytes(b"this is not a tar archive\n" * 100)
        err = self.assertRaises(SysextBuilderError, base.open_base, broken, self.cache)
        self.assertIn(f"--base {broken}: the tar archive does not unpack", err.message)
        self.assertIn("This does not look like a tar archive", err.message)
        self.assertEqual(27, err.exit_code)
        self.assertEqual([], os.listdir(self.cache))

    def test_missing_base_is_a_usage_error(self) -> None:
        err = self.assertRaises(UsageError, base.open_base, self.dir / "nope.tar", self.cache)
        self.assertEqual(f"--base {self.dir / 'nope.tar'}: no such file or directory",
                         err.message)
        self.assertEqual(2, err.exit_code)

    def test_unrecognised_file_is_a_usage_error_listing_suffixes(self) -> None:
        junk = self.dir / "base.img"
        junk.write_bytes(b"\0" * 4096)
        err = self.assertRaises(UsageError, base.open_base, junk, self.cache)
        self.assertIn("not a directory, tarball, squashfs or erofs image", err.message)
        self.assertIn(".tar.zst", err.hint or "")
        self.assertFalse(self.cache.exists())


class TestKindAndElf(BaseTestCase):

    def test_kind_by_suffix_and_magic(self) -> None:
        (self.dir / "d").mkdir()
        self.assertEqual("directory", base.kind_of(self.dir / "d"))
        for name in ("b.tar", "b.tar.gz", "b.tgz", "b.tar.xz", "b.tar.zst"):
            (self.dir / name).write_bytes(b"")
            self.assertEqual("tar", base.kind_of(self.dir / name), name)
        (self.dir / "sq.img").write_bytes(b"hsqs" + bytes(2000))
        self.assertEqual("squashfs", base.kind_of(self.dir / "sq.img"))
        (self.dir / "ero.img").write_bytes(bytes(1024) + b"\xe2\xe1\xf5\xe0" + bytes(100))
        self.assertEqual("erofs", base.kind_of(self.dir / "ero.img"))

    def test_elf_machines_and_endianness(self) -> None:
        cases = {"x86": elf(3, elf_class=1), "arm": elf(40, elf_class=1),
                 "s390x": elf(22, little=False), "ppc64": elf(21, little=False),
                 "ppc64-le": elf(21), "riscv64": elf(243)}
        for expected, data in cases.items():
            path = self.dir / expected
            path.write_bytes(data)
            self.assertEqual(expected, base.elf_architecture(path))
        (self.dir / "short").write_bytes(b"\x7fELF")
        self.assertIsNone(base.elf_architecture(self.dir / "short"))
        (self.dir / "odd").write_bytes(elf(9999))
        self.assertIsNone(base.elf_architecture(self.dir / "odd"))
        self.assertIsNone(base.elf_architecture(self.dir / "missing"))
