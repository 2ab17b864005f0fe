"""Element discovery: the search path, its precedence and the ElementIndex."""

from __future__ import annotations

import importlib.metadata
import logging
import os
from pathlib import Path

import fixtures
from stevedore import extension

from sysext_builder import plugins
from sysext_builder.errors import MissingElementError, PluginError
from sysext_builder.model import discovery
from sysext_builder.model.element import ElementIndex, SearchDir
from tests.base import PACKAGE_DIR, TestCase, fixture_dir, write_tree

LOG_FORMAT = "%(levelname)s %(message)s"


class TestSearchPath(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.tmp = Path(self.useFixture(fixtures.TempDir()).path)
        self.builtin = self.tmp / "builtin"
        self.entry = self.tmp / "entry"
        self.isolate_search_path(builtin=self.builtin,
                                 entry_dirs=[("entry point e (pkg:dir)", self.entry)])

    def test_order_of_sources(self) -> None:
        env = {"ELEMENTS_PATH": f"{self.tmp}/env1::{self.tmp}/env2:"}
        result = discovery.search_path([f"{self.tmp}/cli1", f"{self.tmp}/cli2"], env)
        self.assertEqual([
            SearchDir(self.tmp / "cli1", "--element-path"),
            SearchDir(self.tmp / "cli2", "--element-path"),
            SearchDir(self.tmp / "env1", "ELEMENTS_PATH"),
            SearchDir(self.tmp / "env2", "ELEMENTS_PATH"),
            SearchDir(self.entry, "entry point e (pkg:dir)"),
            SearchDir(self.builtin, "built-in"),
        ], result)

    def test_without_entry_points_and_builtin(self) -> None:
        result = discovery.search_path(["x"], {}, entry_points=False, builtin=False)
        self.assertEqual([SearchDir(Path("x").absolute(), "--element-path")], result)

    def test_no_environ_means_no_elements_path(self) -> None:
        self.useFixture(fixtures.EnvironmentVariable("ELEMENTS_PATH", "/from/os/environ"))
        origins = [s.origin for s in discovery.search_path([], None)]
        self.assertEqual(["entry point e (pkg:dir)", "built-in"], origins)

    def test_relative_dirs_made_absolute(self) -> None:
        os.mkdir(self.tmp / "work")
        cwd = os.getcwd()
        os.chdir(self.tmp / "work")
        self.addCleanup(os.chdir, cwd)
        result = discovery.search_path(["rel-cli"], {"ELEMENTS_PATH": "rel-env"},
                                       entry_points=False, builtin=False)
        self.assertEqual([self.tmp / "work" / "rel-cli", self.tmp / "work" / "rel-env"],
                         [s.path for s in result])


class TestBuiltinDir(TestCase):

    def test_builtin_dir_is_the_package_elements_dir(self) -> None:
        last = discovery.search_path([], {}, entry_points=False)[-1]
        self.assertEqual(SearchDir(PACKAGE_DIR / "elements", "built-in"),
                         SearchDir(last.path.resolve(), last.origin))
        self.assertTrue((last.path / "azure-oem" / "README.rst").is_file())


class TestPrecedence(TestCase):
    """--element-path, then ELEMENTS_PATH, then entry points, then built-in."""

    LAYERS = ("cli", "env", "entry", "builtin")

    def setUp(self) -> None:
        super().setUp()
        self.tmp = Path(self.useFixture(fixtures.TempDir()).path)
        for layer in self.LAYERS:
            write_tree(self.tmp / layer, {
                "shared": {"deps": [f"only-{layer}"]},
                f"only-{layer}": {},
                # each name lives in this layer and every layer below it
                **{f"from-{layer}": {"README.rst": layer}},
            })
            for lower in self.LAYERS[self.LAYERS.index(layer) + 1:]:
                write_tree(self.tmp / lower, {f"from-{layer}": {"README.rst": layer}})
        self.isolate_search_path(builtin=self.tmp / "builtin",
                                 entry_dirs=[("entry point x (pkg:x)", self.tmp / "entry")])
        self.logger = self.useFixture(fixtures.FakeLogger(level=logging.WARNING,
                                                          format=LOG_FORMAT))

    def index(self) -> ElementIndex:
        return discovery.index([str(self.tmp / "cli")], {"ELEMENTS_PATH": str(self.tmp / "env")})

    def test_first_hit_wins(self) -> None:
        idx = self.index()
        for layer in self.LAYERS:
            self.assertEqual(self.tmp / layer / f"from-{layer}",
                             idx.get(f"from-{layer}").path, layer)
            self.assertEqual(self.tmp / layer / f"only-{layer}", idx.get(f"only-{layer}").path)
        shared = idx.get("shared")
        self.assertEqual(self.tmp / "cli" / "shared", shared.path)
        self.assertEqual(("only-cli",), shared.deps)
        self.assertEqual("--element-path", shared.origin)
        self.assertEqual("ELEMENTS_PATH", idx.get("from-env").origin)
        self.assertEqual("entry point x (pkg:x)", idx.get("from-entry").origin)
        self.assertEqual("built-in", idx.get("from-builtin").origin)

    def test_every_override_logged_with_both_paths(self) -> None:
        self.index()
        lines = self.logger.output.splitlines()
        winner = self.tmp / "cli" / "shared"
        for i, layer in enumerate(self.LAYERS):
            if layer != "cli":
                self.assertIn(f"WARNING element shared: {winner} (--element-path) overrides "
                              f"{self.tmp / layer / 'shared'} ({self._origin(layer)})", lines)
            for lower in self.LAYERS[i + 1:]:
                name = f"from-{layer}"
                self.assertIn(f"WARNING element {name}: {self.tmp / layer / name} "
                              f"({self._origin(layer)}) overrides {self.tmp / lower / name} "
                              f"({self._origin(lower)})", lines)
        # 3 for shared, 3 + 2 + 1 for the from-* names; nothing else
        self.assertEqual(9, len(lines), self.logger.output)

    def _origin(self, layer: str) -> str:
        return {"cli": "--element-path", "env": "ELEMENTS_PATH",
                "entry": "entry point x (pkg:x)", "builtin": "built-in"}[layer]

class TestOverrideFixtures(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.isolate_search_path()
        self.logger = self.useFixture(fixtures.FakeLogger(level=logging.WARNING,
                                                          format=LOG_FORMAT))

    def test_override_fixture_trees(self) -> None:
        a, b = fixture_dir("override-a"), fixture_dir("override-b")
        idx = discovery.index([str(a)], {"ELEMENTS_PATH": str(b)})
        self.assertEqual(("only-a",), idx.get("common").deps)
        self.assertEqual(["common", "only-a", "only-b"], idx.names())
        self.assertIn(f"element common: {a / 'common'} (--element-path) overrides "
                      f"{b / 'common'} (ELEMENTS_PATH)", self.logger.output)
        idx = discovery.index([str(b), str(a)], {})
        self.assertEqual(("only-b",), idx.get("common").deps)
        self.assertIn(f"{b / 'common'} (--element-path) overrides {a / 'common'} "
                      "(--element-path)", self.logger.output)


class TestIndex(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.tmp = Path(self.useFixture(fixtures.TempDir()).path)
        self.logger = self.useFixture(fixtures.FakeLogger(level=logging.WARNING,
                                                          format=LOG_FORMAT))

    def index(self, *dirs: Path) -> ElementIndex:
        return ElementIndex([SearchDir(d, f"origin-{d.name}") for d in dirs])

    def test_missing_dir_warns(self) -> None:
        idx = self.index(self.tmp / "nope", fixture_dir("basic"))
        self.assertIn("app", idx)
        self.assertEqual(f"WARNING element directory {self.tmp / 'nope'} (origin-nope) "
                         "does not exist\n", self.logger.output)

    def test_file_instead_of_dir_warns(self) -> None:
        (self.tmp / "afile").write_text("x")
        idx = self.index(self.tmp / "afile")
        self.assertEqual([], idx.names())
        self.assertEqual(f"WARNING element path {self.tmp / 'afile'} (origin-afile) "
                         "is not a directory\n", self.logger.output)

    def test_unreadable_dir_warns(self) -> None:
        real_scandir = os.scandir

        def scandir(path: object) -> object:
            if Path(str(path)) == self.tmp / "locked":
                raise PermissionError(13, "Permission denied", str(path))
            return real_scandir(path)  # type: ignore[arg-type]

        self.useFixture(fixtures.MonkeyPatch("os.scandir", scandir))
        write_tree(self.tmp / "locked", {"hidden-by-perms": {}})
        write_tree(self.tmp / "open", {"visible": {}})
        idx = self.index(self.tmp / "locked", self.tmp / "open")
        self.assertEqual(["visible"], idx.names())
        self.assertEqual(f"WARNING element directory {self.tmp / 'locked'} (origin-locked) "
                         "cannot be read: Permission denied\n", self.logger.output)

    def test_hidden_ignored_invalid_warned_files_skipped(self) -> None:
        write_tree(self.tmp / "p", {".hidden": {}, ".git": {}, "bad name": {}, "-dash": {},
                                    "good": {}, "also_good.1": {}})
        (self.tmp / "p" / "README.rst").write_text("not an element")
        idx = self.index(self.tmp / "p")
        self.assertEqual(["also_good.1", "good"], idx.names())
        self.assertEqual([f"WARNING ignoring {self.tmp / 'p' / '-dash'}: '-dash' is not a "
                          "valid element name",
                          f"WARNING ignoring {self.tmp / 'p' / 'bad name'}: 'bad name' is not "
                          "a valid element name"], self.logger.output.splitlines())
        self.assertNotIn(".hidden", self.logger.output)

    def test_symlinked_element_dir(self) -> None:
        write_tree(self.tmp / "real", {"target": {"deps": ["x"]}})
        (self.tmp / "p").mkdir()
        (self.tmp / "p" / "linked").symlink_to(self.tmp / "real" / "target")
        idx = self.index(self.tmp / "p")
        self.assertEqual(("x",), idx.get("linked").deps)

    def test_lazy_and_cached(self) -> None:
        write_tree(self.tmp / "p", {"ok": {}, "broken": {"deps": ["not valid!"]}})
        idx = self.index(self.tmp / "p")
        self.assertEqual(["broken", "ok"], idx.names())  # indexing does not parse
        self.assertIs(idx.get("ok"), idx.get("ok"))
        self.assertEqual(SearchDir(self.tmp / "p", "origin-p"), idx.location("ok"))

    def test_get_unknown(self) -> None:
        idx = self.index(self.tmp / "one", self.tmp / "two")
        exc = self.assertRaises(MissingElementError, idx.get, "nope")
        self.assertEqual("element 'nope' not found", exc.message)
        self.assertEqual(f"searched: {self.tmp / 'one'}, {self.tmp / 'two'}", exc.hint)
        self.assertEqual("searched: (none)", ElementIndex([]).searched_hint())

    def test_load_all_sorted(self) -> None:
        idx = self.index(fixture_dir("basic"))
        self.assertEqual(["app", "base-files", "full", "lib-a", "lib-b"],
                         [e.name for e in idx.load_all()])


class TestEntryPoints(TestCase):
    """plugins.element_dirs over a stevedore test instance (no installed package)."""

    def use_extensions(self, *items: tuple[str, str, object]) -> None:
        exts = [extension.Extension(
            name, importlib.metadata.EntryPoint(name, value, plugins.ELEMENTS_NAMESPACE),
            plugin, None) for name, value, plugin in items]
        instance = extension.ExtensionManager.make_test_instance(
            exts, namespace=plugins.ELEMENTS_NAMESPACE)
        self.useFixture(fixtures.MonkeyPatch(
            "stevedore.extension.ExtensionManager", lambda *a, **k: instance))

    def test_paths_and_callables_sorted_by_name(self) -> None:
        self.use_extensions(("zeta", "zpkg:DIR", "/z/elements"),
                            ("alpha", "apkg:elements_dir", lambda: Path("/a/elements")))
        self.assertEqual([("entry point alpha (apkg:elements_dir)", Path("/a/elements")),
                          ("entry point zeta (zpkg:DIR)", Path("/z/elements"))],
                         plugins.element_dirs())

    def test_non_path_value(self) -> None:
        self.use_extensions(("bad", "bpkg:NUMBER", 42))
        exc = self.assertRaises(PluginError, plugins.element_dirs)
        self.assertEqual("element entry point 'bad' (bpkg:NUMBER) returned int, "
                         "not a directory path", exc.message)
        self.assertEqual(15, exc.exit_code)

    def test_entry_point_dir_between_env_and_builtin(self) -> None:
        tmp = Path(self.useFixture(fixtures.TempDir()).path)
        write_tree(tmp / "ep", {"common": {"deps": ["ep-dep"]}})
        write_tree(tmp / "builtin", {"common": {}})
        self.use_extensions(("mine", "mypkg:elements", str(tmp / "ep")))
        self.useFixture(fixtures.MonkeyPatch("sysext_builder.paths.builtin_elements_dir",
                                             lambda: tmp / "builtin"))
        logger = self.useFixture(fixtures.FakeLogger(level=logging.WARNING, format=LOG_FORMAT))
        idx = discovery.index([], {})
        self.assertEqual(("ep-dep",), idx.get("common").deps)
        self.assertEqual("entry point mine (mypkg:elements)", idx.get("common").origin)
        self.assertEqual(f"WARNING element common: {tmp / 'ep' / 'common'} (entry point mine "
                         f"(mypkg:elements)) overrides {tmp / 'builtin' / 'common'} (built-in)\n",
                         logger.output)
