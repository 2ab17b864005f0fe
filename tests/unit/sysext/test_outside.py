"""outside.written(): what an extension cannot carry, as the build adds it."""

from __future__ import annotations

from pathlib import Path

import fixtures

from sysext_builder.sysext import outside
from tests.base import TestCase


class TestOutside(TestCase):
    """outside.written(): /boot and /home entries the build added."""

    def test_new_entries_only(self) -> None:
        top = Path(self.useFixture(fixtures.TempDir()).path)
        upper, lower = top / "upper", top / "lower"
        (upper / "boot").mkdir(parents=True)
        (lower / "boot").mkdir(parents=True)
        (upper / "boot/initrd.img-6.1").write_text("rewritten by a trigger")
        (lower / "boot/initrd.img-6.1").write_text("the base's")
        self.assertIsNone(outside.written(upper, lower))
        (upper / "boot/vmlinuz-6.2").write_text("new")
        found = outside.written(upper, lower)
        self.assertEqual("/boot/vmlinuz-6.2", found[0] if found else None)
        self.assertEqual("/boot/initrd.img-6.1", (outside.written(upper) or ("",))[0])
