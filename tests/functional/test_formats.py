"""The real packers: images read back, byte-reproducible, placed atomically.

Packing needs no root (-all-root / --all-root record root as owner); each
test skips with the Debian package to install when its tool is missing.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import fixtures
import testtools

from sysext_builder import formats
from sysext_builder.errors import ImageError
from sysext_builder.output import atomic, place
from sysext_builder.sysext import image, osrelease
from tests.functional import base

EPOCH = 1_700_000_000
PACKED = {"squashfs": ("mksquashfs", "unsquashfs", "squashfs-tools"),
          "erofs": ("mkfs.erofs", "fsck.erofs", "erofs-utils")}
HELLO = "#!/bin/sh\necho hello from a sysext\n"
DEBIAN_12 = {"ID": "debian", "VERSION_ID": "12"}


def make_tree(root: Path, name: str, fields: Mapping[str, str] = DEBIAN_12, *,
              reverse: bool = False) -> Path:
    """A minimal extension tree: usr/bin/hello, opt/NAME/data, extension-release.NAME.

    ``reverse`` creates the entries in the opposite order (other inode numbers
    and directory order).
    """
    files = {
        "usr/bin/hello": HELLO,
        f"usr/lib/extension-release.d/extension-release.{name}": osrelease.render(fields),
        f"opt/{name}/data": "payload\n",
        **{f"usr/share/{name}/f{i:02d}": f"file {i}\n" * i for i in range(20)},
    }
    root.mkdir(parents=True)
    root.chmod(0o755)
    for rel in sorted(files, reverse=reverse):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[rel])
        path.chmod(0o755 if rel == "usr/bin/hello" else 0o644)
    os.symlink("hello", root / "usr/bin/hi")
    for dirpath, dirnames, _ in os.walk(root):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o755)
    return root


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def require_format(fmt: str) -> None:
    packer, reader, package = PACKED[fmt]
    base.require_tool(packer, package)
    base.require_tool(reader, package)


class FormatTestCase(testtools.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.dir = Path(self.useFixture(fixtures.TempDir()).path)

    def pack(self, fmt: str, tree: Path, dest: Path, epoch: int = EPOCH,
             compression: str | None = None) -> Path:
        formats.get(fmt).pack(tree, dest, epoch=epoch, compression=compression)
        return dest


class TestPackAndReadBack(FormatTestCase):
    def _check(self, fmt: str) -> None:
        require_format(fmt)
        tree = make_tree(self.dir / "tree", "hello")
        img = self.pack(fmt, tree, self.dir / "hello.raw")
        self.assertEqual(fmt, image.detect_kind(img))
        ext = image.read_extension(img)
        self.assertEqual(DEBIAN_12, ext.fields)
        self.assertEqual("hello", ext.name)
        self.assertEqual("extension-release.hello", ext.release_file)
        self.assertEqual(("extension-release.hello",), ext.present)
        self.assertFalse(ext.has_os_release)

    def test_squashfs(self) -> None:
        self._check("squashfs")

    def test_erofs(self) -> None:
        self._check("erofs")

    def test_name_mismatch_lists_files(self) -> None:
        require_format("squashfs")
        tree = make_tree(self.dir / "tree", "hello")
        img = self.pack("squashfs", tree, self.dir / "other.raw")
        err = self.assertRaises(ImageError, image.read_extension, img)
        self.assertIn("no extension-release for image name 'other'", err.message)
        self.assertIn("extension-release.hello", err.message)
        self.assertIn("rename the image to hello.raw", err.hint or "")

    def test_squashfs_default_compression_is_recorded(self) -> None:
        require_format("squashfs")
        tree = make_tree(self.dir / "tree", "hello")
        img = self.pack("squashfs", tree, self.dir / "hello.raw")
        stat = subprocess.run(["unsquashfs", "-s", str(img)], capture_output=True, text=True,
                              check=True).stdout
        self.assertIn("Compression zstd", stat)
        self.assertIn("root", subprocess.run(["unsquashfs", "-lls", str(img)],
                                             capture_output=True, text=True,
                                             check=True).stdout)

    def test_tool_versions(self) -> None:
        for fmt, (packer, _, _) in PACKED.items():
            require_format(fmt)
            version = formats.get(fmt).tool_versions()[packer]
            self.assertRegex(version, r"^\d+(\.\d+)+")


class TestReproducible(FormatTestCase):
    """Two copies of the tree, made at different times in a different order."""

    def _twice(self, fmt: str, compression: str | None = None) -> tuple[Path, Path]:
        require_format(fmt)
        first = make_tree(self.dir / "one", "hello")
        time.sleep(1.1)  # different (post-epoch) mtimes, clamped by the epoch
        second = make_tree(self.dir / "two" / "nested", "hello", reverse=True)
        self.assertNotEqual(os.stat(first / "usr/bin/hello").st_mtime_ns,
                            os.stat(second / "usr/bin/hello").st_mtime_ns)
        out_a = self.pack(fmt, first, self.dir / "a.raw", compression=compression)
        out_b = self.pack(fmt, second, self.dir / "b.raw", compression=compression)
        return out_a, out_b

    def test_squashfs(self) -> None:
        a, b = self._twice("squashfs")
        self.assertEqual(sha256(a), sha256(b))

    def test_squashfs_xz(self) -> None:
        a, b = self._twice("squashfs", "xz")
        self.assertEqual(sha256(a), sha256(b))

    def test_erofs(self) -> None:
        a, b = self._twice("erofs")
        self.assertEqual(sha256(a), sha256(b))

    def test_erofs_uncompressed(self) -> None:
        a, b = self._twice("erofs", "none")
        self.assertEqual(sha256(a), sha256(b))

    def test_epoch_changes_the_image(self) -> None:
        require_format("squashfs")
        tree = make_tree(self.dir / "one", "hello")
        a = self.pack("squashfs", tree, self.dir / "a.raw")
        b = self.pack("squashfs", tree, self.dir / "b.raw", epoch=EPOCH + 1)
        self.assertNotEqual(sha256(a), sha256(b))


class TestAtomicPlacement(FormatTestCase):

    def _replace(self, fmt: str) -> None:
        driver = formats.get(fmt)
        out = self.dir / "out"
        out.mkdir()
        final = out / f"hello{driver.suffix}"
        old_tree = make_tree(self.dir / "old", "hello", {"ID": "debian", "VERSION_ID": "11"})
        new_tree = make_tree(self.dir / "new", "hello")
        for tree in (old_tree, new_tree):
            tmp = atomic.temp_path_for(final)
            driver.pack(tree, tmp, epoch=EPOCH)
            self.assertEqual([final.name] if tree is new_tree else [],
                             [p for p in os.listdir(out) if not p.startswith(".")])
            atomic.commit(tmp, final)
            self.assertEqual([final.name], os.listdir(out))
        self.assertEqual("12", image.read_extension(final).fields["VERSION_ID"])

    def test_squashfs(self) -> None:
        require_format("squashfs")
        self._replace("squashfs")

    def test_erofs(self) -> None:
        require_format("erofs")
        self._replace("erofs")

    def test_directory(self) -> None:
        self._replace("directory")

    def test_failed_pack_leaves_old_image_and_no_temp(self) -> None:
        require_format("squashfs")
        out = self.dir / "out"
        out.mkdir()
        final = out / "hello.raw"
        self.pack("squashfs", make_tree(self.dir / "tree", "hello"), final)
        before = sha256(final)
        other = make_tree(self.dir / "other", "hello", {"ID": "debian", "VERSION_ID": "13"})

        def failing() -> None:
            out_files = place.Outputs(out)
            try:
                tmp, _ = out_files.reserve(final.name)
                formats.get("squashfs").pack(other, tmp, epoch=EPOCH)
                raise RuntimeError("a later step failed")
            finally:
                out_files.discard()

        self.assertRaises(RuntimeError, failing)
        self.assertEqual(before, sha256(final))
        self.assertEqual(["hello.raw"], os.listdir(out))
