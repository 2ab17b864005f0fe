"""Tree rules: lowering etc/ and var/, validation, normalisation."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import fixtures
import testtools

from sysext_builder.errors import ConfigError, TreeRuleError
from sysext_builder.sysext.tree import (
    Lowering,
    lower_etc_var,
    normalise,
    validate,
)
from tests.base import TestCase

FACTORY = "usr/share/factory/etc"


def make(root: Path, spec: dict[str, str | None]) -> None:
    """``rel -> text`` writes a file, ``rel -> None`` a directory, ``"->target"`` a symlink."""
    for rel, content in spec.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            path.mkdir(exist_ok=True)
        elif content.startswith("->"):
            os.symlink(content[2:], path)
        else:
            path.write_text(content, encoding="utf-8")


def snapshot(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


class TreeTestCase(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.root = Path(self.useFixture(fixtures.TempDir()).path) / "root"
        self.root.mkdir()
        self.logger = self.useFixture(fixtures.FakeLogger(level=20))

    def conf(self, which: str) -> list[str]:
        text = (self.root / f"usr/lib/tmpfiles.d/ext-{which}.conf").read_text(encoding="utf-8")
        return [ln for ln in text.splitlines() if not ln.startswith("#")]


class TestLowerEtc(TreeTestCase):

    def test_files_move_to_factory_with_copy_lines(self) -> None:
        make(self.root, {"etc/waagent.conf": "a=1\n", "etc/chrony/chrony.conf": "pool x\n",
                         "usr/bin/tool": "#!/bin/sh\n"})
        (self.root / "etc/chrony/chrony.conf").chmod(0o640)
        lowered = lower_etc_var(self.root, strict=False, name="ext")
        self.assertEqual(
            ["C /etc/chrony/chrony.conf - - - - /usr/share/factory/etc/chrony/chrony.conf",
             "C /etc/waagent.conf - - - - /usr/share/factory/etc/waagent.conf"],
            self.conf("etc"))
        self.assertEqual("pool x\n", (self.root / FACTORY / "chrony/chrony.conf").read_text())
        self.assertEqual(0o640, stat.S_IMODE((self.root / FACTORY / "chrony/chrony.conf")
                                             .stat().st_mode))
        self.assertFalse(os.path.lexists(self.root / "etc"))
        self.assertFalse((self.root / "usr/lib/tmpfiles.d/ext-var.conf").exists())
        self.assertEqual({"etc/waagent.conf", "etc/chrony/chrony.conf"},
                         {ln.source for ln in lowered})
        self.assertEqual({"copy"}, {ln.action for ln in lowered})
        self.assertIn("lowered etc/waagent.conf: C /etc/waagent.conf", self.logger.output)

    def test_symlinks_become_link_lines_and_are_not_moved(self) -> None:
        make(self.root, {"etc/waagent.conf": "->/usr/share/waagent/waagent.conf",
                         "etc/alt/rel": "->../waagent.conf"})
        lowered = lower_etc_var(self.root, strict=False, name="ext")
        self.assertEqual(["L /etc/alt/rel - - - - ../waagent.conf",
                          "L /etc/waagent.conf - - - - /usr/share/waagent/waagent.conf"],
                         self.conf("etc"))
        self.assertFalse(os.path.lexists(self.root / FACTORY / "waagent.conf"))
        self.assertIn(Lowering("etc/alt/rel", "symlink", "L /etc/alt/rel - - - - ../waagent.conf"),
                      lowered)

    def test_directories_get_lines_only_when_empty_or_not_0755(self) -> None:
        make(self.root, {"etc/plain/file": "x", "etc/empty": None, "etc/secret/key": "k"})
        (self.root / "etc/secret").chmod(0o700)
        (self.root / "etc/empty").chmod(0o755)
        lower_etc_var(self.root, strict=False, name="ext")
        self.assertEqual(["d /etc/empty 0755 - - -",
                          "C /etc/plain/file - - - - /usr/share/factory/etc/plain/file",
                          "d /etc/secret 0700 - - -",
                          "C /etc/secret/key - - - - /usr/share/factory/etc/secret/key"],
                         self.conf("etc"))

    def test_awkward_names_are_escaped_for_tmpfiles(self) -> None:
        # Shapes checked against systemd-tmpfiles 252 --root: quoted path field, C-escaped
        # argument, %% for specifiers.
        make(self.root, {"etc/my app%1.conf": "x", "etc/back\\slash": "y", 'etc/q"uote': "z",
                         "etc/lnk sp": "->../x y"})
        lower_etc_var(self.root, strict=False, name="ext")
        self.assertEqual(
            ['C "/etc/back\\\\slash" - - - - /usr/share/factory/etc/back\\\\slash',
             'L "/etc/lnk sp" - - - - ../x\\x20y',
             'C "/etc/my app%%1.conf" - - - - /usr/share/factory/etc/my\\x20app%%1.conf',
             'C "/etc/q\\"uote" - - - - /usr/share/factory/etc/q"uote'],
            self.conf("etc"))

    def test_control_characters_cannot_be_expressed(self) -> None:
        make(self.root, {"etc/new\nline": "x"})
        err = self.assertRaises(TreeRuleError, lower_etc_var, self.root, strict=False,
                                name="ext")
        self.assertIn("control characters", str(err))
        self.assertNotIn("\n", str(err).replace("\\n", ""))

    def test_nothing_to_lower_writes_nothing_and_drops_empty_etc(self) -> None:
        make(self.root, {"usr/bin/x": "x", "etc": None})
        self.assertEqual([], lower_etc_var(self.root, strict=True, name="ext"))
        self.assertEqual(["usr", "usr/bin", "usr/bin/x"], snapshot(self.root))

    def test_strict_refuses_and_leaves_the_tree_alone(self) -> None:
        make(self.root, {"etc/a.conf": "x", "var/lib/foo": None})
        before = snapshot(self.root)
        err = self.assertRaises(TreeRuleError, lower_etc_var, self.root, strict=True,
                                name="ext")
        self.assertIn("--strict", str(err))
        self.assertIn("etc/a.conf", str(err))
        self.assertIn("var/lib/foo", str(err))
        self.assertEqual(before, snapshot(self.root))

    def test_collision_with_factory_file_is_an_error(self) -> None:
        make(self.root, {"etc/a.conf": "new", f"{FACTORY}/a.conf": "old"})
        err = self.assertRaises(TreeRuleError, lower_etc_var, self.root, strict=False,
                                name="ext")
        self.assertIn(f"{FACTORY}/a.conf", str(err))
        self.assertEqual("old", (self.root / FACTORY / "a.conf").read_text())
        self.assertTrue((self.root / "etc/a.conf").exists())

    def test_existing_tmpfiles_conf_is_not_overwritten(self) -> None:
        make(self.root, {"etc/a.conf": "x", "usr/lib/tmpfiles.d/ext-etc.conf": "mine"})
        err = self.assertRaises(TreeRuleError, lower_etc_var, self.root, strict=False,
                                name="ext")
        self.assertIn("usr/lib/tmpfiles.d/ext-etc.conf already exists", str(err))

    def test_symlinked_usr_is_never_written_through(self) -> None:
        outside = Path(self.useFixture(fixtures.TempDir()).path)
        make(self.root, {"etc/a.conf": "x"})
        os.symlink(outside, self.root / "usr")
        self.assertRaises(TreeRuleError, lower_etc_var, self.root, strict=False, name="ext")
        self.assertEqual([], list(outside.iterdir()))

    def test_fifo_in_etc_is_an_error(self) -> None:
        make(self.root, {"etc": None})
        os.mkfifo(self.root / "etc/pipe")
        err = self.assertRaises(TreeRuleError, lower_etc_var, self.root, strict=False,
                                name="ext")
        self.assertIn("etc/pipe (fifo)", str(err))


class TestLowerVar(TreeTestCase):

    def test_empty_dirs_become_d_lines(self) -> None:
        make(self.root, {"var/lib/waagent": None, "var/log/azure": None, "var/cache/x": None})
        (self.root / "var/lib/waagent").chmod(0o700)
        (self.root / "var/log/azure").chmod(0o755)
        (self.root / "var/cache/x").chmod(0o2775)
        lowered = lower_etc_var(self.root, strict=False, name="ext")
        self.assertEqual(["d /var/cache/x 2775 - - -", "d /var/lib/waagent 0700 - - -",
                          "d /var/log/azure 0755 - - -"], self.conf("var"))
        self.assertEqual({"directory"}, {ln.action for ln in lowered})
        self.assertFalse(os.path.lexists(self.root / "var"))
        self.assertIn("lowered var/lib/waagent: d /var/lib/waagent 0700", self.logger.output)

    def test_files_under_var_are_refused_by_name(self) -> None:
        make(self.root, {"var/lib/dpkg/status": "x", "var/log/x.log": "", "etc/a": "x"})
        before = snapshot(self.root)
        err = self.assertRaises(TreeRuleError, lower_etc_var, self.root, strict=False,
                                name="ext")
        self.assertIn("var/lib/dpkg/status", str(err))
        self.assertIn("var/log/x.log", str(err))
        self.assertIn("cannot be lowered", str(err))
        self.assertIn("tmpfiles.d", err.hint or "")
        self.assertEqual(before, snapshot(self.root))

    def test_symlink_under_var_is_refused(self) -> None:
        make(self.root, {"var/run": "->../run"})
        err = self.assertRaises(TreeRuleError, lower_etc_var, self.root, strict=False,
                                name="ext")
        self.assertIn("var/run", str(err))


class TestValidate(TreeTestCase):

    def test_a_good_tree_passes(self) -> None:
        make(self.root, {"usr/bin/tool": "x", "usr/lib/libx.so": "->libx.so.1",
                         "usr/lib/libx.so.1": "y", "usr/sbin/eject": "->/usr/bin/true",
                         "usr/share/a/b": "->../../bin/tool", "opt/app/bin": "->/opt/app/lib",
                         "usr/bin/dot": "->./tool", "usr/local": "->../opt"})
        validate(self.root)

    def test_only_usr_and_opt_at_the_top(self) -> None:
        make(self.root, {"usr/bin/x": "x", "etc/foo": "x", "srv": None, "boot": "->usr"})
        err = self.assertRaises(TreeRuleError, validate, self.root)
        self.assertIn("found: boot, etc, srv", str(err))

    def test_usr_must_be_a_real_directory(self) -> None:
        make(self.root, {"opt/x": None, "usr": "->opt"})
        err = self.assertRaises(TreeRuleError, validate, self.root)
        self.assertIn("usr is not a real directory", str(err))

    def test_usr_must_exist(self) -> None:
        make(self.root, {"opt/x": "x"})
        self.assertIn("usr/ is missing", str(self.assertRaises(TreeRuleError, validate,
                                                               self.root)))

    def test_os_release_is_forbidden(self) -> None:
        make(self.root, {"usr/lib/os-release": "ID=debian\n"})
        err = self.assertRaises(TreeRuleError, validate, self.root)
        self.assertIn("usr/lib/os-release", str(err))

    def test_fifos_and_sockets_are_named(self) -> None:
        make(self.root, {"usr/lib/x": None, "opt": None})
        os.mkfifo(self.root / "usr/lib/x/pipe")
        sock = socket.socket(socket.AF_UNIX)
        self.addCleanup(sock.close)
        sock.bind(str(self.root / "opt/sock"))
        err = self.assertRaises(TreeRuleError, validate, self.root)
        self.assertIn("usr/lib/x/pipe (fifo)", str(err))
        self.assertIn("opt/sock (socket)", str(err))

    @testtools.skipIf(os.geteuid() != 0, "mknod of a device node needs root")
    def test_device_nodes_are_named(self) -> None:
        make(self.root, {"usr/lib": None})
        os.mknod(self.root / "usr/lib/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        err = self.assertRaises(TreeRuleError, validate, self.root)
        self.assertIn("usr/lib/null (character device)", str(err))

    def test_absolute_links_outside_usr_and_opt_name_link_and_target(self) -> None:
        make(self.root, {"usr/lib/waagent.conf": "->/etc/waagent.conf",
                         "usr/lib/sneaky": "->/usr/../etc/shadow", "usr/lib/ok": "->/usr"})
        err = self.assertRaises(TreeRuleError, validate, self.root)
        self.assertIn("usr/lib/waagent.conf -> /etc/waagent.conf", str(err))
        self.assertIn("usr/lib/sneaky -> /usr/../etc/shadow", str(err))
        self.assertNotIn("usr/lib/ok", str(err))

    def test_relative_links_may_not_escape(self) -> None:
        make(self.root, {"usr/lib/up": "->../../../host", "usr/lib/etc": "->../../etc/x"})
        err = self.assertRaises(TreeRuleError, validate, self.root)
        self.assertIn("usr/lib/up -> ../../../host (climbs out of the image root)", str(err))
        self.assertIn("usr/lib/etc -> ../../etc/x (outside /usr and /opt)", str(err))

    def test_every_problem_in_one_line(self) -> None:
        make(self.root, {"usr/lib/os-release": "", "var/x": None, "usr/a": "->/etc",
                         "usr/new\nline": "->/etc\tx"})
        err = self.assertRaises(TreeRuleError, validate, self.root)
        for needle in ("found: var", "os-release", "usr/a -> /etc", "usr/new\\nline -> /etc\\tx"):
            self.assertIn(needle, str(err))
        self.assertNotIn("\n", str(err))

    def test_long_lists_are_capped(self) -> None:
        make(self.root, {f"usr/l{i:02}": "->/etc" for i in range(15)})
        err = self.assertRaises(TreeRuleError, validate, self.root)
        self.assertIn("and 5 more", str(err))
        self.assertNotIn("usr/l14", str(err))



class TestNormalise(TreeTestCase):

    EPOCH = 1_700_000_000

    def test_every_timestamp_is_the_epoch_without_following_links(self) -> None:
        outside = Path(self.useFixture(fixtures.TempDir()).path) / "outside"
        outside.write_text("x")
        os.utime(outside, (5, 5))
        make(self.root, {"usr/bin/tool": "x", "usr/lib/empty": None,
                         "usr/lib/link": f"->{outside}", "usr/lib/dangling": "->nowhere"})
        normalise(self.root, self.EPOCH)
        # atime is set too, but reading the directories here moves it again (relatime)
        for path in [self.root, *self.root.rglob("*")]:
            self.assertEqual(self.EPOCH, int(path.lstat().st_mtime), str(path))
        self.assertEqual(5, int(outside.stat().st_mtime))

    def test_modes_are_kept(self) -> None:
        make(self.root, {"usr/bin/tool": "x", "usr/lib/priv": None})
        (self.root / "usr/bin/tool").chmod(0o4755)
        (self.root / "usr/lib/priv").chmod(0o700)
        normalise(self.root, self.EPOCH)
        self.assertEqual(0o4755, stat.S_IMODE((self.root / "usr/bin/tool").stat().st_mode))
        self.assertEqual(0o700, stat.S_IMODE((self.root / "usr/lib/priv").stat().st_mode))

    @testtools.skipIf(os.geteuid() != 0, "changing owners needs root")
    def test_as_root_owners_become_root_and_setid_bits_survive(self) -> None:
        make(self.root, {"usr/bin/tool": "x", "usr/lib/link": "->../bin/tool"})
        tool = self.root / "usr/bin/tool"
        os.chown(tool, 1000, 1000)
        os.chown(self.root / "usr/lib/link", 1000, 1000, follow_symlinks=False)
        tool.chmod(0o6755)
        normalise(self.root, self.EPOCH)
        for path in (tool, self.root / "usr/lib/link"):
            st = path.lstat()
            self.assertEqual((0, 0), (st.st_uid, st.st_gid), str(path))
        self.assertEqual(0o6755, stat.S_IMODE(tool.stat().st_mode))

    def test_not_root_means_no_chown(self) -> None:
        make(self.root, {"usr/bin/tool": "x"})
        st = (self.root / "usr/bin/tool").stat()
        self.useFixture(fixtures.MonkeyPatch("os.geteuid", lambda: 1000))

        def refuse(*args: object, **kwargs: object) -> None:
            raise AssertionError("chown called")

        self.useFixture(fixtures.MonkeyPatch("os.chown", refuse))
        normalise(self.root, self.EPOCH)
        self.assertEqual(st.st_uid, (self.root / "usr/bin/tool").stat().st_uid)

    def test_negative_epoch_is_refused(self) -> None:
        self.assertRaises(ConfigError, normalise, self.root, -1)
