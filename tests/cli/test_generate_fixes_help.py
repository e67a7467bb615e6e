"""Help texts a new user read wrong: shard numbering, steps per command, dilation scaling, the --data table."""

from __future__ import annotations

from typer.main import get_command
from typer.testing import CliRunner

from weakloc.cli import app


def _help(command: str, option: str) -> str:
    """The declared help of ``option`` of ``weakloc generate COMMAND``."""
    params = get_command(app).commands["generate"].commands[command].params
    return next(p.help for p in params if option in p.opts)


def test_every_shard_option_says_shards_are_numbered_from_zero():
    generate = get_command(app).commands["generate"]
    sharded = [name for name, command in generate.commands.items() if any("--shard" in p.opts for p in command.params)]
    assert {"masks", "real", "inpaint", "full", "sample"} <= set(sharded)
    for name in sharded:
        assert "numbered from 0" in _help(name, "--shard") and "0/2 and 1/2" in _help(name, "--shard"), name


def test_each_command_has_its_own_steps_help():
    assert "250" in _help("inpaint", "--steps") and "250" not in _help("sample", "--steps")
    assert "DDIM" in _help("sample", "--steps")
    assert "256 px" in _help("masks", "--max-dilation") and "scaled with --size" in _help("masks", "--max-dilation")


def test_bracketed_words_survive_the_rich_help():
    result = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "240"})
    assert result.exit_code == 0, result.output
    assert "TOML file with a [data] table" in result.output  # not "with a  table"
    assert "[default: dolos]" in result.output
