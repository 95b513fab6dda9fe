/* provenance.c: what the results file records about the run segment that is writing it (see
 * pt_run_parts.h): the current segment's build, kernels, CPU, BLAS, MPI, hosts and data hashes. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "pt_args.h"
#include "pt_build_commit.h"
#include "pt_cpu.h"
#include "pt_mpi.h"
#include "pt_run_parts.h"
#include "pt_util.h"

void pt_provenance_record(PtExperiment *ex, const char *kernels) {
    PtResults *r = &ex->results;
    char hosts[sizeof r->segments[0].hosts];
    pt_mpi_host_list(MPI_COMM_WORLD, hosts, sizeof hosts);
    if (ex->world.rank != 0) return;
    PtSegment *seg = &r->segments[r->n_segments - 1];
    snprintf(seg->hosts, sizeof seg->hosts, "%s", hosts);
    snprintf(seg->version, sizeof seg->version, "%s", PRETEXT_VERSION);
    snprintf(seg->git_commit, sizeof seg->git_commit, "%s", PRETEXT_GIT_COMMIT);
    snprintf(seg->build_flags, sizeof seg->build_flags, "%s", PRETEXT_BUILD_FLAGS);
    snprintf(seg->blas, sizeof seg->blas, "%s", pt_blas_info());
    snprintf(seg->kernels, sizeof seg->kernels, "%s", kernels);
    pt_cpu_model(seg->cpu, sizeof seg->cpu);
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int liblen = 0;
    MPI_Get_library_version(lib, &liblen);
    char *nl = strchr(lib, '\n');
    if (nl) *nl = 0;
    char *comma = strchr(lib, ',');
    if (comma) *comma = 0;
    snprintf(seg->mpi_library, sizeof seg->mpi_library, "%.*s", (int)sizeof seg->mpi_library - 1, lib);
    seg->mpi_size = ex->world.size;
    for (int f = 0; f < 4; f++) memcpy(seg->data_sha256[f], r->data_sha256[f], sizeof seg->data_sha256[f]);
}
