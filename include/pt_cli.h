/* pt_cli.h: the program's subcommands; main.c dispatches argv[1] to one of these. Each returns
 * the process exit code (PT_EXIT_*) and prints its own --help. MPI is initialised by main. */
#ifndef PT_CLI_H
#define PT_CLI_H

int pt_cmd_train(int argc, char **argv); /* pretext train: the seed's supervised benchmark, one process */
int pt_cmd_run(int argc, char **argv);   /* pretext run: the whole experiment over MPI ranks */
int pt_cmd_bench(int argc, char **argv); /* pretext bench: engine throughput measurements */

#endif
