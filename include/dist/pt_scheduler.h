/* pt_scheduler.h: a dynamic queue of independent tasks (the small-data trials) over the ranks of
 * a communicator. Tasks are handed out in the order given (longest first, by the caller), one at
 * a time, to whichever rank asks; rank 0 is master and worker at once: it runs tasks itself and
 * answers the others between its own training steps (pt_scheduler_poll, called from the fit's
 * on_step hook).
 *
 * Message protocol (all on comm, point to point):
 *   worker -> master, tag PT_TAG_RESULT: an int32 header {task, status} followed by the task's
 *       result bytes (opaque here); the first message of every worker is a hello with task -1
 *       and no result.
 *   master -> worker, tag PT_TAG_TASK: one int32, the next task to run, or -1: no more work
 *       (every task handed out, the run is stopping, or a task failed); the worker then leaves.
 * A worker whose task was interrupted (status PT_TASK_INTERRUPTED: a signal) is told -1 and the
 * master stops handing out tasks (the run ends resumably); a failed task (PT_TASK_FAILED) stops
 * handing out too. Every worker is told -1 exactly once, so pt_schedule returns on every rank. */
#ifndef PT_SCHEDULER_H
#define PT_SCHEDULER_H

#include <mpi.h>
#include <stddef.h>

enum { PT_TAG_RESULT = 11, PT_TAG_TASK = 12 };
enum { PT_TASK_OK = 0, PT_TASK_FAILED = 1, PT_TASK_INTERRUPTED = 2 };

typedef struct PtScheduler PtScheduler;

typedef struct {
    /* Runs task on this rank; returns PT_TASK_*; on return *result (malloc'ed, freed by the
     * scheduler) holds result_len bytes for on_result. sched is for pt_scheduler_poll. */
    int (*run)(void *ctx, PtScheduler *sched, int task, unsigned char **result, size_t *result_len);
    /* Rank 0 only: a task finished (status PT_TASK_*) on rank `rank`, with its result bytes. */
    void (*on_result)(void *ctx, int task, int status, int rank, const unsigned char *result,
                      size_t result_len);
    /* Rank 0 only, before each task handed out: nonzero stops handing out tasks (a signal, a
     * test's limit); handed_out counts the tasks given so far. NULL: never. */
    int (*should_stop)(void *ctx, int handed_out);
    void *ctx;
} PtSchedulerCallbacks;

/* Runs tasks[0..n_tasks) (meaningful on rank 0 only; other ranks pass anything) over comm.
 * Collective. Returns on every rank the same PT_TASK_*: OK if every task finished, FAILED if one
 * failed, else INTERRUPTED. */
int pt_schedule(MPI_Comm comm, const int *tasks, int n_tasks, const PtSchedulerCallbacks *cb);

/* Rank 0, while it runs a task itself: answers every worker message waiting (never blocks). A
 * no-op on other ranks. */
void pt_scheduler_poll(void *sched);

#endif
