/* runner.c: `pretext run`, the whole experiment over MPI ranks (written next). */
#include <stdio.h>
#include "pt_cli.h"
#include "pt_util.h"
int pt_cmd_run(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "pretext run: not yet\n"); return PT_EXIT_ERROR; }
