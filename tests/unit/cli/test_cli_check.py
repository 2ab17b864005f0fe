"""sysext-check on directory images: verdicts, messages and exit codes (no root)."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import fixtures
import testtools

from sysext_builder.cli import check
from sysext_builder.sysext import osrelease
from tests.base import CLIResult, RootLoggerRestored, run_module

DEBIAN_12 = {"ID": "debian", "VERSION_ID": "12"}


class TestCheck(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.dir = Path(self.useFixture(fixtures.TempDir()).path)
        self.host = self.write_os_release(self.dir / "host-os-release", DEBIAN_12)
        self.useFixture(RootLoggerRestored())

    @staticmethod
    def write_os_release(path: Path, fields: Mapping[str, str]) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(osrelease.render(fields))
        return path

    def image(self, dirname: str, release_name: str | None = None,
              fields: Mapping[str, str] = DEBIAN_12) -> Path:
        img = self.dir / dirname
        (img / "usr/bin").mkdir(parents=True)
        (img / "usr/bin/hello").write_text("#!/bin/sh\n")
        name = release_name if release_name is not None else dirname
        self.write_os_release(
            img / f"usr/lib/extension-release.d/extension-release.{name}", fields)
        return img

    def run_check(self, *argv: str, target: Sequence[str] | None = None) -> CLIResult:
        if target is None:
            target = ["--os-release", str(self.host)]
        args = [*target, "--systemd-version", "252", "--arch", "x86-64", *argv]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = check.main(args)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
        return CLIResult(code, out.getvalue(), err.getvalue())

    def assertIncompatible(self, reason: str, result: CLIResult) -> None:
        self.assertEqual(30, result.code, result.stderr)
        self.assertEqual(f"incompatible: {reason}\n", result.stdout)

    # verdicts

    def test_compatible(self) -> None:
        result = self.run_check(str(self.image("hello")))
        self.assertEqual(0, result.code, result.stderr)
        self.assertEqual("compatible\n", result.stdout)
        self.assertIn("hello: directory image, extension-release.hello: ID=debian", result.stderr)

    def test_version_mismatch(self) -> None:
        img = self.image("hello", fields={"ID": "debian", "VERSION_ID": "11"})
        self.assertIncompatible("extension VERSION_ID '11' does not match host VERSION_ID '12'",
                                self.run_check(str(img)))

    def test_id_mismatch(self) -> None:
        img = self.image("hello", fields={"ID": "fedora", "VERSION_ID": "12"})
        self.assertIncompatible("extension ID 'fedora' does not match host ID 'debian'",
                                self.run_check(str(img)))

    def test_any_id(self) -> None:
        img = self.image("hello", fields={"ID": "_any"})
        self.assertEqual(0, self.run_check(str(img)).code)

    def test_architecture(self) -> None:
        img = self.image("hello", fields={**DEBIAN_12, "ARCHITECTURE": "x86-64"})
        self.assertEqual(0, self.run_check(str(img)).code)
        self.assertIncompatible(
            "extension architecture 'x86-64' does not match host 'arm64'",
            self.run_check("--arch", "arm64", str(img)))

    def test_scope(self) -> None:
        img = self.image("hello", fields={**DEBIAN_12, "SYSEXT_SCOPE": "initrd"})
        self.assertIncompatible("extension scope 'initrd' does not include 'system'",
                                self.run_check(str(img)))
        self.assertEqual(0, self.run_check("--scope", "initrd", str(img)).code)

    def test_sysext_level(self) -> None:
        host = self.write_os_release(self.dir / "flatcar", {
            "ID": "flatcar", "VERSION_ID": "3815.2.0", "SYSEXT_LEVEL": "1.0"})
        img = self.image("hello", fields={"ID": "flatcar", "SYSEXT_LEVEL": "1.0"})
        self.assertEqual(0, self.run_check(str(img), target=["--os-release", str(host)]).code)

    # targets

    def test_root_with_usr_lib_os_release(self) -> None:
        root = self.dir / "root"
        self.write_os_release(root / "usr/lib/os-release", {"ID": "debian", "VERSION_ID": "13"})
        result = self.run_check(str(self.image("hello")), target=["--root", str(root)])
        self.assertIncompatible("extension VERSION_ID '12' does not match host VERSION_ID '13'",
                                result)

    def test_root_etc_wins(self) -> None:
        root = self.dir / "root"
        self.write_os_release(root / "usr/lib/os-release", {"ID": "debian", "VERSION_ID": "13"})
        self.write_os_release(root / "etc/os-release", DEBIAN_12)
        result = self.run_check(str(self.image("hello")), target=["--root", str(root)])
        self.assertEqual(0, result.code, result.stderr)

    def test_root_without_os_release(self) -> None:
        root = self.dir / "empty"
        root.mkdir()
        result = self.run_check(str(self.image("hello")), target=["--root", str(root)])
        self.assertEqual(23, result.code)
        self.assertIn("neither etc/os-release nor usr/lib/os-release", result.stderr)

    def test_os_release_and_root_exclude_each_other(self) -> None:
        result = self.run_check(str(self.image("hello")),
                                target=["--os-release", str(self.host), "--root", "/"])
        self.assertEqual(2, result.code)

    def test_default_target_is_this_host(self) -> None:
        host = osrelease.read_root(Path("/"))
        if host is None or "ID" not in host:
            self.skipTest("this machine has no usable os-release")
        fields = {k: host[k] for k in ("ID", "VERSION_ID") if k in host}
        result = self.run_check(str(self.image("hello", fields=fields)), target=[])
        self.assertEqual(0, result.code, result.stderr)

    # names and unreadable images

    def test_name_mismatch_lists_files_present(self) -> None:
        img = self.image("hello", release_name="other")
        result = self.run_check(str(img))
        self.assertEqual(31, result.code)
        self.assertEqual("", result.stdout)
        self.assertIn("sysext-check: error: hello: no extension-release for image name "
                      "'hello'; the image has: extension-release.other", result.stderr)
        self.assertIn("rename the image to other", result.stderr)

    def test_name_rule_depends_on_systemd_version(self) -> None:
        img = self.image("hello_1.2", release_name="hello")
        self.assertEqual(31, self.run_check(str(img)).code)
        result = self.run_check("--systemd-version", "256", str(img))
        self.assertEqual(0, result.code, result.stderr)

    def test_raw_suffix_of_a_directory_is_cut_from_256(self) -> None:
        # measured (test_check_matrix): 252 keeps ".raw" in a directory's name
        img = self.image("hello.raw", release_name="hello")
        self.assertEqual(31, self.run_check(str(img)).code)
        self.assertEqual(0, self.run_check("--systemd-version", "257", str(img)).code)

    def test_strict_false_xattr_relaxes_the_name(self) -> None:
        img = self.image("hello", release_name="other")
        release = img / "usr/lib/extension-release.d/extension-release.other"
        try:
            os.setxattr(release, "user.extension-release.strict", b"false")
        except OSError as exc:
            self.skipTest(f"no user xattrs on this filesystem: {exc}")
        result = self.run_check(str(img))
        self.assertEqual(0, result.code, result.stderr)
        self.assertIn("user.extension-release.strict=false", result.stderr)

    def test_no_extension_release(self) -> None:
        img = self.dir / "hello"
        (img / "usr/bin").mkdir(parents=True)
        result = self.run_check(str(img))
        self.assertEqual(31, result.code)
        self.assertIn("no usr/lib/extension-release.d/extension-release.* in the image",
                      result.stderr)

    def test_line_without_equals_is_ignored_as_systemd_does(self) -> None:
        img = self.image("hello")
        (img / "usr/lib/extension-release.d/extension-release.hello").write_text("ID debian\n")
        self.assertIncompatible("extension carries no release data", self.run_check(str(img)))

    def test_systemd_syntax_in_the_host_os_release(self) -> None:
        # unquoted spaces, ';' comments, a lower-case key, a continuation: systemd reads them
        self.host.write_text("; comment\nid=other\nID=deb\\\nian\nNAME=Debian GNU/Linux\n"
                             "VERSION_ID = 12  \n")
        result = self.run_check(str(self.image("hello")))
        self.assertEqual(0, result.code, result.stderr)

    def test_id_like_follows_the_version(self) -> None:
        self.host.write_text("ID=ubuntu\nID_LIKE=debian\nVERSION_ID=12\n")
        img = str(self.image("hello"))
        self.assertIncompatible("extension ID 'debian' does not match host ID 'ubuntu'",
                                self.run_check(img))  # 252
        self.assertEqual(0, self.run_check(img, "--systemd-version", "258").code)
        self.assertEqual(0, self.run_check(img, "--systemd-version", "257", "--id-like").code)
        self.assertIncompatible(
            "extension ID 'debian' does not match host ID 'ubuntu'",
            self.run_check(img, "--systemd-version", "258", "--no-id-like"))

    def test_without_image_checks_what_the_root_has_installed(self) -> None:
        root = self.dir / "root"
        self.write_os_release(root / "etc/os-release", DEBIAN_12)
        (root / "var/lib/extensions").mkdir(parents=True)
        self.image("good").rename(root / "var/lib/extensions/good")
        result = self.run_check(target=["--root", str(root)])
        self.assertEqual((0, "var/lib/extensions/good: merged\n"
                          "merge: good (1 of 1 entries)\n"), (result.code, result.stdout),
                         result.stderr)
        self.assertEqual(2, self.run_check().code)  # no IMAGE and no --root

    def test_id_like_of_debians_257_read_off_the_root(self) -> None:
        root = self.dir / "root"
        self.write_os_release(root / "etc/os-release",
                              {"ID": "ubuntu", "ID_LIKE": "debian", "VERSION_ID": "12"})
        (root / "var/lib/dpkg").mkdir(parents=True)
        (root / "var/lib/dpkg/status").write_text(
            "Package: systemd\nStatus: install ok installed\nVersion: 257.13-1~deb13u1\n")
        img = str(self.image("hello"))
        args = ["--root", str(root), "--arch", "x86-64", img]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = check.main(args)
        self.assertEqual((0, "compatible\n"), (code, out.getvalue()), err.getvalue())
        self.assertIn("systemd 257, ID_LIKE matched", err.getvalue())

    def test_os_release_inside_the_image(self) -> None:
        img = self.image("hello")
        self.write_os_release(img / "usr/lib/os-release", DEBIAN_12)
        result = self.run_check(str(img))
        self.assertEqual(31, result.code)
        self.assertIn("ships usr/lib/os-release", result.stderr)

    def test_not_an_image(self) -> None:
        junk = self.dir / "junk.raw"
        junk.write_bytes(b"\0" * 4096)
        result = self.run_check(str(junk))
        self.assertEqual(31, result.code)
        self.assertIn("not a squashfs, erofs or directory image", result.stderr)

    def test_missing_image(self) -> None:
        result = self.run_check(str(self.dir / "nope.raw"))
        self.assertEqual(31, result.code)
        self.assertIn("no such file or directory", result.stderr)

    def test_gpt_image_is_named(self) -> None:
        disk = self.dir / "disk.raw"
        disk.write_bytes(b"\0" * 512 + b"EFI PART" + b"\0" * 4096)
        result = self.run_check(str(disk))
        self.assertEqual(31, result.code)
        self.assertIn("systemd-dissect", result.stderr)

    # options

    def test_merge_needs_root(self) -> None:
        self.useFixture(fixtures.MonkeyPatch("os.geteuid", lambda: 1000))
        result = self.run_check("--merge", str(self.image("hello")))
        self.assertEqual(25, result.code)
        self.assertEqual("", result.stdout)
        self.assertIn("--merge needs root", result.stderr)
        self.assertIn("drop --merge", result.stderr)

    def test_unknown_arch(self) -> None:
        result = self.run_check("--arch", "amd64", str(self.image("hello")))
        self.assertEqual(2, result.code)
        self.assertIn("unknown architecture 'amd64'", result.stderr)

    def test_help_mentions_exit_codes(self) -> None:
        result = self.run_check("--help")
        self.assertEqual(0, result.code)
        self.assertIn("30 incompatible", result.stdout)

    def test_module_dispatch(self) -> None:
        img = self.image("hello")
        proc = run_module(["sysext-check", "--os-release", str(self.host),
                           "--systemd-version", "252", "--arch", "x86-64", str(img)])
        self.assertEqual(0, proc.returncode, proc.stderr)
        self.assertEqual(b"compatible\n", proc.stdout)


class TestVerifyNeedsRoot(testtools.TestCase):

    def test_merge_refuses_without_root(self) -> None:
        from sysext_builder.errors import EnvironmentUnusableError
        from sysext_builder.sysext import verify

        self.useFixture(fixtures.MonkeyPatch("os.geteuid", lambda: 1000))
        tmp = Path(self.useFixture(fixtures.TempDir()).path)
        err = self.assertRaises(EnvironmentUnusableError, verify.merge, tmp, DEBIAN_12)
        self.assertIn("needs root", err.message)
        self.assertEqual(25, err.exit_code)


class TestMergeResult(testtools.TestCase):
    """How systemd-sysext's debug output becomes a refusal reason (canned logs)."""

    LOG = (
        "Opened '/tmp/r/var/lib/extensions/hello.raw' in O_RDONLY access mode",
        "Checking for /usr/lib/extension-release.d/extension-release.hello: Success",
        "Hierarchy '/tmp/r/usr' is not a mount point, skipping.",
        "Extension 'hello' is for OS '12', but deployed on top of '11'.",
        "No suitable extensions found (1 ignored due to incompatible version).",
    )

    def test_refusal_keeps_the_reasons(self) -> None:
        from sysext_builder.sysext.verify import MergeResult

        result = MergeResult(name="hello", merged=(), appeared=(), log=self.LOG)
        self.assertFalse(result.accepted)
        self.assertEqual("Extension 'hello' is for OS '12', but deployed on top of '11'. "
                         "No suitable extensions found (1 ignored due to incompatible "
                         "version).", result.refusal())

    def test_accepted_has_no_refusal(self) -> None:
        from sysext_builder.sysext.verify import MergeResult

        result = MergeResult(name="hello", merged=("hello",), appeared=("usr/bin/x",), log=())
        self.assertTrue(result.accepted)
        self.assertIsNone(result.refusal())


class TestVerifyPreconditions(testtools.TestCase):

    def test_only_raw_files_are_merged(self) -> None:
        from sysext_builder.errors import ImageError
        from sysext_builder.sysext import verify

        tmp = Path(self.useFixture(fixtures.TempDir()).path)
        (tmp / "hello.img").write_bytes(b"hsqs")
        err = self.assertRaises(ImageError, verify.merge, tmp / "hello.img", DEBIAN_12)
        self.assertIn("only picks up NAME.raw files", err.message)
