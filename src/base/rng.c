/* rng.c: xoshiro256** generator seeded through splitmix64, seed derivation for named streams,
 * unbiased bounded integers, shuffles and sampling without replacement. */
#include "pt_rng.h"

#include <stdlib.h>

#include "pt_util.h"

uint64_t pt_mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t pt_seed_derive(uint64_t parent, uint64_t a, uint64_t b) {
    uint64_t h = pt_mix64(parent ^ 0x5045525445585431ULL); /* "PRETEXT1" */
    h = pt_mix64(h ^ pt_mix64(a + 0x632be59bd9b4e019ULL));
    h = pt_mix64(h ^ pt_mix64(b + 0x8cb92ba72f3d8dd7ULL));
    return h;
}

void pt_rng_seed(PtRng *rng, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) {
        x += 0x9e3779b97f4a7c15ULL;
        uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        rng->s[i] = z ^ (z >> 31);
    }
    if ((rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3]) == 0) rng->s[0] = 1; /* never all zero */
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t pt_rng_next(PtRng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint32_t pt_rng_below(PtRng *rng, uint32_t n) {
    if (n <= 1) return 0;
    /* Lemire's nearly-divisionless method with rejection: exactly uniform. */
    uint64_t m = (uint64_t)(uint32_t)(pt_rng_next(rng) >> 32) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (uint64_t)(uint32_t)(pt_rng_next(rng) >> 32) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

float pt_rng_uniform(PtRng *rng) {
    return (float)(pt_rng_next(rng) >> 40) * (1.0f / 16777216.0f);
}

void pt_shuffle_u32(uint32_t *a, size_t n, PtRng *rng) {
    for (size_t i = n; i > 1; i--) {
        size_t j = pt_rng_below(rng, (uint32_t)i);
        uint32_t tmp = a[i - 1];
        a[i - 1] = a[j];
        a[j] = tmp;
    }
}

/* Floyd's algorithm would not give draw order; instead a sparse Fisher-Yates over [0, n) kept in
 * a small open-addressing map of displaced entries: O(k) memory, exact uniform draws in order. */
typedef struct { uint32_t key, value; } SwapEntry;

static uint32_t map_get(const SwapEntry *tab, uint32_t cap, uint32_t key, int *found) {
    uint32_t h = (uint32_t)pt_mix64(key) & (cap - 1);
    while (tab[h].key != UINT32_MAX) {
        if (tab[h].key == key) { *found = 1; return tab[h].value; }
        h = (h + 1) & (cap - 1);
    }
    *found = 0;
    return key;
}

static void map_put(SwapEntry *tab, uint32_t cap, uint32_t key, uint32_t value) {
    uint32_t h = (uint32_t)pt_mix64(key) & (cap - 1);
    while (tab[h].key != UINT32_MAX && tab[h].key != key) h = (h + 1) & (cap - 1);
    tab[h].key = key;
    tab[h].value = value;
}

void pt_sample_without_replacement(uint32_t *out, uint32_t k, uint32_t n, PtRng *rng) {
    if (k > n) pt_fatal("cannot draw %u distinct values from %u", k, n);
    uint32_t cap = 16;
    while (cap < 4u * (k + 1)) cap <<= 1;
    SwapEntry *tab = pt_malloc(cap * sizeof *tab);
    for (uint32_t i = 0; i < cap; i++) tab[i].key = UINT32_MAX;
    for (uint32_t i = 0; i < k; i++) {
        /* Virtual array a[0..n): pick j in [i, n), swap a[i] and a[j], output a[i]. */
        uint32_t j = i + pt_rng_below(rng, n - i);
        int found;
        uint32_t aj = map_get(tab, cap, j, &found);
        uint32_t ai = map_get(tab, cap, i, &found);
        out[i] = aj;
        map_put(tab, cap, j, ai);
    }
    free(tab);
}
