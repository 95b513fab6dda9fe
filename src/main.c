/* main.c: the pretext program: initialises MPI and dispatches the subcommand. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "pt_build_commit.h"
#include "pt_cli.h"
#include "pt_train.h"
#include "pt_util.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: pretext <command> [options]\n"
            "\n"
            "commands:\n"
            "  run     the whole experiment (benchmark, pretext task, 20+20 trials) over MPI ranks;\n"
            "          results in one HDF5 file\n"
            "  train   the supervised benchmark only, with Keras-like epoch lines\n"
            "  bench   engine throughput (images/s) for training and inference\n"
            "\n"
            "'pretext <command> --help' describes each. Version " PRETEXT_VERSION " (" PRETEXT_GIT_COMMIT ").\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? PT_EXIT_USAGE : PT_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("pretext " PRETEXT_VERSION " (" PRETEXT_GIT_COMMIT ")\n");
        return PT_EXIT_OK;
    }
    int (*command)(int, char **) = NULL;
    if (strcmp(argv[1], "run") == 0) command = pt_cmd_run;
    else if (strcmp(argv[1], "train") == 0) command = pt_cmd_train;
    else if (strcmp(argv[1], "bench") == 0) command = pt_cmd_bench;
    if (!command) {
        fprintf(stderr, "pretext: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return PT_EXIT_USAGE;
    }
    /* Catch the stop signals from the very start (a batch system's warning can arrive while MPI
     * starts up), and again after MPI_Init in case the MPI library installed its own. */
    pt_install_signal_handlers();
    MPI_Init(&argc, &argv);
    pt_install_signal_handlers();
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    pt_util_set_rank(rank, size);
    int rc = command(argc - 1, argv + 1);
    if (size > 1) {
        /* A rank that failed alone must not leave the others waiting in MPI_Finalize. */
        int worst = rc;
        MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
        rc = worst;
    }
    MPI_Finalize();
    return rc;
}
