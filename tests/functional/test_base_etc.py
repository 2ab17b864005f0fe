"""/etc under --base: what the build adds is lowered, links into /etc are checked
against the lowered /etc and the base (the openssl links of a waagent build)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import fixtures
import testtools

from tests.functional import base

#: the links openssl ships under /usr, pointing into /etc
OPENSSL_LINKS = {"usr/lib/ssl/certs": "/etc/ssl/certs",
                 "usr/lib/ssl/cert.pem": "/etc/ssl/certs/ca-certificates.crt",
                 "usr/lib/ssl/openssl.cnf": "/etc/ssl/openssl.cnf",
                 "usr/lib/ssl/private": "/etc/ssl/private"}


class TestBaseEtc(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        base.require_root("building against --base")
        self.top = Path(self.useFixture(fixtures.TempDir()).path)
        self.tree = self.top / "base"
        self.write(self.tree / "etc/os-release", 'ID=tinyos\nVERSION_ID="4.2"\n')
        self.write(self.tree / "etc/ssl/certs/ca-certificates.crt", "base certs\n")
        self.write(self.tree / "etc/ssl/openssl.cnf", "base config\n")
        (self.tree / "usr/lib").mkdir(parents=True)
        self.elements = self.top / "elements"

    @staticmethod
    def write(path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def element(self, name: str, links: dict[str, str], files: dict[str, str]) -> None:
        static = self.elements / name / "static"
        self.write(self.elements / name / "README.rst", f"{name}\n{'=' * len(name)}\n")
        for rel, target in links.items():
            (static / rel).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, static / rel)
        for rel, text in files.items():
            self.write(static / rel, text)

    def create(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        return base.run("sysext-create", "--element-path", str(self.elements), name,
                        "--base", str(self.tree), "--cache-dir", str(self.top / "cache"),
                        "--workdir", str(self.top / "work"), "-t", "directory",
                        "-o", f"{self.top}/out-{name}/{name}", *args)

    def test_added_etc_is_lowered_and_links_into_it_or_the_base_pass(self) -> None:
        self.element("agent", {**OPENSSL_LINKS, "usr/lib/agent.conf": "/etc/agent.conf"},
                     {"etc/agent.conf": "agent\n", "etc/ssl/openssl.cnf": "changed\n",
                      "etc/ssl/private/.keep": ""})
        proc = self.create("agent")
        self.assertEqual(0, proc.returncode, proc.stderr[-3000:])
        tree = self.top / "out-agent/agent"
        self.assertEqual(["usr"], os.listdir(tree))
        self.assertEqual("agent\n", (tree / "usr/share/factory/etc/agent.conf").read_text())
        conf = (tree / "usr/lib/tmpfiles.d/agent-etc.conf").read_text().splitlines()
        self.assertIn("C /etc/agent.conf - - - - /usr/share/factory/etc/agent.conf", conf)
        self.assertFalse((tree / "usr/share/factory/etc/ssl/openssl.cnf").exists(),
                         "a change to the base's file is not carried")
        self.assertIn("not carried (the target keeps its own): etc/ssl/openssl.cnf",
                      proc.stderr)
        for rel, target in OPENSSL_LINKS.items():
            self.assertEqual(target, os.readlink(tree / rel))

    def test_link_to_an_etc_path_nobody_provides_is_refused(self) -> None:
        self.element("dangling", {"usr/lib/ssl/certs": "/etc/ssl/certs",
                                  "usr/lib/ssl/private": "/etc/ssl/private"}, {})
        proc = self.create("dangling")
        self.assertEqual(21, proc.returncode, proc.stderr[-3000:])
        self.assertIn("usr/lib/ssl/private -> /etc/ssl/private (/etc/ssl/private is neither "
                      "in the image's lowered /etc nor in the base)", proc.stderr)
        self.assertNotIn("usr/lib/ssl/certs ->", proc.stderr)

    def test_strict_refuses_a_change_to_a_base_file(self) -> None:
        self.element("changes", {}, {"etc/ssl/openssl.cnf": "changed\n",
                                     "usr/share/changes/x": "x\n"})
        proc = self.create("changes", "--strict")
        self.assertEqual(21, proc.returncode, proc.stderr[-3000:])
        self.assertIn("--strict: changes to /etc files the base has cannot be carried: "
                      "etc/ssl/openssl.cnf", proc.stderr)
