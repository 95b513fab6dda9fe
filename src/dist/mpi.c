/* mpi.c: the checked MPI wrapper, the job-wide abort handler and the host list (see pt_mpi.h). */
#define _POSIX_C_SOURCE 200809L
#include "pt_mpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pt_util.h"

void pt_mpi_check_at(int rc, const char *what, const char *file, int line) {
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    pt_fatal_at(file, line, "MPI call %s failed: %s", what, msg);
}

/* The message is already printed; before MPI_Abort the launcher gets a moment to forward it:
 * MPICH's Hydra, busy, was seen to kill the job before passing on the last lines a rank wrote
 * just before aborting. */
static void abort_job(int exit_code) {
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (initialized && !finalized && pt_world_size() > 1) {
        fflush(stdout);
        fflush(stderr);
        nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = 200 * 1000 * 1000}, NULL);
        MPI_Abort(MPI_COMM_WORLD, exit_code);
    }
    exit(exit_code);
}

void pt_mpi_setup_errors(void) {
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    pt_util_set_rank(rank, size);
    pt_set_abort_handler(abort_job);
}

void pt_mpi_host_list(MPI_Comm comm, char *hosts, size_t n) {
    int size = 1;
    MPI_Comm_size(comm, &size);
    char name[MPI_MAX_PROCESSOR_NAME] = {0};
    int len = 0;
    MPI_Get_processor_name(name, &len);
    char *all = pt_calloc((size_t)size, MPI_MAX_PROCESSOR_NAME);
    pt_mpi_check(MPI_Allgather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all, MPI_MAX_PROCESSOR_NAME,
                               MPI_CHAR, comm),
                 "MPI_Allgather (host names)");
    if (n) hosts[0] = 0;
    for (int i = 0; i < size; i++) {
        const char *h = all + (size_t)i * MPI_MAX_PROCESSOR_NAME;
        int seen = 0;
        for (int j = 0; j < i; j++)
            if (strcmp(h, all + (size_t)j * MPI_MAX_PROCESSOR_NAME) == 0) seen = 1;
        if (seen) continue;
        size_t used = strlen(hosts);
        if (used + 1 < n) snprintf(hosts + used, n - used, "%s%s", used ? "," : "", h);
    }
    free(all);
}
