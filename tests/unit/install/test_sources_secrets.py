"""Secrets in source-repository and pip URLs never reach errors, logs or the cache (issue 12)."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import fixtures
import testtools

from sysext_builder import runner
from sysext_builder.errors import InstallError
from sysext_builder.install import pip, sources
from sysext_builder.install.cache import Cache, cache_key
from sysext_builder.install.sources import SourceRepo

SECRET = "s3cret"
URL = f"http://bot:{SECRET}@127.0.0.1:9/r.git"


def files_containing(top: Path, needle: bytes) -> list[Path]:
    return [p for p in sorted(top.rglob("*")) if p.is_file() and needle in p.read_bytes()]


class SecretsTestCase(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.dir = Path(self.useFixture(fixtures.TempDir()).path)
        self.cache = Cache(self.dir / "cache")
        self.log = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))

    def repo(self, kind: str = "git", location: str = URL) -> SourceRepo:
        return SourceRepo(name="r", type=kind, dest="/opt/r", location=location, ref="main",
                          file=self.dir / "source-repository-r", line=1, element="e")

    def assert_no_secret(self, err: InstallError) -> None:
        self.assertNotIn(SECRET, f"{err.message} {err.hint}")
        self.assertNotIn(SECRET, self.log.output)
        self.assertEqual([], files_containing(self.cache.path, SECRET.encode()))


class TestGit(SecretsTestCase):

    def test_a_failed_clone_names_the_redacted_url_only(self) -> None:
        err = self.assertRaises(InstallError, sources.fetch, self.repo(), self.cache)
        self.assertIn("git clone of source repository r", err.message)
        self.assertIn("run: ", self.log.output)  # the command line was logged, redacted
        self.assertIn("http://bot:***@127.0.0.1:9/r.git", self.log.output)
        self.assert_no_secret(err)

    def test_the_secret_goes_to_git_through_the_environment_only(self) -> None:
        calls: list[tuple[list[str], dict[str, str]]] = []

        def fake_run(argv: list[str], *, env: dict[str, str], check: bool = True,
                     what: str | None = None) -> runner.Completed:
            calls.append((list(argv), dict(env)))
            raise runner.CommandFailed(argv, 128, [f"fatal: auth failed for {URL}",
                                                   f"password {SECRET} rejected"], what)

        self.useFixture(fixtures.MonkeyPatch("sysext_builder.runner.run", fake_run))
        err = self.assertRaises(InstallError, sources.fetch, self.repo(), self.cache)
        (argv, env), = calls
        self.assertNotIn(SECRET, " ".join(argv))
        self.assertIn("http://bot:***@127.0.0.1:9/r.git", argv)
        self.assertEqual(("1", f"url.{URL}.insteadOf", "http://bot:***@127.0.0.1:9/r.git"),
                         (env["GIT_CONFIG_COUNT"], env["GIT_CONFIG_KEY_0"],
                          env["GIT_CONFIG_VALUE_0"]))
        self.assertIn("fatal: auth failed for http://bot:***@127.0.0.1:9/r.git", err.hint or "")
        self.assertIn("password *** rejected", err.hint or "")
        self.assert_no_secret(err)

    def test_an_older_cached_mirror_loses_the_secret_from_its_config(self) -> None:
        gitdir = self.cache.subdir("sources", "git") / cache_key(URL)
        subprocess.run(["git", "init", "--quiet", "--bare", str(gitdir)], check=True)
        subprocess.run(["git", "-C", str(gitdir), "remote", "add", "origin", URL], check=True)
        err = self.assertRaises(InstallError, sources.fetch, self.repo(), self.cache)
        self.assertIn("git fetch of source repository r", err.message)
        self.assertIn("url = http://bot:***@127.0.0.1:9/r.git", (gitdir / "config").read_text())
        self.assert_no_secret(err)


class TestTarAndPip(SecretsTestCase):

    def test_a_tar_repository_download_error(self) -> None:
        repo = self.repo("tar", f"http://bot:{SECRET}@127.0.0.1:9/r.tar.gz")
        err = self.assertRaises(InstallError, sources.fetch, repo, self.cache)
        self.assertIn("cannot download http://bot:***@127.0.0.1:9/r.tar.gz", err.message)
        self.assert_no_secret(err)

    def test_pip_spec_errors_are_redacted(self) -> None:
        err = self.assertRaises(InstallError, pip.validate_spec,
                                f"git+https://bot:{SECRET}@example.org/r.git")
        self.assertIn("'git+https://bot:***@example.org/r.git' has no git ref", err.message)
        self.assertNotIn(SECRET, f"{err.message} {err.hint}")

    def test_manifest_record_is_redacted(self) -> None:
        cached = self.dir / "content"
        cached.write_text("x")
        fetched = sources.Fetched(repo=self.repo("file"), path=cached, resolved="sha")
        record = sources.place(fetched, self.dir / "root")
        self.assertEqual("http://bot:***@127.0.0.1:9/r.git", record["location"])
