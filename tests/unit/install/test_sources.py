"""source-repository-* parsing, overrides, destinations and placing of tar/file sources.

Git is exercised against real repositories in tests/functional/test_sources.py.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tarfile
from pathlib import Path

import fixtures
import testtools

from sysext_builder.errors import ElementFormatError, InstallError
from sysext_builder.install import sources
from sysext_builder.install.cache import Cache
from sysext_builder.install.sources import SourceRepo
from sysext_builder.model.element import load_element

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sources"
GOOD = FIXTURES / "good" / "source-repository-demo"
ENV = {"SRC_MIRROR": "https://mirror.example.org/src"}


def make_tar(path: Path, files: dict[str, bytes], symlinks: dict[str, str] | None = None
             ) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755 if name.endswith(".sh") else 0o644
            archive.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return path


class TestParse(testtools.TestCase):

    def test_fields_comments_blank_lines_and_line_numbers(self) -> None:
        repos = sources.parse(GOOD, "demo")
        self.assertEqual(
            [("glean", "git", "/tmp/glean.git", "https://opendev.org/opendev/glean", None, 3),
             ("pbr", "tar", "/opt/pbr", "${SRC_MIRROR}/pbr-6.0.0.tar.gz", "pbr-6.0.0", 4),
             ("helper", "file", "/usr/lib/demo/helper.sh", "$SRC_MIRROR/helper.sh", None, 6),
             ("diskimage-builder", "git", "/opt/dib",
              "https://opendev.org/openstack/diskimage-builder", "stable/2024.1", 7),
             ("legacy", "package", "/opt/legacy", "none", None, 8)],
            [(r.name, r.type, r.dest, r.location, r.ref, r.line) for r in repos])
        self.assertEqual({"demo"}, {r.element for r in repos})
        self.assertEqual(f"{GOOD}:4", repos[1].where)

    def test_errors_name_file_and_line(self) -> None:
        cases = {
            "bad-fields": (1, "expected 'NAME TYPE DEST LOCATION [REF]', got 3 field(s)"),
            "bad-type": (2, "type 'svn' is not one of git, tar, file, package"),
            "relative-dest": (1, "destination 'tmp/glean' must be absolute"),
        }
        for scenario, (line, message) in cases.items():
            path = FIXTURES / scenario / "source-repository-x"
            err = self.assertRaises(ElementFormatError, sources.parse, path)
            self.assertEqual(f"{path}:{line}: {message}", err.message.split(" (")[0])


class TestResolve(testtools.TestCase):

    def resolve(self, env: dict[str, str]) -> dict[str, SourceRepo]:
        return {r.name: r for r in sources.resolve(sources.parse(GOOD, "demo"), env)}

    def test_variables_are_expanded_and_package_type_is_skipped(self) -> None:
        repos = self.resolve(ENV)
        self.assertEqual(["glean", "pbr", "helper", "diskimage-builder"], list(repos))
        self.assertEqual("https://mirror.example.org/src/pbr-6.0.0.tar.gz",
                         repos["pbr"].location)
        self.assertEqual("https://mirror.example.org/src/helper.sh", repos["helper"].location)

    def test_undefined_variable_names_file_line_and_variable(self) -> None:
        err = self.assertRaises(ElementFormatError, self.resolve, {})
        self.assertEqual(f"{GOOD}:4: SRC_MIRROR is not set", err.message)

    def test_overrides_use_the_name_with_non_alphanumerics_as_underscores(self) -> None:
        self.assertEqual("diskimage_builder", sources.override_suffix("diskimage-builder"))
        env = dict(ENV, DIB_REPOLOCATION_diskimage_builder="/srv/git/dib",
                   DIB_REPOREF_diskimage_builder="refs/changes/72/61972/8",
                   DIB_REPOTYPE_helper="tar", DIB_REPOREF_glean="1.24.0")
        repos = self.resolve(env)
        dib = repos["diskimage-builder"]
        self.assertEqual(("/srv/git/dib", "refs/changes/72/61972/8"), (dib.location, dib.ref))
        self.assertEqual("tar", repos["helper"].type)
        self.assertEqual("1.24.0", repos["glean"].ref)
        self.assertEqual(3, repos["glean"].line)  # the origin stays known

    def test_invalid_type_override(self) -> None:
        err = self.assertRaises(ElementFormatError, self.resolve,
                                dict(ENV, DIB_REPOTYPE_glean="svn"))
        self.assertEqual(f"{GOOD}:3: type 'svn' (DIB_REPOTYPE_glean) is not one of git, tar, "
                         "file, package", err.message)

    def test_option_like_location_or_ref_is_refused(self) -> None:
        err = self.assertRaises(ElementFormatError, self.resolve,
                                dict(ENV, DIB_REPOREF_glean="--upload-pack=touch /tmp/x"))
        self.assertIn("ref '--upload-pack=touch /tmp/x' must not start with '-'", err.message)

    def test_install_type_other_than_source_skips_like_dib(self) -> None:
        logger = self.useFixture(fixtures.FakeLogger(level=logging.INFO))
        repos = self.resolve(dict(ENV, DIB_INSTALLTYPE_glean="package"))
        self.assertNotIn("glean", repos)
        self.assertIn("skipping glean: its install type is package", logger.output)
        self.assertEqual({}, self.resolve(dict(ENV, DIB_DEFAULT_INSTALLTYPE="package")))

    def test_no_source_repositories(self) -> None:
        self.assertEqual({}, self.resolve(dict(ENV, NO_SOURCE_REPOSITORIES="1")))

    def test_tar_without_ref_warns(self) -> None:
        logger = self.useFixture(fixtures.FakeLogger(level=logging.WARNING))
        repo = SourceRepo("t", "tar", "/opt/t", "/srv/t.tgz", None, Path("f"), 1)
        sources.resolve([repo], {})
        self.assertIn("tar repository t has no REF; extracting '*'", logger.output)

    def test_duplicate_destination_names_both(self) -> None:
        path = FIXTURES / "duplicate-dest" / "source-repository-x"
        err = self.assertRaises(ElementFormatError, sources.resolve, sources.parse(path), {})
        self.assertEqual(f"{path}:2: destination /opt/src/ is already used by one ({path}:1)",
                         err.message)


class TestCollect(testtools.TestCase):

    def test_every_file_of_every_element_in_order(self) -> None:
        root = Path(self.useFixture(fixtures.TempDir()).path)
        (root / "b").mkdir()
        (root / "b" / "source-repository-z").write_text("z file /opt/z /srv/z\n")
        (root / "b" / "source-repository-a").write_text("a file /opt/a /srv/a\n")
        (root / "a").mkdir()
        (root / "a" / "source-repository-x").write_text("x git /opt/x $LOC\n")
        repos = sources.collect([load_element(root / "b"), load_element(root / "a")],
                                {"LOC": "https://example.org/x"})
        self.assertEqual([("b", "a"), ("b", "z"), ("a", "x")],
                         [(r.element, r.name) for r in repos])
        self.assertEqual("https://example.org/x", repos[2].location)


class TestRedact(testtools.TestCase):

    def test_passwords_never_leave(self) -> None:
        self.assertEqual("https://bot:***@git.example.org/r.git",
                         sources.redact("https://bot:s3cret@git.example.org/r.git"))
        self.assertEqual("https://git.example.org/r.git",
                         sources.redact("https://git.example.org/r.git"))
        self.assertEqual("/srv/git/r", sources.redact("/srv/git/r"))


class PlaceTestCase(testtools.TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.tmp = Path(self.useFixture(fixtures.TempDir()).path)
        self.root = self.tmp / "root"
        self.root.mkdir()
        self.cache = Cache(self.tmp / "cache")

    def repo(self, kind: str, dest: str, location: Path, ref: str | None = None) -> SourceRepo:
        return SourceRepo(name="demo", type=kind, dest=dest, location=str(location), ref=ref,
                          file=self.tmp / "source-repository-demo", line=1, element="e")


class TestSafeDest(PlaceTestCase):

    def test_dotdot_is_refused(self) -> None:
        err = self.assertRaises(InstallError, sources.safe_dest, self.root, "/opt/../../etc",
                                "repo x")
        self.assertEqual("repo x: destination '/opt/../../etc' escapes the image root",
                         err.message)

    def test_symlink_out_of_the_root_is_refused(self) -> None:
        (self.root / "opt").symlink_to(self.tmp)
        (self.root / "abs").symlink_to("/usr")
        for dest in ("/opt/x", "/abs/share"):
            err = self.assertRaises(InstallError, sources.safe_dest, self.root, dest, "repo x")
            self.assertIn(f"destination '{dest}' escapes the image root through a symlink",
                          err.message)

    def test_symlink_of_the_base_under_an_upper_layer_is_refused(self) -> None:
        base = self.tmp / "base"
        (base / "usr/lib").mkdir(parents=True)
        (base / "lib").symlink_to("usr/lib")
        err = self.assertRaises(InstallError, sources.safe_dest, self.root, "/lib/demo/x",
                                "repo x", base)
        self.assertEqual("repo x: destination '/lib/demo/x' passes through the symlink /lib "
                         "of the base", err.message)
        self.assertEqual(self.root / "usr/lib/demo",
                         sources.safe_dest(self.root, "/usr/lib/demo", "repo x", base))
        (self.root / "lib").mkdir()  # the upper layer already replaced it: its own business
        self.assertEqual(self.root / "lib/x", sources.safe_dest(self.root, "/lib/x", "r", base))

    def test_symlink_inside_the_root_is_followed(self) -> None:
        (self.root / "usr" / "lib").mkdir(parents=True)
        (self.root / "lib").symlink_to("usr/lib")
        self.assertEqual(self.root / "lib" / "x", sources.safe_dest(self.root, "/lib/x", "r"))


class TestPlaceTarAndFile(PlaceTestCase):

    def setUp(self) -> None:
        super().setUp()
        self.tarball = make_tar(self.tmp / "proj-1.0.tar.gz", {
            "proj-1.0/setup.py": b"setup()\n", "proj-1.0/bin/run.sh": b"#!/bin/sh\n",
            "other/readme": b"other\n", "top-level-file": b"top\n"})

    def place(self, ref: str | None, dest: str = "/opt/proj") -> dict[str, str]:
        fetched = sources.fetch(self.repo("tar", dest, self.tarball, ref), self.cache)
        return sources.place(fetched, self.root)

    def files(self, top: str = "opt/proj") -> list[str]:
        base = self.root / top
        return sorted(str(p.relative_to(base)) for p in base.rglob("*") if not p.is_dir())

    def test_star_extracts_the_contents_of_every_top_level_directory(self) -> None:
        record = self.place("*")
        self.assertEqual(["bin/run.sh", "readme", "setup.py"], self.files())
        digest = hashlib.sha256(self.tarball.read_bytes()).hexdigest()
        self.assertEqual({"name": "demo", "type": "tar", "location": str(self.tarball),
                          "ref": "*", "resolved": digest, "dest": "/opt/proj"}, record)
        self.assertTrue(os.access(self.root / "opt/proj/bin/run.sh", os.X_OK))

    def test_dot_extracts_everything_and_a_path_selects_a_directory(self) -> None:
        self.place(".")
        self.assertEqual(["other/readme", "proj-1.0/bin/run.sh", "proj-1.0/setup.py",
                          "top-level-file"], self.files())
        self.place("proj-1.0/bin", dest="/opt/bin-only")
        self.assertEqual(["run.sh"], self.files("opt/bin-only"))

    def test_missing_subdirectory_is_an_error(self) -> None:
        err = self.assertRaises(InstallError, self.place, "proj-2.0")
        self.assertIn("the tarball has no directory 'proj-2.0'", err.message)
        self.assertIn(f"source repository demo ({self.tmp}/source-repository-demo:1)",
                      err.message)

    def test_archive_symlinks_do_not_let_files_out(self) -> None:
        evil = make_tar(self.tmp / "evil.tar.gz", {"p/x": b"x"}, {"p/link": "/etc"})
        fetched = sources.fetch(self.repo("tar", "/opt/evil", evil, "*"), self.cache)
        err = self.assertRaises(InstallError, sources.place, fetched, self.root)
        self.assertIn("'p/link' is a link to an absolute path", err.message)
        self.assertIn("refused", err.hint or "")
        self.assertFalse((self.root / "opt/evil/link").exists())

    def test_existing_symlink_in_root_is_not_written_through(self) -> None:
        outside = self.tmp / "outside"
        outside.mkdir()
        (self.root / "opt/proj").mkdir(parents=True)
        (self.root / "opt/proj/bin").symlink_to(outside)
        err = self.assertRaises(InstallError, self.place, "*")
        self.assertIn("is a symlink in the image root; refusing to write through it",
                      err.message)
        self.assertEqual([], list(outside.iterdir()))

    def test_file_is_copied_to_dest(self) -> None:
        script = self.tmp / "helper.sh"
        script.write_text("#!/bin/sh\necho hi\n")
        script.chmod(0o755)
        fetched = sources.fetch(self.repo("file", "/usr/lib/demo/helper.sh", script),
                                self.cache)
        record = sources.place(fetched, self.root)
        placed = self.root / "usr/lib/demo/helper.sh"
        self.assertEqual("#!/bin/sh\necho hi\n", placed.read_text())
        self.assertTrue(os.access(placed, os.X_OK))
        self.assertEqual(hashlib.sha256(script.read_bytes()).hexdigest(), record["resolved"])
        self.assertEqual("", record["ref"])

    def test_offline_cold_cache_names_the_repository_and_location(self) -> None:
        repo = self.repo("tar", "/opt/proj", self.tarball, "*")
        err = self.assertRaises(InstallError, sources.fetch, repo, self.cache, offline=True)
        self.assertEqual(f"source repository demo ({self.tmp}/source-repository-demo:1): "
                         f"{self.tarball} is not in the cache {self.cache.path} and "
                         "--offline is set", err.message)

    def test_offline_warm_cache_places_the_cached_copy(self) -> None:
        repo = self.repo("tar", "/opt/proj", self.tarball, "*")
        online = sources.fetch(repo, self.cache)
        self.tarball.unlink()
        offline = sources.fetch(repo, self.cache, offline=True)
        self.assertEqual(online.resolved, offline.resolved)
        sources.place(offline, self.root)
        self.assertEqual(["bin/run.sh", "readme", "setup.py"], self.files())
