"""The one exception the configuration package raises: :class:`ConfigError`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable


class ConfigError(ValueError):
    """Raised when the configuration is invalid; carries *every* problem found, not just the first.

    ``problems`` is a tuple of ``(setting_name, problem)`` pairs in the order the settings are
    declared. ``setting_name`` is the environment-variable name (``"MARKETS"``) or, for an unknown
    key in a ``.env`` file, the key exactly as written there. ``problem`` says what is wrong and
    what is allowed. Problem texts never contain the value of a secret setting.

    ``str(error)`` is a multi-line report with one line per problem, meant to be printed to the
    operator as-is::

        invalid configuration (2 problems):
          REPLAY_SPEED: got 'fast' (from the environment): not a number; allowed: a number > 0 ...
          MARKETS: required when FEED_SOURCE=upbit; allowed: a comma-separated list such as ...
    """

    def __init__(self, problems: Iterable[tuple[str, str]]) -> None:
        """Create the error from ``(setting_name, problem)`` pairs; at least one is required."""
        self.problems: tuple[tuple[str, str], ...] = tuple(problems)
        if not self.problems:
            msg = "ConfigError needs at least one (setting_name, problem) pair"
            raise ValueError(msg)
        super().__init__(self.problems)

    @classmethod
    def for_setting(cls, name: str, problem: str) -> ConfigError:
        """Create an error with a single ``(name, problem)`` pair."""
        return cls([(name, problem)])

    @property
    def setting_names(self) -> tuple[str, ...]:
        """The names of the bad settings, in report order (a name may repeat)."""
        return tuple(name for name, _ in self.problems)

    def __str__(self) -> str:
        """One header line, then one indented ``NAME: problem`` line per problem."""
        count = len(self.problems)
        header = f"invalid configuration ({count} problem{'s' if count != 1 else ''}):"
        lines = [f"  {name}: {problem}" for name, problem in self.problems]
        return "\n".join([header, *lines])
