"""Bash completion for every command, generated from the argparse parsers.

The script is rendered from each command's ``build_parser()`` at run time, so it
completes exactly the options ``--help`` shows: every option string (short
forms too), the choices argparse knows for an option or a positional, file
names after options whose metavar is FILE or PATH, directory names after DIR.
``tools/make-completion`` writes it to ``build/completion/sysext-builder.bash``.
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Iterable, Mapping

#: metavar -> how its value is completed
PATH_METAVARS = {"FILE": "files", "PATH": "files", "IMAGE": "files", "DIR": "dirs"}

#: an option of ``sysext-element-info`` that prints one element name a line;
#: ELEMENT positionals are completed with it only if the option exists
ELEMENT_LIST_OPTION = "--list"

_HEADER = """\
# bash completion for sysext-builder's commands.
# Generated from the argparse parsers by tools/make-completion; do not edit.
# Install: copy to /usr/share/bash-completion/completions/ (one copy or
# symlink per command name) or source it from ~/.bashrc.

# Sets cur and prev for the word being completed; "--opt=value" (which bash
# splits at "=") is treated as "--opt value".
_sysext_builder_words() {
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=
    if (( COMP_CWORD > 0 )); then prev=${COMP_WORDS[COMP_CWORD-1]}; fi
    if [[ $cur == "=" ]]; then
        cur=
    elif [[ $prev == "=" ]] && (( COMP_CWORD > 1 )); then
        prev=${COMP_WORDS[COMP_CWORD-2]}
    fi
}

_sysext_builder_files() {
    compopt -o filenames 2>/dev/null
    mapfile -t COMPREPLY < <(compgen -f -- "$cur")
}

_sysext_builder_dirs() {
    compopt -o filenames 2>/dev/null
    mapfile -t COMPREPLY < <(compgen -d -- "$cur")
}

_sysext_builder_words_of() {
    mapfile -t COMPREPLY < <(compgen -W "$1" -- "$cur")
}

_sysext_builder_elements() {
    mapfile -t COMPREPLY < <(compgen -W "$(sysext-element-info @LIST@ 2>/dev/null)" -- "$cur")
}
"""


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    """Console script name -> its parser, in ``sysext_builder.cli.COMMANDS`` order."""
    from importlib import import_module

    from sysext_builder.cli import COMMANDS

    parsers = {}
    for command, module in COMMANDS.items():
        parser: argparse.ArgumentParser = import_module(
            f"sysext_builder.cli.{module}").build_parser()
        parsers[command] = parser
    return parsers


def option_strings(parser: argparse.ArgumentParser) -> list[str]:
    """Every option string of ``parser`` (``-h`` and ``--help`` included)."""
    return [opt for action in parser._actions for opt in action.option_strings]


def takes_value(action: argparse.Action) -> bool:
    return action.nargs != 0


def _words(choices: Iterable[object]) -> str | None:
    words = [str(c) for c in choices]
    if not words or any(not re.fullmatch(r"[\w.,:+@%/=-]+", w) for w in words):
        return None
    return " ".join(words)


def value_completion(action: argparse.Action, elements: bool = False) -> str:
    """The shell command that completes a value of ``action`` ("" for none)."""
    if action.choices is not None:
        words = _words(action.choices)
        return f"_sysext_builder_words_of {shlex.quote(words)}" if words else ""
    metavar = action.metavar if isinstance(action.metavar, str) else None
    kind = PATH_METAVARS.get(metavar or "")
    if kind:
        return f"_sysext_builder_{kind}"
    if elements and not action.option_strings and (metavar or "").startswith("ELEMENT"):
        return "_sysext_builder_elements"
    return ""


def function_name(command: str) -> str:
    return "_sysext_builder_" + re.sub(r"\W", "_", command)


def render_command(command: str, parser: argparse.ArgumentParser,
                   elements: bool = False) -> str:
    """One completion function for ``command`` and its ``complete -F`` line."""
    by_value: dict[str, list[str]] = {}
    for action in parser._actions:
        if action.option_strings and takes_value(action):
            by_value.setdefault(value_completion(action), []).extend(action.option_strings)
    positional = next((value_completion(a, elements) for a in parser._actions
                       if not a.option_strings and value_completion(a, elements)), "")
    fn = function_name(command)
    lines = [f"{fn}() {{",
             "    local cur prev",
             "    COMPREPLY=()",
             "    _sysext_builder_words"]
    if by_value:
        lines.append('    case $prev in')
        for completer, opts in by_value.items():
            pattern = "|".join(shlex.quote(o) for o in opts)
            lines.append(f"        {pattern}) {completer or ':'}; return ;;")
        lines.append("    esac")
    options = " ".join(option_strings(parser))
    lines += ['    if [[ $cur == -* ]]; then',
              f"        _sysext_builder_words_of {shlex.quote(options)}",
              "        return",
              "    fi"]
    if positional:
        lines.append(f"    {positional}")
    lines += ["}", f"complete -F {fn} {shlex.quote(command)}"]
    return "\n".join(lines) + "\n"


def bash_completion(parsers: Mapping[str, argparse.ArgumentParser] | None = None) -> str:
    """The bash completion script for ``parsers`` (default: every command)."""
    if parsers is None:
        parsers = command_parsers()
    info = parsers.get("sysext-element-info")
    elements = info is not None and ELEMENT_LIST_OPTION in option_strings(info)
    parts = [_HEADER.replace("@LIST@", shlex.quote(ELEMENT_LIST_OPTION))]
    for command, parser in parsers.items():
        parts.append(render_command(command, parser, elements))
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    """Print the script, or write it to the one path given."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    script = bash_completion()
    if not args:
        sys.stdout.write(script)
        return 0
    from pathlib import Path

    out = Path(args[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(script, encoding="utf-8")
    tmp.replace(out)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
