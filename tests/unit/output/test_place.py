"""Placing outputs: every image packed under a temp name, all committed together or none."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar, cast

import fixtures
import testtools

from sysext_builder import builder, runner
from sysext_builder.config import BuildConfig
from sysext_builder.errors import OutputError, ToolMissingError, UsageError
from sysext_builder.formats.base import OutputFormat
from sysext_builder.log import Timings
from sysext_builder.model.element import Element
from sysext_builder.output import place


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def temps(directory: Path) -> list[str]:
    return [n for n in os.listdir(directory) if ".tmp-" in n]


class FakeFormat(OutputFormat):
    """Writes ``image:NAME`` at the reserved path; may record the output dir or fail."""

    name: ClassVar[str] = "one"
    suffix: ClassVar[str] = ".raw"
    compressions: ClassVar[tuple[str, ...]] = ("quick", "slow")

    def __init__(self, *, fail: bool = False, watch: Path | None = None) -> None:
        self.fail = fail
        self.watch = watch
        self.seen: list[str] | None = None
        self.calls: list[tuple[Path, Path, int, str | None]] = []

    def tools(self) -> list[str]:
        return []

    def tool_versions(self) -> dict[str, str]:
        return {f"mk{self.name}": "1.0"}

    def write_image(self, tree: Path, dest: Path, *, epoch: int,
                    compression: str | None) -> None:
        self.calls.append((tree, dest, epoch, compression))
        if self.watch is not None:
            self.seen = listing(self.watch)
        dest.write_text(f"image:{self.name}")
        if self.fail:
            raise OutputError(f"mk{self.name} failed")


class DirFormat(FakeFormat):
    """A second driver that writes a directory (like the ``directory`` format)."""

    name: ClassVar[str] = "two"
    suffix: ClassVar[str] = ""
    compressions: ClassVar[tuple[str, ...]] = ()

    def write_image(self, tree: Path, dest: Path, *, epoch: int,
                    compression: str | None) -> None:
        self.calls.append((tree, dest, epoch, compression))
        if self.watch is not None:
            self.seen = listing(self.watch)
        dest.mkdir()
        (dest / "usr").mkdir()
        if self.fail:
            raise OutputError("copying the tree failed")


class ClashFormat(FakeFormat):
    name: ClassVar[str] = "three"


class NeedsToolFormat(FakeFormat):
    name: ClassVar[str] = "four"
    suffix: ClassVar[str] = ".img"

    def tools(self) -> list[str]:
        return ["no-such-mkfs-tool-xyz"]


def config(**kw: Any) -> BuildConfig:
    kw.setdefault("elements", ("hello",))
    kw.setdefault("formats", ("one", "two"))
    return BuildConfig(**kw)


class PlaceTestCase(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.dir = Path(self.useFixture(fixtures.TempDir()).path)
        self.out = self.dir / "out"
        self.tree = self.dir / "tree"
        (self.tree / "usr/bin").mkdir(parents=True)
        (self.tree / "usr/bin/hello").write_text("hello\n")
        self.artifacts = self.dir / "artifacts"
        self.artifacts.mkdir()
        self.useFixture(fixtures.FakeLogger(level=10))

    def build(self, cfg: BuildConfig) -> SimpleNamespace:
        """The parts of builder._Build that place_outputs reads."""
        return SimpleNamespace(
            config=cfg, target=SimpleNamespace(directory=self.out, name="ext"),
            ws=SimpleNamespace(root=self.tree, artifacts=self.artifacts),
            result=builder.BuildResult(name="ext"),
            elements=(Element(name="hello", path=self.dir / "hello", origin="path"),),
            installer=SimpleNamespace(records={"sources": [], "python": [], "packages": []}))

    def place_outputs(self, b: SimpleNamespace, drivers: list[OutputFormat]) -> None:
        builder.place_outputs(cast(builder._Build, b), drivers, {"ID": "debian"})


class TestPlaceOutputs(PlaceTestCase):

    def test_all_outputs_are_placed_with_no_temporary_left(self) -> None:
        (self.artifacts / "ext.sbom").write_text("sbom")
        b = self.build(config(checksum=True))
        self.place_outputs(b, [FakeFormat(), DirFormat()])
        self.assertEqual(["ext", "ext.manifest.json", "ext.raw", "ext.raw.sha256", "ext.sbom"],
                         listing(self.out))
        self.assertEqual("image:one", (self.out / "ext.raw").read_text())
        self.assertTrue((self.out / "ext/usr").is_dir())
        digest = hashlib.sha256(b"image:one").hexdigest()
        self.assertEqual(f"{digest}  ext.raw\n", (self.out / "ext.raw.sha256").read_text())
        self.assertEqual([self.out / "ext.raw", self.out / "ext"], b.result.images)
        self.assertEqual([self.out / "ext.raw.sha256"], b.result.checksums)
        self.assertEqual([self.out / "ext.sbom"], b.result.artifacts)
        self.assertEqual(self.out / "ext.manifest.json", b.result.manifest)
        doc = json.loads((self.out / "ext.manifest.json").read_text())
        self.assertEqual(["one", "two"], [img["format"] for img in doc["images"]])
        self.assertEqual(digest, doc["images"][0]["sha256"])
        self.assertEqual(["ext.sbom"], doc["artifacts"])
        self.assertIn("usr/bin/hello", [f["path"] for f in doc["files"]])

    def test_first_image_is_not_at_its_final_name_while_the_second_is_packed(self) -> None:
        self.out.mkdir()
        second = DirFormat(watch=self.out)
        self.place_outputs(self.build(config()), [FakeFormat(), second])
        assert second.seen is not None
        self.assertNotIn("ext.raw", second.seen)
        self.assertEqual(1, len([n for n in second.seen if n.startswith(".ext.raw.tmp-")]),
                         str(second.seen))
        self.assertEqual(["ext", "ext.manifest.json", "ext.raw"], listing(self.out))

    def test_old_image_is_not_replaced_while_the_second_is_packed(self) -> None:
        self.out.mkdir()
        (self.out / "ext.raw").write_text("old image")
        during: list[str] = []
        out_dir = self.out

        class Reading(DirFormat):
            def write_image(self, tree: Path, dest: Path, *, epoch: int,
                            compression: str | None) -> None:
                during.append((out_dir / "ext.raw").read_text())
                super().write_image(tree, dest, epoch=epoch, compression=compression)

        self.place_outputs(self.build(config()), [FakeFormat(), Reading()])
        self.assertEqual(["old image"], during)
        self.assertEqual("image:one", (self.out / "ext.raw").read_text())

    def test_second_format_failing_leaves_old_outputs_and_no_temporaries(self) -> None:
        self.out.mkdir()
        (self.out / "ext.raw").write_text("old image")
        (self.out / "ext.raw.sha256").write_text("old sum")
        (self.out / "ext.manifest.json").write_text("old manifest")
        (self.artifacts / "ext.sbom").write_text("sbom")
        b = self.build(config(checksum=True))
        err = self.assertRaises(OutputError, self.place_outputs, b,
                                [FakeFormat(), DirFormat(fail=True)])
        self.assertEqual("copying the tree failed", err.message)
        self.assertEqual(["ext.manifest.json", "ext.raw", "ext.raw.sha256"], listing(self.out))
        self.assertEqual("old image", (self.out / "ext.raw").read_text())
        self.assertEqual("old sum", (self.out / "ext.raw.sha256").read_text())
        self.assertEqual("old manifest", (self.out / "ext.manifest.json").read_text())

    def test_failure_into_an_empty_directory_leaves_it_empty(self) -> None:
        b = self.build(config(formats=("one", "two")))
        self.assertRaises(OutputError, self.place_outputs, b,
                          [FakeFormat(), FakeFormat(fail=True)])
        self.assertEqual([], listing(self.out))

    def test_failure_after_packing_leaves_no_temporaries(self) -> None:
        (self.artifacts / "ext.sbom").write_text("sbom")
        self.artifacts.rename(self.dir / "gone")  # staging artifacts fails
        b = self.build(config(checksum=True))
        self.assertRaises(FileNotFoundError, self.place_outputs, b, [FakeFormat(), DirFormat()])
        self.assertEqual([], listing(self.out))
        self.assertIsNone(b.result.manifest)

    def test_a_manifest_that_does_not_fit_fails_the_build_and_leaves_nothing(self) -> None:
        real_write = Path.write_text

        def half_then_full(path: Path, text: str, *args: Any, **kw: Any) -> int:
            if ".manifest.json.tmp-" not in path.name:
                return real_write(path, text, *args, **kw)
            real_write(path, text[:10], *args, **kw)
            raise OSError(errno.ENOSPC, "No space left on device", str(path))

        self.useFixture(fixtures.MonkeyPatch("pathlib.Path.write_text", half_then_full))
        (self.out).mkdir()
        (self.out / "ext.raw").write_text("old image")
        b = self.build(config(formats=("one",), checksum=True))
        err = self.assertRaises(OutputError, self.place_outputs, b, [FakeFormat()])
        self.assertEqual(f"cannot write {self.out}/ext.manifest.json: No space left on device",
                         err.message)
        self.assertEqual(["ext.raw"], listing(self.out), "a temporary or a part was left")
        self.assertEqual("old image", (self.out / "ext.raw").read_text())
        self.assertIsNone(b.result.manifest)

    def test_a_packer_that_fails_is_an_output_error_quoting_its_cause(self) -> None:
        class Full(FakeFormat):
            def write_image(self, tree: Path, dest: Path, *, epoch: int,
                            compression: str | None) -> None:
                dest.write_text("part")
                raise runner.CommandFailed(["mksquashfs"], 1, [
                    "Write failed because No space left on device", "FATAL ERROR: ..."])

        b = self.build(config(formats=("one",)))
        err = self.assertRaises(OutputError, self.place_outputs, b, [Full()])
        self.assertEqual(24, err.exit_code)
        self.assertEqual(f"packing {self.out}/ext.raw (one) failed: mksquashfs failed with exit "
                         "status 1: Write failed because No space left on device", err.message)
        self.assertEqual([], listing(self.out))


class TestPackImages(PlaceTestCase):

    def test_metadata_compression_and_epoch(self) -> None:
        out = place.output_directory(self.out)
        first, second = FakeFormat(), DirFormat()
        images = place.pack_images(config(compression="one=slow", epoch=42), [first, second],
                                   tree=self.tree, name="ext", out=out, timings=Timings())
        self.assertEqual([(self.tree, first.calls[0][1], 42, "slow")], first.calls)
        self.assertEqual(42, second.calls[0][2])
        self.assertIsNone(second.calls[0][3])
        one, two = images
        self.assertEqual({"format": "one", "file": "ext.raw", "path": self.out / "ext.raw",
                          "compression": "slow", "tools": {"mkone": "1.0"},
                          "sha256": hashlib.sha256(b"image:one").hexdigest(), "size": 9}, one)
        self.assertNotIn("sha256", two)
        self.assertNotIn("checksum_file", one, "no checksum file unless asked")
        self.assertEqual(["ext", "ext.raw"], sorted(final.name for _, final in out.pending))
        self.assertEqual([], [n for n in listing(self.out) if not n.startswith(".")],
                         "nothing is at a final name before commit")
        out.discard()
        self.assertEqual([], listing(self.out))

    def test_default_compression_when_none_given(self) -> None:
        class Defaulted(FakeFormat):
            default_compression: ClassVar[str | None] = "quick"

        drv = Defaulted()
        place.pack_images(config(), [drv], tree=self.tree, name="ext",
                          out=place.output_directory(self.out), timings=Timings())
        self.assertEqual("quick", drv.calls[0][3])


class TestOutputs(PlaceTestCase):

    def test_reserve_gives_a_hidden_name_beside_the_final_one(self) -> None:
        out = place.output_directory(self.out)
        tmp, final = out.reserve("ext.raw")
        self.assertEqual(self.out / "ext.raw", final)
        self.assertEqual(self.out, tmp.parent)
        self.assertTrue(tmp.name.startswith(".ext.raw.tmp-"))
        self.assertFalse(os.path.lexists(tmp), "reserve creates nothing")
        self.assertEqual([(tmp, final)], out.pending)

    def test_text_commit_and_replacement(self) -> None:
        out = place.output_directory(self.out)
        (self.out / "ext.manifest.json").write_text("old")
        final = out.text("ext.manifest.json", "new\n")
        self.assertEqual("old", final.read_text())
        out.commit()
        self.assertEqual("new\n", final.read_text())
        self.assertEqual(0o644, (final.stat().st_mode & 0o7777))
        self.assertEqual(["ext.manifest.json"], listing(self.out))
        self.assertEqual([], out.pending)
        out.discard()  # after a commit there is nothing left to discard
        self.assertEqual(["ext.manifest.json"], listing(self.out))

    def test_discard_removes_files_and_directories(self) -> None:
        out = place.output_directory(self.out)
        out.text("a.txt", "a")
        tmp, _ = out.reserve("tree")
        (tmp / "usr").mkdir(parents=True)
        out.reserve("never-written")
        out.discard()
        self.assertEqual([], listing(self.out))
        self.assertEqual([], out.pending)

    def test_stage_artifacts_copies_sorted_and_commits_with_the_rest(self) -> None:
        for name in ("b.log", "a.sbom"):
            (self.artifacts / name).write_text(name)
        out = place.output_directory(self.out)
        placed = place.stage_artifacts(self.artifacts, out)
        self.assertEqual([self.out / "a.sbom", self.out / "b.log"], placed)
        self.assertEqual(2, len(temps(self.out)))
        self.assertEqual(["a.sbom", "b.log"], listing(self.artifacts), "copied, not moved")
        out.commit()
        self.assertEqual(["a.sbom", "b.log"], listing(self.out))
        self.assertEqual("b.log", (self.out / "b.log").read_text())

    def test_output_directory_is_created_with_parents(self) -> None:
        out = place.output_directory(self.dir / "a/b/c")
        self.assertTrue((self.dir / "a/b/c").is_dir())
        self.assertEqual(self.dir / "a/b/c", out.directory)

    def test_output_directory_that_cannot_be_created_is_an_output_error(self) -> None:
        (self.dir / "file").write_text("x")
        err = self.assertRaises(OutputError, place.output_directory, self.dir / "file/out")
        self.assertIn(f"cannot create output directory {self.dir / 'file/out'}", err.message)
        self.assertEqual(24, err.exit_code)


class TestCompressionFor(testtools.TestCase):

    def test_forms(self) -> None:
        self.assertIsNone(place.compression_for(config(), "squashfs"))
        self.assertEqual("xz", place.compression_for(config(compression="xz"), "erofs"))
        per = config(compression="squashfs=xz, erofs = lz4hc:9")
        self.assertEqual("xz", place.compression_for(per, "squashfs"))
        self.assertEqual("lz4hc:9", place.compression_for(per, "erofs"))
        self.assertIsNone(place.compression_for(per, "directory"))
        self.assertIsNone(place.compression_for(config(compression="squashfs="), "squashfs"))


class TestLoadFormats(testtools.TestCase):

    def use(self, drivers: dict[str, type[FakeFormat]]) -> None:
        self.useFixture(fixtures.MonkeyPatch("sysext_builder.formats.get",
                                             lambda name: drivers[name]()))

    def test_loads_in_order(self) -> None:
        self.use({"one": FakeFormat, "two": DirFormat})
        drivers = place.load_formats(config(formats=("two", "one")))
        self.assertEqual(["two", "one"], [d.name for d in drivers])

    def test_two_formats_writing_the_same_name_clash(self) -> None:
        self.use({"one": FakeFormat, "three": ClashFormat})
        err = self.assertRaises(UsageError, place.load_formats,
                                config(formats=("one", "three")))
        self.assertEqual("formats one and three would both write NAME.raw", err.message)
        self.assertIn("separate runs", err.hint or "")

    def test_missing_tool_and_bad_compression_fail_before_any_work(self) -> None:
        self.use({"one": FakeFormat, "four": NeedsToolFormat})
        err = self.assertRaises(ToolMissingError, place.load_formats,
                                config(formats=("one", "four")))
        self.assertIn("no-such-mkfs-tool-xyz", err.message)
        bad = self.assertRaises(OutputError, place.load_formats,
                                config(formats=("one",), compression="one=gzip"))
        self.assertIn("does not know compression 'gzip'", bad.message)
