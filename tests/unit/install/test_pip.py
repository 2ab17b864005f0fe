"""Python package requests: the shell side, spec rules, the target's site, installs.

Installs use wheels made here and a project built offline; no network.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import fixtures
import testtools

from sysext_builder.errors import InstallError
from sysext_builder.install import pip
from sysext_builder.install.cache import Cache
from tests.base import PIP_ISOLATION, PipIsolated

REPO = Path(__file__).resolve().parents[3]
LIB = REPO / "sysext_builder" / "lib"
PYDEMO = REPO / "tests" / "fixtures" / "packages" / "pydemo"
HOST = f"{sys.version_info.major}.{sys.version_info.minor}"
#: pip must never reach an index in these tests: make any attempt fail fast.  It reads
#: no pip.conf of this host (/etc/pip.conf, /etc/xdg/pip: PIP_ISOLATION) either.
NO_NET = {**os.environ, **PIP_ISOLATION, "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
          "PIP_RETRIES": "0", "PIP_TIMEOUT": "1"}


def _hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(
        b"=").decode()


def make_wheel(directory: Path, name: str, version: str, *, deps: tuple[str, ...] = (),
               script: str | None = None, pure: bool = True) -> Path:
    """Write a minimal, valid wheel ``name-version-py3-none-any.whl``."""
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"def main():\n    print('{name} {version}')\n".encode(),
        f"{info}/METADATA": (f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                             + "".join(f"Requires-Dist: {d}\n" for d in deps)).encode(),
        f"{info}/WHEEL": (f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: "
                          f"{'true' if pure else 'false'}\nTag: py3-none-any\n").encode(),
    }
    if script:
        files[f"{info}/entry_points.txt"] = f"[console_scripts]\n{script} = {name}:main\n".encode()
    record = "".join(f"{p},{_hash(d)},{len(d)}\n" for p, d in files.items()) + f"{info}/RECORD,,\n"
    files[f"{info}/RECORD"] = record.encode()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in files.items():
            archive.writestr(member, data)
    return path


def make_root(path: Path, *, debian: bool = True, version: str = HOST) -> Path:
    stdlib = path / "usr/lib" / f"python{version}"
    stdlib.mkdir(parents=True)
    (stdlib / "os.py").write_text("")
    if debian:
        (path / "usr/lib/python3/dist-packages").mkdir(parents=True)
    else:
        (stdlib / "site-packages").mkdir()
    return path


class TestRequests(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.state = Path(self.useFixture(fixtures.TempDir()).path)

    def bash(self, script: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-c", script, "40-hook"], capture_output=True, text=True,
                              check=False, env={"PATH": os.environ["PATH"], **env})

    def test_shell_function_appends_requests_the_parser_reads(self) -> None:
        done = self.bash(f"set -eu -o pipefail; source {LIB}/common-functions.sh; "
                         "sysext_pip_install glean==1.24.0 /tmp/glean.git; "
                         "sysext_pip_install glean==1.24.0 'x @ git+https://h/x@v1'",
                         SYSEXT_STATE_DIR=str(self.state))
        self.assertEqual(0, done.returncode, done.stderr)
        text = (self.state / "pip-requests").read_text()
        self.assertEqual("# requested by 40-hook\nglean==1.24.0\n/tmp/glean.git\n"
                         "# requested by 40-hook\nglean==1.24.0\nx @ git+https://h/x@v1\n", text)
        self.assertEqual(["glean==1.24.0", "/tmp/glean.git", "x @ git+https://h/x@v1"],
                         pip.parse_requests(self.state / "pip-requests"))

    def test_standalone_helper_is_executable_and_does_the_same(self) -> None:
        helper = LIB / "pip-install"
        self.assertTrue(os.access(helper, os.X_OK))
        done = subprocess.run([str(helper), "six==1.16.0"], capture_output=True, text=True,
                              check=False, env={"PATH": os.environ["PATH"],
                                                "SYSEXT_STATE_DIR": str(self.state)})
        self.assertEqual(0, done.returncode, done.stderr)
        self.assertEqual(["six==1.16.0"], pip.take_requests(self.state))
        self.assertFalse((self.state / "pip-requests").exists())
        self.assertEqual([], pip.take_requests(self.state))

    def test_shell_refuses_options_and_needs_the_builder(self) -> None:
        lib = f"source {LIB}/common-functions.sh; "
        done = self.bash(lib + "sysext_pip_install -r reqs.txt", SYSEXT_STATE_DIR=str(self.state))
        self.assertEqual(1, done.returncode)
        self.assertIn("'-r' is not a package spec", done.stderr)
        self.assertFalse((self.state / "pip-requests").exists())
        done = self.bash(lib + "sysext_pip_install six==1.16.0")
        self.assertNotEqual(0, done.returncode)
        self.assertIn("not running under sysext-create", done.stderr)


class TestValidateSpec(testtools.TestCase):

    def test_pinned_paths_and_git_refs_are_accepted(self) -> None:
        cases = {"glean==1.24.0": "pinned", "Py_Yaml.x==6.0.1": "pinned",
                 "requests[socks]==2.31.0": "pinned", "pkg == 1.0.post1+local": "pinned",
                 "/tmp/glean.git": "path", "/srv/wheels/x-1.0-py3-none-any.whl": "path",
                 "git+https://opendev.org/opendev/glean@1.24.0": "git",
                 "git+file:///srv/git/glean@0123abc#egg=glean": "git",
                 "glean @ git+https://user@opendev.org/opendev/glean@main": "git"}
        for spec, kind in cases.items():
            self.assertEqual(kind, pip.validate_spec(spec), spec)

    def test_unpinned_specs_are_refused_with_a_hint(self) -> None:
        for spec in ("glean", "glean>=1.0", "glean==1.*", "glean~=1.2", "relative/dir",
                     "https://example.org/x.whl"):
            err = self.assertRaises(InstallError, pip.validate_spec, spec)
            self.assertEqual(f"Python package request {spec!r} is not pinned", err.message)
            self.assertIn("name==version", err.hint or "")

    def test_git_without_ref_and_options_are_refused(self) -> None:
        err = self.assertRaises(InstallError, pip.validate_spec,
                                "git+https://user@opendev.org/opendev/glean")
        self.assertIn("has no git ref", err.message)
        for spec in ("-e /tmp/x", "--index-url=http://evil/", "", "a==1 b==2"):
            err = self.assertRaises(InstallError, pip.validate_spec, spec)
            self.assertIn("is not a package spec", err.message)


class TestTargetSite(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.tmp = Path(self.useFixture(fixtures.TempDir()).path)

    def test_debian_layout_in_root_or_base(self) -> None:
        root = make_root(self.tmp / "root", version="3.11")
        self.assertEqual(root / "usr/lib/python3/dist-packages", pip.target_site(root))
        self.assertEqual(pip.TargetPython(Path("usr/lib/python3/dist-packages"), "3.11"),
                         pip.target_python(root))
        base = make_root(self.tmp / "base", version="3.12")
        upper = self.tmp / "upper"
        upper.mkdir()
        self.assertEqual(upper / "usr/lib/python3/dist-packages", pip.target_site(upper, base))
        self.assertEqual("3.12", pip.target_python(upper, base).version)

    def test_site_packages_layout_picks_the_highest_version(self) -> None:
        root = make_root(self.tmp / "root", debian=False, version="3.9")
        (root / "usr/lib/python3.12/site-packages").mkdir(parents=True)
        (root / "usr/lib64/python3.12").mkdir(parents=True)  # Fedora keeps the stdlib here
        (root / "usr/lib64/python3.12/os.py").write_text("")
        self.assertEqual(pip.TargetPython(Path("usr/lib/python3.12/site-packages"), "3.12"),
                         pip.target_python(root))

    def test_no_python_names_what_was_requested(self) -> None:
        root = self.tmp / "root"
        (root / "usr/lib").mkdir(parents=True)
        err = self.assertRaises(InstallError, pip.target_site, root, self.tmp / "base",
                                wanted=["glean==1.24.0"])
        self.assertEqual(f"Python packages glean==1.24.0 were requested, but the target has no "
                         f"Python: neither usr/lib/python3/dist-packages nor "
                         f"usr/lib/python3.X/site-packages exists in {root} or the base "
                         f"{self.tmp / 'base'}", err.message)
        self.assertIn("python3", err.hint or "")


class TestInstall(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.useFixture(PipIsolated())  # for installs that use os.environ
        self.tmp = Path(self.useFixture(fixtures.TempDir()).path)
        self.cache = Cache(self.tmp / "cache")
        self.wheels = self.cache.path / "pip" / "wheels"
        make_wheel(self.wheels, "tinypkg", "1.0", deps=("tinydep==2.0",), script="tiny")
        make_wheel(self.wheels, "tinydep", "2.0")

    def install(self, specs: list[str], root: Path, offline: bool = True
                ) -> list[dict[str, str]]:
        return pip.install(specs, root, cache=self.cache, offline=offline, environ=NO_NET)

    def test_pinned_install_with_dependencies_scripts_and_bytecode(self) -> None:
        root = make_root(self.tmp / "root")
        records = self.install(["tinypkg==1.0"], root)
        self.assertEqual([{"name": "tinydep", "version": "2.0"},
                          {"name": "tinypkg", "version": "1.0"}], records)
        site = root / "usr/lib/python3/dist-packages"
        self.assertEqual(["__init__.py", "__pycache__"],
                         sorted(os.listdir(site / "tinypkg")))
        script = (root / "usr/bin/tiny").read_bytes()
        self.assertTrue(script.startswith(b"#!/usr/bin/python3\n"), script[:60])
        self.assertTrue(os.access(root / "usr/bin/tiny", os.X_OK))
        self.assertFalse((site / "bin").exists())
        rows = list(csv.reader((site / "tinypkg-1.0.dist-info/RECORD").open()))
        [entry] = [r for r in rows if r[0].endswith("/tiny")]
        self.assertEqual(["../../../bin/tiny", _hash(script), str(len(script))], entry)
        self.assertEqual(root / "usr/bin/tiny", (site / entry[0]).resolve())
        self.assertFalse(list(site.glob("*.dist-info/direct_url.json")))

    def test_upper_layer_over_a_base_gets_the_base_layout(self) -> None:
        base = make_root(self.tmp / "base")
        upper = self.tmp / "upper"
        upper.mkdir()
        records = pip.install(["tinydep==2.0"], upper, cache=self.cache, base=base,
                              offline=True, environ=NO_NET)
        self.assertEqual([{"name": "tinydep", "version": "2.0"}], records)
        self.assertTrue((upper / "usr/lib/python3/dist-packages/tinydep/__init__.py").is_file())
        self.assertEqual([], os.listdir(base / "usr/lib/python3/dist-packages"))

    def test_no_bytecode_when_target_python_differs(self) -> None:
        root = make_root(self.tmp / "root", version="3.99")
        self.install(["tinypkg==1.0"], root)
        tree = [p.name for p in (root / "usr/lib/python3/dist-packages").rglob("*")]
        self.assertIn("__init__.py", tree)
        self.assertNotIn("__pycache__", tree)

    def test_compiled_code_for_another_python_is_refused(self) -> None:
        make_wheel(self.wheels, "native", "1.0", pure=False)
        root = make_root(self.tmp / "root", version="3.99")
        err = self.assertRaises(InstallError, self.install, ["native==1.0"], root)
        self.assertIn(f"native 1.0 contains compiled code built for the host's Python {HOST}, "
                      "but the target has 3.99", err.message)
        self.assertFalse((root / "usr/lib/python3/dist-packages/native").exists())

    def test_offline_cold_cache_fails_clearly(self) -> None:
        root = make_root(self.tmp / "root")
        err = self.assertRaises(InstallError, self.install, ["missing==1.0"], root)
        self.assertEqual("installing Python packages missing==1.0 failed (--offline: only "
                         "cached wheels are used)", err.message)
        self.assertIn("missing==1.0", err.hint or "")

    def test_warm_cache_online_needs_no_index(self) -> None:
        root = make_root(self.tmp / "root", debian=False)
        records = self.install(["tinydep==2.0"], root, offline=False)
        self.assertEqual([{"name": "tinydep", "version": "2.0"}], records)
        self.assertTrue((root / f"usr/lib/python{HOST}/site-packages/tinydep").is_dir())

    def test_online_fills_the_wheelhouse_from_the_index(self) -> None:
        index = self.tmp / "index"
        make_wheel(index / "files", "fromindex", "3.0")
        (index / "simple" / "fromindex").mkdir(parents=True)
        (index / "simple" / "fromindex" / "index.html").write_text(
            '<a href="../../files/fromindex-3.0-py3-none-any.whl">fromindex-3.0</a>\n')
        environ = {**NO_NET, "PIP_INDEX_URL": (index / "simple").as_uri()}
        root = make_root(self.tmp / "root")
        records = pip.install(["fromindex==3.0"], root, cache=self.cache, environ=environ)
        self.assertEqual([{"name": "fromindex", "version": "3.0"}], records)
        self.assertTrue((self.wheels / "fromindex-3.0-py3-none-any.whl").is_file())
        again = make_root(self.tmp / "again")
        self.assertEqual(records, self.install(["fromindex==3.0"], again))  # now offline

    def test_wheel_path_inside_the_root_is_preferred(self) -> None:
        root = make_root(self.tmp / "root")
        make_wheel(root / "tmp", "local", "0.5", deps=("tinydep==2.0",))
        records = self.install(["/tmp/local-0.5-py3-none-any.whl"], root)
        self.assertEqual(["local", "tinydep"], [r["name"] for r in records])
        err = self.assertRaises(InstallError, self.install, ["/nonexistent/x.whl"], root)
        self.assertIn("exists neither in the image root nor on the host", err.message)

    def test_path_in_a_bound_builder_directory_is_found_on_the_host(self) -> None:
        root = make_root(self.tmp / "root")
        (root / "tmp/sysext-build").mkdir(parents=True)  # only the empty mount point
        host_tmp = self.tmp / "work-tmp"
        make_wheel(host_tmp / "dist", "bound", "1.0")
        records = pip.install(["/tmp/sysext-build/dist/bound-1.0-py3-none-any.whl"], root,
                              cache=self.cache, offline=True, environ=NO_NET,
                              binds={"/tmp/sysext-build": host_tmp})
        self.assertEqual([{"name": "bound", "version": "1.0"}], records)

    def test_project_directory_is_built_offline_into_the_wheelhouse(self) -> None:
        root = make_root(self.tmp / "root")
        shutil.copytree(PYDEMO, root / "src/pydemo")
        records = self.install(["/src/pydemo"], root)
        self.assertEqual([{"name": "pydemo", "version": "0.1"}], records)
        self.assertTrue((self.wheels / "pydemo-0.1-py3-none-any.whl").is_file())
        done = subprocess.run([sys.executable, str(root / "usr/bin/pydemo")], check=False,
                              capture_output=True, text=True,
                              env={"PYTHONPATH": str(root / "usr/lib/python3/dist-packages")})
        self.assertEqual("pydemo works\n", done.stdout, done.stderr)

    def test_unpinned_request_fails_before_pip_runs(self) -> None:
        root = make_root(self.tmp / "root")
        err = self.assertRaises(InstallError, self.install, ["tinydep==2.0", "tinypkg"], root)
        self.assertIn("'tinypkg' is not pinned", err.message)
        self.assertEqual([], os.listdir(root / "usr/lib/python3/dist-packages"))

    def test_nothing_requested_touches_nothing(self) -> None:
        self.assertEqual([], pip.install([], self.tmp / "no-root", cache=self.cache))
