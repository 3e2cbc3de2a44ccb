"""Every registered platform keeps the contract, read from the registry alone: a declared spec, an
emulator on its port, a demo account, a docs page, a README row, and a pure composer that is
deterministic and within its own limit for every example."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT, module_accounts
from harness import TXT_URL

from sharer.config import load_settings, parse_settings
from sharer.errors import ConfigError
from sharer.loaders import load_article
from sharer.platforms import REGISTRY, get_platform, specs
from sharer.platforms.base import Platform
from sharer.platforms.spec import Options, PlatformSpec
from sharer.sandbox.run import EMULATORS, emulator_class
from sharer.sandbox.server import Emulator

IDS = list(REGISTRY)


def _readme_platform_rows() -> dict[str, list[str]]:
    """The rows of the README's platform table: the first table under "## Platforms" ("| id | …")."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Platforms\n", 1)[1].split("\n## ", 1)[0]
    table = section.split("\n| id |", 1)[1].split("\n\n", 1)[0]
    rows = {}
    for line in table.splitlines()[1:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        m = re.fullmatch(r"`([a-z0-9_-]+)`", cells[0])
        if m:
            rows[m.group(1)] = cells
    return rows


def test_readme_platform_table_and_id_list_match_the_registry():
    rows = _readme_platform_rows()
    assert list(rows) == IDS, "README's platform table must list the registry, in order"
    for pid, cells in rows.items():
        assert cells[-1] == str(get_platform(pid).spec.sandbox.port), f"{pid}: README sandbox port"
    listed = re.search(r"^- Platform ids: (.*)$", (ROOT / "README.md").read_text(), re.M)
    assert listed and re.findall(r"`([a-z0-9_-]+)`", listed.group(1)) == IDS


def test_readme_platform_table_is_what_make_readme_writes():
    """The table is generated (registry + each docs page's "posts | counted" table), never hand-kept."""
    spec = importlib.util.spec_from_file_location("readme_table", ROOT / "docs" / "platforms" / "readme_table.py")
    assert spec and spec.loader
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    readme = (ROOT / "README.md").read_text()
    assert generator.render(readme) == readme, "README's platform table is out of date: run `make readme`"


@pytest.mark.parametrize("pid", IDS)
def test_platform_declares_itself(pid):
    cls = get_platform(pid)
    spec = cls.spec
    assert issubclass(cls, Platform) and isinstance(spec, PlatformSpec) and spec.id == cls.id == pid
    assert spec.title and spec.limits.length > 0 and spec.limits.unit and callable(spec.limits.counter)
    assert issubclass(spec.options, Options)
    assert EMULATORS[pid] == (spec.sandbox.emulator, spec.sandbox.port)
    assert issubclass(emulator_class(pid), Emulator)
    assert (ROOT / "docs" / "platforms" / f"{pid}.md").exists()


def test_sandbox_ports_are_distinct():
    ports = [port for _, port in EMULATORS.values()]
    assert len(ports) == len(set(ports))


@pytest.mark.parametrize("pid", IDS)
def test_a_bad_option_fails_naming_the_account_and_key(pid):
    table = next(iter(get_platform(pid).spec.demo_accounts().values()))
    raw = {"accounts": {"x-1": {**table, "options": {**table.get("options", {}), "no_such_option": 1}}}}
    with pytest.raises(ConfigError) as info:
        parse_settings(raw, Path("sharer.toml"), env={})
    assert str(info.value).startswith(f"sharer.toml: accounts.x-1.options.no_such_option: unknown option for {pid}")


def _demo_accounts():
    settings = load_settings(ROOT / "config" / "sharer.toml")
    return settings, {a.platform: a for a in settings.accounts.values()}


def test_default_config_has_a_demo_account_per_platform():
    settings, by_platform = _demo_accounts()
    assert set(by_platform) == set(IDS)
    for spec in specs().values():  # every declared demo account is there, on its emulator's port
        for name in spec.demo_accounts():
            assert settings.accounts[name].api_base.startswith(f"http://127.0.0.1:{spec.sandbox.port}")


def test_test_account_files_match_the_registry():
    files = sorted((ROOT / "tests" / "accounts").glob("*.toml"))
    sources = [(path.stem, path.name, path.read_text()) for path in files]
    sources += [(pid, f"test_{pid}.py ACCOUNTS", text) for pid, text in module_accounts().items()]
    for pid, where, text in sources:
        assert pid in REGISTRY, f"{where}: no such platform"
        accounts = tomllib.loads(text.replace("{url}", "http://127.0.0.1:1"))["accounts"]
        for name, table in accounts.items():
            assert name.startswith(f"{pid}-") and table["platform"] == pid, (where, name)


def _articles():
    return [load_article(str(p), url=TXT_URL if p.suffix == ".txt" else None) for p in sorted(EXAMPLES.iterdir())]


@pytest.mark.parametrize("pid", IDS)
def test_compose_is_deterministic_and_within_the_limit(pid):
    _, by_platform = _demo_accounts()
    platform = get_platform(pid)(by_platform[pid])
    for article in _articles():
        first, second = platform.compose(article), platform.compose(article)
        assert first == second, f"{pid}: compose is not deterministic for {article.source}"
        assert first.length <= first.limit, f"{pid}: {first.length} > {first.limit} for {article.source}"
        assert first.platform == pid and first.text


def test_the_documented_example_config_loads():
    text = (ROOT / "config" / "sharer.example.toml").read_text()
    env = {name: "x" * 32 for name in re.findall(r'"env:([A-Z_]+)"', text)}
    settings = load_settings(ROOT / "config" / "sharer.example.toml", env=env)
    assert settings.timezone == "Asia/Shanghai" and settings.accounts
