"""The CLI documents itself: every command and option has help, and the README's CLI table lists exactly
the commands and options the click tree has (so the documentation cannot drift from the behaviour)."""

from __future__ import annotations

import re

import click
from conftest import ROOT, run_cli

from sharer.cli import main


def _commands(group: click.Group, path: tuple[str, ...] = ()):
    yield path, group
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*path, name))
        else:
            yield (*path, name), cmd


def _options(cmd: click.Command) -> set[str]:
    return {opt for p in cmd.params if isinstance(p, click.Option) and not p.hidden for opt in p.opts
            if opt != "--help"}


def test_every_command_and_option_has_help_and_help_runs(base_env):
    missing = []
    for path, cmd in _commands(main):
        if not (cmd.help or "").strip():
            missing.append(" ".join(("sharer", *path)))
        for p in cmd.params:
            if isinstance(p, click.Option) and not p.hidden and not (p.help or "").strip():
                missing.append(f"{' '.join(('sharer', *path))} {p.opts[0]}")
    assert missing == [], f"no help text: {missing}"
    for path, cmd in _commands(main):
        proc = run_cli([*path, "--help"], base_env)
        assert proc.returncode == 0 and proc.stderr == "", (path, proc.stderr)
        first_line = (cmd.help or "").strip().splitlines()[0]
        assert " ".join(first_line.split()[:4]) in " ".join(proc.stdout.split()), path
        for opt in _options(cmd):
            assert opt in proc.stdout, (path, opt)


def _documented() -> dict[tuple[str, ...], set[str]]:
    """(command path) -> options, from the README's CLI table: each backticked snippet of a row's first
    column is ``sharer <command> …``, ``<command> …`` or more options of the row's previous snippet."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## The CLI\n"):text.index("## The JSON contract\n")]
    known = {path for path, _ in _commands(main)}
    found: dict[tuple[str, ...], set[str]] = {}
    for row in re.findall(r"^\| (.+?) \| .+ \|$", section, re.M):
        last: tuple[str, ...] | None = None
        for snippet in re.findall(r"`([^`]+)`", row):
            words = snippet.replace("\\|", "|").split()
            rooted = words[0] == "sharer"
            words = words[1:] if rooted else words
            path: tuple[str, ...] = ()
            while words[len(path):] and (*path, words[len(path)]) in known:
                path = (*path, words[len(path)])
            if not rooted and not path:
                if last is None or not words[0].startswith(("-", "[", "…")):
                    found.setdefault(("?", snippet), set())
                    continue
                path = last
            found.setdefault(path, set()).update(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", snippet))
            last = path
    return found


def test_the_readme_cli_table_matches_the_click_tree():
    documented = _documented()
    assert not [k for k in documented if k and k[0] == "?"], [k for k in documented if k and k[0] == "?"]
    actual = {path: _options(cmd) for path, cmd in _commands(main) if not isinstance(cmd, click.Group)
              or path == ()}
    actual[()] = _options(main)
    assert set(documented) == set(actual), (set(actual) ^ set(documented))
    for path, opts in actual.items():
        assert documented[path] == opts, (path, "undocumented:", opts - documented[path],
                                          "documented but absent:", documented[path] - opts)


def test_the_readme_documents_the_exit_codes_the_cli_uses():
    from sharer import cli

    text = (ROOT / "README.md").read_text()
    for code in (cli.EXIT_OK, cli.EXIT_FAILED, cli.EXIT_BAD_INPUT, cli.EXIT_WAIT_TIMEOUT):
        assert f"**{code}**" in text
    assert "Exit codes: 0 success; 1 a delivery failed" in " ".join((main.help or "").split())
