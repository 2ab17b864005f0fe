"""source-repository-* files: parse, apply overrides, fetch into the cache, place.

Format of ``source-repository-<anything>`` (one repository a line; blank
lines and ``#`` comments ignored; ``$VAR``/``${VAR}`` expanded from the
build environment, as DIB's ``eval`` would)::

    NAME TYPE DEST LOCATION [REF]

* ``TYPE`` is ``git``, ``tar`` or ``file`` (DIB's ``package`` is accepted and
  means there is nothing to fetch).
* ``DEST`` is absolute, inside the image root.
* ``REF``: git -- a branch, tag, commit or ``refs/...`` name; absent or ``*``
  means the remote's default branch (``*`` also fetches every head and tag).
  tar -- ``.`` extracts everything, ``*`` the contents of every top-level
  directory (strips the usual ``project-1.0/`` prefix; the default), a path
  the contents of that directory.  file -- unused.

``DIB_REPOTYPE_<name>``, ``DIB_REPOLOCATION_<name>`` and ``DIB_REPOREF_<name>``
override the fields (``<name>`` with every character outside ``[A-Za-z0-9_]``
turned into ``_``).  As in DIB, a repository is skipped when
``DIB_INSTALLTYPE_<name>`` (or ``DIB_DEFAULT_INSTALLTYPE``) is not ``source``
and when ``NO_SOURCE_REPOSITORIES`` is set.

Cache layout (``CACHE/sources/``): ``git/<key>`` bare clones, ``tar/<key>/`` and
``file/<key>/`` holding ``content`` plus ``meta.json``; ``<key>`` is a hash of
the location.  ``offline=True`` reads the cache only -- never the location,
even a local one -- and fails naming the repository when it is missing.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sysext_builder import runner
from sysext_builder.errors import ElementFormatError, InstallError
from sysext_builder.install.cache import Cache, cache_key, redact, scrub
from sysext_builder.model.element import Element, read_text
from sysext_builder.model.phases import selected_installtype, var_suffix

LOG = logging.getLogger(__name__)

TYPES: tuple[str, ...] = ("git", "tar", "file", "package")
_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_VAR_RE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_]\w*)\}|(?P<plain>[A-Za-z_]\w*))", re.ASCII)

@dataclass(frozen=True)
class SourceRepo:
    """One repository line (after :func:`resolve`, with overrides applied)."""

    name: str
    type: str
    dest: str
    location: str
    ref: str | None
    file: Path
    line: int
    element: str = ""

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Fetched:
    """A repository in the cache, ready to be placed."""

    repo: SourceRepo
    path: Path
    resolved: str


override_suffix = var_suffix


def parse(path: Path, element: str = "") -> list[SourceRepo]:
    """Parse one ``source-repository-*`` file (variables still unexpanded)."""
    text = read_text(path)  # bounded, regular files only: a fifo is an error, not a hang
    repos = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        where = f"{path}:{lineno}"
        if len(fields) not in (4, 5):
            raise ElementFormatError(f"{where}: expected 'NAME TYPE DEST LOCATION [REF]', "
                                     f"got {len(fields)} field(s)")
        name, kind, dest, location = fields[:4]
        if kind not in TYPES:
            raise ElementFormatError(f"{where}: type {kind!r} is not one of "
                                     + ", ".join(TYPES))
        if not dest.startswith("/") and "$" not in dest:
            raise ElementFormatError(f"{where}: destination {dest!r} must be absolute "
                                     "(a path inside the image)")
        repos.append(SourceRepo(name=name, type=kind, dest=dest, location=location,
                                ref=fields[4] if len(fields) == 5 else None,
                                file=path, line=lineno, element=element))
    return repos


def _expand(value: str, environ: Mapping[str, str], where: str) -> str:
    def sub(match: re.Match[str]) -> str:
        var = match["braced"] or match["plain"]
        if var not in environ:
            raise ElementFormatError(f"{where}: {var} is not set",
                                     hint="set it, or give it a default in environment.d")
        return environ[var]

    return _VAR_RE.sub(sub, value)


def _resolve_one(repo: SourceRepo, environ: Mapping[str, str]) -> SourceRepo:
    where = repo.where
    name = _expand(repo.name, environ, where)
    suffix = override_suffix(name)
    kind = environ.get(f"DIB_REPOTYPE_{suffix}") or _expand(repo.type, environ, where)
    location = (environ.get(f"DIB_REPOLOCATION_{suffix}")
                or _expand(repo.location, environ, where))
    ref = environ.get(f"DIB_REPOREF_{suffix}") or (
        _expand(repo.ref, environ, where) if repo.ref is not None else None)
    dest = _expand(repo.dest, environ, where)
    if kind not in TYPES:
        raise ElementFormatError(f"{where}: type {kind!r} (DIB_REPOTYPE_{suffix}) is not "
                                 "one of " + ", ".join(TYPES))
    if not dest.startswith("/"):
        raise ElementFormatError(f"{where}: destination {dest!r} must be absolute")
    for label, value in (("location", location), ("ref", ref or "")):
        if value.startswith("-"):
            raise ElementFormatError(f"{where}: {label} {redact(value)!r} must not start "
                                     "with '-'")
    if kind != "package" and "://" not in location and not location.startswith("/") \
            and ":" not in location.split("/")[0]:  # a relative path (not host:path)
        location = os.path.abspath(location)
    if kind == "tar" and ref is None:
        LOG.warning("%s: tar repository %s has no REF; extracting '*' (the contents of its "
                    "top-level directories); write the REF to be explicit", where, name)
    return dataclasses.replace(repo, name=name, type=kind, location=location, ref=ref,
                               dest=dest)


def resolve(repos: Sequence[SourceRepo], environ: Mapping[str, str]) -> list[SourceRepo]:
    """Expand variables, apply the DIB_REPO* overrides and drop skipped repositories.

    Raises ElementFormatError when two repositories share a destination.
    """
    if environ.get("NO_SOURCE_REPOSITORIES"):
        if repos:
            LOG.info("NO_SOURCE_REPOSITORIES is set: skipping %d source repositories",
                     len(repos))
        return []
    result: list[SourceRepo] = []
    dests: dict[str, SourceRepo] = {}
    for repo in repos:
        resolved = _resolve_one(repo, environ)
        installtype = selected_installtype(resolved.name, environ)
        if installtype != "source":
            LOG.info("%s: skipping %s: its install type is %s", repo.where, resolved.name,
                     installtype)
            continue
        if resolved.type == "package":
            LOG.info("%s: %s is of type package: nothing to fetch", repo.where, resolved.name)
            continue
        key = os.path.normpath(resolved.dest)
        other = dests.get(key)
        if other is not None:
            raise ElementFormatError(
                f"{repo.where}: destination {resolved.dest} is already used by "
                f"{other.name} ({other.where})", hint="each repository needs its own DEST")
        dests[key] = resolved
        result.append(resolved)
    return result


def collect(elements: Sequence[Element], environ: Mapping[str, str]) -> list[SourceRepo]:
    """:func:`resolve` over every ``source-repository-*`` file of ``elements``."""
    return resolve([repo for element in elements for path in element.source_repositories
                    for repo in parse(path, element.name)], environ)


def _git(args: Sequence[str], *, check: bool = True, what: str | None = None,
         location: str = "") -> runner.Completed:
    """git with ``args``; with a secret in ``location``, ``args`` name it redacted and git
    rewrites that back (``url.<location>.insteadOf``, in the environment): the secret is
    in no command line, log line or cached git config, and is scrubbed from errors."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    if redact(location) != location:
        env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0=f"url.{location}.insteadOf",
                   GIT_CONFIG_VALUE_0=redact(location))
    try:
        return runner.run([runner.require_tool("git"), *args], env=env, check=check, what=what)
    except runner.CommandFailed as exc:
        raise InstallError(scrub(exc.message, location),
                           hint=scrub(exc.hint, location) if exc.hint else None) from exc


def _commit(gitdir: Path, ref: str) -> str | None:
    done = _git(["-C", str(gitdir), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def _update_mirror(gitdir: Path, what: str, location: str) -> None:
    d = str(gitdir)
    _git(["-C", d, "remote", "set-url", "origin", redact(location)])  # older caches: no secret
    _git(["-C", d, "fetch", "--quiet", "--prune", "--force", "origin",
          "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"], what=f"git fetch of {what}",
         location=location)
    head = _git(["-C", d, "ls-remote", "--symref", "origin", "HEAD"], check=False,
                location=location)
    first = head.stdout.splitlines()[0].split() if head.stdout.strip() else []
    if len(first) == 3 and first[0] == "ref:":  # follow a changed default branch
        _git(["-C", d, "symbolic-ref", "HEAD", first[1]], check=False)


def _fetch_git(repo: SourceRepo, cache: Cache, offline: bool, what: str) -> Fetched:
    gitdir = cache.subdir("sources", "git") / cache_key(repo.location)
    ref = repo.ref if repo.ref not in (None, "*") else "HEAD"
    present = (gitdir / "HEAD").is_file()
    if offline and not present:
        raise InstallError(f"{what}: {redact(repo.location)} is not in the cache "
                           f"{cache.path} and --offline is set",
                           hint="run the build once without --offline to fill the cache")
    if not offline and not present:
        tmp = gitdir.with_name(gitdir.name + ".tmp")
        for stale in (tmp, gitdir):
            if stale.exists():
                shutil.rmtree(stale)
        _git(["clone", "--bare", "--quiet", "--", redact(repo.location), str(tmp)],
             what=f"git clone of {what}", location=repo.location)
        tmp.rename(gitdir)
    elif not offline and not (_FULL_SHA.fullmatch(ref) and _commit(gitdir, ref)):
        _update_mirror(gitdir, what, repo.location)
    if not offline and _commit(gitdir, ref) is None and \
            (ref.startswith("refs/") or _FULL_SHA.fullmatch(ref)):
        target = f"+{ref}:{ref}" if ref.startswith("refs/") else ref
        _git(["-C", str(gitdir), "fetch", "--quiet", "origin", target], check=False,
             location=repo.location)
    sha = _commit(gitdir, ref)
    if sha is None:
        raise InstallError(f"{what}: ref {repo.ref} not found in {redact(repo.location)}"
                           + (" (cached copy; --offline is set)" if offline else ""),
                           hint=f"set DIB_REPOREF_{override_suffix(repo.name)} to a branch, "
                                "tag or commit of the repository")
    return Fetched(repo=repo, path=gitdir, resolved=sha)


def fetch(repo: SourceRepo, cache: Cache, *, offline: bool = False) -> Fetched:
    """Bring ``repo`` into the cache (under its lock) and resolve its ref.

    ``resolved`` is the commit for git, the sha256 of the content otherwise."""
    what = f"source repository {repo.name} ({repo.where})"
    with cache.lock():
        if repo.type == "git":
            fetched = _fetch_git(repo, cache, offline, what)
        elif repo.type in ("tar", "file"):
            entry = cache.fetch_url(repo.location, "sources", repo.type, offline=offline,
                                    what=what)
            fetched = Fetched(repo=repo, path=entry.path, resolved=entry.sha256)
        else:
            raise InstallError(f"{what}: cannot fetch a repository of type {repo.type}")
    LOG.info("source %s: %s %s -> %s", repo.name, repo.type, redact(repo.location),
             fetched.resolved)
    return fetched


def safe_dest(root: Path, dest: str, what: str, base: Path | None = None) -> Path:
    """``root/dest``, refusing ``..`` and symlinks that lead out of ``root``.

    With ``base`` (``root`` is then the upper layer of an overlay over it), a
    path through a symlink of the base is refused too: writing it into the
    upper layer would hide the base's symlink."""
    parts = PurePosixPath(dest).parts
    if not dest.startswith("/") or ".." in parts:
        raise InstallError(f"{what}: destination {dest!r} escapes the image root",
                           hint="DEST must be an absolute path without '..'")
    target = root.joinpath(*parts[1:])
    for depth in range(2, len(parts) + 1):
        rel = parts[1:depth]
        if base is not None and base.joinpath(*rel).is_symlink() \
                and not os.path.lexists(root.joinpath(*rel)):
            raise InstallError(f"{what}: destination {dest!r} passes through the symlink "
                               f"/{'/'.join(rel)} of the base",
                               hint="use the path the symlink points to")
    real_root = os.path.realpath(root)
    real = os.path.realpath(target)
    if os.path.commonpath([real_root, real]) != real_root:
        raise InstallError(f"{what}: destination {dest!r} escapes the image root through "
                           f"a symlink (it resolves to {real})",
                           hint="symlinks in the root are followed on the host, so "
                                "absolute ones point outside; use a path without them")
    return target


def _copy_into(src: Path, dest: Path, what: str) -> None:
    """Copy the tree ``src`` into directory ``dest`` without following symlinks in dest."""
    dest.mkdir(parents=True, exist_ok=True)
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        rel = Path(dirpath).relative_to(src)
        out_dir = dest / rel
        for name in sorted(dirnames) + sorted(filenames):
            source, target = Path(dirpath) / name, out_dir / name
            if target.is_symlink():
                raise InstallError(f"{what}: {target} is a symlink in the image root; "
                                   "refusing to write through it")
            if source.is_symlink():
                if target.exists() and target.is_dir():
                    raise InstallError(f"{what}: cannot replace directory {target} "
                                       "with a symlink")
                target.unlink(missing_ok=True)
                os.symlink(os.readlink(source), target)
            elif source.is_dir():
                target.mkdir(exist_ok=True)
                shutil.copystat(source, target)
            else:
                shutil.copy2(source, target)
        dirnames[:] = [d for d in dirnames if not (Path(dirpath) / d).is_symlink()]


def _place_git(fetched: Fetched, target: Path, what: str) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InstallError(f"{what}: destination {fetched.repo.dest} already exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    sha, dest = fetched.resolved, str(target)
    _git(["clone", "--quiet", "--no-checkout", "--no-hardlinks", "--", str(fetched.path), dest],
         what=f"git clone of {what}")
    if _git(["-C", dest, "cat-file", "-e", f"{sha}^{{commit}}"], check=False).returncode:
        _git(["-C", dest, "fetch", "--quiet", "origin", sha], what=f"git fetch of {what}")
    _git(["-C", dest, "checkout", "--quiet", "--detach", sha], what=f"git checkout of {what}")
    # The clone's origin is the cache; point it at the real location (minus secrets).
    _git(["-C", dest, "remote", "set-url", "origin", redact(fetched.repo.location)])


def _tar_members_root(extracted: Path, ref: str, what: str) -> list[Path]:
    if ref == ".":
        return [extracted]
    if ref == "*":
        return sorted(p for p in extracted.iterdir() if p.is_dir() and not p.is_symlink())
    sub = PurePosixPath(ref)
    if sub.is_absolute() or ".." in sub.parts:
        raise InstallError(f"{what}: tar REF {ref!r} must be '.', '*' or a relative path")
    path = extracted.joinpath(*sub.parts)
    if not path.is_dir() or path.is_symlink():
        raise InstallError(f"{what}: the tarball has no directory {ref!r}",
                           hint="REF selects a directory of the archive to extract")
    return [path]


def _place_tar(fetched: Fetched, target: Path, what: str) -> None:
    with tempfile.TemporaryDirectory(prefix="sysext-tar-") as tmp:
        try:
            with tarfile.open(fetched.path, "r:*") as archive:
                archive.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError) as exc:
            hint = ("members with absolute or '..' paths or links are refused"
                    if isinstance(exc, tarfile.FilterError) else
                    "gzip, bzip2, xz or plain tar archives are supported")
            raise InstallError(f"{what}: cannot extract {redact(fetched.repo.location)}: "
                               f"{exc}", hint=hint) from exc
        for source in _tar_members_root(Path(tmp), fetched.repo.ref or "*", what):
            _copy_into(source, target, what)


def place(fetched: Fetched, root: Path, base: Path | None = None) -> dict[str, str]:
    """Copy a fetched repository into ``root/DEST``; returns its manifest record.

    ``base``: the base tree when ``root`` is the upper layer over it."""
    repo = fetched.repo
    what = f"source repository {repo.name} ({repo.where})"
    target = safe_dest(root, repo.dest, what, base)
    if repo.type == "git":
        _place_git(fetched, target, what)
    elif repo.type == "tar":
        _place_tar(fetched, target, what)
    else:
        if target.is_dir():
            raise InstallError(f"{what}: destination {repo.dest} is a directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(fetched.path, target)
        target.chmod(stat.S_IMODE(fetched.path.stat().st_mode) | 0o644)
    LOG.info("placed source %s at %s", repo.name, repo.dest)
    return {"name": repo.name, "type": repo.type, "location": redact(repo.location),
            "ref": repo.ref or "", "resolved": fetched.resolved, "dest": repo.dest}
