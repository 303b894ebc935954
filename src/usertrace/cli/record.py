"""Placeholder until the subcommand lands."""

from .context import CliError


def add_arguments(name, p):
    p.add_argument("rest", nargs="*")


def run(args, ctx):
    raise CliError(f"{args._name} is not implemented yet")
