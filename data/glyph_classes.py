"""The classes of the glyph benchmark: one character per class, grouped by script, each script in one split.

Characters come from the code point ranges in SCRIPTS, keep only those that every font of the script's families
maps (fontTools cmap) and actually draws (neither blank nor the font's .notdef box), and then lose near-identical
look-alikes: a character whose clean rendering, in any of LOOKALIKE_FONTS that draws both, correlates above
LOOKALIKE_CORRELATION with an already kept one (earlier script in SCRIPTS, or earlier code point) is dropped; this
removes Latin A / Greek Alpha / Cyrillic A, l / I / 1, O / 0 / Theta, c / C. The split follows the script, as
Omniglot's follows the alphabet, so val and novel classes come from scripts that base never shows.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from fontTools.ttLib import TTFont

from data.glyph_render import glyph_mask, render_clean

FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"

FONT_FAMILIES: dict[str, tuple[str, ...]] = {
    "dejavu-sans": ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf"),
    "dejavu-serif": ("DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf"),
    "dejavu-mono": (
        "DejaVuSansMono.ttf",
        "DejaVuSansMono-Bold.ttf",
        "DejaVuSansMono-Oblique.ttf",
        "DejaVuSansMono-BoldOblique.ttf",
    ),
    "stix": ("STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf"),
}
ALL_FAMILIES = ("dejavu-sans", "dejavu-serif", "dejavu-mono", "stix")

SPLITS = ("base", "val", "novel")


@dataclass(frozen=True)
class Script:
    """A writing system (or symbol group): its split, its code point ranges (inclusive) and its font families."""

    name: str
    split: str
    ranges: tuple[tuple[int, int], ...]
    families: tuple[str, ...]


# Priority order: on a look-alike clash the character of the earlier script is kept.
# Families per script: those that cover the script (STIX has no Armenian, Hebrew or Georgian; DejaVu Serif and Mono
# have no Hebrew; STIX's italics lack most arrows and operators); a character must be drawn by every listed font.
SCRIPTS: tuple[Script, ...] = (
    Script("latin", "base", ((0x41, 0x5A), (0x61, 0x7A), (0xC0, 0x24F)), ALL_FAMILIES),
    Script("greek", "val", ((0x391, 0x3A9), (0x3B1, 0x3C9), (0x3D0, 0x3FF)), ("dejavu-sans", "dejavu-serif")),
    Script("digits", "val", ((0x30, 0x39),), ALL_FAMILIES),
    Script("cyrillic", "base", ((0x400, 0x4FF),), ("dejavu-sans", "dejavu-serif", "dejavu-mono")),
    Script("armenian", "novel", ((0x531, 0x556), (0x561, 0x586)), ("dejavu-sans", "dejavu-serif", "dejavu-mono")),
    Script("hebrew", "novel", ((0x5D0, 0x5EA),), ("dejavu-sans",)),
    # Georgian's two alphabets are separate alphabets in Omniglot too: the old capitals (Asomtavruli) and Mkhedruli.
    Script("asomtavruli", "val", ((0x10A0, 0x10C5),), ("dejavu-sans", "dejavu-serif")),
    Script("mkhedruli", "novel", ((0x10D0, 0x10FA),), ("dejavu-sans", "dejavu-serif")),
    Script(
        "symbols",
        "base",
        ((0x2190, 0x21FF), (0x2200, 0x22FF), (0x25A0, 0x25FF)),
        ("dejavu-sans", "dejavu-serif", "dejavu-mono"),
    ),
)

KEPT_CATEGORIES = ("Lu", "Ll", "Lt", "Lo", "Nd", "Sm", "So")  # letters, digits, symbols: no marks, spaces, controls
MIN_INK_PIXELS = 20  # a clean mask (GLYPH_FONT_SIZE px) with less ink than this counts as blank
NOTDEF_PROBE = "\U0010fffd"  # a private-use code point no bundled font maps: renders the .notdef box (tofu)
LOOKALIKE_FONTS = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf")  # look-alikes are judged in these
LOOKALIKE_SIZE = 32  # px, side of the clean renderings compared by the look-alike filter
LOOKALIKE_CORRELATION = 0.9  # Pearson correlation above which two characters count as the same class


@dataclass(frozen=True)
class GlyphClass:
    """One class of the benchmark: a character, its script and split, and the font files it is rendered in."""

    char: str
    script: str
    split: str
    font_paths: tuple[str, ...]

    @property
    def name(self) -> str:
        """Stable class name, e.g. "armenian:U+0531"."""
        return f"{self.script}:U+{ord(self.char):04X}"


def font_path(file_name: str) -> str:
    """Absolute path of a font bundled with matplotlib."""
    return str(FONT_DIR / file_name)


def script_font_paths(script: Script) -> tuple[str, ...]:
    """Font files of every family of the script, in table order."""
    return tuple(font_path(name) for family in script.families for name in FONT_FAMILIES[family])


@functools.cache
def mapped_code_points(path: str) -> frozenset[int]:
    """Code points that the font's best Unicode cmap maps to a glyph."""
    with TTFont(path, lazy=True) as font:
        return frozenset(font.getBestCmap() or {})


def is_drawn(char: str, path: str) -> bool:
    """True when the font maps `char` and draws visible ink for it that is not its .notdef box (tofu)."""
    if ord(char) not in mapped_code_points(path):
        return False
    mask = glyph_mask(char, path)
    if int(np.asarray(mask).sum(dtype=np.int64)) < MIN_INK_PIXELS * 255:
        return False
    notdef = glyph_mask(NOTDEF_PROBE, path)
    return mask.size != notdef.size or mask.tobytes() != notdef.tobytes()


def candidate_chars(script: Script) -> list[str]:
    """Characters of the script's ranges that are letters/digits/symbols without a decomposition, drawn by all fonts."""
    paths = script_font_paths(script)
    chars = []
    for start, stop in script.ranges:
        for code_point in range(start, stop + 1):
            char = chr(code_point)
            if unicodedata.category(char) not in KEPT_CATEGORIES or unicodedata.decomposition(char):
                continue
            if all(is_drawn(char, path) for path in paths):
                chars.append(char)
    return chars


def standardised_renderings(chars: list[str], file_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Clean renderings in one font, zero-mean and unit-norm: (vectors [n, size * size], drawn [n] bool)."""
    path = font_path(file_name)
    vectors = np.zeros((len(chars), LOOKALIKE_SIZE * LOOKALIKE_SIZE))
    drawn = np.array([is_drawn(char, path) for char in chars], dtype=bool)
    for i in np.flatnonzero(drawn):
        flat = render_clean(chars[i], path, LOOKALIKE_SIZE).ravel()
        flat = flat - flat.mean()
        vectors[i] = flat / np.sqrt(flat @ flat)
    return vectors, drawn


def lookalike_similarity(chars: list[str]) -> np.ndarray:
    """Pairwise correlation of clean renderings, the maximum over LOOKALIKE_FONTS that draw both: [n, n]."""
    similarity = np.full((len(chars), len(chars)), -1.0)
    for file_name in LOOKALIKE_FONTS:
        vectors, drawn = standardised_renderings(chars, file_name)
        both_drawn = drawn[:, None] & drawn[None, :]
        similarity = np.maximum(similarity, np.where(both_drawn, vectors @ vectors.T, -1.0))
    return similarity


def drop_lookalikes(candidates: list[tuple[Script, str]]) -> list[tuple[Script, str]]:
    """Keep each candidate (in priority order) unless it looks like an already kept one."""
    similarity = lookalike_similarity([char for _, char in candidates])
    kept: list[int] = []
    for i in range(len(candidates)):
        if not kept or float(similarity[i, kept].max()) <= LOOKALIKE_CORRELATION:
            kept.append(i)
    return [candidates[i] for i in kept]


@functools.lru_cache(maxsize=1)
def glyph_classes() -> tuple[GlyphClass, ...]:
    """All classes of the benchmark, by split (base, val, novel), then script order of SCRIPTS, then code point."""
    candidates = [(script, char) for script in SCRIPTS for char in candidate_chars(script)]
    kept = sorted(drop_lookalikes(candidates), key=lambda pair: SPLITS.index(pair[0].split))  # stable sort
    return tuple(GlyphClass(char, script.name, script.split, script_font_paths(script)) for script, char in kept)
