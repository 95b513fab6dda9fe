/* summary.c: the summary table `pretext run` prints at the end (see pt_run_parts.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "pt_run_parts.h"
#include "pt_util.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* out: mean, sd (n-1), median, min, max of v (n values). */
static void summarise(const double *v, int n, double out[5]) {
    double *s = pt_malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    double sum = 0, sq = 0;
    for (int i = 0; i < n; i++) { s[i] = v[i]; sum += v[i]; }
    double mean = n ? sum / n : NAN;
    for (int i = 0; i < n; i++) sq += (v[i] - mean) * (v[i] - mean);
    qsort(s, (size_t)n, sizeof(double), cmp_double);
    out[0] = mean;
    out[1] = n > 1 ? sqrt(sq / (n - 1)) : NAN;
    out[2] = n ? (n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2])) : NAN;
    out[3] = n ? s[0] : NAN;
    out[4] = n ? s[n - 1] : NAN;
    free(s);
}

void pt_summary_print(const PtResults *r, const char *path) {
    static const char *const phase_titles[PT_NUM_PHASES] = {"benchmark", "pretext (rotation)"};
    printf("\nsummary (%s)\n", path);
    for (int p = 0; p < PT_NUM_PHASES; p++)
        if (r->phase[p].done)
            printf("  %s: test_accuracy %.4f, test_loss %.4f\n", phase_titles[p], r->phase[p].test_accuracy,
                   r->phase[p].test_loss);
    printf("  %-16s %4s | %-41s | %s\n", "trials", "n", "test accuracy: mean    sd     median min    max",
           "test loss: mean    sd     median min    max");
    for (int kind = 0; kind < PT_NUM_KINDS; kind++) {
        int n = r->n_trials[kind], k = 0;
        double *acc = pt_malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
        double *loss = pt_malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
        for (int i = 0; i < n; i++)
            if (r->trials[kind][i].done) {
                acc[k] = r->trials[kind][i].test_accuracy;
                loss[k++] = r->trials[kind][i].test_loss;
            }
        if (k == 0) {
            printf("  %-16s %4d | (none finished)\n", pt_kind_names[kind], k);
        } else {
            double a[5], l[5];
            summarise(acc, k, a);
            summarise(loss, k, l);
            printf("  %-16s %4d | %15s%.4f %.4f %.4f %.4f %.4f | %11s%.4f %.4f %.4f %.4f %.4f\n",
                   pt_kind_names[kind], k, "", a[0], a[1], a[2], a[3], a[4], "", l[0], l[1], l[2], l[3], l[4]);
        }
        free(acc);
        free(loss);
    }
    fflush(stdout);
}
