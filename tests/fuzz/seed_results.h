/* seed_results.h: the small results file both the fuzz_results target and make_results_seed start
 * from, built in one place so the fuzzer's in-memory seed and the committed corpus agree. */
#ifndef PT_FUZZ_SEED_RESULTS_H
#define PT_FUZZ_SEED_RESULTS_H

#include "pt_results.h"

/* Fills r with a configuration of 2+1 trials of 4 labels, one trial of each kind finished, no
 * phase weights (they would make the seed megabytes large). Free with pt_results_free. */
void fuzz_seed_results(PtResults *r);

#endif
