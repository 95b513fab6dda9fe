/* phase_groups.c: into how many groups of ranks the phases are split (see pt_experiment.h). The
 * phases to train are units (seed, phase): S seeds give U = 2S units (S without the benchmark).
 * With R ranks, G groups of p = R/G ranks each train the units u with u % G == g one after
 * another, data-parallel inside the group, while ranks of groups that are done run trials. One
 * seed's benchmark and pretext are two units, so two groups train them at the same time. The cost
 * model (docs/performance.md), from costs measured here at start:
 *
 *   t_step(b)     = t0 + b * t1              a training step of b images on one rank (measured at
 *                                            two batch sizes, the slowest rank's)
 *   t_sum(p)      = measured allreduce of the gradient (n_params floats) within groups of p ranks
 *   P_k(p)        = epochs_k * ceil(n_fit / B_k) * (t_step(ceil(B_k / p)) + t_sum(p))
 *                   + (epochs_k * n_val + n_test) * t_fwd / p   (phase k, with its validation
 *                   and test passes)
 *   W             = the trials' work: sum over trials of epochs * (ceil(n_fit(labels) / b_t) *
 *                   t_trial + n_val(labels) * t_fwd) + n_test * t_fwd, with t_trial a measured
 *                   step at the trials' batch size b_t and t_fwd = t1 * 4.42 / 12.86 a forward image
 *   makespan(G)   = max( max over groups g of the sum of P_k(p) over g's units,
 *                        (p * the sum of P_k(p) over all units + W) / R )
 *
 * The first term is the slowest group's phases (nothing shortens it); the second is all the work
 * spread evenly over the ranks (the trials fill the time the phases leave). The smallest makespan
 * wins; ties go to fewer groups. run.phase_groups = N forces N (at most U and R). A resumed run
 * keeps the choice recorded in its file's last segment on as many ranks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pt_adam.h"
#include "pt_experiment.h"
#include "pt_gradsync.h"
#include "pt_mpi.h"
#include "pt_rng.h"
#include "pt_streams.h"
#include "pt_util.h"

/* Seconds per training step of b images on this rank: the median of 7 steps after a warm-up. */
static double measure_step(int b) {
    PtModel *model = pt_model_create(10, b);
    PtRng rng;
    pt_rng_seed(&rng, pt_stream_bench(PT_BENCH_INIT));
    pt_model_init_glorot(model, &rng);
    pt_model_defer_dense1_grad(model, 1); /* a one-rank step, as the trials take it */
    PtAdam adam;
    pt_adam_init(&adam, model->n_params, 0.001f);
    float *x = pt_aligned_alloc((size_t)b * 28 * 28 * sizeof(float)); /* (b,28,28,1) */
    uint8_t *y = pt_malloc((size_t)b);
    pt_rng_seed(&rng, pt_stream_bench(PT_BENCH_DATA));
    for (size_t i = 0; i < (size_t)b * 28 * 28; i++) x[i] = pt_rng_uniform(&rng);
    for (int i = 0; i < b; i++) y[i] = (uint8_t)pt_rng_below(&rng, 10);
    double t[8];
    for (int k = 0; k < 8; k++) {
        double t0 = pt_now();
        pt_model_zero_grads(model);
        pt_model_forward(model, x, b, 1, pt_stream_bench(PT_BENCH_DROPOUT), (uint64_t)k * (uint64_t)b);
        int correct;
        pt_model_loss(model, y, b, b, &correct);
        pt_model_backward(model, b, NULL);
        pt_adam_step(&adam, model);
        t[k] = pt_now() - t0;
    }
    free(x);
    free(y);
    pt_adam_free(&adam);
    pt_model_free(model);
    /* the median of the seven after the warm-up step */
    for (int i = 1; i < 8; i++)
        for (int j = i + 1; j < 8; j++)
            if (t[j] < t[i]) { double tmp = t[i]; t[i] = t[j]; t[j] = tmp; }
    return t[4];
}

/* Seconds of one allreduce of n floats within groups of p consecutive ranks: each rank's median
 * of 5, the slowest rank's. Collective over the world. */
static double measure_sum(int p, size_t n) {
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    double worst = 0.0;
    MPI_Comm comm;
    pt_mpi_check(MPI_Comm_split(MPI_COMM_WORLD, rank / p, rank, &comm), "MPI_Comm_split (cost model)");
    float *buf = pt_calloc(n, sizeof(float));
    double t[5];
    for (int k = 0; k < 5; k++) {
        pt_mpi_check(MPI_Barrier(comm), "MPI_Barrier (cost model)");
        double t0 = pt_now();
        pt_mpi_check(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, comm), "MPI_Allreduce (cost model)");
        t[k] = pt_now() - t0;
    }
    for (int i = 0; i < 5; i++) /* sort the 5 */
        for (int j = i + 1; j < 5; j++)
            if (t[j] < t[i]) { double tmp = t[i]; t[i] = t[j]; t[j] = tmp; }
    double mine = t[2];
    pt_mpi_check(MPI_Allreduce(&mine, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce (cost model)");
    free(buf);
    MPI_Comm_free(&comm);
    return worst;
}

int pt_phase_groups_choose(PtExperiment *ex) {
    const PtConfig *cfg = &ex->cfg;
    int S = ex->n_seeds, R = ex->world.size;
    int U = pt_experiment_phase_units(cfg, S);
    int most = U < R ? U : R;
    if (most <= 1) return 1;
    int forced = pt_config_phase_groups(cfg);
    if (forced > 0) return forced < most ? forced : most;

    /* A resumed run keeps the grouping its file's last segment on as many ranks chose: an
     * unfinished phase then continues on a group of the same size, bit-identically (the cost
     * model's timings, or the phases left, could choose otherwise). */
    int previous = 0;
    if (ex->world.rank == 0)
        for (int i = ex->results.n_segments - 1; i >= 0 && previous == 0; i--)
            if (ex->results.segments[i].mpi_size == R && ex->results.segments[i].phase_groups > 0)
                previous = ex->results.segments[i].phase_groups;
    pt_mpi_check(MPI_Bcast(&previous, 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Bcast (previous phase groups)");
    if (previous > 0 && previous <= most) {
        pt_log(1, "phase groups: %d, as the run this file continues chose on %d ranks\n", previous, R);
        return previous;
    }

    /* The costs, measured. */
    int B[PT_NUM_PHASES] = {cfg->benchmark_batch_size, cfg->pretext_batch_size};
    int E[PT_NUM_PHASES] = {cfg->benchmark_enabled ? cfg->benchmark_epochs : 0, cfg->pretext_epochs};
    int b_hi = B[0] > B[1] ? B[0] : B[1];
    int b_lo = (b_hi + R - 1) / R;
    if (b_lo >= b_hi) b_lo = 1;
    int tb = cfg->trials_batch_size;
    double times[3] = {measure_step(b_lo), measure_step(b_hi), measure_step(tb)};
    pt_mpi_check(MPI_Allreduce(MPI_IN_PLACE, times, 3, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce (cost model)");
    double t1 = (times[1] - times[0]) / (double)(b_hi - b_lo);
    if (t1 < 0) t1 = 0;
    double t0 = times[0] - t1 * b_lo;
    if (t0 < 0) t0 = 0;
    PtTensorInfo info[PT_NUM_TENSORS];
    size_t n_grad = pt_tensor_layout(10, info) + PT_GRADSYNC_EXTRAS;
    uint32_t n_fit = pt_split_train_count(ex->n_train, cfg->validation_split);
    double n_val = (double)ex->n_train - n_fit;
    /* W: a trial's epochs of training steps at the trials' batch size (measured as such: at batch
     * 1 Adam and per-step overheads dominate, which the phases' linear fit cannot see), each
     * epoch's validation pass and the final test pass, both forward only: a forward image costs
     * 4.42 of a training image's 12.86 MFLOP (docs/performance.md). */
    double t_fwd = t1 * (4.42 / 12.86);
    double n_test = (double)ex->ds.test_x.n;
    double trial_work = 0.0;
    for (int b = 0; b < cfg->trials_labels.n; b++) {
        uint32_t labels = (uint32_t)cfg->trials_labels.v[b];
        double fit = (double)pt_split_train_count(labels, cfg->validation_split);
        double val = (double)labels - fit;
        double per_epoch = ceil(fit / tb) * times[2] + val * t_fwd;
        double sup = cfg->trials_epochs * per_epoch + n_test * t_fwd;
        double down = (cfg->downstream_frozen_epochs + cfg->downstream_finetune_epochs) * per_epoch + n_test * t_fwd;
        trial_work += S * ((double)cfg->trials_supervised * sup + (double)cfg->trials_self_supervised * down);
    }
    pt_log(1, "phase groups: cost model (docs/performance.md): t_step(b) = %.3g + b * %.3g s, a trial step "
              "(batch %d) %.3g s; trials' work %.1f s\n", t0, t1, tb, times[2], trial_work);
    int best = 1;
    double best_makespan = INFINITY;
    for (int G = 1; G <= most; G++) {
        int p = R / G; /* the smaller groups' size (groups differ by at most one rank) */
        double sum = p > 1 ? measure_sum(p, n_grad) : 0.0;
        double cost[PT_NUM_PHASES]; /* P_k(p) */
        for (int k = 0; k < PT_NUM_PHASES; k++) {
            double steps = ceil((double)n_fit / B[k]);
            double local = ceil((double)B[k] / p);
            /* training steps, then each epoch's validation and the final test, split over p */
            cost[k] = E[k] * steps * (t0 + local * t1 + sum) + (E[k] * n_val + n_test) * t_fwd / p;
        }
        /* each unit's cost on the group that will train it */
        double *group_time = pt_calloc((size_t)G, sizeof *group_time), all = 0.0, groups_first = 0.0;
        for (int s = 0; s < S; s++)
            for (int k = 0; k < PT_NUM_PHASES; k++) {
                if (!pt_experiment_phase_wanted(cfg, (PtPhaseId)k)) continue;
                group_time[pt_experiment_phase_group(cfg, s, (PtPhaseId)k, G)] += cost[k];
                all += cost[k];
            }
        for (int g = 0; g < G; g++)
            if (group_time[g] > groups_first) groups_first = group_time[g];
        free(group_time);
        double spread = ((double)p * all + trial_work) / R;
        double makespan = groups_first > spread ? groups_first : spread;
        pt_log(1, "phase groups: G = %d of %d ranks: t_sum = %.3g s, a phase %.1f s, slowest group %.1f s, "
                  "all work / ranks %.1f s: makespan %.1f s\n",
               G, p, sum, cost[PT_PHASE_PRETEXT], groups_first, spread, makespan);
        if (makespan < best_makespan * 0.999) {
            best_makespan = makespan;
            best = G;
        }
    }
    pt_log(1, "phase groups: %d (the smallest estimated makespan)\n", best);
    return best;
}
