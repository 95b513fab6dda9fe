/* test_rng.c: the seeded generator and its sampling helpers: determinism, seed derivation,
 * range and uniformity of bounded integers (chi-square with generous bounds), shuffles that are
 * permutations, and sampling without replacement (distinct, in range, uniform). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pt_rng.h"
#include "pt_streams.h"

/* Pearson's chi-square statistic of counts against a uniform expectation. */
static double chi_square_uniform(const uint64_t *counts, int bins, uint64_t total) {
    double expected = (double)total / bins, chi2 = 0.0;
    for (int b = 0; b < bins; b++) {
        double d = (double)counts[b] - expected;
        chi2 += d * d / expected;
    }
    return chi2;
}

/* A generous bound for chi-square with df degrees of freedom: mean + 6 standard deviations
 * (sd = sqrt(2 df)); a correct generator essentially never exceeds it, a biased one does. */
static double chi_square_bound(int df) { return df + 6.0 * sqrt(2.0 * df); }

static void test_determinism(void **state) {
    (void)state;
    PtRng a, b, c;
    pt_rng_seed(&a, 12345);
    pt_rng_seed(&b, 12345);
    pt_rng_seed(&c, 12346);
    int differ = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = pt_rng_next(&a), y = pt_rng_next(&b), z = pt_rng_next(&c);
        assert_true(x == y);
        differ += (x != z);
    }
    assert_true(differ >= 999);
    /* Seed 0 must still give a working (non-zero) stream. */
    PtRng zero;
    pt_rng_seed(&zero, 0);
    uint64_t any = 0;
    for (int i = 0; i < 4; i++) any |= pt_rng_next(&zero);
    assert_true(any != 0);
}

static int cmp_u64(const void *x, const void *y) {
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return (a > b) - (a < b);
}

static void test_seed_derive(void **state) {
    (void)state;
    /* Every (parent, a, b) in a small grid gives a different seed; including swapped a and b. */
    enum { P = 4, A = 8, B = 8 };
    uint64_t *seeds = malloc(P * A * B * sizeof *seeds);
    assert_non_null(seeds);
    int k = 0;
    for (uint64_t p = 0; p < P; p++)
        for (uint64_t a = 0; a < A; a++)
            for (uint64_t b = 0; b < B; b++) {
                seeds[k] = pt_seed_derive(p, a, b);
                assert_true(seeds[k] == pt_seed_derive(p, a, b)); /* deterministic */
                k++;
            }
    qsort(seeds, (size_t)k, sizeof *seeds, cmp_u64);
    for (int i = 1; i < k; i++) assert_true(seeds[i] != seeds[i - 1]);
    assert_true(pt_seed_derive(7, 1, 2) != pt_seed_derive(7, 2, 1));
    free(seeds);

    /* Streams from neighbouring derived seeds are unrelated: their first outputs differ. */
    PtRng r1, r2;
    pt_rng_seed(&r1, pt_stream_epoch_shuffle(42, 0));
    pt_rng_seed(&r2, pt_stream_epoch_shuffle(42, 1));
    int same = 0;
    for (int i = 0; i < 100; i++) same += (pt_rng_next(&r1) == pt_rng_next(&r2));
    assert_int_equal(same, 0);
}

static void test_below_range_and_uniformity(void **state) {
    (void)state;
    PtRng rng;
    pt_rng_seed(&rng, 7);
    const uint32_t bounds[7] = {1, 2, 3, 10, 1000, 2147483649u, UINT32_MAX};
    for (int t = 0; t < 7; t++)
        for (int i = 0; i < 20000; i++) assert_true(pt_rng_below(&rng, bounds[t]) < bounds[t]);

    /* n = 10 and n = 7 (not a power of two), 100000 draws each. */
    const int ns[2] = {10, 7};
    for (int t = 0; t < 2; t++) {
        uint64_t counts[10] = {0};
        const uint64_t draws = 100000;
        for (uint64_t i = 0; i < draws; i++) counts[pt_rng_below(&rng, (uint32_t)ns[t])]++;
        double chi2 = chi_square_uniform(counts, ns[t], draws);
        print_message("  below(%d): chi2 = %.2f (bound %.1f)\n", ns[t], chi2,
                      chi_square_bound(ns[t] - 1));
        assert_true(chi2 < chi_square_bound(ns[t] - 1));
    }

    /* A large non-power-of-two bound: 3 * 2^30. Values below 2^31 should be 2/3 of draws; a
     * modulo-biased generator would put noticeably more there. */
    const uint32_t big = 3u << 30;
    uint64_t low = 0;
    const int draws = 300000;
    for (int i = 0; i < draws; i++) low += pt_rng_below(&rng, big) < (1u << 31);
    double frac = (double)low / draws;
    print_message("  below(3*2^30): fraction under 2^31 = %.4f (2/3 expected)\n", frac);
    assert_true(fabs(frac - 2.0 / 3.0) < 0.005); /* sd is 0.00086 */
}

static void test_uniform_float(void **state) {
    (void)state;
    PtRng rng;
    pt_rng_seed(&rng, 8);
    double sum = 0.0;
    uint64_t counts[16] = {0};
    const int draws = 160000;
    for (int i = 0; i < draws; i++) {
        float u = pt_rng_uniform(&rng);
        assert_true(u >= 0.0f && u < 1.0f);
        sum += u;
        counts[(int)(u * 16.0f)]++;
    }
    assert_true(fabs(sum / draws - 0.5) < 0.005);
    assert_true(chi_square_uniform(counts, 16, (uint64_t)draws) < chi_square_bound(15));
}

static void assert_is_permutation(const uint32_t *a, uint32_t n) {
    uint8_t *seen = calloc(n ? n : 1, 1);
    assert_non_null(seen);
    for (uint32_t i = 0; i < n; i++) {
        assert_true(a[i] < n);
        assert_int_equal(seen[a[i]], 0);
        seen[a[i]] = 1;
    }
    free(seen);
}

static void test_shuffle(void **state) {
    (void)state;
    PtRng rng;
    pt_rng_seed(&rng, 9);
    const uint32_t n = 1000;
    uint32_t *a = malloc(n * sizeof *a);
    assert_non_null(a);
    for (uint32_t i = 0; i < n; i++) a[i] = i;
    pt_shuffle_u32(a, n, &rng);
    assert_is_permutation(a, n);
    uint32_t fixed = 0;
    for (uint32_t i = 0; i < n; i++) fixed += (a[i] == i);
    assert_true(fixed < 10); /* about 1 expected */
    free(a);

    /* Uniform over positions: where element 0 of 8 lands, over many shuffles. */
    uint64_t counts[8] = {0};
    const int rounds = 80000;
    for (int t = 0; t < rounds; t++) {
        uint32_t b[8] = {0, 1, 2, 3, 4, 5, 6, 7};
        pt_shuffle_u32(b, 8, &rng);
        for (int i = 0; i < 8; i++)
            if (b[i] == 0) counts[i]++;
    }
    assert_true(chi_square_uniform(counts, 8, (uint64_t)rounds) < chi_square_bound(7));
    /* Shuffling 0 or 1 element is a no-op. */
    uint32_t one = 5;
    pt_shuffle_u32(&one, 1, &rng);
    assert_int_equal(one, 5);
    pt_shuffle_u32(NULL, 0, &rng);
}

static void test_sample_without_replacement(void **state) {
    (void)state;
    PtRng rng;
    pt_rng_seed(&rng, 10);

    /* The small-data draw: 150 distinct of 60000. */
    uint32_t picks[150];
    pt_sample_without_replacement(picks, 150, 60000, &rng);
    uint32_t sorted[150];
    memcpy(sorted, picks, sizeof picks);
    for (int i = 0; i < 150; i++) assert_true(sorted[i] < 60000);
    for (int i = 1; i < 150; i++) /* insertion sort, then adjacent values must differ */
        for (int j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
            uint32_t t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    for (int i = 1; i < 150; i++) assert_true(sorted[i] != sorted[i - 1]);

    /* k == n: a permutation. */
    uint32_t all[100];
    pt_sample_without_replacement(all, 100, 100, &rng);
    assert_is_permutation(all, 100);
    uint32_t single;
    pt_sample_without_replacement(&single, 1, 1, &rng);
    assert_int_equal(single, 0);
    pt_sample_without_replacement(NULL, 0, 10, &rng);

    /* Uniformity: 3 of 10, 30000 times. Each value picked in 3/10 of the draws, and the first
     * pick is uniform on its own. */
    uint64_t picked[10] = {0}, first[10] = {0};
    const int rounds = 30000;
    for (int t = 0; t < rounds; t++) {
        uint32_t s[3];
        pt_sample_without_replacement(s, 3, 10, &rng);
        assert_true(s[0] != s[1] && s[0] != s[2] && s[1] != s[2]);
        for (int i = 0; i < 3; i++) {
            assert_true(s[i] < 10);
            picked[s[i]]++;
        }
        first[s[0]]++;
    }
    double chi_picked = chi_square_uniform(picked, 10, 3ull * rounds);
    double chi_first = chi_square_uniform(first, 10, (uint64_t)rounds);
    print_message("  sample 3 of 10: chi2 picked %.2f, first %.2f (bound %.1f)\n", chi_picked,
                  chi_first, chi_square_bound(9));
    assert_true(chi_picked < chi_square_bound(9));
    assert_true(chi_first < chi_square_bound(9));

    /* Same seed, same sample. */
    PtRng a, b;
    pt_rng_seed(&a, 99);
    pt_rng_seed(&b, 99);
    uint32_t sa[20], sb[20];
    pt_sample_without_replacement(sa, 20, 60000, &a);
    pt_sample_without_replacement(sb, 20, 60000, &b);
    assert_memory_equal(sa, sb, sizeof sa);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_seed_derive),
        cmocka_unit_test(test_below_range_and_uniformity),
        cmocka_unit_test(test_uniform_float),
        cmocka_unit_test(test_shuffle),
        cmocka_unit_test(test_sample_without_replacement),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
