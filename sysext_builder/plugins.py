"""The only module that talks to stevedore.

Plugin namespaces:

``sysext_builder.elements``
    Third-party element directories.  The entry point resolves to a path
    (``str`` or ``os.PathLike``) or to a callable returning one.
``sysext_builder.formats``
    Output format drivers (:class:`sysext_builder.formats.base.OutputFormat`).
``sysext_builder.package_backends``
    Distro package managers.

Load failures raise :class:`PluginError` listing what is available; choices
are listed from ``importlib.metadata`` without importing any plugin.
"""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path
from typing import Any

from sysext_builder.errors import PluginError

ELEMENTS_NAMESPACE = "sysext_builder.elements"
FORMATS_NAMESPACE = "sysext_builder.formats"
PACKAGE_BACKENDS_NAMESPACE = "sysext_builder.package_backends"


def available(namespace: str) -> list[str]:
    """Names registered in ``namespace`` (no plugin is imported)."""
    return sorted({ep.name for ep in metadata.entry_points(group=namespace)})


def _raise_load_failure(manager: Any, entrypoint: Any, exc: BaseException) -> None:
    raise PluginError(
        f"plugin {entrypoint.name!r} in {manager.namespace} failed to load: {exc}",
        hint=f"entry point {entrypoint.value}") from exc


def load_driver(namespace: str, name: str) -> Any:
    """Load the plugin class/object ``name`` from ``namespace`` (not instantiated)."""
    from stevedore import driver
    from stevedore.exception import NoMatches, NoUniqueMatch

    try:
        mgr = driver.DriverManager(namespace, name, invoke_on_load=False,
                                   on_load_failure_callback=_raise_load_failure)
    except (NoMatches, RuntimeError) as exc:
        choices = ", ".join(available(namespace)) or "none installed"
        raise PluginError(f"no {namespace} plugin named {name!r}",
                          hint=f"available: {choices}") from exc
    except NoUniqueMatch as exc:
        raise PluginError(f"more than one {namespace} plugin is named {name!r}",
                          hint="uninstall one of the packages registering it") from exc
    return mgr.driver


def element_dirs() -> list[tuple[str, Path]]:
    """(origin, directory) for every ``sysext_builder.elements`` entry point, by name."""
    from stevedore import extension

    mgr = extension.ExtensionManager(ELEMENTS_NAMESPACE, invoke_on_load=False,
                                     on_load_failure_callback=_raise_load_failure)
    result = []
    for ext in sorted(mgr.extensions, key=lambda e: (e.name, e.entry_point.value)):
        value = ext.plugin
        if callable(value):
            value = value()
        if not isinstance(value, (str, os.PathLike)):
            raise PluginError(
                f"element entry point {ext.name!r} ({ext.entry_point.value}) returned "
                f"{type(value).__name__}, not a directory path")
        origin = f"entry point {ext.name} ({ext.entry_point.value})"
        result.append((origin, Path(os.fspath(value))))
    return result
