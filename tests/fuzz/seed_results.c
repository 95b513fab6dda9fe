/* seed_results.c: the small results file the results fuzzer and its corpus start from. */
#include "seed_results.h"

#include <stdlib.h>

void fuzz_seed_results(PtResults *r) {
    PtConfig cfg;
    pt_config_defaults(&cfg);
    cfg.trials_supervised = 2;
    cfg.trials_self_supervised = 1;
    cfg.trials_labels.n = 1;
    cfg.trials_labels.v[0] = 4;
    cfg.trials_epochs = 2;
    cfg.downstream_frozen_epochs = 1;
    cfg.downstream_finetune_epochs = 1;
    pt_results_init(r, &cfg);
    for (int k = 0; k < PT_NUM_KINDS; k++) {
        PtTrialResult *t = &r->trials[k][0];
        t->done = 1;
        t->seed = 1234 + (uint64_t)k;
        t->rank = k;
        t->test_loss = 2.0 - k;
        t->test_accuracy = 0.25 + 0.5 * k;
        t->seconds = 1.5;
        t->n_samples = 4;
        t->sample_indices = malloc(4 * sizeof(uint32_t));
        if (!t->sample_indices) abort();
        for (uint32_t i = 0; i < 4; i++) t->sample_indices[i] = 10 * i + (uint32_t)k;
        for (int e = 0; e < 2; e++) pt_history_append(&t->history, 2.0 - e, 0.1 * e, 2.1 - e, 0.2 * e, 0.5);
    }
}
