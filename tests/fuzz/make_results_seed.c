/* make_results_seed.c: writes a small but complete pretext results file for the fuzzing corpus of
 * fuzz_results: a configuration with 2+1 trials, one of each kind finished, no phase weights
 * (those would make the seed megabytes large). Usage: make_results_seed OUT.h5 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seed_results.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: make_results_seed OUT.h5\n");
        return 2;
    }
    PtResults r;
    fuzz_seed_results(&r);
    PtError err;
    int rc = pt_results_save(&r, argv[1], &err);
    if (rc != 0) fprintf(stderr, "make_results_seed: %s\n", err.msg);
    pt_results_free(&r);
    return rc ? 1 : 0;
}
