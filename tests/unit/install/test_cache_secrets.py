"""Secrets in download URLs: redacted in errors, logs and the cache's metadata (issue 12)."""

from __future__ import annotations

import functools
import http.server
import logging
import threading
from pathlib import Path

import fixtures
import testtools

from sysext_builder.errors import InstallError
from sysext_builder.install.cache import Cache, redact, scrub, secrets_of, without_userinfo

SECRET = "s3cret"


def files_containing(top: Path, needle: bytes) -> list[Path]:
    return [p for p in sorted(top.rglob("*")) if p.is_file() and needle in p.read_bytes()]


class TestRedact(testtools.TestCase):

    def test_urls_in_any_text(self) -> None:
        cases = {
            "https://bot:s3cret@git.example.org/r.git": "https://bot:***@git.example.org/r.git",
            "fatal: 'http://u:p@ss@h:9/x' failed": "fatal: 'http://u:***@h:9/x' failed",
            "https://ghp_T0KEN@github.com/o/r": "https://***@github.com/o/r",
            "git+https://u:pw@h/r.git@v1": "git+https://u:***@h/r.git@v1",
            "ssh://git@host/r.git": "ssh://git@host/r.git",
            "/srv/git/r and git@host:r.git": "/srv/git/r and git@host:r.git",
            "https://h/x?a=b@c": "https://h/x?a=b@c",
        }
        for text, expected in cases.items():
            self.assertEqual(expected, redact(text), text)

    def test_scrub_removes_the_secret_outside_urls_too(self) -> None:
        location = "https://u:p%40ss@h/x"
        self.assertEqual(["p%40ss", "p@ss"], secrets_of(location))
        self.assertEqual("login u:*** rejected for https://u:***@h/x",
                         scrub("login u:p@ss rejected for https://u:p%40ss@h/x", location))
        self.assertEqual([], secrets_of("https://h/x"))
        self.assertEqual("via https://v:***@mirror/x", scrub("via https://v:pw2@mirror/x",
                                                             location))

    def test_userinfo_becomes_a_basic_header(self) -> None:
        self.assertEqual(("https://h:8/x", "Basic dTpwQHNz"),
                         without_userinfo("https://u:p%40ss@h:8/x"))
        self.assertEqual(("https://h/x", None), without_userinfo("https://h/x"))


class _Auth(http.server.SimpleHTTPRequestHandler):
    seen: list[str | None]

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.seen.append(self.headers.get("Authorization"))
        super().do_GET()


class TestFetchUrl(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.dir = Path(self.useFixture(fixtures.TempDir()).path)
        self.cache = Cache(self.dir / "cache")
        self.log = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))

    def test_unreachable_host_error_and_cache_hold_no_secret(self) -> None:
        url = f"http://user:{SECRET}@127.0.0.1:9/x.tar.gz"
        err = self.assertRaises(InstallError, self.cache.fetch_url, url, "sources", "tar")
        self.assertIn("cannot download http://user:***@127.0.0.1:9/x.tar.gz", err.message)
        self.assertNotIn(SECRET, f"{err.message} {err.hint}")
        self.assertNotIn(SECRET, self.log.output)
        self.assertEqual([], files_containing(self.cache.path, SECRET.encode()))
        err = self.assertRaises(InstallError, self.cache.fetch_url, url, "sources", "tar",
                                offline=True)
        self.assertNotIn(SECRET, err.message)

    def test_credentials_are_sent_as_a_header_and_not_stored(self) -> None:
        (self.dir / "x.tar.gz").write_bytes(b"data")
        seen: list[str | None] = []
        handler = type("Handler", (_Auth,), {"seen": seen})
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler, directory=str(self.dir)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        url = f"http://user:{SECRET}@127.0.0.1:{server.server_address[1]}/x.tar.gz"
        entry = self.cache.fetch_url(url, "sources", "tar")
        self.assertEqual(b"data", entry.path.read_bytes())
        self.assertEqual(["Basic dXNlcjpzM2NyZXQ="], seen)
        meta = (entry.path.parent / "meta.json").read_text()
        self.assertIn('"location": "http://user:***@127.0.0.1:', meta)
        self.assertEqual([entry.path], files_containing(self.cache.path, b"data"))
        self.assertEqual([], files_containing(self.cache.path, SECRET.encode()))
        self.assertNotIn(SECRET, self.log.output)
