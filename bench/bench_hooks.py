#!/usr/bin/env python3
"""Benchmark: sysext-create's hook dispatch cost (issue 3).

Generates (in a temp dir) two trees of 50 elements each, identical except
that one has 200 trivial hooks (``#!/bin/sh`` + ``:``) spread over the six
build phases (4 per element, round-robin over the phases, so 33-34 per
phase).  Both trees have the same ``static/`` (so the image has a ``usr/``)
and the same ``environment.d`` files (``--env-files``), so everything but the
hooks cancels.  Both are built with ``-t directory``, alternately, ``--runs``
times.  Printed:

* **delta**: (median build time with hooks - median without) / 200, the
  headline ms per hook (target <= 10 ms), with the spread of the per-pair
  deltas;
* **cycle**: from the timestamps of the ``running`` lines in the INFO log,
  the interval between consecutive hooks of a phase (start of one hook to
  start of the next: process start, run, exit, and the builder's own work);
* **launcher** (from ``--debug`` runs, which log ``done in`` per hook): the
  time from starting a hook's process to reaping it, and the rest of the
  cycle, which is the builder's per-hook Python work;
* **floor**: the same hook started ``--floor`` times straight from Python
  with the same ``subprocess.Popen`` options ``runner.stream`` uses (the
  least any process-per-hook design pays on this machine);
* per-phase overhead without hooks (``environment.d`` sourcing).

Usage::

    python bench/bench_hooks.py                 # 5 runs each, 3 --debug runs
    python bench/bench_hooks.py --runs 10 --interpreter bash --env-files 20
    python bench/bench_hooks.py --keep          # keep the generated trees

Exit status 1 when the delta misses the target.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_MS = 10.0
PHASES = ("extra-data.d", "pre-install.d", "install.d", "post-install.d", "finalise.d",
          "cleanup.d")
IMAGE = "bench-hooks"

_TS = r"(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z"
_RUNNING_RE = re.compile(_TS + r" INFO\s+\[(?P<hook>[^\]]+)\] running (?P<label>\S+)$")
_PHASE_RE = re.compile(_TS + r" INFO\s+==> phase (?P<phase>\S+)$")
_DONE_RE = re.compile(r"DEBUG\s+\[(?P<hook>[^\]]+)\] done in (?P<sec>\d+\.\d+)s$")
_STEP_RE = re.compile(r"^\S+Z INFO\s+(?P<name>.*?)\s+(?P<sec>\d+\.\d+)$")


def element_name(i: int) -> str:
    return f"bhook-{i:02d}"


def generate(root: Path, *, elements: int, hooks: int, env_files: int, interpreter: str,
             with_hooks: bool) -> list[str]:
    """Write one tree; return the element names to build."""
    names = [element_name(i) for i in range(elements)]
    shebang = {"sh": "#!/bin/sh", "bash": "#!/bin/bash"}[interpreter]
    for i, name in enumerate(names):
        element = root / name
        element.mkdir(parents=True)
        (element / "README.rst").write_text(f"{name}\n\nBenchmark element (hook dispatch).\n")
        if i == 0:
            static = element / "static" / "usr" / "share" / "bench-hooks"
            static.mkdir(parents=True)
            (static / "marker").write_text("bench\n")
        if i < env_files:
            (element / "environment.d").mkdir()
            (element / "environment.d" / f"{10 + i:02d}-{name}").write_text(
                f"export BENCH_HOOKS_{i}=value-{i}\n")
    if with_hooks:
        for n in range(hooks):
            i, k = n % elements, n // elements
            phase = PHASES[n % len(PHASES)]
            # numeric prefix spread so ordering has work to do; the name is unique per phase
            hook = root / names[i] / phase / f"{10 + (n * 37) % 80:02d}-{names[i]}-{k}"
            hook.parent.mkdir(exist_ok=True)
            hook.write_text(f"{shebang}\n:\n")
            hook.chmod(0o755)
    return names


def _ts(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f").timestamp()


def parse_log(stderr: str) -> dict[str, object]:
    """Hook start times per phase, phase start times, ``done in`` times, step table."""
    running: dict[str, list[float]] = {}
    phase_start: dict[str, float] = {}
    done: list[float] = []
    steps: dict[str, float] = {}
    current = ""
    in_table = False
    for line in stderr.splitlines():
        if m := _PHASE_RE.match(line):
            current = m["phase"]
            phase_start[current] = _ts(m["ts"])
        elif m := _RUNNING_RE.match(line):
            running.setdefault(current, []).append(_ts(m["ts"]))
        elif m := _DONE_RE.search(line):
            done.append(float(m["sec"]))
        elif re.search(r"INFO\s+step\s+seconds$", line):
            in_table = True
        elif in_table and (m := _STEP_RE.match(line)):
            steps[re.sub(r" -> .*", "", m["name"])] = float(m["sec"])
    return {"running": running, "phase_start": phase_start, "done": done, "steps": steps}


def cycle_ms(log: dict[str, object]) -> float | None:
    """Mean interval between consecutive hook starts within a phase (ms)."""
    running = log["running"]
    assert isinstance(running, dict)
    span = 0.0
    gaps = 0
    for starts in running.values():
        if len(starts) > 1:
            span += starts[-1] - starts[0]
            gaps += len(starts) - 1
    return 1000 * span / gaps if gaps else None


def env_ms(log: dict[str, object]) -> float | None:
    """Mean time from a phase's start to its first hook (environment.d sourcing), ms."""
    running, starts = log["running"], log["phase_start"]
    assert isinstance(running, dict) and isinstance(starts, dict)
    gaps = [running[p][0] - starts[p] for p in running if p in starts and p != "install.d"]
    return 1000 * statistics.mean(gaps) if gaps else None


def build_args(tree: Path, names: list[str], work: Path, debug: bool) -> list[str]:
    """sysext-create's arguments; also empties WORK/out."""
    out = work / "out"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    argv = ["--element-path", str(tree), "--os-id", "debian", "--os-version-id", "12",
            "-t", "directory", "--workdir", str(work), "-o", str(out / IMAGE)]
    if debug:
        argv.append("--debug")
    return argv + names


def build_env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), SOURCE_DATE_EPOCH="1700000000")
    env.pop("ELEMENTS_PATH", None)
    return env


def build(python: str, tree: Path, names: list[str], work: Path, debug: bool) -> tuple[float, str]:
    argv = [python, "-m", "sysext_builder", "sysext-create",
            *build_args(tree, names, work, debug)]
    env = build_env()
    t0 = time.monotonic()
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"bench: sysext-create failed (exit {proc.returncode}):\n"
                         + "\n".join(proc.stderr.splitlines()[-30:]))
    return elapsed, proc.stderr


def spawn_floor(hook: Path, count: int) -> float:
    """ms per start of ``hook`` with runner.stream's Popen options (stdout read to EOF)."""
    env = dict(os.environ)
    env.update({f"BENCH_VAR_{i}": "x" * 20 for i in range(30)})  # a hook-sized environment
    t0 = time.monotonic()
    for _ in range(count):
        proc = subprocess.Popen([str(hook)], env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        assert proc.stdout is not None
        for _line in proc.stdout:
            pass
        proc.wait()
        proc.stdout.close()
    return 1000 * (time.monotonic() - t0) / count


def _spread(values: list[float], unit: str = "", digits: int = 2) -> str:
    med = statistics.median(values)
    return (f"median {med:.{digits}f}{unit} [{min(values):.{digits}f}-"
            f"{max(values):.{digits}f}] (n={len(values)})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--elements", type=int, default=50, help="default: %(default)s")
    p.add_argument("--hooks", type=int, default=200, help="default: %(default)s")
    p.add_argument("--env-files", type=int, default=10,
                   help="elements with an environment.d file, in both trees "
                        "(default: %(default)s)")
    p.add_argument("--interpreter", choices=("sh", "bash"), default="sh",
                   help="the hooks' #! (default: %(default)s)")
    p.add_argument("--runs", type=int, default=5, help="timed runs of each (default: %(default)s)")
    p.add_argument("--debug-runs", type=int, default=3,
                   help="extra --debug builds with hooks for the per-hook split "
                        "(default: %(default)s)")
    p.add_argument("--breakdown", type=int, default=1, metavar="N",
                   help="extra instrumented builds with hooks timing the builder's functions "
                        "(see bench_build.py; default: %(default)s, 0: none)")
    p.add_argument("--floor", type=int, default=200,
                   help="process starts for the spawn floor (default: %(default)s, 0: skip)")
    p.add_argument("--python", default=sys.executable,
                   help="interpreter running sysext-create (default: this one)")
    p.add_argument("--keep", action="store_true", help="keep the generated trees")
    p.add_argument("--json", metavar="FILE", help="also write every timing to FILE")
    args = p.parse_args(argv)

    top = Path(tempfile.mkdtemp(prefix="sysext-bench-hooks."))
    try:
        trees = {}
        for label, with_hooks in (("hooks", True), ("nohooks", False)):
            trees[label] = top / label
            names = generate(trees[label], elements=args.elements, hooks=args.hooks,
                             env_files=args.env_files, interpreter=args.interpreter,
                             with_hooks=with_hooks)
        work = top / "work"
        work.mkdir()
        print(f"trees: {top} ({args.elements} elements, {args.hooks} #!/bin/{args.interpreter} "
              f"hooks, {args.env_files} environment.d files); -t directory; "
              f"{args.runs} runs each, alternating")

        times: dict[str, list[float]] = {"hooks": [], "nohooks": []}
        logs: dict[str, list[dict[str, object]]] = {"hooks": [], "nohooks": []}
        build(args.python, trees["hooks"], names, work, False)  # warm-up, untimed
        for i in range(args.runs):
            order = ("hooks", "nohooks") if i % 2 == 0 else ("nohooks", "hooks")
            for label in order:
                elapsed, stderr = build(args.python, trees[label], names, work, False)
                times[label].append(elapsed)
                logs[label].append(parse_log(stderr))
                print(f"  run {i + 1} {label:<8} {elapsed:6.3f}s", flush=True)
        debug_logs = [parse_log(build(args.python, trees["hooks"], names, work, True)[1])
                      for _ in range(args.debug_runs)]
        from bench_build import breakdown, print_breakdown

        breakdowns = [breakdown(args.python, build_args(trees["hooks"], names, work, False),
                                build_env(), REPO, top / "breakdown.json")
                      for _ in range(args.breakdown)]
        floor = None
        if args.floor:
            hook = next(h for phase in PHASES
                        for h in sorted((trees["hooks"] / names[0]).glob(f"{phase}/*")))
            floor = spawn_floor(hook, args.floor)
    finally:
        if not args.keep:
            shutil.rmtree(top, ignore_errors=True)

    n = args.hooks
    deltas = [1000 * (h - b) / n for h, b in zip(times["hooks"], times["nohooks"], strict=True)]
    delta = 1000 * (statistics.median(times["hooks"]) - statistics.median(times["nohooks"])) / n
    cycles = [c for c in (cycle_ms(log) for log in logs["hooks"]) if c is not None]
    envs = [e for e in (env_ms(log) for log in logs["hooks"]) if e is not None]

    print(f"\nbuild with {n} hooks:     {_spread(times['hooks'], 's', 3)}")
    print(f"build without hooks:     {_spread(times['nohooks'], 's', 3)}")
    print("\nsysext-create step table (medians, s):   with hooks  without")
    step_names = list(logs["hooks"][0]["steps"])  # type: ignore[call-overload]
    for name in step_names:
        with_h = statistics.median(log["steps"].get(name, 0.0)  # type: ignore[attr-defined]
                                   for log in logs["hooks"])
        without = statistics.median(log["steps"].get(name, 0.0)  # type: ignore[attr-defined]
                                    for log in logs["nohooks"])
        print(f"  {name:<38} {with_h:8.3f} {without:8.3f}")

    if breakdowns:
        print_breakdown(breakdowns)

    print("\nper hook (ms):")
    print(f"  delta  (with - without) / {n}:          {delta:6.2f}   per pair: "
          f"{_spread(deltas)}")
    if cycles:
        print(f"  cycle  (hook start to next hook start): {_spread(cycles)}")
    done_ms = [1000 * statistics.mean(log["done"]) for log in debug_logs  # type: ignore[arg-type]
               if log["done"]]
    debug_cycles = [c for c in (cycle_ms(log) for log in debug_logs) if c is not None]
    if done_ms:
        print(f"  launcher (process start to reaped, --debug 'done in'): {_spread(done_ms)}")
        if debug_cycles:
            rest = [c - d for c, d in zip(debug_cycles, done_ms, strict=False)]
            print(f"  builder work per hook (--debug cycle - launcher):      {_spread(rest)}")
    if floor is not None:
        print(f"  floor: bare Popen of the same hook, {args.floor} times:  {floor:6.2f}")
    if envs:
        print(f"  (per phase, not per hook: environment.d sourcing before the first hook "
              f"{_spread(envs, ' ms')})")

    verdict = "ok" if delta <= TARGET_MS else "MISSED"
    print(f"\nms per hook: {delta:.2f}  (target <= {TARGET_MS:.0f} ms: {verdict})")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"times": times, "delta_ms": delta, "pair_delta_ms": deltas, "cycle_ms": cycles,
             "launcher_ms": done_ms, "debug_cycle_ms": debug_cycles, "floor_ms": floor,
             "env_ms": envs}, indent=2))
    return 0 if delta <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
