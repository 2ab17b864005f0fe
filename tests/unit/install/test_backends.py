"""Package backends: picking one by family, and the commands the apt backend runs."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import fixtures
import testtools

from sysext_builder import plugins
from sysext_builder.errors import InstallError, PluginError
from sysext_builder.install.backends import PackageBackend, apt, for_family
from sysext_builder.install.cache import Cache

DPKG_QUERY = ["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${db:Status-Abbrev}\n"]


class FakeTarget:
    """Stands in for installer.InTarget: records argv, returns canned output."""

    def __init__(self, output: str = "") -> None:
        self.output = output
        self.streamed: list[tuple[list[str], str, dict[str, str]]] = []
        self.captured: list[list[str]] = []
        self.fail_next_install = False

    def stream(self, argv: Sequence[str], what: str,
               env: Mapping[str, str] | None = None) -> None:
        self.streamed.append((list(argv), what, dict(env or {})))
        if self.fail_next_install and "install" in argv:
            self.fail_next_install = False
            raise InstallError(f"{what} exited with status 100")

    def capture(self, argv: Sequence[str]) -> str:
        self.captured.append(list(argv))
        return self.output


class TestForFamily(testtools.TestCase):

    def test_debian_family_gets_apt(self) -> None:
        backend = for_family("debian", "ubuntu")
        self.assertIsInstance(backend, apt.AptBackend)
        self.assertIsInstance(backend, PackageBackend)
        self.assertEqual("apt", backend.name)

    def test_each_call_gets_a_fresh_backend(self) -> None:
        self.assertIsNot(for_family("debian", "debian"), for_family("debian", "debian"))

    def test_unknown_family_names_the_os_and_lists_backends(self) -> None:
        err = self.assertRaises(InstallError, for_family, "redhat", "fedora")
        self.assertEqual("no package backend for 'fedora' (family redhat)", err.message)
        self.assertEqual("available: apt", err.hint)
        self.assertEqual(26, err.exit_code)

    def test_no_family_at_all(self) -> None:
        err = self.assertRaises(InstallError, for_family, "", "plan9")
        self.assertEqual("no package backend for 'plan9' (family unknown)", err.message)

    def test_a_plugin_that_is_not_a_backend_is_a_plugin_error(self) -> None:
        self.useFixture(fixtures.MonkeyPatch(
            "sysext_builder.plugins.load_driver", lambda namespace, name: object))
        self.assertEqual(["apt"], plugins.available(plugins.PACKAGE_BACKENDS_NAMESPACE))
        err = self.assertRaises(PluginError, for_family, "debian", "debian")
        self.assertIn("'apt' is not a PackageBackend subclass", err.message)


class TestAptBackend(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.cache = Cache(Path(self.useFixture(fixtures.TempDir()).path) / "cache")
        self.backend = apt.AptBackend()
        self.target = FakeTarget()

    def test_installed_parses_dpkg_query_keeping_only_installed(self) -> None:
        self.target.output = ("bash\t5.2.15-2+b2\tii \n"
                              "libc6:amd64\t2.36-9\tii \n"
                              "removed\t1.0\trc \n"
                              "half\t2.0\tiF \n"
                              "garbage line\n"
                              "\n"
                              "vim\t2:9.0\tii\n")
        self.assertEqual({"bash": "5.2.15-2+b2", "libc6:amd64": "2.36-9", "vim": "2:9.0"},
                         self.backend.installed(self.target))
        self.assertEqual([DPKG_QUERY], self.target.captured)

    def test_install_updates_once_then_installs_without_recommends(self) -> None:
        self.backend.install(self.target, ["chrony", "linuxptp"], offline=False)
        self.backend.install(self.target, ["jq"], offline=False)
        argvs = [argv for argv, _, _ in self.target.streamed]
        self.assertEqual([[*apt._APT, "update"],
                          [*apt._APT, "install", "--no-install-recommends", "chrony", "linuxptp"],
                          [*apt._APT, "install", "--no-install-recommends", "jq"]], argvs)
        self.assertEqual(["apt-get update", "apt-get install chrony linuxptp",
                          "apt-get install jq"], [what for _, what, _ in self.target.streamed])
        for _, _, env in self.target.streamed:
            self.assertEqual("noninteractive", env["DEBIAN_FRONTEND"])
        self.assertEqual("apt-get", argvs[0][0])
        self.assertIn("-y", argvs[0])
        self.assertIn("Dpkg::Options::=--force-confold", argvs[0])

    def whats(self) -> list[str]:
        return [what for _, what, _ in self.target.streamed]

    def test_lists_are_refreshed_only_when_stale_or_the_sources_changed(self) -> None:
        lists = self.backend.binds(self.cache, "debian-12")[1][0]
        self.target.output = "deb http://deb.debian.org/debian bookworm main\n"
        self.backend.install(self.target, ["jq"], offline=False)
        self.assertEqual(["apt-get update", "apt-get install jq"], self.whats())
        (lists / "x_Packages").write_text("")  # apt-get update would have written them
        for output, expected in ((self.target.output, ["apt-get install jq"]),
                                 ("deb http://other/debian bookworm main\n",
                                  ["apt-get update", "apt-get install jq"])):
            self.target.streamed.clear()
            self.target.output = output
            backend = apt.AptBackend()
            backend.binds(self.cache, "debian-12")
            backend.install(self.target, ["jq"], offline=False)
            self.assertEqual(expected, self.whats(), output)
        stamp = lists / apt._STAMP
        sources = json.loads(stamp.read_text())["sources"]
        stamp.write_text(json.dumps({"sources": sources, "time": 0}))  # refreshed in 1970
        self.target.streamed.clear()
        backend = apt.AptBackend()
        backend.binds(self.cache, "debian-12")
        backend.install(self.target, ["jq"], offline=False)
        self.assertEqual(["apt-get update", "apt-get install jq"], self.whats(), "stale")
        self.target.streamed.clear()
        self.useFixture(fixtures.EnvironmentVariable(apt.REFRESH_ENV, "always"))
        backend = apt.AptBackend()
        backend.binds(self.cache, "debian-12")
        backend.install(self.target, ["jq"], offline=False)
        self.assertEqual(["apt-get update", "apt-get install jq"], self.whats(), "forced")

    def test_a_failure_on_old_lists_refreshes_and_retries_once(self) -> None:
        lists = self.backend.binds(self.cache, "debian-12")[1][0]
        self.backend.install(self.target, ["jq"], offline=False)  # writes the stamp
        (lists / "x_Packages").write_text("")
        self.target.streamed.clear()
        backend = apt.AptBackend()
        backend.binds(self.cache, "debian-12")
        self.target.fail_next_install = True
        backend.install(self.target, ["jq"], offline=False)
        self.assertEqual(["apt-get install jq", "apt-get update", "apt-get install jq"],
                         self.whats())

    def test_dpkg_does_not_fsync_in_the_throwaway_overlay(self) -> None:
        self.assertIn("Dpkg::Options::=--force-unsafe-io", apt._APT)

    def test_remove_purges_with_autoremove(self) -> None:
        self.backend.remove(self.target, ["gcc", "make"])
        self.assertEqual([([*apt._APT, "purge", "--autoremove", "gcc", "make"],
                           "apt-get purge gcc make", apt._ENV)], self.target.streamed)

    def test_binds_keep_archives_and_per_base_lists_in_the_cache(self) -> None:
        binds = self.backend.binds(self.cache, "debian-12-x86-64")
        self.assertEqual([(self.cache.path / "apt/archives", "/var/cache/apt/archives"),
                          (self.cache.path / "apt/lists/debian-12-x86-64",
                           "/var/lib/apt/lists")], binds)
        for host, _ in binds:
            self.assertTrue((host / "partial").is_dir())
        other = apt.AptBackend().binds(self.cache, "ubuntu-24.04-arm64")
        self.assertEqual(binds[0], other[0], "downloads are shared")
        self.assertNotEqual(binds[1][0], other[1][0], "package lists are not")

    def test_offline_without_cached_lists_names_the_packages(self) -> None:
        self.backend.binds(self.cache, "debian-12")
        err = self.assertRaises(InstallError, self.backend.install, self.target,
                                ["chrony", "jq"], offline=True)
        self.assertEqual("--offline: no cached package lists to install chrony, jq",
                         err.message)
        self.assertEqual([], self.target.streamed)

    def test_offline_with_cached_lists_installs_without_download_or_update(self) -> None:
        lists = self.backend.binds(self.cache, "debian-12")[1][0]
        (lists / "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages").write_text("")
        self.backend.install(self.target, ["chrony"], offline=True)
        self.assertEqual(
            [([*apt._APT, "--no-download", "install", "--no-install-recommends", "chrony"],
              "apt-get install chrony (offline)", apt._ENV)], self.target.streamed)
