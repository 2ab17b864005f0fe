"""Resolution must not depend on hash seeds, directory order or walk order."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fixtures

from sysext_builder.model import discovery, graph
from tests.base import TestCase, fixture_dir, run_module, write_tree

SEEDS = ("0", "1", "42", "12345", "random")


def synthetic_spec(count: int = 60, seed: int = 20261122) -> dict[str, dict[str, Any]]:
    """A random DAG with diamonds and virtual names that replace real elements.

    ``v<i>`` exist as real elements *and* are provided by ``p<i>``; ``top``
    pulls in every provider, so each real ``v<i>`` must be replaced whichever
    way the graph is walked.  Only ``e00``-``e29`` need virtual names and the
    providers need only ``e40`` and up, so there is no cycle.
    """
    rng = random.Random(seed)
    names = [f"e{i:02d}" for i in range(count)]
    virtual = [f"v{i}" for i in range(5)]
    spec: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(names):
        later = names[i + 1:]
        deps = rng.sample(later, k=min(len(later), rng.randint(0, 3)))
        if i < 30 and rng.random() < 0.4:
            deps.append(rng.choice(virtual))
        spec[name] = {"deps": deps}
    for i, vname in enumerate(virtual):
        spec[vname] = {"deps": rng.sample(names[30:], k=2)}
        spec[f"p{i}"] = {"deps": rng.sample(names[40:], k=1), "provides": [vname]}
    spec["top"] = {"deps": [*names[:10], *(f"p{i}" for i in range(5))]}
    return spec


class TestHashSeed(TestCase):
    """Whole processes under several PYTHONHASHSEED values print identical bytes."""

    def outputs(self, root: Path, *args: str) -> dict[str, bytes]:
        result = {}
        for seed in SEEDS:
            proc = run_module(["sysext-element-info", "--element-path", str(root), *args],
                              env={"PYTHONHASHSEED": seed})
            self.assertEqual(0, proc.returncode, proc.stderr.decode())
            result[seed] = proc.stdout
        return result

    def assertIdentical(self, outputs: dict[str, bytes]) -> None:
        reference = outputs[SEEDS[0]]
        self.assertNotEqual(b"", reference)
        for seed, out in outputs.items():
            self.assertEqual(reference, out, f"PYTHONHASHSEED={seed}")

    def test_fixture_tree_json(self) -> None:
        outputs = self.outputs(fixture_dir("provides"), "--json", "image-glean", "image")
        self.assertIdentical(outputs)
        self.assertIn(b'"network-config": "glean"', outputs["0"])

    def test_fixture_tree_graph(self) -> None:
        self.assertIdentical(self.outputs(fixture_dir("provides"), "--graph", "image-glean"))

    def test_synthetic_tree(self) -> None:
        root = Path(self.useFixture(fixtures.TempDir()).path) / "elements"
        write_tree(root, synthetic_spec())
        outputs = self.outputs(root, "--json", "top")
        self.assertIdentical(outputs)
        for i in range(5):
            self.assertIn(f'"v{i}": "p{i}"'.encode(), outputs["0"])


class _ShuffledScandir:
    def __init__(self, entries: list[os.DirEntry[str]]) -> None:
        self.entries = entries

    def __enter__(self) -> Iterator[os.DirEntry[str]]:
        return iter(self.entries)

    def __exit__(self, *exc: object) -> None:
        return None

    def __iter__(self) -> Iterator[os.DirEntry[str]]:
        return iter(self.entries)


class TestDirectoryOrder(TestCase):

    def setUp(self) -> None:
        super().setUp()
        self.isolate_search_path()
        self.tmp = Path(self.useFixture(fixtures.TempDir()).path)
        self.spec = synthetic_spec()

    def summary(self, root: Path) -> tuple[Any, ...]:
        res = graph.resolve(["top"], discovery.index([str(root)], {}))
        return (res.names, dict(res.virtual), dict(res.parents),
                tuple(res.why_selected(n) for n in res.names),
                sorted(res.graph.edges(data="via")))

    def test_creation_order(self) -> None:
        summaries = []
        for attempt, rng_seed in enumerate((1, 2, 3)):
            order = sorted(self.spec)
            random.Random(rng_seed).shuffle(order)
            root = write_tree(self.tmp / f"tree{attempt}", self.spec, order=order)
            summaries.append(self.summary(root))
        self.assertEqual(summaries[0], summaries[1])
        self.assertEqual(summaries[0], summaries[2])
        self.assertEqual({f"v{i}": f"p{i}" for i in range(5)}, summaries[0][1])

    def test_listing_order_patched(self) -> None:
        root = write_tree(self.tmp / "tree", self.spec)
        reference = self.summary(root)
        real_scandir, real_listdir = os.scandir, os.listdir
        for rng_seed in (7, 8, 9):
            rng = random.Random(rng_seed)

            def scandir(path: Any, rng: random.Random = rng) -> _ShuffledScandir:
                with real_scandir(path) as it:
                    entries = list(it)
                rng.shuffle(entries)
                return _ShuffledScandir(entries)

            def listdir(path: Any, rng: random.Random = rng) -> list[str]:
                entries = real_listdir(path)
                rng.shuffle(entries)
                return entries

            with fixtures.MonkeyPatch("os.scandir", scandir), \
                    fixtures.MonkeyPatch("os.listdir", listdir):
                # the patch is in force: the listing really is out of order
                listed = [e.name for e in os.scandir(root)]
                self.assertNotEqual(sorted(listed), listed)
                self.assertEqual(reference, self.summary(root), f"shuffle seed {rng_seed}")

    def test_graph_output_identical_across_trees(self) -> None:
        outputs = []
        for attempt, order in enumerate((sorted(self.spec), sorted(self.spec, reverse=True))):
            root = write_tree(self.tmp / f"t{attempt}", self.spec, order=order)
            result = self.run_cli(["--element-path", str(root), "--graph", "top"])
            self.assertEqual((0, ""), (result.code, result.stderr))
            outputs.append(result.stdout)
        self.assertEqual(outputs[0], outputs[1])
        self.assertIn('[label="v0", style=dashed]', outputs[0])
