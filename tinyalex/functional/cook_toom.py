"""The Cook-Toom construction of Winograd's transforms (A^T, G, B^T) in exact fractions: the
derivation is in ``winograd``'s module docstring."""
import functools
from fractions import Fraction

import numpy as np

# the interpolation points for a tile of alpha inputs: alpha - 1 finite ones, then infinity (None).
# The 9x9 tiles' eight finite points came from a search by the float32 error (BENCHMARKS.md): 0 and
# +-1 fixed, two pairs +-p and a ninth point from 2, 3, 1/2, 1/3, 1/4, 2/3, 3/2, 3/4, 4/3, 4/5, 5/4,
# 2/5, 5/2 (and their negatives), by the error of y, gx and gW of a 32 -> 32 layer at 15x15. The 8x8
# tiles' points with a ninth -3/2 erred 4x more than +-1/2, +-4/3, -3 (2.1e-4 against 5.0e-5).
POINTS = {4: (0, 1, -1, None), 6: (0, 1, -1, 2, -2, None), 7: (0, 1, -1, 2, -2, Fraction(1, 2), None),
          8: (0, 1, -1, 2, -2, Fraction(1, 2), Fraction(-1, 2), None),
          9: (0, 1, -1, Fraction(1, 2), Fraction(-1, 2), Fraction(4, 3), Fraction(-4, 3), -3, None)}


def evaluation(points, k):
    """V_k: row [1, p, p^2, ..., p^(k-1)] for each finite point p and [0, ..., 0, 1] for infinity (None),
    in exact fractions (a list of rows)."""
    return [[Fraction(int(j == k - 1)) if p is None else Fraction(p) ** j for j in range(k)] for p in points]


def inverse(V):
    """The inverse of a square matrix of Fractions, by Gauss-Jordan elimination (exact)."""
    n = len(V)
    rows = [list(row) + [Fraction(int(i == j)) for j in range(n)] for i, row in enumerate(V)]
    for c in range(n):
        pivot = next(i for i in range(c, n) if rows[i][c] != 0)
        rows[c], rows[pivot] = rows[pivot], rows[c]
        rows[c] = [v / rows[c][c] for v in rows[c]]
        for i in range(n):
            if i != c and rows[i][c] != 0:
                rows[i] = [a - rows[i][c] * b for a, b in zip(rows[i], rows[c])]
    return [row[n:] for row in rows]


@functools.lru_cache(maxsize=None)
def cook_toom(m, r):
    """The transforms (A^T, G, B^T) of F(m, r) from the Cook-Toom construction (module docstring),
    at the interpolation points ``POINTS[m + r - 1]``: float64 arrays of shapes (m, alpha), (alpha, r),
    (alpha, alpha)."""
    alpha = m + r - 1
    if alpha not in POINTS:
        raise ValueError(f"winograd: no interpolation points for tiles of {alpha} (F({m}, {r})); "
                         f"tiles of {sorted(POINTS)} are defined")
    points = POINTS[alpha]
    AT = np.array(evaluation(points, m), dtype=np.float64).T
    G = np.array(evaluation(points, r), dtype=np.float64)
    BT = np.array(inverse(evaluation(points, alpha)), dtype=np.float64).T
    return AT, G, BT
