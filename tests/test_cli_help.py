"""Every `--help` shows its help strings as written: Rich reads `[...]` as markup and drops it."""

import re

import pytest
import typer
from typer.testing import CliRunner

from vois_cli.cli import app

ROOT = typer.main.get_command(app)
PANEL = re.compile(r"[│╭╮╰╯─]+")  # the boxes Rich draws around arguments and options


def _flat(text: str) -> str:
    """Text without panel borders and with whitespace folded, so wrapped cells read on."""
    return " ".join(PANEL.sub(" ", text).split())


def _help(typer_app: typer.Typer, args: list[str]) -> str:
    result = CliRunner().invoke(typer_app, args, env={"COLUMNS": "100"}, prog_name="vois")
    assert result.exit_code == 0, result.output
    return _flat(result.output)


def _missing(command, shown: str) -> list[str]:
    """The command's own help and its parameters' help strings that `shown` lacks."""
    texts = [command.help] + [getattr(p, "help", None) for p in command.params]
    return [t for t in texts if t and _flat(t) not in shown]


@pytest.mark.parametrize("name", sorted(ROOT.commands))
def test_every_help_string_of_a_command_is_shown_in_full(name):
    assert _missing(ROOT.commands[name], _help(app, [name, "--help"])) == []


def test_the_root_help_is_shown_in_full():
    assert _missing(ROOT, _help(app, ["--help"])) == []


def test_infer_help_names_where_the_checkpoint_and_the_json_come_from():
    shown = _help(app, ["infer", "--help"])
    assert "runs/train/last.pt" in shown
    assert "$VOIS_CHECKPOINT" in shown
    assert "<video name>.pred.json" in shown


def test_the_check_sees_a_help_string_that_rich_eats():
    probe = typer.Typer()

    @probe.command()
    def run(x: int = typer.Option(0, help="A value [default: from the environment].")) -> None:
        """Probe."""

    command = typer.main.get_command(probe)
    shown = _help(probe, ["--help"])
    assert "A value ." in shown
    assert _missing(command, shown) == ["A value [default: from the environment]."]
