"""Symlinks into /etc: accepted when the lowered /etc or the base provides the target."""

from __future__ import annotations

import os
from pathlib import Path

import fixtures
import testtools

from sysext_builder.errors import TreeRuleError
from sysext_builder.sysext import links
from sysext_builder.sysext.assemble import assemble
from sysext_builder.sysext.links import EtcSources, in_base
from sysext_builder.sysext.tree import validate

#: what openssl ships under /usr (measured on a waagent build)
OPENSSL_LINKS: dict[str, str | None] = {
    "usr/lib/ssl/certs": "->/etc/ssl/certs",
    "usr/lib/ssl/cert.pem": "->/etc/ssl/certs/ca-certificates.crt",
    "usr/lib/ssl/openssl.cnf": "->/etc/ssl/openssl.cnf",
    "usr/lib/ssl/private": "->/etc/ssl/private"}
FIELDS = {"ID": "debian", "VERSION_ID": "12"}


def make(root: Path, spec: dict[str, str | None]) -> None:
    """``rel -> text`` a file, ``rel -> None`` a directory, ``"->target"`` a symlink."""
    for rel, content in spec.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            path.mkdir(exist_ok=True)
        elif content.startswith("->"):
            os.symlink(content[2:], path)
        else:
            path.write_text(content, encoding="utf-8")


class LinksTestCase(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        top = Path(self.useFixture(fixtures.TempDir()).path)
        self.root = top / "root"
        self.base = top / "base"
        (self.root / "usr/lib").mkdir(parents=True)
        self.base.mkdir()

    def refused(self, etc: EtcSources | None) -> TreeRuleError:
        return self.assertRaises(TreeRuleError, validate, self.root, etc=etc)


class TestInBase(LinksTestCase):

    def test_paths_and_the_base_s_own_symlinks(self) -> None:
        make(self.base, {"etc/ssl/openssl.cnf": "x", "usr/share/ca/bundle.crt": "c",
                         "etc/ssl/certs": "->/usr/share/ca", "etc/alt": "->ssl/openssl.cnf",
                         "etc/loop": "->loop", "etc/dangling": "->/nowhere"})
        for rel in ("etc", "etc/ssl", "etc/ssl/openssl.cnf", "etc/ssl/certs",
                    "etc/ssl/certs/bundle.crt", "etc/alt", "etc/ssl/../ssl/./openssl.cnf"):
            self.assertTrue(in_base(self.base, rel), rel)
        for rel in ("etc/missing", "etc/ssl/certs/none.crt", "etc/loop", "etc/dangling",
                    "etc/ssl/openssl.cnf/x"):
            self.assertFalse(in_base(self.base, rel), rel)

    def test_never_follows_the_build_host(self) -> None:
        # /proc and /usr/bin exist on the host running the tests, not in this base
        host = Path("/usr/bin")
        self.assertTrue(host.is_dir())
        make(self.base, {"etc/host-abs": f"->{host}", "etc/host-rel": "->../../../../usr/bin",
                         "etc/proc": "->/proc/self"})
        for rel in ("etc/host-abs", "etc/host-rel", "etc/proc", "../../usr/bin"):
            self.assertFalse(in_base(self.base, rel), rel)


class TestEtcLinks(LinksTestCase):

    def test_target_of_a_lowered_line_or_its_parent_is_accepted(self) -> None:
        make(self.root, OPENSSL_LINKS)
        etc = EtcSources.of(["etc/ssl/openssl.cnf", "etc/ssl/certs/ca-certificates.crt",
                             "etc/ssl/private", "var/lib/x"])
        validate(self.root, etc=etc)  # certs is a parent of a lowered file
        self.assertNotIn("var/lib/x", etc.lowered)
        self.assertIn("etc", etc.lowered)

    def test_target_in_the_base_is_accepted(self) -> None:
        make(self.root, OPENSSL_LINKS)
        make(self.base, {"etc/ssl/certs/ca-certificates.crt": "c", "etc/ssl/private": None,
                         "etc/ssl/openssl.cnf": "->../../usr/lib/ssl/base.cnf",
                         "usr/lib/ssl/base.cnf": "x"})
        validate(self.root, etc=EtcSources.of([], self.base))

    def test_lowered_and_base_together(self) -> None:
        make(self.root, OPENSSL_LINKS)
        make(self.base, {"etc/ssl/certs": None, "etc/ssl/private": None})
        etc = EtcSources.of(["etc/ssl/openssl.cnf", "etc/ssl/certs/ca-certificates.crt"],
                            self.base)
        validate(self.root, etc=etc)

    def test_missing_target_is_refused_with_the_reason(self) -> None:
        make(self.root, OPENSSL_LINKS)
        make(self.base, {"etc/ssl/openssl.cnf": "x", "etc/ssl/private": None})
        err = self.refused(EtcSources.of(["etc/ssl/certs/other.crt"], self.base))
        self.assertIn("usr/lib/ssl/cert.pem -> /etc/ssl/certs/ca-certificates.crt "
                      "(/etc/ssl/certs/ca-certificates.crt is neither in the image's lowered "
                      "/etc nor in the base)", err.message)
        self.assertNotIn("usr/lib/ssl/certs ->", err.message)
        self.assertNotIn("openssl.cnf", err.message)
        self.assertEqual(21, err.exit_code)
        self.assertIn(links.ETC_HINT, err.hint or "")

    def test_without_a_base_only_the_lowered_etc_counts(self) -> None:
        make(self.root, {"usr/lib/ssl/certs": "->/etc/ssl/certs"})
        err = self.refused(EtcSources.of(["etc/ssl/openssl.cnf"]))
        self.assertIn("symlinks pointing outside the merged hierarchies: usr/lib/ssl/certs "
                      "-> /etc/ssl/certs (/etc/ssl/certs is not in the image's lowered /etc)",
                      err.message)
        self.assertIn("build with --base", err.hint or "")

    def test_exact_message_with_a_base(self) -> None:
        make(self.root, {"usr/lib/ssl/certs": "->/etc/ssl/certs"})
        err = self.refused(EtcSources.of([], self.base))
        self.assertEqual("staging tree breaks the sysext rules: symlinks pointing outside the "
                         "merged hierarchies: usr/lib/ssl/certs -> /etc/ssl/certs "
                         "(/etc/ssl/certs is neither in the image's lowered /etc nor in the "
                         "base)", err.message)

    def test_relative_link_climbing_to_etc(self) -> None:
        make(self.root, {"usr/lib/ssl/openssl.cnf": "->../../../etc/ssl/openssl.cnf"})
        validate(self.root, etc=EtcSources.of(["etc/ssl/openssl.cnf"]))
        err = self.refused(EtcSources.of(["etc/ssl/other.cnf"], self.base))
        self.assertIn("usr/lib/ssl/openssl.cnf -> ../../../etc/ssl/openssl.cnf "
                      "(/etc/ssl/openssl.cnf is neither", err.message)

    def test_other_targets_outside_stay_refused(self) -> None:
        make(self.root, {"usr/lib/state": "->/var/lib/state", "usr/lib/up": "->../../../x",
                         "usr/lib/sneaky": "->/etc/../var/x"})
        make(self.base, {"var/lib/state": "s", "var/x": "x"})
        err = self.refused(EtcSources.of(["etc/x"], self.base))
        self.assertIn("usr/lib/state -> /var/lib/state (outside /usr and /opt)", err.message)
        self.assertIn("usr/lib/sneaky -> /etc/../var/x (outside /usr and /opt)", err.message)
        self.assertIn("usr/lib/up -> ../../../x (climbs out of the image root)", err.message)
        self.assertNotIn(links.ETC_HINT, err.hint or "")

    def test_without_etc_sources_every_etc_link_is_outside(self) -> None:
        make(self.root, {"usr/lib/ssl/openssl.cnf": "->/etc/ssl/openssl.cnf"})
        make(self.base, {"etc/ssl/openssl.cnf": "x"})
        err = self.refused(None)
        self.assertIn("usr/lib/ssl/openssl.cnf -> /etc/ssl/openssl.cnf (outside /usr and /opt)",
                      err.message)


class TestAssemble(LinksTestCase):
    """assemble() hands what it lowered, and the base, to the link rule."""

    def test_links_to_lowered_files_pass_and_missing_ones_do_not(self) -> None:
        make(self.root, {**OPENSSL_LINKS, "etc/ssl/openssl.cnf": "cnf",
                         "etc/ssl/certs/ca-certificates.crt": "certs", "etc/ssl/private": None})
        assemble(self.root, "ext", FIELDS, [], strict=False, epoch=0)
        self.assertTrue((self.root / "usr/share/factory/etc/ssl/openssl.cnf").is_file())

    def test_without_base_a_link_to_an_unlowered_etc_path_is_refused(self) -> None:
        make(self.root, {"usr/lib/ssl/certs": "->/etc/ssl/certs", "etc/other.conf": "x"})
        err = self.assertRaises(TreeRuleError, assemble, self.root, "ext", FIELDS, [],
                                strict=False, epoch=0)
        self.assertIn("(/etc/ssl/certs is not in the image's lowered /etc)", err.message)

    def test_base_etc_provides_the_targets(self) -> None:
        make(self.root, OPENSSL_LINKS)
        make(self.base, {"etc/ssl/certs/ca-certificates.crt": "c", "etc/ssl/private": None,
                         "etc/ssl/openssl.cnf": "x"})
        assemble(self.root, "ext", FIELDS, [], strict=False, epoch=0, base=self.base)
        os.unlink(self.base / "etc/ssl/openssl.cnf")
        (self.root / "usr/lib/extension-release.d/extension-release.ext").unlink()
        err = self.assertRaises(TreeRuleError, assemble, self.root, "ext", FIELDS, [],
                                strict=False, epoch=0, base=self.base)
        self.assertIn("usr/lib/ssl/openssl.cnf -> /etc/ssl/openssl.cnf (/etc/ssl/openssl.cnf "
                      "is neither in the image's lowered /etc nor in the base)", err.message)
