# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.
"""References generated from the code: the command line, the exit codes and
the kinds of task plugins.

``.. nmf-cli::`` renders ``nova-migrate-flow --help`` (the global options
come from oslo.config and oslo.log, so it is captured from
:func:`nova_migrate_flows.cli.main.main` itself), then one section per
command and sub-command with its summary and its ``--help``, built by the
same :func:`~nova_migrate_flows.cli.main.add_command_parsers` the tool
uses. ``.. nmf-exit-codes::`` renders the exit codes from
:class:`~nova_migrate_flows.exceptions.ExitCode` and the exceptions that
map to each. ``.. nmf-task-kinds::`` lists the installed task plugins by
kind, with the ones the default configuration runs. Nothing here is written
by hand, so the references cannot drift from the code.
"""

import argparse
import contextlib
import inspect
import io
import os
from collections.abc import Iterator
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.pycode import ModuleAnalyzer
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

#: Width of the rendered help, as on an 80-column terminal.
COLUMNS = "79"
#: Section underline characters, by depth (the page title uses '=').
UNDERLINES = "-~^'"


@contextlib.contextmanager
def _columns(width: str) -> Iterator[None]:
    """Make argparse wrap its help at ``width`` columns."""
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = width
    try:
        yield
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


def _literal(text: str) -> list[str]:
    lines = ["::", ""]
    lines += ["    " + line if line.strip() else "" for line in
              text.rstrip().splitlines()]
    lines.append("")
    return lines


def _heading(title: str, depth: int) -> list[str]:
    char = UNDERLINES[min(depth, len(UNDERLINES) - 1)]
    return [title, char * len(title), ""]


def _subcommands(parser: argparse.ArgumentParser) -> list[
        tuple[str, str, argparse.ArgumentParser]]:
    """The sub-commands of ``parser``: name, summary and parser."""
    found = []
    for action in parser._actions:  # argparse keeps no public list
        if isinstance(action, argparse._SubParsersAction):
            summaries = {
                choice.dest: choice.help or ""
                for choice in action._choices_actions
            }
            for name, sub in action.choices.items():
                found.append((name, summaries.get(name, ""), sub))
    return found


def _top_level_help() -> str:
    """``nova-migrate-flow --help``, exactly as the tool prints it."""
    from nova_migrate_flows.cli import main

    out = io.StringIO()
    with _columns(COLUMNS), contextlib.redirect_stdout(out):
        code = main.main(["--help"])
    if code != 0:
        raise RuntimeError(f"nova-migrate-flow --help exited {code}")
    return out.getvalue()


def _command_tree(prog: str) -> argparse.ArgumentParser:
    """The commands, built by the tool's own parser factory."""
    from nova_migrate_flows.cli import main

    root = argparse.ArgumentParser(prog=prog)
    subparsers = root.add_subparsers(title="commands", dest="command")
    main.add_command_parsers(subparsers)
    return root


def _first_sentence(text: str) -> str:
    return " ".join(text.split())


class CliDirective(SphinxDirective):
    """Render the whole command line: global options and every command."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from nova_migrate_flows.cli import main

        lines: list[str] = []
        lines += _heading("Global options", 0)
        lines.append(
            "Global options (configuration files, logging) come before the "
            "command: ``nova-migrate-flow --config-file FILE COMMAND ...``. "
            "This is ``nova-migrate-flow --help``:"
        )
        lines.append("")
        lines += _literal(_top_level_help())
        lines += _heading("Commands", 0)
        with _columns(COLUMNS):
            root = _command_tree(main.PROG)
            for name, summary, parser in _subcommands(root):
                lines += self._command([name], summary, parser, depth=1)
        return self._parse(lines)

    def _command(self, path: list[str], summary: str,
                 parser: argparse.ArgumentParser, depth: int) -> list[str]:
        lines = _heading(" ".join(path), depth)
        if summary:
            lines += [_first_sentence(summary), ""]
        lines += _literal(parser.format_help())
        for name, sub_summary, sub in _subcommands(parser):
            lines += self._command(path + [name], sub_summary, sub,
                                   depth + 1)
        return lines

    def _parse(self, lines: list[str]) -> list[nodes.Node]:
        node = nodes.section()
        node.document = self.state.document
        nested_parse_with_titles(
            self.state, StringList(lines, source="<nmf-cli>"), node
        )
        return list(node.children)


class ExitCodesDirective(SphinxDirective):
    """Render the exit codes and the errors that lead to each."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from nova_migrate_flows import exceptions

        docs = ModuleAnalyzer.for_module(exceptions.__name__).find_attr_docs()
        errors: dict[int, list[str]] = {}
        for _, cls in inspect.getmembers(exceptions, inspect.isclass):
            if (issubclass(cls, exceptions.NovaMigrateFlowsError)
                    and cls.__module__ == exceptions.__name__):
                errors.setdefault(int(cls.exit_code), []).append(
                    f":class:`~{cls.__module__}.{cls.__name__}`"
                )
        rows = [".. list-table::", "   :header-rows: 1",
                "   :widths: 8 20 40 32", "",
                "   * - Code", "     - Name", "     - Meaning",
                "     - Errors that end with it"]
        for code in exceptions.ExitCode:
            meaning = " ".join(
                docs.get(("ExitCode", code.name), [""])
            ).strip()
            raised = ", ".join(sorted(errors.get(int(code), []))) or "-"
            rows += [f"   * - ``{int(code)}``", f"     - ``{code.name}``",
                     f"     - {meaning or '-'}", f"     - {raised}"]
        rows.append("")
        node = nodes.section()
        node.document = self.state.document
        nested_parse_with_titles(
            self.state, StringList(rows, source="<nmf-exit-codes>"), node
        )
        return list(node.children)


class TaskKindsDirective(SphinxDirective):
    """Render the installed task plugins by kind, and the default lists."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from nova_migrate_flows import opts
        from nova_migrate_flows.tasks import loader

        defaults = {
            "preflight": list(opts.DEFAULT_PREFLIGHT_TASKS),
            "verify": list(opts.DEFAULT_VERIFY_TASKS),
        }
        rows = [".. list-table::", "   :header-rows: 1",
                "   :widths: 25 15 60", "",
                "   * - Plugin", "     - Kind", "     - Run by default"]
        for name, plugin in loader.installed().items():
            if isinstance(plugin, BaseException):
                continue
            kind = getattr(plugin, "kind", "?")
            listed = defaults.get(kind)
            if listed is None:
                where = "always, where the flow needs it (not configurable)"
            elif name in listed:
                option = f"[migration] {kind}_tasks"
                where = f"yes: ``{option}``, position {listed.index(name) + 1}"
            else:
                where = "no: add it to ``[migration] " + kind + "_tasks``"
            rows += [f"   * - `{name}`_", f"     - ``{kind}``",
                     f"     - {where}"]
        rows.append("")
        node = nodes.section()
        node.document = self.state.document
        nested_parse_with_titles(
            self.state, StringList(rows, source="<nmf-task-kinds>"), node
        )
        return list(node.children)


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("nmf-cli", CliDirective)
    app.add_directive("nmf-exit-codes", ExitCodesDirective)
    app.add_directive("nmf-task-kinds", TaskKindsDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
