"""Every reference in the sources resolves inside the repository, so the docs cannot rot.

The code cites two documents that live in ``docs/``: ``docs/supervision.md`` (item ids such as
``(S13)``, ``(J52–J56)``, "checklist J", and the tests that prove each item) and
``docs/upbit-api.md`` (sections such as ``§1.3`` and source tags such as ``[D-orderrate]``). This
test scans the product and test sources, README and the docs, and fails on:

- a path outside the repository (the shared workspace the notes were first written in);
- a document named that does not exist (``upbit-api.md`` alone, from ``exchange/``, is not a file);
- a section (``§N``) that is not a heading of the document cited;
- a supervision id or checklist group that docs/supervision.md does not define;
- a cited test (``tests/<file>.py::<test name>``) that does not exist;
- a checklist row that neither names a test nor says "not covered" or "not applicable".
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SELF = Path(__file__).resolve()
SUPERVISION = ROOT / "docs" / "supervision.md"
UPBIT = ROOT / "docs" / "upbit-api.md"

SUFFIXES = {".py", ".md", ".sh", ".toml", ".sql", ".txt", ".cfg", ".ini"}
SKIPPED_DIRS = {".git", "var", "node_modules", "__pycache__"}

URL = re.compile(r"\w+://\S+")
OUTSIDE = re.compile(r"(?:/work|\.\.)/shared/")
DOC_NAME = re.compile(r"(?<![\w/.-])((?:\.\./|/)?(?:[\w.-]+/)*(?:supervision|upbit-api)\.md)\b")
DOCS_PATH = re.compile(r"(?<![\w/.-])(docs/[\w./-]*\w)")
SECTION = re.compile(r"§\s?(\d+(?:\.\d+)*)")
HEADING = re.compile(r"^#{2,4}\s+(\d+(?:\.\d+)*)\.?\s", re.MULTILINE)
S_ID = re.compile(r"\bS(\d{1,2})\b")
ID = r"[A-KPS]\d{1,2}"
ID_LIST = re.compile(rf"[(\[]\s*({ID}(?:\s*(?:[–,-]|and)\s*{ID})*)\s*[)\]]")
ID_RANGE = re.compile(rf"({ID})\s*[–-]\s*({ID})")
CHECKLIST_GROUP = re.compile(r"\b[Cc]hecklist ([A-Z])\b")
TEST_CITATION = re.compile(r"\b(tests/[\w/]+\.py)::(test_\w+)")
BRACKETS = re.compile(r"\[([^\]]*)\]")
SOURCE_TAG = re.compile(r"(?<![\w-])D-[A-Za-z0-9][\w.-]*\w")


@dataclass(frozen=True, slots=True)
class Line:
    path: Path
    number: int
    text: str  # URLs removed

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.number}: {self.text.strip()}"


def _scanned_files() -> Iterator[Path]:
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.startswith(".venv")
                         and not d.endswith(".egg-info"))
        for name in sorted(files):
            path = Path(folder) / name
            if path.suffix in SUFFIXES and path != SELF:
                yield path


@cache
def _lines() -> tuple[Line, ...]:
    lines: list[Line] = []
    for path in _scanned_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        lines.extend(Line(path, n, URL.sub("", raw)) for n, raw in enumerate(text.splitlines(), 1))
    return tuple(lines)


def _resolve(line: Line, name: str) -> Path | None:
    """The repository file ``name`` designates, read from the root or from the citing file's folder."""
    for base in (ROOT, line.path.parent):
        candidate = (base / name).resolve()
        if candidate.is_file() and candidate.is_relative_to(ROOT):
            return candidate
    return None


@cache
def _lines_of(path: Path) -> tuple[Line, ...]:
    return tuple(line for line in _lines() if line.path == path)


@cache
def _headings(doc: Path) -> frozenset[str]:
    return frozenset(HEADING.findall(doc.read_text(encoding="utf-8")))


@cache
def _checklist_ids() -> frozenset[str]:
    """The checklist items of docs/supervision.md §3 (table rows ``| J52 |``)."""
    return frozenset(re.findall(r"^\| ([A-K]\d+) \|", SUPERVISION.read_text(encoding="utf-8"), re.MULTILINE))


@cache
def _defined_ids() -> frozenset[str]:
    """Every item id docs/supervision.md defines: S, P and E bullets, and the checklist items."""
    bullets = re.findall(r"^- \*\*([SPE]\d+)\*\*", SUPERVISION.read_text(encoding="utf-8"), re.MULTILINE)
    return frozenset(bullets) | _checklist_ids()


def _ids_in(group: str) -> list[str]:
    """The ids of one bracketed list, ranges expanded (``S25–S27`` → S25, S26, S27)."""
    ids = re.findall(ID, group)
    for first, last in ID_RANGE.findall(group):
        if first[0] != last[0] or int(first[1:]) > int(last[1:]):
            ids.append(f"{first}–{last}")  # not a range of one kind: reported as unknown
            continue
        ids.extend(f"{first[0]}{n}" for n in range(int(first[1:]), int(last[1:]) + 1))
    return ids


def _problems(check: str) -> list[str]:
    found = []
    for line in _lines():
        problem = CHECKS[check](line)
        if problem:
            found.append(f"{line}\n    -> {problem}")
    return found


def _outside(line: Line) -> str | None:
    return "a path outside the repository: the document belongs in docs/" if OUTSIDE.search(line.text) else None


def _missing_document(line: Line) -> str | None:
    names = DOC_NAME.findall(line.text) + DOCS_PATH.findall(line.text)
    missing = [n for n in names if _resolve(line, n) is None]
    return f"no such file in the repository: {', '.join(missing)} (write docs/…)" if missing else None


def _cited_document_before(line: Line, column: int) -> Path | None:
    """The document a ``§`` at ``column`` refers to: the last named on the line, else earlier in the file."""
    named = [m for m in DOC_NAME.finditer(line.text) if m.start() < column]
    if named:
        return _resolve(line, named[-1].group(1))
    if line.path.parent == ROOT / "docs":
        return line.path
    for earlier in reversed(_lines_of(line.path)[: line.number - 1]):
        names = DOC_NAME.findall(earlier.text)
        if names:
            return _resolve(earlier, names[-1])
    return None


def _missing_section(line: Line) -> str | None:
    for match in SECTION.finditer(line.text):
        doc = _cited_document_before(line, match.start())
        if doc is None:
            return f"§{match.group(1)} of which document? Name docs/supervision.md or docs/upbit-api.md"
        if match.group(1) not in _headings(doc):
            return f"§{match.group(1)} is not a section of {doc.relative_to(ROOT)}"
    return None


def _unknown_id(line: Line) -> str | None:
    cited = [f"S{n}" for n in S_ID.findall(line.text)]
    for group in ID_LIST.findall(line.text):
        cited.extend(_ids_in(group))
    unknown = sorted({i for i in cited if i not in _defined_ids()})
    groups = {g.upper() for g in CHECKLIST_GROUP.findall(line.text)}
    unknown += [f"checklist {g}" for g in sorted(groups) if not any(i[0] == g for i in _checklist_ids())]
    return f"not defined in docs/supervision.md: {', '.join(unknown)}" if unknown else None


def _missing_test(line: Line) -> str | None:
    missing = []
    for file, name in TEST_CITATION.findall(line.text):
        path = ROOT / file
        if not path.is_file() or not re.search(rf"^\s*(?:async )?def {name}\(", path.read_text("utf-8"), re.MULTILINE):
            missing.append(f"{file}::{name}")
    return f"no such test: {', '.join(missing)}" if missing else None


@cache
def _source_tags() -> str:
    return UPBIT.read_text(encoding="utf-8").split("## Sources", 1)[-1]


def _unknown_source_tag(line: Line) -> str | None:
    tags = [tag for content in BRACKETS.findall(line.text) for tag in SOURCE_TAG.findall(content)]
    unknown = [t for t in tags if not re.search(rf"(?<![\w.-]){re.escape(t)}(?![\w-]|\.\w)", _source_tags())]
    return f"source tag not listed in docs/upbit-api.md, Sources: {', '.join(unknown)}" if unknown else None


CHECKS = {
    "outside the repository": _outside,
    "missing document": _missing_document,
    "missing section": _missing_section,
    "unknown supervision id": _unknown_id,
    "missing test": _missing_test,
    "unknown source tag": _unknown_source_tag,
}


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_every_reference_resolves(check: str) -> None:
    problems = _problems(check)
    assert not problems, f"{len(problems)} reference(s) that do not resolve:\n" + "\n".join(problems)


def test_the_scan_sees_the_references_it_checks() -> None:
    # Guards the checker itself: an over-eager skip list or a broken pattern would pass vacuously.
    text = "\n".join(str(line) for line in _lines())
    assert "otp/core.py" in text and "(S13)" in text and "docs/upbit-api.md §" in text
    assert {"S1", "S47", "A1", "J52", "K61", "P11", "E4"} <= _defined_ids()
    assert {"1", "1.2", "1.3", "2", "3", "4", "5"} <= _headings(UPBIT)
    assert {"2", "3", "4", "6"} <= _headings(SUPERVISION)


def test_every_checklist_row_names_its_tests_or_says_why_not() -> None:
    rows = re.findall(r"^\| ([A-K]\d+) \|(.*)\|\s*$", SUPERVISION.read_text(encoding="utf-8"), re.MULTILINE)
    numbers = sorted(int(i[1:]) for i, _ in rows)
    assert numbers == list(range(1, 62)), "checklist items 1..61, each once"
    silent = [i for i, cells in rows if not (TEST_CITATION.search(cells) or re.search(r"not (covered|applicable)", cells))]
    assert not silent, f"checklist rows with neither a test nor 'not covered'/'not applicable': {silent}"


def test_every_semantic_item_is_defined_once_in_order() -> None:
    text = SUPERVISION.read_text(encoding="utf-8")
    s_ids = [int(n) for n in re.findall(r"^- \*\*S(\d+)\*\*", text, re.MULTILINE)]
    assert s_ids == list(range(1, len(s_ids) + 1)), "S ids are numbered 1..n, each once, in order"


def test_readme_links_both_documents() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/supervision.md)" in readme
    assert "(docs/upbit-api.md)" in readme
