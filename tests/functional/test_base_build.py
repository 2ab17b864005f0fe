"""Building against a real Debian base tree: overlay, chroot, apt, base exclusion."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import fixtures
import testtools

from tests.functional import base
from tests.functional.debian_base import DebianBaseTree, base_tarball, mounts_below

BASE_ELEMENTS = base.FIXTURES / "elements" / "base"


def tree_digest(root: Path) -> str:
    """A digest of every path, type, mode, size, mtime and link target under root."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            target = os.readlink(full) if os.path.islink(full) else ""
            digest.update(f"{os.path.relpath(full, root)}|{st.st_mode}|{st.st_size}|"
                          f"{st.st_mtime_ns}|{target}\n".encode())
    return digest.hexdigest()


class TestBaseBuild(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        base.require_root("building against --base")
        self.tarball = base_tarball()
        self.out = Path(self.useFixture(fixtures.TempDir()).path)
        self.cache = Path(self.useFixture(fixtures.TempDir()).path) / "cache"
        self.work = Path(self.useFixture(fixtures.TempDir()).path)

    def create(self, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        return base.run("sysext-create", "--element-path", str(BASE_ELEMENTS),
                        "--cache-dir", str(self.cache), "--workdir", str(self.work), *args,
                        env=env, timeout=900)

    def test_installs_only_what_the_base_lacks_and_merges(self) -> None:
        proc = self.create("hello-pkg", "--base", str(self.tarball), "-t", "directory",
                           "-o", f"{self.out}/dir/hello-pkg")
        self.assertEqual(0, proc.returncode, proc.stderr[-3000:])
        tree = self.out / "dir" / "hello-pkg"
        self.assertTrue((tree / "usr/bin/hello").is_file())
        self.assertFalse((tree / "usr/bin/bash").exists(), "bash is in the base already")
        self.assertFalse((tree / "var").exists())
        self.assertFalse((tree / "usr/bin/cowsay").exists(), "when: condition was false")
        self.assertEqual("built on debian 12\n",
                         (tree / "usr/share/hello-pkg/built-on").read_text())
        self.assertEqual(["usr"], sorted(os.listdir(tree)))
        doc = json.loads((self.out / "dir" / "hello-pkg.manifest.json").read_text())
        added = {p["name"]: p["version"] for p in doc["packages"]}
        self.assertIn("hello", added)
        self.assertNotIn("bash", added)
        paths = {f["path"] for f in doc["files"]}
        self.assertFalse(any(p.startswith("usr/share/doc/bash") for p in paths))
        release = doc["extension_release"]
        self.assertEqual(("debian", "12"), (release["ID"], release["VERSION_ID"]))
        # The squashfs image of the same build merges into a copy of the base, where
        # the packaged binary runs.
        proc = self.create("hello-pkg", "--base", str(self.tarball),
                           "-o", f"{self.out}/raw/hello-pkg")
        self.assertEqual(0, proc.returncode, proc.stderr[-3000:])
        from sysext_builder.sysext import verify

        root = self.useFixture(DebianBaseTree()).path
        merged = verify.merge_into(self.out / "raw" / "hello-pkg.raw", root, ["hello"])
        self.assertTrue(merged.accepted, "\n".join(merged.log[-20:]))
        self.assertEqual((0, "Hello, world!\n"), merged.commands[0])
        self.assertEqual([], mounts_below(root))

    def test_failing_chroot_hook_leaves_the_base_unchanged(self) -> None:
        root = self.useFixture(DebianBaseTree()).path
        before = tree_digest(root)
        proc = self.create("chroot-fail", "--base", str(root), "--os-id", "debian",
                           "-o", f"{self.out}/x")
        self.assertEqual(20, proc.returncode, proc.stderr[-3000:])
        self.assertIn("hook 50-fail of element chroot-fail in phase install.d failed with "
                      "exit status 4", proc.stderr)
        self.assertIn("scribbling on /usr", proc.stderr)
        self.assertEqual(before, tree_digest(root), "the base was modified")
        self.assertFalse((root / "usr/bin/evil").exists())
        self.assertEqual([], mounts_below(self.work))
        self.assertEqual([], mounts_below(root))
        self.assertEqual([], os.listdir(self.out))

    def test_offline_needs_a_warm_cache(self) -> None:
        proc = self.create("hello-pkg", "--base", str(self.tarball), "--offline",
                           "-t", "directory", "-o", f"{self.out}/cold/hello-pkg")
        self.assertEqual(26, proc.returncode, proc.stderr[-3000:])
        self.assertIn("--offline", proc.stderr)
        self.assertIn("hello", proc.stderr)
        proc = self.create("hello-pkg", "--base", str(self.tarball),
                           "-t", "directory", "-o", f"{self.out}/warm/hello-pkg")
        self.assertEqual(0, proc.returncode, proc.stderr[-3000:])
        proc = self.create("hello-pkg", "--base", str(self.tarball), "--offline",
                           "-t", "directory", "-o", f"{self.out}/offline/hello-pkg")
        self.assertEqual(0, proc.returncode, proc.stderr[-3000:])
        self.assertTrue((self.out / "offline/hello-pkg/usr/bin/hello").is_file())

    def test_packages_without_base_are_refused(self) -> None:
        proc = self.create("hello-pkg", "--os-id", "debian", "-o", f"{self.out}/nobase")
        self.assertEqual(26, proc.returncode, proc.stderr)
        self.assertIn("element hello-pkg asks for distro packages bash, hello: pass --base",
                      proc.stderr)


class TestBaseKinds(testtools.TestCase):
    """--base as a directory, .tar.zst, squashfs and erofs: images and archives are
    unpacked once into the cache, a directory is used in place; the identity comes
    from the base's os-release.  One test per kind, each requiring its tools."""

    def setUp(self) -> None:
        super().setUp()
        base.require_root("building against --base")
        top = Path(self.useFixture(fixtures.TempDir()).path)
        self.top = top
        self.tree = top / "tree"
        (self.tree / "etc").mkdir(parents=True)
        (self.tree / "usr/lib").mkdir(parents=True)
        (self.tree / "etc/os-release").write_text('ID=tinyos\nVERSION_ID="4.2"\n')

    def build_on(self, image: Path, name: str = "first") -> subprocess.CompletedProcess[str]:
        out = self.top / f"out-{image.name}-{name}"
        proc = base.run("sysext-create", "--element-path", str(BASE_ELEMENTS), "static-only",
                        "--base", str(image), "--cache-dir", str(self.top / "cache"),
                        "-t", "directory", "-o", f"{out}/static-only")
        self.assertEqual(0, proc.returncode, proc.stderr[-2000:])
        self.check(out / "static-only")
        return proc

    def check(self, result: Path) -> None:
        from sysext_builder.sysext import osrelease

        self.assertEqual("from static/\n",
                         (result / "usr/share/static-only/file").read_text())
        fields = osrelease.read_file(
            result / "usr/lib/extension-release.d/extension-release.static-only")
        self.assertEqual(("tinyos", "4.2"), (fields["ID"], fields["VERSION_ID"]))

    def unpacked(self) -> list[str]:
        bases = self.top / "cache/bases"
        return sorted(p.name for p in bases.iterdir()) if bases.is_dir() else []

    def check_unpacked_once(self, image: Path, kind: str) -> None:
        """Built twice on ``image``: unpacked into the cache by the first build only."""
        self.build_on(image)
        unpacked = self.unpacked()
        self.assertEqual(1, len(unpacked), unpacked)
        self.assertTrue(unpacked[0].endswith(f"-{kind}"), unpacked)
        again = self.build_on(image, "again")
        self.assertIn("using the unpacked copy", again.stderr)
        self.assertEqual(unpacked, self.unpacked())

    def make(self, argv: list[str]) -> None:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        self.assertEqual(0, done.returncode, f"{argv}: {done.stdout}{done.stderr}")

    def test_directory_base_is_used_in_place(self) -> None:
        self.build_on(self.tree)
        self.assertEqual([], self.unpacked())

    def test_tar_zst_base(self) -> None:
        base.require_tool("tar", "tar")
        base.require_tool("zstd", "zstd")
        image = self.top / "base.tar.zst"
        self.make(["tar", "--zstd", "-cf", str(image), "-C", str(self.tree), "."])
        self.check_unpacked_once(image, "tar")

    def test_squashfs_base(self) -> None:
        base.require_tool("mksquashfs", "squashfs-tools")
        base.require_tool("unsquashfs", "squashfs-tools")
        image = self.top / "base.sqfs"
        self.make(["mksquashfs", str(self.tree), str(image), "-noappend", "-quiet"])
        self.check_unpacked_once(image, "squashfs")

    def test_erofs_base(self) -> None:
        base.require_tool("mkfs.erofs", "erofs-utils")
        base.require_tool("fsck.erofs", "erofs-utils")
        image = self.top / "base.erofs"
        self.make(["mkfs.erofs", "--quiet", str(image), str(self.tree)])
        self.check_unpacked_once(image, "erofs")
