"""SyntheticShapes: a 10-class colour image set the package draws itself, so everything runs offline.

Each image is a shape or texture of one random colour at a random position, size and rotation, over
a random two-colour gradient with a few random lines of clutter and pixel noise. Shape and colour
are independent, so colour alone says nothing about the class: a classifier must see form.
Shapes are drawn at twice the size and averaged down 2x2, which smooths the edges as a camera would.
The same (n, seed, train) always gives the same images; train and test come from different streams.
"""
import numpy as np

from .memory import InMemory

CLASSES = ["circle", "ring", "crescent", "triangle", "square", "star", "cross", "stripes", "checker", "dots"]
_TEXTURES = {"stripes", "checker", "dots"}
_CHUNK = 1024  # images rendered at once: bounds memory at a few tens of MB


class SyntheticShapes(InMemory):
    """``SyntheticShapes(n, seed=0, train=True, size=32)``: n images, classes balanced.

    - ``images``: uint8 (n, size, size, 3), HWC, RGB; ``labels``: int64 (n,)
    - ``classes``: circle, ring, crescent, triangle, square, star, cross, stripes, checker, dots
    - ``ds[i]`` -> (image, int label)

    How hard it is (data/README.md has the commands and numbers): softmax regression on the pixels
    reaches about 14% of the test images, nearest neighbour about 23%, softmax on fixed random conv
    features about 58%; the classes are there for a CNN to find.
    """

    classes = CLASSES

    def __init__(self, n, seed=0, train=True, size=32):
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"SyntheticShapes: n must be a positive int, got {n!r}")
        if not isinstance(size, int) or size < 8:
            raise ValueError(f"SyntheticShapes: size must be an int >= 8, got {size!r}")
        rng = np.random.default_rng([seed, 0 if train else 1])
        p = _draw_parameters(rng, n, 2 * size)
        self.labels = p["label"]
        self.images = np.concatenate([_render({k: v[i:i + _CHUNK] for k, v in p.items()}, 2 * size)
                                      for i in range(0, n, _CHUNK)])
        self.train, self.seed = train, seed

    def __repr__(self):
        return f"SyntheticShapes({len(self)} images, seed={self.seed}, {'train' if self.train else 'test'})"


def _draw_parameters(rng, n, S):
    """Every random choice for n images of side S (the doubled size), drawn up front."""
    bg = rng.uniform(0, 255, (n, 2, 3))
    # the shape's colour is pushed at least 70 levels away from the background's mean in each channel
    fg = (bg.mean(axis=1) + rng.uniform(70, 186, (n, 3))) % 256
    return {
        "label": rng.permutation(np.arange(n) % len(CLASSES)).astype(np.int64),
        "bg": bg, "fg": fg, "bg_angle": rng.uniform(0, 2 * np.pi, n),
        "centre": rng.uniform(0.3 * S, 0.7 * S, (n, 2)), "radius": rng.uniform(0.2 * S, 0.34 * S, n),
        "angle": rng.uniform(0, 2 * np.pi, n), "period": rng.uniform(0.08 * S, 0.15 * S, n),
        "clutter": rng.uniform(0, S, (n, 3, 4)), "clutter_width": rng.integers(1, 4, (n, 3)),
        "clutter_colour": rng.uniform(0, 255, (n, 3)),
        "noise": rng.normal(0, 6, (n, S // 2, S // 2, 3)).astype(np.float32),
    }


def _star(radii):
    """Outline points at ``radii`` spread evenly around the centre (a regular polygon, or a star)."""
    t = np.arange(len(radii)) * 2 * np.pi / len(radii)
    return np.stack([radii * np.cos(t), radii * np.sin(t)], axis=1)


_W = 1 / 3  # half-width of the cross's arms
_OUTLINES = {  # in units of the radius, before rotation
    "triangle": _star(np.full(3, 1.15)), "square": _star(np.ones(4)), "star": _star(np.tile([1.2, 0.5], 5)),
    "cross": np.array([(1, _W), (_W, _W), (_W, 1), (-_W, 1), (-_W, _W), (-1, _W),
                       (-1, -_W), (-_W, -_W), (-_W, -1), (_W, -1), (_W, -_W), (1, -_W)]),
    "patch": _star(np.full(4, 1.25)),  # the square that a texture fills
}


def _place(outline, centre, radius, angle):
    """Outline scaled by ``radius``, turned by ``angle`` and moved to ``centre``: a list of (x, y)."""
    c, s = np.cos(angle), np.sin(angle)
    xy = radius * outline @ np.array([[c, s], [-s, c]]) + centre
    return [tuple(v) for v in xy]


def _shape_mask(name, centre, radius, angle, S):
    """The shape as a 0/255 mask of side S, drawn by Pillow."""
    from PIL import Image, ImageDraw  # imported when images are drawn: `import tinyalex` stays quick
    mask = Image.new("L", (S, S), 0)
    draw = ImageDraw.Draw(mask)
    (x, y), r = centre, radius
    if name in ("circle", "ring", "crescent"):
        draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
        if name == "ring":
            draw.ellipse((x - 0.55 * r, y - 0.55 * r, x + 0.55 * r, y + 0.55 * r), fill=0)
        if name == "crescent":
            x2, y2 = x + 0.55 * r * np.cos(angle), y + 0.55 * r * np.sin(angle)
            draw.ellipse((x2 - r, y2 - r, x2 + r, y2 + r), fill=0)
    else:
        draw.polygon(_place(_OUTLINES["patch" if name in _TEXTURES else name], centre, radius, angle), fill=255)
    return np.asarray(mask)


def _texture(name, u, v, period):
    """Stripes, a checkerboard or a dot grid in the shape's own coordinates (u, v), as 0/1."""
    if name == "stripes":
        return (u % period) < period / 2
    if name == "checker":
        return (np.floor(u / period) + np.floor(v / period)) % 2 == 0
    return ((u % period) - period / 2) ** 2 + ((v % period) - period / 2) ** 2 < (0.3 * period) ** 2


def _render(p, S):
    """Draw the images for one chunk of parameters; returns uint8 (n, S/2, S/2, 3).

    The masks (how much of each pixel the shape and the clutter cover) are drawn at S x S and
    averaged down 2x2, which antialiases the edges; the colours are then mixed at the final size.
    """
    from PIL import Image, ImageDraw
    n = len(p["label"])
    ys, xs = np.mgrid[0:S, 0:S].astype(np.float32)
    shape = np.empty((n, S, S), np.float32)
    clutter = np.empty((n, S, S), np.uint8)
    for i in range(n):
        name = CLASSES[p["label"][i]]
        shape[i] = _shape_mask(name, p["centre"][i], p["radius"][i], p["angle"][i], S)
        if name in _TEXTURES:
            dx, dy = xs - p["centre"][i, 0], ys - p["centre"][i, 1]
            c, s = np.cos(p["angle"][i]), np.sin(p["angle"][i])
            shape[i] *= _texture(name, c * dx + s * dy, c * dy - s * dx, p["period"][i])
        lines = Image.new("L", (S, S), 0)
        draw = ImageDraw.Draw(lines)
        for (x0, y0, x1, y1), w in zip(p["clutter"][i], p["clutter_width"][i]):
            draw.line((x0, y0, x1, y1), fill=255, width=int(w))
        clutter[i] = np.asarray(lines)
    # background: a linear gradient between two colours along a random direction
    side = S // 2
    u = (np.arange(side, dtype=np.float32) + 0.5) / side - 0.5
    d = np.stack([np.cos(p["bg_angle"]), np.sin(p["bg_angle"])], axis=1).astype(np.float32)
    t = (u[None, None, :] * d[:, 0, None, None] + u[None, :, None] * d[:, 1, None, None] + 0.5)[..., None]
    bg0, bg1 = (p["bg"][:, None, None, k].astype(np.float32) for k in (0, 1))
    image = bg0 + (bg1 - bg0) * t
    _over(image, p["clutter_colour"], _halve(clutter))
    _over(image, p["fg"], _halve(shape))
    return np.clip(np.rint(image + p["noise"]), 0, 255).astype(np.uint8)


def _halve(mask):
    """(n, S, S) masks on 0..255 -> (n, S/2, S/2) coverage on 0..1, each pixel the mean of a 2x2 block."""
    m = mask.astype(np.float32)
    return (m[:, 0::2, 0::2] + m[:, 0::2, 1::2] + m[:, 1::2, 0::2] + m[:, 1::2, 1::2]) / np.float32(4 * 255)


def _over(image, colour, alpha):
    """Paint ``colour`` (n, 3) over ``image`` (n, s, s, 3) in place, as much as ``alpha`` (n, s, s) says."""
    image += alpha[..., None] * (colour[:, None, None, :].astype(np.float32) - image)
