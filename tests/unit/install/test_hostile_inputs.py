"""Issue 12: element files are read bounded; URL secrets (query tokens too) never shown."""

from __future__ import annotations

import os
from pathlib import Path

import fixtures

from sysext_builder.errors import ElementFormatError, UsageError
from sysext_builder.install import packages, sources
from sysext_builder.install.cache import redact, scrub, secrets_of
from sysext_builder.model import element
from sysext_builder.output import sysupdate
from tests.base import TestCase

CANARY = "CANARY-s3cr3t-7731"


class TestBoundedElementReads(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.dir = Path(self.useFixture(fixtures.TempDir()).path)

    def hostile(self, kind: str, name: str) -> Path:
        path = self.dir / name
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "zero":
            os.symlink("/dev/zero", path)
        else:
            with open(path, "wb") as f:
                f.truncate(element.MAX_FILE_BYTES + 1)
        return path

    def check(self, func: object, name: str) -> None:
        for kind in ("fifo", "zero", "huge"):
            path = self.hostile(kind, f"{kind}-{name}")
            err = self.assertRaises(ElementFormatError, func, path, "elem")  # type: ignore[arg-type]
            self.assertIn(str(path), err.message)
            self.assertNotIn("\n", err.message)

    def test_package_installs(self) -> None:
        self.check(packages.parse_package_installs, "package-installs.yaml")

    def test_source_repository(self) -> None:
        self.check(sources.parse, "source-repository-x")


class TestQueryRedaction(TestCase):

    def test_query_tokens_are_redacted(self) -> None:
        for url in (f"https://h/p?token={CANARY}", f"https://h/p?a=1&access_token={CANARY}",
                    f"https://h/p?x=1&sig={CANARY}#f", f"https://h/?password={CANARY}",
                    f"https://h/?key={CANARY}", f"https://h/?X-Amz-Signature={CANARY}",
                    f"https://u:{CANARY}@h/?ok=1"):
            shown = redact(f"fetching {url} failed")
            self.assertNotIn(CANARY, shown, url)
            self.assertIn("***", shown)
            self.assertEqual([CANARY], secrets_of(url))
            self.assertNotIn(CANARY, scrub(f"curl said {CANARY}", url))

    def test_harmless_parameters_and_names_are_kept(self) -> None:
        url = "https://h/p?monkey=1&keyboard=2&arch=amd64"
        self.assertEqual(url, redact(url))
        self.assertEqual("https://h/p?token=***&arch=amd64",
                         redact("https://h/p?token=abc&arch=amd64"))

    def test_sysupdate_error_holds_no_secret(self) -> None:
        err = self.assertRaises(UsageError, sysupdate.transfer, "x",
                                f"ftp://h/?token={CANARY}")
        self.assertNotIn(CANARY, str(err))

    def test_sysupdate_refuses_a_url_with_a_credential_before_writing(self) -> None:
        for url in (f"https://u:{CANARY}@h/sx/", f"https://h/sx/?sig={CANARY}"):
            err = self.assertRaises(UsageError, sysupdate.check_url, url)
            self.assertIn("carries a credential", err.message)
            self.assertNotIn(CANARY, err.message + str(err.hint))
            self.assertRaises(UsageError, sysupdate.transfer, "x", url)
        self.assertEqual("https://h/sx/", sysupdate.check_url("https://h/sx/"))
