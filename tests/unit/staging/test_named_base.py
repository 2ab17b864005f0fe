"""Named bases (``--base debian:...``): parsing, the mmdebstrap command, the cache entry
and reading the tree's dpkg status.  No mmdebstrap runs here (see
tests/functional/test_named_base.py)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import fixtures
import testtools

from sysext_builder import builder, config, runner
from sysext_builder.errors import EnvironmentUnusableError, InstallError, UsageError
from sysext_builder.install.cache import Cache
from sysext_builder.log import Timings
from sysext_builder.staging import base, debian
from sysext_builder.staging.debian import DebianBase

MIRROR = debian.DEFAULT_MIRROR


class TestParse(testtools.TestCase):

    def test_not_a_named_base_is_none(self) -> None:
        for text in ("/srv/base", "base.tar", "Debian:bookworm", "ubuntu:noble", ""):
            self.assertIsNone(debian.parse(text), text)

    def test_release_variant_and_packages(self) -> None:
        self.assertEqual(DebianBase("bookworm"), debian.parse("debian:bookworm"))
        self.assertEqual(DebianBase("trixie", "vm"), debian.parse("debian:trixie/vm"))
        self.assertEqual(DebianBase("trixie", "", ("openssl", "python3")),
                         debian.parse("debian:trixie+openssl,python3"))
        self.assertEqual(DebianBase("bookworm", "vm", ("g++", "libstdc++6")),
                         debian.parse("debian:bookworm/vm+libstdc++6,g++"))

    def test_normalised_spec(self) -> None:
        cases = {
            "debian:bookworm": "debian:bookworm",
            "debian:12": "debian:bookworm",
            "debian:13/vm": "debian:trixie/vm",
            "debian:trixie+python3,openssl,python3": "debian:trixie+openssl,python3",
            "debian:12/vm+zstd,curl,zstd,curl": "debian:bookworm/vm+curl,zstd",
        }
        for text, spec in cases.items():
            parsed = debian.parse(text)
            assert parsed is not None
            self.assertEqual(spec, parsed.spec, text)
            self.assertEqual(parsed, debian.parse(spec), "the spec parses to the same base")

    def test_malformed_spec_names_base_and_spec_with_the_grammar(self) -> None:
        for text in ("debian:", "debian:/vm", "debian:bookworm/", "debian:bookworm/vm/x",
                     "debian:bookworm+", "debian:bookworm//vm"):
            err = self.assertRaises(UsageError, debian.parse, text)
            self.assertEqual(f"--base {text}: not a named base", err.message)
            self.assertIn("debian:RELEASE[/VARIANT][+PKG,PKG...]", err.hint or "")
            self.assertEqual(2, err.exit_code)

    def test_unknown_release_lists_the_known_ones(self) -> None:
        err = self.assertRaises(UsageError, debian.parse, "debian:sid+curl")
        self.assertEqual("--base debian:sid+curl: unknown Debian release 'sid'", err.message)
        self.assertEqual("known releases: bookworm (12), trixie (13)", err.hint)
        err = self.assertRaises(UsageError, debian.parse, "debian:11")
        self.assertIn("'11'", err.message)

    def test_unknown_variant_lists_the_known_ones(self) -> None:
        err = self.assertRaises(UsageError, debian.parse, "debian:bookworm/desktop")
        self.assertEqual("--base debian:bookworm/desktop: unknown variant 'desktop'",
                         err.message)
        self.assertIn("vm", err.hint or "")

    def test_package_names_are_checked(self) -> None:
        for bad in ("Python3", "a", "-x", "py thon", "a1,,b1", "ok,.bad", "x;rm"):
            text = f"debian:bookworm+{bad}"
            err = self.assertRaises(UsageError, debian.parse, text)
            self.assertTrue(err.message.startswith(f"--base {text}: "), err.message)
            self.assertIn("is not a Debian package name", err.message)
            self.assertIn("[a-z0-9][a-z0-9+.-]+", err.hint or "")


class TestPackagesAndArgv(testtools.TestCase):

    def test_default_variant_is_systemd_without_python_or_openssl(self) -> None:
        packages = DebianBase("bookworm").packages_to_include("amd64")
        self.assertEqual(("systemd", "systemd-sysv", "udev"), packages)
        self.assertNotIn("python3", packages)
        self.assertNotIn("openssl", packages)

    def test_vm_variant_adds_kernel_initramfs_and_network(self) -> None:
        self.assertEqual(("systemd", "systemd-sysv", "udev", "linux-image-cloud-arm64",
                          "initramfs-tools", "iproute2", "systemd-resolved"),
                         DebianBase("trixie", "vm").packages_to_include("arm64"))
        err = self.assertRaises(UsageError, DebianBase("trixie", "vm").packages_to_include,
                                "riscv64")
        self.assertIn("--base debian:trixie/vm: no kernel package known for riscv64",
                      err.message)

    def test_extra_packages_come_last_once(self) -> None:
        parsed = debian.parse("debian:bookworm+udev,python3")
        assert parsed is not None
        self.assertEqual(("systemd", "systemd-sysv", "udev", "python3"),
                         parsed.packages_to_include("amd64"))

    def test_mmdebstrap_argv(self) -> None:
        parsed = debian.parse("debian:12+openssl")
        assert parsed is not None
        argv = debian.mmdebstrap_argv(parsed, Path("/c/bases/.tmp"), arch="amd64",
                                      mirror="http://mirror.example/debian")
        self.assertEqual([
            "mmdebstrap", "--mode=root", "--variant=minbase", "--format=directory",
            "--architectures=amd64", "--include=systemd,systemd-sysv,udev,openssl",
            "--dpkgopt=path-exclude=/usr/share/man/*",
            "--dpkgopt=path-exclude=/usr/share/info/*",
            "--dpkgopt=path-exclude=/usr/share/doc/*",
            "--dpkgopt=path-include=/usr/share/doc/*/copyright",
            "--dpkgopt=path-exclude=/usr/share/locale/*",
            "--dpkgopt=path-include=/usr/share/locale/locale.alias",
            "--skip=cleanup/apt/lists",
            '--customize-hook=chroot "$1" systemctl enable --quiet '
            'systemd-networkd.service systemd-sysext.service',
            "bookworm", "/c/bases/.tmp", "http://mirror.example/debian"], argv)

    def test_mirror_from_environment(self) -> None:
        self.assertEqual(MIRROR, debian.mirror_from({}))
        self.assertEqual(MIRROR, debian.mirror_from({"SYSEXT_DEBIAN_MIRROR": " "}))
        self.assertEqual("http://m/debian",
                         debian.mirror_from({"SYSEXT_DEBIAN_MIRROR": "http://m/debian"}))

    def test_a_mirror_with_a_credential_is_refused_without_showing_it(self) -> None:
        for url in ("http://u:s3cr3t@m/debian", "https://m/debian?token=s3cr3t"):
            exc = self.assertRaises(UsageError, debian.mirror_from,
                                    {"SYSEXT_DEBIAN_MIRROR": url})
            self.assertIn("SYSEXT_DEBIAN_MIRROR=", exc.message)
            self.assertIn("credential", exc.message)
            self.assertNotIn("s3cr3t", exc.message + str(exc.hint))


class TestCacheKey(testtools.TestCase):

    def entry(self, text: str, arch: str = "amd64", mirror: str = MIRROR) -> str:
        parsed = debian.parse(text)
        assert parsed is not None
        return parsed.entry_name(arch, mirror)

    def test_key_is_stable_across_runs(self) -> None:
        # A changed value orphans every cached base: bump debian.RECIPE on purpose instead.
        self.assertEqual("debian-bookworm-amd64-3df1f202b2778b4fb4cb",
                         self.entry("debian:bookworm"))

    def test_equal_specs_share_an_entry(self) -> None:
        self.assertEqual(self.entry("debian:bookworm/vm+b1,a1"),
                         self.entry("debian:12/vm+a1,b1,a1"))

    def test_spec_arch_and_mirror_change_the_entry(self) -> None:
        first = self.entry("debian:bookworm")
        others = [self.entry("debian:trixie"), self.entry("debian:bookworm/vm"),
                  self.entry("debian:bookworm+curl"), self.entry("debian:bookworm", "arm64"),
                  self.entry("debian:bookworm", mirror="http://other/debian")]
        self.assertEqual(len(others), len(set(others)))
        self.assertNotIn(first, others)
        self.assertTrue(self.entry("debian:bookworm/vm").startswith("debian-bookworm-vm-amd64-"))


class TestCachedTree(testtools.TestCase):
    """cached_tree() with DebianBase.make faked: reuse, atomic creation, failure."""

    def setUp(self) -> None:
        super().setUp()
        self.cache = Path(self.useFixture(fixtures.TempDir()).path) / "bases"
        self.log = self.useFixture(fixtures.FakeLogger(level=logging.INFO))
        self.useFixture(fixtures.MonkeyPatch("os.geteuid", lambda: 0))
        self.made: list[Path] = []
        self.fail_with: Exception | None = None
        self.useFixture(fixtures.MonkeyPatch(
            "sysext_builder.staging.debian.DebianBase.make", self.fake_make))
        self.base = DebianBase("bookworm")

    def fake_make(self, _base: DebianBase, dest: Path, **_kw: object) -> None:
        self.made.append(dest)
        (dest / "usr/bin").mkdir(parents=True)
        (dest / "usr/bin/systemctl").write_text("")
        if self.fail_with is not None:
            raise self.fail_with

    def tree(self) -> Path:
        return debian.cached_tree(self.base, self.cache, arch="amd64", mirror=MIRROR)

    def test_made_once_beside_the_final_name_then_reused(self) -> None:
        first = self.tree()
        self.assertEqual(self.cache / self.base.entry_name("amd64", MIRROR), first)
        self.assertEqual([self.cache / f".{first.name}.tmp-{runner.temp_tag()}"], self.made)
        self.assertTrue((first / "usr/bin/systemctl").is_file())
        self.assertEqual(first, self.tree())
        self.assertEqual(1, len(self.made), "the second open must not make it again")
        self.assertIn(f"base debian:bookworm: reused {first}", self.log.output)

    def test_failure_leaves_no_entry(self) -> None:
        self.fail_with = InstallError("--base debian:bookworm: mmdebstrap failed")
        self.assertRaises(InstallError, self.tree)
        self.assertEqual([], os.listdir(self.cache))

    def test_interruption_leaves_no_entry(self) -> None:
        self.fail_with = KeyboardInterrupt()
        self.assertRaises(KeyboardInterrupt, self.tree)
        self.assertEqual([], os.listdir(self.cache))

    def test_leftover_of_a_killed_run_is_removed(self) -> None:
        stale = self.cache / f".{self.base.entry_name('amd64', MIRROR)}.tmp-999999999-0badcafe.1"
        (stale / "etc").mkdir(parents=True)
        final = self.tree()
        self.assertEqual([final.name], os.listdir(self.cache))

    def test_a_live_builds_temporary_is_kept(self) -> None:
        live = self.cache / f".other-entry.tmp-{runner.temp_tag()}"  # this process is alive
        (live / "etc").mkdir(parents=True)
        final = self.tree()
        self.assertEqual(sorted([final.name, live.name]), sorted(os.listdir(self.cache)))

    def test_making_needs_root(self) -> None:
        self.useFixture(fixtures.MonkeyPatch("os.geteuid", lambda: 1000))
        err = self.assertRaises(EnvironmentUnusableError, self.tree)
        self.assertEqual("--base debian:bookworm: named bases need root", err.message)
        self.assertEqual([], self.made)


class TestMake(testtools.TestCase):
    """make() with the runner faked: the command, the log file, the one-line error."""

    TAIL = ["I: running apt-get update...", "E: Unable to locate package no-such-xyz",
            "E: apt-get --yes install failed", "", "W: hooklistener errored out"]

    def setUp(self) -> None:
        super().setUp()
        self.dir = Path(self.useFixture(fixtures.TempDir()).path)
        self.useFixture(fixtures.MonkeyPatch("sysext_builder.runner.require_tool",
                                             lambda tool: tool))
        self.argv: list[list[str]] = []
        self.code = 0

        def stream(argv: list[str], **kw: object) -> tuple[int, list[str]]:
            self.argv.append(list(argv))
            on_line = kw["on_line"]
            for line in self.TAIL:
                on_line(line)  # type: ignore[operator]
            return self.code, list(self.TAIL)

        self.useFixture(fixtures.MonkeyPatch("sysext_builder.runner.stream", stream))
        self.parsed = debian.parse("debian:bookworm+no-such-xyz")
        assert self.parsed is not None

    def make(self) -> None:
        assert self.parsed is not None
        self.parsed.make(self.dir / "tree", arch="amd64", mirror=MIRROR,
                         log_path=self.dir / "tree.log")

    def test_runs_in_a_private_mount_namespace_and_logs(self) -> None:
        self.make()
        assert self.parsed is not None
        self.assertEqual(["unshare", "--mount", "--propagation", "private", "--fork", "--",
                          *debian.mmdebstrap_argv(self.parsed, self.dir / "tree",
                                                  arch="amd64", mirror=MIRROR)],
                         self.argv[0])
        log = (self.dir / "tree.log").read_text().splitlines()
        self.assertTrue(log[0].startswith("# unshare "))
        self.assertEqual(self.TAIL, log[1:])

    def test_failure_is_one_line_with_the_error_lines_and_the_log(self) -> None:
        self.code = 1
        err = self.assertRaises(InstallError, self.make)
        self.assertEqual("--base debian:bookworm+no-such-xyz: mmdebstrap failed with exit "
                         "status 1: E: Unable to locate package no-such-xyz | "
                         "E: apt-get --yes install failed", err.message)
        self.assertNotIn("\n", err.message)
        self.assertEqual(f"full log: {self.dir / 'tree.log'}", err.hint)

    def test_failure_without_error_lines_quotes_the_last_lines(self) -> None:
        self.code = 2
        self.TAIL = ["one", "two", "three", "four"]
        err = self.assertRaises(InstallError, self.make)
        self.assertTrue(err.message.endswith(": two | three | four"), err.message)

    def test_long_lines_are_cut(self) -> None:
        self.code = 25
        self.TAIL = ["E: Unable to locate package x", "E: setup failed: apt-get " + "-o X " * 80]
        err = self.assertRaises(InstallError, self.make)
        quoted = err.message.split("exit status 25: ", 1)[1].split(" | ")
        self.assertEqual("E: Unable to locate package x", quoted[0])
        self.assertEqual(debian.ERROR_WIDTH, len(quoted[1]))
        self.assertTrue(quoted[1].endswith("..."))


STATUS = """\
Package: libsystemd0
Status: install ok installed
Architecture: amd64
Version: 252.39-1~deb12u1

Package: systemd
Status: install ok installed
Priority: important
Architecture: amd64
Version: 252.39-1~deb12u1
Description: system and service manager
 systemd is a system and service manager for Linux.
 .
 Version: 1 (a continuation line, not a field)

Package: python3
Status: deinstall ok config-files
Architecture: amd64
Version: 3.11.2-1+b1
"""


class TestDpkgStatus(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.tree = Path(self.useFixture(fixtures.TempDir()).path)

    def status(self, text: str) -> None:
        path = self.tree / "var/lib/dpkg/status"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def test_installed_packages(self) -> None:
        self.status(STATUS)
        self.assertEqual({"libsystemd0": "252.39-1~deb12u1", "systemd": "252.39-1~deb12u1"},
                         debian.installed_packages(self.tree))

    def test_systemd_version_from_dpkg_status(self) -> None:
        self.status(STATUS)
        self.assertEqual(252, debian.systemd_version(self.tree))
        self.status("Package: systemd\nStatus: install ok installed\nVersion: 1:257.8-1~deb13u2\n")
        self.assertEqual(257, debian.systemd_version(self.tree))

    def test_systemd_version_from_the_shared_library_name(self) -> None:
        self.status(STATUS.replace("Package: systemd\nStatus: install ok installed",
                                   "Package: systemd\nStatus: deinstall ok config-files"))
        self.assertIsNone(debian.systemd_version(self.tree))
        (self.tree / "usr/lib/systemd").mkdir(parents=True)
        (self.tree / "usr/lib/systemd/libsystemd-shared-256.7-1.fc41.so").write_text("")
        self.assertEqual(256, debian.systemd_version(self.tree))

    def test_unknown_without_status_or_library(self) -> None:
        self.assertIsNone(debian.systemd_version(self.tree))
        self.assertEqual({}, debian.installed_packages(self.tree))

    def test_hostile_status_files_are_not_followed_or_read_whole(self) -> None:
        log = self.useFixture(fixtures.FakeLogger(level=logging.WARNING))
        (self.tree / "var/lib/dpkg").mkdir(parents=True)
        status = self.tree / "var/lib/dpkg/status"
        outside = Path(self.useFixture(fixtures.TempDir()).path) / "status"
        outside.write_text(STATUS)
        status.symlink_to(outside)  # an absolute link resolves inside the tree: missing
        self.assertEqual({}, debian.installed_packages(self.tree))
        status.unlink()
        status.symlink_to("/dev/zero")
        self.assertEqual({}, debian.installed_packages(self.tree))
        status.unlink()
        os.mkfifo(status)
        self.assertEqual({}, debian.installed_packages(self.tree))
        self.assertIn("not a regular file", log.output)
        status.unlink()
        with status.open("wb") as f:
            f.truncate(debian.MAX_STATUS_BYTES + 1)
        self.assertEqual({}, debian.installed_packages(self.tree))


class TestOpenNamedBase(testtools.TestCase):
    """open_base() and the build config with a named base."""

    def setUp(self) -> None:
        super().setUp()
        self.dir = Path(self.useFixture(fixtures.TempDir()).path)
        self.useFixture(fixtures.FakeLogger(level=logging.INFO))
        self.useFixture(fixtures.MonkeyPatch("os.geteuid", lambda: 0))
        tree = self.dir / "tree"
        (tree / "etc").mkdir(parents=True)
        (tree / "etc/os-release").write_text("ID=debian\nVERSION_ID=12\n")
        self.asked: list[DebianBase] = []

        def cached_tree(named: DebianBase, cache_dir: Path) -> Path:
            self.asked.append(named)
            return tree

        self.useFixture(fixtures.MonkeyPatch(
            "sysext_builder.staging.debian.cached_tree", cached_tree))

    def test_source_is_the_normalised_spec(self) -> None:
        opened = base.open_base("debian:12+zstd,curl", self.dir / "cache")
        self.assertEqual("debian:bookworm+curl,zstd", opened.source)
        self.assertEqual("debian", opened.os_release["ID"])
        self.assertEqual([DebianBase("bookworm", "", ("curl", "zstd"))], self.asked)
        # a Path (e.g. from argparse's type=Path) names it too
        self.assertEqual("debian:bookworm", base.open_base(Path("debian:12"), self.dir).source)

    def test_not_root_names_the_spec(self) -> None:
        self.useFixture(fixtures.MonkeyPatch("os.geteuid", lambda: 1000))
        err = self.assertRaises(EnvironmentUnusableError, base.open_base, "debian:12",
                                self.dir)
        self.assertEqual("building against --base debian:bookworm needs root", err.message)
        self.assertIn("mmdebstrap", err.hint or "")

    def test_builder_records_the_normalised_spec(self) -> None:
        cfg = config.BuildConfig(elements=("x",), base="debian:13/vm")
        recorded, opened = builder._open_base(cfg, Cache(self.dir / "cache"), Timings())
        assert opened is not None
        self.assertEqual("debian:trixie/vm", recorded.base)
        self.assertEqual(cfg.elements, recorded.elements)

    def test_config_keeps_a_named_base_as_text(self) -> None:
        from sysext_builder.cli import create

        self.assertEqual(config.NAMED_BASE_PREFIXES, (debian.PREFIX,))
        args = create.build_parser().parse_args(["a", "--base", "debian:bookworm/vm+curl"])
        cfg = config.from_values(vars(args), elements=args.elements, environ={})
        self.assertEqual("debian:bookworm/vm+curl", cfg.base)
        self.assertEqual(["--base", "debian:bookworm/vm+curl"],
                         config.inherited_argv(vars(args)))
        args = create.build_parser().parse_args(["a", "--base", "rel/tree"])
        self.assertEqual(Path("rel/tree"), config.from_values(
            vars(args), elements=args.elements, environ={}).base)
        self.assertEqual(["--base", str(Path("rel/tree").absolute())],
                         config.inherited_argv(vars(args)))

