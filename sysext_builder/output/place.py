"""Packing images and placing every output of a build atomically.

All outputs of one build (images, checksums, artifacts, the manifest) are
first written under hidden temporary names in the output directory; only
when everything is packed are they renamed into place, so an existing image
is replaced only by a complete new one and a failed build leaves it as it was.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sysext_builder import formats, runner
from sysext_builder.config import BuildConfig
from sysext_builder.errors import OutputError, UsageError
from sysext_builder.fileutil import remove_path, sha256_file
from sysext_builder.log import Timings, step
from sysext_builder.output import manifest, oem
from sysext_builder.output.atomic import commit, temp_path_for

if TYPE_CHECKING:
    from sysext_builder.formats.base import OutputFormat
    from sysext_builder.model.element import Element

LOG = logging.getLogger(__name__)


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


def load_formats(config: BuildConfig) -> list[OutputFormat]:
    """Format drivers, checked (tools, compression, name clashes, what
    ``--oem-partition`` needs) before any work."""
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
    oem.check_request(config, list(suffixes))
    return drivers


class Outputs:
    """Files staged under temporary names in the output directory, committed together."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pending: list[tuple[Path, Path]] = []

    def reserve(self, name: str) -> tuple[Path, Path]:
        final = self.directory / name
        return self.reserve_at(final), final

    def reserve_at(self, final: Path) -> Path:
        """A temporary name beside ``final``, which may lie outside the output
        directory (``--oem-partition``); committed with the rest."""
        tmp = temp_path_for(final)
        self.pending.append((tmp, final))
        return tmp

    def temp_of(self, final: Path) -> Path:
        """The temporary name ``final`` is being written under."""
        for tmp, pending in self.pending:
            if pending == final:
                return tmp
        raise KeyError(final)

    def text(self, name: str, text: str) -> Path:
        """Write ``text`` under a temporary name, committed with the rest; a
        failure (a full disk) is an :class:`OutputError` and leaves no part."""
        tmp, final = self.reserve(name)
        try:
            tmp.write_text(text, encoding="utf-8")
            tmp.chmod(0o644)
        except OSError as exc:
            raise OutputError(f"cannot write {final}: {exc.strerror or exc}") from exc
        return final

    def commit(self) -> None:
        for tmp, final in self.pending:
            commit(tmp, final)
            LOG.info("wrote %s", final)
        self.pending = []

    def discard(self) -> None:
        for tmp, _ in self.pending:
            remove_path(tmp)
        self.pending = []


def pack_images(config: BuildConfig, drivers: Sequence[OutputFormat], *, tree: Path,
                name: str, out: Outputs, timings: Timings) -> list[dict[str, Any]]:
    """Pack ``tree`` with every driver into reserved temp names; image metadata back."""
    images: list[dict[str, Any]] = []
    for drv in drivers:
        tmp, final = out.reserve(name + drv.suffix)
        comp = drv.resolve_compression(compression_for(config, drv.name))
        with step(f"pack {drv.name} -> {final}", timings):
            try:
                drv.pack(tree, tmp, epoch=config.epoch, compression=comp)
            except runner.CommandFailed as exc:  # a full or read-only output directory ...
                raise OutputError(f"packing {final} ({drv.name}) failed: {exc.message}"
                                  + (f": {exc.cause}" if exc.cause else ""),
                                  hint=exc.hint) from exc
        meta: dict[str, Any] = {"format": drv.name, "file": final.name, "path": final,
                                "compression": comp, "tools": drv.tool_versions()}
        if tmp.is_file():
            digest = sha256_file(tmp)
            meta.update(sha256=digest, size=tmp.stat().st_size)
            if config.checksum:
                meta["checksum_file"] = out.text(final.name + ".sha256",
                                                 f"{digest}  {final.name}\n")
        images.append(meta)
    return images


def stage_artifacts(artifacts_dir: Path, out: Outputs) -> list[Path]:
    placed = []
    for name in sorted(os.listdir(artifacts_dir)):
        tmp, final = out.reserve(name)
        try:
            shutil.copy2(artifacts_dir / name, tmp)
        except OSError as exc:
            raise OutputError(f"cannot write the artifact {final}: {exc.strerror or exc}") \
                from exc
        placed.append(final)
    return placed


def output_directory(directory: Path) -> Outputs:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output directory {directory}: {exc.strerror}") \
            from exc
    return Outputs(directory)


def manifest_text(config: BuildConfig, name: str, *, elements: Sequence[Element],
                  fields: Mapping[str, str], files: list[dict[str, Any]],
                  images: list[dict[str, Any]], artifacts: Sequence[Path],
                  extra: Mapping[str, Any]) -> str:
    settings = {"name": name, "formats": list(config.formats),
                "arch": fields.get("ARCHITECTURE"), "source_date_epoch": config.epoch,
                "strict": config.strict,
                "base": str(config.base) if config.base else None}
    recorded = [{k: v for k, v in img.items() if k not in ("path", "checksum_file")}
                for img in images]
    return manifest.render(name=name, elements=elements, release=fields, files=files,
                           images=recorded, settings=settings,
                           artifacts=[p.name for p in artifacts], extra=extra)
