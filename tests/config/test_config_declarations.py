"""Each setting is declared once (config/declare.py, config/settings.py); every other view is derived.

The loader, the dataclass defaults, the masked summary and ``.env.example`` all come from the
declarations, and ``load_settings`` answers any text with settings or a ConfigError, never with
another exception.
"""

from __future__ import annotations

import ast
import collections
import dataclasses
import re
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import config.settings
from config import (
    SETTING_NAMES,
    SETTINGS_SPEC,
    AccountSettings,
    ConfigError,
    ExecutionSettings,
    RiskSettings,
    Settings,
    TelegramSettings,
    declare,
    load_settings,
)
from config.example import render
from model.reasons import Reason

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = REPO_ROOT / "config"


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray ./.env


def _tree(cls: type = Settings) -> list[type]:
    """``cls`` and every settings group under it."""
    found = [cls]
    for item in dataclasses.fields(cls):
        nested = declare.group_of(cls, item.name)
        if nested is not None:
            found += _tree(nested)
    return found


# --- defaults ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", _tree(), ids=lambda cls: cls.__name__)
def test_every_field_is_a_declared_setting_or_group(cls: type) -> None:
    for item in dataclasses.fields(cls):
        assert declare.spec_of(cls, item.name) or declare.group_of(cls, item.name), f"{cls.__name__}.{item.name}"


@pytest.mark.parametrize("cls", _tree(), ids=lambda cls: cls.__name__)
def test_a_group_built_without_arguments_has_the_declared_defaults(cls: type) -> None:
    built = cls()
    for spec, value in declare.values(built):
        if spec.default:
            parsed = spec.parse(spec.default)
            assert value == parsed and type(value) is type(parsed), spec.name
        else:
            assert value in (None, (), ""), spec.name  # optional: unset


def test_the_loaded_defaults_are_the_dataclass_defaults() -> None:
    assert load_settings(env={}) == Settings()
    # spot checks written out here, so that a changed default shows in review
    assert ExecutionSettings().lookup_window_s == 3.0
    assert ExecutionSettings().lookup_answers == 3
    assert ExecutionSettings().review_after_s == 300.0
    assert RiskSettings().max_order_krw == Decimal(1_000_000)
    assert RiskSettings().live_markets == ()
    assert AccountSettings().halt_on_difference is True
    assert TelegramSettings().api_url == "https://api.telegram.org"


def test_an_override_of_one_field_keeps_the_other_defaults() -> None:
    risk = RiskSettings(max_positions=7)
    assert (risk.max_positions, risk.daily_loss_krw) == (7, Decimal(100_000))


# --- declared once --------------------------------------------------------------------------------

# Literals in config/ equal to some default that are not that default: the words a boolean accepts
# and the URL examples in parsing.py's messages.
_NOT_DEFAULTS = collections.Counter({
    ("parsing.py", "true"): 1, ("parsing.py", "false"): 1, ("parsing.py", "1"): 1, ("parsing.py", "0"): 1,
    ("parsing.py", "https://api.telegram.org"): 1, ("parsing.py", "wss://api.upbit.com/websocket/v1"): 1,
})


def _string_literals() -> collections.Counter[tuple[str, str]]:
    """``(file name, text)`` of every string literal in config/*.py (f-string parts included)."""
    found: collections.Counter[tuple[str, str]] = collections.Counter()
    for path in sorted(CONFIG.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found[path.name, node.value] += 1
    return found


def test_no_setting_name_or_default_is_written_twice_in_config() -> None:
    by_text: collections.Counter[str] = collections.Counter()
    for (_, text), count in (_string_literals() - _NOT_DEFAULTS).items():
        by_text[text] += count

    for spec in SETTINGS_SPEC:
        assert by_text[spec.name] == 1, f"{spec.name} is written {by_text[spec.name]} times in config/"
    declared = collections.Counter(spec.default for spec in SETTINGS_SPEC if spec.default)
    for default, settings_with_it in declared.items():
        assert by_text[default] == settings_with_it, f"the default {default!r} is also written outside its declaration"
    assert len(SETTING_NAMES) == len(SETTINGS_SPEC)


def test_names_mentioned_in_the_declarations_exist() -> None:
    """A renamed setting leaves no stale mention in a help text or a problem message of config/settings.py."""
    words = {word for (module, text) in _string_literals() if module == "settings.py"
             for word in re.findall(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b", text)}
    assert "EXEC_LOOKUP_WINDOW_S" in words  # the scan sees the help texts
    known = SETTING_NAMES | {reason.name for reason in Reason} | set(vars(config.settings))  # or a constant of its own
    assert words <= known, words - known


def test_invariant_problems_name_the_setting_of_the_field() -> None:
    with pytest.raises(ConfigError) as caught:
        TelegramSettings(chat_id=42)
    assert caught.value.setting_names == ("TELEGRAM_CHAT_ID",)
    with pytest.raises(TypeError, match="not a declared setting"):
        declare.problem(TelegramSettings(), "enabled", "x")


# --- .env.example -------------------------------------------------------------------------------------


def test_env_example_is_the_generated_text() -> None:
    committed = (REPO_ROOT / ".env.example").read_text(encoding="utf-8")
    assert committed == render(), "regenerate it: python -m config.example > .env.example"


def test_env_example_has_a_header_per_section_and_an_explanation_per_setting() -> None:
    lines = render().splitlines()
    headers = [line.removeprefix("# --- ").rstrip(" -") for line in lines if line.startswith("# --- ")]
    assert headers == [spec.section for spec in SETTINGS_SPEC if spec.section]
    for spec in SETTINGS_SPEC:
        at = lines.index(f"# {spec.name}=" if spec.secret else f"{spec.name}={spec.default}")
        comment: list[str] = []
        for line in reversed(lines[:at]):
            if not line.startswith("# ") or line.startswith("# --- ") or re.match(r"# [A-Z][A-Z0-9_]*=", line):
                break
            comment.insert(0, line.removeprefix("# "))
        assert " ".join(comment).startswith(spec.help[:40]), spec.name


def test_the_command_prints_the_generated_text() -> None:
    done = subprocess.run([sys.executable, "-m", "config.example"], cwd=REPO_ROOT, capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout == render()


# --- any text loads or is a ConfigError ----------------------------------------------------------------

_ODD = st.sampled_from([
    "", " ", "\x00", "nan", "-inf", "1e400", "1E+999999999", "1e-999999999", "9" * 5000, "²", "١٢", "max", "MAX",
    "true", "0", "-0", "+1", "${X}", "your_key", "<x>", "changeme", "xxxx", "a" * 300, "[" * 5000, "{" * 5000,
    '{"a": ' * 2000, "9999-12-31T23:59:59-23:59", "0001-01-01T00:00+01:00", "2024-01-01", "KRW-BTC", "0.0.0.0",
    "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", "postgresql://u:p@h:99999/db", "wss://[::1", "http://[x",
    "a%1", "a@0", "1,,2", "/dev/null", ".", "~", "x" * 4096,
])
_TEXT = st.one_of(_ODD, st.text(), st.text(alphabet="0123456789.eE+-,:%@[]{}\" ", max_size=40))
_NAMES = st.sampled_from(sorted(SETTING_NAMES))


def _check(env: dict[str, str], overrides: dict[str, str] | None = None, env_file: Path | None = None) -> None:
    try:
        loaded = load_settings(env=env, env_file=env_file, overrides=overrides)
    except ConfigError as exc:
        assert exc.problems
        assert str(exc).startswith("invalid configuration")
        return
    assert list(loaded.masked_summary()) == [spec.name for spec in SETTINGS_SPEC]


@settings(max_examples=400, deadline=None)
@given(env=st.dictionaries(_NAMES, _TEXT, max_size=8), overrides=st.dictionaries(_NAMES, _TEXT, max_size=2))
@example(env={"REPLAY_FROM": "9999-12-31T23:59:59-23:59"}, overrides={})
@example(env={"REPLAY_UNTIL": "0001-01-01T00:00+01:00"}, overrides={})
@example(env={"REPLAY_FILE": "a" * 5000}, overrides={})
@example(env={"STRATEGY_PARAMS": "[" * 100_000}, overrides={})
def test_any_values_load_or_are_a_config_error(env: dict[str, str], overrides: dict[str, str]) -> None:
    _check(env, overrides)


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(st.one_of(st.tuples(_NAMES, _TEXT).map("=".join), st.text()), max_size=6))
def test_any_env_file_loads_or_is_a_config_error(lines: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        env_file = Path(folder) / "test.env"
        env_file.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
        _check({}, env_file=env_file)
