/* main.c: the pretext program: parses the subcommand and hands over to src/cli_*.c. */
#include <stdio.h>
int main(void) { puts("pretext: under construction"); return 0; }
