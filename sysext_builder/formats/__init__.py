"""Output format drivers (entry point group ``sysext_builder.formats``).

Built in: ``squashfs`` (mksquashfs), ``erofs`` (mkfs.erofs) and
``directory``.  The contract is :class:`.base.OutputFormat`; placement of
what a driver writes is :mod:`sysext_builder.output.atomic`'s.
"""

from __future__ import annotations

from sysext_builder import plugins
from sysext_builder.errors import PluginError
from sysext_builder.formats.base import OutputFormat

__all__ = ["OutputFormat", "get", "names"]


def names() -> list[str]:
    """Registered format names, sorted (no driver is imported)."""
    return plugins.available(plugins.FORMATS_NAMESPACE)


def get(name: str) -> OutputFormat:
    """An instance of the format driver registered as ``name``.

    Raises :class:`PluginError` (listing the available names) if there is
    none or it is not an :class:`OutputFormat`.
    """
    driver = plugins.load_driver(plugins.FORMATS_NAMESPACE, name)
    if not (isinstance(driver, type) and issubclass(driver, OutputFormat)):
        raise PluginError(f"format plugin {name!r} is not an OutputFormat subclass",
                          hint=f"it resolved to {driver!r}")
    return driver()
