"""``.env.example``, generated from the setting declarations: ``python -m config.example > .env.example``.

:func:`render` writes the fixed preamble, then every setting of :data:`~config.settings.SETTINGS_SPEC`
in declaration order: a ``# --- title ---`` header where a declaration opens a section, its help
text as a comment (wrapped at 100 columns; secrets say so) and ``NAME=default``. Secrets are
commented out (``# NAME=``): they belong in ``.env``, never in a copy of the example.
``tests/config`` fails when the committed file differs from :func:`render`'s text.
"""

from __future__ import annotations

import re
import sys
import textwrap

from config.settings import SETTINGS_SPEC

WIDTH = 100

PREAMBLE = """\
# Configuration for the Upbit trading system. Copy to .env and edit what you need.
# Generated from the declarations in config/settings.py: python -m config.example > .env.example
#
# Precedence: command-line flags > process environment > .env > the defaults shown here.
# An empty value means "unset" (the default applies). Unknown keys in .env are an error,
# so a misspelt name is caught at start. ${VAR} references are NOT expanded.
# Placeholders such as your_..., <...>, changeme or xxx are rejected: put real values or
# leave the line empty.
"""

_PLAIN = re.compile(r"[^\s#'\"\\$]*")  # a value dotenv reads back unchanged without quotes


def render() -> str:
    """The text of ``.env.example``."""
    lines = [PREAMBLE.rstrip("\n")]
    for spec in SETTINGS_SPEC:
        if spec.section:
            lines += ["", f"# --- {spec.section} ".ljust(WIDTH, "-")]
        about = f"{spec.help} Secret: masked in logs and errors." if spec.secret else spec.help
        lines += textwrap.wrap(about, WIDTH, initial_indent="# ", subsequent_indent="# ", break_long_words=False,
                               break_on_hyphens=False)
        if not _PLAIN.fullmatch(spec.default):
            msg = f"the default of {spec.name} needs quoting in a .env file: {spec.default!r}"
            raise ValueError(msg)
        lines.append(f"# {spec.name}=" if spec.secret else f"{spec.name}={spec.default}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
