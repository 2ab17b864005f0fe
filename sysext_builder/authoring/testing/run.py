"""Build one element test case and check the image (see :mod:`.elementtests`).

Failures of a check raise :class:`.elementtests.CaseFailed`; build errors
propagate as the builder raises them.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from sysext_builder import builder, paths
from sysext_builder.authoring.testing import boot, vm
from sysext_builder.authoring.testing.cases import (
    EXPECT_FILE,
    Case,
    CaseFailed,
    Expectation,
    Options,
    check_expectations,
    matches,
    parse_expect,
)
from sysext_builder.config import BuildConfig, epoch_from
from sysext_builder.errors import (
    EnvironmentUnusableError,
    ImageError,
    ReleaseError,
    SysextBuilderError,
)
from sysext_builder.install.cache import Cache
from sysext_builder.model import discovery, graph, phases
from sysext_builder.staging import environment
from sysext_builder.staging.base import open_base
from sysext_builder.sysext import compat, osrelease, release, verify
from sysext_builder.sysext import image as images

LOG = logging.getLogger(__name__)

_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def want_merge(options: Options) -> bool:
    """Merge when asked, or by default when root and systemd-sysext is here."""
    if options.merge is False:
        return False
    if options.merge is True:
        if os.geteuid() != 0:
            raise EnvironmentUnusableError("--merge needs root: systemd-sysext mounts the "
                                           "image in a private mount namespace",
                                           hint="run as root, or use --no-merge")
        return True
    return os.geteuid() == 0 and paths.which("systemd-sysext") is not None \
        and paths.which("unshare") is not None


def element_defaults(case: Case, element_paths: Sequence[str], options: Options,
                     arch: str) -> dict[str, str] | None:
    """What the case's elements export from environment.d, or None when sourcing
    them here fails (the build then decides, and reports any problem itself)."""
    env = {k: v for k, v in options.environ.items() if k.startswith("DIB_")}
    env.update(PATH=options.environ.get("PATH", _DEFAULT_PATH), ARCH=arch,
               SYSEXT_BASE="1" if options.base else "0")
    try:
        resolution = graph.resolve([case.name], discovery.index(element_paths,
                                                                 options.environ))
        env["IMAGE_ELEMENT"] = " ".join(resolution.names)
        return environment.source(phases.environment_files(resolution.order), env, "defaults")
    except SysextBuilderError as exc:
        LOG.debug("%s: cannot read the element defaults: %s", case.label, exc)
        return None


def build_config(case: Case, options: Options, out: Path, merge: bool) -> BuildConfig:
    """The case's build: named and identified as its elements say, else after the
    case and ``ID=_any`` (when the defaults cannot be read, the builder decides)."""
    element_paths = (str(case.path.parent), *options.element_paths)
    defaults = element_defaults(case, element_paths, options, release.systemd_arch())
    output, os_id = f"{out}/", None
    if defaults is not None:
        name = defaults.get("SYSEXT_DEFAULT_NAME") or re.sub(r"[^A-Za-z0-9.-]", "-",
                                                             case.name)
        output = str(out / name)
        if not (options.os_release or options.base or defaults.get("SYSEXT_DEFAULT_OS_ID")):
            os_id = "_any"
    formats: tuple[str, ...] = ("directory",)
    if (merge or options.boot) and paths.which("mksquashfs") is not None:
        formats += ("squashfs",)
    return BuildConfig(elements=(case.name,), output=output, formats=formats,
                       element_paths=element_paths, environ=dict(options.environ),
                       base=options.base, os_release=options.os_release, os_id=os_id,
                       epoch=epoch_from(options.environ), workdir=options.workdir,
                       cache_dir=options.cache_dir, offline=options.offline)


def target_of(fields: Mapping[str, str], options: Options) -> dict[str, str]:
    """The os-release the image was built for."""
    if options.os_release is not None:
        return osrelease.read_file(options.os_release)
    if options.base_tree is not None:
        return dict(options.base_tree.os_release)
    target = {"ID": fields.get("ID", "") if fields.get("ID") != "_any" else "sysext-test"}
    for key in ("VERSION_ID", "SYSEXT_LEVEL"):
        if fields.get(key):
            target[key] = fields[key]
    return target


def _arch(fields: Mapping[str, str]) -> str:
    arch = fields.get("ARCHITECTURE", "")
    return arch if arch and arch != "_any" else release.systemd_arch()


def check_image(image: Path, options: Options, version: int) -> dict[str, str]:
    """The ``sysext-check`` logic: readable, named right, compatible with its target."""
    try:
        ext = images.read_extension(image, systemd_version=version)
    except (ImageError, ReleaseError) as exc:
        raise CaseFailed(f"sysext-check: {exc}", [exc.hint] if exc.hint else []) from exc
    if ext.has_os_release:
        raise CaseFailed(f"{image.name}: ships usr/lib/os-release, which systemd-sysext refuses")
    scope_words = ext.fields.get("SYSEXT_SCOPE", "system portable").split()
    scope = "system" if "system" in scope_words or not scope_words else scope_words[0]
    reason = compat.incompatibility(ext.fields, target_of(ext.fields, options),
                                    host_arch=_arch(ext.fields), scope=scope,
                                    id_like=version >= 258)
    if reason is not None:
        raise CaseFailed(f"{image.name}: incompatible with its target: {reason}")
    return ext.fields


def open_bases(options: Options) -> Options:
    """``options`` with the base (and, with ``boot``, the tree to boot) opened once:
    a named base is made or found in the cache here, not per case."""
    if options.base is None and not options.boot:
        return options
    cache = Cache(options.cache_dir)
    with cache.lock():
        base = open_base(options.base, cache.subdir("bases")) if options.base else None
        tree = boot.boot_tree_for(base, options.boot_base, cache) if options.boot else None
    if tree is not None:
        vm.kernel_of(tree.path)  # refuse a tree without a kernel before building
    return replace(options, base_tree=base, boot_tree=tree)


def boot_case(case: Case, images: Sequence[Path], assertions: Sequence[str],
              options: Options) -> list[str]:
    """Boot the case's image (squashfs) and check its boot assertions; return notes."""
    assert options.boot_tree is not None
    raws = [p for p in images if p.is_file()]
    if not raws:
        raise CaseFailed("boot: no image file to boot (squashfs needs mksquashfs)")
    drive = case.path / "config-drive"
    with tempfile.TemporaryDirectory(prefix="sysext-boot-", dir=options.workdir) as tmp:
        outcome = boot.run(raws[:1], assertions, options.boot_tree, Path(tmp),
                           config_drive=drive if drive.is_dir() else None,
                           timeout_s=options.boot_timeout)
        if outcome.failures and options.keep:
            kept = Path(tmp).with_name(Path(tmp).name + "-kept")
            shutil.copytree(tmp, kept, ignore=shutil.ignore_patterns("*.img", "upper"))
            outcome.notes.append(f"boot: logs kept in {kept}")
    if outcome.failures:
        raise CaseFailed(f"boot: {len(outcome.failures)} problem(s) in the booted VM",
                         outcome.failures + outcome.notes)
    return outcome.notes


def _visible(tree: Path, rules: Sequence[Expectation]) -> list[str]:
    """Expected non-directories of the tree: they must appear in the merged root."""
    wanted = []
    for rule in rules:
        if not rule.negate and rule.check != "boot":
            wanted += [rel for rel in matches(tree, rule.pattern)
                       if not (tree / rel).is_dir() or (tree / rel).is_symlink()]
    return sorted(set(wanted))


def merge(images: Sequence[Path], tree: Path, fields: Mapping[str, str],
          rules: Sequence[Expectation], options: Options) -> str:
    """Merge the first image that can be (squashfs before directory); return a note."""
    if _arch(fields) != release.systemd_arch():
        return f"merge skipped: built for {_arch(fields)}, this machine is " \
               f"{release.systemd_arch()}"
    if "system" not in fields.get("SYSEXT_SCOPE", "system").split():
        return "merge skipped: the extension's SYSEXT_SCOPE excludes 'system'"
    target = target_of(fields, options)
    problems = []
    for image in sorted(images, key=lambda p: p.is_dir()):
        try:
            result = verify.merge(image, target, workdir=options.workdir)
        except EnvironmentUnusableError as exc:
            problems.append(f"{image.name}: {exc}")
            continue
        if not result.accepted:
            raise CaseFailed(f"systemd-sysext did not merge {image.name}: {result.refusal()}")
        missing = [rel for rel in _visible(tree, rules) if rel not in result.appeared]
        if missing:
            raise CaseFailed(f"merged {image.name}, but expected files did not appear",
                             details=missing)
        return f"merged {image.name} with systemd-sysext: {len(result.appeared)} files appeared"
    if options.merge:
        raise CaseFailed("cannot merge: " + "; ".join(problems))
    return "merge skipped: " + "; ".join(problems)


def build_and_check(case: Case, options: Options, out: Path) -> list[str]:
    """Build ``case`` into ``out`` and run every check; return notes for the report."""
    do_merge = want_merge(options)
    expect = case.path / EXPECT_FILE
    rules = parse_expect(expect) if expect.is_file() else []
    config = build_config(case, options, out, do_merge)
    built = builder.build(config)
    trees = [p for p in built.images if p.is_dir()]
    if not trees:
        raise CaseFailed("the build produced no directory tree to check")
    tree = trees[0]
    version = verify.systemd_version() or 252
    fields: Mapping[str, str] = {}
    for image in built.images:
        fields = check_image(image, options, version)
    failures = check_expectations(rules, tree)
    if failures:
        raise CaseFailed(f"{len(failures)} expectation(s) of {EXPECT_FILE} failed", failures)
    notes = [f"image {built.name} ({', '.join(p.name for p in built.images)}), "
             f"{len(rules)} expectation(s) held"]
    if do_merge:
        notes.append(merge(built.images, tree, fields, rules, options))
    boot_rules = [r.text for r in rules if r.check == "boot"]
    if boot_rules and options.boot:
        notes += boot_case(case, built.images, boot_rules, options)
    elif boot_rules:
        notes.append(f"boot skipped: {len(boot_rules)} boot assertion(s); run with --boot")
    return notes
