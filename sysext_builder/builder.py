"""The build recipe: one readable list of named, timed steps.

    resolve elements -> collect hooks -> prepare workspace -> element defaults
    -> phases (extra-data .. cleanup) -> assemble extension -> pack each format
    -> place image, manifest, checksum and artifacts atomically

Each step is a small function in the module that owns it; this module only
strings them together.  Nothing is written to the output directory until
every image is packed; then each output replaces its old copy by rename.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sysext_builder import environment, executor, manifest, paths, phases
from sysext_builder.config import BuildConfig, split_output
from sysext_builder.element import Element
from sysext_builder.errors import OutputError, UsageError
from sysext_builder.graph import Catalog, Resolution
from sysext_builder.log import Timings, step
from sysext_builder.workspace import Workspace

if TYPE_CHECKING:
    from sysext_builder.formats import base as formats_base
    from sysext_builder.sysext.units import UnitDecl

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """Where the image goes and what it claims to extend."""

    directory: Path
    name: str
    release_fields: Mapping[str, str]


@dataclass
class BuildResult:
    name: str
    images: list[Path] = field(default_factory=list)
    manifest: Path | None = None
    checksums: list[Path] = field(default_factory=list)
    artifacts: list[Path] = field(default_factory=list)
    timings: Timings = field(default_factory=Timings)


@dataclass
class _Plan:
    resolution: Resolution
    hooks: dict[str, list[phases.Hook]]
    env_files: list[tuple[str, Path]]


@dataclass
class _Build:
    """Everything one build carries from step to step."""

    config: BuildConfig
    plan: _Plan
    ws: Workspace
    env: dict[str, str]
    target: Target
    drivers: list[formats_base.OutputFormat]
    result: BuildResult
    launcher: executor.Launcher

    @property
    def elements(self) -> tuple[Element, ...]:
        return self.plan.resolution.order


def resolve(config: BuildConfig, catalog: Catalog | None = None) -> Resolution:
    from sysext_builder import discovery, graph

    if catalog is None:
        catalog = discovery.index(config.element_paths, config.environ)
    return graph.resolve(config.elements, catalog)


def collect(resolution: Resolution, environ: Mapping[str, str]) -> _Plan:
    elements = resolution.order
    phases.check_source_repository_collisions(elements)
    phases.check_static_collisions(elements)
    hooks: dict[str, list[phases.Hook]] = {}
    for phase in phases.BUILD_PHASES:
        found, warnings = phases.scan(elements, phase, environ)
        for warning in warnings:
            LOG.warning("%s", warning)
        hooks[phase] = found
        LOG.info("%s: %d hook(s)", phase, len(found))
    return _Plan(resolution, hooks, phases.environment_files(elements))


def base_environment(config: BuildConfig, ws: Workspace,
                     resolution: Resolution) -> dict[str, str]:
    """What every environment.d file and hook starts from."""
    from sysext_builder.sysext import release

    env = {k: v for k, v in config.environ.items()
           if k in ("PATH", "HOME", "LANG", "LC_ALL", "TERM", "TZ", "USER", "LOGNAME",
                    "http_proxy", "https_proxy", "no_proxy", "XDG_CACHE_HOME")}
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env.update(config.user_variables())
    lib = paths.shell_lib_dir()
    env.update({
        "TARGET_ROOT": str(ws.root),
        "TMP_BUILD_DIR": str(ws.tmp),
        "TMP_HOOKS_PATH": str(ws.hooks),
        "SYSEXT_ARTIFACTS_DIR": str(ws.artifacts),
        "SYSEXT_UNITS_FILE": str(ws.state / "units"),
        "SYSEXT_LIB": str(lib),
        "SYSEXT_FUNCTIONS": str(lib / "common-functions.sh"),
        "ARCH": config.arch or release.systemd_arch(),
        "IMAGE_ELEMENT": " ".join(resolution.names),
        "SOURCE_DATE_EPOCH": str(config.epoch),
        "DIB_DEBUG_TRACE": "1" if config.trace else "0",
    })
    return env


def target(config: BuildConfig, defaults: Mapping[str, str], arch: str) -> Target:
    """Output location and extension-release fields (options > os-release > elements)."""
    from sysext_builder.sysext import osrelease, release

    directory, name = split_output(config.output, defaults.get("SYSEXT_DEFAULT_NAME"))
    release.validate_image_name(name)
    target_release = osrelease.read_file(config.os_release) if config.os_release else {}
    version_id = config.os_version_id or target_release.get("VERSION_ID")
    level = config.sysext_level or target_release.get("SYSEXT_LEVEL")
    if not config.os_release and not config.os_id:
        version_id = version_id or defaults.get("SYSEXT_DEFAULT_OS_VERSION_ID") or None
    if version_id is None and level is None:
        level = defaults.get("SYSEXT_DEFAULT_SYSEXT_LEVEL") or None
    extra = tuple((k[len("SYSEXT_RELEASE_"):], v) for k, v in sorted(defaults.items())
                  if k.startswith("SYSEXT_RELEASE_") and v)
    identity = release.identity_from(
        None,
        id=config.os_id or target_release.get("ID") or defaults.get("SYSEXT_DEFAULT_OS_ID"),
        version_id=version_id, sysext_level=level, architecture=arch,
        scope=config.scope or defaults.get("SYSEXT_DEFAULT_SCOPE") or None,
        extra=extra)
    fields = osrelease.parse(release.render_extension_release(identity), "extension-release")
    if defaults.get("SYSEXT_RELOAD_MANAGER") == "1":
        fields["EXTENSION_RELOAD_MANAGER"] = "1"
    return Target(directory=directory, name=name, release_fields=fields)


def copy_static(elements: Sequence[Element], root: Path) -> None:
    for element in elements:
        static = element.static_dir
        if static is not None:
            LOG.info("copying %s/static into the staging root", element.name)
            shutil.copytree(static, root, symlinks=True, dirs_exist_ok=True)


def unit_declarations(elements: Sequence[Element], ws: Workspace) -> list[UnitDecl]:
    from sysext_builder.sysext import units

    decls: list[UnitDecl] = []
    for element in elements:
        path = element.file("units")
        if path is not None:
            decls.extend(units.parse_units(path))
    hook_decls = ws.state / "units"
    if hook_decls.exists():
        decls.extend(units.parse_units(hook_decls))
    return decls


def assemble(b: _Build) -> dict[str, str]:
    """Turn the staging tree into a valid extension; returns extension-release fields."""
    from sysext_builder.sysext import osrelease, release, tree, units

    config, tgt, ws = b.config, b.target, b.ws
    tree.lower_etc_var(ws.root, strict=config.strict, name=tgt.name)
    created = units.apply_units(ws.root, unit_declarations(b.elements, ws), tgt.name)
    for rel in created:
        LOG.info("enabled unit: %s", rel)
    tree.validate(ws.root)
    fields = dict(tgt.release_fields)
    if units.ships_units(ws.root):
        fields["EXTENSION_RELOAD_MANAGER"] = "1"
    rel_path = ws.root / release.release_path(tgt.name)
    rel_path.parent.mkdir(parents=True, exist_ok=True)
    rel_path.write_text(osrelease.render(fields), encoding="utf-8")
    rel_path.chmod(0o644)
    tree.normalise(ws.root, config.epoch)
    return fields




def run_phases(b: _Build) -> None:
    for phase in phases.BUILD_PHASES:
        with step(f"phase {phase}", b.result.timings):
            if phase == "install.d":
                copy_static(b.elements, b.ws.root)
            phase_env = environment.source(b.plan.env_files, b.env, phase)
            executor.run_phase(phase, b.plan.hooks[phase], phase_env, trace=b.config.trace,
                               launcher=b.launcher)


def compression_for(config: BuildConfig, fmt: str) -> str | None:
    """``--compression xz`` or ``--compression squashfs=xz,erofs=lz4hc``."""
    if not config.compression:
        return None
    if "=" not in config.compression:
        return config.compression
    for part in config.compression.split(","):
        key, _, value = part.partition("=")
        if key.strip() == fmt:
            return value.strip() or None
    return None


def load_formats(config: BuildConfig) -> list[formats_base.OutputFormat]:
    """Format drivers, checked (tools, compression, name clashes) before any work."""
    from sysext_builder import formats

    drivers = [formats.get(name) for name in config.formats]
    suffixes: dict[str, str] = {}
    for drv in drivers:
        if drv.suffix in suffixes:
            raise UsageError(f"formats {suffixes[drv.suffix]} and {drv.name} would both write "
                             f"NAME{drv.suffix or '/'}",
                             hint="build them in separate runs with different -o")
        suffixes[drv.suffix] = drv.name
        drv.require_tools()
        drv.resolve_compression(compression_for(config, drv.name))
    return drivers


class _Outputs:
    """Files staged under temporary names in the output directory, committed together."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pending: list[tuple[Path, Path]] = []

    def reserve(self, name: str) -> tuple[Path, Path]:
        from sysext_builder.formats.base import temp_path_for

        final = self.directory / name
        tmp = temp_path_for(final)
        self.pending.append((tmp, final))
        return tmp, final

    def text(self, name: str, text: str) -> Path:
        tmp, final = self.reserve(name)
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o644)
        return final

    def commit(self) -> None:
        from sysext_builder.formats.base import commit

        for tmp, final in self.pending:
            commit(tmp, final)
            LOG.info("wrote %s", final)
        self.pending = []

    def discard(self) -> None:
        from sysext_builder.formats.base import remove_path

        for tmp, _ in self.pending:
            remove_path(tmp)
        self.pending = []


def pack_images(b: _Build, out: _Outputs) -> list[dict[str, object]]:
    images: list[dict[str, object]] = []
    for drv in b.drivers:
        tmp, final = out.reserve(b.target.name + drv.suffix)
        comp = drv.resolve_compression(compression_for(b.config, drv.name))
        with step(f"pack {drv.name} -> {final}", b.result.timings):
            drv.pack(b.ws.root, tmp, epoch=b.config.epoch, compression=comp)
        meta: dict[str, object] = {"format": drv.name, "file": final.name,
                                   "compression": comp, "tools": drv.tool_versions()}
        if tmp.is_file():
            digest = manifest.sha256_file(tmp)
            meta.update(sha256=digest, size=tmp.stat().st_size)
            if b.config.checksum:
                b.result.checksums.append(
                    out.text(final.name + ".sha256", f"{digest}  {final.name}\n"))
        images.append(meta)
        b.result.images.append(final)
    return images


def place_outputs(b: _Build, fields: Mapping[str, str]) -> None:
    """Pack every format, stage manifest, checksums and artifacts, then rename all."""
    directory = b.target.directory
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output directory {directory}: {exc.strerror}") \
            from exc
    out = _Outputs(directory)
    try:
        files = manifest.file_list(b.ws.root)
        images = pack_images(b, out)
        artifact_names = sorted(os.listdir(b.ws.artifacts))
        for name in artifact_names:
            tmp, final = out.reserve(name)
            shutil.copy2(b.ws.artifacts / name, tmp)
            b.result.artifacts.append(final)
        settings = {"name": b.target.name, "formats": list(b.config.formats),
                    "arch": fields.get("ARCHITECTURE"), "source_date_epoch": b.config.epoch,
                    "strict": b.config.strict}
        text = manifest.render(name=b.target.name, elements=b.elements, release=fields,
                               files=files, images=images, settings=settings,
                               artifacts=artifact_names)
        b.result.manifest = out.text(f"{b.target.name}.manifest.json", text)
        out.commit()
    finally:
        out.discard()


def build(config: BuildConfig, *, catalog: Catalog | None = None,
          launcher: executor.Launcher = executor.default_launcher) -> BuildResult:
    """Build one image from ``config``; see the module docstring for the recipe."""
    timings = Timings()
    with step("resolve elements", timings):
        resolution = resolve(config, catalog)
        LOG.info("elements: %s", " ".join(resolution.names))
    with step("collect hooks", timings):
        plan = collect(resolution, config.environ)
    drivers = load_formats(config)
    with Workspace(config.workdir, keep=config.keep_workdir) as ws:
        env = base_environment(config, ws, resolution)
        with step("element defaults", timings):
            defaults = environment.source(plan.env_files, env, "defaults")
            tgt = target(config, defaults, env["ARCH"])
        env["SYSEXT_NAME"] = tgt.name
        ws.link_hooks(resolution.order)
        b = _Build(config=config, plan=plan, ws=ws, env=env, target=tgt, drivers=drivers,
                   result=BuildResult(name=tgt.name, timings=timings), launcher=launcher)
        run_phases(b)
        with step("assemble extension", timings):
            fields = assemble(b)
        place_outputs(b, fields)
    return b.result
