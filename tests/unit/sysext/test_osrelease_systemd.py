"""os-release text is read the way systemd's env-file parser reads it."""

from __future__ import annotations

from sysext_builder.sysext import osrelease
from tests.base import TestCase

# (text, fields systemd 254+ reads from it): each row is one rule of env-file.c
CASES: list[tuple[str, dict[str, str]]] = [
    ("ID=debian\n", {"ID": "debian"}),
    ("ID=debian", {"ID": "debian"}),                                  # no final newline
    ("NAME=Debian GNU/Linux\n", {"NAME": "Debian GNU/Linux"}),         # inner blanks kept
    ("NAME=Debian   \t\n", {"NAME": "Debian"}),                       # trailing blanks cut
    ("NAME=   Debian\n", {"NAME": "Debian"}),                          # leading blanks cut
    ("ID =debian\n", {"ID": "debian"}),                                # key's trailing blanks
    ("  ID=debian\n", {"ID": "debian"}),                               # indented key
    ("id=debian\n", {"id": "debian"}),                                 # lower case key kept
    ("MY KEY=v\n", {"MY KEY": "v"}),                                   # inner blank in key
    ("# c\n; c\nID=a\n", {"ID": "a"}),                                 # both comment marks
    ("ID=a # not a comment\n", {"ID": "a # not a comment"}),
    ("ID debian\nVERSION_ID=1\n", {"VERSION_ID": "1"}),                # no '=': ignored
    ("ID=\n", {"ID": ""}),
    ("ID=a\nID=b\n", {"ID": "b"}),                                     # last wins
    ('ID="a b"\n', {"ID": "a b"}),
    ("ID='a \\\" b'\n", {"ID": 'a \\" b'}),                            # single quotes literal
    ('ID="a\\"b\\\\c\\$d\\`e"\n', {"ID": 'a"b\\c$d`e'}),               # escapes in "..."
    ('ID="a\\nb"\n', {"ID": "a\\nb"}),                                 # other backslash stays
    ('ID="a" "b"\n', {"ID": "ab"}),                                    # parts joined
    ('ID="a"b\n', {"ID": "ab"}),
    ('ID=a"b c"\n', {"ID": 'a"b c"'}),                                 # quotes literal unquoted
    ("ID=a\\ b\n", {"ID": "a b"}),
    ("ID=a\\\nb\n", {"ID": "ab"}),                                     # continuation
    ('ID="a\\\nb"\n', {"ID": "ab"}),                                   # continuation in "..."
    ('ID="a\nb"\n', {"ID": "a\nb"}),                                   # newline inside quotes
    ('ID="open\nVERSION_ID=1\n', {"ID": "open\nVERSION_ID=1\n"}),      # unterminated quote
    ("ID=a\r\nVERSION_ID=1\r\n", {"ID": "a", "VERSION_ID": "1"}),      # CRLF
    ("==x\n", {"=": "x"}),                                            # key starts with =
    ("# ends \\\nID=a\n", {"ID": "a"}),                                # 254+: next line read
]


class TestSystemdReading(TestCase):

    def test_cases(self) -> None:
        for text, fields in CASES:
            self.assertEqual(fields, osrelease.parse(text), repr(text))

    def test_comment_continuation_before_254(self) -> None:
        text = "# ends \\\nID=a\nVERSION_ID=1\n"
        self.assertEqual({"VERSION_ID": "1"}, osrelease.parse(text, systemd_version=252))
        self.assertEqual({"VERSION_ID": "1"}, osrelease.parse(text, systemd_version=253))
        self.assertEqual({"ID": "a", "VERSION_ID": "1"},
                         osrelease.parse(text, systemd_version=254))

    def test_what_we_render_reads_back(self) -> None:
        fields = {"ID": "debian", "NAME": 'A "quoted" $name `x` \\ y', "VERSION_ID": "13"}
        self.assertEqual(fields, osrelease.parse(osrelease.render(fields)))
