/* pt_rng.h: the project's own seeded random generator (xoshiro256** seeded through splitmix64)
 * and the sampling helpers built on it. Every random stream in pretext (init, shuffles, dropout,
 * sampled trial data, rotation labels) is derived from the base seed and a few integers naming
 * the stream (pt_streams.h names them all), never from time or rand(), so a result does not depend
 * on rank or process count. */
#ifndef PT_RNG_H
#define PT_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4];
} PtRng;

/* Mixes a 64-bit value (splitmix64 finaliser). */
uint64_t pt_mix64(uint64_t x);
/* Derives a child seed from a parent seed and two integers; different inputs give unrelated seeds. */
uint64_t pt_seed_derive(uint64_t parent, uint64_t a, uint64_t b);

void pt_rng_seed(PtRng *rng, uint64_t seed);
uint64_t pt_rng_next(PtRng *rng);
/* Uniform integer in [0, n), unbiased; n >= 1. */
uint32_t pt_rng_below(PtRng *rng, uint32_t n);
/* Uniform float in [0, 1) with 24 random bits. */
float pt_rng_uniform(PtRng *rng);

/* Fisher-Yates shuffle of a[0..n). */
void pt_shuffle_u32(uint32_t *a, size_t n, PtRng *rng);
/* Writes k distinct values drawn uniformly from [0, n) into out, in draw order; k <= n.
 * Uses O(k) memory (no array of size n). */
void pt_sample_without_replacement(uint32_t *out, uint32_t k, uint32_t n, PtRng *rng);

#endif
