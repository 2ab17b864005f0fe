"""Python packages requested by hooks, installed into the image with the host's pip.

Hooks call ``sysext_pip_install SPEC...`` (lib/common-functions.sh) or
``$SYSEXT_LIB/pip-install SPEC...``; both append one SPEC a line to
``$SYSEXT_STATE_DIR/pip-requests`` (``#`` lines are comments).  After the
phase the builder calls :func:`take_requests` and :func:`install`.

A SPEC is pinned: ``name==version`` (extras allowed), an absolute path to a
project directory, wheel or sdist (looked up inside the image root first,
since chrooted hooks see that, then on the host), or ``git+file://``,
``git+https://`` / ``git+ssh://`` URL with an explicit ``@REF``.

How :func:`install` works, under the cache lock:

* every path and git SPEC is built into a wheel (``pip wheel --no-deps``) and
  kept in the wheelhouse ``CACHE/pip/wheels``; ``CACHE/pip/built.json``
  remembers which wheel a git SPEC gave, for ``--offline``;
* ``pip install --no-index --find-links CACHE/pip/wheels --target TMP
  --no-compile`` installs the set *with its dependencies* (pip's ordinary
  resolution; they are recorded in the manifest).  Online, when that fails
  because something is not in the wheelhouse yet, ``pip wheel`` fills it from
  the index (``CACHE/pip/cache`` is pip's HTTP cache) and the install is
  retried.  So a warm cache needs no network, and ``--offline`` works with
  exactly what an earlier online build saved;
* the result moves to the target's site directory (:func:`target_site`);
  console scripts go to ``usr/bin`` with ``#!/usr/bin/python3``, data files
  to ``usr/share``; ``direct_url.json`` (host paths) is dropped, RECORD fixed;
* bytecode (hash-based, reproducible) only when the target's Python X.Y is
  the host's; when they differ, packages with compiled code are refused.
"""

from __future__ import annotations

import base64
import compileall
import csv
import email.parser
import hashlib
import importlib.util
import io
import json
import logging
import os
import py_compile
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from sysext_builder import runner
from sysext_builder.errors import InstallError, ToolMissingError
from sysext_builder.install.cache import Cache, redact
from sysext_builder.install.pytarget import DEBIAN_SITE, TargetPython, target_python, target_site
from sysext_builder.install.sources import safe_dest

__all__ = ["DEBIAN_SITE", "TargetPython", "install", "parse_requests", "take_requests",
           "target_python", "target_site", "validate_spec"]

LOG = logging.getLogger(__name__)

REQUESTS_FILE = "pip-requests"
_PINNED = re.compile(r"(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)"
                     r"(?:\[[A-Za-z0-9._,\s-]*\])?\s*==\s*(?P<version>[A-Za-z0-9.+!_-]+)")
_ARCHIVE = (".whl", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip")
_GIT_SCHEMES = ("git+file", "git+https", "git+ssh")
_FULL_SHA = re.compile(r"[0-9a-f]{40}")
_HOST = f"{sys.version_info.major}.{sys.version_info.minor}"
_UNSAFE_ENV = ("PIP_TARGET", "PIP_PREFIX", "PIP_ROOT", "PIP_USER", "PIP_REQUIRE_VIRTUALENV",
               "PIP_NO_INDEX", "PIP_FIND_LINKS", "PYTHONPATH", "PYTHONHOME")
_HINT = ("pin it: name==version (e.g. glean==1.24.0), an absolute path to a project "
         "directory, wheel or sdist, or git+https://HOST/REPO@REF")


def parse_requests(path: Path) -> list[str]:
    """SPECs of a requests file, first occurrence kept; [] when it does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    specs: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and line not in specs:
            specs.append(line)
    return specs


def take_requests(state_dir: Path) -> list[str]:
    """Read and remove ``state_dir/pip-requests`` (so a phase's requests run once)."""
    path = state_dir / REQUESTS_FILE
    specs = parse_requests(path)
    path.unlink(missing_ok=True)
    return specs


def _git_url(spec: str) -> str | None:
    url = spec.split(" @ ", 1)[1].strip() if " @ " in spec else spec
    return url if url.startswith(_GIT_SCHEMES) else None


def validate_spec(spec: str) -> str:
    """Kind of a SPEC: ``pinned``, ``path`` or ``git``; InstallError when unpinned."""
    text = spec.strip()
    if _PINNED.fullmatch(text):
        return "pinned"
    url = _git_url(text)
    if not text or text.startswith("-") or (url is None and len(text.split()) != 1):
        raise InstallError(f"Python package request {redact(spec)!r} is not a package spec",
                           hint=_HINT)
    if url is not None:
        if "@" not in urlsplit(url).path:
            raise InstallError(f"Python package request {redact(spec)!r} has no git ref",
                               hint="append @TAG, @BRANCH or @COMMIT to the URL")
        return "git"
    if text.startswith("/"):
        return "path"
    raise InstallError(f"Python package request {redact(spec)!r} is not pinned", hint=_HINT)


class _Pip:
    """pip invocations sharing the cache directories, environment and mode."""

    def __init__(self, cache: Cache, offline: bool, environ: Mapping[str, str]) -> None:
        if importlib.util.find_spec("pip") is None:
            raise ToolMissingError(f"pip is not available to {sys.executable}",
                                   hint="apt-get install python3-pip")
        self.offline = offline
        self.wheels = cache.subdir("pip", "wheels")
        self.pip_cache = cache.subdir("pip", "cache")
        self.built_file = cache.subdir("pip") / "built.json"
        self.env = {k: v for k, v in environ.items() if k not in _UNSAFE_ENV}
        self.env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1",
                        PIP_ROOT_USER_ACTION="ignore", PYTHONDONTWRITEBYTECODE="1")

    def run(self, args: Sequence[str], what: str, check: bool = True) -> runner.Completed:
        argv = [sys.executable, "-m", "pip", *args, "--cache-dir", str(self.pip_cache)]
        try:
            return runner.run(argv, env=self.env, check=check, what=what)
        except runner.CommandFailed as exc:
            raise InstallError(redact(exc.message),
                               hint=redact(exc.hint) if exc.hint else None) from exc

    def local(self) -> list[str]:
        return ["--no-index", "--find-links", str(self.wheels)]

    def built(self) -> dict[str, str]:
        text = self.built_file.read_text("utf-8") if self.built_file.is_file() else "{}"
        return {str(k): str(v) for k, v in json.loads(text).items()}

    def build(self, spec: str, source: str) -> Path:
        """Build ``source`` into a wheel kept in the wheelhouse."""
        url = _git_url(spec)
        ref = urlsplit(url).path.rpartition("@")[2].split("#")[0] if url else ""
        if url and (self.offline or _FULL_SHA.fullmatch(ref)):
            name = self.built().get(redact(spec))  # a commit's wheel never changes
            if name and (self.wheels / name).is_file():
                return self.wheels / name
            if self.offline and not url.startswith("git+file"):
                raise InstallError(f"Python package {redact(spec)} is not in the cache and "
                                   "--offline is set",
                                   hint="run the build once without --offline")
        extra = [*self.local(), "--no-build-isolation"] if self.offline else \
            ["--find-links", str(self.wheels)]
        with tempfile.TemporaryDirectory(prefix="sysext-wheel-") as out:
            request = [source]
            if redact(source) != source:  # a secret: in a requirements file, not in argv
                Path(out, "request.txt").write_text(source + "\n", encoding="utf-8")
                request = ["-r", str(Path(out, "request.txt"))]
            self.run(["wheel", "--no-deps", "--wheel-dir", out, *extra, *request],
                     what=f"building a wheel of {redact(spec)}")
            made = sorted(Path(out).glob("*.whl"))
            if len(made) != 1:
                raise InstallError(f"building {redact(spec)} gave {len(made)} wheels, "
                                   "expected one")
            dest = self.wheels / made[0].name
            shutil.move(made[0], dest)
        if url:
            built = {**self.built(), redact(spec): dest.name}  # no secret in the cache
            self.built_file.write_text(json.dumps(built, indent=1, sort_keys=True),
                                       encoding="utf-8")
        return dest

    def install(self, args: Sequence[str], staging: Path) -> None:
        cmd = ["install", *self.local(), "--target", str(staging), "--no-compile",
               "--no-warn-script-location", *args]
        done = self.run(cmd, "pip install", check=False)
        if done.returncode != 0 and not self.offline:
            LOG.info("fetching Python packages into the wheelhouse %s", self.wheels)
            self.run(["wheel", "--wheel-dir", str(self.wheels), "--find-links",
                      str(self.wheels), *args], what="pip wheel (download)")
            shutil.rmtree(staging, ignore_errors=True)
            done = self.run(cmd, "pip install", check=False)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-8:]
            cause = " (--offline: only cached wheels are used)" if self.offline else ""
            raise InstallError(redact(f"installing Python packages {' '.join(args)} "
                                      f"failed{cause}"),
                               hint=redact("pip said:\n  " + "\n  ".join(tail)))


def _source(spec: str, kind: str, root: Path, binds: Mapping[str, Path]) -> str:
    if kind != "path":
        return spec
    candidates = [root / spec.lstrip("/"), Path(spec)]
    for inside, host in binds.items():  # a builder directory bound into the chroot
        if spec == inside or spec.startswith(inside.rstrip("/") + "/"):
            candidates.insert(0, host / os.path.relpath(spec, inside))
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    raise InstallError(f"Python package path {spec} exists neither in the image root "
                       "nor on the host")


def _metadata(distinfo: Path) -> tuple[str, str, bool]:
    meta = email.parser.Parser().parsestr(
        (distinfo / "METADATA").read_text(encoding="utf-8", errors="replace"), headersonly=True)
    wheel = distinfo / "WHEEL"
    pure = True
    if wheel.is_file():
        info = email.parser.Parser().parsestr(wheel.read_text(encoding="utf-8"))
        pure = (info.get("Root-Is-Purelib") or "true").strip().lower() == "true"
    return str(meta["Name"]), str(meta["Version"]), pure


def _shebang(data: bytes) -> bytes:
    lines = data.split(b"\n", 3)
    if len(lines) == 4 and lines[0] == b"#!/bin/sh" and lines[1].startswith(b"'''exec'") \
            and lines[2] == b"' '''":  # pip's form for interpreter paths too long for #!
        return b"#!/usr/bin/python3\n" + lines[3]
    first, sep, rest = data.partition(b"\n")
    if first.startswith(b"#!") and b"python" in first:
        return b"#!/usr/bin/python3" + sep + rest
    return data


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def _fix_record(distinfo: Path, site: Path, scripts: Mapping[str, bytes]) -> None:
    record = distinfo / "RECORD"
    if not record.is_file():
        return
    rows = []
    for row in csv.reader(io.StringIO(record.read_text(encoding="utf-8"))):
        if not row or row[0] == f"{distinfo.name}/direct_url.json":
            continue
        name = os.path.basename(row[0])
        if os.path.basename(os.path.dirname(row[0])) == "bin" and name in scripts:
            rel = os.path.relpath(f"usr/bin/{name}", site)
            row = [rel, _record_hash(scripts[name]), str(len(scripts[name]))]
        rows.append(row)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    record.write_text(out.getvalue(), encoding="utf-8")


def _move(src: Path, dest: Path) -> None:
    if dest.exists() or dest.is_symlink():
        LOG.warning("replacing %s with the pip-installed copy", dest)
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        else:
            dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(src, dest)


def _compile(paths: Sequence[Path], root: Path) -> None:
    mode = py_compile.PycInvalidationMode.CHECKED_HASH
    for path in paths:
        ddir = "/" + str(path.relative_to(root))
        if path.is_dir():
            ok = compileall.compile_dir(str(path), ddir=ddir, quiet=2, invalidation_mode=mode)
        elif path.suffix == ".py":
            ok = compileall.compile_file(str(path), ddir=os.path.dirname(ddir), quiet=2,
                                         invalidation_mode=mode)
        else:
            continue
        if not ok:
            LOG.warning("some files of %s could not be byte-compiled", ddir)


def _place(staging: Path, root: Path, py: TargetPython, base: Path | None
           ) -> tuple[list[Path], list[Path]]:
    """Move the staged install into ``root``; returns (site entries, scripts)."""
    site = safe_dest(root, "/" + str(py.site), "pip install", base)
    scripts: dict[str, bytes] = {}
    bin_dir = staging / "bin"
    placed_scripts = []
    if bin_dir.is_dir():
        usr_bin = safe_dest(root, "/usr/bin", "pip install", base)
        for script in sorted(bin_dir.iterdir()):
            data = _shebang(script.read_bytes())
            script.write_bytes(data)
            scripts[script.name] = data
            _move(script, usr_bin / script.name)
            placed_scripts.append(usr_bin / script.name)
        bin_dir.rmdir()
    if (staging / "share").is_dir():
        shutil.copytree(staging / "share", safe_dest(root, "/usr/share", "pip install", base),
                        symlinks=True, dirs_exist_ok=True)
        shutil.rmtree(staging / "share")
    placed = []
    for entry in sorted(staging.iterdir()):
        if entry.name.endswith(".dist-info"):
            (entry / "direct_url.json").unlink(missing_ok=True)
            _fix_record(entry, py.site, scripts)
        _move(entry, site / entry.name)
        placed.append(site / entry.name)
    return placed, placed_scripts


def install(specs: Sequence[str], root: Path, *, cache: Cache, base: Path | None = None,
            offline: bool = False, environ: Mapping[str, str] | None = None,
            binds: Mapping[str, Path] | None = None) -> list[dict[str, str]]:
    """Install ``specs`` (and their dependencies) into ``root`` (over ``base``).

    ``binds`` maps chroot paths of bound builder directories to host paths,
    for path SPECs written by chrooted hooks.  Returns ``{"name", "version"}``
    of every distribution installed, sorted by name."""
    if not specs:
        return []
    kinds = [(spec, validate_spec(spec)) for spec in specs]
    py = target_python(root, base, wanted=specs, declared=environ)
    same = py.version == _HOST
    with cache.lock():
        pip = _Pip(cache, offline, os.environ if environ is None else environ)
        args = [spec if kind == "pinned" else
                str(pip.build(spec, _source(spec, kind, root, binds or {})))
                for spec, kind in kinds]
        with tempfile.TemporaryDirectory(prefix="sysext-pip-") as tmp:
            staging = Path(tmp) / "site"
            pip.install(args, staging)
            records = []
            for distinfo in sorted(staging.glob("*.dist-info")):
                name, version, pure = _metadata(distinfo)
                if not pure and not same:
                    raise InstallError(
                        f"Python package {name} {version} contains compiled code built for "
                        f"the host's Python {_HOST}, but the target has "
                        f"{py.version or 'an unknown version'}",
                        hint="install it with the distro package manager instead")
                records.append({"name": name, "version": version})
            placed, scripts = _place(staging, root, py, base)
    if same:
        _compile(placed, root)
    LOG.info("installed Python packages into /%s: %s; scripts: %s", py.site,
             ", ".join(f"{r['name']}=={r['version']}" for r in records),
             ", ".join(s.name for s in scripts) or "none")
    return sorted(records, key=lambda r: r["name"].lower())
