"""The build recipe: one readable list of named, timed steps.

    resolve elements -> open the base (if any) -> workspace
    -> element defaults and target identity -> collect hooks (install types
       and source repositories see the defaults environment.d exports)
    -> phases: [root.d] extra-data (sources placed first) -> pre-install ->
       install (static/ copied first) -> post-install -> finalise -> cleanup;
       distro packages before, Python packages after the hooks of a phase
    -> extract the extension from the overlay (with a base)
    -> assemble the extension -> pack every format -> place all outputs

Each step is a small function in the module that owns it; this module only
strings them together.  Nothing is written to the output directory until
every image is packed; then each output replaces its old copy by rename.

Without ``--base`` hooks run on the host with ``TARGET_ROOT`` the staging
tree.  With a base, ``pre-install.d``/``install.d``/``post-install.d`` run
chrooted into an overlay whose lower layer is the (read-only) base, the other
phases on the host with ``TARGET_ROOT`` the overlay's merged root.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sysext_builder import paths
from sysext_builder.config import BuildConfig
from sysext_builder.formats.base import OutputFormat
from sysext_builder.install.cache import Cache
from sysext_builder.install.installer import Installer, chroot_binds
from sysext_builder.log import Timings, step
from sysext_builder.model import discovery, graph, phases
from sysext_builder.model.element import Element
from sysext_builder.model.graph import Catalog, Resolution
from sysext_builder.output import manifest
from sysext_builder.output import place as outputs
from sysext_builder.staging import buildenv, environment, executor
from sysext_builder.staging.base import BaseTree, open_base
from sysext_builder.staging.overlay import INSIDE, Overlay, extract
from sysext_builder.staging.workspace import Workspace
from sysext_builder.sysext import release
from sysext_builder.sysext.assemble import assemble as assemble_tree

LOG = logging.getLogger(__name__)

#: phases that run chrooted into the overlay when building on a base
CHROOT_PHASES = ("pre-install.d", "install.d", "post-install.d")


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
    target: buildenv.Target
    installer: Installer
    result: BuildResult
    launcher: executor.Launcher
    base: BaseTree | None = None
    overlay: Overlay | None = None
    chroot_env: dict[str, str] = field(default_factory=dict)
    binds: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def elements(self) -> tuple[Element, ...]:
        return self.plan.resolution.order


def resolve(config: BuildConfig, catalog: Catalog | None = None) -> Resolution:
    if catalog is None:
        catalog = discovery.index(config.element_paths, config.environ)
    return graph.resolve(config.elements, catalog)


def collect(resolution: Resolution, environ: Mapping[str, str], with_base: bool,
            env_files: list[tuple[str, Path]]) -> _Plan:
    elements = resolution.order
    phases.check_source_repository_collisions(elements)
    phases.check_static_collisions(elements)
    for warning in phases.unsupported_phase_dirs(elements):
        LOG.warning("%s", warning)
    hooks: dict[str, list[phases.Hook]] = {}
    for phase in ("root.d", *phases.BUILD_PHASES):
        found, warnings = phases.scan(elements, phase, environ)
        for warning in warnings:
            LOG.warning("%s", warning)
        if phase == "root.d" and found and not with_base:
            LOG.warning("root.d hooks (%s) only run when building on a --base",
                        ", ".join(h.label for h in found))
            found = []
        hooks[phase] = found
        LOG.info("%s: %d hook(s)", phase, len(found))
    return _Plan(resolution, hooks, env_files)


def _translate(hook: phases.Hook) -> tuple[str, str]:
    """Paths of a hook as it sees them inside the chroot."""
    assert hook.element_dir is not None
    inside = f"{INSIDE['elements']}/{hook.element}"
    return f"{inside}/{hook.path.relative_to(hook.element_dir)}", inside


def run_phase(b: _Build, phase: str) -> None:
    chroot = b.overlay is not None and phase in CHROOT_PHASES
    phase_env = environment.source(b.plan.env_files, b.chroot_env if chroot else b.env, phase)
    if phase == "extra-data.d":
        b.installer.place_sources()
    b.installer.install_packages(phase, phase_env)
    if phase == "install.d":
        buildenv.copy_static(b.elements, b.installer.root)
    if b.overlay is not None:
        phase_env.update(b.overlay.environment(chroot=chroot, binds=b.binds))
    executor.run_phase(phase, b.plan.hooks[phase], phase_env, trace=b.config.trace,
                       launcher=b.launcher, wrap=Overlay.wrap if b.overlay else None,
                       translate=_translate if chroot else None)
    b.installer.install_python(b.ws.state, phase_env,
                               {inside: host for host, inside in b.binds})
    if phase == "post-install.d":
        b.installer.remove_packages()
        b.installer.record_packages()


def run_phases(b: _Build) -> None:
    for phase in (("root.d",) if b.base else ()) + phases.BUILD_PHASES:
        with step(f"phase {phase}", b.result.timings):
            run_phase(b, phase)


def _prepare_overlay(b: _Build) -> None:
    """With a base: the overlay, the chroot's view of the builder and its environment."""
    assert b.base is not None
    b.overlay = Overlay.under(b.base.path, b.ws.path)
    elements_copy = b.ws.copy_elements(b.elements)
    chroot_hooks = b.ws.path / "hooks-chroot"
    b.ws.link_hooks(b.elements, chroot_hooks, inside=INSIDE["elements"])

    b.binds = chroot_binds({"elements": elements_copy, "hooks": chroot_hooks,
                            "tmp": b.ws.tmp, "artifacts": b.ws.artifacts,
                            "state": b.ws.state, "lib": paths.shell_lib_dir()})
    b.chroot_env = buildenv.chroot_environment(b.env, INSIDE)


def assemble(b: _Build) -> dict[str, str]:
    unit_files = [p for p in (e.file("units") for e in b.elements) if p is not None]
    unit_files.append(b.ws.state / "units")
    return assemble_tree(b.ws.root, b.target.name, b.target.release_fields, unit_files,
                         strict=b.config.strict, epoch=b.config.epoch)


def place_outputs(b: _Build, drivers: list[OutputFormat], fields: Mapping[str, str]) -> None:
    out = outputs.output_directory(b.target.directory)
    try:
        files = manifest.file_list(b.ws.root)
        images = outputs.pack_images(b.config, drivers, tree=b.ws.root, name=b.target.name,
                                     out=out, timings=b.result.timings)
        b.result.images = [img["path"] for img in images]
        b.result.checksums = [img["checksum_file"] for img in images if "checksum_file" in img]
        b.result.artifacts = outputs.stage_artifacts(b.ws.artifacts, out)
        text = outputs.manifest_text(b.config, b.target.name, elements=b.elements,
                                     fields=fields, files=files, images=images,
                                     artifacts=b.result.artifacts, extra=b.installer.records)
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
    env_files = phases.environment_files(resolution.order)
    drivers = outputs.load_formats(config)
    cache = Cache(config.cache_dir)
    base = None
    if config.base is not None:
        with step("open base", timings), cache.lock():
            base = open_base(config.base, cache.subdir("bases"))
    arch = config.arch or (base.architecture if base else None) or release.systemd_arch()
    with Workspace(config.workdir, keep=config.keep_workdir) as ws:
        target_root = ws.path / "merged" if base else ws.root
        env = buildenv.host_environment(config, ws, resolution.names, arch, target_root,
                                        base_release=base.os_release if base else None,
                                        base_root=base.path if base else None)
        with step("element defaults", timings):
            defaults = environment.source(env_files, env, "defaults")
            tgt = buildenv.target(config, defaults, arch, base.os_release if base else None)
        # Install types (DIB_INSTALLTYPE_*) and DIB_REPO* may get defaults from
        # environment.d, as in DIB: hooks and repositories are selected with them.
        selection = {**config.environ, **defaults}
        with step("collect hooks", timings):
            plan = collect(resolution, selection, base is not None, env_files)
        env["SYSEXT_NAME"] = tgt.name
        env.update(buildenv.target_variables(tgt))
        ws.link_hooks(resolution.order)
        installer = Installer(resolution.order, cache=cache, offline=config.offline,
                              arch=arch, root=ws.root, base=base, overlay=None,
                              environ=selection)
        installer.check_packages(defaults)
        b = _Build(config=config, plan=plan, ws=ws, env=env, target=tgt, installer=installer,
                   result=BuildResult(name=tgt.name, timings=timings), launcher=launcher,
                   base=base)
        if base is not None:
            _prepare_overlay(b)
            assert b.overlay is not None
            installer.root, installer.overlay = b.overlay.upper, b.overlay
        run_phases(b)
        if b.overlay is not None:
            with step("extract the extension from the overlay", timings):
                counts = extract(b.overlay, ws.root)
                LOG.info("extension: %(kept)d files kept, %(identical)d identical to the "
                         "base dropped", counts)
        with step("assemble extension", timings):
            fields = assemble(b)
        place_outputs(b, drivers, fields)
    return b.result
