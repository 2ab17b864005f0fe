"""``--oem-partition DIR``: Flatcar's OEM partition tree, written with the other outputs."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import fixtures
import testtools

from sysext_builder import builder
from sysext_builder.config import BuildConfig
from sysext_builder.errors import OutputError, UsageError
from sysext_builder.output import oem, place
from sysext_builder.sysext import oemlink
from tests.base import require
from tests.unit.output.test_place import DirFormat, FakeFormat, listing

OEM_RELEASE = 'ID=qemu\nVERSION_ID=2.0\nNAME="QEMU"\n'
GRUB = 'set oem_id="qemu"\n'


def tree_of(directory: Path) -> list[str]:
    """Every entry below ``directory``, relative, sorted (directories end in /)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(directory):
        rel = Path(dirpath).relative_to(directory)
        found += [f"{(rel / d).as_posix()}/" for d in dirnames]
        found += [(rel / f).as_posix() for f in filenames]
    return sorted(p.removeprefix("./") for p in found)


def config(part: Path | None, **kw: Any) -> BuildConfig:
    kw.setdefault("formats", ("one",))
    return BuildConfig(elements=("qemu-oem",), oem_partition=part, **kw)


class OemTestCase(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.dir = Path(self.useFixture(fixtures.TempDir()).path)
        self.out = self.dir / "out"
        self.part = self.dir / "oem"
        self.tree = self.dir / "tree"
        (self.tree / "usr").mkdir(parents=True)
        self.artifacts = self.dir / "artifacts"
        self.artifacts.mkdir()
        self.side_files()
        self.logger = self.useFixture(fixtures.FakeLogger(level=10))

    def side_files(self, release: str = OEM_RELEASE) -> None:
        (self.artifacts / "oem-release").write_text(release)
        (self.artifacts / "grub.cfg").write_text(GRUB)

    def build(self, cfg: BuildConfig, name: str = "oem-qemu") -> SimpleNamespace:
        """The parts of builder._Build that place_outputs reads."""
        return SimpleNamespace(
            config=cfg, target=SimpleNamespace(directory=self.out, name=name),
            ws=SimpleNamespace(root=self.tree, artifacts=self.artifacts),
            result=builder.BuildResult(name=name), elements=(),
            installer=SimpleNamespace(records={}))

    def place(self, cfg: BuildConfig, drivers: list[Any] | None = None,
              name: str = "oem-qemu") -> SimpleNamespace:
        b = self.build(cfg, name)
        builder.place_outputs(cast(builder._Build, b), drivers or [FakeFormat()],
                              {"ID": "flatcar"})
        return b

    def hidden(self, directory: Path) -> list[str]:
        return [n for n in os.listdir(directory) if n.startswith(".")]


class TestNewPartition(OemTestCase):

    def test_tree_appears_with_the_image_side_files_and_flag(self) -> None:
        b = self.place(config(self.part))
        self.assertEqual(["grub.cfg", "oem-release", "sysext/", "sysext/active-oem-qemu",
                          "sysext/oem-qemu-2.0.raw"], tree_of(self.part))
        self.assertEqual("image:one", (self.part / "sysext/oem-qemu-2.0.raw").read_text())
        self.assertEqual(OEM_RELEASE, (self.part / "oem-release").read_text())
        self.assertEqual(GRUB, (self.part / "grub.cfg").read_text())
        self.assertEqual(b"", (self.part / "sysext/active-oem-qemu").read_bytes())
        for rel, mode in (("", 0o755), ("sysext", 0o755), ("oem-release", 0o644),
                          ("sysext/active-oem-qemu", 0o644)):
            self.assertEqual(mode, (self.part / rel).stat().st_mode & 0o7777, rel)
        self.assertEqual([], self.hidden(self.dir), "no temporary left beside DIR")
        self.assertEqual(["grub.cfg", "oem-qemu.manifest.json", "oem-qemu.raw", "oem-release",
                          oemlink.HELPER_UNIT], listing(self.out),
                         "the usual outputs are still written, and the OEM helper")
        self.assertEqual(oemlink.helper_unit(), (self.out / oemlink.HELPER_UNIT).read_text())
        assert b.result.manifest is not None
        record = json.loads(b.result.manifest.read_text())["oem_partition"]
        self.assertEqual({"id": "qemu", "version": "2.0", "activated": True}, {
            k: record[k] for k in ("id", "version", "activated")})
        files = {f["path"]: f for f in record["files"]}
        self.assertEqual(["grub.cfg", "oem-release", "sysext/active-oem-qemu",
                          "sysext/oem-qemu-2.0.raw"], sorted(files))
        self.assertEqual(hashlib.sha256(b"image:one").hexdigest(),
                         files["sysext/oem-qemu-2.0.raw"]["sha256"])
        self.assertEqual(hashlib.sha256(OEM_RELEASE.encode()).hexdigest(),
                         files["oem-release"]["sha256"])
        self.assertEqual(0, files["sysext/active-oem-qemu"]["size"])

    def test_nothing_is_at_the_final_name_until_commit(self) -> None:
        out = place.output_directory(self.out)
        images = place.pack_images(config(self.part), [FakeFormat()], tree=self.tree,
                                   name="oem-qemu", out=out, timings=builder.Timings())
        partition = oem.stage_partition(config(self.part), "oem-qemu", images,
                                        self.artifacts, out)
        self.assertFalse(os.path.lexists(self.part))
        self.assertEqual(1, len(self.hidden(self.dir)))
        self.assertEqual([self.part / "sysext/oem-qemu-2.0.raw", self.part / "oem-release",
                          self.part / "grub.cfg", self.part / "sysext/active-oem-qemu"],
                         partition.files)
        out.discard()
        self.assertEqual([], self.hidden(self.dir))
        self.assertFalse(os.path.lexists(self.part))

    def test_no_activate_leaves_out_the_flag(self) -> None:
        b = self.place(config(self.part, oem_no_activate=True))
        self.assertEqual(["grub.cfg", "oem-release", "sysext/", "sysext/oem-qemu-2.0.raw"],
                         tree_of(self.part))
        assert b.result.manifest is not None
        self.assertFalse(json.loads(b.result.manifest.read_text())["oem_partition"]["activated"])

    def test_parent_directories_are_made(self) -> None:
        self.place(config(self.dir / "a/b/oem"))
        self.assertTrue((self.dir / "a/b/oem/sysext/active-oem-qemu").is_file())

    def test_copy_where_a_hard_link_cannot_be_made(self) -> None:
        def no_link(src: object, dst: object) -> None:
            raise OSError(errno.EXDEV, "Invalid cross-device link")

        self.useFixture(fixtures.MonkeyPatch("os.link", no_link))
        self.place(config(self.part))
        image = self.part / "sysext/oem-qemu-2.0.raw"
        self.assertEqual("image:one", image.read_text())
        self.assertEqual(0o644, image.stat().st_mode & 0o7777)

    def test_without_the_option_nothing_is_written_or_recorded(self) -> None:
        b = self.place(config(None))
        self.assertFalse(os.path.lexists(self.part))
        assert b.result.manifest is not None
        self.assertNotIn("oem_partition", json.loads(b.result.manifest.read_text()))


class TestExistingPartition(OemTestCase):

    def setUp(self) -> None:
        super().setUp()
        (self.part / "sysext").mkdir(parents=True)
        (self.part / "sysext/oem-qemu-1.0.raw").write_text("old image")
        (self.part / "oem-release").write_text("ID=qemu\nVERSION_ID=1.0\n")
        (self.part / "grub.cfg").write_text("old grub")
        (self.part / "notes.txt").write_text("the admin's")

    def test_update_adds_the_new_version_and_keeps_what_it_did_not_write(self) -> None:
        self.place(config(self.part))
        self.assertEqual(["grub.cfg", "notes.txt", "oem-release", "sysext/",
                          "sysext/active-oem-qemu", "sysext/oem-qemu-1.0.raw",
                          "sysext/oem-qemu-2.0.raw"], tree_of(self.part))
        self.assertEqual("old image", (self.part / "sysext/oem-qemu-1.0.raw").read_text())
        self.assertEqual("the admin's", (self.part / "notes.txt").read_text())
        self.assertEqual(OEM_RELEASE, (self.part / "oem-release").read_text())
        self.assertEqual(GRUB, (self.part / "grub.cfg").read_text())
        self.assertEqual([], self.hidden(self.part) + self.hidden(self.part / "sysext"))

    def test_renames_go_image_first_and_flag_last(self) -> None:
        committed: list[str] = []
        real = place.commit

        def watch(tmp: Path, final: Path) -> None:
            committed.append(str(final.relative_to(self.dir)))
            real(tmp, final)

        self.useFixture(fixtures.MonkeyPatch("sysext_builder.output.place.commit", watch))
        self.place(config(self.part))
        ours = [c for c in committed if c.startswith("oem/")]
        self.assertEqual(["oem/sysext/oem-qemu-2.0.raw", "oem/oem-release", "oem/grub.cfg",
                          "oem/sysext/active-oem-qemu"], ours)

    def test_a_missing_sysext_directory_appears_whole_after_the_side_files(self) -> None:
        shutil.rmtree(self.part / "sysext")
        committed: list[str] = []
        real = place.commit

        def watch(tmp: Path, final: Path) -> None:
            committed.append(str(final.relative_to(self.dir)))
            real(tmp, final)

        self.useFixture(fixtures.MonkeyPatch("sysext_builder.output.place.commit", watch))
        self.place(config(self.part))
        self.assertEqual(["oem/oem-release", "oem/grub.cfg", "oem/sysext"],
                         [c for c in committed if c.startswith("oem/")])
        self.assertEqual(["sysext/active-oem-qemu", "sysext/oem-qemu-2.0.raw"],
                         [p for p in tree_of(self.part) if p.startswith("sysext/") and
                          not p.endswith("/")])

    def test_no_activate_keeps_an_existing_flag(self) -> None:
        (self.part / "sysext/active-oem-qemu").write_text("")
        self.place(config(self.part, oem_no_activate=True))
        self.assertTrue((self.part / "sysext/active-oem-qemu").is_file())
        self.assertIn("is kept", self.logger.output)

    def test_a_failure_after_staging_leaves_the_partition_as_it_was(self) -> None:
        before = {p: (self.part / p).read_bytes() for p in tree_of(self.part)
                  if not p.endswith("/")}

        def fail(*args: object, **kw: object) -> str:
            raise OutputError("manifest failed")

        self.useFixture(fixtures.MonkeyPatch(
            "sysext_builder.output.place.manifest_text", fail))
        self.assertRaises(OutputError, self.place, config(self.part))
        self.assertEqual(before, {p: (self.part / p).read_bytes() for p in tree_of(self.part)
                                  if not p.endswith("/")})
        self.assertEqual([], self.hidden(self.part) + self.hidden(self.part / "sysext"))

    def test_a_file_in_the_way_is_an_output_error(self) -> None:
        shutil.rmtree(self.part / "sysext")
        (self.part / "sysext").write_text("not a directory")
        err = self.assertRaises(OutputError, self.place, config(self.part))
        self.assertIn(f"{self.part / 'sysext'} exists and is not a directory", err.message)
        self.assertEqual([], self.hidden(self.part))
        self.assertFalse(os.path.lexists(self.out / "oem-qemu.raw"), "no output at all")


class TestRefusals(OemTestCase):

    def refused(self, cfg: BuildConfig, name: str = "oem-qemu",
                drivers: list[Any] | None = None) -> UsageError:
        err = self.assertRaises(UsageError, self.place, cfg, drivers, name)
        self.assertNotIn("\n", err.message)
        self.assertFalse(os.path.lexists(self.part), "no partition")
        self.assertEqual([], listing(self.out) if self.out.exists() else [], "no output")
        return err

    def test_not_an_oem_image(self) -> None:
        (self.artifacts / "oem-release").unlink()
        err = self.refused(config(self.part), name="hello")
        self.assertEqual("--oem-partition: hello is not an OEM image: no oem-release was "
                         "written (DIB_OEM_ID is not set)", err.message)
        self.assertIn("qemu-oem", err.hint or "")

    def test_no_version(self) -> None:
        self.side_files('ID=qemu\nNAME="QEMU"\n')
        err = self.refused(config(self.part))
        self.assertEqual("--oem-partition: oem-release has no VERSION_ID (set DIB_OEM_VERSION)",
                         err.message)

    def test_no_id(self) -> None:
        self.side_files("VERSION_ID=2.0\n")
        self.assertIn("has no ID (set DIB_OEM_ID)", self.refused(config(self.part)).message)

    def test_a_version_that_cannot_name_a_file(self) -> None:
        self.side_files("ID=qemu\nVERSION_ID=../2\n")
        self.assertIn("VERSION_ID='../2' cannot name a file",
                      self.refused(config(self.part)).message)

    def test_the_image_must_be_named_after_the_oem_id(self) -> None:
        err = self.refused(config(self.part), name="my-qemu")
        self.assertIn("named 'my-qemu', but Flatcar activates it as oem-qemu.raw",
                      err.message)

    def test_no_grub_cfg(self) -> None:
        (self.artifacts / "grub.cfg").unlink()
        self.assertIn("no grub.cfg", self.refused(config(self.part)).message)

    def test_no_raw_image_was_built(self) -> None:
        err = self.refused(config(self.part, formats=("two",)), drivers=[DirFormat()])
        self.assertIn("no .raw format was built", err.message)

    def test_checked_before_any_work(self) -> None:
        self.useFixture(fixtures.MonkeyPatch("sysext_builder.formats.get",
                                             lambda name: {"one": FakeFormat,
                                                           "two": DirFormat}[name]()))
        err = self.assertRaises(UsageError, place.load_formats,
                                config(self.part, formats=("two",)))
        self.assertEqual("--oem-partition needs an image file: no .raw format is built",
                         err.message)
        self.assertIn("-t squashfs", err.hint or "")
        err = self.assertRaises(UsageError, place.load_formats,
                                config(None, formats=("one",), oem_no_activate=True))
        self.assertEqual("--no-activate only applies to --oem-partition DIR", err.message)
        place.load_formats(config(self.part, formats=("one", "two")))


class TestBuild(testtools.TestCase):
    """``sysext-create qemu-oem -o OUT/ --oem-partition DIR``: the real elements."""

    def setUp(self) -> None:
        super().setUp()
        self.dir = Path(self.useFixture(fixtures.TempDir()).path)
        self.useFixture(fixtures.FakeLogger(level=20))

    def build(self, version: str, formats: tuple[str, ...] = ("one",)) -> None:
        cfg = BuildConfig(elements=("qemu-oem",), output=f"{self.dir}/out/", formats=formats,
                          oem_partition=self.dir / "oem", workdir=self.dir,
                          cache_dir=self.dir / "cache", environ={"DIB_OEM_VERSION": version})
        builder.build(cfg)

    def test_two_versions_into_one_partition(self) -> None:
        self.useFixture(fixtures.MonkeyPatch("sysext_builder.formats.get",
                                             lambda name: FakeFormat()))
        self.build("3975.2.0")
        self.build("3975.2.1")
        part = self.dir / "oem"
        self.assertEqual(["grub.cfg", "oem-release", "sysext/", "sysext/active-oem-qemu",
                          "sysext/oem-qemu-3975.2.0.raw", "sysext/oem-qemu-3975.2.1.raw"],
                         tree_of(part))
        self.assertIn("VERSION_ID=3975.2.1\n", (part / "oem-release").read_text())
        self.assertIn('set oem_id="qemu"', (part / "grub.cfg").read_text())

    def test_with_squashfs(self) -> None:
        require("tools", shutil.which("mksquashfs") is not None, "mksquashfs is not installed")
        self.build("1.2", formats=("squashfs",))
        image = self.dir / "oem/sysext/oem-qemu-1.2.raw"
        self.assertEqual((self.dir / "out/oem-qemu.raw").read_bytes(), image.read_bytes())
        self.assertEqual(b"hsqs", image.read_bytes()[:4])
