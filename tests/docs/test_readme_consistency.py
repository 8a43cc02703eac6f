"""The README cannot drift from what it describes: its stated defaults, its quoted figures and its durations are held
to their sources. The conventions a README writer follows (README.md's source repeats them in a comment at its top):

1. **Defaults.** A phrase of DEFAULT_PHRASES states a default of the embedded preset (sweep/presets/default.yaml, read
   by `sweep.read_spec`), of the schema or of a command; each phrase must occur, and every occurrence must give the
   value the source has. The trial-config block under "One trial" lists every trial key at its default; the
   "**Spec defaults.**" paragraph gives each spec key's default as `key: value`.
2. **Figures.** A paragraph that quotes measured figures from benchmarks/RESULTS.md links to the RESULTS.md heading
   they stand under (`[…](benchmarks/RESULTS.md#anchor)`). Every figure in it — a number with a decimal point, a
   percentage, a duration — must stand in a marked section (`<!-- name -->` … `<!-- /name -->`) under a heading the
   paragraph links to (the sign is not compared: −0.3 and -0.3 are the same figure). A paragraph that says "stale"
   is not checked. A paragraph that names RESULTS.md and holds figures must carry such a link.
3. **Durations.** Where the README says how long `make X` takes (the first duration after `make X` in a sentence or a
   code line), it says what the comment above target X in the Makefile says, when that comment says it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from data.glyphs import VARIANTS
from data.section import DatasetConfig
from sweep import read_spec
from sweep.schema.hyperparameters import HYPERPARAMETER
from sweep.schema.spec import Promotion, Resources, Scheduler, Searcher, SweepSpec
from sweep.schema.trial_config import TrialConfig
from sweep.study.margins import DEFAULT_COUNT
from sweep.study.request import DEFAULT_HOLDOUT_FRACTION
from sweep.workflows.calibration_seeds import DEFAULT_SEEDS, TUNED_SEEDS

from helpers import markdown

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
RESULTS = REPO / "benchmarks" / "RESULTS.md"
RESULTS_LINK = re.compile(r"^(?:\.\./)?benchmarks/RESULTS\.md(?:#(?P<anchor>.+))?$")
SPEC = read_spec("default")
GLYPHS = VARIANTS[SPEC.dataset.name]

# phrase (a regex on the README's prose, whitespace and minus signs normalized) -> what each group must read, from
# the source that sets it. Every phrase must occur at least once; every occurrence is checked.
Expected = Callable[[], tuple[Any, ...]]
DEFAULT_PHRASES: dict[str, Expected] = {
    # the embedded default preset
    r"\*\*(\d+) trials, (\d+) at a time\*\*": lambda: (SPEC.num_samples, SPEC.max_concurrent),
    r"the default's (\d+) trials": lambda: (SPEC.num_samples,),
    r"m = (-?[\d.]+) \(the baseline\) and the paper's m = (-?[\d.]+) first": lambda: tuple(
        point["margin"] for point in SPEC.points_to_evaluate
    ),
    r"m ∈ \[(-?[\d.]+), (-?[\d.]+)\]": lambda: tuple(SPEC.search["margin"].uniform or ()),
    r"after (\d+) start-up trials": lambda: (SPEC.searcher.n_startup_trials,),
    r"β = ([\d.]+), weight decay ([\d.e-]+) and DropBlock (off|on) fixed": lambda: (
        SPEC.search["scale"].fixed,
        SPEC.search["weight_decay"].fixed,
        "off" if SPEC.search["drop_rate"].fixed == 0 else "on",
    ),
    r"(\d+) epochs at (\d+) px": lambda: (SPEC.epochs, SPEC.dataset.image_size),
    r"epochs at \d+ px, batch (\d+)": lambda: (SPEC.batch_size,),
    r"validated every (\d+) epochs on (\d+) fixed episodes per shot": lambda: (
        SPEC.val_every,
        SPEC.validation.episodes,
    ),
    r"rung (?:sits )?at (?:epoch )?(\d+)": lambda: (SPEC.scheduler.grace_period,),
    r"chosen among epochs (\d+)[–-](\d+)": lambda: (SPEC.selection_from_epoch, SPEC.epochs),
    r"promotes the best (\d+) and the baseline": lambda: (SPEC.promotion.top_k,),
    r"the (\d+)-episode test": lambda: (SPEC.promotion.test_episodes,),
    # the glyph set the preset names
    r"\((\d+) base classes × (\d+) images": lambda: (GLYPHS.classes_per_split[0], GLYPHS.samples_per_class),
    r"(\d+) base / (\d+) val / (\d+) novel classes": lambda: tuple(GLYPHS.classes_per_split or ()),
    r"(\d+) images each at (\d+) px": lambda: (GLYPHS.samples_per_class, GLYPHS.image_size),
    r"([\d,]+) base images": lambda: (GLYPHS.classes_per_split[0] * GLYPHS.samples_per_class,),
    # the schema
    r"fixed at its default \(β ([\d.]+), weight decay ([\d.e-]+), DropBlock rate ([\d.]+), "
    r"block size (\d+)\)": lambda: (
        HYPERPARAMETER["scale"].search_default,
        HYPERPARAMETER["weight_decay"].search_default,
        HYPERPARAMETER["drop_rate"].search_default,
        HYPERPARAMETER["dropblock_size"].search_default,
    ),
    # the commands
    r"--seeds defaults to ([\d ]+);": lambda: (" ".join(map(str, DEFAULT_SEEDS)),),
    r"--tuned-seeds \(default ([\d ]+):": lambda: (" ".join(map(str, TUNED_SEEDS)),),
    r"a seeded (\d+) % of each base class": lambda: (round(DEFAULT_HOLDOUT_FRACTION * 100),),
    r"By default (\d+) margins": lambda: (DEFAULT_COUNT,),
}


def _prose(text: str) -> str:
    """The prose of `text` (no code blocks), inline code unwrapped, normalized: what DEFAULT_PHRASES are matched on."""
    return markdown.normalized(markdown.without_code_blocks(text).replace("`", ""))


def _same(written: str, expected: Any) -> bool:
    """Whether the README's `written` value states `expected` (numbers compared as numbers)."""
    if isinstance(expected, bool) or not isinstance(expected, int | float):
        return written == str(expected)
    return float(written.replace(",", "")) == pytest.approx(float(expected))


@pytest.mark.parametrize("phrase", list(DEFAULT_PHRASES))
def test_every_stated_default_is_the_sources(phrase):
    prose = _prose(README)
    matches = list(re.finditer(phrase, prose))
    assert matches, f"the README no longer states /{phrase}/: state it, or take it out of DEFAULT_PHRASES"
    expected = DEFAULT_PHRASES[phrase]()
    for match in matches:
        assert len(match.groups()) == len(expected), phrase
        wrong = [(w, e) for w, e in zip(match.groups(), expected) if not _same(w, e)]
        assert not wrong, f"README says {match.group(0)!r}, the source has {expected} (README, source: {wrong})"


def _readme_section(title_start: str) -> str:
    """The README section whose heading starts with `title_start`."""
    heading = next(h for h in markdown.headings(README) if h.title.startswith(title_start))
    return markdown.section(README, heading.anchor)


def test_the_trial_config_block_lists_every_trial_key_at_its_default():
    block = next(b for b in markdown.code_blocks(_readme_section("One trial")) if b.startswith("```yaml"))
    written = yaml.safe_load(block.split("\n", 1)[1].rsplit("```", 1)[0])
    required = {"backbone", "loss"}
    assert set(written) == set(TrialConfig.model_fields), "the block lists the trial keys, no more, no fewer"
    assert set(written["dataset"]) == set(DatasetConfig.model_fields)
    for name, field in TrialConfig.model_fields.items():
        if name in required or name == "dataset":
            continue
        default = field.get_default(call_default_factory=True)
        value = default.model_dump() if hasattr(default, "model_dump") else default
        assert written[name] == value, f"README's trial block: {name}: {written[name]!r}, the default is {value!r}"
    dataset_defaults = {name: f.default for name, f in DatasetConfig.model_fields.items() if name != "name"}
    for name, default in dataset_defaults.items():
        value = list(default) if isinstance(default, tuple) else default
        assert written["dataset"][name] == value, f"README's trial block: dataset.{name}: {written['dataset'][name]!r}"


def test_the_spec_defaults_paragraph_gives_every_spec_keys_default():
    paragraph = next(p for p in markdown.paragraphs(_readme_section("Sweeps")) if p.startswith("**Spec defaults.**"))
    stated = {}
    for code in re.findall(r"`([a-z_]+: [^`]+)`", paragraph.replace("\n", " ")):
        stated.update(yaml.safe_load("{" + code + "}"))
    own = {name: field for name, field in SweepSpec.model_fields.items() if name not in TrialConfig.model_fields}
    with_default = {name for name, field in own.items() if not field.is_required()}
    assert set(stated) == with_default, "the paragraph states each spec key's default (and only those)"
    sections = {"scheduler": Scheduler(), "searcher": Searcher(), "resources": Resources(), "promotion": Promotion()}
    for name, value in stated.items():
        default = sections[name].model_dump() if name in sections else own[name].get_default(call_default_factory=True)
        assert value == default, f"README's spec defaults: {name}: {value!r}, the schema has {default!r}"


def test_the_readme_spec_example_is_a_valid_spec():
    block = next(b for b in markdown.code_blocks(_readme_section("Sweeps")) if b.startswith("```yaml"))
    from sweep.schema.spec import parse

    spec = parse(yaml.safe_load(block.split("\n", 1)[1].rsplit("```", 1)[0]), "README's spec example")
    assert spec.name and spec.search["margin"].kind == "uniform"


# --- figures quoted from RESULTS.md

NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
UNIT = r"(?:%|s\b|min\b|minutes?\b|h\b|hours?\b)"
FIGURE_WITH_UNIT = re.compile(rf"({NUMBER})(?:\s*[–-]\s*({NUMBER}))?\s*{UNIT}")
DECIMAL = re.compile(r"(?<![\d.])\d+\.\d+(?![\d.])")


def figures(text: str) -> set[str]:
    """The figures of a paragraph: every number with a decimal point, and every number of a percentage or a duration
    (both ends of a range), as written without sign and thousands separators."""
    found = set(DECIMAL.findall(text))
    for match in FIGURE_WITH_UNIT.finditer(text):
        found.update(number for number in match.groups() if number)
    return {number.replace(",", "") for number in found}


def numbers(text: str) -> set[str]:
    """Every number in `text`, without sign and thousands separators."""
    return {number.replace(",", "") for number in re.findall(NUMBER, text)}


def quoting_paragraphs(document: str) -> list[tuple[str, list[str]]]:
    """(paragraph, the RESULTS.md anchors it links to) for every paragraph that names RESULTS.md or links to it."""
    found = []
    for paragraph in markdown.paragraphs(document):
        anchors = [
            match.group("anchor") or ""
            for _, target in markdown.links(paragraph)
            if (match := RESULTS_LINK.match(target))
        ]
        if anchors or "RESULTS.md" in markdown.plain(paragraph):
            found.append((paragraph, [anchor for anchor in anchors if anchor]))
    return found


def unsourced_figures(paragraph: str, anchors: list[str], results: str) -> set[str]:
    """The figures of `paragraph` that stand in no marked section under the RESULTS.md headings `anchors`."""
    sourced: set[str] = set()
    for anchor in anchors:
        for body in markdown.marked_sections(markdown.section(results, anchor)).values():
            sourced |= numbers(body)
    return figures(markdown.plain(paragraph)) - sourced


DOCUMENTS = ["README.md", "docs/clusters.md"]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_figure_quoted_from_results_stands_in_a_marked_section_there(document):
    results = RESULTS.read_text()
    anchors_there = {heading.anchor for heading in markdown.headings(results)}
    checked = 0
    for paragraph, anchors in quoting_paragraphs((REPO / document).read_text()):
        text = markdown.plain(paragraph)
        if "stale" in text.lower() or not figures(text):
            continue
        assert anchors, f"{document}: a paragraph quotes figures from RESULTS.md without linking its heading: {text}"
        assert set(anchors) <= anchors_there, f"{document}: no RESULTS.md heading {set(anchors) - anchors_there}"
        missing = unsourced_figures(paragraph, anchors, results)
        assert not missing, (
            f"{document}: {sorted(missing)} stand in no marked section of RESULTS.md under {anchors}; "
            f"the paragraph: {text}"
        )
        checked += 1
    assert checked or document != "README.md", "the README quotes figures from RESULTS.md: none were checked"


def test_a_figure_that_is_not_in_the_marked_section_is_caught():
    results = "## Speed\n\n<!-- speed -->\n1.25 s a step, 40 % busy\n<!-- /speed -->\n\nformerly 2.50 s\n"
    good = "Measured ([RESULTS.md](benchmarks/RESULTS.md#speed)): −1.25 s a step and 40 % busy."
    assert unsourced_figures(good, ["speed"], results) == set()
    assert unsourced_figures(good.replace("1.25", "1.26"), ["speed"], results) == {"1.26"}
    assert unsourced_figures(good.replace("40 %", "45 %"), ["speed"], results) == {"45"}
    assert unsourced_figures("was 2.50 s (…)", ["speed"], results) == {"2.50"}  # outside the marks: not a source


# --- durations of make targets

DURATION = re.compile(
    r"(?P<hour>an hour)"
    r"|(?P<h>\d+(?:\.\d+)?)\s*(?:h|hours?)\b"
    r"|(?P<m>\d+)\s*(?:min|minutes?)\b(?:\s*(?P<ms>\d+)\s*s\b)?"
    r"|(?P<s>\d+(?:\.\d+)?)\s*s\b"
)


def seconds(match: re.Match[str]) -> float:
    """The duration a DURATION match states, in seconds."""
    if match.group("hour"):
        return 3600.0
    if match.group("h"):
        return float(match.group("h")) * 3600
    if match.group("m"):
        return int(match.group("m")) * 60 + int(match.group("ms") or 0)
    return float(match.group("s"))


def makefile_durations(makefile: str) -> dict[str, float]:
    """target -> the first duration in the comment lines right above it, for the targets whose comment states one."""
    durations = {}
    lines = makefile.splitlines()
    for index, line in enumerate(lines):
        target = re.match(r"^([a-z][\w-]*):", line)
        if not target:
            continue
        comment = []
        for above in reversed(lines[:index]):
            if not above.startswith("#"):
                break
            comment.insert(0, above.lstrip("# "))
        found = DURATION.search(" ".join(comment))
        if found:
            durations[target.group(1)] = seconds(found)
    return durations


def readme_durations(readme: str) -> list[tuple[str, float, str]]:
    """(target, seconds, the sentence) for each `make X` the README follows with a duration in the same sentence (a
    prose sentence or a code line), before any other `make` target is named."""
    pieces = []
    for block in markdown.code_blocks(readme):
        pieces += block.splitlines()
    for paragraph in markdown.paragraphs(readme):
        pieces += re.split(r"(?<=[.!?])\s+(?=[A-Z*\[(])", markdown.plain(paragraph, keep_code=True))
    stated = []
    for piece in pieces:
        mentions = list(re.finditer(r"\bmake ([a-z][\w-]*)\b", piece))
        for index, mention in enumerate(mentions):
            end = mentions[index + 1].start() if index + 1 < len(mentions) else len(piece)
            found = DURATION.search(piece, mention.end(), end)
            if found:
                stated.append((mention.group(1), seconds(found), piece))
    return stated


def test_how_long_a_make_target_takes_is_what_the_makefile_says():
    in_makefile = makefile_durations((REPO / "Makefile").read_text())
    compared = []
    for target, value, sentence in readme_durations(README):
        if target in in_makefile:
            assert value == in_makefile[target], (
                f"README: `make {target}` takes {value:g} s, the Makefile's comment says {in_makefile[target]:g} s: "
                f"{sentence}"
            )
            compared.append(target)
    assert {"demo", "calibrate"} <= set(compared), f"README and Makefile both state these durations: {compared}"


def test_durations_are_read_as_seconds():
    stated = readme_durations("Run `make calibrate` (about an hour), then `make efficiency` (30 s).\n")
    assert [(target, value) for target, value, _ in stated] == [("calibrate", 3600.0), ("efficiency", 30.0)]
    assert makefile_durations("# the table (~2 h on 2 busy cores)\ncurves: x\n\nbench: y\n") == {"curves": 7200.0}
    assert [value for _, value, _ in readme_durations("make demo # 7 min 44 s")] == [464.0]
