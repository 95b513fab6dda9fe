/* provenance.c: what the results file records about the run that wrote it (see pt_run_parts.h). */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "pt_args.h"
#include "pt_build_commit.h"
#include "pt_cpu.h"
#include "pt_mpi.h"
#include "pt_run_parts.h"
#include "pt_sha256.h"
#include "pt_util.h"

void pt_provenance_record(PtExperiment *ex, const char *kernels) {
    PtResults *r = &ex->results;
    char hosts[sizeof r->hosts];
    pt_mpi_host_list(MPI_COMM_WORLD, hosts, sizeof hosts);
    if (ex->world.rank != 0) return;
    snprintf(r->hosts, sizeof r->hosts, "%s", hosts);
    snprintf(r->version, sizeof r->version, "%s", PRETEXT_VERSION);
    snprintf(r->git_commit, sizeof r->git_commit, "%s", PRETEXT_GIT_COMMIT);
    snprintf(r->build_flags, sizeof r->build_flags, "%s", PRETEXT_BUILD_FLAGS);
    snprintf(r->blas, sizeof r->blas, "%s", pt_blas_info());
    snprintf(r->kernels, sizeof r->kernels, "%s", kernels);
    pt_cpu_model(r->cpu, sizeof r->cpu);
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int liblen = 0;
    MPI_Get_library_version(lib, &liblen);
    char *nl = strchr(lib, '\n');
    if (nl) *nl = 0;
    char *comma = strchr(lib, ',');
    if (comma) *comma = 0;
    snprintf(r->mpi_library, sizeof r->mpi_library, "%s", lib);
    r->mpi_size = ex->world.size;
    for (int f = 0; f < 4; f++) {
        PtError err;
        snprintf(r->data_files[f], sizeof r->data_files[f], "%s", ex->ds.paths[f]);
        if (pt_sha256_file(ex->ds.paths[f], r->data_sha256[f], &err) != 0) pt_fatal("%s", err.msg);
    }
}
