"""What cannot be an extension stops the build at the step that wrote it.

A DIB element made for a disk image (a kernel into /boot, a user's home) must
not give an image without that part and exit 0.
"""

from __future__ import annotations

from pathlib import Path

import fixtures
import testtools

from tests.functional import base

_HOOK = """#!/bin/bash
set -eu
mkdir -p "$TARGET_ROOT/usr/share/half" "$TARGET_ROOT/{dir}"
echo x > "$TARGET_ROOT/usr/share/half/file"
echo x > "$TARGET_ROOT/{dir}/{name}"
"""


class TestNotAnExtension(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.top = Path(self.useFixture(fixtures.TempDir()).path)

    def element(self, name: str, hook_dir: str, hook_name: str, body: str) -> None:
        hook = self.top / "elements" / name / hook_dir / hook_name
        hook.parent.mkdir(parents=True)
        hook.write_text(body)
        hook.chmod(0o755)

    def build(self, *elements: str) -> tuple[int, str, Path]:
        out = self.top / "out"
        proc = base.run("sysext-create", "--element-path", str(self.top / "elements"),
                        "-t", "directory", "--os-id", "_any", "-o", f"{out}/img",
                        "--cache-dir", str(self.top / "cache"), *elements)
        return proc.returncode, proc.stderr, out

    def test_a_kernel_in_boot_stops_the_build_naming_the_hook(self) -> None:
        self.element("kernel", "install.d", "50-kernel",
                     _HOOK.format(dir="boot", name="vmlinuz-6.1"))
        code, err, out = self.build("kernel")
        self.assertEqual(21, code, err)
        lines = [ln for ln in err.splitlines() if ln.startswith("sysext-create: error:")]
        self.assertEqual(["sysext-create: error: hook 50-kernel of element kernel in phase "
                          "install.d wrote /boot/vmlinuz-6.1: a kernel, initramfs or boot "
                          "loader cannot be part of a system extension: the boot loader "
                          "reads /boot before systemd-sysext merges anything"], lines)
        self.assertNotIn("Traceback", err)
        self.assertFalse((out / "img").exists())

    def test_a_home_directory_stops_the_build(self) -> None:
        self.element("devuser", "post-install.d", "60-home",
                     _HOOK.format(dir="home/dev", name=".profile"))
        code, err, out = self.build("devuser")
        self.assertEqual(21, code, err)
        self.assertIn("hook 60-home of element devuser in phase post-install.d wrote /home/dev",
                      err)
        self.assertFalse((out / "img").exists())

    def test_static_boot_files_are_named_by_step(self) -> None:
        static = self.top / "elements" / "grubcfg" / "static" / "boot" / "grub"
        static.mkdir(parents=True)
        (static / "grub.cfg").write_text("x\n")
        (self.top / "elements" / "grubcfg" / "static" / "usr").mkdir()
        code, err, _ = self.build("grubcfg")
        self.assertEqual(21, code, err)
        self.assertIn("the static step of phase install.d wrote /boot/grub", err)
