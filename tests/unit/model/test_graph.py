"""Pure resolution tests over an in-memory catalog (no disk)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from sysext_builder.errors import (
    DependencyCycleError,
    ElementFormatError,
    MissingElementError,
    MissingProviderError,
    ProvidesConflictError,
)
from sysext_builder.model import graph
from sysext_builder.model.element import Element
from tests.base import FakeCatalog, TestCase

SEARCHED = FakeCatalog.SEARCHED

DIAMOND = {
    "app": (["lib-b", "lib-a"], []),
    "lib-a": (["base"], []),
    "lib-b": (["base"], []),
    "base": ([], []),
    "unrelated": (["base"], []),
}

# glean provides network-config and so replaces the real element of that name
# (and everything only the real one needed, dhcp-client).
REPLACE = {
    "image": (["tools", "network-config"], []),
    "tools": ([], []),
    "network-config": (["dhcp-client"], []),
    "dhcp-client": ([], []),
    "glean": ([], ["network-config"]),
    "zz-glean": ([], ["network-config"]),
    "wrapper": (["zz-glean"], []),
    "image-glean": (["image", "glean"], []),
    "image-zz": (["image", "zz-glean"], []),
    "image-deep": (["image", "wrapper"], []),
}


def resolve(spec: dict, *requested: str) -> graph.Resolution:
    return graph.resolve(list(requested), FakeCatalog(spec))


class TestOrder(TestCase):

    def test_diamond(self) -> None:
        res = resolve(DIAMOND, "app")
        self.assertEqual(("base", "lib-a", "lib-b", "app"), res.names)
        self.assertEqual(("app",), res.requested)
        self.assertEqual({}, dict(res.virtual))

    def test_every_element_after_its_deps(self) -> None:
        spec = {"a": (["z"], []), "b": ([], []), "z": (["y"], []), "y": ([], [])}
        res = resolve(spec, "a", "b")
        names = res.names
        for element in res.order:
            for dep in element.deps:
                self.assertLess(names.index(dep), names.index(element.name))
        # lexicographical topological order: smallest ready name first
        self.assertEqual(("b", "y", "z", "a"), names)

    def test_ties_broken_by_name(self) -> None:
        spec = {"top": (["zz", "aa", "mm"], []), "zz": ([], []), "aa": ([], []), "mm": ([], [])}
        self.assertEqual(("aa", "mm", "zz", "top"), resolve(spec, "top").names)

    def test_request_order_does_not_matter(self) -> None:
        spec = {**DIAMOND, "other": (["lib-b"], [])}
        results = {resolve(spec, *perm).names for perm in itertools.permutations(
            ["app", "other", "lib-a"])}
        self.assertEqual({("base", "lib-a", "lib-b", "app", "other")}, results)

    def test_requested_kept_in_given_order_without_duplicates(self) -> None:
        res = resolve(DIAMOND, "lib-b", "app", "lib-b")
        self.assertEqual(("lib-b", "app"), res.requested)

    def test_only_needed_elements_are_loaded(self) -> None:
        catalog = FakeCatalog(DIAMOND)
        graph.resolve(["lib-a"], catalog)
        self.assertEqual({"lib-a", "base"}, set(catalog.loaded))

    def test_element_lookup(self) -> None:
        res = resolve(DIAMOND, "app")
        self.assertEqual(("base",), res.element("lib-a").deps)
        self.assertRaises(KeyError, res.element, "unrelated")

    def test_depending_on_a_name_it_provides_itself(self) -> None:
        res = resolve({"x": (["net"], ["net"])}, "x")
        self.assertEqual(("x",), res.names)
        self.assertEqual({"net": "x"}, dict(res.virtual))
        self.assertEqual([], list(res.graph.edges))


class TestProvides(TestCase):

    def test_real_element_when_nobody_provides(self) -> None:
        res = resolve(REPLACE, "image")
        self.assertEqual(("dhcp-client", "network-config", "tools", "image"), res.names)
        self.assertEqual({}, dict(res.virtual))

    def test_provider_replaces_real_element(self) -> None:
        res = resolve(REPLACE, "image-glean")
        self.assertEqual(("glean", "tools", "image", "image-glean"), res.names)
        self.assertEqual({"network-config": "glean"}, dict(res.virtual))
        self.assertEqual("network-config", res.graph.edges["image", "glean"]["via"])
        self.assertNotIn("via", res.graph.edges["image-glean", "glean"])

    def test_replacement_does_not_depend_on_walk_order(self) -> None:
        # The provider is reached before, after, and deeper than the real element.
        for top, provider, extra in (("image-glean", "glean", ()),
                                     ("image-zz", "zz-glean", ()),
                                     ("image-deep", "zz-glean", ("wrapper",))):
            res = resolve(REPLACE, top)
            self.assertEqual({"network-config": provider}, dict(res.virtual), top)
            self.assertEqual({top, "image", "tools", provider, *extra}, set(res.names), top)

    def test_requesting_provider_alongside(self) -> None:
        for requested in (["image", "glean"], ["glean", "image"]):
            res = resolve(REPLACE, *requested)
            self.assertEqual(("glean", "tools", "image"), res.names)

    def test_why_and_chain_through_virtual_name(self) -> None:
        res = resolve(REPLACE, "image-glean")
        self.assertEqual([["image-glean", "glean"], ["image-glean", "image", "glean"]],
                         res.why("network-config"))
        self.assertEqual(["image-glean", "glean"], res.chain("glean"))


class TestWhy(TestCase):

    def test_why_selected(self) -> None:
        res = resolve(DIAMOND, "app")
        self.assertEqual("requested", res.why_selected("app"))
        self.assertEqual("required by app -> lib-a", res.why_selected("lib-a"))
        # the first chain in sorted breadth-first order
        self.assertEqual("required by app -> lib-a -> base", res.why_selected("base"))
        self.assertEqual(["app", "lib-a", "base"], res.chain("base"))

    def test_why_lists_every_chain(self) -> None:
        res = resolve(DIAMOND, "app", "unrelated")
        self.assertEqual([["app", "lib-a", "base"], ["app", "lib-b", "base"],
                          ["unrelated", "base"]], res.why("base"))

    def test_why_requested_and_unknown(self) -> None:
        res = resolve(DIAMOND, "app")
        self.assertEqual([["app"]], res.why("app"))
        self.assertEqual([], res.why("unrelated"))
        self.assertEqual([], res.why("nothing-at-all"))

    def test_why_is_capped(self) -> None:
        # 2**7 = 128 chains from top to bottom through seven diamonds
        spec: dict = {"bottom": ([], [])}
        below = "bottom"
        for level in range(7):
            left, right, join = f"l{level}", f"r{level}", f"j{level}"
            spec[left] = ([below], [])
            spec[right] = ([below], [])
            spec[join] = ([left, right], [])
            below = join
        res = resolve(spec, below)
        chains = res.why("bottom")
        self.assertEqual(50, len(chains))
        self.assertEqual(sorted(chains), chains)
        self.assertTrue(all(c[0] == "j6" and c[-1] == "bottom" for c in chains))


class TestMissing(TestCase):

    def test_missing_requested_element(self) -> None:
        exc = self.assertRaises(MissingElementError, resolve, DIAMOND, "lib-c")
        self.assertEqual("element 'lib-c' not found (requested)", exc.message)
        self.assertEqual(f"did you mean 'lib-b' or 'lib-a'?; {SEARCHED}", exc.hint)
        self.assertEqual(11, exc.exit_code)

    def test_missing_requested_without_suggestion(self) -> None:
        exc = self.assertRaises(MissingElementError, resolve, DIAMOND, "app", "qqqqqqq")
        self.assertEqual("element 'qqqqqqq' not found (requested)", exc.message)
        self.assertEqual(SEARCHED, exc.hint)

    def test_missing_dependency_chain(self) -> None:
        spec = {"a": (["b"], []), "b": (["nosuch"], []), "no-such": ([], [])}
        exc = self.assertRaises(MissingElementError, resolve, spec, "a")
        self.assertEqual("element 'nosuch' not found (required by a -> b -> nosuch)", exc.message)
        self.assertEqual(f"did you mean 'no-such'?; {SEARCHED}", exc.hint)

    def test_did_you_mean_includes_virtual_names(self) -> None:
        spec = {"a": (["netwrk-config"], []), "glean": ([], ["network-config"])}
        exc = self.assertRaises(MissingElementError, resolve, spec, "a")
        self.assertEqual("element 'netwrk-config' not found (required by a -> netwrk-config)",
                         exc.message)
        self.assertIn("did you mean 'network-config'?", exc.hint or "")

    def test_virtual_name_without_selected_provider(self) -> None:
        spec = {"needs-net": (["network-config"], []), "glean-nm": ([], ["network-config"]),
                "glean-nd": ([], ["network-config"])}
        exc = self.assertRaises(MissingProviderError, resolve, spec, "needs-net")
        self.assertEqual("'network-config' needed by needs-net is provided by no selected "
                         "element (required by needs-net -> network-config)", exc.message)
        self.assertEqual("known providers: glean-nd, glean-nm; add one of them to the build",
                         exc.hint)
        self.assertEqual(12, exc.exit_code)

    def test_virtual_name_needed_by_several(self) -> None:
        spec = {"top": (["y", "x"], []), "x": (["net"], []), "y": (["net"], []),
                "p": ([], ["net"])}
        exc = self.assertRaises(MissingProviderError, resolve, spec, "top")
        self.assertEqual("'net' needed by x, y is provided by no selected element "
                         "(required by top -> x -> net)", exc.message)
        self.assertEqual("known providers: p; add one of them to the build", exc.hint)

    def test_provider_only_reachable_through_what_it_replaces(self) -> None:
        # real -> p, and p provides real: once p replaces real nothing pulls p in.
        spec = {"top": (["real"], []), "real": (["p"], []), "p": ([], ["real"])}
        exc = self.assertRaises(ProvidesConflictError, resolve, spec, "top")
        self.assertEqual("'real' is an element (required by top -> real) and is also "
                         "provided by p, which only 'real' itself selects", exc.message)
        self.assertEqual("depend on 'p' directly, or remove 'real' from its element-provides",
                         exc.hint)


class TestConflicts(TestCase):

    def test_two_selected_providers(self) -> None:
        spec = {"both": (["one", "two"], []), "one": ([], ["net"]), "two": ([], ["net"])}
        exc = self.assertRaises(ProvidesConflictError, resolve, spec, "both")
        self.assertEqual("'net' is provided by more than one selected element: "
                         "one (via both -> one) and two (via both -> two)", exc.message)
        self.assertEqual("select only one of them", exc.hint)
        self.assertEqual(13, exc.exit_code)

    def test_two_requested_providers(self) -> None:
        spec = {"one": ([], ["net"]), "two": ([], ["net"])}
        exc = self.assertRaises(ProvidesConflictError, resolve, spec, "two", "one")
        self.assertEqual("'net' is provided by more than one selected element: "
                         "one (requested) and two (requested)", exc.message)

    def test_requested_element_also_provided(self) -> None:
        spec = {"net-real": ([], []), "provider": ([], ["net-real"])}
        exc = self.assertRaises(ProvidesConflictError, resolve, spec, "net-real", "provider")
        self.assertEqual("'net-real' was requested but is also provided by provider (requested)",
                         exc.message)
        self.assertEqual("drop 'net-real' from the request or the element that provides it",
                         exc.hint)

    def test_requested_element_also_provided_by_a_dependency(self) -> None:
        spec = {"net-real": ([], []), "provider": ([], ["net-real"]), "top": (["provider"], [])}
        exc = self.assertRaises(ProvidesConflictError, resolve, spec, "top", "net-real")
        self.assertEqual("'net-real' was requested but is also provided by provider "
                         "(via top -> provider)", exc.message)


class TestCycles(TestCase):

    def assertCycle(self, spec: dict, requested: list[str], expected: str) -> None:
        exc = self.assertRaises(DependencyCycleError, resolve, spec, *requested)
        self.assertEqual(f"dependency cycle: {expected}", exc.message)
        self.assertEqual("remove one of these element-deps entries", exc.hint)
        self.assertEqual(14, exc.exit_code)

    def test_cycle_rotated_to_smallest_name(self) -> None:
        spec = {"top": (["c"], []), "c": (["a"], []), "a": (["b"], []), "b": (["c"], [])}
        self.assertCycle(spec, ["top"], "a -> b -> c -> a")
        self.assertCycle(spec, ["b"], "a -> b -> c -> a")

    def test_shortest_cycle_through_smallest_name(self) -> None:
        spec = {"a": (["b", "d"], []), "b": (["c"], []), "c": (["a"], []), "d": (["a"], [])}
        self.assertCycle(spec, ["c"], "a -> d -> a")

    def test_first_of_several_cycles(self) -> None:
        spec = {"top": (["x", "m"], []), "x": (["y"], []), "y": (["x"], []),
                "m": (["n"], []), "n": (["m"], [])}
        self.assertCycle(spec, ["top"], "m -> n -> m")

    def test_cycle_through_virtual_name(self) -> None:
        spec = {"top": (["a", "p"], []), "a": (["net"], []), "p": (["a"], ["net"])}
        self.assertCycle(spec, ["top"], "a -> p -> a")

    def test_self_loop_from_a_catalog(self) -> None:
        # load_element refuses self-dependencies, but any Catalog may hand one in.
        self.assertCycle({"s": (["s"], [])}, ["s"], "s -> s")


class TestOrderMatchesNetworkx(TestCase):
    """The hot-path sort is networkx's lexicographical_topological_sort, proven here."""

    def test_random_dags(self) -> None:
        import random

        import networkx as nx

        from sysext_builder.model.graph import _order, _to_digraph

        rng = random.Random(20261122)
        for _ in range(200):
            count = rng.randint(1, 40)
            names = [f"e{rng.randint(0, 999):03d}-{i}" for i in range(count)]
            rng.shuffle(names)
            edges: dict[str, dict[str, str | None]] = {n: {} for n in names}
            for i, name in enumerate(names):
                for target in rng.sample(names[i + 1:], k=min(len(names) - i - 1,
                                                             rng.randint(0, 3))):
                    edges[name][target] = rng.choice([None, "virt"])
            expected = list(nx.lexicographical_topological_sort(_to_digraph(edges).reverse()))
            self.assertEqual(expected, _order(edges))

    def test_cycle_gives_none(self) -> None:
        from sysext_builder.model.graph import _order

        self.assertIsNone(_order({"a": {"b": None}, "b": {"a": None}, "c": {}}))


class _BrokenCatalog(FakeCatalog):
    """A catalog where ``broken`` cannot be loaded (a malformed element file)."""

    def names(self) -> list[str]:
        return sorted([*super().names(), "broken"])

    def __contains__(self, name: object) -> bool:
        return name == "broken" or super().__contains__(name)

    def get(self, name: str) -> Element:
        if name == "broken":
            raise ElementFormatError("/fake/broken/element-deps:1: invalid element name 'x y'")
        return super().get(name)

    def load_all(self) -> Iterable[Element]:
        return [self.get(n) for n in self.names()]


class TestBrokenUnrelatedElement(TestCase):
    """Issue 12: a missing dependency was reported as a broken element elsewhere."""

    SPEC = {"a": (["b"], []), "b": (["nosuch"], []), "glean": ([], ["net"])}

    def test_missing_dependency_is_named_not_the_broken_element(self) -> None:
        exc = self.assertRaises(MissingElementError, graph.resolve, ["a"],
                                _BrokenCatalog(self.SPEC))
        self.assertEqual("element 'nosuch' not found (required by a -> b -> nosuch)",
                         exc.message)

    def test_providers_are_still_found_past_the_broken_element(self) -> None:
        spec = {"a": (["net"], []), "glean": ([], ["net"])}
        exc = self.assertRaises(MissingProviderError, graph.resolve, ["a"],
                                _BrokenCatalog(spec))
        self.assertIn("known providers: glean", exc.hint or "")

    def test_a_broken_element_that_is_needed_is_reported(self) -> None:
        spec = {"a": (["broken"], [])}
        exc = self.assertRaises(ElementFormatError, graph.resolve, ["a"], _BrokenCatalog(spec))
        self.assertIn("/fake/broken/element-deps:1", exc.message)

    def test_resolution_without_missing_names_never_loads_it(self) -> None:
        res = graph.resolve(["a"], _BrokenCatalog({"a": ([], [])}))
        self.assertEqual(("a",), res.names)


# DIB's shape: an element needs the plumbing and an operating system; the OS
# element pulls in its own tools
DIB = {
    "growroot": (["dib-init-system", "package-installs", "pkg-map"], []),
    "dib-init-system": (["package-installs"], []),
    "package-installs": (["dib-python"], []),
    "pkg-map": ([], []),
    "dib-python": ([], []),
    "debian-minimal": (["debootstrap"], ["operating-system"]),
    "debootstrap": ([], []),
    "needs-os": (["operating-system"], []),
}


class TestBuiltInAndBase(TestCase):

    def resolve(self, *names: str, base: bool = True) -> graph.Resolution:
        from sysext_builder.model import builtin

        return graph.resolve(list(names), FakeCatalog(DIB), built_in=builtin.BUILT_IN,
                             skip_provides=[builtin.OPERATING_SYSTEM] if base else [])

    def test_plumbing_dependencies_are_not_selected(self) -> None:
        res = self.resolve("growroot")
        self.assertEqual(("dib-init-system", "growroot"), res.names)
        self.assertEqual(["package-installs", "pkg-map"], sorted(res.skipped))

    def test_requested_plumbing_is_skipped_not_refused(self) -> None:
        res = self.resolve("pkg-map", "growroot")
        self.assertNotIn("pkg-map", res.names)
        self.assertIn("pkg-map", res.skipped)

    def test_an_os_element_is_skipped_with_its_tools_under_a_base(self) -> None:
        res = self.resolve("debian-minimal", "needs-os")
        self.assertEqual(("needs-os",), res.names)
        self.assertIn("--base supplies", res.skipped["debian-minimal"])

    def test_without_a_base_the_os_element_is_built(self) -> None:
        res = self.resolve("debian-minimal", "needs-os", base=False)
        self.assertEqual(("debootstrap", "debian-minimal", "needs-os"), res.names)

    def test_without_a_base_operating_system_must_be_provided(self) -> None:
        self.assertRaises(MissingProviderError, self.resolve, "needs-os", base=False)
