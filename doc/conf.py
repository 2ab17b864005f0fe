"""Sphinx configuration for sysext-builder's documentation and man pages.

    sphinx-build -W --keep-going -b html doc build/doc/html
    sphinx-build -W --keep-going -b man doc build/doc/man     (or: tools/build-docs)

The pages in doc/*.rst are plain reStructuredText (tests/unit/test_docs.py
parses them with docutils alone), so the Sphinx-only parts live here:

* the toctree of the root document is appended when Sphinx reads
  ``index.rst`` (a ``toctree`` directive in the file would be an error for
  plain docutils);
* links written as ```title <page.rst#anchor>`__`` (which work on GitHub and
  in the test) are pointed at the built pages;
* the ``sysext-cli`` directive renders a command's usage, description,
  options and exit codes from its argparse parser
  (``sysext_builder.cli.<module>.build_parser()``), so the man pages in
  doc/man/ say exactly what ``--help`` says.
"""

from __future__ import annotations

import argparse
import posixpath
import re
import sys
import textwrap
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx import addnodes
from sphinx.util.docutils import SphinxDirective

TOP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOP))  # the checkout's package, installed or not

from sysext_builder.cli import COMMANDS  # noqa: E402
from sysext_builder.cli.completion import command_parsers  # noqa: E402

project = "sysext-builder"
author = "sysext-builder developers"
copyright = "sysext-builder developers"  # noqa: A001 - Sphinx's name
try:
    from sysext_builder import package_version

    release = package_version()
except Exception:  # pragma: no cover - documentation without the metadata
    release = "0+unknown"
version = release

root_doc = "index"
exclude_patterns = ["_build", ".*"]
templates_path: list[str] = []
highlight_language = "none"  # the literal blocks are shell, YAML and tables
html_theme = "alabaster"
html_static_path: list[str] = []
html_show_sourcelink = True
#: where :manpage: references to pages not ours point (HTML only, see _link_manpages)
MAN7_URL = "https://man7.org/linux/man-pages/man{section}/{page}.{section}.html"

#: pages of the root toctree, in reading order
TOCTREE = ["quickstart", "authoring", "booting", "reference", "dib", "design", "man/index"]

#: one-line summary per command: the NAME line of its man page
SUMMARIES = {
    "sysext-element-info": "resolve elements and show the build order",
    "sysext-check": "check a systemd-sysext image against a target os-release",
    "sysext-create": "build systemd-sysext images from elements",
    "sysext-element-lint": "check element directories for mistakes",
    "sysext-element-new": "create a working element to start from",
    "sysext-test-elements": "build and check the test cases of elements",
}

# KeyError here: a command in sysext_builder.cli.COMMANDS has no summary yet.
man_pages = [(f"man/{command}", command, SUMMARIES[command], [author], 1)
             for command in COMMANDS]


# -- the root toctree -------------------------------------------------------

def _append_toctree(app: object, docname: str, source: list[str]) -> None:
    if docname == root_doc:
        entries = "".join(f"   {page}\n" for page in TOCTREE)
        source[0] += f"\n\n.. toctree::\n   :hidden:\n\n{entries}"


# -- page.rst links ----------------------------------------------------------

_RST_LINK = re.compile(r"^(?P<path>[^:#?]+)\.rst(?P<fragment>#.*)?$")


def _resolve_rst_links(app, doctree: nodes.document, fromdocname: str) -> None:
    """``<reference.rst#exit-codes>`` -> the built reference page, #exit-codes."""
    if app.builder.format != "html":
        return
    for ref in doctree.findall(nodes.reference):
        match = _RST_LINK.match(ref.get("refuri", ""))
        if not match:
            continue
        target = posixpath.normpath(posixpath.join(posixpath.dirname(fromdocname),
                                                   match["path"]))
        if target in app.env.found_docs:
            uri = app.builder.get_relative_uri(fromdocname, target)
            ref["refuri"] = uri + (match["fragment"] or "")


def _link_manpages(app, doctree: nodes.document, fromdocname: str) -> None:
    """HTML: ``:manpage:`sysext-check(1)``` -> our page, others -> man7.org.

    (Not ``manpages_url``: it would point our own commands at man7.org too.)
    """
    if app.builder.format != "html":
        return
    for node in list(doctree.findall(addnodes.manpage)):
        page, section = node.get("page", ""), node.get("section", "")
        if page in COMMANDS:
            uri = app.builder.get_relative_uri(fromdocname, f"man/{page}")
        elif page and section:
            uri = MAN7_URL.format(page=page, section=section)
        else:
            continue
        ref = nodes.reference("", "", internal=page in COMMANDS, refuri=uri)
        node.replace_self(ref)
        ref += node


# -- the sysext-cli directive -------------------------------------------------

_EXIT_CODES = re.compile(r"^exit codes:\s*", re.IGNORECASE)
_EXIT_ITEM = re.compile(r",\s+(?=\d+(?:-\d+)?\s)")


def _formatter(parser: argparse.ArgumentParser) -> argparse.HelpFormatter:
    return parser.formatter_class(prog=parser.prog, width=78)


def _blocks(text: str) -> list[nodes.Element]:
    """argparse's raw description text -> paragraphs and literal blocks.

    Lines starting at column 0 are prose; indented lines are shown verbatim,
    as ``--help`` shows them.  The text is not parsed as reST.
    """
    result: list[nodes.Element] = []
    run: list[str] = []
    indented = False

    def flush() -> None:
        if not run:
            return
        if indented:
            body = textwrap.dedent("\n".join(run))
            result.append(nodes.literal_block(body, body))
        else:
            result.append(nodes.paragraph("", " ".join(line.strip() for line in run)))
        run.clear()

    for line in text.splitlines():
        if not line.strip():
            flush()
            continue
        is_indented = line[:1].isspace()
        if is_indented != indented:
            flush()
            indented = is_indented
        run.append(line)
    flush()
    return result


def _split_epilog(parser: argparse.ArgumentParser) -> tuple[str, str]:
    """(epilog without the exit codes paragraph, the exit codes paragraph)."""
    rest, codes = [], ""
    for para in re.split(r"\n\s*\n", (parser.epilog or "").strip()):
        if _EXIT_CODES.match(para):
            codes = para
        elif para.strip():
            rest.append(para)
    return "\n\n".join(rest), codes


def _exit_status(parser: argparse.ArgumentParser) -> list[nodes.Element]:
    _rest, codes = _split_epilog(parser)
    if not codes:
        raise ValueError(f"{parser.prog}: the --help epilog has no 'exit codes:' paragraph")
    text = " ".join(_EXIT_CODES.sub("", codes).split()).rstrip(".")
    items = nodes.definition_list()
    for item in _EXIT_ITEM.split(text):
        code, _, meaning = item.partition(" ")
        if not re.fullmatch(r"\d+(?:-\d+)?", code) or not meaning:
            raise ValueError(f"{parser.prog}: cannot read exit code {item!r} of {codes!r}")
        items += nodes.definition_list_item(
            "", nodes.term(code, code),
            nodes.definition("", nodes.paragraph(meaning, meaning)))
    return [items]


def _option_item(parser: argparse.ArgumentParser, action: argparse.Action) -> nodes.Element:
    formatter = _formatter(parser)
    group = nodes.option_group()
    if action.option_strings:
        args = ""
        if action.nargs != 0:
            # the same helpers --help uses, so FMT[,FMT] and {a,b,c} match it
            args = formatter._format_args(action, formatter._get_default_metavar_for_optional(
                action))
        for opt in action.option_strings:
            option = nodes.option("", nodes.option_string(opt, opt))
            if args:
                option += nodes.option_argument(args, args, delimiter=" ")
            group += option
    else:
        metavar = formatter._format_args(
            action, formatter._get_default_metavar_for_positional(action))
        group += nodes.option("", nodes.option_string(metavar, metavar))
    help_text = formatter._expand_help(action) if action.help else ""
    return nodes.option_list_item(
        "", group, nodes.description("", nodes.paragraph(help_text, help_text)))


def _options(parser: argparse.ArgumentParser) -> list[nodes.Element]:
    result: list[nodes.Element] = []
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if a.help != argparse.SUPPRESS]
        if not actions:
            continue
        title = group.title or "options"
        result.append(nodes.paragraph("", "", nodes.strong(title, title)))
        option_list = nodes.option_list()
        for action in actions:
            option_list += _option_item(parser, action)
        result.append(option_list)
    return result


def _usage(parser: argparse.ArgumentParser) -> list[nodes.Element]:
    formatter = _formatter(parser)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups,
                        prefix="")
    text = formatter.format_help().strip("\n")
    return [nodes.literal_block(text, text)]


def _description(parser: argparse.ArgumentParser) -> list[nodes.Element]:
    rest, _codes = _split_epilog(parser)
    return _blocks(parser.description or "") + _blocks(rest)


_PARTS = {"usage": _usage, "description": _description, "options": _options,
          "exit-status": _exit_status}


class SysextCli(SphinxDirective):
    """``.. sysext-cli:: COMMAND`` with ``:part: usage|description|options|exit-status``."""

    required_arguments = 1
    option_spec = {"part": lambda arg: directives.choice(arg, tuple(_PARTS))}

    def run(self) -> list[nodes.Node]:
        command = self.arguments[0]
        parsers = command_parsers()
        if command not in parsers:
            raise self.error(f"unknown command {command!r}; known: {', '.join(parsers)}")
        part = self.options.get("part")
        if part is None:
            raise self.error("sysext-cli needs :part: " + "|".join(_PARTS))
        package = TOP / "sysext_builder"
        for module in list(sys.modules.values()):  # rebuild when a parser's source changes
            path = getattr(module, "__file__", None)
            if path and Path(path).is_relative_to(package):
                self.env.note_dependency(path)
        result = _PARTS[part](parsers[command])
        for node in result:  # argparse text: "--debug" stays two hyphens
            node["support_smartquotes"] = False
        return list(result)


def setup(app):  # noqa: ANN001, ANN201 - Sphinx's conf.py hook
    app.add_directive("sysext-cli", SysextCli)
    app.connect("source-read", _append_toctree)
    app.connect("doctree-resolved", _resolve_rst_links)
    app.connect("doctree-resolved", _link_manpages)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
