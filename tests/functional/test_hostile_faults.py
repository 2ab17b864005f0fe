"""Faults around the output directory, through the real sysext-create.

What a killed build left is removed by the next one; what the builder did not
write is never replaced.
"""

from __future__ import annotations

from pathlib import Path

import fixtures
import testtools

from tests.functional import base


class TestOutputDirectory(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.out = Path(self.useFixture(fixtures.TempDir()).path)

    def create(self, *args: str) -> tuple[int, str]:
        proc = base.run("sysext-create", "--element-path", str(base.BUILD_ELEMENTS), "hello",
                        "--os-id", "_any", "-a", "x86-64", *args)
        return proc.returncode, proc.stderr

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
