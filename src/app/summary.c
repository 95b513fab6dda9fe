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

/* One line of the table: the finished trials among rows[0..n) of a kind. */
static void print_kind_line(const char *label, const PtTrialResult *const *rows, int n) {
    double *acc = pt_malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    double *loss = pt_malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    int k = 0;
    for (int i = 0; i < n; i++)
        if (rows[i]->done) {
            acc[k] = rows[i]->test_accuracy;
            loss[k++] = rows[i]->test_loss;
        }
    if (k == 0) {
        printf("  %-16s %4d | (none finished)\n", label, k);
    } else {
        double a[5], l[5];
        summarise(acc, k, a);
        summarise(loss, k, l);
        /* one trial has no standard deviation: "-" rather than "nan" */
        char sd_acc[16] = "-     ", sd_loss[16] = "-     ";
        if (k > 1) {
            snprintf(sd_acc, sizeof sd_acc, "%.4f", a[1]);
            snprintf(sd_loss, sizeof sd_loss, "%.4f", l[1]);
        }
        printf("  %-16s %4d | %15s%.4f %s %.4f %.4f %.4f | %11s%.4f %s %.4f %.4f %.4f\n", label, k, "", a[0],
               sd_acc, a[2], a[3], a[4], "", l[0], sd_loss, l[2], l[3], l[4]);
    }
    free(acc);
    free(loss);
}

void pt_summary_print(const PtResults *r, const char *path) {
    static const char *const phase_titles[PT_NUM_PHASES] = {"benchmark", "pretext (rotation)"};
    printf("\nsummary (%s)\n", path);
    for (int s = 0; s < r->n_seeds; s++)
        for (int p = 0; p < PT_NUM_PHASES; p++)
            if (r->seeds[s].phase[p].done) {
                if (r->n_seeds == 1)
                    printf("  %s: test_accuracy %.4f, test_loss %.4f\n", phase_titles[p],
                           r->seeds[s].phase[p].test_accuracy, r->seeds[s].phase[p].test_loss);
                else
                    printf("  seed %llu %s: test_accuracy %.4f, test_loss %.4f\n", (unsigned long long)r->seeds[s].seed,
                           phase_titles[p], r->seeds[s].phase[p].test_accuracy, r->seeds[s].phase[p].test_loss);
            }
    int most = 1;
    for (int k = 0; k < PT_NUM_KINDS; k++)
        if (r->n_trials[k] > most) most = r->n_trials[k];
    const PtTrialResult **rows = pt_malloc((size_t)most * sizeof *rows);
    for (int b = 0; b < r->n_budgets; b++) {
        if (r->n_budgets > 1 || r->n_seeds > 1)
            printf("  labels %d (trials of all %d seeds pooled; docs/analysis.md compares the kinds per seed)\n",
                   r->budgets[b], r->n_seeds);
        printf("  %-16s %4s | %-41s | %s\n", "trials", "n", "test accuracy: mean    sd     median min    max",
               "test loss: mean    sd     median min    max");
        for (int kind = 0; kind < PT_NUM_KINDS; kind++) {
            int n = 0;
            for (int s = 0; s < r->n_seeds; s++)
                for (int i = 0; i < r->per_cell[kind]; i++) rows[n++] = &r->trials[kind][pt_results_row(r, kind, s, b, i)];
            print_kind_line(pt_kind_names[kind], rows, n);
        }
    }
    free(rows);
    fflush(stdout);
}
