"""The DIB variables hooks see, on the host side and in the chroot, with and without a base."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import fixtures
import testtools

from sysext_builder import paths
from sysext_builder.config import BuildConfig
from sysext_builder.staging import buildenv
from sysext_builder.staging.workspace import Workspace

_PATH = "/usr/bin:/bin"
_INSIDE = {"tmp": "/tmp/sysext-build", "hooks": "/tmp/in_target.d",
           "artifacts": "/tmp/sysext-artifacts", "state": "/tmp/sysext-state",
           "lib": "/tmp/sysext-lib", "elements": "/tmp/sysext-elements"}
_RELEASE = {"ID": "debian", "VERSION_ID": "12", "VERSION_CODENAME": "bookworm"}


class TestArch(testtools.TestCase):

    def test_systemd_names_map_to_dib_names(self) -> None:
        for systemd, dib in (("x86-64", "amd64"), ("arm64", "arm64"), ("x86", "i386"),
                             ("arm", "armhf"), ("ppc64-le", "ppc64el"), ("s390x", "s390x"),
                             ("riscv64", "riscv64"), ("loongarch64", "loong64"),
                             ("mips64-le", "mips64el")):
            self.assertEqual(dib, buildenv.dib_arch(systemd), systemd)

    def test_unknown_names_are_kept(self) -> None:
        self.assertEqual("alpha", buildenv.dib_arch("alpha"))

    def test_any_is_the_build_hosts(self) -> None:
        self.useFixture(fixtures.MonkeyPatch("platform.machine", lambda: "aarch64"))
        self.assertEqual("arm64", buildenv.dib_arch("_any"))


class _Env(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.top = Path(self.useFixture(fixtures.TempDir()).path)
        self.ws = self.useFixture(_WorkspaceFixture(self.top)).ws

    def config(self, **environ: str) -> BuildConfig:
        return BuildConfig(elements=("a", "b"), output=str(self.top / "out" / "img"),
                           cache_dir=self.top / "cache", element_paths=("/e1",),
                           environ={"PATH": _PATH, **environ})

    def base(self, *files: str) -> Path:
        root = self.top / "base"
        for rel in files:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text("")
        root.mkdir(exist_ok=True)
        return root

    def host(self, config: BuildConfig | None = None, base: Path | None = None,
             arch: str = "x86-64") -> dict[str, str]:
        config = config or self.config()
        target_root = self.ws.path / "merged" if base else self.ws.root
        return buildenv.host_environment(
            config, self.ws, ["a", "b"], arch, target_root,
            base_release=_RELEASE if base else None, base_root=base,
            search_path=[Path("/e1"), Path("/e2")])


class _WorkspaceFixture(fixtures.Fixture):

    def __init__(self, top: Path) -> None:
        super().__init__()
        self.top = top

    def _setUp(self) -> None:
        self.ws = Workspace(self.top / "work")
        self.addCleanup(self.ws.__exit__, None, None, None)


class TestHostSide(_Env):

    def test_without_a_base(self) -> None:
        env = self.host()
        self.assertEqual(str(self.ws.root), env["TMP_MOUNT_PATH"])
        self.assertEqual(env["TARGET_ROOT"], env["TMP_MOUNT_PATH"])
        self.assertEqual("amd64", env["ARCH"])
        self.assertEqual("x86-64", env["SYSEXT_ARCH"])
        self.assertEqual("systemd", env["DIB_INIT_SYSTEM"])
        self.assertEqual("3", env["DIB_PYTHON_VERSION"])
        self.assertEqual("python3", env["DIB_PYTHON"])
        self.assertEqual(sys.executable, env["DIB_PYTHON_EXEC"])
        self.assertEqual(str(self.top / "cache" / "dib-image-cache"), env["DIB_IMAGE_CACHE"])
        self.assertEqual("source", env["DIB_DEFAULT_INSTALLTYPE"])
        self.assertEqual("/e1:/e2", env["ELEMENTS_PATH"])
        self.assertEqual("a b", env["IMAGE_ELEMENT"])
        self.assertEqual(["--element-path", "/e1", "-o", str(self.top / "out" / "img"),
                          "a", "b"], shlex.split(env["DIB_ARGS"]))
        self.assertNotIn("DISTRO_NAME", env)

    def test_image_cache_default_is_the_users_cache(self) -> None:
        config = BuildConfig(elements=("a",), environ={"PATH": _PATH})
        env = buildenv.host_environment(config, self.ws, ["a"], "arm64", self.ws.root)
        self.assertEqual(str(paths.user_cache_dir() / "dib-image-cache"),
                         env["DIB_IMAGE_CACHE"])
        self.assertEqual("", env["ELEMENTS_PATH"])
        self.assertEqual("arm64", env["ARCH"])

    def test_with_a_systemd_python3_base(self) -> None:
        base = self.base("usr/lib/systemd/systemd", "usr/bin/python3.11", "usr/bin/python3")
        env = self.host(base=base, arch="arm64")
        self.assertEqual(str(self.ws.path / "merged"), env["TMP_MOUNT_PATH"])
        self.assertEqual("systemd", env["DIB_INIT_SYSTEM"])
        self.assertEqual("3", env["DIB_PYTHON_VERSION"])
        self.assertEqual("python3", env["DIB_PYTHON"])
        self.assertEqual("arm64", env["ARCH"])
        self.assertEqual("debian", env["DISTRO_NAME"])
        self.assertEqual("bookworm", env["DIB_RELEASE"])

    def test_base_with_only_python2_and_openrc(self) -> None:
        base = self.base("usr/bin/python2.7", "sbin/openrc")
        env = self.host(base=base)
        self.assertEqual("openrc", env["DIB_INIT_SYSTEM"])
        self.assertEqual("2", env["DIB_PYTHON_VERSION"])
        self.assertEqual("python2", env["DIB_PYTHON"])

    def test_base_without_python_or_init(self) -> None:
        env = self.host(base=self.base("etc/os-release"))
        self.assertEqual("3", env["DIB_PYTHON_VERSION"])
        self.assertEqual("systemd", env["DIB_INIT_SYSTEM"])

    def test_init_d_alone_is_still_systemd(self) -> None:
        env = self.host(base=self.base("etc/init.d/rc"))
        self.assertEqual("systemd", env["DIB_INIT_SYSTEM"])

    def test_init_detection_does_not_follow_absolute_links(self) -> None:
        base = self.base("sbin/openrc")
        (base / "usr/lib/systemd").mkdir(parents=True)
        (base / "usr/lib/systemd/systemd").symlink_to("/nonexistent/systemd")
        self.assertEqual("systemd", self.host(base=base)["DIB_INIT_SYSTEM"])

    def test_the_users_dib_defaults_win(self) -> None:
        env = self.host(self.config(DIB_DEFAULT_INSTALLTYPE="package", DIB_PYTHON_VERSION="2",
                                    DIB_IMAGE_CACHE="/srv/cache", DIB_INIT_SYSTEM="openrc",
                                    DIB_MY_SETTING="x y"))
        self.assertEqual("package", env["DIB_DEFAULT_INSTALLTYPE"])
        self.assertEqual("2", env["DIB_PYTHON_VERSION"])
        self.assertEqual("/srv/cache", env["DIB_IMAGE_CACHE"])
        self.assertEqual("openrc", env["DIB_INIT_SYSTEM"])
        self.assertEqual("x y", env["DIB_MY_SETTING"])

    def test_the_builders_paths_win(self) -> None:
        env = self.host(self.config(TMP_MOUNT_PATH="/", TARGET_ROOT="/", ARCH="s390x",
                                    ELEMENTS_PATH="/elsewhere", DIB_ARGS="x",
                                    DIB_PYTHON_EXEC="/bin/false"))
        self.assertEqual(str(self.ws.root), env["TMP_MOUNT_PATH"])
        self.assertEqual(str(self.ws.root), env["TARGET_ROOT"])
        self.assertEqual("amd64", env["ARCH"])
        self.assertEqual("/e1:/e2", env["ELEMENTS_PATH"])
        self.assertEqual(sys.executable, env["DIB_PYTHON_EXEC"])
        self.assertNotEqual("x", env["DIB_ARGS"])

    def test_dib_env_exports_the_dib_variables(self) -> None:
        env = self.host(self.config(DIB_MY_SETTING="it's $here"))
        lines = env["DIB_ENV"].splitlines()
        self.assertIn("export DIB_MY_SETTING=" + shlex.quote("it's $here"), lines)
        self.assertIn("export DIB_INIT_SYSTEM=systemd", lines)
        names = [line.split()[1].split("=")[0] for line in lines]
        self.assertEqual(sorted(names), names)
        self.assertNotIn("DIB_ENV", names)
        self.assertNotIn("DIB_PYTHON_EXEC", names)
        self.assertTrue(all(n.startswith("DIB_") for n in names))

    def test_name_variables(self) -> None:
        target = buildenv.Target(Path("out"), "img", {})
        self.assertEqual({"SYSEXT_NAME": "img", "IMAGE_NAME": "img"},
                         buildenv.name_variables(target))


class TestChrootSide(_Env):

    def test_paths_inside(self) -> None:
        base = self.base("usr/lib/systemd/systemd", "usr/bin/python3.11")
        host = self.host(base=base)
        inside = buildenv.chroot_environment(host, _INSIDE)
        self.assertEqual("/", inside["TMP_MOUNT_PATH"])
        self.assertEqual("/", inside["TARGET_ROOT"])
        for key in ("DIB_PYTHON_EXEC", "DIB_IMAGE_CACHE", "ELEMENTS_PATH", "SYSEXT_BASE_ROOT"):
            self.assertIn(key, host)
            self.assertNotIn(key, inside)
        for key in ("ARCH", "SYSEXT_ARCH", "DIB_INIT_SYSTEM", "DIB_PYTHON_VERSION",
                    "DIB_PYTHON", "DIB_DEFAULT_INSTALLTYPE", "DIB_ARGS", "DIB_ENV",
                    "IMAGE_ELEMENT", "DISTRO_NAME", "DIB_RELEASE"):
            self.assertEqual(host[key], inside[key], key)

    def test_no_host_path_leaks_inside(self) -> None:
        host = self.host(base=self.base("usr/lib/systemd/systemd"))
        inside = buildenv.chroot_environment(host, _INSIDE)
        for key, value in inside.items():
            if key not in ("PATH", "DIB_ARGS", "DIB_ENV", "HOME"):
                self.assertNotIn(str(self.top), value, key)


class TestOffline(_Env):

    def test_offline_sets_dib_offline(self) -> None:
        config = BuildConfig(elements=("a",), environ={"PATH": _PATH}, offline=True)
        env = buildenv.host_environment(config, self.ws, ["a"], "x86-64", self.ws.root)
        self.assertEqual("1", env["DIB_OFFLINE"])
        self.assertIn("export DIB_OFFLINE=1", env["DIB_ENV"].splitlines())
        self.assertNotIn("DIB_OFFLINE", self.host())
