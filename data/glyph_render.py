"""Render one glyph sample: a character in a font, distorted, cluttered, tinted and noisy -> uint8 [S, S, 3].

Every random choice comes from the numpy Generator passed in, so a sample depends only on that generator's state.
The glyph (affine-warped by PIL) and the distractor strokes are drawn on a canvas SUPERSAMPLE times larger than the
output; stroke variation (a separable min/max filter) and box downsampling are numpy; grey levels, illumination
ramp, tint and noise are applied to a whole class at once with numpy at the output size.

The strengths below were calibrated with a former benchmark script (today `negmargin calibrate` measures the same;
conv4, cosine softmax β = 10, 10 epochs on base, CPU): novel 5-way 1-shot ~64%, 5-shot ~81% (clean renderings with
mild distortions saturate at ~98%).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# --- rendering ---------------------------------------------------------------------------------------------------
SUPERSAMPLE = 2  # canvas side = SUPERSAMPLE * output side
GLYPH_FONT_SIZE = 48  # px; clean glyph masks are rendered at this size, then fitted onto the canvas
GLYPH_BOX_FRACTION = 0.62  # before scaling, a glyph's longer side spans this fraction of the canvas

# --- geometric distortion (uniform ranges) --------------------------------------------------------------------------
ROTATION_DEG = 30.0  # rotation in [-30°, 30°]
SCALE_RANGE = (0.6, 1.2)  # overall scale factor
ASPECT_LOG_JITTER = 0.15  # x scale * e^a, y scale * e^-a, a in [-0.15, 0.15]
SHEAR_MAX = 0.3  # horizontal shear factor in [-0.3, 0.3]
TRANSLATION_FRACTION = 0.12  # centre shift in [-0.12, 0.12] * canvas side, per axis

# --- stroke variation on the supersampled canvas: (filter radius in px, probability); < 0 erodes, > 0 dilates -----
STROKE_RADII: tuple[tuple[int, float], ...] = (
    (-1, 0.3),  # thinner strokes (3x3 min filter)
    (0, 0.3),
    (1, 0.25),  # bolder strokes (3x3 max filter)
    (2, 0.15),  # much bolder strokes (5x5 max filter)
)

# --- clutter: random straight lines and arcs ------------------------------------------------------------------------
DISTRACTOR_COUNT_PROBS = (0.35, 0.4, 0.25)  # P(0), P(1), P(2) distractor strokes
DISTRACTOR_WIDTH_RANGE = (1, 4)  # canvas px, inclusive
DISTRACTOR_INTENSITY_RANGE = (0.5, 1.0)  # relative to the glyph's ink

# --- photometry (grey levels in [0, 1]) -----------------------------------------------------------------------------
CONTRAST_RANGE = (0.25, 0.9)  # |foreground - background|
GRADIENT_MAX = 0.25  # background illumination ramp across the image
TINT_MAX = 0.25  # per-channel gain in [1 - 0.25, 1 + 0.25]
NOISE_SIGMA_MAX = 0.12  # Gaussian pixel noise, sigma in [0, 0.12]

Matrix2 = tuple[float, float, float, float]  # a 2x2 linear map, row-major [[a, b], [c, d]]


@functools.cache
def load_font(font_path: str, size: int) -> ImageFont.FreeTypeFont:
    """A FreeType font object (cached per process)."""
    return ImageFont.truetype(font_path, size)


@functools.lru_cache(maxsize=16384)
def glyph_mask(char: str, font_path: str, size: int = GLYPH_FONT_SIZE) -> Image.Image:
    """Clean anti-aliased ink of `char` ("L" image cropped to its ink; 1x1 black when the glyph is blank)."""
    font = load_font(font_path, size)
    left, top, right, bottom = font.getbbox(char)
    pad = 2
    image = Image.new("L", (max(int(right - left), 1) + 2 * pad, max(int(bottom - top), 1) + 2 * pad), 0)
    ImageDraw.Draw(image).text((pad - left, pad - top), char, fill=255, font=font)
    ink_box = image.getbbox()
    return image.crop(ink_box) if ink_box else Image.new("L", (1, 1), 0)


def fit_glyph(mask: Image.Image, canvas_size: int, matrix: Matrix2, shift: tuple[float, float]) -> Image.Image:
    """Place a glyph mask on a square canvas: centre, scale its long side to GLYPH_BOX_FRACTION, apply `matrix`.

    `matrix` (a, b, c, d) is the 2x2 linear part [[a, b], [c, d]] applied after the fit; `shift` moves the centre (px).
    """
    width, height = mask.size
    fit = GLYPH_BOX_FRACTION * canvas_size / max(width, height)
    a, b, c, d = (v * fit for v in matrix)
    det = a * d - b * c
    inv_a, inv_b, inv_c, inv_d = d / det, -b / det, -c / det, a / det
    centre_x = canvas_size / 2 + shift[0]
    centre_y = canvas_size / 2 + shift[1]
    # PIL maps each output pixel (x, y) to the input pixel (ia x + ib y + ic, id x + ie y + if).
    offset_x = width / 2 - (inv_a * centre_x + inv_b * centre_y)
    offset_y = height / 2 - (inv_c * centre_x + inv_d * centre_y)
    return mask.transform(
        (canvas_size, canvas_size),
        Image.Transform.AFFINE,
        (inv_a, inv_b, offset_x, inv_c, inv_d, offset_y),
        resample=Image.Resampling.BILINEAR,
        fillcolor=0,
    )


def random_affine(rng: np.random.Generator, canvas_size: int) -> tuple[Matrix2, tuple[float, float]]:
    """Rotation, scale, aspect jitter, shear and translation: ((a, b, c, d) linear part, (dx, dy) shift in px)."""
    angle = math.radians(rng.uniform(-ROTATION_DEG, ROTATION_DEG))
    scale = rng.uniform(*SCALE_RANGE)
    aspect = math.exp(rng.uniform(-ASPECT_LOG_JITTER, ASPECT_LOG_JITTER))
    shear = rng.uniform(-SHEAR_MAX, SHEAR_MAX)
    shift_x, shift_y = rng.uniform(-TRANSLATION_FRACTION, TRANSLATION_FRACTION, size=2) * canvas_size
    scale_x, scale_y = scale * aspect, scale / aspect
    cos, sin = math.cos(angle), math.sin(angle)
    # rotation @ shear @ diag(scale_x, scale_y), with shear = [[1, k], [0, 1]]
    a, b = cos * scale_x, (cos * shear - sin) * scale_y
    c, d = sin * scale_x, (sin * shear + cos) * scale_y
    return (a, b, c, d), (float(shift_x), float(shift_y))


def rank_filter(ink: np.ndarray, radius: int) -> np.ndarray:
    """Square (2|radius|+1)^2 max filter (radius > 0) or min filter (radius < 0) of a 2-D array, zero outside."""
    reduce = np.maximum if radius > 0 else np.minimum
    reach = abs(radius)
    height, width = ink.shape
    padded = np.pad(ink, reach)
    rows = padded[:, 0:width]
    for offset in range(1, 2 * reach + 1):
        rows = reduce(rows, padded[:, offset : offset + width])
    out = rows[0:height]
    for offset in range(1, 2 * reach + 1):
        out = reduce(out, rows[offset : offset + height])
    return out


def vary_strokes(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Thin or thicken the ink [C, C] with a min/max filter whose radius is drawn from STROKE_RADII."""
    radius = STROKE_RADII[rng.choice(len(STROKE_RADII), p=[p for _, p in STROKE_RADII])][0]
    return rank_filter(ink, radius) if radius else ink


def draw_distractors(canvas: Image.Image, rng: np.random.Generator) -> None:
    """Draw 0-2 random straight strokes or arcs onto the canvas in place (they occlude the glyph where they cross)."""
    size = canvas.size[0]
    draw = ImageDraw.Draw(canvas)
    for _ in range(rng.choice(len(DISTRACTOR_COUNT_PROBS), p=DISTRACTOR_COUNT_PROBS)):
        width = int(rng.integers(DISTRACTOR_WIDTH_RANGE[0], DISTRACTOR_WIDTH_RANGE[1] + 1))
        ink = int(round(255 * rng.uniform(*DISTRACTOR_INTENSITY_RANGE)))
        x0, y0, x1, y1 = (float(v) for v in rng.uniform(0, size, size=4))
        if rng.random() < 0.5:
            draw.line((x0, y0, x1, y1), fill=ink, width=width)
        else:
            start = float(rng.uniform(0, 360))
            sweep = float(rng.uniform(60, 240))
            box = (min(x0, x1), min(y0, y1), max(x0, x1) + 4, max(y0, y1) + 4)
            draw.arc(box, start, start + sweep, fill=ink, width=width)


def box_downsample(ink: np.ndarray, factor: int) -> np.ndarray:
    """Mean over factor x factor blocks: [C, C] -> [C / factor, C / factor] float64."""
    side = ink.shape[0] // factor
    return ink.reshape(side, factor, side, factor).mean(axis=(1, 3), dtype=np.float64)


def ink_coverage(char: str, font_paths: tuple[str, ...], rng: np.random.Generator, image_size: int) -> np.ndarray:
    """Distorted glyph in a font drawn from `font_paths`, with distractors: coverage float [image_size, image_size]."""
    font_path = font_paths[int(rng.integers(len(font_paths)))]
    canvas_size = image_size * SUPERSAMPLE
    matrix, shift = random_affine(rng, canvas_size)
    canvas = fit_glyph(glyph_mask(char, font_path), canvas_size, matrix, shift)
    draw_distractors(canvas, rng)
    return box_downsample(vary_strokes(np.asarray(canvas), rng), SUPERSAMPLE) / 255.0


def paint(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ink coverage [n, S, S] in [0, 1] -> uint8 RGB [n, S, S, 3]: grey levels, illumination ramp, tint, noise."""
    count, size = masks.shape[:2]
    contrast = rng.uniform(*CONTRAST_RANGE, size=count)
    low = rng.uniform(0.0, 1.0, size=count) * (1.0 - contrast)
    dark_ink = rng.random(count) < 0.5
    foreground = np.where(dark_ink, low, low + contrast)
    background = np.where(dark_ink, low + contrast, low)
    direction = rng.standard_normal((count, 2))
    direction /= np.sqrt((direction * direction).sum(axis=1, keepdims=True))
    direction *= rng.uniform(0.0, GRADIENT_MAX, size=(count, 1))
    ramp = np.arange(size) / (size - 1) - 0.5
    gradient = direction[:, 0, None, None] * ramp[None, None, :] + direction[:, 1, None, None] * ramp[None, :, None]
    grey = background[:, None, None] + gradient + (foreground - background)[:, None, None] * masks
    tint = 1.0 + rng.uniform(-TINT_MAX, TINT_MAX, size=(count, 1, 1, 3))
    sigma = rng.uniform(0.0, NOISE_SIGMA_MAX, size=(count, 1, 1, 1))
    rgb = grey[..., None] * tint + sigma * rng.standard_normal((count, size, size, 3))
    return np.rint(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)


def render_samples(
    char: str, font_paths: tuple[str, ...], rng: np.random.Generator, count: int, image_size: int
) -> np.ndarray:
    """`count` distorted renderings of `char`: uint8 [count, image_size, image_size, 3]."""
    masks = np.stack([ink_coverage(char, font_paths, rng, image_size) for _ in range(count)])
    return paint(masks, rng)


def render_clean(char: str, font_path: str, image_size: int) -> np.ndarray:
    """Undistorted ink coverage of `char`, centred and fitted like a sample: float [image_size, image_size], 0-1."""
    canvas = fit_glyph(glyph_mask(char, font_path), image_size * SUPERSAMPLE, (1.0, 0.0, 0.0, 1.0), (0.0, 0.0))
    return box_downsample(np.asarray(canvas), SUPERSAMPLE) / 255.0
