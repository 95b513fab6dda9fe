/* cmd_status.c: `pretext status FILE`: whether a results file is complete, read without MPI (main
 * starts none for it), for job scripts and users. A launcher's exit status can mislead: MPICH's
 * Hydra mpiexec may return 0 after a signal stopped the ranks (docs/reliability.md); the file
 * says what was done. Exit 0 complete, 75 not complete (rerun the command that wrote it to
 * resume), 1 unreadable or not a pretext results file, 2 usage. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "pt_cli.h"
#include "pt_experiment.h"
#include "pt_results.h"
#include "pt_util.h"

void pt_cmd_status_usage(FILE *out) {
    fprintf(out,
            "usage: pretext status FILE\n"
            "\n"
            "Says whether a results file written by `pretext run` is complete, with its phases\n"
            "and trials done and the state of the run that wrote it last. Needs no MPI (run it\n"
            "on a login node or in a job script after the launcher returns).\n"
            "\n"
            "Exit status: 0 complete; 75 not complete (rerun the same `pretext run` command to\n"
            "resume); 1 the file is missing, unreadable or not a pretext results file; 2 usage.\n");
}

int pt_cmd_status(int argc, char **argv) {
    if (argc != 2 || argv[1][0] == '-') {
        if (argc > 1 && argv[1][0] == '-')
            fprintf(stderr, "pretext status: unknown option '%s'\n\n", argv[1]);
        else
            fprintf(stderr, "pretext status: expected one results file, got %d arguments\n\n", argc - 1);
        pt_cmd_status_usage(stderr);
        return PT_EXIT_USAGE;
    }
    const char *path = argv[1];
    PtResults r;
    PtError err;
    if (pt_results_load(path, &r, &err) != 0) {
        fprintf(stderr, "pretext: error: %s\n", err.msg);
        return PT_EXIT_ERROR;
    }
    int phases_done = 0, phases = 0; /* the phases this file's configuration trains */
    for (int s = 0; s < r.n_seeds; s++)
        for (int k = 0; k < PT_NUM_PHASES; k++) {
            if (!pt_experiment_phase_wanted(&r.config, (PtPhaseId)k)) continue;
            phases++;
            phases_done += r.seeds[s].phase[k].done != 0;
        }
    int trials_done = 0, trials = 0;
    for (int kind = 0; kind < PT_NUM_KINDS; kind++)
        for (int i = 0; i < r.n_trials[kind]; i++) {
            trials++;
            trials_done += r.trials[kind][i].done != 0;
        }
    const PtSegment *last = r.n_segments > 0 ? &r.segments[r.n_segments - 1] : NULL;
    printf("%s: %s: %d of %d phases, %d of %d trials done; %d run segment%s", path,
           r.complete ? "complete" : "not complete", phases_done, phases, trials_done, trials,
           r.n_segments, r.n_segments == 1 ? "" : "s");
    if (last)
        printf(", the last '%s'%s (%s %s)", last->status,
               strcmp(last->status, "running") == 0 ? " (still running, or killed)" : "",
               r.complete ? "ended" : "last saved", last->end_time);
    printf("\n");
    if (!r.complete) printf("run the same `pretext run` command again to resume it\n");
    int rc = r.complete ? PT_EXIT_OK : PT_EXIT_RESUMABLE;
    pt_results_free(&r);
    return rc;
}
