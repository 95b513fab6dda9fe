/* streams.c: the named random streams of pt_streams.h. The constants are frozen: they are the
 * ones every earlier result was computed with. */
#include "pt_streams.h"

#include "pt_rng.h"

/* First coordinates of pt_seed_derive naming the stream families. */
enum {
    STREAM_INIT = 1,     /* weight initialisation */
    STREAM_SHUFFLE = 2,  /* per-epoch permutation */
    STREAM_DROPOUT = 3,  /* dropout masks of a step */
    STREAM_SAMPLE = 4,   /* a trial's labelled subset */
    STREAM_ROTATION = 5  /* rotation pseudo-labels */
};
#define STREAM_PHASE 0x7068617365ULL /* "phase" */
#define STREAM_TRIAL 0x747269616cULL /* "trial" (+ kind) */
#define BENCH_SEED 20200429u         /* `pretext bench`: any fixed value */

uint64_t pt_stream_init(uint64_t seed, PtInitStream which) {
    return pt_seed_derive(seed, STREAM_INIT, (uint64_t)which);
}
uint64_t pt_stream_phase_fit(uint64_t seed, PtPhaseId phase) {
    return pt_seed_derive(seed, STREAM_PHASE, (uint64_t)phase);
}
uint64_t pt_stream_rotations(uint64_t seed, int split) {
    return pt_seed_derive(seed, STREAM_ROTATION, (uint64_t)split);
}
uint64_t pt_stream_trial(uint64_t seed, int kind, int index) {
    return pt_seed_derive(seed, STREAM_TRIAL + (uint64_t)kind, (uint64_t)index);
}
uint64_t pt_stream_trial_pair(uint64_t seed, int index) {
    return pt_seed_derive(seed, STREAM_TRIAL + 2, (uint64_t)index); /* after the two kinds' own */
}
uint64_t pt_stream_trial_sample(uint64_t trial_seed) { return pt_seed_derive(trial_seed, STREAM_SAMPLE, 0); }
uint64_t pt_stream_trial_fit(uint64_t trial_seed, int fit) {
    return pt_seed_derive(trial_seed, (uint64_t)fit, 0);
}
uint64_t pt_stream_epoch_shuffle(uint64_t fit_seed, int epoch) {
    return pt_seed_derive(fit_seed, STREAM_SHUFFLE, (uint64_t)epoch);
}
uint64_t pt_stream_step_dropout(uint64_t fit_seed, int epoch, long step) {
    return pt_seed_derive(fit_seed, STREAM_DROPOUT, ((uint64_t)epoch << 32) | (uint64_t)step);
}
uint64_t pt_stream_sample_dropout(uint64_t step_seed, uint64_t position) {
    return pt_seed_derive(step_seed, position, 0);
}
uint64_t pt_stream_bench(PtBenchStream which) {
    switch (which) {
    case PT_BENCH_INIT: return pt_seed_derive(BENCH_SEED, STREAM_INIT, 0);
    case PT_BENCH_DATA: return pt_seed_derive(BENCH_SEED, STREAM_SAMPLE, 0);
    case PT_BENCH_SGEMM: return pt_seed_derive(BENCH_SEED, STREAM_SAMPLE, 1);
    case PT_BENCH_DROPOUT: return BENCH_SEED;
    }
    return BENCH_SEED;
}
