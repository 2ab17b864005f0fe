#!/usr/bin/env python3
"""Time whole-process ``sysext-element-info`` against diskimage-builder's ``element-info``.

For every ``--sizes`` N a synthetic element tree is generated (bench/gen_elements.py,
cached under ``--workdir``), both tools resolve the same requested elements on it
with ``ELEMENTS_PATH`` pointing at the tree, their selections are checked against
each other and against the generator's expectation, and each is then run
``--repeat`` times (after one untimed warm-up run).  Printed: min and median
wall-clock seconds per tool and size, the ratio, and whether the targets of
issue 2 are met (10,000 elements: DIB/ours >= 10; 1,000 elements: ours/DIB
<= 1.5).  Finally ``python -X importtime`` shows whether ``sysext-element-info
--help`` and ``--version`` import networkx.

DIB is optional; without it only our times are printed.  It is found (in this
order) from ``--dib``, ``element-info`` on PATH, ``/tmp/dib-venv/bin``, or the
running interpreter when it can import ``diskimage_builder``.  Recent DIB
releases install no ``element-info`` console script; the same program is
``diskimage_builder/lib/element-info.py`` (what ``disk-image-create`` runs), which
is used then, with the interpreter of the virtualenv it lives in.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pstats
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
GENERATOR = HERE / "gen_elements.py"
DEFAULT_DIB_VENV = Path("/tmp/dib-venv")
DEFAULT_TOOL_VENV = Path("/tmp/sysext-venv")
TOOL = "sysext-element-info"
#: size -> (kind, limit): "speedup" = DIB/ours >= limit, "slowdown" = ours/DIB <= limit
TARGETS = {10000: ("speedup", 10.0), 1000: ("slowdown", 1.5)}
#: figures from issue 2, for comparison with this machine
ISSUE_DIB_SECONDS = {1000: 0.26, 10000: 13.7}


# ---------------------------------------------------------------- commands


def _shebang(path: Path) -> list[str]:
    try:
        with path.open("rb") as f:
            first = f.readline().decode("utf-8", "replace").strip()
    except OSError:
        return []
    return shlex.split(first[2:]) if first.startswith("#!") else []


def _is_python_script(path: Path) -> bool:
    words = _shebang(path)
    return bool(words) and "python" in Path(words[-1] if words[0].endswith("env") else
                                            words[0]).name


def find_tool(spec: str | None) -> list[str]:
    """The command line that runs sysext-element-info (without arguments)."""
    if spec:
        return shlex.split(spec)
    # A clean virtualenv like DIB's first (see bench/README.rst), then the
    # console script next to this interpreter: a pyenv/asdf shim on
    # PATH is a shell script that re-execs and would add its own start-up time.
    for candidate in (DEFAULT_TOOL_VENV / "bin" / TOOL, Path(sys.executable).with_name(TOOL)):
        if candidate.is_file():
            return [str(candidate)]
    found = shutil.which(TOOL)
    if found and not _is_python_script(Path(found)) and shutil.which("pyenv"):
        real = subprocess.run(["pyenv", "which", TOOL], capture_output=True, text=True,
                              check=False).stdout.strip()
        if real:
            found = real
    if found:
        return [found]
    return [sys.executable, "-m", "sysext_builder", TOOL]


def _python_can_import_dib(python: str) -> str | None:
    """DIB's lib/element-info.py as seen by ``python``, or None."""
    code = ("import os, diskimage_builder as d; "
            "print(os.path.join(os.path.dirname(d.__file__), 'lib', 'element-info.py'))")
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
    path = proc.stdout.strip()
    return path if proc.returncode == 0 and Path(path).is_file() else None


def _venv_python(path: Path) -> str:
    for parent in path.resolve().parents:
        if (parent / "pyvenv.cfg").is_file() and (parent / "bin" / "python").exists():
            return str(parent / "bin" / "python")
    return sys.executable


def _dib_from_path(path: Path) -> list[str] | None:
    if path.suffix == ".py":
        return [_venv_python(path), str(path)]
    if path.name.startswith("python"):
        script = _python_can_import_dib(str(path))
        return [str(path), script] if script else None
    if path.name == "element-info" or os.access(path, os.X_OK):
        return [str(path)]
    return None


def find_dib(spec: str | None) -> list[str] | None:
    """The command line that runs DIB's element-info, or None when DIB is absent."""
    if spec:
        cmd = _dib_from_path(Path(spec))
        if cmd is None:
            raise SystemExit(f"bench: --dib {spec}: not an element-info executable, "
                             "element-info.py, or a python that imports diskimage_builder")
        return cmd
    found = shutil.which("element-info")
    if found:
        return [found]
    venv_bin = DEFAULT_DIB_VENV / "bin"
    if (venv_bin / "element-info").is_file():
        return [str(venv_bin / "element-info")]
    if (venv_bin / "python").exists():
        script = _python_can_import_dib(str(venv_bin / "python"))
        if script:
            return [str(venv_bin / "python"), script]
    if importlib.util.find_spec("diskimage_builder") is not None:
        script = _python_can_import_dib(sys.executable)
        if script:
            return [sys.executable, script]
    return None


def python_of(cmd: list[str]) -> tuple[str, list[str]]:
    """Split a command into (python interpreter, arguments after it)."""
    first = Path(cmd[0])
    if first.name.startswith("python"):
        return cmd[0], cmd[1:]
    words = _shebang(first)
    if words and words[0].endswith("/env"):
        words = words[1:]
    if not words:
        raise SystemExit(f"bench: cannot tell which python runs {cmd[0]}")
    return words[0], [*words[1:], *cmd]


# ---------------------------------------------------------------- trees


def ensure_tree(workdir: Path, count: int, seed: int) -> tuple[Path, dict[str, object]]:
    out = workdir / f"tree-{count}-seed{seed}"
    proc = subprocess.run([sys.executable, str(GENERATOR), "--count", str(count),
                           "--seed", str(seed), "--out", str(out)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"bench: gen_elements.py failed:\n{proc.stderr}")
    meta: dict[str, object] = json.loads((out / ".gen-elements.json").read_text())
    return out, meta


# ---------------------------------------------------------------- running


@dataclass
class Timing:
    """Wall-clock and CPU (user+sys of the child) seconds of the timed runs."""

    runs: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def min(self) -> float:
        return min(self.runs)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)


def run_once(cmd: list[str],
             env: dict[str, str]) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Run ``cmd``; return wall seconds, CPU seconds of the child and the process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc


def selection_ours(stdout: str, env_mode: bool) -> set[str]:
    if env_mode:
        return _image_element(stdout)
    return {line.split()[0] for line in stdout.splitlines() if line and not line.startswith("#")}


def selection_dib(stdout: str, env_mode: bool) -> set[str]:
    return _image_element(stdout) if env_mode else set(stdout.split())


def _image_element(stdout: str) -> set[str]:
    for line in stdout.splitlines():
        if line.startswith("export IMAGE_ELEMENT="):
            return set(shlex.split(line.split("=", 1)[1])[0].split())
    return set()


@dataclass
class Contender:
    label: str
    cmd: list[str]
    repeat: int
    parse: Callable[[str], set[str]]
    timing: Timing = field(default_factory=Timing)


def check(c: Contender, env: dict[str, str], expected: set[str]) -> None:
    """The untimed warm-up run: it must succeed and select what the generator expects."""
    _, _, proc = run_once(c.cmd, env)
    if proc.returncode != 0:
        raise SystemExit(f"bench: {c.label} failed (exit {proc.returncode}):\n"
                         f"  {shlex.join(c.cmd)}\n{proc.stderr[-3000:]}")
    got = c.parse(proc.stdout)
    if got != expected:
        missing = sorted(expected - got)[:10]
        extra = sorted(got - expected)[:10]
        raise SystemExit(f"bench: {c.label} selected {len(got)} elements, expected "
                         f"{len(expected)}; missing {missing} extra {extra}")


def measure(contenders: list[Contender], env: dict[str, str], expected: set[str]) -> None:
    """Warm up and check every contender, then time them interleaved.

    Interleaving (ours, DIB, ours, DIB, ...) spreads load from other processes
    on the machine over both instead of penalising whichever ran during it.
    """
    for c in contenders:
        check(c, env, expected)
    for i in range(max(c.repeat for c in contenders)):
        for c in contenders:
            if i >= c.repeat:
                continue
            wall, cpu, proc = run_once(c.cmd, env)
            if proc.returncode != 0:
                raise SystemExit(f"bench: {c.label} failed on a timed run:\n"
                                 f"{proc.stderr[-3000:]}")
            c.timing.runs.append(wall)
            c.timing.cpu.append(cpu)
            print(f"  {c.label:<22} {wall:8.3f} s wall {cpu:8.3f} s cpu", file=sys.stderr)


def startup(python: str, env: dict[str, str], repeat: int) -> float:
    runs = [run_once([python, "-c", "pass"], env)[0] for _ in range(repeat + 1)]
    return statistics.median(runs[1:])


# ---------------------------------------------------------------- imports


def imported_modules(cmd: list[str], args: list[str],
                     env: dict[str, str]) -> tuple[set[str], float, int]:
    """Modules imported by ``cmd args`` under ``-X importtime``, total import ms, exit code."""
    python, rest = python_of(cmd)
    proc = subprocess.run([python, "-X", "importtime", *rest, *args], capture_output=True,
                          text=True, check=False, env=env)
    modules: set[str] = set()
    total_us = 0
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        _, cumulative, name = line[len("import time:"):].split("|", 2)
        modules.add(name.strip())
        if not name.startswith("  "):  # top level: cumulative covers its children
            total_us += int(cumulative)
    return modules, total_us / 1000, proc.returncode


def _imports(modules: set[str], package: str) -> bool:
    return any(m == package or m.startswith(package + ".") for m in modules)


# ---------------------------------------------------------------- profiling


def profile(cmd: list[str], env: dict[str, str], requested: list[str], top: int) -> None:
    python, rest = python_of(cmd)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "prof"
        subprocess.run([python, "-m", "cProfile", "-o", str(out), *rest, *requested],
                       env=env, check=True, stdout=subprocess.DEVNULL)
        stats = pstats.Stats(str(out))
        stats.sort_stats("cumulative").print_stats(top)
        stats.sort_stats("tottime").print_stats(top)


# ---------------------------------------------------------------- main


def verdict(size: int, ours: float, dib: float) -> str:
    kind, limit = TARGETS.get(size, ("", 0.0))
    if kind == "speedup":
        return f"DIB/ours >= {limit:g}: {'met' if dib / ours >= limit else 'MISSED'}"
    if kind == "slowdown":
        return f"ours/DIB <= {limit:g}: {'met' if ours / dib <= limit else 'MISSED'}"
    return "-"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000],
                   help="tree sizes (default: 1000 10000)")
    p.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per tool and size (default 5)")
    p.add_argument("--dib-repeat", type=int, default=None,
                   help="timed DIB runs per size (default: --repeat)")
    p.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "sysext-bench",
                   help="where generated trees are cached (default: $TMPDIR/sysext-bench)")
    p.add_argument("--tool", help="command running sysext-element-info (default: the console "
                                  "script next to this python, else PATH)")
    p.add_argument("--dib", metavar="PATH",
                   help="DIB's element-info: an executable, its lib/element-info.py, or a "
                        "python that imports diskimage_builder (default: PATH, "
                        "/tmp/dib-venv/bin, this python)")
    p.add_argument("--no-dib", action="store_true", help="time sysext-element-info only")
    p.add_argument("--env", action="store_true", help="time both tools with --env output")
    p.add_argument("--profile", action="store_true",
                   help="also cProfile sysext-element-info on the largest tree")
    p.add_argument("--bytecode", choices=["prefix", "inherit"], default="prefix",
                   help="prefix (default): let the tools cache bytecode under WORKDIR/pycache "
                        "(PYTHONPYCACHEPREFIX, PYTHONDONTWRITEBYTECODE unset), as an installed "
                        "tool would have .pyc files; inherit: run with this environment as is")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    args = p.parse_args(argv)

    args.workdir.mkdir(parents=True, exist_ok=True)
    base_env = dict(os.environ)
    if args.bytecode == "prefix":
        base_env.pop("PYTHONDONTWRITEBYTECODE", None)
        base_env["PYTHONPYCACHEPREFIX"] = str(args.workdir.resolve() / "pycache")
    tool = find_tool(args.tool)
    dib = None if args.no_dib else find_dib(args.dib)
    dib_repeat = args.dib_repeat or args.repeat
    extra = ["--env"] if args.env else []
    print(f"sysext-element-info: {shlex.join(tool)}")
    print(f"DIB element-info:    {shlex.join(dib) if dib else 'not found (skipped)'}")
    if dib:
        help_text = subprocess.run([*dib, "--help"], capture_output=True, text=True,
                                   check=False).stdout
        print("DIB element-info usage: " + (help_text.splitlines() or ["?"])[0])
    pythons = [("ours", python_of(tool)[0])] + ([("DIB", python_of(dib)[0])] if dib else [])
    print("interpreter start-up (python -c pass, median of 5): " + "; ".join(
        f"{who} {py} {startup(py, base_env, 5):.3f} s" for who, py in pythons))

    results: list[dict[str, object]] = []
    for size in args.sizes:
        tree, meta = ensure_tree(args.workdir, size, args.seed)
        requested = list(meta["requested"])  # type: ignore[call-overload]
        expected = set(meta["selected"])  # type: ignore[call-overload]
        env = dict(base_env, ELEMENTS_PATH=str(tree))
        print(f"\n{size} elements: {tree}; requesting {len(requested)} "
              f"({' '.join(requested)}); expect {len(expected)} selected", file=sys.stderr)
        ours = Contender(TOOL, [*tool, *extra, *requested], args.repeat,
                         lambda out: selection_ours(out, args.env))
        contenders = [ours]
        if dib:
            contenders.append(Contender("DIB element-info", [*dib, *extra, *requested],
                                        dib_repeat, lambda out: selection_dib(out, args.env)))
        measure(contenders, env, expected)
        results.append({"size": size, "selected": len(expected),
                        "ours": {"wall": ours.timing.runs, "cpu": ours.timing.cpu},
                        "dib": ({"wall": contenders[1].timing.runs,
                                 "cpu": contenders[1].timing.cpu} if dib else None)})

    print(f"\nwhole-process seconds (wall-clock min and median, CPU user+sys median); "
          f"ours: {args.repeat} runs, DIB: {dib_repeat} runs, interleaved, after one "
          f"untimed warm-up each; both selections checked\n")
    header = (f"{'elements':>8} {'selected':>8} | {'ours min':>8} {'med':>7} {'cpu':>7} | "
              f"{'DIB min':>8} {'med':>7} {'cpu':>7} | {'ours/DIB':>8} {'DIB/ours':>8} "
              f"{'cpu DIB/ours':>12} | target (on medians)")
    print(header)
    print("-" * len(header))
    failed = False
    for r in results:
        o = r["ours"]
        ours_t = Timing(o["wall"], o["cpu"])  # type: ignore[index]
        line = (f"{r['size']:>8} {r['selected']:>8} | {ours_t.min:8.3f} {ours_t.median:7.3f} "
                f"{ours_t.cpu_median:7.3f} | ")
        if r["dib"]:
            d = r["dib"]
            dib_t = Timing(d["wall"], d["cpu"])  # type: ignore[index]
            v = verdict(r["size"], ours_t.median, dib_t.median)  # type: ignore[arg-type]
            failed |= "MISSED" in v
            line += (f"{dib_t.min:8.3f} {dib_t.median:7.3f} {dib_t.cpu_median:7.3f} | "
                     f"{ours_t.median / dib_t.median:8.2f} {dib_t.median / ours_t.median:8.2f} "
                     f"{dib_t.cpu_median / ours_t.cpu_median:12.2f} | {v}")
        else:
            line += f"{'-':>8} {'-':>7} {'-':>7} | {'-':>8} {'-':>8} {'-':>12} | -"
        print(line)
    issue = ", ".join(f"{k}: {v} s" for k, v in ISSUE_DIB_SECONDS.items())
    print(f"(DIB as measured in issue 2: {issue})")

    print("\nimports (python -X importtime):")
    for flag in ("--help", "--version"):
        modules, total_ms, rc = imported_modules(tool, [flag], base_env)
        nx = _imports(modules, "networkx")
        sv = _imports(modules, "stevedore")
        failed |= nx or rc != 0
        print(f"  {TOOL} {flag:<9} exit {rc}, {len(modules):3d} modules, {total_ms:6.1f} ms "
              f"of imports; imports networkx: {'yes' if nx else 'no'}; "
              f"stevedore: {'yes' if sv else 'no'}")

    if args.json:
        args.json.write_text(json.dumps({"tool": tool, "dib": dib, "results": results},
                                        indent=1) + "\n")
    if args.profile:
        size = max(args.sizes)
        tree, meta = ensure_tree(args.workdir, size, args.seed)
        print(f"\ncProfile of {TOOL} on {size} elements:")
        profile(tool, dict(base_env, ELEMENTS_PATH=str(tree)),
                list(meta["requested"]), 30)  # type: ignore[call-overload]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
