"""Reading the project's Markdown as the docs tests need it: prose paragraphs without code, headings with the anchors
GitHub gives them, the sections under a heading, the marked sections (`<!-- name -->` … `<!-- /name -->`) and links."""

from __future__ import annotations

import re
from dataclasses import dataclass

FENCE = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n.*?^[ \t]*\1[ \t]*$", re.M | re.S)  # indented too (in lists)
HEADING = re.compile(r"^(#{1,6}) +(.+?) *#*$", re.M)
MARKED = re.compile(r"<!-- ([^/\s][^>]*?) -->(.*?)<!-- /\1 -->", re.S)
LINK = re.compile(r"!?\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)\)")
INLINE_CODE = re.compile(r"`[^`\n]*`")
HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)


@dataclass(frozen=True)
class Heading:
    """A Markdown heading: its level (1 for #), its title as written, its GitHub anchor and where it starts."""

    level: int
    title: str
    anchor: str
    start: int


def normalized(text: str) -> str:
    """`text` with the typographic minus as '-', no-break spaces as spaces and every run of whitespace as one space."""
    return re.sub(r"\s+", " ", text.replace("\u2212", "-").replace("\u00a0", " ").replace("\u202f", " ")).strip()


def without_code_blocks(text: str) -> str:
    """`text` with every fenced code block blanked out: spaces for its characters, so every offset stays the same."""
    return FENCE.sub(lambda match: re.sub(r"[^\n]", " ", match.group(0)), text)


def code_blocks(text: str) -> list[str]:
    """The fenced code blocks of `text`, each with its fences."""
    return [match.group(0) for match in FENCE.finditer(text)]


def paragraphs(text: str) -> list[str]:
    """The prose paragraphs of `text` (blank-line separated, code blocks left out), each as written."""
    return [block.strip() for block in re.split(r"\n\s*\n", without_code_blocks(text)) if block.strip()]


def github_anchor(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation but '-' and '_' dropped, spaces as '-'."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def headings(text: str) -> list[Heading]:
    """Every heading of `text` outside code blocks; a repeated anchor gets -1, -2, … as on GitHub."""
    seen: dict[str, int] = {}
    found = []
    for match in HEADING.finditer(without_code_blocks(text)):
        anchor = github_anchor(match.group(2))
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        unique = f"{anchor}-{count}" if count else anchor
        found.append(Heading(len(match.group(1)), match.group(2), unique, match.start()))
    return found


def section(text: str, anchor: str) -> str:
    """The text under the heading with `anchor`, up to the next heading of the same or a higher level."""
    all_headings = headings(text)
    for index, heading in enumerate(all_headings):
        if heading.anchor == anchor:
            end = next((h.start for h in all_headings[index + 1 :] if h.level <= heading.level), len(text))
            return text[heading.start : end]
    raise KeyError(anchor)


def marked_sections(text: str) -> dict[str, str]:
    """The marked sections of `text`: name -> the text between `<!-- name -->` and `<!-- /name -->`."""
    return {match.group(1): match.group(2) for match in MARKED.finditer(text)}


def links(text: str) -> list[tuple[str, str]]:
    """(text, target) of every Markdown link and image outside code blocks and inline code."""
    prose = INLINE_CODE.sub("", without_code_blocks(text))
    return [(match.group("text"), match.group("target")) for match in LINK.finditer(prose)]


def plain(paragraph: str, keep_code: bool = False) -> str:
    """A paragraph as read: HTML comments and link targets dropped (link texts kept), inline code dropped (or, with
    `keep_code`, kept without its backticks), normalized."""
    text = LINK.sub(lambda match: match.group("text"), HTML_COMMENT.sub("", paragraph))
    text = text.replace("`", "") if keep_code else INLINE_CODE.sub("", text)
    return normalized(text)
