"""The ``ppl-models`` command line: one entry point, one sub-command per job.

Run ``ppl-models <command> --help`` for the options of each command. Each family of commands lives in a module
of its own, with its ``add_parsers(sub)`` (the sub-commands, their options and help) and its ``cmd_*``
functions; :mod:`ppl_models.cli.common` holds what they share. The modules import the systems they drive inside
the ``cmd_*`` functions, so that ``ppl-models --help`` starts fast.
"""

from __future__ import annotations

import argparse
import logging
import sys

import ppl_models
from ppl_models.cli import demo, enhancement, fusion, imputation, priors, scoring, separation, tracking

FAMILIES = (priors, demo, scoring, tracking, separation, enhancement, fusion, imputation)

# The order in which ``ppl-models --help`` lists the commands.
COMMANDS = ("list", "demo", "train-prior", "export-prior", "import-prior", "resynth", "score-audio", "track",
            "separate", "export-noisy-speech", "train-noise", "enhance", "export-fusion", "fuse", "export-multimodal",
            "export-physionet", "export-av-speech", "impute", "score-mot")


def _in_order(sub, names) -> None:
    """List the sub-commands in the order of ``names`` (in --help and the invalid-choice error), whatever the
    order in which the families added them."""
    if set(sub.choices) != set(names) or len(names) != len(set(names)):
        raise RuntimeError(f"COMMANDS {sorted(names)} and the registered commands {sorted(sub.choices)} differ")
    rank = {name: i for i, name in enumerate(names)}
    sub._choices_actions.sort(key=lambda action: rank[action.dest])
    parsers = dict(sub.choices)
    sub.choices.clear()
    sub.choices.update((name, parsers[name]) for name in names)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ppl-models", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Run 'ppl-models COMMAND --help' for the options of a command.")
    parser.add_argument("--version", action="version", version=f"ppl_models {ppl_models.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for family in FAMILIES:
        family.add_parsers(sub)
    _in_order(sub, COMMANDS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
                        format="%(levelname)s: %(message)s")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"ppl-models {args.command}: error: {err}", file=sys.stderr)
        return 2
