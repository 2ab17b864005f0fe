"""Pure dependency resolution over loaded elements.

The result never depends on traversal order, hash seeds or directory listing
order: every iteration below walks sorted names, and the set of selected
elements is defined by a fixpoint, not by which element happened to be seen
first (diskimage-builder's expansion skips a dependency when an element that
provides it was expanded *earlier*, so its answer changes with set order).

Rules:

* A requested name must be a real element.
* A dependency ``d`` is satisfied by the selected element that lists ``d`` in
  ``element-provides``; only when no selected element provides ``d`` is the
  real element ``d`` selected.  The selection is computed by iterating
  "closure, then collect provides" until the provided names stop growing, so
  an element that replaces another through ``element-provides`` wins however
  the graph is walked.
* Two selected providers of one name, or a requested element that a selected
  element also provides, is a conflict.
* Names the builder implements itself (``built_in``: diskimage-builder's
  plumbing elements such as ``package-installs``, which DIB's elements pull in
  through ``element-deps``) are never selected, whether requested or needed;
  nor is an element that provides a name in ``skip_provides`` (DIB's OS
  elements provide ``operating-system``, which ``--base`` supplies), and a
  dependency on such a name is satisfied.  Each is listed in
  :attr:`Resolution.skipped` with the reason.
"""

from __future__ import annotations

import difflib
import functools
import heapq
import logging
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from sysext_builder.errors import (
    DependencyCycleError,
    MissingElementError,
    MissingProviderError,
    ProvidesConflictError,
    SysextBuilderError,
)
from sysext_builder.model.element import Element

if TYPE_CHECKING:
    import networkx as nx

LOG = logging.getLogger(__name__)
_MAX_WHY_CHAINS = 50


class Catalog(Protocol):
    """What resolution needs from an element source (ElementIndex or a test fake)."""

    def __contains__(self, name: object) -> bool: ...

    def get(self, name: str) -> Element: ...

    def names(self) -> list[str]: ...

    def load_all(self) -> Iterable[Element]: ...

    def searched_hint(self) -> str: ...


@dataclass(frozen=True)
class Resolution:
    """The ordered elements of a build and why each one is there."""

    requested: tuple[str, ...]
    order: tuple[Element, ...]
    #: name -> the element that first pulled it in (None for requested ones)
    parents: Mapping[str, str | None]
    #: virtual name -> providing element
    virtual: Mapping[str, str]
    #: name -> {needed element: virtual name it was needed through, or None}
    edges: Mapping[str, Mapping[str, str | None]]
    #: names not selected (built in, or an operating system given by --base) -> why
    skipped: Mapping[str, str] = field(default_factory=dict)

    @functools.cached_property
    def graph(self) -> nx.DiGraph[str]:
        """Edge a -> b: a needs b (attribute "via" for virtual names); built on first use."""
        return _to_digraph(self.edges)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.order)

    def element(self, name: str) -> Element:
        for element in self.order:
            if element.name == name:
                return element
        raise KeyError(name)

    def chain(self, name: str) -> list[str]:
        return _chain(self.parents, name)

    def why_selected(self, name: str) -> str:
        parent = self.parents[name]
        if parent is None:
            return "requested"
        return "required by " + " -> ".join(self.chain(name))

    def why(self, name: str) -> list[list[str]]:
        """Every dependency chain from a requested element to ``name`` (capped)."""
        import networkx as nx

        if name in self.virtual:
            name = self.virtual[name]
        if name not in self.graph:
            return []
        chains: list[list[str]] = []
        for root in sorted(set(self.requested)):
            if root == name:
                chains.append([root])
                continue
            for path in nx.all_simple_paths(self.graph, root, name):
                chains.append(list(path))
                if len(chains) >= _MAX_WHY_CHAINS:
                    return sorted(chains)
        return sorted(chains)


def _chain(parents: Mapping[str, str | None], name: str) -> list[str]:
    chain = [name]
    parent = parents.get(name)
    while parent is not None:
        chain.append(parent)
        parent = parents.get(parent)
    return chain[::-1]


@dataclass
class _Closure:
    selected: dict[str, Element]
    parents: dict[str, str | None]
    #: virtual name -> sorted names of the selected elements needing it
    needs: dict[str, list[str]]
    #: names left out on purpose -> why
    skipped: dict[str, str]


@dataclass(frozen=True)
class _Skip:
    built_in: Mapping[str, str]
    provides: frozenset[str]

    def satisfied(self, name: str) -> bool:
        return name in self.built_in or name in self.provides

    def element(self, element: Element) -> str | None:
        hit = sorted(self.provides & set(element.provides))
        return f"it provides {hit[0]!r}, which --base supplies" if hit else None


def _closure(requested: Sequence[str], catalog: Catalog, virtual: set[str],
             skip: _Skip) -> _Closure:
    """Breadth-first closure in sorted order; names in ``virtual`` are not pulled in."""
    selected: dict[str, Element] = {}
    parents: dict[str, str | None] = {}
    needs: dict[str, list[str]] = {}
    skipped: dict[str, str] = {}
    queue: deque[str] = deque()
    for name in sorted(set(requested)):
        parents[name] = None
        queue.append(name)
    while queue:
        name = queue.popleft()
        if name in skip.built_in:
            skipped[name] = skip.built_in[name]
            continue
        element = catalog.get(name)
        reason = skip.element(element)
        if reason is not None:
            skipped[name] = reason
            continue
        selected[name] = element
        for dep in sorted(element.deps):
            if dep in skip.provides:
                continue
            if dep in skip.built_in:
                skipped[dep] = skip.built_in[dep]
            elif dep in virtual or dep not in catalog:
                needs.setdefault(dep, []).append(name)
            elif dep not in parents:
                parents[dep] = name
                queue.append(dep)
    return _Closure(selected, parents, needs, skipped)


def _providers(selected: Mapping[str, Element]) -> dict[str, list[str]]:
    providers: dict[str, list[str]] = {}
    for name in sorted(selected):
        for provided in selected[name].provides:
            providers.setdefault(provided, []).append(name)
    return providers


def _did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(name, sorted(set(candidates)), n=3, cutoff=0.6)
    if not matches:
        return None
    return "did you mean " + " or ".join(repr(m) for m in matches) + "?"


def _check_requested(requested: Sequence[str], catalog: Catalog) -> None:
    for name in sorted(set(requested)):
        if name not in catalog:
            hints = [h for h in (_did_you_mean(name, catalog.names()),
                                 catalog.searched_hint()) if h]
            raise MissingElementError(f"element {name!r} not found (requested)",
                                      hint="; ".join(hints))


def _loadable(catalog: Catalog) -> list[Element]:
    """Every element of the catalog that loads: explanations of a missing name
    must not fail on an unrelated broken element elsewhere on the search path
    (sysext-element-lint reports those)."""
    elements = []
    for other in catalog.names():
        try:
            elements.append(catalog.get(other))
        except SysextBuilderError as exc:
            LOG.debug("element %s not considered as a provider: %s", other, exc)
    return elements


def _unsatisfied(name: str, needers: list[str], closure: _Closure, catalog: Catalog) -> None:
    first = needers[0]
    chain = " -> ".join(_chain(closure.parents, first) + [name])
    loadable = _loadable(catalog)
    known = sorted(e.name for e in loadable if name in e.provides)
    if name in catalog and known:
        # The element was replaced by a provider that only the element itself
        # pulled in: dropping the element dropped its replacement too.
        raise ProvidesConflictError(
            f"{name!r} is an element (required by {chain}) and is also provided by "
            f"{', '.join(known)}, which only {name!r} itself selects",
            hint=f"depend on {known[0]!r} directly, or remove {name!r} from its "
                 "element-provides")
    if known:
        raise MissingProviderError(
            f"{name!r} needed by {', '.join(needers)} is provided by no selected element "
            f"(required by {chain})",
            hint="known providers: " + ", ".join(known) + "; add one of them to the build")
    provided_names = [p for e in loadable for p in e.provides]
    hints = [h for h in [_did_you_mean(name, [*catalog.names(), *provided_names]),
                         catalog.searched_hint()] if h]
    raise MissingElementError(f"element {name!r} not found (required by {chain})",
                              hint="; ".join(hints))


def _check_conflicts(requested: Sequence[str], closure: _Closure,
                     providers: Mapping[str, list[str]]) -> None:
    def why(name: str) -> str:
        if closure.parents[name] is None:
            return f"{name} (requested)"
        return f"{name} (via {' -> '.join(_chain(closure.parents, name))})"

    for provided in sorted(providers):
        names = providers[provided]
        if len(names) > 1:
            raise ProvidesConflictError(
                f"{provided!r} is provided by more than one selected element: "
                + " and ".join(why(n) for n in names),
                hint="select only one of them")
        if provided in requested:
            raise ProvidesConflictError(
                f"{provided!r} was requested but is also provided by {why(names[0])}",
                hint=f"drop {provided!r} from the request or the element that provides it")


def _build_edges(closure: _Closure,
                 virtual: Mapping[str, str]) -> dict[str, dict[str, str | None]]:
    edges: dict[str, dict[str, str | None]] = {}
    for name in sorted(closure.selected):
        out: dict[str, str | None] = {}
        for dep in sorted(closure.selected[name].deps):
            if dep in closure.skipped or dep not in closure.selected and dep not in virtual:
                continue  # left out on purpose (or supplied by --base)
            if dep in virtual:
                target = virtual[dep]
                if target != name:
                    out[target] = dep  # as DiGraph.add_edge: the last "via" wins
            else:
                out.setdefault(dep, None)  # add_edge without data keeps a "via"
        edges[name] = out
    return edges


def _to_digraph(edges: Mapping[str, Mapping[str, str | None]]) -> nx.DiGraph[str]:
    import networkx as nx

    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from(edges)
    for name, out in edges.items():
        for target, via in out.items():
            if via is None:
                graph.add_edge(name, target)
            else:
                graph.add_edge(name, target, via=via)
    return graph


def _order(edges: Mapping[str, Mapping[str, str | None]]) -> list[str] | None:
    """Kahn's algorithm with a heap: each element after all it needs, ties by name.

    The same order as ``nx.lexicographical_topological_sort(graph.reverse())``
    without importing networkx; None when the graph has a cycle.
    """
    waiting = {name: len(out) for name, out in edges.items()}
    needed_by: dict[str, list[str]] = {name: [] for name in edges}
    for name, out in edges.items():
        for target in out:
            needed_by[target].append(name)
    heap = [name for name, count in waiting.items() if count == 0]
    heapq.heapify(heap)
    order: list[str] = []
    while heap:
        name = heapq.heappop(heap)
        order.append(name)
        for user in needed_by[name]:
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(heap, user)
    return order if len(order) == len(edges) else None


def _raise_cycle(graph: nx.DiGraph[str]) -> None:
    import networkx as nx

    # The shortest cycle through the smallest name of the first cyclic strongly
    # connected component: deterministic and cheap even on large graphs.
    # A self-loop is a one-node component (only a Catalog other than ElementIndex,
    # which rejects self-dependencies, can produce one).
    components = [sorted(c) for c in nx.strongly_connected_components(graph)
                  if len(c) > 1 or graph.has_edge(next(iter(c)), next(iter(c)))]
    component = min(components)
    start = component[0]
    sub = graph.subgraph(component)
    best: list[str] | None = None
    for succ in sorted(sub.successors(start)):
        path = nx.shortest_path(sub, succ, start)
        if best is None or len(path) < len(best):
            best = path
    assert best is not None
    cycle = [start, *best]
    raise DependencyCycleError("dependency cycle: " + " -> ".join(cycle),
                               hint="remove one of these element-deps entries")


def resolve(requested: Sequence[str], catalog: Catalog, *,
            built_in: Mapping[str, str] | None = None,
            skip_provides: Iterable[str] = ()) -> Resolution:
    """Resolve ``requested`` element names into a deterministic build order
    (``built_in`` and ``skip_provides``: see the module doc)."""
    skip = _Skip(dict(built_in or {}), frozenset(skip_provides))
    _check_requested([n for n in requested if n not in skip.built_in], catalog)
    virtual: set[str] = set()
    while True:
        closure = _closure(requested, catalog, virtual, skip)
        providers = _providers(closure.selected)
        grown = set(providers) - virtual - set(requested)
        if not grown:
            break
        virtual |= grown
        if grown.isdisjoint(closure.selected):
            # No newly provided name was pulled in as a real element, so every
            # reference to one already went to ``needs``: another pass would
            # walk the same closure.
            break
    _check_conflicts(requested, closure, providers)
    mapping = {name: providers[name][0] for name in providers}
    for name in sorted(closure.needs):
        if name not in mapping:
            _unsatisfied(name, closure.needs[name], closure, catalog)
    edges = _build_edges(closure, mapping)
    ordered = _order(edges)
    if ordered is None:
        _raise_cycle(_to_digraph(edges))
        raise AssertionError("unreachable")
    return Resolution(requested=tuple(dict.fromkeys(requested)),
                      order=tuple(closure.selected[n] for n in ordered),
                      parents=dict(closure.parents), virtual=mapping, edges=edges,
                      skipped=dict(sorted(closure.skipped.items())))
