"""installed.scan(): the images of a root's extension directories as one merge treats them."""

from __future__ import annotations

import os
from pathlib import Path

import fixtures

from sysext_builder.sysext import compat, installed
from tests.base import TestCase

HOST = {"ID": "debian", "VERSION_ID": "12"}


class TestScan(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.root = Path(self.useFixture(fixtures.TempDir()).path)

    def image(self, rel: str, release: str = "ID=debian\nVERSION_ID=12\n",
              release_name: str | None = None) -> Path:
        img = self.root / rel
        (img / "usr/lib/extension-release.d").mkdir(parents=True)
        name = release_name or img.name
        (img / f"usr/lib/extension-release.d/extension-release.{name}").write_text(release)
        return img

    def scan(self, version: int = 257) -> list[tuple[str, str]]:
        found = installed.scan(self.root, version, lambda f: compat.incompatibility(
            f, HOST, host_arch="x86-64"))
        return [(e.rel, e.verdict) for e in found]

    def test_order_shadowing_and_skips(self) -> None:
        self.image("var/lib/extensions/a")
        self.image("etc/extensions/a")
        self.image("run/extensions/old", "ID=debian\nVERSION_ID=11\n")
        self.image("var/lib/extensions/bad", release_name="other")
        self.assertEqual([("etc/extensions/a", "merged"), ("run/extensions/old", "skipped"),
                          ("var/lib/extensions/a", "shadowed"),
                          ("var/lib/extensions/bad", "skipped")], self.scan())

    def test_usr_directories_only_before_254(self) -> None:
        self.image("usr/lib/extensions/u")
        self.assertEqual([], self.scan(257))
        self.assertEqual([("usr/lib/extensions/u", "aborts")], self.scan(252))

    def test_os_release_aborts(self) -> None:
        img = self.image("var/lib/extensions/o")
        (img / "usr/lib/os-release").write_text("ID=debian\n")
        self.assertEqual([("var/lib/extensions/o", "aborts")], self.scan())

    def test_symlinks_and_other_files_are_listed_not_followed(self) -> None:
        (self.root / "etc/extensions").mkdir(parents=True)
        os.symlink("/usr", self.root / "etc/extensions/host.raw")
        (self.root / "etc/extensions/notes.txt").write_text("x")
        self.assertEqual([("etc/extensions/host.raw", "ignored"),
                          ("etc/extensions/notes.txt", "ignored")], self.scan())
