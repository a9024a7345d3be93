"""Which algorithm a convolution takes: the Winograd tile sizes, their choice per layer, and the
measured rule of ``conv2d(..., algorithm="auto")``. Re-exported from ``winograd``."""
from .im2col import conv_outsize


# the outputs per tile side m that F(m x m, r x r) may take for each filter size r (tiles of
# alpha = m + r - 1); ``tile_side`` picks one for a layer. Only tiles whose float32 error stays
# under 1e-4 on real layers (tests/test_winograd.py): F(7x7, 5x5)'s 11x11 tiles ran the four-layer
# CNN's 7x7 conv3 in 9.5 ms against 13.9 forward and backward, but erred 1.4-4.1e-4 at the best of
# 1,980 point sets (BENCHMARKS.md)
TILE = {3: (4, 5), 5: (4, 5)}


# A larger tile errs more (tests/test_winograd.py), so it is taken only where it saves more than this
# share of the products: savings of 7-8% ran at about the speed of the smaller tile (AlexNet's 27x27
# conv2, 2,916 products on 9x9 tiles against 3,136 on 8x8: 2.05x and 2.06x over im2col in lesson 13,
# its training steps 0.989x and 1.012x in two A/Bs; VGG's 112x112 maps on 7x7 tiles against 6x6:
# 1.00x), 23-29% ran faster (AlexNet's 13x13 conv3-5 on 7x7 tiles 1.03x a step, the four-layer CNN's
# 15x15 conv2 on 9x9 1.10x).
LARGER_TILE_SAVING = 0.1


def tile_side(r, OH, OW):
    """The m of TILE[r] whose tiles cover an OH x OW output with the fewest products per pair of
    channels, alpha^2 a tile times ceil(OH/m) ceil(OW/m) tiles, where a larger m must save more than
    LARGER_TILE_SAVING of the smaller one's. AlexNet's 13x13 maps: 9 tiles of 7x7 on F(5x5, 3x3),
    441 products, against 16 of 6x6, 576 (23% fewer); its 27x27 conv2 stays on F(4x4, 5x5)'s 8x8
    tiles, 3,136, against 2,916 on 9x9 (7%)."""
    def products(m):
        return (m + r - 1) ** 2 * -(-OH // m) * -(-OW // m)
    side, *larger = sorted(TILE[r])
    for m in larger:
        if products(m) < (1 - LARGER_TILE_SAVING) * products(side):
            side = m
    return side


ALGORITHMS = ("auto", "im2col", "winograd")


def check_algorithm(op, algorithm):
    if algorithm not in ALGORITHMS:
        raise ValueError(f"{op}: algorithm must be one of {', '.join(map(repr, ALGORITHMS))}, got {algorithm!r}")


# where "auto" takes Winograd, per filter size: the (fewest, most) input and output channels per group
AUTO = {3: (128, None), 5: (32, 128)}


def choose(algorithm, x_shape, w_shape, stride, padding, groups):
    """The tile side m of the Winograd algorithm conv2d should use, or None for im2col.

    A stride s > 1 is a space-to-depth (``space_to_depth``): r = ceil(k / s) of the filters' size k.
    "winograd" takes F(4x4, 3x3) or F(5x5, 3x3) for 3x3 filters, whichever covers the output with
    fewer products, the larger only where it saves more than a tenth of them (``tile_side``:
    AlexNet's 13x13 maps and VGG's 14x14 take F(5x5, 3x3); training steps of AlexNet at batch 16
    1.033x faster, its conv3-5 142.4 -> 131.2 ms, VGG's 512 -> 512 layer at 14x14 1.04x, at 112x112
    1.00x, so that 112x112 maps, 8% fewer products, stay on 6x6 tiles; BENCHMARKS.md), and F(4x4,
    5x5) or F(5x5, 5x5) for 5x5 ones by the same rule (the four-layer CNN's 15x15 maps take F(5x5,
    5x5)'s 9x9 tiles: its training steps 1.103x faster, its conv2 8.58 + 10.21 -> 5.84 + 7.48 ms
    forward + backward in-step; AlexNet's 27x27 maps, 7% fewer products, measured the same speed on
    them and stay on 8x8), and refuses other filters and strides. "auto" takes that F(m x m, r x r)
    for a stride-1 square filter when

      - each group's input and output channels are within ``AUTO[r]``: at least 128 for 3x3,
        32 to 128 for 5x5 (AlexNet's conv2, 48 -> 128 per group, on F(4x4, 5x5): training steps of
        AlexNet-CIFAR 1.17x, 0.97x and 1.05x faster in three runs, two columns 1.15x, AlexNet at
        batch 16 1.17x, once no product woke the BLAS's own threads; before that 0.84-0.92x),
      - strided (the space-to-depth), its filters are 3x3 with at most one row and column of zero
        taps, over at least 48 channels a group: AlexNet's conv1 (11x11 / 4 over 3 channels: 3x3 over
        48) 48.96 -> 38.24 ms forward and backward inside training steps (the step 1.044x),
        torchvision's 40.6 -> 29.9, a 48 -> 128 5x5 / 2 layer at 16x16 74.7 -> 62.6 (BENCHMARKS.md),
      - the tiles are at least 5/8 used (the remainder tiles compute outputs that are dropped:
        AlexNet's 13x13 maps fill 169 of 256 and trained faster on F(4x4, 3x3), and fill 169 of 225
        on F(5x5, 3x3); 6x6 maps fill 36 of 64, not measured faster; 5x5 maps under 5x5 filters fill
        one 9x9 tile, forward and backward 2.3x faster than im2col: 2.61 against 5.98 ms at 32 -> 32
        maps, batch 128),

    and im2col everywhere else. Until every product of an op ran on a one-thread BLAS, F(4x4, 3x3)
    also needed 32 images a thread and 3/4 of its tiles used; since then training steps with it on
    every 3x3 layer of 128+ channels were faster than that rule's: AlexNet at batch 16 (13x13 maps,
    8 images a thread) 1.05x, 1.32x, 1.08x in three runs, AlexNet-CIFAR at batch 32 1.23x
    (BENCHMARKS.md, "NumPy's BLAS never woken"). The rule before that came from in-process
    interleaved A/B ratios, im2col time / Winograd time for forward and backward of one layer in
    float32, 2 threads, each convolution's batch in one part per thread with a one-thread BLAS
    (``runs``: median of 5 rounds, quiet machine, BENCHMARKS.md "Winograd with the images last"),
    which the BLAS's spinning threads (``threads``) had made slower for Winograd, whose filter
    transform ran on them before each layer:

        layer (batch)                                 F(2x2,r x r)  F(4x4,r x r)
        AlexNet-CIFAR conv3, conv4, conv5, 8x8 (128)                1.22, 1.15, 1.12
        AlexNet-CIFAR conv3, 8x8 (32)                               0.91
        AlexNet conv3, conv4, 13x13 (16)              0.79, 0.75    0.80, 0.87      (remainder tiles)
        VGG 256->512 at 28x28 (32; 8)                               1.02; 1.05
        VGG 512->512 at 14x14 (16)                                  0.71            (remainder tiles)
        VGG 128->256 at 56x56 (4)                                   0.72
        four-layer CNN 5x5 3->32, 32->32, 32->64 (128) 0.19, 1.05, 0.75   0.41, 2.06, 1.14
        AlexNet-CIFAR conv2 5x5 96->256 in 2 groups (128)  0.35     1.06
        AlexNet conv2 5x5 96->256 in 2 groups, 27x27 (16)  0.40     1.12

    Few channels leave the tile transforms (memory-bound, alpha^2/m^2 times the data) to dominate the
    GEMMs: F(2x2, 5x5)'s 6x6 tiles for 2x2 outputs move 9x the data, F(4x4, 5x5)'s 8x8 tiles 4x.
    """
    check_algorithm("conv2d", algorithm)
    (_, C, H, W), (O, _, KH, KW), s = x_shape, w_shape, stride[0]
    r = -(-KH // s)  # the filters' size after a space-to-depth (``space_to_depth``); KH at stride 1
    fits = stride[0] == stride[1] and KH == KW and r in TILE
    if algorithm == "winograd" and not fits:
        raise ValueError(f"conv2d: algorithm='winograd' needs equal strides and a square filter whose size over "
                         f"the stride, rounded up, is {' or '.join(map(str, TILE))}, got stride {tuple(stride)} "
                         f"and a {KH}x{KW} filter")
    if algorithm == "im2col" or not fits:
        return None
    OH, OW = conv_outsize(H, KH, s, padding[0]), conv_outsize(W, KW, s, padding[1])
    m = tile_side(r, OH, OW)
    if algorithm == "winograd":
        return m
    if s > 1:  # measured on AlexNet's conv1s only: 3x3 filters over 48 channels, 23 of 144 taps zero
        if r != 3 or r * s - KH > 1 or C // groups * s * s < 48:
            return None
    else:
        fewest, most = AUTO[KH]
        if min(C, O) // groups < fewest or (most is not None and max(C, O) // groups > most):
            return None
    return m if 8 * OH * OW >= 5 * (m * -(-OH // m)) * (m * -(-OW // m)) else None
