/* pt_cpu.h: the CPU's model name, for the run header, `pretext --version` and the results'
 * provenance (speed figures and kernel sets are meaningless without it). */
#ifndef PT_CPU_H
#define PT_CPU_H

#include <stddef.h>

/* "AMD EPYC 9R14 96-Core Processor" or similar: the cpuid brand string (x86), else /proc/cpuinfo's
 * model name (Linux), else "unknown CPU". */
void pt_cpu_model(char *buf, size_t n);

#endif
