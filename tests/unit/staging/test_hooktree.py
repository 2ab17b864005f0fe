"""DIB's merged hooks tree: one copy of every element's files, hooks run from it."""

from __future__ import annotations

import os
from pathlib import Path

import fixtures
import testtools

from sysext_builder.model.element import Element
from sysext_builder.model.phases import Hook
from sysext_builder.staging import hooktree


class TestMerge(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.dir = Path(self.useFixture(fixtures.TempDir()).path)
        self.dest = self.dir / "hooks"
        self.dest.mkdir()

    def element(self, name: str, files: dict[str, str]) -> Element:
        top = self.dir / "elements" / name
        for rel, text in files.items():
            (top / rel).parent.mkdir(parents=True, exist_ok=True)
            (top / rel).write_text(text)
        return Element(name=name, path=top, origin="path")

    def test_bin_and_init_scripts_of_all_elements_are_one_tree_beside_the_phases(self) -> None:
        a = self.element("install-bin", {"pre-install.d/01-install-bin": "#!/bin/sh\n",
                                          "element-deps": "x\n", "tests/t.yaml": "t"})
        b = self.element("user", {"bin/tool-b": "b", "init-scripts/systemd/b.service": "u",
                                  "static/usr/share/b": "s", "pkg-map": "{}"})
        c = self.element("other", {"bin/tool-c": "c", "bin/tool-b": "not b's"})
        log = self.useFixture(fixtures.FakeLogger())
        hooktree.merge([a, b, c], {}, self.dest)
        self.assertIn(f"{c.path}/bin/tool-b: an earlier element ships bin/tool-b too; "
                      "TMP_HOOKS_PATH keeps that one", log.output)
        self.assertEqual(["tool-b", "tool-c"], sorted(os.listdir(self.dest / "bin")))
        self.assertEqual("b", (self.dest / "bin/tool-b").read_text(), "the first keeps a path")
        self.assertTrue((self.dest / "init-scripts/systemd/b.service").is_file())
        self.assertTrue((self.dest / "static/usr/share/b").is_file())
        self.assertTrue((self.dest / "pkg-map").is_file())
        self.assertFalse((self.dest / "tests").exists())
        self.assertFalse((self.dest / "element-deps").exists())
        hook = (self.dest / "pre-install.d/01-install-bin")
        self.assertFalse(hook.is_symlink(), "a copy, which a chroot sees through one bind")
        self.assertEqual(os.fspath(self.dest / "bin"),
                         os.path.normpath(os.path.join(hook.parent, "..", "bin")))

    def test_an_install_type_hook_is_linked_into_its_phase(self) -> None:
        e = self.element("simple-init", {
            "install.d/simple-init-source-install/40-glean": "#!/bin/sh\n"})
        hook = Hook("simple-init", "install.d", "40-glean",
                    e.path / "install.d/simple-init-source-install/40-glean", e.path)
        hooktree.merge([e], {"install.d": [hook]}, self.dest)
        link = self.dest / "install.d/40-glean"
        self.assertEqual("simple-init-source-install/40-glean", os.readlink(link))
        self.assertEqual("#!/bin/sh\n", link.read_text())
        self.assertEqual("/in/install.d/40-glean", hooktree.run_path(hook, "/in"))

    def test_links_to_files_are_copied_fifos_left_out(self) -> None:
        e = self.element("e", {"bin/real": "real"})
        (e.path / "bin/alias").symlink_to("real")
        (e.path / "bin/loop").symlink_to(".")  # a directory link stays a link
        os.mkfifo(e.path / "bin/fifo")
        log = self.useFixture(fixtures.FakeLogger())
        hooktree.merge([e], {}, self.dest)
        self.assertFalse((self.dest / "bin/alias").is_symlink())
        self.assertEqual("real", (self.dest / "bin/alias").read_text())
        self.assertEqual(".", os.readlink(self.dest / "bin/loop"))
        self.assertFalse(os.path.lexists(self.dest / "bin/fifo"))
        self.assertIn("bin/fifo: not a regular file, not copied", log.output)

    def test_an_earlier_elements_link_is_never_written_or_read_through(self) -> None:
        canary = Path(self.useFixture(fixtures.TempDir()).path)
        (canary / "keep").write_text("host")
        a = self.element("a", {"static/usr/share/x": "a"})
        (a.path / "static/usr/lib").mkdir(parents=True)
        (a.path / "static/usr/lib/foo").symlink_to(canary)
        (a.path / "bin").mkdir()
        (a.path / "bin/zero").symlink_to("/dev/zero")  # a device: not copied, never read
        (a.path / "bin/out").symlink_to(canary)  # a directory link: kept as the link
        b = self.element("b", {"static/usr/lib/foo/planted": "b", "bin/zero": "b's",
                               "bin/out": "b's"})
        log = self.useFixture(fixtures.FakeLogger())
        hooktree.merge([a, b], {}, self.dest)
        self.assertEqual(["keep"], os.listdir(canary))
        self.assertIn("ships static/usr/lib/foo as a symlink", log.output)
        self.assertEqual("b's", (self.dest / "bin/zero").read_text())
        self.assertIn("ships bin/out too", log.output)
        self.assertEqual(str(canary), os.readlink(self.dest / "bin/out"))
