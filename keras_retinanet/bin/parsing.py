"""The commands' argument parser: errors that say what to do, ``--version`` and ``--verbose``, and options absent
unless given (so that the configuration, not argparse, holds every default)."""

import argparse
import difflib
import re
import sys

from .. import __version__
from ..errors import RetinaNetError


def version_line(prog):
    """What ``--version`` prints, e.g. 'retinanet-train 1.1.0 (keras3-retinanet; Keras-3 RetinaNet)'."""
    return f"{prog} {__version__} (keras3-retinanet; Keras-3 RetinaNet)"


def command_parser(prog, description):
    """A :class:`CommandParser` whose options are absent from the result unless given (see the module
    docstring), with ``--version`` and ``--verbose``."""
    parser = CommandParser(prog=prog, description=description, argument_default=argparse.SUPPRESS)
    parser.add_argument("--version", action="version", version=version_line(prog), help="Print the version and exit.")
    parser.add_argument(
        "--verbose",
        action="store_true",
        default=False,
        help="Show everything TensorFlow prints when it starts, and the package's debug messages.",
    )
    return parser


class CommandLineError(RetinaNetError):
    """A wrong argument: reported as one line, without a traceback."""


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors say what to do (exit status 2 and the usage line, as argparse's).

    - An option of the command after the dataset subcommand: put it before.
    - A misspelt option: the close ones. (argparse takes a misspelt option's value for the subcommand
      and reports "invalid choice: 'resnet50'".) A misspelt subcommand: the close one.

    Options cannot be abbreviated (``allow_abbrev=False``): '--backbon' gets "did you mean --backbone?"
    rather than silently meaning it, and an option added later cannot change what an abbreviation meant.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.given = []
        self.parent = None  # the command's parser, for a dataset subcommand's parser

    def parse_known_args(self, args=None, namespace=None):
        self.given = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def parse_args(self, args=None, namespace=None):
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            self.error(self._unrecognized(extras, getattr(namespace, "dataset_type", None)))
        return namespace

    def error(self, message):
        super().error(self._explain(message))

    def _subcommands(self):
        return next((action for action in self._actions if isinstance(action, argparse._SubParsersAction)), None)

    def _options(self, dataset_type=None):
        """Option strings of the command and of one of its dataset subcommands (or of all)."""
        options = set(self._option_string_actions)
        subcommands = self._subcommands()
        if subcommands is not None:
            for name, sub in subcommands.choices.items():
                if dataset_type in (None, name):
                    options.update(sub._option_string_actions)
        return options

    def _unknown_option(self, name, dataset_type=None):
        # Compared without the dashes, which every option shares and would make anything look close.
        options = {option.lstrip("-"): option for option in self._options(dataset_type) if option.startswith("--")}
        close = difflib.get_close_matches(name.lstrip("-"), list(options), n=1, cutoff=0.6)
        hint = f"; did you mean {options[close[0]]}?" if close else ""
        return f"unrecognized option {name}{hint}"

    def _misplaced(self, name, dataset_type):
        command = self.parent.prog if self.parent is not None else self.prog
        return f"{name} is an option of {command}, not of '{dataset_type}': put it before the dataset subcommand"

    def _unrecognized(self, extras, dataset_type):
        """The message for arguments nothing took: the first option among them explained."""
        for token in extras:
            if not _is_option(token):
                continue
            name = token.split("=", 1)[0]
            if dataset_type is not None and name in self._option_string_actions:
                return self._misplaced(name, dataset_type)
            return self._unknown_option(name, dataset_type)
        return "unrecognized arguments: " + " ".join(extras)

    def _explain(self, message):
        if self.parent is not None:
            # A dataset subcommand's error (a missing positional, say) caused by one of the command's options
            # given after it, where it took the place of the subcommand's own arguments.
            dataset_type = self.prog.rsplit(" ", 1)[-1]
            for token in self.given:
                name = token.split("=", 1)[0]
                if _is_option(token) and name in self.parent._option_string_actions and name not in self._option_string_actions:
                    return self._misplaced(name, dataset_type)
            return message
        subcommands = self._subcommands()
        choice = re.search(r"invalid choice: '([^']*)'", message)
        if subcommands is None or choice is None or not message.startswith(f"argument {subcommands.metavar or subcommands.dest}:"):
            return message
        value = choice.group(1)
        for token in self.given[: self.given.index(value)] if value in self.given else self.given:
            if _is_option(token) and token.split("=", 1)[0] not in self._option_string_actions:
                return self._unknown_option(token.split("=", 1)[0])  # its value was taken for the subcommand
        names = list(subcommands.choices)
        close = difflib.get_close_matches(value, names, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"unknown dataset type '{value}'{hint} (choose from {', '.join(names)})"


def _is_option(token):
    """Whether a command-line token is an option rather than a value (negative numbers are values)."""
    return token.startswith("-") and len(token) > 1 and not re.match(r"^-\.?\d", token)
