"""sysext-create --config: several images, one failing, built in parallel."""

from __future__ import annotations

import hashlib
from pathlib import Path

import fixtures
import testtools

from tests.functional import base


class TestConfigRun(testtools.TestCase):

    def test_three_images_one_failing_jobs_two(self) -> None:
        base.require_tool("mksquashfs", "squashfs-tools")
        top = Path(self.useFixture(fixtures.TempDir()).path)
        (top / "images.yaml").write_text(
            "- name: first\n  elements: [hello]\n  output: out\n"
            "- name: broken\n  elements: [failing]\n  output: out\n"
            "- name: third\n  elements: [hello]\n  output: out\n  formats: [squashfs]\n"
            "  options: {os-version-id: '9'}\n  environment: {DIB_SOMETHING: x}\n")
        proc = base.run("sysext-create", "--config", str(top / "images.yaml"), "--jobs", "2",
                        "--element-path", str(base.BUILD_ELEMENTS),
                        "--sysupdate", "https://example.com/sx", "--image-version", "1.0")
        self.assertEqual(1, proc.returncode, proc.stderr[-2000:])
        out = top / "out"
        lines = proc.stdout.splitlines()
        self.assertEqual("2 built, 1 failed", [ln for ln in lines if "built," in ln][0])
        broken = [ln for ln in lines if ln.startswith("broken")][0]
        self.assertIn("FAILED(20)", broken)
        self.assertIn("hook 50-fail of element failing", broken)
        for name in ("first", "third"):
            self.assertTrue((out / f"{name}.raw").is_file())
            self.assertTrue((out / f"{name}_1.0.raw").is_file())
            self.assertTrue((out / f"{name}.transfer").is_file())
        self.assertFalse((out / "broken.raw").exists())
        sums = (out / "SHA256SUMS").read_text().splitlines()
        names = sorted(line.split("  ")[1] for line in sums)
        self.assertEqual(["first.raw", "first_1.0.raw", "third.raw", "third_1.0.raw"], names)
        for line in sums:
            digest, name = line.split("  ")
            self.assertEqual(hashlib.sha256((out / name).read_bytes()).hexdigest(), digest)
        self.assertIn(f"{out}/hello-release was written by first and third", proc.stderr)
        self.assertIn("[first]", proc.stderr)
        self.assertIn("[broken]", proc.stderr)

    def test_unknown_key_exit_code(self) -> None:
        top = Path(self.useFixture(fixtures.TempDir()).path)
        (top / "images.yaml").write_text("- name: a\n  elemnts: [hello]\n")
        proc = base.run("sysext-create", "--config", str(top / "images.yaml"))
        self.assertEqual(16, proc.returncode)
        self.assertIn("unknown key 'elemnts'", proc.stderr)
        self.assertIn("did you mean 'elements'?", proc.stderr)
        self.assertNotIn("Traceback", proc.stderr)
