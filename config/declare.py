"""Declaring a setting once: a dataclass field that carries its environment name, parser and help.

Contract:

* :func:`setting` declares a field with a default: ``lookup_window_s: float = setting(
  "EXEC_LOOKUP_WINDOW_S", "3", parse, "help text")``. The field's dataclass default is
  ``parse("3")``, computed when the class is defined, so a group built without arguments
  (``ExecutionSettings()``) has exactly the declared defaults, and a default that does not parse
  fails at import. :func:`optional` declares a field without a default: it holds ``unset``
  (``None`` unless given, e.g. ``()`` for a list) when the setting is not given.
* :func:`group` declares a field holding a nested settings dataclass (default: the group's
  defaults).
* The :class:`SettingSpec` of each setting sits in its field's metadata; :func:`specs` walks a
  settings class depth-first in field order, and that order is the one of ``.env.example``, of
  :meth:`~config.settings.Settings.masked_summary` and of :class:`~config.errors.ConfigError`
  reports. :func:`values` walks an instance the same way.
* A group's cross-field invariant is its ``__post_init__``, raising :func:`problem` (which names
  the offending field's setting). A setting declared ``invariant=True`` is read by that check: when
  its own value is invalid the loader does not report the check's verdict, which would be about a
  stand-in value.
* :func:`shown` renders a value for logs: secrets masked, unset values ``(unset)``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import Field, dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar, overload

from config.errors import ConfigError
from config.secret import Secret

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T")
G = TypeVar("G")

_SPEC = "config.setting"
_GROUP = "config.group"


@dataclass(frozen=True, slots=True, kw_only=True)
class SettingSpec:
    """One known setting: its environment name, raw default ("" = unset), meaning and parser."""

    name: str
    default: str
    help: str
    secret: bool = False
    parse: Callable[[str], object]
    invariant: bool = False  # read by its group's __post_init__ invariant
    section: str = ""  # non-empty: a new section of .env.example starts here, with this title
    show: Callable[[Any], str] | None = None  # how masked_summary renders it, when not the usual way


def setting(  # noqa: PLR0913 - each keyword is one attribute of the declaration
    name: str, default: str, parse: Callable[[str], T], help_text: str, *, secret: bool = False,
    invariant: bool = False, section: str = "", show: Callable[[T], str] | None = None,
) -> T:
    """A settings field with a default; its dataclass default is ``parse(default)``."""
    spec = SettingSpec(name=name, default=str(default), help=help_text, secret=secret, parse=parse,
                       invariant=invariant, section=section, show=show)
    return field(default=parse(spec.default), metadata={_SPEC: spec})


@overload
def optional(name: str, parse: Callable[[str], T], help_text: str, *, secret: bool = ...,
             invariant: bool = ..., section: str = ...) -> T | None: ...
@overload
def optional(name: str, parse: Callable[[str], T], help_text: str, *, unset: T, secret: bool = ...,
             invariant: bool = ..., section: str = ...) -> T: ...
def optional(  # noqa: PLR0913 - each keyword is one attribute of the declaration
    name: str, parse: Callable[[str], T], help_text: str, *, unset: T | None = None, secret: bool = False,
    invariant: bool = False, section: str = "",
) -> T | None:
    """A settings field that holds ``unset`` (default ``None``) when the setting is not given."""
    spec = SettingSpec(name=name, default="", help=help_text, secret=secret, parse=parse, invariant=invariant,
                       section=section)
    return field(default=unset, metadata={_SPEC: spec})


def group(cls: Callable[[], G]) -> G:
    """A field holding a nested settings group, by default built from its declared defaults."""
    return field(default_factory=cls, metadata={_GROUP: cls})


def declared(item: Field[Any]) -> tuple[SettingSpec | None, type[DataclassInstance] | None]:
    """What a settings field declares: ``(spec, None)``, ``(None, group class)`` or ``(None, None)``."""
    return item.metadata.get(_SPEC), item.metadata.get(_GROUP)


def spec_of(node: DataclassInstance | type[DataclassInstance], name: str) -> SettingSpec | None:
    """The spec declared on field ``name`` of a settings class, or ``None`` when it is no setting."""
    return next((declared(item)[0] for item in fields(node) if item.name == name), None)


def group_of(node: DataclassInstance | type[DataclassInstance], name: str) -> type[DataclassInstance] | None:
    """The settings class of group field ``name``, or ``None`` when it is no group."""
    return next((declared(item)[1] for item in fields(node) if item.name == name), None)


def specs(cls: type[DataclassInstance]) -> Iterator[SettingSpec]:
    """Every setting declared in ``cls`` and its groups, depth-first in field order."""
    for item in fields(cls):
        spec, nested = declared(item)
        if spec is not None:
            yield spec
        elif nested is not None:
            yield from specs(nested)


def values(node: DataclassInstance) -> Iterator[tuple[SettingSpec, object]]:
    """``(spec, value)`` for every setting of a settings instance, in :func:`specs` order."""
    for item in fields(node):
        spec, nested = declared(item)
        if spec is not None:
            yield spec, getattr(node, item.name)
        elif nested is not None:
            yield from values(getattr(node, item.name))


def name_of(owner: DataclassInstance, name: str) -> str:
    """The environment name of ``owner``'s field ``name``."""
    spec = spec_of(owner, name)
    if spec is None:
        msg = f"{type(owner).__name__}.{name} is not a declared setting"
        raise TypeError(msg)
    return spec.name


def problem(owner: DataclassInstance, name: str, text: str) -> ConfigError:
    """The error an invariant of ``owner`` raises about its field ``name``, under that field's setting."""
    return ConfigError.for_setting(name_of(owner, name), text)


def iso(moment: datetime) -> str:
    """An aware UTC timestamp as ISO-8601 with a ``Z``."""
    return moment.isoformat().replace("+00:00", "Z")


def _json_default(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)  # pyright: ignore[reportUnknownArgumentType]
    msg = f"not JSON serialisable: {type(value).__name__}"
    raise TypeError(msg)


def shown(spec: SettingSpec, value: object) -> str:  # noqa: PLR0911 - one return per value kind reads best
    """Render one setting's value for logs: secrets masked, unset ones ``(unset)``."""
    if spec.show is not None:
        return spec.show(value)
    if value is None or (isinstance(value, tuple | str) and not value):
        return "(unset)"
    if isinstance(value, Secret):
        return value.masked
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, Mapping):
        return json.dumps(value, default=_json_default, sort_keys=True, separators=(",", ":"))
    return str(value)
