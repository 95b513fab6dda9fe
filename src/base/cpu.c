/* cpu.c: the CPU's model name (see pt_cpu.h). */
#define _POSIX_C_SOURCE 200809L
#include "pt_cpu.h"

#include <stdio.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

static void trim_into(char *buf, size_t n, const char *s) {
    while (*s == ' ' || *s == '\t') s++;
    snprintf(buf, n, "%s", s);
    size_t len = strlen(buf);
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' ' || buf[len - 1] == '\t')) buf[--len] = 0;
}

/* The cpuid brand string (x86): the CPU that actually executes, also under an emulator. */
static int cpuid_brand(char *buf, size_t n) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned int regs[12];
    unsigned int max = 0, b, c, d;
    if (!__get_cpuid(0x80000000u, &max, &b, &c, &d) || max < 0x80000004u) return 0;
    for (unsigned int i = 0; i < 3; i++)
        __get_cpuid(0x80000002u + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2], &regs[4 * i + 3]);
    char brand[49];
    memcpy(brand, regs, 48);
    brand[48] = 0;
    trim_into(buf, n, brand);
    return buf[0] != 0;
#else
    (void)buf;
    (void)n;
    return 0;
#endif
}

void pt_cpu_model(char *buf, size_t n) {
    if (n == 0) return;
    buf[0] = 0;
    if (cpuid_brand(buf, n)) return;
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            /* x86: "model name"; some ARM kernels: "Model" or "Hardware" */
            if (strncmp(line, "model name", 10) == 0 || strncmp(line, "Model", 5) == 0 ||
                strncmp(line, "Hardware", 8) == 0) {
                char *colon = strchr(line, ':');
                if (colon && colon[1]) {
                    trim_into(buf, n, colon + 1);
                    if (buf[0]) break;
                }
            }
        }
        fclose(f);
        if (buf[0]) return;
    }
    snprintf(buf, n, "unknown CPU");
}
