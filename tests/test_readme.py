"""The README stays a short, correct tour (issue 19): at most 20 kB, every `genbench ...` line of its code blocks
parses against the CLI's argparse parser (parsed, never run), every repository path it names exists, and every
relative link in README.md and docs/ resolves (file and #anchor). Fast: no Ray, no torch."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from genbench.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_BYTES = 20_000
# Top-level folders of the repository whose paths the README names in prose or commands.
PATH_PREFIXES = ("docs", "clusters", "scripts", "benchmarks", "platform", "tests")
PATH_RE = re.compile(rf"(?<![\w/.<>$-])((?:{'|'.join(PATH_PREFIXES)})/[\w./-]*)")
LINK_RE = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE_RE = re.compile(r"^\s*(```|~~~)")


def _lines(path: Path) -> list[tuple[int, str, bool]]:
    """(line number, text, inside a fenced code block) for every line; fence lines themselves are left out."""
    out, fenced = [], False
    for no, line in enumerate(path.read_text().splitlines(), 1):
        if FENCE_RE.match(line):
            fenced = not fenced
            continue
        out.append((no, line, fenced))
    return out


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower()).replace("_", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {_slug(line.lstrip("#")) for _, line, fenced in _lines(path) if not fenced and re.match(r"#{1,6} ", line)}


def _readme_commands() -> list[tuple[int, str]]:
    return [
        (no, line.strip()) for no, line, fenced in _lines(README) if fenced and line.strip().startswith("genbench ")
    ]


def test_readme_is_at_most_20_kb() -> None:
    size = len(README.read_bytes())
    assert size <= MAX_BYTES, (
        f"README.md is {size:,} bytes, over the {MAX_BYTES:,} limit: move reference, how-to or "
        "measurement text to docs/ (docs/measurements/ for dated figures) and link to it"
    )


def test_readme_quick_start_is_the_two_make_commands() -> None:
    assert "## Quick start\n\n```\nmake dry-run\nmake test\n```\n" in README.read_text(), (
        "README.md: the Quick start must stay exactly the two commands `make dry-run` and `make test` in one block"
    )


def test_readme_has_genbench_commands() -> None:
    assert len(_readme_commands()) >= 5, (
        "README.md: expected the everyday tasks to show genbench commands in code blocks"
    )


@pytest.mark.parametrize(("lineno", "line"), _readme_commands(), ids=lambda v: str(v))
def test_readme_command_parses(lineno: int, line: str) -> None:
    argv = shlex.split(line, comments=True)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(argv[1:])
    except SystemExit as exc:
        msg = err.getvalue().strip().splitlines()[-1:] or [f"exit {exc.code}"]
        pytest.fail(
            f"README.md:{lineno}: `{line}` does not parse against genbench's CLI ({msg[0]}); write the "
            "command as `genbench --help` / platform/genbench/cli.py accept it (no [optional] brackets or "
            "a|b alternatives in code blocks; placeholders such as FILE or JOB_ID are fine)"
        )


def _check_link(source: Path, lineno: int, target: str) -> str | None:
    if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("//"):
        return None  # http(s), mailto: not checked here
    file_part, _, anchor = target.partition("#")
    dest = (source.parent / file_part).resolve() if file_part else source
    where = f"{source.relative_to(ROOT)}:{lineno}"
    if not dest.exists():
        return (
            f"{where}: link `{target}` points to {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}, "
            "which does not exist; fix the path (relative to the file that links) or create the file"
        )
    if anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
        return (
            f"{where}: link `{target}`: {dest.relative_to(ROOT)} has no heading with anchor #{anchor}; "
            f"headings there give {sorted(_anchors(dest))}"
        )
    return None


def _link_errors(path: Path) -> list[str]:
    errors = []
    for no, line, fenced in _lines(path):
        if fenced:
            continue
        for target in LINK_RE.findall(line):
            if (error := _check_link(path, no, target)) is not None:
                errors.append(error)
    return errors


def test_readme_links_resolve() -> None:
    errors = _link_errors(README)
    assert not errors, "\n".join(errors)


def test_readme_paths_exist() -> None:
    errors = []
    for no, line, _ in _lines(README):
        for path in PATH_RE.findall(line):
            path = path.rstrip(".,;:")
            if any(ch in path for ch in "*<>") or (ROOT / path).exists():
                continue
            errors.append(
                f"README.md:{no}: `{path}` is named but does not exist in the repository; fix the path, "
                "or write it as a placeholder (<...>) if it is not a file of this repository"
            )
    assert not errors, "\n".join(errors)


def test_docs_links_resolve() -> None:
    docs = sorted((ROOT / "docs").rglob("*.md"))
    assert docs, "docs/ holds no Markdown file"
    errors = [error for doc in docs for error in _link_errors(doc)]
    assert not errors, "\n".join(errors)


def test_docs_index_lists_every_doc() -> None:
    index = (ROOT / "docs" / "README.md").read_text()
    missing = [
        str(doc.relative_to(ROOT / "docs"))
        for doc in sorted((ROOT / "docs").rglob("*.md"))
        if doc.name != "README.md" and f"]({doc.relative_to(ROOT / 'docs').as_posix()})" not in index
    ]
    assert not missing, f"docs/README.md does not link {missing}: add a line for each to its index"
