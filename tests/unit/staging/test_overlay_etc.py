"""etc/ of the upper layer under --base: what the build added is kept for lowering,
changes and deletions of base entries are not, accounts and host state never are."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import fixtures
import testtools

from sysext_builder.errors import TreeRuleError
from sysext_builder.staging.overlay import Overlay, extract, plan_etc
from sysext_builder.sysext.tree import lower_etc_var
from tests.base import require


def files_under(top: Path) -> list[str]:
    return sorted(str(p.relative_to(top)) for p in top.rglob("*")
                  if not p.is_dir() or p.is_symlink())


class EtcTestCase(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        top = Path(self.useFixture(fixtures.TempDir()).path)
        self.lower = top / "lower"
        self.lower.mkdir()
        (top / "work").mkdir()
        self.overlay = Overlay.under(self.lower, top / "work")
        self.dest = top / "ext"
        self.dest.mkdir()
        self.logger = self.useFixture(fixtures.FakeLogger(level=20))
        self.base("etc/os-release", "ID=x\n")
        self.base("etc/passwd", "root:x:0:0::/root:/bin/sh\n")
        self.base("etc/ssl/openssl.cnf", "base config\n")
        self.base("usr/bin/sh", "shell")

    def base(self, rel: str, text: str | None = None, link: str | None = None,
             mode: int | None = None) -> Path:
        return self._make(self.lower / rel, text, link, mode)

    def upper(self, rel: str, text: str | None = None, link: str | None = None,
              mode: int | None = None) -> Path:
        return self._make(self.overlay.upper / rel, text, link, mode)

    @staticmethod
    def _make(path: Path, text: str | None, link: str | None, mode: int | None) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        if link is not None:
            os.symlink(link, path)
            return path
        if text is not None:
            path.write_text(text)
        else:
            path.mkdir()
        path.chmod(mode if mode is not None else (0o644 if text is not None else 0o755))
        return path

    def carried(self) -> list[str]:
        """The files and symlinks extract moved to the extension's etc/."""
        return [f for f in files_under(self.dest) if f.startswith("etc/")]

    def whiteout(self, rel: str) -> None:
        require("root", os.geteuid() == 0, "an overlay whiteout (0:0 char device) needs root")
        (self.overlay.upper / rel).parent.mkdir(parents=True, exist_ok=True)
        os.mknod(self.overlay.upper / rel, stat.S_IFCHR, os.makedev(0, 0))

    def make_opaque(self, path: Path) -> None:
        try:
            os.setxattr(path, "trusted.overlay.opaque", b"y", follow_symlinks=False)
        except PermissionError:
            self.skipTest("setting trusted.overlay.opaque needs CAP_SYS_ADMIN")
        except OSError as exc:
            if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
                self.skipTest(f"the temporary filesystem has no trusted.* xattrs: {exc}")
            raise


class TestAddedEtc(EtcTestCase):

    def test_entries_the_build_added_are_kept_and_lowered(self) -> None:
        self.upper("etc/ssl/openssl.cnf", "base config\n")  # identical copy-up: dropped
        self.upper("etc/waagent.conf", "agent\n")
        self.upper("etc/ssl/certs/ca-certificates.crt", "certs\n")
        self.upper("etc/alternatives/editor", link="/usr/bin/nano")
        self.upper("etc/ssl/private", mode=0o700)
        counts = extract(self.overlay, self.dest)
        self.assertEqual(["etc/alternatives/editor", "etc/ssl/certs/ca-certificates.crt",
                          "etc/waagent.conf"], self.carried())
        self.assertEqual(0o700, stat.S_IMODE((self.dest / "etc/ssl/private").stat().st_mode))
        self.assertEqual({"kept": 3, "identical": 1, "dropped": 0}, counts)
        self.assertFalse((self.dest / "etc/ssl/openssl.cnf").exists())
        lowered = {ln.source: ln.detail for ln in lower_etc_var(self.dest, strict=False,
                                                                name="ext")}
        self.assertEqual("C /etc/waagent.conf - - - - /usr/share/factory/etc/waagent.conf",
                         lowered["etc/waagent.conf"])
        self.assertEqual("L /etc/alternatives/editor - - - - /usr/bin/nano",
                         lowered["etc/alternatives/editor"])
        self.assertEqual("d /etc/ssl/private 0700 - - -", lowered["etc/ssl/private"])
        self.assertNotIn("etc/ssl", lowered, "a base directory gets no line of its own")
        self.assertEqual("agent\n",
                         (self.dest / "usr/share/factory/etc/waagent.conf").read_text())

    def test_base_directory_above_an_added_file_keeps_the_base_mode(self) -> None:
        self.base("etc/secret.d", mode=0o750)
        self.upper("etc/secret.d", mode=0o750)
        self.upper("etc/secret.d/new.conf", "n\n")
        extract(self.overlay, self.dest)
        self.assertEqual(0o750, stat.S_IMODE((self.dest / "etc/secret.d").stat().st_mode))
        self.assertEqual("n\n", (self.dest / "etc/secret.d/new.conf").read_text())

    def test_mode_change_of_a_base_directory_is_not_carried(self) -> None:
        self.base("etc/secret.d", mode=0o750)
        self.upper("etc/secret.d", mode=0o700)
        self.upper("etc/secret.d/new.conf", "n\n")
        extract(self.overlay, self.dest)
        self.assertEqual(0o750, stat.S_IMODE((self.dest / "etc/secret.d").stat().st_mode))
        self.assertIn("not carried (the target keeps its own): etc/secret.d/ (mode)",
                      self.logger.output)

    def test_symlink_to_a_directory_is_moved_as_a_symlink(self) -> None:
        self.upper("etc/ssl/certs", link="/usr/share/ca-certificates")
        extract(self.overlay, self.dest)
        self.assertEqual("/usr/share/ca-certificates",
                         os.readlink(self.dest / "etc/ssl/certs"))

    def test_nothing_added_makes_no_etc(self) -> None:
        self.upper("etc/os-release", "ID=x\n")
        self.upper("usr/bin/hello", "h")
        extract(self.overlay, self.dest)
        self.assertEqual(["usr"], os.listdir(self.dest))

    def test_var_stays_dropped(self) -> None:
        self.upper("var/lib/waagent", mode=0o700)
        self.upper("var/lib/dpkg/status", "db")
        counts = extract(self.overlay, self.dest)
        self.assertFalse((self.dest / "var").exists())
        self.assertEqual(1, counts["dropped"])
        self.assertIn("outside /usr, /opt and /etc): var", self.logger.output)


class TestNotCarried(EtcTestCase):

    def test_modified_base_file_is_skipped_with_one_warning(self) -> None:
        self.upper("etc/ssl/openssl.cnf", "changed config\n")
        self.upper("etc/os-release", "ID=y\n")
        self.upper("etc/new.conf", "n\n")
        extract(self.overlay, self.dest)
        self.assertEqual(["etc/new.conf"],
                         self.carried())
        warnings = [ln for ln in self.logger.output.splitlines() if "not carried" in ln]
        self.assertEqual(["etc/: changes to files the base has are not carried (the target "
                          "keeps its own): etc/os-release, etc/ssl/openssl.cnf"], warnings)

    def test_modified_base_file_is_an_error_with_strict(self) -> None:
        self.upper("etc/ssl/openssl.cnf", "changed config\n")
        self.upper("etc/new.conf", "n\n")
        self.upper("usr/bin/hello", "h")
        err = self.assertRaises(TreeRuleError, extract, self.overlay, self.dest, strict=True)
        self.assertEqual("--strict: changes to /etc files the base has cannot be carried: "
                         "etc/ssl/openssl.cnf", err.message)
        self.assertEqual(21, err.exit_code)
        self.assertIn("without --strict", err.hint or "")
        self.assertEqual([], os.listdir(self.dest), "nothing is moved on error")

    def test_base_entry_replaced_by_another_type_is_a_change(self) -> None:
        self.base("etc/motd", link="/run/motd")
        self.upper("etc/motd", "static motd\n")
        self.base("etc/hosts", "127.0.0.1 localhost\n")
        self.upper("etc/hosts", mode=0o755)
        self.upper("etc/hosts/inside", "x")
        plan = plan_etc(str(self.overlay.upper), str(self.lower))
        self.assertEqual(["etc/hosts/", "etc/motd"], plan.modified)
        self.assertEqual([], plan.added)

    def test_account_files_and_host_state_are_never_lowered(self) -> None:
        self.upper("etc/passwd", "root:x:0:0::/root:/bin/sh\nsvc:x:999:999::/:/bin/false\n")
        self.upper("etc/group", "svc:x:999:\n")  # the base has none: still not lowered
        for name in ("shadow", "gshadow", "passwd-", ".pwd.lock", "machine-id",
                     "ld.so.cache", "resolv.conf", "subuid"):
            self.upper(f"etc/{name}", "state\n")
        self.upper("etc/ssh/ssh_host_ed25519_key", "secret\n", mode=0o600)
        self.upper("etc/ssh/sshd_config", "Port 22\n")
        extract(self.overlay, self.dest)
        self.assertEqual(["etc/ssh/sshd_config"],
                         self.carried())
        self.assertNotIn("not carried", self.logger.output, "accounts are no warning")
        self.assertIn("never lowered (accounts go to sysusers.d; host state): etc/.pwd.lock, "
                      "etc/group, etc/gshadow, etc/ld.so.cache, etc/machine-id, etc/passwd, "
                      "etc/passwd-, etc/resolv.conf, etc/shadow, etc/ssh/ssh_host_ed25519_key "
                      "and 1 more", self.logger.output)

    def test_whiteouts_are_ignored_with_a_warning(self) -> None:
        self.whiteout("etc/ssl/openssl.cnf")
        self.upper("etc/new.conf", "n\n")
        extract(self.overlay, self.dest)
        self.assertEqual(["etc/new.conf"],
                         self.carried())
        self.assertIn("etc/: deletions cannot be carried, ignored: /etc/ssl/openssl.cnf "
                      "(deleted)", self.logger.output)

    def test_whiteouts_are_no_error_with_strict(self) -> None:
        self.whiteout("etc/os-release")
        extract(self.overlay, self.dest, strict=True)
        self.assertIn("/etc/os-release (deleted)", self.logger.output)

    def test_opaque_directory_is_ignored_and_its_added_entries_kept(self) -> None:
        self.base("etc/ssl/old.pem", "old")
        ssl = self.upper("etc/ssl")
        self.upper("etc/ssl/openssl.cnf", "base config\n")
        self.upper("etc/ssl/added.pem", "new")
        self.make_opaque(ssl)
        extract(self.overlay, self.dest)
        self.assertEqual(["etc/ssl/added.pem"],
                         self.carried())
        self.assertIn("deletions cannot be carried, ignored: /etc/ssl/ (replaced)",
                      self.logger.output)
        self.assertNotIn("trusted.overlay.opaque", os.listxattr(self.dest / "etc/ssl"))
