/* pt_mpi.h: the MPI pieces every distributed module shares: the checked-call wrapper that names
 * the failed call, file and line, and the abort handler that makes a fatal error on one rank end
 * the whole job (MPI_Abort), so no rank is ever left waiting. */
#ifndef PT_MPI_H
#define PT_MPI_H

#include <mpi.h>
#include <stddef.h>

/* Checked MPI call: a return code other than MPI_SUCCESS names the call and ends the job. */
void pt_mpi_check_at(int rc, const char *what, const char *file, int line);
#define pt_mpi_check(rc, what) pt_mpi_check_at((rc), (what), __FILE__, __LINE__)

/* Records this process's rank and the job size for messages (pt_util_set_rank) and installs the
 * abort handler: MPI_Abort(MPI_COMM_WORLD) while MPI runs with more than one rank, else exit.
 * Call right after MPI_Init. */
void pt_mpi_setup_errors(void);

/* The distinct host names of the ranks of comm, comma-separated in rank order of first
 * appearance, into hosts (on every rank). Collective. */
void pt_mpi_host_list(MPI_Comm comm, char *hosts, size_t n);

#endif
