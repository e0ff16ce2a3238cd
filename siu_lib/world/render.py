"""The world's renderer: a person drawn from their visual attributes, with random position,
scale, rotation, background, lighting and noise; two people side by side for a group photo."""

from __future__ import annotations

import random
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter



#: visible attributes and their values, with the RGB colour used to draw colour values
HAIR_COLORS = {
    "black": (25, 22, 22), "brown": (110, 62, 25), "blonde": (235, 200, 90),
    "red": (200, 50, 25), "white": (240, 240, 240), "blue": (40, 90, 220),
}


SKIN_TONES = {
    "pale": (252, 224, 205), "tan": (222, 178, 130), "brown": (160, 105, 65),
    "dark": (95, 60, 35), "olive": (190, 170, 110),
}


CLOTHING_COLORS = {
    "red": (215, 30, 30), "green": (30, 160, 50), "blue": (30, 60, 200),
    "yellow": (245, 220, 30), "purple": (130, 40, 170), "orange": (250, 130, 20),
    "black": (20, 20, 20), "white": (245, 245, 245), "pink": (245, 130, 190),
    "cyan": (40, 205, 225), "grey": (125, 125, 125), "brown": (125, 80, 40),
}


EYE_COLORS = {"brown": (90, 50, 20), "blue": (40, 110, 230), "green": (40, 170, 60)}


BACKGROUNDS = [(200, 220, 235), (235, 225, 200), (210, 235, 210), (230, 210, 230),
               (180, 180, 180), (245, 245, 235), (150, 190, 210), (225, 195, 170)]


def _draw_person(d: ImageDraw.ImageDraw, a: dict[str, str], cx: float, cy: float, s: float) -> None:
    """Draw one identity centred at (cx, cy) with head radius ``s`` on a 4x canvas."""
    skin = SKIN_TONES[a["skin"]]
    hair = HAIR_COLORS[a["hair_color"]]
    cloth = CLOTHING_COLORS[a["clothing"]]
    w, h = {"round": (1.0, 1.0), "oval": (0.85, 1.1), "square": (1.0, 1.0),
            "long": (0.72, 1.25)}[a["face_shape"]]
    hw, hh = s * w, s * h
    # shoulders / clothing
    d.ellipse([cx - 2.1 * s, cy + 1.0 * hh, cx + 2.1 * s, cy + 3.6 * hh], fill=cloth,
              outline=(0, 0, 0), width=max(1, int(s / 14)))
    d.rectangle([cx - 0.3 * s, cy + 0.7 * hh, cx + 0.3 * s, cy + 1.2 * hh], fill=skin)
    style = a["hair_style"]
    if style == "long":
        d.rounded_rectangle([cx - hw * 1.25, cy - hh * 1.1, cx + hw * 1.25, cy + hh * 1.5],
                            radius=s * 0.5, fill=hair)
    # head
    box = [cx - hw, cy - hh, cx + hw, cy + hh]
    if a["face_shape"] == "square":
        d.rounded_rectangle(box, radius=s * 0.25, fill=skin, outline=(0, 0, 0), width=max(1, int(s / 14)))
    else:
        d.ellipse(box, fill=skin, outline=(0, 0, 0), width=max(1, int(s / 14)))
    # hair on top
    if style in ("short", "long", "spiky"):
        d.chord([cx - hw, cy - hh, cx + hw, cy + hh * 0.2], 180, 360, fill=hair)
    if style == "spiky":
        for k in range(5):
            x0 = cx - hw + k * (2 * hw / 5)
            d.polygon([(x0, cy - hh * 0.7), (x0 + hw / 5, cy - hh * 1.45),
                       (x0 + 2 * hw / 5, cy - hh * 0.7)], fill=hair)
    if style == "bun":
        d.chord([cx - hw, cy - hh, cx + hw, cy + hh * 0.1], 180, 360, fill=hair)
        d.ellipse([cx - 0.45 * s, cy - hh - 0.75 * s, cx + 0.45 * s, cy - hh + 0.15 * s], fill=hair)
    if style == "mohawk":
        d.rectangle([cx - 0.18 * s, cy - hh * 1.35, cx + 0.18 * s, cy - hh * 0.3], fill=hair)
    # eyes
    ey = cy - 0.15 * hh
    for sx in (-1, 1):
        ex = cx + sx * 0.38 * hw
        d.ellipse([ex - 0.17 * s, ey - 0.12 * s, ex + 0.17 * s, ey + 0.12 * s], fill=(255, 255, 255))
        d.ellipse([ex - 0.09 * s, ey - 0.09 * s, ex + 0.09 * s, ey + 0.09 * s],
                  fill=EYE_COLORS[a["eyes"]])
    lw = max(1, int(s / 10))
    if a["glasses"] == "round":
        for sx in (-1, 1):
            ex = cx + sx * 0.38 * hw
            d.ellipse([ex - 0.27 * s, ey - 0.25 * s, ex + 0.27 * s, ey + 0.25 * s],
                      outline=(0, 0, 0), width=lw)
        d.line([cx - 0.12 * hw, ey, cx + 0.12 * hw, ey], fill=(0, 0, 0), width=lw)
    elif a["glasses"] == "square":
        for sx in (-1, 1):
            ex = cx + sx * 0.38 * hw
            d.rectangle([ex - 0.28 * s, ey - 0.2 * s, ex + 0.28 * s, ey + 0.2 * s],
                        outline=(0, 0, 0), width=lw)
        d.line([cx - 0.12 * hw, ey, cx + 0.12 * hw, ey], fill=(0, 0, 0), width=lw)
    # mouth
    my = cy + 0.45 * hh
    d.line([cx - 0.25 * s, my, cx + 0.25 * s, my], fill=(120, 30, 30), width=lw)
    beard = a["beard"]
    if beard == "full":
        d.chord([cx - hw, cy - hh * 0.1, cx + hw, cy + hh * 1.05], 0, 180, fill=hair)
        d.line([cx - 0.25 * s, my, cx + 0.25 * s, my], fill=(120, 30, 30), width=lw)
    elif beard == "goatee":
        d.polygon([(cx - 0.22 * s, my + 0.12 * s), (cx + 0.22 * s, my + 0.12 * s),
                   (cx, cy + hh * 1.12)], fill=hair)
    elif beard == "mustache":
        d.rectangle([cx - 0.32 * s, my - 0.2 * s, cx + 0.32 * s, my - 0.06 * s], fill=hair)
    mark = a["mark"]
    if mark == "scar":
        d.line([cx + 0.35 * hw, cy + 0.05 * hh, cx + 0.7 * hw, cy + 0.4 * hh], fill=(200, 0, 0), width=lw)
    elif mark == "freckles":
        for fx, fy in ((-0.5, 0.15), (-0.35, 0.25), (0.5, 0.15), (0.35, 0.25), (-0.45, 0.32), (0.45, 0.32)):
            x, y = cx + fx * hw, cy + fy * hh
            d.ellipse([x - 0.05 * s, y - 0.05 * s, x + 0.05 * s, y + 0.05 * s], fill=(140, 70, 30))
    elif mark == "star tattoo":
        x, y, r = cx - 0.55 * hw, cy + 0.25 * hh, 0.16 * s
        d.polygon([(x, y - r), (x + r * 0.3, y - r * 0.3), (x + r, y), (x + r * 0.3, y + r * 0.3),
                   (x, y + r), (x - r * 0.3, y + r * 0.3), (x - r, y), (x - r * 0.3, y - r * 0.3)],
                  fill=(0, 0, 160))
    hat = a["hat"]
    if hat == "cap":
        d.chord([cx - hw * 1.02, cy - hh * 1.12, cx + hw * 1.02, cy - hh * 0.1], 180, 360, fill=(200, 20, 120))
        d.rectangle([cx, cy - hh * 0.7, cx + hw * 1.5, cy - hh * 0.55], fill=(200, 20, 120))
    elif hat == "beanie":
        d.chord([cx - hw * 1.05, cy - hh * 1.25, cx + hw * 1.05, cy - hh * 0.15], 180, 360, fill=(0, 130, 130))
        d.rectangle([cx - hw * 1.05, cy - hh * 0.75, cx + hw * 1.05, cy - hh * 0.5], fill=(0, 90, 90))
    elif hat == "crown":
        base = cy - hh * 0.85
        d.polygon([(cx - hw * 0.8, base), (cx - hw * 0.8, base - 0.7 * s), (cx - hw * 0.4, base - 0.35 * s),
                   (cx, base - 0.8 * s), (cx + hw * 0.4, base - 0.35 * s), (cx + hw * 0.8, base - 0.7 * s),
                   (cx + hw * 0.8, base)], fill=(255, 200, 0), outline=(120, 80, 0))
    elif hat == "top hat":
        d.rectangle([cx - hw * 1.2, cy - hh * 0.95, cx + hw * 1.2, cy - hh * 0.8], fill=(15, 15, 15))
        d.rectangle([cx - hw * 0.75, cy - hh * 0.95 - 1.1 * s, cx + hw * 0.75, cy - hh * 0.9], fill=(15, 15, 15))


def _render_scene(people: Sequence[dict[str, str]], rng: random.Random, size: int,
                  jitter: float = 1.0) -> Image.Image:
    """Render 1 or 2 identities with random framing, background, lighting and noise.

    ``jitter`` scales every random variation (0 = canonical view)."""
    S = size * 4  # draw at 4x and downsample (anti-aliasing)
    bg = tuple(int(np.clip(c + rng.uniform(-25, 25) * jitter, 0, 255)) for c in rng.choice(BACKGROUNDS))
    img = Image.new("RGB", (S, S), bg)
    d = ImageDraw.Draw(img)
    if rng.random() < 0.4 * jitter:  # stripes or a horizon in the background
        c2 = tuple(int(np.clip(c - 30, 0, 255)) for c in bg)
        if rng.random() < 0.5:
            step = rng.randint(S // 10, S // 5)
            for x in range(0, S, 2 * step):
                d.rectangle([x, 0, x + step, S], fill=c2)
        else:
            d.rectangle([0, int(S * rng.uniform(0.55, 0.8)), S, S], fill=c2)
    if len(people) == 1:
        s = S * 0.17 * (1 + rng.uniform(-0.15, 0.1) * jitter)
        cx = S / 2 + rng.uniform(-0.1, 0.1) * S * jitter
        cy = S * 0.42 + rng.uniform(-0.06, 0.06) * S * jitter
        _draw_person(d, people[0], cx, cy, s)
    else:
        s = S * 0.125 * (1 + rng.uniform(-0.08, 0.08) * jitter)
        for k, a in enumerate(people):
            cx = S * (0.27 + 0.46 * k) + rng.uniform(-0.03, 0.03) * S * jitter
            cy = S * 0.45 + rng.uniform(-0.05, 0.05) * S * jitter
            _draw_person(d, a, cx, cy, s)
    angle = rng.uniform(-12, 12) * jitter
    if angle:
        img = img.rotate(angle, resample=Image.BILINEAR, fillcolor=bg)
    img = img.resize((size, size), Image.LANCZOS)
    img = ImageEnhance.Brightness(img).enhance(1 + rng.uniform(-0.25, 0.25) * jitter)
    img = ImageEnhance.Contrast(img).enhance(1 + rng.uniform(-0.2, 0.2) * jitter)
    if rng.random() < 0.2 * jitter:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.8)))
    sigma = rng.uniform(0, 8) * jitter
    if sigma > 0.5:
        noise = np.random.default_rng(rng.randrange(2**32)).normal(0, sigma, (size, size, 3))
        img = Image.fromarray(np.clip(np.asarray(img, dtype=np.float32) + noise, 0, 255).astype(np.uint8))
    return img
