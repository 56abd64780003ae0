"""The ``refprune-cli`` directive: every command of ``refprune`` with its usage and every option.

Read from :func:`refprune.cli.main.build_parser` when the page is built, so the page cannot
fall behind the parser. Help texts are set as plain text (no markup is interpreted).
"""

from __future__ import annotations

import argparse

from docutils import nodes
from docutils.parsers.rst import Directive


def subcommands(parser: argparse.ArgumentParser) -> dict:
    """{name: subparser} of the parser's subcommands, in the order they were added."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def plain(text: str) -> str:
    """Help text as ``--help`` prints it, less the double backticks of inline literals."""
    return (text or "").replace("``", "")


def help_of(parser, action) -> str:
    """The action's help with ``%(default)s`` and the like filled in, as ``--help`` shows it."""
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    return plain(parser._get_formatter()._expand_help(action))


def invocation(parser, action) -> str:
    """``--tier {float64,float32}``, ``--out OUT``, ``candidate``: how the option is written."""
    if not action.option_strings:
        return action.metavar or action.dest
    formatter = parser._get_formatter()
    return ", ".join(formatter._format_action_invocation(action).split(", "))


def options_list(parser) -> nodes.definition_list:
    """One entry per argument (positional or option) except ``--help``."""
    items = nodes.definition_list()
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        item = nodes.definition_list_item()
        text = invocation(parser, action)
        item += nodes.term("", "", nodes.literal(text, text))
        item += nodes.definition("", nodes.paragraph(text=help_of(parser, action) or "—"))
        items += item
    return items


def command_section(name: str, parser, short: str) -> nodes.section:
    section = nodes.section(ids=[f"command-{name}"], names=[f"refprune {name}"])
    title = f"refprune {name}"
    section += nodes.title("", "", nodes.literal(title, title))
    if short:
        section += nodes.paragraph(text=plain(short[0].upper() + short[1:] + "."))
    if parser.description:
        section += nodes.paragraph(text=plain(parser.description))
    usage = parser.format_usage().strip()
    section += nodes.literal_block(usage, usage, language="text")
    section += options_list(parser)
    return section


class CliDirective(Directive):
    """``.. refprune-cli::``: the global options, then one section per command."""

    def run(self):
        from refprune.cli.main import build_parser

        parser = build_parser()
        out = [nodes.paragraph(text=plain(parser.description)),
               nodes.literal_block(parser.format_usage().strip(), parser.format_usage().strip(), language="text"),
               options_list(parser)]
        helps = {}
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {choice.dest: choice.help for choice in action._choices_actions}
        for name, sub in subcommands(parser).items():
            out.append(command_section(name, sub, helps.get(name, "")))
        return out


def setup(app) -> None:
    app.add_directive("refprune-cli", CliDirective)
