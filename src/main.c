/* main.c: the pretext program: dispatches the subcommand, answers --help and --version without
 * starting MPI, otherwise initialises MPI around the command and combines the ranks' exit
 * statuses. */
#define _POSIX_C_SOURCE 200809L
#include <mpi.h>
#include <stdio.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <stdlib.h>
#include <string.h>

#include "pt_args.h"
#include "pt_cli.h"
#include "pt_mpi.h"
#include "pt_signals.h"
#include "pt_util.h"

const PtCommand pt_commands[] = {
    {"run", "the whole experiment (benchmark, pretext task, 20+20 trials) over MPI ranks;\n"
            "          results in one HDF5 file", pt_cmd_run, pt_cmd_run_usage, 0},
    {"train", "the supervised benchmark only, with Keras-like epoch lines", pt_cmd_train, pt_cmd_train_usage, 0},
    {"bench", "engine throughput (images/s) for training and inference", pt_cmd_bench, pt_cmd_bench_usage, 0},
    {"status", "whether a results file is complete (exit 0) or resumable (75); no MPI",
     pt_cmd_status, pt_cmd_status_usage, 1},
    {NULL, NULL, NULL, NULL, 0},
};

/* Freed memory stays in the process's heap. glibc serves blocks of 128 KB and more with mmap and
 * returns them to the kernel at free, so every results-file save (built in memory: 3.4 MB for
 * session5, more for a study, at every trial and epoch) and every trial's model and optimizer
 * buffers fault their pages in afresh; on a virtual machine with both cores busy that made a
 * save take 34 ms instead of 12 (building the image 23 ms instead of 4). glibc caps the mmap
 * threshold at 32 MiB; larger blocks (the data set) are allocated once. Speed only. */
static void keep_freed_memory(void) {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

static void usage(FILE *out) {
    fprintf(out, "usage: pretext <command> [options]\n\ncommands:\n");
    for (const PtCommand *c = pt_commands; c->name; c++) fprintf(out, "  %-7s %s\n", c->name, c->summary);
    fprintf(out, "\n'pretext <command> --help' describes each; 'pretext --version' names the build,\n"
                 "the kernel sets and the CPU.\n");
}

/* How bad an exit status is, for combining the ranks' statuses: any error beats an interruption,
 * an interruption beats success. */
static int severity(int rc) {
    switch (rc) {
    case PT_EXIT_OK: return 0;
    case PT_EXIT_RESUMABLE: return 1;
    case PT_EXIT_USAGE: return 2;
    default: return 3; /* PT_EXIT_ERROR and anything unexpected */
    }
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? PT_EXIT_USAGE : PT_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        pt_print_version(stdout);
        return PT_EXIT_OK;
    }
    const PtCommand *command = NULL;
    for (const PtCommand *c = pt_commands; c->name; c++)
        if (strcmp(argv[1], c->name) == 0) command = c;
    if (!command) {
        fprintf(stderr, "pretext: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return PT_EXIT_USAGE;
    }
    /* --help and --version of a command: no MPI (a login node's MPI may not start outside a job). */
    int info = pt_args_wants_info(argc - 1, argv + 1);
    if (info == 'h') {
        command->usage(stdout);
        return PT_EXIT_OK;
    }
    if (info == 'v') {
        pt_print_version(stdout);
        return PT_EXIT_OK;
    }
    /* HDF5's own flock on every file it opens fails on file systems without flock (Lustre without
     * -o flock, some NFS) and adds nothing here: only rank 0 opens the results file, under
     * pretext's own fcntl lock (pt_lock.h). A value the user set wins. */
    setenv("HDF5_USE_FILE_LOCKING", "FALSE", 0);
    if (command->without_mpi) return command->run(argc - 1, argv + 1);
    /* Catch the stop signals from the very start (a batch system's warning can arrive while MPI
     * starts up), and again after MPI_Init in case the MPI library installed its own. */
    pt_install_signal_handlers();
    keep_freed_memory();
    MPI_Init(&argc, &argv);
    pt_install_signal_handlers();
    pt_mpi_setup_errors();
    int rc = command->run(argc - 1, argv + 1);
    if (pt_world_size() > 1) {
        /* Every rank ends with the worst status of all: a rank that failed while another was
         * interrupted makes the job fail (not "resumable"). The reduction also keeps a rank that
         * failed alone from leaving the others waiting in MPI_Finalize. */
        int mine[2] = {severity(rc), rc}, worst[2];
        MPI_Allreduce(mine, worst, 1, MPI_2INT, MPI_MAXLOC, MPI_COMM_WORLD);
        /* MPI_MAXLOC keeps the status (the "location") of the highest severity */
        rc = worst[1];
    }
    MPI_Finalize();
    return rc;
}
