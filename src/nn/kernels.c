/* kernels.c: which kernel set runs (see pt_kernels.h): what the CPU supports (cpuid, through the
 * compiler's __builtin_cpu_supports, which also checks that the OS saves the vector registers),
 * the names, the process-wide choice, and TensorFlow's floating-point mode (denormals flushed). */
#include "pt_kernels.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h> /* _mm_getcsr/_mm_setcsr: SSE, in every x86-64 CPU */
#define PT_MXCSR_FTZ_DAZ 0x8040u /* bit 15 flush to zero, bit 6 denormals are zero */
#endif

int pt_fp_flush_denormals(int on) {
#if defined(__x86_64__) || defined(__i386__)
    unsigned csr = _mm_getcsr();
    _mm_setcsr(on ? csr | PT_MXCSR_FTZ_DAZ : csr & ~PT_MXCSR_FTZ_DAZ);
    return 1;
#elif defined(__aarch64__)
    unsigned long fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    fpcr = on ? fpcr | (1ul << 24) : fpcr & ~(1ul << 24); /* FZ: flushes denormal inputs and results */
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr));
    return 1;
#else
    (void)on;
    return 0;
#endif
}

int pt_fp_flushes_denormals(void) {
    volatile float smallest_normal = FLT_MIN, half = 0.5f;
    float product = smallest_normal * half; /* a denormal, unless flushed */
    return product == 0.0f;
}

static const char *const set_names[PT_NUM_KSETS] = {"avx512", "avx2", "generic"};

const PtKernels *pt_kernels_table(PtKernelSet set) {
    switch (set) {
#if defined(PT_HAVE_X86_KERNELS)
    case PT_KSET_AVX512: return &pt_kernels_avx512;
    case PT_KSET_AVX2: return &pt_kernels_avx2;
#else
    case PT_KSET_AVX512: return NULL;
    case PT_KSET_AVX2: return NULL;
#endif
    case PT_KSET_GENERIC: return &pt_kernels_generic;
    default: return NULL;
    }
}

#if defined(__x86_64__) || defined(__i386__)
/* The instructions each set needs, as __builtin_cpu_supports names them; "" ends a list. */
static const char *const needs_avx2[] = {"avx2", "fma", ""};
static const char *const needs_avx512[] = {"avx2", "fma", "avx512f", "avx512vl", "avx512bw", "avx512dq", ""};
#endif

/* Appends to missing (if not NULL) the needed instructions this CPU lacks; returns their count. */
static int count_missing(PtKernelSet set, char *missing, size_t n) {
    if (missing && n) missing[0] = '\0';
    if (set == PT_KSET_GENERIC) return 0;
    if (!pt_kernels_table(set)) {
        if (missing) snprintf(missing, n, "(not built into this program: not an x86-64 build)");
        return 1;
    }
    int count = 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    const char *const *needs = set == PT_KSET_AVX512 ? needs_avx512 : needs_avx2;
    for (int i = 0; needs[i][0]; i++) {
        int has = 0;
        /* __builtin_cpu_supports needs a string literal */
        if (strcmp(needs[i], "avx2") == 0) has = __builtin_cpu_supports("avx2");
        else if (strcmp(needs[i], "fma") == 0) has = __builtin_cpu_supports("fma");
        else if (strcmp(needs[i], "avx512f") == 0) has = __builtin_cpu_supports("avx512f");
        else if (strcmp(needs[i], "avx512vl") == 0) has = __builtin_cpu_supports("avx512vl");
        else if (strcmp(needs[i], "avx512bw") == 0) has = __builtin_cpu_supports("avx512bw");
        else if (strcmp(needs[i], "avx512dq") == 0) has = __builtin_cpu_supports("avx512dq");
        if (!has) {
            count++;
            if (missing) {
                size_t used = strlen(missing);
                snprintf(missing + used, n - used, "%s%s", used ? ", " : "", needs[i]);
            }
        }
    }
#endif
    return count;
}

int pt_kernels_supported(PtKernelSet set) {
    if (set < 0 || set >= PT_NUM_KSETS) return 0;
    return count_missing(set, NULL, 0) == 0;
}

PtKernelSet pt_kernels_best(void) {
    for (int s = 0; s < PT_NUM_KSETS; s++)
        if (pt_kernels_supported((PtKernelSet)s)) return (PtKernelSet)s;
    return PT_KSET_GENERIC;
}

int pt_kernels_parse(const char *name, PtKernelSet *set, PtError *err) {
    if (!name || !name[0] || strcmp(name, "auto") == 0) {
        *set = pt_kernels_best();
        return 0;
    }
    for (int s = 0; s < PT_NUM_KSETS; s++) {
        if (strcmp(name, set_names[s]) != 0) continue;
        char missing[256];
        if (count_missing((PtKernelSet)s, missing, sizeof missing) > 0)
            return pt_error_set(err, "kernel set '%s' cannot run on this CPU: it lacks %s (use auto, or "
                                     "one of the sets this CPU supports)", name, missing);
        *set = (PtKernelSet)s;
        return 0;
    }
    return pt_error_set(err, "unknown kernel set '%s' (expected auto, avx512, avx2 or generic)", name);
}

static int g_chosen = 0;
static PtKernelSet g_set = PT_KSET_GENERIC;

void pt_kernels_use(PtKernelSet set) {
    if (!pt_kernels_supported(set)) pt_fatal("kernel set %d is not supported on this CPU", (int)set);
    g_set = set;
    g_chosen = 1;
    pt_fp_flush_denormals(1);
}

PtKernelSet pt_kernels_active_set(void) {
    if (!g_chosen) {
        PtError err;
        PtKernelSet set = PT_KSET_GENERIC;
        if (pt_kernels_parse(getenv("PRETEXT_KERNELS"), &set, &err) != 0)
            pt_fatal("PRETEXT_KERNELS: %s", err.msg);
        pt_kernels_use(set); /* the choice, and the arithmetic mode with it */
    }
    return g_set;
}

const PtKernels *pt_kernels_active(void) { return pt_kernels_table(pt_kernels_active_set()); }

int pt_kernels_for_test(PtKernelSet *set) {
    PtError err;
    const char *name = getenv("PRETEXT_KERNELS");
    int known = !name || !name[0] || strcmp(name, "auto") == 0;
    for (int s = 0; s < PT_NUM_KSETS; s++) known = known || (name && strcmp(name, set_names[s]) == 0);
    if (!known) {
        printf("FAIL: PRETEXT_KERNELS=%s is not a kernel set (auto, avx512, avx2, generic)\n", name);
        return 1;
    }
    if (pt_kernels_parse(name, set, &err) != 0) {
        printf("SKIP: PRETEXT_KERNELS=%s: %s\n", getenv("PRETEXT_KERNELS"), err.msg);
        return 77;
    }
    pt_kernels_use(*set);
    printf("kernel set: %s\n", pt_kernels_table(*set)->name);
    return 0;
}
