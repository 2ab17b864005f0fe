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
strings them together.  What a phase does besides running its hooks comes
from the :data:`PHASE_PLAN` table, not from tests on the phase's name.
Nothing is written to the output directory until every image is packed;
then each output replaces its old copy by rename.

Without ``--base`` hooks run on the host with ``TARGET_ROOT`` the staging
tree.  With a base, ``pre-install.d``/``install.d``/``post-install.d`` run
chrooted into an overlay whose lower layer is the (read-only) base, the other
phases on the host with ``TARGET_ROOT`` the overlay's merged root.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from sysext_builder import paths
from sysext_builder.config import BuildConfig
from sysext_builder.errors import TreeRuleError
from sysext_builder.formats.base import OutputFormat
from sysext_builder.install.cache import Cache
from sysext_builder.install.installer import Installer, chroot_binds
from sysext_builder.log import Timings, step
from sysext_builder.model import builtin, discovery, graph, phases
from sysext_builder.model.element import Element, target_requirements
from sysext_builder.model.graph import Catalog, Resolution
from sysext_builder.output import manifest, oem, place
from sysext_builder.staging import buildenv, debian, environment, executor, hooktree
from sysext_builder.staging.base import BaseTree, open_base
from sysext_builder.staging.overlay import INSIDE, Overlay, extract
from sysext_builder.staging.workspace import Workspace
from sysext_builder.sysext import activation, oemlink, outside, release, users
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


@dataclass(frozen=True)
class _Stage:
    """Where hooks and installs write: the staging tree, or an overlay over the base."""

    root: Path  # placed files go here: the staging tree, or the overlay's upper layer
    overlay: Overlay | None = None
    binds: tuple[tuple[Path, str], ...] = ()  # (host dir, chroot path)
    chroot_env: Mapping[str, str] = field(default_factory=dict)


@dataclass
class _Build:
    """Everything one build carries from step to step, built once with its final state."""

    config: BuildConfig
    plan: _Plan
    ws: Workspace
    env: dict[str, str]
    target: buildenv.Target
    stage: _Stage
    installer: Installer
    result: BuildResult
    launcher: executor.Launcher

    @property
    def elements(self) -> tuple[Element, ...]:
        return self.plan.resolution.order


def resolve(config: BuildConfig, catalog: Catalog | None = None) -> Resolution:
    if catalog is None:
        catalog = discovery.index(config.element_paths, config.environ)
    # disk-image elements: a requested one (vm) before resolution trips on its needs,
    # then every element selected
    phases.check_not_disk_image([catalog.get(n) for n in config.elements if n in catalog])
    resolution = graph.resolve(
        config.elements, catalog, built_in=builtin.BUILT_IN,
        skip_provides=[builtin.OPERATING_SYSTEM] if config.base is not None else [])
    phases.check_not_disk_image(resolution.order)
    for name, reason in resolution.skipped.items():
        if name in builtin.BUILT_IN:
            LOG.info("element %s: not used, built in: %s", name, reason)
        else:
            LOG.info("element %s: skipped, the OS comes from --base (%s)", name, reason)
    return resolution


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


def _open_base(config: BuildConfig, cache: Cache, timings: Timings
               ) -> tuple[BuildConfig, BaseTree | None]:
    """The base (if any), and ``config`` naming it as the manifest records it: a named
    base (``debian:...``) by its normalised spec."""
    if config.base is None:
        return config, None
    with step("open base", timings), cache.lock():
        base = open_base(config.base, cache.subdir("bases"))
    return replace(config, base=base.source), base


def _stage(ws: Workspace, elements: tuple[Element, ...], base: BaseTree | None,
           env: Mapping[str, str]) -> _Stage:
    """Without a base, the staging tree; with one, the overlay and the chroot's view."""
    if base is None:
        return _Stage(root=ws.root)
    overlay = Overlay.under(base.path, ws.path)
    elements_copy = ws.copy_elements(elements)
    # the one merged hooks tree: TMP_HOOKS_PATH on the host, /tmp/in_target.d inside
    dirs = {"elements": elements_copy, "hooks": ws.hooks, "tmp": ws.tmp,
            "artifacts": ws.artifacts, "state": ws.state, "lib": paths.shell_lib_dir()}
    chroot_env = buildenv.chroot_environment(env, INSIDE)
    chroot_env["IMAGE_ELEMENT_YAML"] = buildenv.element_yaml(elements, INSIDE["elements"])
    ca = buildenv.copy_ca_bundle(env, ws.path / "ca")
    if ca is not None:  # a TLS proxy's CA: pip and git in chrooted hooks trust it too
        dirs["ca"] = ca
        chroot_env.update(buildenv.ca_variables(INSIDE["ca"]))
    return _Stage(root=overlay.upper, overlay=overlay, binds=tuple(chroot_binds(dirs)),
                  chroot_env=chroot_env)


def _translate(hook: phases.Hook, hooks_dir: str, chroot: bool) -> tuple[str, str]:
    """Where a hook runs (in the merged hooks tree, as DIB runs it) and its element's
    directory (``SYSEXT_ELEMENT_DIR``), as the hook sees them."""
    if chroot:
        return (hooktree.run_path(hook, INSIDE["hooks"]),
                f"{INSIDE['elements']}/{hook.element}")
    return hooktree.run_path(hook, hooks_dir), str(hook.element_dir or "")


def _run_hooks(b: _Build, phase: str, env: dict[str, str]) -> None:
    overlay = b.stage.overlay
    chroot = overlay is not None and phase in CHROOT_PHASES
    if overlay is not None:
        # the Python step after the hooks runs with the same view of the overlay
        env.update(overlay.environment(chroot=chroot, binds=list(b.stage.binds)))
    executor.run_phase(phase, b.plan.hooks[phase], env, trace=b.config.trace,
                       launcher=b.launcher, wrap=Overlay.wrap if overlay else None,
                       translate=lambda hook: _translate(hook, str(b.ws.hooks), chroot),
                       after=lambda hook: _check_outside(
                           b, f"hook {hook.name} of element {hook.element} in phase {phase}"))


def _check_outside(b: _Build, what: str) -> None:
    """Stop at the first step that wrote what an extension cannot carry (/boot, /home)."""
    found = outside.written(b.stage.root, b.stage.overlay.lower if b.stage.overlay else None)
    if found is not None:
        path, why = found
        raise TreeRuleError(f"{what} wrote {path}: {why}",
                            hint="drop the element, or remove that step from it")


def _install_python(b: _Build, phase: str, env: dict[str, str]) -> None:
    # the host's pip runs here: the host's CA bundle, not the copy bound in the chroot
    host_env = {k: v for k, v in env.items() if k not in buildenv.CA_VARIABLES}
    host_env.update((k, b.env[k]) for k in buildenv.CA_VARIABLES if k in b.env)
    b.installer.install_python(b.ws.state, host_env,
                               {inside: host for host, inside in b.stage.binds})


#: what one phase does, by name, in order (DIB runs only hooks; the rest is ours)
PhaseStep = Callable[[_Build, str, dict[str, str]], None]
PHASE_STEPS: dict[str, PhaseStep] = {
    "sources": lambda b, phase, env: b.installer.place_sources(),
    "packages": lambda b, phase, env: b.installer.install_packages(phase, env),
    "static": lambda b, phase, env: buildenv.copy_static(b.elements, b.stage.root),
    "hooks": _run_hooks,
    "python": _install_python,
    "remove packages": lambda b, phase, env: b.installer.remove_packages(),
    "record packages": lambda b, phase, env: b.installer.record_packages(b.ws.state),
}
_DEFAULT_PLAN = ("packages", "hooks", "python")
#: sources are in place for extra-data.d hooks, static/ before install.d's hooks,
#: and uninstall/build-only packages go once post-install.d's hooks are done
PHASE_PLAN: dict[str, tuple[str, ...]] = {
    "extra-data.d": ("sources", *_DEFAULT_PLAN),
    "install.d": ("packages", "static", "hooks", "python"),
    "post-install.d": (*_DEFAULT_PLAN, "remove packages", "record packages"),
}


def run_phase(b: _Build, phase: str) -> None:
    chroot = b.stage.overlay is not None and phase in CHROOT_PHASES
    env = environment.source(b.plan.env_files, b.stage.chroot_env if chroot else b.env, phase)
    for name in PHASE_PLAN.get(phase, _DEFAULT_PLAN):
        PHASE_STEPS[name](b, phase, env)
        if name in ("packages", "static"):  # hooks are checked one by one
            _check_outside(b, f"the {name} step of phase {phase}")


def run_phases(b: _Build) -> None:
    root_phase = ("root.d",) if b.stage.overlay is not None else ()
    for phase in root_phase + phases.BUILD_PHASES:
        with step(f"phase {phase}", b.result.timings):
            run_phase(b, phase)


def target_needs(b: _Build) -> None:
    """What the target needs besides the image's files: the accounts the build
    created become sysusers.d lines and a unit creating them before the image's
    services; without a base, the elements' target-requires are logged."""
    base = b.stage.overlay.lower if b.stage.overlay is not None else None
    needs = target_requirements(b.elements)
    if base is None and needs:
        LOG.info("the target must provide: %s", "; ".join(f"{r} ({e})" for e, r in needs))
    unit_files = [p for p in (e.file("units") for e in b.elements) if p is not None]
    with step("accounts to sysusers.d", b.result.timings):
        users.carry_accounts(b.stage.root, b.target.name, base=base,
                             unit_files=[*unit_files, b.ws.state / "units"],
                             strict=b.config.strict)


def extract_extension(b: _Build) -> None:
    """With a base: keep what the build added to usr/, opt/ and etc/ (the overlay's
    upper layer); etc/ is lowered when the extension is assembled."""
    if b.stage.overlay is None:
        return
    with step("extract the extension from the overlay", b.result.timings):
        counts = extract(b.stage.overlay, b.ws.root, strict=b.config.strict)
        LOG.info("extension: %(kept)d files kept, %(identical)d identical to the base "
                 "dropped", counts)


def assemble(b: _Build) -> dict[str, str]:
    unit_files = [p for p in (e.file("units") for e in b.elements) if p is not None]
    unit_files.append(b.ws.state / "units")
    base = b.stage.overlay.lower if b.stage.overlay is not None else None
    return assemble_tree(b.ws.root, b.target.name, b.target.release_fields, unit_files,
                         strict=b.config.strict, epoch=b.config.epoch, base=base)


def activation_advice(b: _Build, fields: Mapping[str, str]) -> None:
    """One warning, and the host helper beside the image, when the target's systemd
    cannot start the image's units after a merge at boot (doc/booting.rst)."""
    if fields.get("EXTENSION_RELOAD_MANAGER") != "1":
        return
    version = b.config.target_systemd
    if version is None and b.stage.overlay is not None:
        version = debian.systemd_version(b.stage.overlay.lower)
    message = activation.advice(b.target.name, version, beside=True)
    if message is None:
        LOG.info("units: systemd %s on the target starts them after the merge", version)
        return
    LOG.warning("%s", message)
    if activation.needs_host_helper(version):
        helper = b.ws.artifacts / activation.HELPER_UNIT
        if not helper.exists():
            helper.write_text(activation.helper_unit(), encoding="utf-8")


def place_outputs(b: _Build, drivers: list[OutputFormat], fields: Mapping[str, str]) -> None:
    out = place.output_directory(b.target.directory)
    try:
        files = manifest.file_list(b.ws.root)
        images = place.pack_images(b.config, drivers, tree=b.ws.root, name=b.target.name,
                                   out=out, timings=b.result.timings)
        b.result.images = [img["path"] for img in images]
        b.result.checksums = [img["checksum_file"] for img in images if "checksum_file" in img]
        if b.config.oem_partition is not None:
            # for bases without Flatcar's own OEM activation (doc/booting.rst)
            helper = b.ws.artifacts / oemlink.HELPER_UNIT
            helper.write_text(oemlink.helper_unit(), encoding="utf-8")
        b.result.artifacts = place.stage_artifacts(b.ws.artifacts, out)
        partition = oem.stage_partition(b.config, b.target.name, images, b.ws.artifacts, out)
        text = place.manifest_text(b.config, b.target.name, elements=b.elements,
                                   fields=fields, files=files, images=images,
                                   artifacts=b.result.artifacts,
                                   extra={**b.installer.records, **partition.record})
        b.result.manifest = out.text(f"{b.target.name}.manifest.json", text)
        out.commit()
    finally:
        out.discard()


def _identity(config: BuildConfig, resolution: Resolution, base: BaseTree | None,
              ws: Workspace, env_files: list[tuple[str, Path]]
              ) -> tuple[dict[str, str], dict[str, str], buildenv.Target]:
    """Hook environment, element defaults and the target (name, release fields)."""
    arch = config.arch or (base.architecture if base else None) or release.systemd_arch()
    env = buildenv.host_environment(config, ws, resolution.names, arch,
                                    ws.path / "merged" if base else ws.root,
                                    base_release=base.os_release if base else None,
                                    base_root=base.path if base else None,
                                    search_path=[d.path for d in discovery.search_path(
                                        config.element_paths, config.environ)])
    env["IMAGE_ELEMENT_YAML"] = buildenv.element_yaml(resolution.order)
    defaults = environment.source(env_files, env, "defaults")
    target = buildenv.target(config, defaults, arch, base.os_release if base else None)
    env.update(buildenv.name_variables(target))
    env.update(buildenv.target_variables(target))
    return env, defaults, target


def build(config: BuildConfig, *, catalog: Catalog | None = None,
          launcher: executor.Launcher = executor.default_launcher) -> BuildResult:
    """Build one image from ``config``; see the module docstring for the recipe."""
    timings = Timings()
    with step("resolve elements", timings):
        resolution = resolve(config, catalog)
        LOG.info("elements: %s", " ".join(resolution.names))
    env_files = phases.environment_files(resolution.order)
    drivers = place.load_formats(config)
    cache = Cache(config.cache_dir)
    config, base = _open_base(config, cache, timings)
    with Workspace(config.workdir, keep=config.keep_workdir) as ws:
        with step("element defaults", timings):
            env, defaults, target = _identity(config, resolution, base, ws, env_files)
        # Install types (DIB_INSTALLTYPE_*) and DIB_REPO* may get defaults from
        # environment.d, as in DIB: hooks and repositories are selected with them.
        selection = {**config.environ, **defaults}
        with step("collect hooks", timings):
            plan = collect(resolution, selection, base is not None, env_files)
        hooktree.merge(resolution.order, plan.hooks, ws.hooks)
        stage = _stage(ws, resolution.order, base, env)
        installer = Installer(resolution.order, cache=cache, offline=config.offline,
                              arch=target.arch, root=stage.root, base=base,
                              overlay=stage.overlay, environ=selection)
        installer.check_packages(defaults)
        installer.write_pkg_maps(ws.state)  # for install-packages -m in hooks
        b = _Build(config=config, plan=plan, ws=ws, env=env, target=target, stage=stage,
                   installer=installer, result=BuildResult(name=target.name, timings=timings),
                   launcher=launcher)
        run_phases(b)
        target_needs(b)
        extract_extension(b)
        with step("assemble extension", timings):
            fields = assemble(b)
        activation_advice(b, fields)
        place_outputs(b, drivers, fields)
    return b.result
