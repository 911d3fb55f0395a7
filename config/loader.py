"""Loading a settings tree from its declarations: sources, precedence and "every problem at once".

:func:`load` builds any settings dataclass whose fields are declared with
:mod:`config.declare` (in practice :class:`~config.settings.Settings`, through
:func:`~config.settings.load_settings`).

Contract:

* Sources, highest precedence first: ``overrides`` (command-line flags, as ``{"REPLAY_SPEED":
  "max"}``); the process environment (or the ``env`` mapping given instead); the ``.env`` file,
  parsed by python-dotenv **without** ``${VAR}`` interpolation, so an unexpanded reference is
  caught as a placeholder; the declared defaults. Each setting takes the first value that is not
  empty (or all whitespace), stripped; environment variables that are no setting are ignored.
* Values that look like template placeholders (``${...}``, ``your_...``, ``<...>``,
  ``changeme``, ``xxx``) are refused (:func:`config.parsing.placeholder_reason`).
* A refused value is one problem; the field then keeps its default, so that the rest is still
  checked. A secret's value is never echoed; other values are, cut to 60 characters.
* A key of the ``.env`` file or of the overrides that is no setting is a problem (with a
  did-you-mean); so are ``.env`` syntax errors, a key set twice and a key without ``=``.
* Every group is built (its ``__post_init__`` invariant runs) even when other settings are bad; a
  verdict is dropped only when a setting the invariant reads (``invariant=True``) is itself bad.
* All problems are raised as one :class:`~config.errors.ConfigError`, in declaration order
  (unknown keys and file problems first).
"""

from __future__ import annotations

import difflib
import io
import os
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, TypeVar

from dotenv import dotenv_values
from dotenv.parser import parse_stream

from config import parsing
from config.declare import SettingSpec, declared, specs
from config.errors import ConfigError
from config.parsing import InvalidValueError

if TYPE_CHECKING:
    from pathlib import Path

    from _typeshed import DataclassInstance

D = TypeVar("D", bound="DataclassInstance")

_OVERRIDE = "command-line override"
_ENVIRONMENT = "the environment"
_KNOWN_NAMES = "allowed: the names in .env.example"
_SHOWN_CHARS = 60  # a bad value is echoed in its error up to this long

Layers = list[tuple[str, Mapping[str, str | None]]]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Raw:
    """The effective raw text of one setting and where it came from."""

    text: str  # stripped, never empty
    source: str


class _Collector:
    """Parses raw values one setting at a time, collecting problems instead of stopping."""

    def __init__(self, raw: Mapping[str, _Raw]) -> None:
        self._raw = raw
        self.problems: list[tuple[str, str]] = []
        self.bad: set[str] = set()

    def report(self, name: str, text: str) -> None:
        self.problems.append((name, text))
        self.bad.add(name)

    def value(self, spec: SettingSpec, fallback: object) -> object:
        """The parsed given value, else ``fallback`` (the declared default); bad values are reported."""
        raw = self._raw.get(spec.name)
        if raw is None:
            return fallback
        cut = f"{raw.text[:_SHOWN_CHARS]}… ({len(raw.text)} characters)"
        text = raw.text if len(raw.text) <= _SHOWN_CHARS else cut
        shown = f"the value (from {raw.source})" if spec.secret else f"got {text!r} (from {raw.source})"
        reason = parsing.placeholder_reason(raw.text)
        if reason is not None:
            self.report(spec.name, f"{shown} {reason}")
            return fallback
        try:
            return spec.parse(raw.text)
        except InvalidValueError as exc:
            self.report(spec.name, f"{shown}: {exc}")
            return fallback

    def build(self, cls: type[D]) -> D:
        """``cls`` from the parsed values; when its invariant fails, the problem is noted and defaults stand in."""
        kwargs: dict[str, object] = {}
        checked: list[str] = []
        for item in fields(cls):
            spec, nested = declared(item)
            if spec is not None:
                kwargs[item.name] = self.value(spec, item.default)
                checked += [spec.name] if spec.invariant else []
            elif nested is not None:
                kwargs[item.name] = self.build(nested)
        make: Callable[..., D] = cls
        try:
            return make(**kwargs)
        except ConfigError as exc:
            if not self.bad.intersection(checked):
                for name, text in exc.problems:
                    self.report(name, text)
            return make()


def _suggest(key: str, names: list[str]) -> str:
    matches = difflib.get_close_matches(key.upper(), names, n=1, cutoff=0.6)
    return f"did you mean {matches[0]}? " if matches else ""


def _read_env_file(path: Path) -> tuple[dict[str, str | None], list[tuple[str, str]]]:
    """Parse a ``.env`` file with python-dotenv; report syntax errors and duplicate keys."""
    label = f".env file {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return {}, [(str(path), f"cannot read the {label}: {exc}")]
    problems: list[tuple[str, str]] = []
    bindings = list(parse_stream(io.StringIO(text)))
    syntax = "allowed: NAME=value, NAME='value', NAME=\"value\", comments starting with #"
    problems.extend(
        (f"{path.name}:{binding.original.line}",
         f"line {binding.original.line} of the {label} cannot be parsed; {syntax}")
        for binding in bindings
        if binding.error
    )
    counts = Counter(binding.key for binding in bindings if binding.key is not None)
    problems.extend(
        (key, f"set {count} times in the {label}; allowed: each setting once")
        for key, count in counts.items() if count > 1
    )
    values = dotenv_values(stream=io.StringIO(text), interpolate=False)
    return dict(values), problems


def _layers(names: list[str], env: Mapping[str, str], env_file: Path | None,
            overrides: Mapping[str, str]) -> tuple[Layers, list[tuple[str, str]]]:
    """The value layers, highest precedence first, and problems with unknown or bad keys."""
    problems = [(key, f"unknown setting ({_OVERRIDE}); {_suggest(key, names)}{_KNOWN_NAMES}")
                for key in overrides if key not in names]
    layers: Layers = [(_OVERRIDE, overrides), (_ENVIRONMENT, env)]
    if env_file is not None:
        file_values, file_problems = _read_env_file(env_file)
        problems.extend(file_problems)
        label = f".env file {env_file}"
        for key, value in file_values.items():
            if key not in names:
                problems.append((key, f"unknown setting in the {label}; {_suggest(key, names)}{_KNOWN_NAMES}"))
            elif value is None:
                problems.append((key, f"has no '=' in the {label}; allowed: {key}=value, or {key}= to unset it"))
        layers.append((label, file_values))
    return layers, problems


def _resolve(names: list[str], layers: Layers) -> dict[str, _Raw]:
    """For every setting given somewhere, its first non-empty value by precedence."""
    resolved: dict[str, _Raw] = {}
    for name in names:
        for source, given in layers:
            text = (given.get(name) or "").strip()
            if text:
                resolved[name] = _Raw(text=text, source=source)
                break
    return resolved


def load(root: type[D], env: Mapping[str, str] | None, env_file: Path | None,
         overrides: Mapping[str, str] | None) -> D:
    """Build ``root`` from its declared settings; see :func:`config.settings.load_settings`."""
    names = [spec.name for spec in specs(root)]
    if env_file is not None and not env_file.is_file():
        raise ConfigError([(str(env_file), "the given .env file does not exist or is not a file")])
    layers, problems = _layers(names, os.environ if env is None else env, env_file, overrides or {})
    collector = _Collector(_resolve(names, layers))
    settings = collector.build(root)
    order = {name: index for index, name in enumerate(names)}
    problems += sorted(collector.problems, key=lambda item: order.get(item[0], -1))
    if problems:
        raise ConfigError(problems)
    return settings
