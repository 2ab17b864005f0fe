"""Source repositories with real git and tarballs; pip against the real PyPI.

Everything but the last class runs offline against repositories created in a
temporary directory.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import threading
import urllib.request
from pathlib import Path

import fixtures
import testtools

from sysext_builder.errors import InstallError
from sysext_builder.install import pip, sources
from sysext_builder.install.cache import Cache
from sysext_builder.install.sources import SourceRepo
from tests.base import PipIsolated, require

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV},
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


class Upstream:
    """A git repository with branches, a tag and a gerrit-style change ref."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir()
        git("init", "--quiet", "--initial-branch=main", cwd=path)
        self.v1 = self.commit("version = 1\n", "one")
        git("tag", "v1.0", cwd=path)
        self.main = self.commit("version = 2\n", "two")
        git("checkout", "--quiet", "-b", "feature", cwd=path)
        self.feature = self.commit("version = feature\n", "feature")
        git("checkout", "--quiet", "--detach", "main", cwd=path)
        self.change = self.commit("version = change\n", "change under review")
        git("update-ref", "refs/changes/01/1/1", self.change, cwd=path)
        git("checkout", "--quiet", "main", cwd=path)

    def commit(self, text: str, message: str) -> str:
        (self.path / "app.py").write_text(text)
        git("add", "app.py", cwd=self.path)
        git("commit", "--quiet", "-m", message, cwd=self.path)
        return git("rev-parse", "HEAD", cwd=self.path)


class GitTestCase(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        for key, value in GIT_ENV.items():
            self.useFixture(fixtures.EnvironmentVariable(key, value))
        self.tmp = Path(self.useFixture(fixtures.TempDir()).path)
        self.upstream = Upstream(self.tmp / "upstream")
        self.cache = Cache(self.tmp / "cache")
        self.roots = 0

    def repo(self, ref: str | None = None, location: str | None = None) -> SourceRepo:
        return SourceRepo(name="demo", type="git", dest="/opt/demo",
                          location=location or str(self.upstream.path), ref=ref,
                          file=self.tmp / "source-repository-demo", line=1, element="e")

    def place(self, repo: SourceRepo, offline: bool = False) -> tuple[Path, dict[str, str]]:
        self.roots += 1
        root = self.tmp / f"root{self.roots}"
        root.mkdir()
        record = sources.place(sources.fetch(repo, self.cache, offline=offline), root)
        return root / "opt/demo", record

    def content(self, checkout: Path) -> str:
        return (checkout / "app.py").read_text()


class TestGitRefs(GitTestCase):

    def test_default_is_the_remote_default_branch(self) -> None:
        checkout, record = self.place(self.repo())
        self.assertEqual("version = 2\n", self.content(checkout))
        self.assertEqual({"name": "demo", "type": "git", "location": str(self.upstream.path),
                          "ref": "", "resolved": self.upstream.main, "dest": "/opt/demo"},
                         record)
        self.assertEqual(str(self.upstream.path),
                         git("remote", "get-url", "origin", cwd=checkout))
        self.assertEqual(self.upstream.main, git("rev-parse", "HEAD", cwd=checkout))

    def test_star_tag_branch_commit_and_change_refs(self) -> None:
        cases = [("*", self.upstream.main, "version = 2\n"),
                 ("v1.0", self.upstream.v1, "version = 1\n"),
                 ("feature", self.upstream.feature, "version = feature\n"),
                 (self.upstream.v1, self.upstream.v1, "version = 1\n"),
                 ("refs/changes/01/1/1", self.upstream.change, "version = change\n")]
        for ref, sha, text in cases:
            checkout, record = self.place(self.repo(ref))
            self.assertEqual((sha, text), (record["resolved"], self.content(checkout)), ref)

    def test_ref_override_from_the_environment(self) -> None:
        line = f"demo git /opt/demo {self.upstream.path} main\n"
        path = self.tmp / "source-repository-demo"
        path.write_text(line)
        [repo] = sources.resolve(sources.parse(path, "e"), {"DIB_REPOREF_demo": "feature"})
        checkout, record = self.place(repo)
        self.assertEqual("version = feature\n", self.content(checkout))
        self.assertEqual("feature", record["ref"])

    def test_unknown_ref_names_the_repository_and_the_override(self) -> None:
        err = self.assertRaises(InstallError, sources.fetch, self.repo("no-such-branch"),
                                self.cache)
        self.assertIn("source repository demo", err.message)
        self.assertIn(f"ref no-such-branch not found in {self.upstream.path}", err.message)
        self.assertIn("DIB_REPOREF_demo", err.hint or "")

    def test_unreachable_location_is_a_clear_error(self) -> None:
        err = self.assertRaises(InstallError, sources.fetch,
                                self.repo(location=str(self.tmp / "nowhere")), self.cache)
        self.assertIn("git clone of source repository demo", err.message)
        self.assertIn("failed with exit status 128", err.message)
        self.assertIn("does not exist", err.hint or "")

    def test_destination_through_an_escaping_symlink_is_refused(self) -> None:
        root = self.tmp / "evil-root"
        root.mkdir()
        (root / "opt").symlink_to(self.tmp)
        fetched = sources.fetch(self.repo(), self.cache)
        err = self.assertRaises(InstallError, sources.place, fetched, root)
        self.assertIn("escapes the image root through a symlink", err.message)
        self.assertFalse((self.tmp / "demo").exists())


class TestGitCache(GitTestCase):

    def test_cache_is_refreshed_online_and_used_alone_offline(self) -> None:
        self.place(self.repo())
        newer = self.upstream.commit("version = 3\n", "three")
        _, online = self.place(self.repo())
        self.assertEqual(newer, online["resolved"])
        newest = self.upstream.commit("version = 4\n", "four")
        checkout, offline = self.place(self.repo(), offline=True)
        self.assertEqual(newer, offline["resolved"])  # the cache, not upstream
        self.assertNotEqual(newest, offline["resolved"])
        self.assertEqual("version = 3\n", self.content(checkout))

    def test_a_cached_commit_needs_no_upstream(self) -> None:
        self.place(self.repo(self.upstream.v1))
        subprocess.run(["rm", "-rf", str(self.upstream.path)], check=True)
        checkout, record = self.place(self.repo(self.upstream.v1))  # online, yet no fetch
        self.assertEqual(self.upstream.v1, record["resolved"])
        self.assertEqual("version = 1\n", self.content(checkout))

    def test_offline_cold_cache_names_repository_and_location(self) -> None:
        err = self.assertRaises(InstallError, sources.fetch, self.repo(), self.cache,
                                offline=True)
        self.assertEqual(f"source repository demo ({self.tmp}/source-repository-demo:1): "
                         f"{self.upstream.path} is not in the cache {self.cache.path} and "
                         "--offline is set", err.message)

    def test_offline_ref_missing_from_the_cache(self) -> None:
        self.place(self.repo())
        err = self.assertRaises(InstallError, sources.fetch, self.repo("v9"), self.cache,
                                offline=True)
        self.assertIn("ref v9 not found", err.message)
        self.assertIn("--offline is set", err.message)

    def test_default_branch_change_upstream_is_followed(self) -> None:
        self.place(self.repo())
        git("symbolic-ref", "HEAD", "refs/heads/feature", cwd=self.upstream.path)
        _, record = self.place(self.repo())
        self.assertEqual(self.upstream.feature, record["resolved"])

    def test_two_builds_fetching_at_once(self) -> None:
        results: dict[str, str] = {}
        errors: list[BaseException] = []

        def build(name: str) -> None:
            try:
                fetched = sources.fetch(self.repo("feature"), Cache(self.tmp / "cache"))
                results[name] = fetched.resolved
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=build, args=(n,)) for n in ("a", "b", "c")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        self.assertEqual([], errors)
        self.assertEqual({"a": self.upstream.feature, "b": self.upstream.feature,
                          "c": self.upstream.feature}, results)


class TestTarballWithOverrides(testtools.TestCase):

    def test_location_and_ref_overrides_then_offline(self) -> None:
        tmp = Path(self.useFixture(fixtures.TempDir()).path)
        tarball = tmp / "tool-2.0.tar.gz"
        with tarfile.open(tarball, "w:gz") as archive:
            for name, data in (("tool-2.0/tool.py", b"print('tool')\n"),
                               ("docs/index.txt", b"docs\n")):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        element = tmp / "source-repository-tool"
        element.write_text("tool tar /opt/tool https://example.invalid/tool-1.0.tar.gz *\n")
        env = {"DIB_REPOLOCATION_tool": str(tarball), "DIB_REPOREF_tool": "docs"}
        [repo] = sources.resolve(sources.parse(element, "e"), env)
        cache = Cache(tmp / "cache")
        root = tmp / "root"
        record = sources.place(sources.fetch(repo, cache), root)
        self.assertEqual(["index.txt"], os.listdir(root / "opt/tool"))
        self.assertEqual({"name": "tool", "type": "tar", "location": str(tarball),
                          "ref": "docs", "dest": "/opt/tool",
                          "resolved": hashlib.sha256(tarball.read_bytes()).hexdigest()},
                         record)
        tarball.unlink()
        [star] = sources.resolve(sources.parse(element, "e"),
                                 {"DIB_REPOLOCATION_tool": str(tarball)})
        record = sources.place(sources.fetch(star, cache, offline=True), tmp / "root2")
        # '*': the contents of every top-level directory, merged
        self.assertEqual(["index.txt", "tool.py"], sorted(os.listdir(tmp / "root2/opt/tool")))


def _pypi_reachable() -> bool:
    try:
        with urllib.request.urlopen("https://pypi.org/simple/six/", timeout=10) as response:
            return bool(response.status == 200)
    except OSError:
        return False


class TestPipFromPyPI(testtools.TestCase):

    def test_pinned_package_from_pypi_then_offline(self) -> None:
        require("network", _pypi_reachable(),
                "PyPI (https://pypi.org) is unreachable: cannot install six==1.16.0")
        self.useFixture(PipIsolated())  # pip.install runs pip with os.environ
        tmp = Path(self.useFixture(fixtures.TempDir()).path)
        cache = Cache(tmp / "cache")
        root = tmp / "root"
        (root / "usr/lib/python3/dist-packages").mkdir(parents=True)
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        (root / f"usr/lib/python{version}").mkdir()
        (root / f"usr/lib/python{version}/os.py").write_text("")
        records = pip.install(["six==1.16.0"], root, cache=cache)
        self.assertEqual([{"name": "six", "version": "1.16.0"}], records)
        site = root / "usr/lib/python3/dist-packages"
        self.assertTrue((site / "six.py").is_file())
        self.assertTrue(list((site / "__pycache__").glob("six.*.pyc")))
        self.assertTrue(list((cache.path / "pip/wheels").glob("six-1.16.0-*.whl")))
        again = tmp / "again"
        (again / "usr/lib/python3/dist-packages").mkdir(parents=True)
        self.assertEqual(records, pip.install(["six==1.16.0"], again, cache=cache,
                                              offline=True))
