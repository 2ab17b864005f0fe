"""The symlink rule of validate(): links must stay inside /usr and /opt, by path component."""

from __future__ import annotations

import os
from pathlib import Path

import fixtures
import testtools

from sysext_builder.errors import TreeRuleError
from sysext_builder.sysext.tree import validate


class TestLinkRule(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.root = Path(self.useFixture(fixtures.TempDir()).path) / "root"
        (self.root / "usr/lib").mkdir(parents=True)
        (self.root / "opt/app").mkdir(parents=True)

    def link(self, rel: str, target: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, path)

    def refused(self) -> str:
        err = self.assertRaises(TreeRuleError, validate, self.root)
        self.assertEqual(21, err.exit_code)
        return err.message

    def test_absolute_targets_inside_usr_and_opt_are_accepted(self) -> None:
        for name, target in (("a", "/usr/lib/foo"), ("b", "/opt/x"), ("c", "/usr"),
                             ("d", "/opt"), ("e", "/usr/"), ("f", "//usr/lib/./foo"),
                             ("g", "/opt/app/../other")):
            self.link(f"usr/lib/{name}", target)
        validate(self.root)  # raises on any refused link

    def test_a_unit_masked_with_dev_null_is_accepted(self) -> None:
        self.link("usr/lib/systemd/system/foo.service", "/dev/null")
        self.link("usr/lib/systemd/system/bar.service", "../../../../dev/null")
        validate(self.root)

    def test_other_dev_targets_are_refused(self) -> None:
        self.link("usr/lib/systemd/system/foo.service", "/dev/zero")
        self.assertIn("(outside /usr and /opt)", self.refused())

    def test_absolute_target_sharing_the_usr_prefix_is_refused(self) -> None:
        self.link("usr/lib/foo", "/usrx/lib/foo")
        message = self.refused()
        self.assertIn("usr/lib/foo -> /usrx/lib/foo (outside /usr and /opt)", message)

    def test_absolute_target_sharing_the_opt_prefix_is_refused(self) -> None:
        self.link("opt/app/x", "/optional/x")
        message = self.refused()
        self.assertIn("opt/app/x -> /optional/x (outside /usr and /opt)", message)

    def test_every_prefix_lookalike_is_named(self) -> None:
        targets = {"u1": "/usrx/lib/foo", "u2": "/usr.old/bin/sh", "u3": "/usr-local",
                   "o1": "/optional/x", "o2": "/opt2", "ok": "/usr/lib/foo"}
        for name, target in targets.items():
            self.link(f"usr/lib/{name}", target)
        message = self.refused()
        for name, target in targets.items():
            if name == "ok":
                self.assertNotIn("usr/lib/ok", message)
            else:
                self.assertIn(f"usr/lib/{name} -> {target} (outside /usr and /opt)", message)

    def test_relative_target_resolving_to_a_lookalike_is_refused(self) -> None:
        self.link("usr/lib/a", "../../usrx/foo")
        self.link("opt/app/b", "../../optional/y")
        message = self.refused()
        self.assertIn("usr/lib/a -> ../../usrx/foo (outside /usr and /opt)", message)
        self.assertIn("opt/app/b -> ../../optional/y (outside /usr and /opt)", message)

    def test_relative_links_inside_are_accepted_and_climbing_out_is_refused(self) -> None:
        self.link("usr/lib/inside", "../bin/tool")
        self.link("usr/lib/across", "../../opt/app/run")
        validate(self.root)
        self.link("usr/lib/out", "../../../host")
        message = self.refused()
        self.assertIn("usr/lib/out -> ../../../host (climbs out of the image root)", message)
        self.assertNotIn("usr/lib/inside", message)
        self.assertNotIn("usr/lib/across", message)

    def test_relative_link_to_the_root_itself_is_refused(self) -> None:
        self.link("usr/lib/top", "../..")
        self.assertIn("usr/lib/top -> ../.. (outside /usr and /opt)", self.refused())

    def test_absolute_root_and_dotdot_out_of_usr_are_refused(self) -> None:
        self.link("usr/lib/slash", "/")
        self.link("usr/lib/up", "/usr/../etc/passwd")
        message = self.refused()
        self.assertIn("usr/lib/slash -> / (outside /usr and /opt)", message)
        self.assertIn("usr/lib/up -> /usr/../etc/passwd (outside /usr and /opt)", message)
