/* pt_scheduler.h: a dynamic queue of independent tasks (the small-data trials) over the ranks of a
 * communicator, with rank 0 as master. Tasks are handed out in the order given (longest first, by
 * the caller), one at a time, to whichever rank asks, each as soon as it is ready (a
 * self-supervised trial needs its seed's pretext model): a rank that asks while nothing is ready
 * waits until something is. Rank 0 runs tasks itself too and answers the others between its own
 * training steps (pt_scheduler_poll, from the fits' on_step hook), also while it still trains
 * data-parallel phases: ranks whose phases are done start on the trials meanwhile.
 *
 * Messages (all on comm, point to point, rank 0 = master):
 *   worker -> master  PT_TAG_RESULT  int32 {task, status} + the task's result bytes; a worker's
 *                                    first message is a hello {-1, 0} with no result.
 *   master -> worker  PT_TAG_TASK    int32 task + the task's payload bytes (e.g. the weights it
 *                                    needs, sent once per worker); task -1 = no more work: the
 *                                    worker leaves (every task is handed out, the run is
 *                                    stopping, or a task failed).
 *   any -> master     PT_TAG_EVENT   bytes for the caller's on_event (a phase's checkpoint or
 *                                    result from another group of ranks).
 *   master -> rank    PT_TAG_STOP    int32 0: stop what you are doing (pt_scheduler_stop_ordered).
 * A task that ends interrupted (a signal) makes the master stop handing out tasks; a failed one
 * too. Every worker is told -1 exactly once, so pt_scheduler_run returns on every rank. */
#ifndef PT_SCHEDULER_H
#define PT_SCHEDULER_H

#include <mpi.h>
#include <stddef.h>

enum { PT_TAG_RESULT = 11, PT_TAG_TASK = 12, PT_TAG_EVENT = 13, PT_TAG_STOP = 14 };
enum { PT_TASK_OK = 0, PT_TASK_FAILED = 1, PT_TASK_INTERRUPTED = 2 };

typedef struct PtScheduler PtScheduler;

typedef struct {
    /* Runs task on this rank with the payload the master sent along (NULL, 0 if none); returns
     * PT_TASK_*; on return *result (malloc'ed, freed by the scheduler) holds result_len bytes for
     * on_result. sched is for pt_scheduler_poll. */
    int (*run)(void *ctx, PtScheduler *sched, int task, const unsigned char *payload, size_t payload_len,
               unsigned char **result, size_t *result_len);
    /* Rank 0: a task finished (PT_TASK_*) on `rank`, with its result bytes. */
    void (*on_result)(void *ctx, int task, int status, int rank, const unsigned char *result, size_t result_len);
    /* Rank 0, before each task handed out: nonzero stops handing out tasks; handed_out counts the
     * tasks given so far. NULL: never. */
    int (*should_stop)(void *ctx, int handed_out);
    /* Rank 0: whether task may start now. NULL: always. */
    int (*ready)(void *ctx, int task);
    /* Rank 0: the bytes to send along with task to `rank` (malloc'ed, freed by the scheduler;
     * *len 0: none). NULL: none. */
    void (*payload)(void *ctx, int task, int rank, unsigned char **bytes, size_t *len);
    /* Rank 0: an event from `rank` (pt_scheduler_send_event). NULL: events are an error. */
    void (*on_event)(void *ctx, int rank, const unsigned char *msg, size_t len);
    void *ctx;
} PtSchedulerCallbacks;

/* The queue of tasks[0..n_tasks) (meaningful on rank 0 only). Not collective: every rank creates
 * its own, before anything is sent. */
PtScheduler *pt_scheduler_create(MPI_Comm comm, const int *tasks, int n_tasks, const PtSchedulerCallbacks *cb);

/* Rank 0: answers every message waiting (events, finished tasks, requests for work); never
 * blocks. A no-op on other ranks. sched may be NULL. */
void pt_scheduler_poll(void *sched);
/* Rank 0: stop handing out tasks (the run is stopping); failed: a task or a phase failed. */
void pt_scheduler_stop(PtScheduler *sched, int failed);
/* Rank 0: orders `rank` to stop (PT_TAG_STOP). */
void pt_scheduler_order_stop(PtScheduler *sched, int rank);

/* Any rank but 0: sends an event to the master (blocking until the master takes it). */
void pt_scheduler_send_event(PtScheduler *sched, const unsigned char *msg, size_t len);
/* Any rank but 0: whether the master ordered this rank to stop (consumes the order). */
int pt_scheduler_stop_ordered(PtScheduler *sched);

/* Collective: rank 0 runs ready tasks itself and answers the others until every task is done or
 * the run stops; the other ranks ask for tasks and run them until told there are no more.
 * Returns on every rank the same PT_TASK_*: OK if every task finished, FAILED if a task failed
 * or pt_scheduler_stop(.., 1) was called, else INTERRUPTED. */
int pt_scheduler_run(PtScheduler *sched);

void pt_scheduler_free(PtScheduler *sched);

#endif
