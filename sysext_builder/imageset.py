"""Several images from one YAML file (``sysext-create --config FILE``).

The file is a list of images (or a mapping with an ``images:`` list), each::

    - name: oem-azure                 # image name (required)
      elements: [azure-oem, simple-init]   # required
      output: out/                    # directory (default: --config's -o or .)
      formats: [squashfs, directory]  # default: squashfs (-t is not inherited)
      options:                        # any of sysext-create's per-image options
        os-version-id: "3975.2.0"
        arch: x86-64
      environment:                    # added to this image's environment (hooks
        DIB_OEM_VERSION: "1.2"        # see DIB_* ones, as on the command line)

Values are typed: an ``environment`` value is one scalar (text, number,
true/false), ``options`` follow the options table; YAML aliases are refused
and the file is read only if it is a regular file of at most 1 MiB.
Relative paths are relative to the file.  The command line's identity,
discovery and running options (not ``-t``) apply to every image unless the
image sets them; each image's log lines are prefixed with its name (and go
to ``--logfile`` with the rest).  Unknown keys are errors naming the
file, line and a did-you-mean.  Each image is built by its own
``sysext-create`` process (own work directory; the cache is shared and
locked), up to ``--jobs`` at a time; one image failing does not stop the
others, and the run fails if any failed.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import stat
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sysext_builder import runner
from sysext_builder.config import Option, is_named_base, option_argv, per_image_options
from sysext_builder.errors import ConfigError
from sysext_builder.fileutil import sha256_file
from sysext_builder.output.atomic import commit, temp_path_for

LOG = logging.getLogger(__name__)

ENTRY_KEYS = ("name", "elements", "output", "formats", "options", "environment")
#: what an image may set under ``options:`` (declared with the command line's options)
OPTIONS: dict[str, Option] = per_image_options()


@dataclass(frozen=True)
class ImageSpec:
    name: str
    elements: tuple[str, ...]
    output: Path
    formats: tuple[str, ...] = ("squashfs",)
    options: Mapping[str, Any] = field(default_factory=dict)
    environment: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    spec: ImageSpec
    returncode: int = -1
    seconds: float = 0.0
    outputs: list[Path] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def _unknown(where: str, key: str, known: Sequence[str]) -> ConfigError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else "known: " + ", ".join(known)
    return ConfigError(f"{where}: unknown key {key!r}", hint=hint)


def _line(node: yaml.Node | None) -> str:
    return f":{node.start_mark.line + 1}" if node is not None else ""


#: the largest --config file read (a list of images is a few KiB)
MAX_CONFIG_BYTES = 1 << 20
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)


class _Loader(yaml.SafeLoader):
    """SafeLoader refusing aliases: ``*name`` repeated inside itself is a memory bomb."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed; write the values out",
                event.start_mark)
        return super().compose_node(parent, index)


def _read(path: Path) -> str:
    """The file's text: a regular file of at most MAX_CONFIG_BYTES, UTF-8."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise ConfigError(f"{path}: not a regular file")
            data = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES >> 20} MiB",
                          hint="a list of images is a few KiB; is this the right file?")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 (byte {exc.start})") from exc


def _compose(path: Path, text: str) -> tuple[Any, yaml.Node | None]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None), node
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    except RecursionError as exc:
        raise ConfigError(f"{path}: invalid YAML: nested too deeply") from exc
    finally:
        loader.dispose()


def _entries(path: Path) -> list[tuple[dict[str, Any], yaml.Node | None]]:
    data, node = _compose(path, _read(path))
    if isinstance(data, dict) and set(data) == {"images"}:
        data = data["images"]
        node = node.value[0][1] if isinstance(node, yaml.MappingNode) else node
    if not isinstance(data, list) or not data:
        raise ConfigError(f"{path}: expected a list of images (or images: [...])")
    nodes = node.value if isinstance(node, yaml.SequenceNode) else [None] * len(data)
    return list(zip(data, nodes, strict=True))


def _key_nodes(node: yaml.Node | None, key: str) -> dict[str, yaml.Node]:
    """Key nodes of the mapping under ``key`` of the image ``node`` (for line numbers)."""
    if not isinstance(node, yaml.MappingNode):
        return {}
    for knode, vnode in node.value:
        if knode.value == key and isinstance(vnode, yaml.MappingNode):
            return {str(k.value): k for k, _ in vnode.value}
    return {}


def _mapping(raw: dict[str, Any], key: str, where: str) -> dict[Any, Any]:
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: '{key}' must be a mapping of NAME: value, "
                          f"got {type(value).__name__}")
    return value


def _environment(raw: dict[str, Any], node: yaml.Node | None, where: str, path: str,
                 name: str) -> dict[str, str]:
    """``environment:`` as text: each value a scalar (str, number, true/false)."""
    lines = _key_nodes(node, "environment")
    result: dict[str, str] = {}
    for key, value in _mapping(raw, "environment", where).items():
        at = f"{path}{_line(lines.get(str(key)))} (image {name!r}): environment: {key}"
        if not isinstance(key, str) or not _ENV_NAME.fullmatch(key):
            raise ConfigError(f"{at}: not a variable name",
                              hint="letters, digits and '_', not starting with a digit")
        if isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, (str, int, float)):
            kind = "null" if value is None else type(value).__name__
            raise ConfigError(f"{at}: expected a single value (text, number, true/false), "
                              f"got {kind}", hint="quote it to pass text")
        if "\0" in str(value):
            raise ConfigError(f"{at}: contains a NUL character")
        result[key] = str(value)
    return result


def _option_value(where: str, key: str, value: Any, base_dir: Path) -> Any:
    """A value of ``options:`` checked against the option's kind."""
    if key not in OPTIONS:
        raise _unknown(where.rsplit(":", 1)[0], key, list(OPTIONS))
    option = OPTIONS[key]
    if option.kind == "flag":
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {type(value).__name__}")
        return value
    # YAML reads 12 and 3.0 as numbers; a version is text to systemd, so take their text
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(f"{where}: expected a single value, got {type(value).__name__}")
    if option.kind == "path" and not is_named_base(str(value)):
        return str((base_dir / str(value)).resolve())
    return str(value)


def _spec(raw: Any, node: yaml.Node | None, where: str, path: Path, default_output: Path
          ) -> ImageSpec:
    base_dir = path.parent.resolve()
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: an image must be a mapping with name and elements")
    for key in raw:
        if key not in ENTRY_KEYS:
            raise _unknown(where, str(key), ENTRY_KEYS)
    name, elements = raw.get("name"), raw.get("elements")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: 'name' is required (the image name)")
    if isinstance(elements, str):
        elements = elements.split()
    if not isinstance(elements, list) or not elements or \
            not all(isinstance(e, str) for e in elements):
        raise ConfigError(f"{where}: 'elements' must be a non-empty list of element names")
    lines = _key_nodes(node, "options")
    options = {str(k): _option_value(f"{path}{_line(lines.get(str(k)))} (image {name!r}): "
                                     f"options: {k}", str(k), v, base_dir)
               for k, v in _mapping(raw, "options", where).items()}
    environment = _environment(raw, node, where, str(path), name)
    formats = raw.get("formats") or ["squashfs"]
    formats = formats.split(",") if isinstance(formats, str) else formats
    if not isinstance(formats, list) or not all(isinstance(f, str) for f in formats):
        raise ConfigError(f"{where}: 'formats' must be a list of format names")
    output = base_dir / str(raw["output"]) if raw.get("output") else default_output
    return ImageSpec(name=name, elements=tuple(elements), output=output,
                     formats=tuple(str(f).strip() for f in formats), options=options,
                     environment=environment)


def load(path: Path, default_output: Path) -> list[ImageSpec]:
    """Parse and check the whole file before anything is built."""
    specs = [_spec(raw, node, f"{path}{_line(node)} (image {i + 1})", path, default_output)
             for i, (raw, node) in enumerate(_entries(path))]
    seen: dict[tuple[Path, str], int] = {}
    for i, spec in enumerate(specs):
        key = (spec.output.resolve(), spec.name)
        if key in seen:
            raise ConfigError(f"{path}: images {seen[key] + 1} and {i + 1} both write "
                              f"{spec.output / spec.name}")
        seen[key] = i
    return specs


def argv_for(spec: ImageSpec, common: Sequence[str]) -> list[str]:
    """The ``sysext-create`` command line that builds ``spec``."""
    argv = [sys.executable, "-m", "sysext_builder", "sysext-create", *spec.elements,
            *common, "-o", str(spec.output / spec.name), "-t", ",".join(spec.formats)]
    for key, value in sorted(spec.options.items()):  # after common: the image's own win
        argv += option_argv(OPTIONS[key], value)
    return argv


def _build(spec: ImageSpec, common: Sequence[str], environ: Mapping[str, str]) -> Outcome:
    outcome = Outcome(spec)
    env = dict(environ)
    env.update(spec.environment)
    start = time.monotonic()
    lines: list[str] = []

    def on_line(line: str) -> None:
        lines.append(line)
        LOG.info("[%s] %s", spec.name, line)

    outcome.returncode, _ = runner.stream(argv_for(spec, common), env=env, on_line=on_line)
    outcome.seconds = time.monotonic() - start
    outcome.outputs = [Path(ln) for ln in lines if ln.startswith("/") and Path(ln).exists()]
    errors = [ln for ln in lines if "sysext-create: error:" in ln]
    outcome.error = errors[-1].split("error: ", 1)[1] if errors else ""
    return outcome


def build_all(specs: Sequence[ImageSpec], common: Sequence[str], environ: Mapping[str, str],
              jobs: int = 1,
              build: Callable[[ImageSpec, Sequence[str], Mapping[str, str]], Outcome] = _build
              ) -> list[Outcome]:
    """Build every image, ``jobs`` at a time; outcomes in the file's order."""
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(build, spec, common, environ) for spec in specs]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            runner.terminate_all()
            raise


def summary(outcomes: Sequence[Outcome]) -> list[str]:
    width = max(len(o.spec.name) for o in outcomes)
    lines = [f"{'image'.ljust(width)}  status      seconds  result"]
    for o in outcomes:
        status = "ok" if o.ok else f"FAILED({o.returncode})"
        images = [p for p in o.outputs if p.suffix == ".raw" or p.is_dir()]
        result = ", ".join(str(p) for p in images) if o.ok else o.error
        lines.append(f"{o.spec.name.ljust(width)}  {status:<10}  {o.seconds:7.1f}  {result}")
    failed = sum(not o.ok for o in outcomes)
    lines.append(f"{len(outcomes) - failed} built, {failed} failed")
    return lines


def clashing_outputs(outcomes: Sequence[Outcome]) -> dict[Path, list[str]]:
    """Files (e.g. artifacts such as ``oem-release``) written by more than one image."""
    writers: dict[Path, list[str]] = {}
    for o in outcomes:
        for path in o.outputs:
            writers.setdefault(path, []).append(o.spec.name)
    return {path: names for path, names in sorted(writers.items()) if len(names) > 1}


def images_of(outcomes: Sequence[Outcome]) -> list[Path]:
    return [p for o in outcomes if o.ok for p in o.outputs
            if p.suffix == ".raw" and p.is_file()]


def write_sha256sums(images: Sequence[Path]) -> list[Path]:
    """``SHA256SUMS`` (sha256sum format) in each output directory, written atomically."""
    by_dir: dict[Path, list[Path]] = {}
    for image in images:
        by_dir.setdefault(image.parent, []).append(image)
    written = []
    for directory, files in sorted(by_dir.items()):
        final = directory / "SHA256SUMS"
        tmp = temp_path_for(final)
        lines = [f"{sha256_file(f)}  {f.name}\n" for f in sorted(files, key=lambda p: p.name)]
        tmp.write_text("".join(lines), encoding="utf-8")
        os.chmod(tmp, 0o644)
        commit(tmp, final)
        written.append(final)
    return written
