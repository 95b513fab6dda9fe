/* pt_cli.h: the program's subcommands; main.c dispatches argv[1] to one of these. Each returns the
 * process exit code (PT_EXIT_*); MPI is initialised by main before run is called (except for a
 * command marked without_mpi), never for --help or --version, which main answers from usage
 * alone (they must work on a login node whose MPI cannot start outside a job). */
#ifndef PT_CLI_H
#define PT_CLI_H

#include <stdio.h>

typedef struct {
    const char *name;                       /* "run" */
    const char *summary;                    /* one line for `pretext --help` */
    int (*run)(int argc, char **argv);      /* argv[0] is the command's name */
    void (*usage)(FILE *out);               /* its --help text */
    int without_mpi;                        /* 1: main starts no MPI for it (status) */
} PtCommand;

extern const PtCommand pt_commands[];       /* ends with a NULL name */

int pt_cmd_run(int argc, char **argv);   /* the whole experiment over MPI ranks */
int pt_cmd_train(int argc, char **argv); /* the supervised benchmark only */
int pt_cmd_bench(int argc, char **argv); /* engine throughput */
int pt_cmd_status(int argc, char **argv); /* whether a results file is complete (no MPI) */
void pt_cmd_run_usage(FILE *out);
void pt_cmd_train_usage(FILE *out);
void pt_cmd_bench_usage(FILE *out);
void pt_cmd_status_usage(FILE *out);

#endif
