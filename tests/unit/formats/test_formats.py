"""Format drivers and atomic placement, without running any packer."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import fixtures
import testtools

from sysext_builder import formats
from sysext_builder.errors import OutputError, PluginError, ToolMissingError
from sysext_builder.formats import base, directory, erofs, squashfs

SQUASHFS_HELP = """\
SYNTAX:mksquashfs source1 source2 ...  FILESYSTEM [OPTIONS]
-comp <comp>\t\tselect <comp> compression
\t\t\tCompressors available:
\t\t\t\tgzip (default)
\t\t\t\tlzo
\t\t\t\tlz4
\t\t\t\txz
\t\t\t\tzstd
-b <block_size>\t\tset data block to <block_size>.
-reproducible\t\tbuild filesystems that are reproducible (default)
-exit-on-error\t\ttreat normally ignored errors as fatal
"""

SQUASHFS_HELP_NO_ZSTD = SQUASHFS_HELP.replace("\t\t\t\tzstd\n", "")


def listing(directory_: Path) -> list[str]:
    return sorted(os.listdir(directory_))


class FakeFormat(base.OutputFormat):
    """Writes a file, or a partial one and then fails."""

    name = "fake"
    suffix = ".raw"
    compressions = ("quick", "slow")
    compression_levels = {"slow": (1, 5)}
    default_compression = "quick"

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[tuple[Path, Path, int, str | None]] = []

    def tools(self) -> list[str]:
        return ["fake-mkfs"]

    def tool_versions(self) -> dict[str, str]:
        return {"fake-mkfs": "1.0"}

    def write_image(self, tree: Path, dest: Path, *, epoch: int,
                    compression: str | None) -> None:
        self.calls.append((tree, dest, epoch, compression))
        dest.write_text("partial" if self.fail else "image")
        if self.fail:
            raise OutputError("fake-mkfs failed")


class TempDirTestCase(testtools.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.dir = Path(self.useFixture(fixtures.TempDir()).path)

    def tree(self, name: str = "tree") -> Path:
        tree = self.dir / name
        if tree.exists():
            return tree
        (tree / "usr/bin").mkdir(parents=True)
        (tree / "usr/bin/hello").write_text("#!/bin/sh\necho hello\n")
        (tree / "usr/bin/hello").chmod(0o755)
        os.symlink("hello", tree / "usr/bin/hi")
        return tree

    def fake_tools(self, present: bool = True) -> None:
        self.useFixture(fixtures.MonkeyPatch(
            "sysext_builder.paths.which", lambda tool: f"/usr/bin/{tool}" if present else None))

class TestPackContract(TempDirTestCase):

    def test_pack_resolves_default_compression(self) -> None:
        self.fake_tools()
        fmt = FakeFormat()
        fmt.pack(self.tree(), self.dir / "out.raw", epoch=7)
        self.assertEqual([(self.dir / "tree", self.dir / "out.raw", 7, "quick")], fmt.calls)

    def test_missing_tool_fails_before_any_work(self) -> None:
        self.fake_tools(present=False)
        fmt = FakeFormat()
        err = self.assertRaises(ToolMissingError, fmt.pack, self.tree(), self.dir / "out.raw",
                                epoch=7)
        self.assertIn("fake-mkfs", err.message)
        self.assertEqual([], fmt.calls)
        self.assertFalse((self.dir / "out.raw").exists())

    def test_missing_real_tool_names_debian_package(self) -> None:
        self.fake_tools(present=False)
        err = self.assertRaises(ToolMissingError, squashfs.SquashfsFormat().pack, self.tree(),
                                self.dir / "out.raw", epoch=7)
        self.assertEqual("apt-get install squashfs-tools", err.hint)
        err = self.assertRaises(ToolMissingError, erofs.ErofsFormat().require_tools)
        self.assertEqual("apt-get install erofs-utils", err.hint)

    def test_failed_pack_removes_partial_output(self) -> None:
        self.fake_tools()
        self.assertRaises(OutputError, FakeFormat(fail=True).pack, self.tree(),
                          self.dir / "out.raw", epoch=7)
        self.assertFalse((self.dir / "out.raw").exists())

    def test_existing_dest_is_refused(self) -> None:
        self.fake_tools()
        (self.dir / "out.raw").write_text("x")
        err = self.assertRaises(OutputError, FakeFormat().pack, self.tree(),
                                self.dir / "out.raw", epoch=7)
        self.assertIn("already exists", err.message)

    def test_tree_must_be_a_directory(self) -> None:
        self.fake_tools()
        self.assertRaises(OutputError, FakeFormat().pack, self.dir / "nope",
                          self.dir / "out.raw", epoch=7)

    def test_epoch_range(self) -> None:
        self.fake_tools()
        self.assertRaises(OutputError, FakeFormat().pack, self.tree(), self.dir / "o.raw",
                          epoch=-1)
        self.assertRaises(OutputError, FakeFormat().pack, self.tree(), self.dir / "o.raw",
                          epoch=2**32)

    def test_compression_validation(self) -> None:
        fmt = FakeFormat()
        self.assertEqual("quick", fmt.resolve_compression(None))
        self.assertEqual("slow:3", fmt.resolve_compression("slow:3"))
        for bad, text in [("zip", "does not know"), ("slow:9", "out of range"),
                          ("quick:1", "takes no level"), ("slow:x", "bad compression")]:
            err = self.assertRaises(OutputError, fmt.resolve_compression, bad)
            self.assertIn(text, err.message)

    def test_directory_takes_no_compression(self) -> None:
        fmt = directory.DirectoryFormat()
        self.assertIsNone(fmt.resolve_compression(None))
        err = self.assertRaises(OutputError, fmt.resolve_compression, "xz")
        self.assertIn("does not compress", err.message)

    def test_split_compression(self) -> None:
        self.assertEqual(("zstd", None), base.split_compression("zstd"))
        self.assertEqual(("zstd", 19), base.split_compression("zstd:19"))

    def test_parse_version(self) -> None:
        self.assertEqual("4.5.1", base.parse_version(
            "mksquashfs version 4.5.1 (2022/03/17)\ncopyright", "version"))
        self.assertEqual("1.5", base.parse_version("mkfs.erofs 1.5\n", "mkfs.erofs"))
        self.assertEqual("1.7.1", base.parse_version("mkfs.erofs (erofs-utils) 1.7.1",
                                                     "mkfs.erofs"))
        self.assertEqual("unknown", base.parse_version("nothing", "mkfs.erofs"))


class TestSquashfsCommand(TempDirTestCase):

    def use_help(self, text: str) -> squashfs.SquashfsFormat:
        self.fake_tools()
        self.useFixture(fixtures.MonkeyPatch(
            "sysext_builder.formats.squashfs._help_text", lambda tool: text))
        return squashfs.SquashfsFormat()

    def test_command_line(self) -> None:
        fmt = self.use_help(SQUASHFS_HELP)
        argv = fmt.command(Path("/t"), Path("/o.raw"), fmt.resolve_compression(None))
        self.assertEqual(["/usr/bin/mksquashfs", "/t", "/o.raw", "-noappend", "-all-root",
                          "-no-progress", "-comp", "zstd", "-reproducible", "-exit-on-error"],
                         argv)

    def test_level_and_no_fatal_time_options(self) -> None:
        fmt = self.use_help(SQUASHFS_HELP)
        argv = fmt.command(Path("/t"), Path("/o.raw"), fmt.resolve_compression("zstd:19"))
        self.assertIn("-Xcompression-level", argv)
        self.assertEqual("19", argv[argv.index("-Xcompression-level") + 1])
        self.assertNotIn("-mkfs-time", argv)
        self.assertNotIn("-all-time", argv)

    def test_falls_back_to_xz_without_zstd(self) -> None:
        fmt = self.use_help(SQUASHFS_HELP_NO_ZSTD)
        logger = self.useFixture(fixtures.FakeLogger())
        self.assertEqual("xz", fmt.resolve_compression(None))
        self.assertIn("using xz", logger.output)

    def test_unavailable_compression_is_refused(self) -> None:
        fmt = self.use_help(SQUASHFS_HELP.replace("\t\t\t\tlzo\n", ""))
        err = self.assertRaises(OutputError, fmt.resolve_compression, "lzo")
        self.assertIn("lack compression 'lzo'", err.message)

    def test_old_options_are_omitted_when_unknown(self) -> None:
        fmt = self.use_help("Compressors available:\n\tgzip (default)\n\txz\n")
        argv = fmt.command(Path("/t"), Path("/o.raw"), "xz")
        self.assertNotIn("-reproducible", argv)
        self.assertNotIn("-exit-on-error", argv)


class TestErofsCommand(TempDirTestCase):

    def test_command_line(self) -> None:
        self.fake_tools()
        tree = self.tree()
        argv = erofs.ErofsFormat().command(tree, Path("/o.raw"), epoch=1700000000,
                                           compression="lz4hc")
        uuid = erofs.tree_uuid(tree, 1700000000)
        self.assertEqual(["/usr/bin/mkfs.erofs", "--quiet", "-T1700000000", f"-U{uuid}",
                          "--all-root", "-zlz4hc", "/o.raw", str(tree)], argv)

    def test_level_and_none(self) -> None:
        self.fake_tools()
        fmt = erofs.ErofsFormat()
        tree = self.tree()
        argv = fmt.command(tree, Path("/o.raw"), epoch=1, compression="lz4hc:12")
        self.assertIn("-zlz4hc,12", argv)
        argv = fmt.command(tree, Path("/o2.raw"), epoch=1, compression="none")
        self.assertEqual([], [a for a in argv if a.startswith("-z")])

    def test_uuid_depends_on_names_and_epoch_only(self) -> None:
        tree = self.tree()
        first = erofs.tree_uuid(tree, 100)
        other = self.dir / "other"
        (other / "usr/bin").mkdir(parents=True)
        os.symlink("x", other / "usr/bin/hi")
        (other / "usr/bin/hello").write_text("different content")
        self.assertEqual(first, erofs.tree_uuid(other, 100))
        self.assertNotEqual(first, erofs.tree_uuid(tree, 101))
        (other / "usr/bin/new").write_text("")
        self.assertNotEqual(first, erofs.tree_uuid(other, 100))

    def test_available_compressions_from_help(self) -> None:
        self.fake_tools()
        self.useFixture(fixtures.MonkeyPatch(
            "sysext_builder.formats.erofs._help_text",
            lambda tool: "usage\nAvailable compressors are: lz4hc, lz4\n"))
        fmt = erofs.ErofsFormat()
        self.assertEqual(("lz4hc", "lz4", "none"), fmt.available_compressions())
        self.assertRaises(OutputError, fmt.resolve_compression, "zstd")


class TestDirectoryFormat(TempDirTestCase):

    def test_copies_modes_symlinks_and_clamps_times(self) -> None:
        tree = self.tree()
        os.utime(tree / "usr/bin/hello", (10, 10))
        dest = self.dir / "out"
        directory.DirectoryFormat().pack(tree, dest, epoch=1000)
        self.assertEqual("hello", os.readlink(dest / "usr/bin/hi"))
        self.assertEqual(0o755, stat.S_IMODE((dest / "usr/bin/hello").stat().st_mode))
        self.assertEqual(10, (dest / "usr/bin/hello").stat().st_mtime)  # older: kept
        self.assertEqual(1000, (dest / "usr/bin").stat().st_mtime)  # newer: clamped
        self.assertEqual(1000, os.lstat(dest / "usr/bin/hi").st_mtime)
        self.assertEqual(1000, dest.stat().st_mtime)

    def test_refuses_special_files(self) -> None:
        tree = self.tree()
        os.mkfifo(tree / "usr/bin/fifo")
        dest = self.dir / "out"
        err = self.assertRaises(OutputError, directory.DirectoryFormat().pack, tree, dest,
                                epoch=1000)
        self.assertIn("not a regular file", err.message)
        self.assertFalse(dest.exists())

    def test_no_tools(self) -> None:
        fmt = directory.DirectoryFormat()
        self.assertEqual([], fmt.tools())
        self.assertEqual({}, fmt.tool_versions())
        self.assertEqual("", fmt.suffix)


class TestRegistry(testtools.TestCase):

    def test_names(self) -> None:
        self.assertEqual(["directory", "erofs", "squashfs"], formats.names())

    def test_get(self) -> None:
        for name, cls, suffix in [("squashfs", squashfs.SquashfsFormat, ".raw"),
                                  ("erofs", erofs.ErofsFormat, ".raw"),
                                  ("directory", directory.DirectoryFormat, "")]:
            driver = formats.get(name)
            self.assertIsInstance(driver, cls)
            self.assertEqual(name, driver.name)
            self.assertEqual(suffix, driver.suffix)
        self.assertEqual("zstd", formats.get("squashfs").default_compression)
        self.assertEqual("lz4hc", formats.get("erofs").default_compression)

    def test_unknown_lists_available(self) -> None:
        err = self.assertRaises(PluginError, formats.get, "tarball")
        self.assertIn("directory, erofs, squashfs", err.hint or "")

    def test_non_driver_is_refused(self) -> None:
        self.useFixture(fixtures.MonkeyPatch(
            "sysext_builder.plugins.load_driver", lambda ns, name: object))
        err = self.assertRaises(PluginError, formats.get, "squashfs")
        self.assertIn("not an OutputFormat", err.message)
