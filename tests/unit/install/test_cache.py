"""The shared cache: layout, the flock-based lock between builds, cached downloads."""

from __future__ import annotations

import functools
import hashlib
import http.server
import logging
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import fixtures
import testtools

from sysext_builder.errors import InstallError
from sysext_builder.install.cache import Cache, cache_key

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from sysext_builder.install.cache import Cache
    with Cache(Path(sys.argv[1])).lock():
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
        print("releasing", time.monotonic(), flush=True)
""")


class CacheTestCase(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.dir = Path(self.useFixture(fixtures.TempDir()).path)
        self.path = self.dir / "cache"


class TestLayout(CacheTestCase):

    def test_default_path_is_under_the_user_cache_dir(self) -> None:
        self.useFixture(fixtures.EnvironmentVariable("XDG_CACHE_HOME", str(self.dir / "xdg")))
        self.assertEqual(self.dir / "xdg" / "sysext-builder", Cache().path)

    def test_subdirectories_are_created_with_a_cachedir_tag(self) -> None:
        cache = Cache(self.path)
        self.assertFalse(self.path.exists())  # nothing happens before first use
        self.assertEqual(self.path / "sources", cache.sources)
        self.assertEqual(self.path / "pip", cache.pip)
        self.assertEqual(self.path / "sources" / "git", cache.subdir("sources", "git"))
        for name in ("sources", "pip", "sources/git"):
            self.assertTrue((self.path / name).is_dir(), name)
        tag = (self.path / "CACHEDIR.TAG").read_text()
        self.assertTrue(tag.startswith("Signature: 8a477f597d28d172789f06886806bc55\n"))

    def test_unwritable_location_is_an_install_error(self) -> None:
        (self.dir / "file").write_text("x")
        err = self.assertRaises(InstallError, Cache(self.dir / "file" / "cache").subdir, "pip")
        self.assertIn("cannot create the cache directory", err.message)
        self.assertIn("--cache-dir", err.hint or "")

    def test_cache_key_is_stable_and_distinct(self) -> None:
        self.assertEqual(cache_key("https://x/y.git"), cache_key("https://x/y.git"))
        self.assertNotEqual(cache_key("https://x/y.git"), cache_key("https://x/z.git"))
        self.assertRegex(cache_key("/some path/with spaces"), r"^[0-9a-f]{24}$")


class TestLock(CacheTestCase):

    def test_lock_is_reentrant_within_one_cache_object(self) -> None:
        cache, other = Cache(self.path), Cache(self.path)
        with cache.lock():
            with cache.lock():  # the same object takes it again without waiting
                self.assertRaises(InstallError, other.lock(timeout=0.2).__enter__)
            # leaving the inner block keeps the outer hold
            self.assertRaises(InstallError, other.lock(timeout=0.2).__enter__)
        with other.lock(timeout=1):
            pass
        self.assertTrue((self.path / ".lock").exists())

    def test_two_builds_in_threads_never_overlap_and_the_waiter_logs(self) -> None:
        logger = self.useFixture(fixtures.FakeLogger(level=logging.INFO))
        events: list[str] = []
        first_in = threading.Event()

        def build(name: str, hold: float) -> None:
            with Cache(self.path).lock():
                events.append(f"{name} in")
                first_in.set()
                time.sleep(hold)
                events.append(f"{name} out")

        one = threading.Thread(target=build, args=("one", 0.4))
        one.start()
        first_in.wait(5)
        two = threading.Thread(target=build, args=("two", 0))
        two.start()
        one.join(10)
        two.join(10)
        self.assertEqual(["one in", "one out", "two in", "two out"], events)
        self.assertIn("is in use by another build; waiting for its lock", logger.output)
        self.assertIn("got the cache lock after", logger.output)

    def _holder(self, seconds: float) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(self.path), str(seconds)],
                                stdout=subprocess.PIPE, text=True,
                                cwd=Path(__file__).resolve().parents[3])
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        assert proc.stdout is not None
        self.assertEqual("locked\n", proc.stdout.readline())
        return proc

    def test_another_process_holding_the_lock_blocks_until_it_is_done(self) -> None:
        proc = self._holder(0.5)
        started = time.monotonic()
        with Cache(self.path).lock():
            acquired = time.monotonic()
        assert proc.stdout is not None
        word, released = proc.stdout.readline().split()
        self.assertEqual("releasing", word)
        # CLOCK_MONOTONIC is system-wide: we got the lock only after the holder let go.
        self.assertGreaterEqual(acquired, float(released))
        self.assertGreater(acquired - started, 0.2)

    def test_timeout_gives_up_with_an_install_error(self) -> None:
        self._holder(30)
        err = self.assertRaises(InstallError, Cache(self.path).lock(timeout=0.3).__enter__)
        self.assertIn("stayed locked for 0.3s", err.message)

    def test_a_killed_holder_releases_the_lock(self) -> None:
        proc = self._holder(60)
        proc.kill()
        proc.wait()
        with Cache(self.path).lock(timeout=5) as cache:
            self.assertEqual(Cache, type(cache))  # acquired: no InstallError


class _Handler(http.server.SimpleHTTPRequestHandler):
    statuses: list[int]

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def send_response(self, code: int, message: str | None = None) -> None:
        self.statuses.append(code)
        super().send_response(code, message)


class TestFetchUrl(CacheTestCase):

    def setUp(self) -> None:
        super().setUp()
        self.src = self.dir / "src.tar.gz"
        self.src.write_bytes(b"first version")
        self.cache = Cache(self.path)

    def test_local_path_is_copied_with_its_sha256(self) -> None:
        with self.cache.lock():
            entry = self.cache.fetch_url(str(self.src), "sources", "tar")
        self.assertEqual(b"first version", entry.path.read_bytes())
        self.assertEqual(hashlib.sha256(b"first version").hexdigest(), entry.sha256)
        self.assertEqual(self.path / "sources" / "tar" / cache_key(str(self.src)) / "content",
                         entry.path)

    def test_file_url_and_refresh_when_online(self) -> None:
        url = self.src.as_uri()
        first = self.cache.fetch_url(url, "sources", "file")
        self.src.write_bytes(b"second version")
        second = self.cache.fetch_url(url, "sources", "file")
        self.assertNotEqual(first.sha256, second.sha256)
        self.assertEqual(b"second version", second.path.read_bytes())

    def test_offline_uses_the_cache_and_never_the_location(self) -> None:
        self.cache.fetch_url(str(self.src), "sources", "tar")
        self.src.write_bytes(b"changed upstream")
        entry = self.cache.fetch_url(str(self.src), "sources", "tar", offline=True)
        self.assertEqual(b"first version", entry.path.read_bytes())
        self.assertEqual(hashlib.sha256(b"first version").hexdigest(), entry.sha256)

    def test_offline_with_a_cold_cache_names_what_and_location(self) -> None:
        err = self.assertRaises(InstallError, self.cache.fetch_url, str(self.src), "sources",
                                "tar", offline=True, what="source repository pbr")
        self.assertEqual(f"source repository pbr: {self.src} is not in the cache {self.path} "
                         "and --offline is set", err.message)

    def test_missing_local_file_and_unknown_scheme(self) -> None:
        err = self.assertRaises(InstallError, self.cache.fetch_url, str(self.dir / "nope"),
                                "sources", "tar", what="repo x")
        self.assertIn("repo x: cannot read", err.message)
        err = self.assertRaises(InstallError, self.cache.fetch_url, "ftp://h/x", "sources",
                                "tar")
        self.assertIn("unsupported location 'ftp://h/x'", err.message)

    def test_http_download_is_revalidated_not_refetched(self) -> None:
        statuses: list[int] = []
        handler = type("Handler", (_Handler,), {"statuses": statuses})
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler, directory=str(self.dir)))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        url = f"http://127.0.0.1:{server.server_address[1]}/{self.src.name}"
        first = self.cache.fetch_url(url, "sources", "tar")
        second = self.cache.fetch_url(url, "sources", "tar")
        self.assertEqual([200, 304], statuses)
        self.assertEqual(first, second)
        self.assertEqual(b"first version", second.path.read_bytes())
        err = self.assertRaises(InstallError, self.cache.fetch_url, url + ".missing",
                                "sources", "tar")
        self.assertIn("HTTP 404", err.message)
