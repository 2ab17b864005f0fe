"""Accounts the build created -> sysusers.d lines, a unit creating them, drop-ins."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import fixtures

from sysext_builder.errors import TreeRuleError
from sysext_builder.sysext import users
from sysext_builder.sysext.users import carry_accounts, diff, read_accounts, sysusers_lines
from tests.base import TestCase

UNITS = "usr/lib/systemd/system"
HASH = "$6$SALTSALT$c2VjcmV0LWhhc2gtbmV2ZXItbG9nZ2Vk"  # a made-up SHA-512 crypt string
BASE = {
    "passwd": "root:x:0:0:root:/root:/bin/bash\n"
              "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
              "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    "group": "root:x:0:\ndaemon:x:1:\nsys:x:3:\nadm:x:4:root\nnogroup:x:65534:\n",
    "shadow": f"root:{HASH}:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"
              "nobody:*:19000:0:99999:7:::\n",
    "gshadow": "root:*::\ndaemon:*::\nsys:*::\nadm:*::root\nnogroup:*::\n",
}
CHRONY_USER = "_chrony:x:100:102:Chrony daemon:/var/lib/chrony:/usr/sbin/nologin\n"
CHRONY_GROUP = "_chrony:x:102:\n"
CHRONY_LINE = 'u _chrony - "Chrony daemon" /var/lib/chrony /usr/sbin/nologin'
# systemd's own ordering of the units around ours, measured from the unit files of
# Debian 12 (systemd 252) and Debian 13 (systemd 257); "a b" = a is ordered before b
SYSTEMD_ORDER = {
    "252": {("local-fs.target", "systemd-sysext.service"),
            ("systemd-sysext.service", "sysinit.target"),
            ("systemd-sysext.service", "systemd-tmpfiles-setup.service"),
            ("systemd-remount-fs.service", "systemd-sysusers.service"),
            ("systemd-sysusers.service", "sysinit.target"),
            ("local-fs.target", "systemd-tmpfiles-setup.service"),
            ("systemd-sysusers.service", "systemd-tmpfiles-setup.service"),
            ("systemd-tmpfiles-setup.service", "sysinit.target"),
            ("systemd-sysusers.service", "systemd-tmpfiles-setup-dev.service"),
            ("systemd-tmpfiles-setup-dev.service", "local-fs-pre.target"),
            ("systemd-remount-fs.service", "local-fs-pre.target"),
            ("systemd-remount-fs.service", "local-fs.target"),
            ("local-fs-pre.target", "local-fs.target"),
            ("local-fs.target", "sysinit.target"),
            ("sysinit.target", "basic.target")},
    "257": {("local-fs.target", "systemd-sysext.service"),
            ("systemd-sysext.service", "sysinit.target"),
            ("systemd-sysext.service", "systemd-tmpfiles-setup.service"),
            ("systemd-remount-fs.service", "systemd-sysusers.service"),
            ("systemd-tmpfiles-setup-dev-early.service", "systemd-sysusers.service"),
            ("systemd-sysusers.service", "systemd-tmpfiles-setup-dev.service"),
            ("systemd-sysusers.service", "sysinit.target"),
            ("local-fs.target", "systemd-tmpfiles-setup.service"),
            ("systemd-sysusers.service", "systemd-tmpfiles-setup.service"),
            ("systemd-tmpfiles-setup.service", "sysinit.target"),
            ("systemd-tmpfiles-setup-dev-early.service", "local-fs-pre.target"),
            ("systemd-tmpfiles-setup-dev.service", "local-fs-pre.target"),
            ("systemd-remount-fs.service", "local-fs-pre.target"),
            ("systemd-remount-fs.service", "local-fs.target"),
            ("local-fs-pre.target", "local-fs.target"),
            ("local-fs.target", "sysinit.target"),
            ("sysinit.target", "basic.target")},
}


def write_etc(top: Path, files: Mapping[str, str]) -> Path:
    etc = top / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (etc / name).write_text(text, encoding="utf-8")
    return etc


def with_chrony(**extra: str) -> dict[str, str]:
    files = {"passwd": BASE["passwd"] + CHRONY_USER, "group": BASE["group"] + CHRONY_GROUP,
             "shadow": BASE["shadow"] + "_chrony:!:19000::::::\n",
             "gshadow": BASE["gshadow"] + "_chrony:!::\n"}
    files.update(extra)
    return files


class TestDiff(TestCase):
    """The pure comparison and the sysusers.d lines it gives."""

    def setUp(self) -> None:
        super().setUp()
        self.dir = Path(self.useFixture(fixtures.TempDir()).path)
        self.base = read_accounts(write_etc(self.dir / "base", BASE))

    def lines(self, files: Mapping[str, str]) -> tuple[list[str], tuple[str, ...]]:
        built = read_accounts(write_etc(self.dir / "built", files))
        changes = diff(self.base, built)
        return sysusers_lines(changes), changes.problems

    def test_added_user_with_its_own_group(self) -> None:
        self.assertEqual(([CHRONY_LINE], ()), self.lines(with_chrony()))

    def test_added_group_and_user_in_another_group(self) -> None:
        files = with_chrony()
        files["passwd"] += "agent:x:101:65534::/nonexistent:/usr/sbin/nologin\n"
        files["group"] += "_observers:x:103:\n"
        lines, problems = self.lines(files)
        self.assertEqual(["g _observers -", CHRONY_LINE,
                          'u agent -:nogroup - /nonexistent /usr/sbin/nologin'], lines)
        self.assertEqual((), problems)

    def test_memberships_of_existing_and_new_groups(self) -> None:
        files = with_chrony()
        files["group"] = files["group"].replace("sys:x:3:", "sys:x:3:_chrony") \
            .replace("adm:x:4:root", "adm:x:4:root,_chrony") + "_observers:x:103:daemon\n"
        lines, problems = self.lines(files)
        self.assertEqual(["g _observers -", CHRONY_LINE, "m _chrony sys", "m _chrony adm",
                          "m daemon _observers"], lines)
        self.assertEqual((), problems)

    def test_changed_and_removed_accounts_are_problems_not_lines(self) -> None:
        files = with_chrony()
        files["passwd"] = files["passwd"].replace("/root:/bin/bash", "/root:/bin/zsh") \
            .replace("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n", "")
        files["group"] = files["group"].replace("adm:x:4:root", "adm:x:4:")
        files["shadow"] = files["shadow"].replace(HASH, "$6$other$hash")
        lines, problems = self.lines(files)
        self.assertEqual([CHRONY_LINE], lines)
        self.assertEqual(("changed user root (shell)", "removed user nobody",
                          "changed group adm (members removed)",
                          "changed user root (shadow entry)"), problems)

    def test_an_added_users_password_is_not_carried(self) -> None:
        files = with_chrony(shadow=BASE["shadow"] + f"_chrony:{HASH}:19000::::::\n")
        lines, problems = self.lines(files)
        self.assertEqual([CHRONY_LINE], lines)
        self.assertEqual(("the password of added user _chrony (sysusers.d creates locked "
                          "accounts)",), problems)

    def test_fields_are_escaped_for_sysusers(self) -> None:
        files = with_chrony()
        files["passwd"] += 'odd:x:104:104:a "q" 100% b\\s:/var/lib/with space:/bin/sh\n'
        files["group"] += "odd:x:104:\n"
        lines, _problems = self.lines(files)
        self.assertEqual('u odd - "a \\"q\\" 100%% b\\\\s" "/var/lib/with space" /bin/sh',
                         lines[-1])

    def test_names_sysusers_cannot_declare_and_root(self) -> None:
        files = dict(BASE, passwd=BASE["passwd"] + "toor:x:0:0::/root:/bin/sh\n"
                     "9bad:x:105:105::/:/bin/sh\n")
        lines, problems = self.lines(files)
        self.assertEqual([], lines)
        self.assertEqual(2, len(problems), "; ".join(problems))

    def test_nothing_added(self) -> None:
        self.assertEqual(([], ()), self.lines(BASE))

    def test_no_base_means_everything_was_added(self) -> None:
        built = read_accounts(write_etc(self.dir / "built", {"passwd": CHRONY_USER,
                                                             "group": CHRONY_GROUP}))
        self.assertEqual([CHRONY_LINE], sysusers_lines(diff(read_accounts(None), built)))

    def test_untouched_files_are_read_from_the_base(self) -> None:
        built = read_accounts(write_etc(self.dir / "upper", {"group": BASE["group"]
                                                             + "_observers:x:103:\n"}),
                              fallback=self.dir / "base" / "etc")
        changes = diff(self.base, built)
        self.assertEqual(["g _observers -"], sysusers_lines(changes))
        self.assertEqual((), changes.problems)


class TestCarry(TestCase):
    """carry_accounts over a build tree (the overlay's upper layer) and a base."""

    def setUp(self) -> None:
        super().setUp()
        top = Path(self.useFixture(fixtures.TempDir()).path)
        self.base, self.root = top / "base", top / "upper"
        write_etc(self.base, BASE)
        self.logger = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))
        self.units_file = top / "units"
        self.units_file.write_text("enable glean@eth0.service\n", encoding="utf-8")

    def unit(self, root: Path, name: str, text: str = "[Service]\nExecStart=/bin/true\n") -> None:
        path = root / UNITS / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def carry(self, *, base: bool = True, strict: bool = False) -> users.Changes:
        return carry_accounts(self.root, "oem-azure", base=self.base if base else None,
                              unit_files=[self.units_file, self.root / "missing"],
                              strict=strict)

    def read(self, rel: str) -> str:
        return (self.root / rel).read_text(encoding="utf-8")

    def everything_written(self) -> str:
        """Every file the builder wrote (the image's usr/; etc/ is the build's input)."""
        return "".join(p.read_text(encoding="utf-8", errors="replace")
                       for p in sorted((self.root / "usr").rglob("*")) if p.is_file())

    def test_conf_unit_and_drop_ins(self) -> None:
        write_etc(self.root, with_chrony())
        self.unit(self.root, "chrony.service")
        os.symlink("chrony.service", self.root / UNITS / "chronyd.service")  # an alias
        self.unit(self.root, "glean@.service")
        wants = self.root / UNITS / "multi-user.target.wants"
        wants.mkdir()
        os.symlink("../hv-kvp.service", wants / "hv-kvp.service")  # a base unit, enabled
        self.carry()
        conf = self.read("usr/lib/sysusers.d/oem-azure.conf")
        self.assertIn(CHRONY_LINE + "\n", conf)
        unit = self.read(f"{UNITS}/oem-azure-sysusers.service")
        self.assertIn("ExecStart=systemd-sysusers oem-azure.conf\n", unit)
        self.assertNotIn("systemd-tmpfiles", unit.split("[Service]")[1])
        dropins = sorted(str(p.relative_to(self.root / UNITS))
                         for p in (self.root / UNITS).glob("*.d/*.conf"))
        # a shipped unit, an enabled base unit, a declared instance (its template);
        # the alias is the unit it names
        self.assertEqual(["chrony.service.d/10-oem-azure-sysusers.conf",
                          "glean@.service.d/10-oem-azure-sysusers.conf",
                          "hv-kvp.service.d/10-oem-azure-sysusers.conf"], dropins)
        self.assertEqual("# oem-azure: the extension's accounts exist before this unit starts\n"
                         "[Unit]\nWants=oem-azure-sysusers.service\n"
                         "After=oem-azure-sysusers.service\n",
                         self.read(f"{UNITS}/chrony.service.d/10-oem-azure-sysusers.conf"))
        self.assertIn(f"accounts: usr/lib/sysusers.d/oem-azure.conf: {CHRONY_LINE}",
                      self.logger.output)

    def test_tmpfiles_naming_the_accounts_run_after_them(self) -> None:
        write_etc(self.root, with_chrony())
        tmpfiles = self.root / "usr/lib/tmpfiles.d"
        tmpfiles.mkdir(parents=True)
        (tmpfiles / "chrony-state.conf").write_text("d /var/lib/chrony 0750 _chrony _chrony -\n")
        (tmpfiles / "other.conf").write_text("d /var/lib/other 0755 - - -\n# _chrony\n")
        self.carry()
        unit = self.read(f"{UNITS}/oem-azure-sysusers.service")
        self.assertTrue(unit.endswith("ExecStart=systemd-sysusers oem-azure.conf\n"
                                      "ExecStart=systemd-tmpfiles --create chrony-state.conf\n"),
                        unit)

    def test_nothing_added_writes_nothing(self) -> None:
        write_etc(self.root, BASE)
        self.unit(self.root, "chrony.service")
        self.assertEqual((), self.carry().problems)
        self.assertFalse((self.root / "usr/lib/sysusers.d").exists())
        self.assertFalse((self.root / UNITS / "chrony.service.d").exists())

    def test_changed_accounts_warn_once_and_fail_with_strict(self) -> None:
        write_etc(self.root, with_chrony(
            passwd=with_chrony()["passwd"].replace("/bin/bash", "/bin/zsh"),
            shadow=BASE["shadow"].replace(HASH, "$6$new$" + "N" * 20)
            + f"_chrony:{HASH}:19000::::::\n"))
        self.carry()
        warnings = [r for r in self.logger.output.splitlines()
                    if "cannot carry" in r]
        self.assertEqual(1, len(warnings), self.logger.output)
        self.assertIn("changed user root (shell); changed user root (shadow entry); the "
                      "password of added user _chrony", warnings[0])
        self.root = self.root.parent / "upper2"
        write_etc(self.root, with_chrony(passwd=with_chrony()["passwd"].replace("bash", "sh")))
        err = self.assertRaises(TreeRuleError, self.carry, strict=True)
        self.assertIn("--strict: accounts the extension cannot carry: changed user root "
                      "(shell)", str(err))

    def test_password_hashes_never_reach_logs_errors_or_files(self) -> None:
        shadow = (BASE["shadow"].replace(HASH, HASH + "X")
                  + f"_chrony:{HASH}:19000::::::\n")
        passwd = with_chrony()["passwd"] + f"legacy:{HASH}:106:106::/:/bin/sh\n"
        write_etc(self.root, with_chrony(passwd=passwd, shadow=shadow,
                                         group=with_chrony()["group"] + "legacy:x:106:\n"))
        self.unit(self.root, "chrony.service")
        changes = self.carry()
        err = self.assertRaises(TreeRuleError, self.carry, strict=True)
        for text in (self.logger.output, str(err), err.hint or "", repr(changes),
                     repr(read_accounts(self.root / "etc")), self.everything_written()):
            self.assertNotIn("SALTSALT", text)
            self.assertNotIn("c2VjcmV0", text)
        self.assertIn("the password of added user legacy", self.logger.output)

    def test_without_a_base_the_account_files_leave_the_tree(self) -> None:
        etc = write_etc(self.root, {"passwd": CHRONY_USER, "group": CHRONY_GROUP,
                                    "shadow": f"_chrony:{HASH}:1::::::\n", "passwd-": "x",
                                    "chrony.conf": "server x\n"})
        self.carry(base=False)
        self.assertEqual(["chrony.conf"], sorted(os.listdir(etc)))
        self.assertIn(CHRONY_LINE, self.read("usr/lib/sysusers.d/oem-azure.conf"))
        self.assertNotIn("SALTSALT", self.everything_written())

    def test_an_existing_conf_is_an_error(self) -> None:
        write_etc(self.root, with_chrony())
        (self.root / "usr/lib/sysusers.d").mkdir(parents=True)
        (self.root / "usr/lib/sysusers.d/oem-azure.conf").write_text("g x -\n")
        err = self.assertRaises(TreeRuleError, self.carry)
        self.assertIn("usr/lib/sysusers.d/oem-azure.conf already exists", str(err))


def _ordering(root: Path, version: str) -> set[tuple[str, str]]:
    """systemd's measured ordering plus what the image's unit files and drop-ins say."""
    edges = set(SYSTEMD_ORDER[version])
    top = root / UNITS
    for path in sorted(top.rglob("*")):
        if not path.is_file() or not path.name.endswith((".service", ".conf")):
            continue
        unit = path.parent.name[:-2] if path.parent.name.endswith(".d") else path.name
        text = path.read_text(encoding="utf-8")
        for line in text.splitlines():
            key, _, value = line.partition("=")
            for other in value.split():
                if key == "After":
                    edges.add((other, unit))
                elif key == "Before":
                    edges.add((unit, other))
        if path.parent == top and "DefaultDependencies=no" not in text:
            edges |= {("sysinit.target", unit), ("basic.target", unit)}
    return edges


def _cycle(edges: set[tuple[str, str]]) -> list[str] | None:
    graph: dict[str, list[str]] = {}
    for a, b in sorted(edges):
        graph.setdefault(a, []).append(b)
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                return path + [node, nxt]
            if nxt not in state and (found := visit(nxt, path + [node])):
                return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node, [])):
            return found
    return None


def _before(edges: set[tuple[str, str]], a: str, b: str) -> bool:
    seen, todo = set(), [a]
    while todo:
        node = todo.pop()
        for x, y in edges:
            if x == node and y not in seen:
                seen.add(y)
                todo.append(y)
    return b in seen


class TestOrdering(TestCase):
    """The generated unit sits between the merge and tmpfiles, before the services,
    and no ordering cycle arises with systemd 252's or 257's units."""

    def setUp(self) -> None:
        super().setUp()
        top = Path(self.useFixture(fixtures.TempDir()).path)
        self.root = top / "upper"
        write_etc(self.root, with_chrony())
        self.useFixture(fixtures.FakeLogger(level=logging.INFO))
        for name, text in (
                ("chrony.service", "[Unit]\nAfter=network.target\n[Service]\nExecStart=x\n"),
                ("glean-early.service", "[Unit]\nDefaultDependencies=no\n"
                 "After=local-fs.target\nBefore=network-pre.target\n"),
                ("early-mount-helper.service", "[Unit]\nDefaultDependencies=no\n"
                 "Before=local-fs.target\n")):
            path = self.root / UNITS / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        carry_accounts(self.root, "img", base=None, unit_files=[], strict=False)

    def test_order_on_252_and_257(self) -> None:
        ours = "img-sysusers.service"
        for version in SYSTEMD_ORDER:
            edges = _ordering(self.root, version)
            self.assertIsNone(_cycle(edges), version)
            for a, b in (("systemd-sysext.service", ours), (ours, "systemd-tmpfiles-setup.service"),
                         (ours, "sysinit.target"), (ours, "chrony.service"),
                         (ours, "glean-early.service"), ("local-fs.target", ours)):
                self.assertTrue(_before(edges, a, b), f"{version}: {a} before {b}")

    def test_a_unit_ordered_before_local_fs_gets_no_drop_in(self) -> None:
        self.assertFalse((self.root / UNITS / "early-mount-helper.service.d").exists())
        # the rule broken on purpose: with the drop-in the order has a cycle
        dropin = self.root / UNITS / "early-mount-helper.service.d/10-img-sysusers.conf"
        dropin.parent.mkdir()
        dropin.write_text(users.dropin_text("img"), encoding="utf-8")
        cycle = _cycle(_ordering(self.root, "252"))
        self.assertIsNotNone(cycle)
        self.assertIn("img-sysusers.service", cycle or [])
