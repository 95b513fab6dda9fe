/* kernels_avx2.c: the avx2 kernel set (see pt_kernels.h): conv2's forward, input gradient and
 * weight gradient, and the dropout masks of 8 generators, for CPUs with AVX2 + FMA and without
 * AVX-512 (AMD Zen 2/3, Intel Haswell .. Alder Lake). They do what kernels_avx512.c does with
 * AVX2's 16 ymm registers. Compiled with -mavx2 -mfma only (CMake's per-file flags; never
 * AVX-512); called only when pt_kernels_supported(PT_KSET_AVX2). The set's plain loops come from
 * kernels_loops.c compiled with the same flags.
 *
 * Register blocking (the same for the three conv kernels): a 6 x 16 tile, as in OpenBLAS's
 * Haswell sgemm micro-kernel: 6 rows x 2 ymm (16 floats) = 12 accumulators, 2 registers for the
 * two 8-float halves of the shared row, 1 for the broadcast value (15 of 16 ymm). Per step of
 * the reduction: 2 vector loads + 6 broadcast loads feed 12 FMAs, i.e. 6 cycles of the two FMA
 * pipes for 8 loads, well inside the 2-3 loads per cycle of Zen 3 / Haswell, and 12 independent
 * accumulators cover the FMA latency (4-5 cycles x 2 pipes = 8-10 needed). AVX2 has no embedded
 * broadcast, so the broadcast (vbroadcastss ymm, m32: a pure load) takes a register, which
 * rules out the 3 x 32 tile (12 acc + 4 kernel + 1 broadcast = 17 registers).
 *  - forward : rows = 6 output pixels of the flat pixel list (196 = 32 x 6 + 4), columns = 16 of
 *              the 32 output channels; reduction over 4 taps x 64 input channels. Each pixel's
 *              tap source is a pointer (a zero row for taps in the padding), as in the AVX-512
 *              code. The half of the output channels is the outer loop, so the 16 KB of kernel
 *              that half uses stays in L1 across all pixel blocks.
 *  - dx      : rows = 6 input pixels (flat list), columns = 16 of the 64 input channels (the
 *              quarter is the outer loop: 8 KB of kernel_t in L1); reduction over 4 taps x 32
 *              output-channel gradients (zero row for taps that fall outside the image); the
 *              dropout/relu mask is applied at the store.
 *  - dk      : rows = 6 input channels of one tap (64 = 10 x 6 + 4), columns = 16 of the 32
 *              output channels; reduction over the output pixels for which the tap is inside
 *              the image (so no FMA is wasted on padding).
 * The tap source pointers of all tiles are built once per call (a table of 4 x 6 per tile) and
 * shared by the column blocks; a tap that is padding for all 6 pixels of a tile (the last image
 * row's a=1 taps in forward, the first row's in dx) is skipped.
 * Measured on Zen 5 (one core, ymm FMA peak 110 GFLOP/s in the same run): forward 97%, dk 97%,
 * dx 93% of that peak in executed FLOPs; about 1.05x OpenBLAS's Haswell-core sgemm on a large
 * square matrix, 1.5x on the conv-shaped im2col sgemm. Doing both output halves per tile visit,
 * or 2 or 4 input-channel quarters per tile visit in dx, was the same within noise there (48 KB
 * L1); the loop orders kept have the smaller L1 footprint (16 KB / 8 KB kernel slice), safer on
 * Zen 3's 32 KB L1D.
 * Masks: the 8 xoshiro256** states in two ymm per state word (lanes 0-3, 4-7), 64-bit rotates
 * as two shifts and an OR, the multiplies by 5 and 9 as shift+add, the keep test as a signed
 * 64-bit compare (r >> 40 < 2^24 and the threshold <= 2^24 are both non-negative). Each draw's
 * two compare results are narrowed to one vector of 8 32-bit masks (one shuffle), 8 draws are
 * transposed 8 x 8 (unpack/shuffle/permute2f128) so each lane gets 8 consecutive masks, ANDed
 * with the scale and stored. (The AVX-512 code's way, movemask to 8 lane bits per draw, then a
 * pmovmskb per lane and a bit expansion, measured 11% slower with AVX2.)
 */
#include <immintrin.h>
#include <string.h>

#include "kernels_internal.h"
#include "pt_layers.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

#define TILE_P 6 /* rows of the register tile (pixels, or input channels for dk) */

/* A zero row, read by taps that fall in the padding (64 floats covers x rows and dout rows). */
static const float zeros64[64] __attribute__((aligned(64)));

/* ------------------------------------------------------------------------------------------
 * Forward. One tile: P pixels (P <= 6, a compile-time constant after inlining) x 16 output
 * channels (kh = kernel + half*16, bh = bias + half*16). src[t*6+p] = the input row of pixel p
 * for tap t (or the zero row).
 */
ALWAYS_INLINE void fwd_tile(float *restrict out, const float *const *src,
                            const float *restrict kh, const float *restrict bh, const int P) {
    __m256 acc[TILE_P][2];
    const __m256 b0 = _mm256_loadu_ps(bh), b1 = _mm256_loadu_ps(bh + 8);
    for (int p = 0; p < P; p++) { acc[p][0] = b0; acc[p][1] = b1; }
    for (int t = 0; t < 4; t++) {
        const float *s[TILE_P];
        int live = 0; /* a tap that is padding for every pixel of the tile is skipped */
        for (int p = 0; p < P; p++) {
            s[p] = src[t * TILE_P + p];
            live |= s[p] != zeros64;
        }
        if (!live) continue;
        const float *k = kh + t * 64 * 32;
        for (int ci = 0; ci < 64; ci++) {
            const __m256 k0 = _mm256_loadu_ps(k + ci * 32), k1 = _mm256_loadu_ps(k + ci * 32 + 8);
            for (int p = 0; p < P; p++) {
                const __m256 v = _mm256_broadcast_ss(s[p] + ci);
                acc[p][0] = _mm256_fmadd_ps(v, k0, acc[p][0]);
                acc[p][1] = _mm256_fmadd_ps(v, k1, acc[p][1]);
            }
        }
    }
    for (int p = 0; p < P; p++) {
        _mm256_storeu_ps(out + p * 32, acc[p][0]);
        _mm256_storeu_ps(out + p * 32 + 8, acc[p][1]);
    }
}

/* The tap source rows of up to CHUNK_TILES tiles of the flat pixel list, built once and used by
 * every column block (half / quarter): src[(tile*4 + t)*6 + p]. */
#define CHUNK_TILES 64

static void conv2_forward_image(float *restrict out, const float *restrict x,
                                const float *restrict kernel, const float *restrict bias, int H, int W) {
    const int npix = H * W;
    const float *src[CHUNK_TILES * 4 * TILE_P];
    int i0 = 0, j0 = 0;
    for (int c0 = 0; c0 < npix; c0 += CHUNK_TILES * TILE_P) {
        const int cpix = npix - c0 < CHUNK_TILES * TILE_P ? npix - c0 : CHUNK_TILES * TILE_P;
        const int ntiles = (cpix + TILE_P - 1) / TILE_P;
        for (int tile = 0; tile < ntiles; tile++)
            for (int p = 0; p < TILE_P; p++) {
                const int valid = tile * TILE_P + p < cpix;
                for (int t = 0; t < 4; t++) {
                    int ii = i0 + (t >> 1), jj = j0 + (t & 1);
                    src[(tile * 4 + t) * TILE_P + p] =
                        (valid && ii < H && jj < W) ? x + ((size_t)ii * W + jj) * 64 : zeros64;
                }
                if (valid && ++j0 == W) { j0 = 0; i0++; }
            }
        for (int half = 0; half < 2; half++)
            for (int tile = 0; tile < ntiles; tile++) {
                const float *kh = kernel + half * 16, *bh = bias + half * 16;
                const int q0 = c0 + tile * TILE_P;
                const int P = npix - q0 < TILE_P ? npix - q0 : TILE_P;
                const float *const *ts = src + tile * 4 * TILE_P;
                float *o = out + (size_t)q0 * 32 + half * 16;
                if (P == TILE_P) fwd_tile(o, ts, kh, bh, 6);
                else switch (P) { /* constant P: the tile is fully unrolled into registers */
                case 5: fwd_tile(o, ts, kh, bh, 5); break;
                case 4: fwd_tile(o, ts, kh, bh, 4); break;
                case 3: fwd_tile(o, ts, kh, bh, 3); break;
                case 2: fwd_tile(o, ts, kh, bh, 2); break;
                default: fwd_tile(o, ts, kh, bh, 1); break;
                }
            }
    }
}

/* ------------------------------------------------------------------------------------------
 * Input gradient. One tile: P input pixels x 16 input channels (kq = kernel_t + quarter*16).
 * src[t*6+p] = the dout row of output pixel (y-a, x-b) for tap t = (a,b), or the zero row.
 */
ALWAYS_INLINE void dx_tile(float *restrict dx, const float *const *src, const float *restrict kq,
                           const float *restrict xin, float keep_scale, const int P) {
    __m256 acc[TILE_P][2];
    for (int p = 0; p < P; p++) acc[p][0] = acc[p][1] = _mm256_setzero_ps();
    for (int t = 0; t < 4; t++) {
        const float *s[TILE_P];
        int live = 0; /* a tap that is padding for every pixel of the tile is skipped */
        for (int p = 0; p < P; p++) {
            s[p] = src[t * TILE_P + p];
            live |= s[p] != zeros64;
        }
        if (!live) continue;
        const float *k = kq + t * 32 * 64;
        for (int co = 0; co < 32; co++) {
            const __m256 k0 = _mm256_loadu_ps(k + co * 64), k1 = _mm256_loadu_ps(k + co * 64 + 8);
            for (int p = 0; p < P; p++) {
                const __m256 v = _mm256_broadcast_ss(s[p] + co);
                acc[p][0] = _mm256_fmadd_ps(v, k0, acc[p][0]);
                acc[p][1] = _mm256_fmadd_ps(v, k1, acc[p][1]);
            }
        }
    }
    if (keep_scale > 0.0f) { /* fused dropout + relu backward: x > 0 ? acc * keep_scale : 0 */
        const __m256 scale = _mm256_set1_ps(keep_scale), zero = _mm256_setzero_ps();
        for (int p = 0; p < P; p++)
            for (int h = 0; h < 2; h++) {
                __m256 keep = _mm256_cmp_ps(_mm256_loadu_ps(xin + p * 64 + h * 8), zero, _CMP_GT_OQ);
                acc[p][h] = _mm256_and_ps(keep, _mm256_mul_ps(acc[p][h], scale));
            }
    }
    for (int p = 0; p < P; p++) {
        _mm256_storeu_ps(dx + p * 64, acc[p][0]);
        _mm256_storeu_ps(dx + p * 64 + 8, acc[p][1]);
    }
}

static void conv2_dx_image(float *restrict dx, const float *restrict dout,
                           const float *restrict kernel_t, const float *restrict x, float keep_scale,
                           int H, int W) {
    const int npix = H * W;
    const float *src[CHUNK_TILES * 4 * TILE_P];
    int i0 = 0, j0 = 0;
    for (int c0 = 0; c0 < npix; c0 += CHUNK_TILES * TILE_P) {
        const int cpix = npix - c0 < CHUNK_TILES * TILE_P ? npix - c0 : CHUNK_TILES * TILE_P;
        const int ntiles = (cpix + TILE_P - 1) / TILE_P;
        for (int tile = 0; tile < ntiles; tile++)
            for (int p = 0; p < TILE_P; p++) {
                const int valid = tile * TILE_P + p < cpix;
                for (int t = 0; t < 4; t++) {
                    int ii = i0 - (t >> 1), jj = j0 - (t & 1);
                    src[(tile * 4 + t) * TILE_P + p] =
                        (valid && ii >= 0 && jj >= 0) ? dout + ((size_t)ii * W + jj) * 32 : zeros64;
                }
                if (valid && ++j0 == W) { j0 = 0; i0++; }
            }
        for (int quarter = 0; quarter < 4; quarter++)
            for (int tile = 0; tile < ntiles; tile++) {
                const float *kq = kernel_t + quarter * 16;
                const int q0 = c0 + tile * TILE_P;
                const int P = npix - q0 < TILE_P ? npix - q0 : TILE_P;
                const float *const *ts = src + tile * 4 * TILE_P;
                const size_t o = (size_t)q0 * 64 + quarter * 16;
                if (P == TILE_P) dx_tile(dx + o, ts, kq, x + o, keep_scale, 6);
                else switch (P) {
                case 5: dx_tile(dx + o, ts, kq, x + o, keep_scale, 5); break;
                case 4: dx_tile(dx + o, ts, kq, x + o, keep_scale, 4); break;
                case 3: dx_tile(dx + o, ts, kq, x + o, keep_scale, 3); break;
                case 2: dx_tile(dx + o, ts, kq, x + o, keep_scale, 2); break;
                default: dx_tile(dx + o, ts, kq, x + o, keep_scale, 1); break;
                }
            }
    }
}

/* ------------------------------------------------------------------------------------------
 * Weight gradient. One tile: R input channels (R = 6 or 4) of tap (a,b) x 16 output channels;
 * the reduction runs over the output pixels (i,j) with (i+a, j+b) inside the image.
 * dkt = dk + (t*64 + cb)*32 + half*16, xs = x + cb, g = dout + half*16.
 */
ALWAYS_INLINE void dk_tile(float *restrict dkt, const float *restrict g, const float *restrict xs,
                           int a, int b, int H, int W, const int R) {
    __m256 acc[TILE_P][2];
    for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int i = 0; i + a < H; i++) {
        const float *gi = g + (size_t)i * W * 32;
        const float *xi = xs + ((size_t)(i + a) * W + b) * 64;
        for (int j = 0; j + b < W; j++) {
            const __m256 g0 = _mm256_loadu_ps(gi + j * 32), g1 = _mm256_loadu_ps(gi + j * 32 + 8);
            for (int r = 0; r < R; r++) {
                const __m256 v = _mm256_broadcast_ss(xi + j * 64 + r);
                acc[r][0] = _mm256_fmadd_ps(v, g0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(v, g1, acc[r][1]);
            }
        }
    }
    for (int r = 0; r < R; r++) {
        _mm256_storeu_ps(dkt + r * 32, _mm256_add_ps(_mm256_loadu_ps(dkt + r * 32), acc[r][0]));
        _mm256_storeu_ps(dkt + r * 32 + 8, _mm256_add_ps(_mm256_loadu_ps(dkt + r * 32 + 8), acc[r][1]));
    }
}

static void conv2_dk_image(float *restrict dk, const float *restrict dout, const float *restrict x,
                           int H, int W) {
    for (int t = 0; t < 4; t++) {
        const int a = t >> 1, b = t & 1;
        for (int half = 0; half < 2; half++) {
            const float *g = dout + half * 16;
            float *dkt = dk + (size_t)t * 64 * 32 + half * 16;
            int cb = 0;
            for (; cb + TILE_P <= 64; cb += TILE_P) dk_tile(dkt + cb * 32, g, x + cb, a, b, H, W, 6);
            dk_tile(dkt + cb * 32, g, x + cb, a, b, H, W, 4); /* 64 = 10 x 6 + 4 */
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * Dropout masks, 2..8 lanes (see the top of the file).
 */

ALWAYS_INLINE __m256i rotl64x4(__m256i v, int k) {
    return _mm256_or_si256(_mm256_slli_epi64(v, k), _mm256_srli_epi64(v, 64 - k));
}

/* One xoshiro256** step of the 8 generators (two halves of 4); returns the keep test of each
 * lane as 32-bit all-ones / zero masks in the element order [L0 L1 L4 L5 | L2 L3 L6 L7]. */
ALWAYS_INLINE __m256 draw8(__m256i *s0, __m256i *s1, __m256i *s2, __m256i *s3, __m256i threshold) {
    __m256i keep[2];
    for (int h = 0; h < 2; h++) {
        __m256i r = _mm256_add_epi64(s1[h], _mm256_slli_epi64(s1[h], 2)); /* s1 * 5 */
        r = rotl64x4(r, 7);
        r = _mm256_add_epi64(r, _mm256_slli_epi64(r, 3));                /* * 9 */
        const __m256i t = _mm256_slli_epi64(s1[h], 17);
        s2[h] = _mm256_xor_si256(s2[h], s0[h]);
        s3[h] = _mm256_xor_si256(s3[h], s1[h]);
        s1[h] = _mm256_xor_si256(s1[h], s2[h]);
        s0[h] = _mm256_xor_si256(s0[h], s3[h]);
        s2[h] = _mm256_xor_si256(s2[h], t);
        s3[h] = rotl64x4(s3[h], 45);
        /* threshold > (r >> 40): both in [0, 2^24], so the signed compare is exact */
        keep[h] = _mm256_cmpgt_epi64(threshold, _mm256_srli_epi64(r, 40));
    }
    /* the low 32 bits of each 64-bit mask (all bits equal): per 128-bit half [a0 a1 b0 b1] */
    return _mm256_shuffle_ps(_mm256_castsi256_ps(keep[0]), _mm256_castsi256_ps(keep[1]), 0x88);
}

static void dropout_mask_lanes_avx2_direct(float *const *masks, int lanes, size_t n, float rate,
                                           PtRng *rngs) {
    if (lanes == 1) { /* batch 1: one scalar generator beats 8 lanes of which 7 are wasted */
        pt_dropout_mask(masks[0], n, rate, &rngs[0]);
        return;
    }
    const float keep_prob = 1.0f - rate, scale = 1.0f / keep_prob;
    /* state word q of lanes 0-3 in sq[0], of lanes 4-7 in sq[1]; unused lanes copy lane 0 */
    uint64_t init[4][PT_MASK_LANES];
    for (int l = 0; l < PT_MASK_LANES; l++)
        for (int q = 0; q < 4; q++) init[q][l] = rngs[l < lanes ? l : 0].s[q];
    __m256i s0[2], s1[2], s2[2], s3[2];
    for (int h = 0; h < 2; h++) {
        s0[h] = _mm256_loadu_si256((const __m256i *)(init[0] + 4 * h));
        s1[h] = _mm256_loadu_si256((const __m256i *)(init[1] + 4 * h));
        s2[h] = _mm256_loadu_si256((const __m256i *)(init[2] + 4 * h));
        s3[h] = _mm256_loadu_si256((const __m256i *)(init[3] + 4 * h));
    }
    const __m256i threshold = _mm256_set1_epi64x((long long)pt_dropout_keep_threshold(keep_prob));
    const __m256 scale_v = _mm256_set1_ps(scale);
    /* Blocks of 8 draws: the 8 keep vectors (draw k: one 32-bit mask per lane) are transposed
     * 8 x 8 with unpack / shuffle / permute2f128, giving each lane its 8 consecutive masks,
     * ANDed with the scale and stored. */
    static const int lane_of[8] = {0, 1, 4, 5, 2, 3, 6, 7}; /* element e of draw8 -> lane */
    for (size_t base = 0; base < n; base += 8) {
        const int len = n - base < 8 ? (int)(n - base) : 8;
        __m256 m[8];
        if (len == 8) {
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) m[k] = draw8(s0, s1, s2, s3, threshold);
        } else {
            for (int k = 0; k < 8; k++) m[k] = _mm256_setzero_ps();
            for (int k = 0; k < len; k++) m[k] = draw8(s0, s1, s2, s3, threshold);
        }
        const __m256 t0 = _mm256_unpacklo_ps(m[0], m[1]), t1 = _mm256_unpackhi_ps(m[0], m[1]);
        const __m256 t2 = _mm256_unpacklo_ps(m[2], m[3]), t3 = _mm256_unpackhi_ps(m[2], m[3]);
        const __m256 t4 = _mm256_unpacklo_ps(m[4], m[5]), t5 = _mm256_unpackhi_ps(m[4], m[5]);
        const __m256 t6 = _mm256_unpacklo_ps(m[6], m[7]), t7 = _mm256_unpackhi_ps(m[6], m[7]);
        const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
        const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
        const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
        const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
        __m256 col[8]; /* col[e] = element e of draws base .. base+7 */
        col[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
        col[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
        col[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
        col[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
        col[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
        col[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
        col[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
        col[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
        for (int e = 0; e < 8; e++) {
            const int l = lane_of[e];
            if (l >= lanes) continue;
            const __m256 v = _mm256_and_ps(col[e], scale_v);
            if (len == 8) {
                _mm256_storeu_ps(masks[l] + base, v);
            } else {
                float tmp[8];
                _mm256_storeu_ps(tmp, v);
                memcpy(masks[l] + base, tmp, (size_t)len * sizeof(float));
            }
        }
    }
    uint64_t out[4][PT_MASK_LANES];
    for (int h = 0; h < 2; h++) {
        _mm256_storeu_si256((__m256i *)(out[0] + 4 * h), s0[h]);
        _mm256_storeu_si256((__m256i *)(out[1] + 4 * h), s1[h]);
        _mm256_storeu_si256((__m256i *)(out[2] + 4 * h), s2[h]);
        _mm256_storeu_si256((__m256i *)(out[3] + 4 * h), s3[h]);
    }
    for (int l = 0; l < lanes; l++)
        for (int q = 0; q < 4; q++) rngs[l].s[q] = out[q][l];
}

/* ------------------------------------------------------------------------------------------
 * The set's table: these kernels over a batch, and the plain loops compiled for AVX2. */

static void conv2_forward_avx2_direct(float *out, const float *x, const float *kernel, const float *bias,
                                      int B, int H, int W) {
    for (int b = 0; b < B; b++)
        conv2_forward_image(out + (size_t)b * H * W * 32, x + (size_t)b * H * W * 64, kernel, bias, H, W);
}

static void conv2_backward_avx2_direct(float *dx, float *dkernel, float *dbias, const float *dout,
                                       const float *x, const float *packed, float dx_keep_scale, int B,
                                       int H, int W) {
    size_t n_in = (size_t)H * W * 64, n_out = (size_t)H * W * 32;
    if (dbias) conv2_bias_grad_avx2(dbias, dout, (size_t)B * H * W);
    if (dkernel)
        for (int b = 0; b < B; b++) conv2_dk_image(dkernel, dout + b * n_out, x + b * n_in, H, W);
    if (dx)
        for (int b = 0; b < B; b++)
            conv2_dx_image(dx + b * n_in, dout + b * n_out, packed, x + b * n_in, dx_keep_scale, H, W);
}

const PtKernels pt_kernels_avx2 = {
    .name = "avx2",
    .conv1_relu_pool_forward = conv1_relu_pool_forward_avx2,
    .conv1_relu_pool_backward = conv1_relu_pool_backward_avx2,
    .conv2_forward = conv2_forward_avx2_direct,
    .conv2_pack_backward = conv2_pack_backward_avx2,
    .conv2_backward = conv2_backward_avx2_direct,
    .relu_maxpool_forward = relu_maxpool_forward_avx2,
    .maxpool_backward = maxpool_backward_avx2,
    .dropout_apply = dropout_apply_avx2,
    .dropout_mask_lanes = dropout_mask_lanes_avx2_direct,
    .adam_update = adam_update_avx2,
    .adam_update_sum = adam_update_sum_avx2,
    .adam_update_outer = adam_update_outer_avx2,
    .dense_forward_one = dense_forward_one_avx2,
    .dense_input_grad_one = dense_input_grad_one_avx2,
};
