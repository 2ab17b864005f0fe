"""The Installer: package checks without a base, placing sources, recording packages."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import fixtures
import testtools

from sysext_builder.errors import InstallError
from sysext_builder.install.backends import PackageBackend, Target
from sysext_builder.install.cache import Cache
from sysext_builder.install.installer import Installer, InTarget, chroot_binds
from sysext_builder.model.element import Element, load_element
from sysext_builder.staging.base import BaseTree
from sysext_builder.staging.overlay import INSIDE, Overlay

RELEASE = {"ID": "debian", "VERSION_ID": "12", "VERSION_CODENAME": "bookworm"}


class FakeBackend(PackageBackend):
    """Records calls; ``installed`` hands out the given states one after the other."""

    name = "fake"
    families = ("debian",)

    def __init__(self, states: Sequence[dict[str, str]]) -> None:
        self.states = list(states)
        self.calls: list[tuple[str, list[str]]] = []
        self.bound: list[str] = []

    def binds(self, cache: Cache, key: str) -> list[tuple[Path, str]]:
        self.bound.append(key)
        return [(cache.subdir("fake"), "/var/cache/fake")]

    def installed(self, target: Target) -> dict[str, str]:
        self.calls.append(("installed", []))
        return self.states.pop(0)

    def install(self, target: Target, names: Sequence[str], *, offline: bool) -> None:
        self.calls.append(("install", list(names)))

    def remove(self, target: Target, names: Sequence[str]) -> None:
        self.calls.append(("remove", list(names)))


class InstallerTestCase(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.dir = Path(self.useFixture(fixtures.TempDir()).path)
        self.cache = Cache(self.dir / "cache")
        self.root = self.dir / "root"
        self.root.mkdir()
        self.useFixture(fixtures.FakeLogger(level=10))

    def element(self, name: str, files: dict[str, str]) -> Element:
        path = self.dir / "elements" / name
        path.mkdir(parents=True)
        for rel, text in files.items():
            (path / rel).write_text(text)
        return load_element(path, "test")

    def installer(self, elements: list[Element], *, base: BaseTree | None = None,
                  overlay: Overlay | None = None) -> Installer:
        return Installer(elements, cache=self.cache, offline=False, arch="x86-64",
                         root=self.root, base=base, overlay=overlay, environ={})

    def with_base(self, elements: list[Element], backend: FakeBackend) -> Installer:
        lower = self.dir / "base"
        lower.mkdir()
        work = self.dir / "work"
        work.mkdir()
        overlay = Overlay.under(lower, work)
        base = BaseTree(source=lower, path=lower, os_release=RELEASE, architecture="x86-64")
        chosen: list[tuple[str, str]] = []

        def for_family(family: str, os_id: str) -> PackageBackend:
            chosen.append((family, os_id))
            return backend

        self.chosen = chosen
        self.useFixture(fixtures.MonkeyPatch(
            "sysext_builder.install.installer.for_family", for_family))
        inst = self.installer(elements, base=base, overlay=overlay)
        inst.root = overlay.upper
        return inst


class TestCheckPackages(InstallerTestCase):

    def test_packages_without_a_base_name_element_and_packages(self) -> None:
        demo = self.element("demo", {"package-installs.yaml": "chrony:\nlinuxptp:\n"
                                     "grub2:\n  phase: pre-install.d\n"})
        other = self.element("other", {"package-installs.yaml": "jq:\n"})
        inst = self.installer([demo, other])
        err = self.assertRaises(InstallError, inst.check_packages, {})
        self.assertIn("element demo asks for distro packages grub2", err.message)
        self.assertIn("pass --base PATH", err.message)
        self.assertEqual(26, err.exit_code)
        inst_demo = self.installer([self.element("only-install",
                                                 {"package-installs.yaml": "chrony:\n"
                                                                           "linuxptp:\n"})])
        err = self.assertRaises(InstallError, inst_demo.check_packages, {})
        self.assertTrue(err.message.startswith(
            "element only-install asks for distro packages chrony, linuxptp: pass --base PATH"),
            err.message)

    def test_every_element_asking_is_named(self) -> None:
        one = self.element("one", {"package-installs.yaml": "chrony:\n"})
        two = self.element("two", {"package-installs.yaml": "jq:\n"})
        err = self.assertRaises(InstallError, self.installer([one, two]).check_packages, {})
        self.assertIn("element one asks for distro packages chrony; "
                      "element two asks for distro packages jq", err.message)

    def test_no_packages_or_unselected_packages_need_no_base(self) -> None:
        plain = self.element("plain", {"README.rst": "x"})
        gated = self.element("gated", {"package-installs.yaml":
                                       "chrony:\n  when: WANT_CHRONY = 1\n"})
        inst = self.installer([plain, gated])
        inst.check_packages({"WANT_CHRONY": "0"})
        err = self.assertRaises(InstallError, inst.check_packages, {"WANT_CHRONY": "1"})
        self.assertIn("element gated asks for distro packages chrony", err.message)

    def test_with_a_base_check_passes_and_runs_nothing(self) -> None:
        demo = self.element("demo", {"package-installs.yaml": "chrony:\n"})
        backend = FakeBackend([])
        inst = self.with_base([demo], backend)
        inst.check_packages({})
        self.assertEqual([], backend.calls)
        self.assertEqual([], self.chosen, "no backend is chosen before packages are installed")


class TestPlaceSources(InstallerTestCase):

    def test_file_source_is_placed_into_the_root_and_recorded(self) -> None:
        payload = self.dir / "helper.sh"
        payload.write_text("#!/bin/sh\necho helper\n")
        payload.chmod(0o755)
        demo = self.element("demo", {"source-repository-helper":
                                     f"helper file /usr/lib/demo/helper.sh {payload}\n"})
        inst = self.installer([demo])
        inst.place_sources()
        placed = self.root / "usr/lib/demo/helper.sh"
        self.assertEqual("#!/bin/sh\necho helper\n", placed.read_text())
        self.assertTrue(os.access(placed, os.X_OK))
        digest = hashlib.sha256(payload.read_bytes()).hexdigest()
        self.assertEqual([{"name": "helper", "type": "file", "location": str(payload),
                           "ref": "", "resolved": digest, "dest": "/usr/lib/demo/helper.sh"}],
                         inst.records["sources"])

    def test_sources_go_into_the_current_root(self) -> None:
        payload = self.dir / "data.txt"
        payload.write_text("data")
        demo = self.element("demo", {"source-repository-data":
                                     f"data file /opt/demo/data.txt {payload}\n"})
        inst = self.installer([demo])
        upper = self.dir / "upper"
        inst.root = upper  # the builder points it at the overlay's upper layer
        inst.place_sources()
        self.assertEqual("data", (upper / "opt/demo/data.txt").read_text())
        self.assertFalse((self.root / "opt").exists())

    def test_skipped_install_type_places_nothing(self) -> None:
        payload = self.dir / "data.txt"
        payload.write_text("data")
        demo = self.element("demo", {"source-repository-data":
                                     f"data file /opt/demo/data.txt {payload}\n"})
        inst = Installer([demo], cache=self.cache, offline=False, arch="x86-64",
                         root=self.root, base=None, overlay=None,
                         environ={"DIB_INSTALLTYPE_data": "package"})
        inst.place_sources()
        self.assertEqual([], os.listdir(self.root))
        self.assertEqual([], inst.records["sources"])

    def test_missing_file_source_is_an_install_error_naming_it(self) -> None:
        demo = self.element("demo", {"source-repository-gone":
                                     f"gone file /opt/gone {self.dir / 'nope'}\n"})
        err = self.assertRaises(InstallError, self.installer([demo]).place_sources)
        self.assertIn("source repository gone", err.message)
        self.assertEqual([], os.listdir(self.root))


class TestPackagesOnABase(InstallerTestCase):

    def test_install_then_record_the_added_and_changed_packages(self) -> None:
        demo = self.element("demo", {"package-installs.yaml":
                                     "chrony:\nlinuxptp:\n  phase: post-install.d\n"
                                     "gcc:\n  build-only: true\n"})
        before = {"bash": "5.2", "libc6": "2.36-9", "tzdata": "2024a"}
        after = {"bash": "5.2", "libc6": "2.36-9+deb12u1", "tzdata": "2024a",
                 "chrony": "4.3-2", "linuxptp": "4.0-1"}
        backend = FakeBackend([before, after])
        inst = self.with_base([demo], backend)
        inst.install_packages("pre-install.d", {})
        self.assertEqual([], backend.calls, "nothing to install in pre-install.d")
        inst.install_packages("install.d", {})
        inst.install_packages("post-install.d", {})
        inst.remove_packages()
        inst.record_packages(self.dir)
        self.assertEqual([("installed", []), ("install", ["chrony", "gcc"]),
                          ("install", ["linuxptp"]), ("remove", ["gcc"]),
                          ("installed", [])], backend.calls)
        self.assertEqual([("debian", "debian")], self.chosen)
        self.assertEqual(["debian-12-x86-64"], backend.bound)
        self.assertEqual([{"name": "chrony", "version": "4.3-2"},
                          {"name": "libc6", "version": "2.36-9+deb12u1"},
                          {"name": "linuxptp", "version": "4.0-1"}],
                         inst.records["packages"])
        self.assertIsInstance(inst.target, InTarget)

    def test_uninstall_packages_are_removed_not_installed(self) -> None:
        demo = self.element("demo", {"package-installs.yaml":
                                     "networkmanager:\n  uninstall: true\n"})
        backend = FakeBackend([{"networkmanager": "1.42"}, {}])
        inst = self.with_base([demo], backend)
        inst.install_packages("install.d", {})
        self.assertEqual([], backend.calls)
        inst.remove_packages()
        inst.record_packages(self.dir)
        self.assertEqual([("installed", []), ("remove", ["networkmanager"]),
                          ("installed", [])], backend.calls)
        self.assertEqual([], inst.records["packages"], "removals are not additions")

    def test_record_without_any_package_work_records_nothing(self) -> None:
        backend = FakeBackend([])
        inst = self.with_base([self.element("plain", {"README.rst": "x"})], backend)
        inst.record_packages(self.dir)
        self.assertEqual([], backend.calls)
        self.assertEqual([], inst.records["packages"])


class TestChrootBinds(testtools.TestCase):

    def test_known_directories_in_sorted_order(self) -> None:
        dirs = {"tmp": Path("/w/tmp"), "elements": Path("/w/el"), "bogus": Path("/x")}
        self.assertEqual([(Path("/w/el"), INSIDE["elements"]), (Path("/w/tmp"), INSIDE["tmp"])],
                         chroot_binds(dirs))


class TestHooksInstallPackages(InstallerTestCase):
    """What ``install-packages`` (lib/bin) relies on: mapped names, and the record."""

    def test_pkg_map_files_map_for_the_base(self) -> None:
        demo = self.element("demo", {"pkg-map": json.dumps({
            "family": {"debian": {"dhcp-client": "isc-dhcp-client", "pip": ""},
                       "redhat": {"dhcp-client": "dhclient"}},
            "distro": {"debian": {"editor": "nano vim"}}})})
        inst = self.with_base([demo], FakeBackend([]))
        state = self.dir / "state"
        state.mkdir()
        inst.write_pkg_maps(state)
        self.assertEqual("dhcp-client\tisc-dhcp-client\neditor\tnano vim\npip\t\n",
                         (state / "pkg-map/demo").read_text())

    def test_packages_hooks_installed_are_recorded_against_the_base(self) -> None:
        backend = FakeBackend([{"bash": "5.2", "hello": "2.10-3"}])
        inst = self.with_base([self.element("plain", {"README.rst": "x"})], backend)
        status = self.dir / "base/var/lib/dpkg/status"
        status.parent.mkdir(parents=True)
        status.write_text("Package: bash\nStatus: install ok installed\nVersion: 5.2\n")
        inst.record_packages(self.dir)
        self.assertEqual([], inst.records["packages"], "no hook ran install-packages")
        (self.dir / "packages-by-hooks").write_text("")
        inst.record_packages(self.dir)
        self.assertEqual([{"name": "hello", "version": "2.10-3"}], inst.records["packages"])
