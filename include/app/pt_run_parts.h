/* pt_run_parts.h: the parts of `pretext run` around the experiment itself: what the results
 * record about the run (provenance), and the summary table printed at the end. */
#ifndef PT_RUN_PARTS_H
#define PT_RUN_PARTS_H

#include "pt_experiment.h"

/* Fills rank 0's results provenance: build, kernels, CPU, BLAS, MPI, hosts, data files and their
 * SHA-256. Collective (host names are gathered). */
void pt_provenance_record(PtExperiment *ex, const char *kernels);

/* Prints the summary table of a results set (rank 0): phases' test metrics; per kind of trial
 * n, mean, sd, median, min and max of the test accuracy and loss. */
void pt_summary_print(const PtResults *r, const char *path);

#endif
