"""Links and section references in the docs resolve: every relative Markdown link points at a file that exists and,
with an anchor, at a heading there; every "README, Section" or "docs/clusters.md, Section" that code, presets,
comments and docs point a reader at names a heading of that file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpers import markdown

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = ["README.md", "docs/clusters.md", "docs/protocol.md", "benchmarks/RESULTS.md"]
# "README, "Calibration"", "README.md, Clusters)", "docs/clusters.md, Security": a file, then a section's name
REFERENCE = re.compile(r'(README(?:\.md)?|docs/clusters\.md), (?:"([^"]+)"|([A-Z][\w-]*(?: [a-z][\w-]*)*))')
SOURCES = ["sweep", "clusters", "data", "evaluation", "models", "benchmarks", "docs", "examples"]
SUFFIXES = {".py", ".yaml", ".yml", ".md", ".sh", ".cfg", ""}


def _broken_links(path: Path, root: Path = REPO) -> list[str]:
    """The links of the Markdown file `path` that resolve to no file, or to no heading of the file they name."""
    broken = []
    for _, target in markdown.links(path.read_text()):
        if re.match(r"^[a-z]+:", target):
            continue  # https:, mailto:: not checked here
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target}: no file {linked}")
        elif anchor and linked.suffix == ".md":
            if anchor not in {heading.anchor for heading in markdown.headings(linked.read_text())}:
                broken.append(f"{target}: no heading #{anchor} in {linked.relative_to(root)}")
    return broken


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_relative_link_resolves(document):
    assert _broken_links(REPO / document) == []


def test_a_link_to_a_missing_heading_or_file_is_caught(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\n## Security\n\n[ok](#security) [bad](#clusters) [gone](b.md)\n")
    assert _broken_links(tmp_path / "docs" / "a.md", tmp_path) == [
        "#clusters: no heading #clusters in docs/a.md",
        f"b.md: no file {tmp_path.resolve()}/docs/b.md",
    ]


def _references() -> list[tuple[Path, str, str]]:
    """(file, the document named, the section named) for every section reference in the sources."""
    files = [REPO / "Makefile", REPO / "setup.cfg"]
    for folder in SOURCES:
        files += [p for p in (REPO / folder).rglob("*") if p.is_file() and p.suffix in SUFFIXES]
    found = []
    for path in files:
        for match in REFERENCE.finditer(path.read_text(errors="replace")):
            found.append((path, match.group(1), match.group(2) or match.group(3)))
    return found


def test_every_section_a_source_points_at_is_a_heading_there():
    references = _references()
    assert any(document.startswith("README") for _, document, _ in references)  # the pattern still finds them
    titles = {
        "README": [h.title for h in markdown.headings((REPO / "README.md").read_text())],
        "docs/clusters.md": [h.title for h in markdown.headings((REPO / "docs" / "clusters.md").read_text())],
    }
    wrong = [
        f"{path.relative_to(REPO)}: {document}, {name!r}"
        for path, document, name in references
        if not any(title.startswith(name) for title in titles["README" if document.startswith("README") else document])
    ]
    assert wrong == [], "these point at sections that are not (or no longer) there"
