"""The builder's own writes stay inside the tree (issue 12, "What did not" 1).

One test per class of attack: a symlink planted in the staging tree (by an
element's ``static/``, an ``extra-data.d`` hook or a hook using the shell
library) must not send a write of the builder, or of its shell helpers, to
the host.  Each test has a canary directory outside every tree that must stay
untouched, and the build must fail with one ``error:`` line (and at most a
hint), no traceback.  The canaries live under ``/opt`` where an absolute link
into them passes the sysext link rule, so only containment stops the write.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import fixtures
import testtools

from tests.functional import base


class HostileBuild(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.top = Path(self.useFixture(fixtures.TempDir()).path)
        self.elements = self.top / "elements"
        self.out = self.top / "out"
        self.out.mkdir()
        self.canary = self.make_canary()

    def make_canary(self) -> Path:
        parent = Path("/opt") if os.access("/opt", os.W_OK) else Path(tempfile.gettempdir())
        canary = Path(tempfile.mkdtemp(prefix="canary-", dir=parent))
        self.addCleanup(shutil.rmtree, canary, True)
        (canary / "keep").write_text("canary\n")
        self.addCleanup(self.assert_untouched, canary)
        return canary

    def assert_untouched(self, canary: Path) -> None:
        self.assertEqual(["keep"], sorted(os.listdir(canary)), "the canary was written to")
        self.assertEqual("canary\n", (canary / "keep").read_text())

    def element(self, name: str, deps: tuple[str, ...] = (),
                files: dict[str, str] | None = None) -> Path:
        path = self.elements / name
        path.mkdir(parents=True)
        (path / "README.rst").write_text(f"{name}\n")
        if deps:
            (path / "element-deps").write_text("".join(f"{d}\n" for d in sorted(deps)))
        for rel, text in (files or {}).items():
            target = path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            if "/" in rel and rel.split("/")[0].endswith(".d"):
                target.chmod(0o755)
        return path

    def hook(self, body: str) -> str:
        return f'#!/bin/bash\nset -eu -o pipefail\nsource "$SYSEXT_FUNCTIONS"\n{body}\n'

    def build(self, *names: str) -> subprocess.CompletedProcess[str]:
        return base.run("sysext-create", "--element-path", str(self.elements), *names,
                        "-t", "directory", "-o", f"{self.out}/img",
                        "--os-id", "sbtest", "--os-version-id", "1", timeout=120)

    def assert_one_line_failure(self, proc: subprocess.CompletedProcess[str], code: int,
                                *words: str) -> str:
        self.assertEqual(code, proc.returncode, proc.stderr)
        self.assertNotIn("Traceback", proc.stderr)
        errors = [ln for ln in proc.stderr.splitlines() if " error: " in ln or
                  ln.startswith("error:")]
        self.assertEqual(1, len(errors), proc.stderr)
        after = proc.stderr.split(errors[0], 1)[1].splitlines()[1:]
        unindented = [ln for ln in after if not ln.startswith("  ")]
        self.assertLessEqual(len(unindented), 1, f"more than a hint after the error: {after}")
        for word in words:
            self.assertIn(word, errors[0])
        self.assertFalse((self.out / "img").exists(), "an image was written")
        return errors[0]


class TestHostileWrites(HostileBuild):

    def test_static_through_a_symlink_planted_by_another_static(self) -> None:
        # (a) element a's static/ plants usr/lib/foo -> CANARY; b's static/ has usr/lib/foo/x
        self.element("a")
        (self.elements / "a/static/usr/lib").mkdir(parents=True)
        (self.elements / "a/static/usr/lib/foo").symlink_to(self.canary)
        self.element("b", deps=("a",), files={"static/usr/lib/foo/x": "pwned\n"})
        line = self.assert_one_line_failure(self.build("b"), 21, "element b",
                                            "static/usr/lib/foo", "usr/lib/foo is a symlink")
        self.assertIn(str(self.canary), line)

    def test_static_through_a_symlink_planted_by_an_extra_data_hook(self) -> None:
        self.element("a", files={"extra-data.d/10-plant": self.hook(
            f'mkdir -p "$TARGET_ROOT/usr/share"\n'
            f'ln -s {self.canary} "$TARGET_ROOT/usr/share/doc"'),
            "static/usr/share/doc/x/readme": "pwned\n"})
        self.assert_one_line_failure(self.build("a"), 21, "element a",
                                     "usr/share/doc is a symlink")

    def test_release_file_through_a_symlinked_extension_release_d(self) -> None:
        # (b) an extra-data.d hook plants usr/lib/extension-release.d -> CANARY (under /opt,
        # so the sysext link rule accepts it); the release file used to go there, exit 0
        self.element("a", files={"extra-data.d/10-plant": self.hook(
            f'mkdir -p "$TARGET_ROOT/usr/lib" "$TARGET_ROOT/usr/bin"\n'
            f'echo hi > "$TARGET_ROOT/usr/bin/hi"\n'
            f'ln -s {self.canary} "$TARGET_ROOT/usr/lib/extension-release.d"')})
        proc = self.build("a")
        if not str(self.canary).startswith("/opt/"):
            # outside /usr and /opt the link rule refuses the link before the write
            self.assert_one_line_failure(proc, 21, "usr/lib/extension-release.d")
            return
        self.assert_one_line_failure(proc, 21, "extension-release",
                                     "usr/lib/extension-release.d is a symlink")

    def test_install_file_through_a_planted_symlink(self) -> None:
        # (c) the shell library's install helpers refuse a symlinked component
        self.element("a", files={"install.d/10-plant": self.hook(
            f'mkdir -p "$TARGET_ROOT/usr/lib"\n'
            f'ln -s {self.canary} "$TARGET_ROOT/usr/lib/foo"\n'
            f'echo pwned > "$TMP_BUILD_DIR/x"\n'
            f'sysext_install_file "$TMP_BUILD_DIR/x" /usr/lib/foo/x')})
        proc = self.build("a")
        self.assert_one_line_failure(proc, 20, "10-plant", "install.d")
        self.assertIn("sysext_install_file: /usr/lib/foo is a symlink", proc.stderr)

    def test_install_file_onto_a_symlinked_directory_name(self) -> None:
        # install SRC DEST with DEST a link to a directory used to copy into that directory
        self.element("a", files={"install.d/10-plant": self.hook(
            f'mkdir -p "$TARGET_ROOT/usr/lib"\n'
            f'ln -s {self.canary} "$TARGET_ROOT/usr/lib/foo"\n'
            f'echo pwned > "$TMP_BUILD_DIR/x"\n'
            f'sysext_install_file "$TMP_BUILD_DIR/x" /usr/lib/foo')})
        self.assert_one_line_failure(self.build("a"), 20, "10-plant")

    def test_tmpfiles_through_a_planted_symlink(self) -> None:
        self.element("a", files={"install.d/10-plant": self.hook(
            f'mkdir -p "$TARGET_ROOT/usr/lib"\n'
            f'ln -s {self.canary} "$TARGET_ROOT/usr/lib/tmpfiles.d"\n'
            f'sysext_tmpfiles a "d /var/lib/a 0755 - - -"')})
        proc = self.build("a")
        self.assert_one_line_failure(proc, 20, "10-plant")
        self.assertIn("sysext_tmpfiles: /usr/lib/tmpfiles.d is a symlink", proc.stderr)

    def test_a_clean_build_still_writes_everything_inside(self) -> None:
        self.element("a", files={"static/usr/share/a/x": "x\n",
                                 "install.d/10-ok": self.hook(
                                     'echo y > "$TMP_BUILD_DIR/y"\n'
                                     'sysext_install_file "$TMP_BUILD_DIR/y" /usr/share/a/y 0755\n'
                                     'sysext_tmpfiles a "d /var/lib/a 0755 - - -"')})
        proc = self.build("a")
        self.assertEqual(0, proc.returncode, proc.stderr)
        tree = self.out / "img"
        self.assertEqual("x\n", (tree / "usr/share/a/x").read_text())
        self.assertEqual(0o755, stat.S_IMODE((tree / "usr/share/a/y").stat().st_mode))
        self.assertTrue((tree / "usr/lib/extension-release.d/extension-release.img").is_file())
        self.assertIn("/var/lib/a", (tree / "usr/lib/tmpfiles.d/a.conf").read_text())


class TestHostileWritesOnABase(HostileBuild):
    """With ``--base`` the static/ copy goes into the overlay's upper layer, where a
    *chrooted* hook may have planted a link that is harmless in the chroot but, read
    on the host, leads out."""

    def setUp(self) -> None:
        super().setUp()
        base.require_root("building against --base")
        from tests.functional.debian_base import base_tarball
        self.tarball = base_tarball()

    def test_static_through_a_symlink_planted_by_a_chrooted_hook(self) -> None:
        self.element("a", files={"pre-install.d/10-plant": self.hook(
            f'mkdir -p /usr/lib\nln -s {self.canary} /usr/lib/foo')})
        self.element("b", deps=("a",), files={"static/usr/lib/foo/x": "pwned\n"})
        proc = base.run("sysext-create", "--element-path", str(self.elements), "b",
                        "--base", str(self.tarball), "-t", "directory",
                        "-o", f"{self.out}/img", timeout=600)
        self.assert_one_line_failure(proc, 21, "element b", "usr/lib/foo is a symlink")
