"""Hook ordering, collisions, warnings and install types."""

from __future__ import annotations

import os
from pathlib import Path

import fixtures
import testtools

from sysext_builder.errors import ElementFormatError, TreeRuleError
from sysext_builder.model import phases
from sysext_builder.model.element import Element, load_element
from sysext_builder.model.phases import HookFile


def hf(element: str, name: str, executable: bool = True, regular: bool = True) -> HookFile:
    return HookFile(element=element, phase="install.d", name=name,
                    path=Path(f"/e/{element}/install.d/{name}"), executable=executable,
                    regular=regular)


class TestOrderHooks(testtools.TestCase):

    def test_numeric_prefix_order_then_name(self) -> None:
        hooks, warnings = phases.order_hooks([
            hf("b", "10-y"), hf("a", "9-x"), hf("a", "10-a"), hf("c", "zz"), hf("c", "01-first"),
            hf("a", "alpha")])
        self.assertEqual(["01-first", "9-x", "10-a", "10-y", "alpha", "zz"],
                         [h.name for h in hooks])
        self.assertEqual([], warnings)

    def test_order_is_independent_of_input_order(self) -> None:
        files = [hf("a", f"{n}-h{n}") for n in (3, 20, 1, 100, 7)]
        first, _ = phases.order_hooks(files)
        second, _ = phases.order_hooks(list(reversed(files)))
        self.assertEqual(first, second)

    def test_same_name_in_two_elements_is_an_error_naming_both(self) -> None:
        err = self.assertRaises(ElementFormatError, phases.order_hooks,
                                [hf("alpha", "50-setup"), hf("beta", "50-setup")])
        self.assertEqual("hook install.d/50-setup is shipped by both alpha and beta", err.message)
        self.assertIn("/e/alpha/install.d/50-setup", err.hint or "")
        self.assertIn("/e/beta/install.d/50-setup", err.hint or "")

    def test_dotted_and_non_executable_files_warn_and_do_not_run(self) -> None:
        hooks, warnings = phases.order_hooks([
            hf("a", "10-ok"), hf("a", "20-disabled.bak"), hf("a", "30-plain", executable=False),
            hf("a", "40-dir", regular=False)])
        self.assertEqual(["10-ok"], [h.name for h in hooks])
        self.assertEqual(3, len(warnings))
        self.assertIn("20-disabled.bak", warnings[0])
        self.assertIn("a dot in a hook name disables it", warnings[0])
        self.assertIn("not executable", warnings[1])
        self.assertIn("not a regular file", warnings[2])

    def test_label(self) -> None:
        hooks, _ = phases.order_hooks([hf("el", "10-x")])
        self.assertEqual("el/install.d/10-x", hooks[0].label)


class TestScanOnDisk(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.top = Path(self.useFixture(fixtures.TempDir()).path)

    def make(self, element: str, rel: str, text: str = "#!/bin/sh\n", mode: int = 0o755) -> Path:
        path = self.top / element / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)
        return path

    def test_install_types_select_one_directory(self) -> None:
        self.make("glean", "install.d/simple-init-source-install/10-from-pypi")
        self.make("glean", "install.d/simple-init-repo-install/10-from-git")
        self.make("glean", "install.d/50-common")
        element = load_element(self.top / "glean")
        hooks, _ = phases.scan([element], "install.d", {})
        self.assertEqual(["10-from-pypi", "50-common"], [h.name for h in hooks])
        hooks, _ = phases.scan([element], "install.d", {"DIB_INSTALLTYPE_simple_init": "repo"})
        self.assertEqual(["10-from-git", "50-common"], [h.name for h in hooks])
        hooks, _ = phases.scan([element], "install.d", {"DIB_DEFAULT_INSTALLTYPE": "repo"})
        self.assertEqual(["10-from-git", "50-common"], [h.name for h in hooks])
        self.assertEqual(self.top / "glean", hooks[0].element_dir)

    def test_dangling_hook_link_is_one_error_naming_element_and_path(self) -> None:
        self.make("e", "install.d/10-ok")
        os.symlink("gone", self.top / "e/install.d/20-dangling")
        err = self.assertRaises(ElementFormatError, phases.scan,
                                [load_element(self.top / "e")], "install.d", {})
        self.assertEqual(f"element e: {self.top}/e/install.d/20-dangling: install.d entry is "
                         "a symlink that does not resolve (No such file or directory)",
                         err.message)

    def test_hook_link_to_itself_is_one_error(self) -> None:
        self.make("e", "finalise.d/10-ok")
        os.symlink("20-self", self.top / "e/finalise.d/20-self")
        err = self.assertRaises(ElementFormatError, phases.scan,
                                [load_element(self.top / "e")], "finalise.d", {})
        self.assertIn(f"element e: {self.top}/e/finalise.d/20-self:", err.message)

    def test_install_type_linking_to_its_install_d_is_one_error(self) -> None:
        self.make("e", "install.d/10-ok")
        os.symlink(".", self.top / "e/install.d/x-source-install")
        err = self.assertRaises(ElementFormatError, phases.scan,
                                [load_element(self.top / "e")], "install.d", {})
        self.assertIn(f"element e: {self.top}/e/install.d/x-source-install: install type "
                      "directory links to", err.message)

    def test_install_type_linking_to_the_element_is_one_error(self) -> None:
        self.make("e", "install.d/10-ok")
        os.symlink("../..", self.top / "e/install.d/x-source-install")
        err = self.assertRaises(ElementFormatError, phases.scan,
                                [load_element(self.top / "e")], "install.d", {})
        self.assertIn("its own install.d or a directory above it", err.message)

    def test_install_types_are_one_level_deep(self) -> None:
        self.make("e", "install.d/x-source-install/y-source-install/10-deep")
        self.make("e", "install.d/x-source-install/10-one")
        hooks, warnings = phases.scan([load_element(self.top / "e")], "install.d", {})
        self.assertEqual(["10-one"], [h.name for h in hooks])
        self.assertIn("y-source-install: not a regular file", warnings[0])

    def test_environment_files_numeric_order_across_elements(self) -> None:
        self.make("a", "environment.d/10-a.bash", mode=0o644)
        self.make("b", "environment.d/9-b", mode=0o644)
        self.make("b", "environment.d/.hidden", mode=0o644)
        elements = [load_element(self.top / n) for n in ("a", "b")]
        files = phases.environment_files(elements)
        self.assertEqual([("b", "9-b"), ("a", "10-a.bash")], [(e, p.name) for e, p in files])

    def test_environment_file_collision(self) -> None:
        self.make("a", "environment.d/10-x", mode=0o644)
        self.make("b", "environment.d/10-x", mode=0o644)
        elements = [load_element(self.top / n) for n in ("a", "b")]
        err = self.assertRaises(ElementFormatError, phases.environment_files, elements)
        self.assertEqual("environment.d/10-x is shipped by both a and b", err.message)

    def test_static_collision_names_both_elements(self) -> None:
        self.make("a", "static/usr/share/x/file", mode=0o644)
        self.make("b", "static/usr/share/x/file", mode=0o644)
        self.make("b", "static/usr/share/x/other", mode=0o644)
        elements = [load_element(self.top / n) for n in ("a", "b")]
        err = self.assertRaises(ElementFormatError, phases.check_static_collisions, elements)
        self.assertEqual("static/usr/share/x/file is shipped by both a and b", err.message)

    def test_static_files_lists_symlinks(self) -> None:
        self.make("a", "static/usr/bin/tool", mode=0o755)
        os.symlink("tool", self.top / "a/static/usr/bin/alias")
        self.assertEqual(["usr/bin/alias", "usr/bin/tool"],
                         phases.static_files(load_element(self.top / "a")))

    def test_source_repository_collision(self) -> None:
        self.make("a", "source-repository-glean", "glean git /x https://x\n", 0o644)
        self.make("b", "source-repository-glean", "glean git /y https://y\n", 0o644)
        elements = [load_element(self.top / n) for n in ("a", "b")]
        err = self.assertRaises(ElementFormatError,
                                phases.check_source_repository_collisions, elements)
        self.assertEqual("source-repository-glean is shipped by both a and b", err.message)


class TestUnsupportedPhases(testtools.TestCase):

    def test_dib_only_phases_are_reported(self) -> None:
        top = Path(self.useFixture(fixtures.TempDir()).path)
        for rel in ("el/block-device.d/10-x", "el/install.d/10-y"):
            (top / rel).parent.mkdir(parents=True, exist_ok=True)
            (top / rel).write_text("#!/bin/sh\n")
        warnings = phases.unsupported_phase_dirs([load_element(top / "el")])
        self.assertEqual(1, len(warnings))
        self.assertIn("DIB phase block-device.d does not exist in sysext-builder", warnings[0])


class TestPartitioningElements(testtools.TestCase):

    def test_a_block_device_layout_is_refused_naming_element_and_file(self) -> None:
        top = Path(self.useFixture(fixtures.TempDir()).path)
        (top / "gpt").mkdir()
        (top / "gpt/block-device-default.yaml").write_text("- local_loop: {}\n")
        ok = Element(name="ok", path=top, origin="path", entries=frozenset({"install.d"}))
        gpt = Element(name="gpt", path=top / "gpt", origin="path",
                      entries=frozenset({"block-device-default.yaml"}))
        phases.check_not_disk_image([ok])
        err = self.assertRaises(TreeRuleError, phases.check_not_disk_image, [ok, gpt])
        self.assertEqual(f"element gpt: {top}/gpt/block-device-default.yaml lays out the "
                         "partitions of a disk image; a system extension has none (it merges "
                         "into /usr and /opt of a running system)", err.message)
        self.assertEqual(21, err.exit_code)

    def test_dibs_boot_chain_elements_are_refused_by_name_others_of_that_name_not(self) -> None:
        top = Path(self.useFixture(fixtures.TempDir()).path)
        dib = Element(name="bootloader", origin="path",
                      path=top / "site-packages/diskimage_builder/elements/bootloader")
        mine = Element(name="bootloader", origin="path", path=top / "my-elements/bootloader")
        phases.check_not_disk_image([mine])
        err = self.assertRaises(TreeRuleError, phases.check_not_disk_image, [dib])
        self.assertTrue(err.message.startswith(
            "element bootloader (diskimage-builder's) installs a boot loader into the disk "
            "image; a system extension has no boot loader"), err.message)
