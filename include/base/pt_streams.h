/* pt_streams.h: every named random stream of pretext, in one place. Each function derives the
 * seed of one stream from its parent seed with pt_seed_derive; the constants behind them are
 * frozen (changing one changes every result that uses it). A result therefore depends only on
 * the experiment seed and the stream's coordinates (phase, trial kind and index, epoch, step,
 * sample), never on the rank that computed it or on the number of ranks. */
#ifndef PT_STREAMS_H
#define PT_STREAMS_H

#include <stdint.h>

/* The models whose Glorot initialisation has its own stream. */
typedef enum {
    PT_INIT_BENCHMARK = 0,         /* the supervised benchmark (also `pretext train`) */
    PT_INIT_PRETEXT = 1,           /* the rotation model */
    PT_INIT_SUPERVISED_TRIALS = 2, /* the starting weights shared by every supervised trial */
    PT_INIT_DOWNSTREAM_HEAD = 3    /* the dense layers the downstream trials do not transfer */
} PtInitStream;

/* The data-parallel phases. */
typedef enum { PT_PHASE_BENCHMARK = 0, PT_PHASE_PRETEXT = 1, PT_NUM_PHASES = 2 } PtPhaseId;

/* Glorot-uniform draws of a model's weights (in tensor order). */
uint64_t pt_stream_init(uint64_t experiment_seed, PtInitStream which);
/* The fit of a data-parallel phase (its shuffles and dropout masks, see below). `pretext train`
 * uses the benchmark's, so it reproduces the benchmark phase of `pretext run`. */
uint64_t pt_stream_phase_fit(uint64_t experiment_seed, PtPhaseId phase);
/* The rotation pseudo-labels: one uniform draw from {0,1,2,3} per image; split 0 train, 1 test. */
uint64_t pt_stream_rotations(uint64_t experiment_seed, int split);
/* A small-data trial's own seed, from its kind and index within the kind. The label budget is not
 * part of it: trial i of every budget draws its images from the same stream, so a larger budget's
 * images extend a smaller one's (the draws are in order, without replacement). */
uint64_t pt_stream_trial(uint64_t experiment_seed, int kind, int index);
/* With paired trials (trials.paired): the seed both kinds' trial i share. */
uint64_t pt_stream_trial_pair(uint64_t experiment_seed, int index);
/* A trial's labelled images, drawn without replacement from the training images. */
uint64_t pt_stream_trial_sample(uint64_t trial_seed);
/* A trial's fits: fit 1 is the supervised fit or the downstream frozen fit, fit 2 the
 * downstream fine-tuning fit. */
uint64_t pt_stream_trial_fit(uint64_t trial_seed, int fit);

/* Within a fit (seed = one of the fit streams above): */
/* the permutation of the training examples in an epoch; */
uint64_t pt_stream_epoch_shuffle(uint64_t fit_seed, int epoch);
/* the dropout masks of one training step (the global batch); */
uint64_t pt_stream_step_dropout(uint64_t fit_seed, int epoch, long step);
/* the masks of one sample, by its position in the global batch (so a sample's masks do not
 * depend on how the batch is split over the ranks). */
uint64_t pt_stream_sample_dropout(uint64_t step_seed, uint64_t position);

/* Fixed seeds of `pretext bench`'s synthetic workloads. */
typedef enum { PT_BENCH_INIT, PT_BENCH_DATA, PT_BENCH_SGEMM, PT_BENCH_DROPOUT } PtBenchStream;
uint64_t pt_stream_bench(PtBenchStream which);

#endif
