/* scheduler.c: the dynamic task queue over MPI ranks (protocol in pt_scheduler.h). */
#include "pt_scheduler.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pt_mpi.h"
#include "pt_util.h"

struct PtScheduler {
    MPI_Comm comm;
    int rank, size;
    const PtSchedulerCallbacks *cb;
    /* master state (rank 0) */
    const int *tasks;
    int n_tasks, next_task, handed_out;
    int active_workers;   /* workers not yet told -1 */
    int stopping;         /* no more tasks handed out */
    int failed;           /* a task failed */
    int unfinished;       /* tasks handed out and not reported OK */
};

/* Master: the next task to hand out, or -1. */
static int next_task(PtScheduler *s) {
    if (!s->stopping && s->cb->should_stop && s->cb->should_stop(s->cb->ctx, s->handed_out)) s->stopping = 1;
    if (s->stopping || s->failed || s->next_task >= s->n_tasks) return -1;
    s->handed_out++;
    s->unfinished++;
    return s->tasks[s->next_task++];
}

/* Master: a task's status, from any rank. */
static void task_done(PtScheduler *s, int task, int status, int rank, const unsigned char *result,
                      size_t len) {
    if (status == PT_TASK_OK) s->unfinished--;
    else if (status == PT_TASK_FAILED) s->failed = 1;
    else s->stopping = 1;
    s->cb->on_result(s->cb->ctx, task, status, rank, result, len);
}

/* Master: answers every waiting worker message; blocks for one if block is set and a worker is
 * still active. */
static void master_service(PtScheduler *s, int block) {
    for (;;) {
        int flag = 0;
        MPI_Status st;
        if (block && s->active_workers > 0) {
            pt_mpi_check(MPI_Probe(MPI_ANY_SOURCE, PT_TAG_RESULT, s->comm, &st), "MPI_Probe (scheduler)");
            flag = 1;
            block = 0;
        } else {
            pt_mpi_check(MPI_Iprobe(MPI_ANY_SOURCE, PT_TAG_RESULT, s->comm, &flag, &st), "MPI_Iprobe (scheduler)");
        }
        if (!flag) return;
        int count = 0;
        MPI_Get_count(&st, MPI_BYTE, &count);
        if (count < (int)(2 * sizeof(int32_t))) pt_fatal("scheduler: a message of %d bytes from rank %d", count, st.MPI_SOURCE);
        unsigned char *msg = pt_malloc((size_t)count);
        pt_mpi_check(MPI_Recv(msg, count, MPI_BYTE, st.MPI_SOURCE, PT_TAG_RESULT, s->comm, MPI_STATUS_IGNORE),
                     "MPI_Recv (task result)");
        int32_t header[2];
        memcpy(header, msg, sizeof header);
        int worker_quits = 0;
        if (header[0] >= 0) {
            task_done(s, header[0], header[1], st.MPI_SOURCE, msg + sizeof header, (size_t)count - sizeof header);
            worker_quits = header[1] == PT_TASK_INTERRUPTED; /* that rank got a signal */
        }
        free(msg);
        int32_t task = worker_quits ? -1 : next_task(s);
        pt_mpi_check(MPI_Send(&task, 1, MPI_INT32_T, st.MPI_SOURCE, PT_TAG_TASK, s->comm), "MPI_Send (task)");
        if (task < 0) s->active_workers--;
    }
}

void pt_scheduler_poll(void *sched) {
    PtScheduler *s = sched;
    if (s && s->rank == 0 && s->size > 1) master_service(s, 0);
}

int pt_schedule(MPI_Comm comm, const int *tasks, int n_tasks, const PtSchedulerCallbacks *cb) {
    PtScheduler s;
    memset(&s, 0, sizeof s);
    s.comm = comm;
    s.cb = cb;
    MPI_Comm_rank(comm, &s.rank);
    MPI_Comm_size(comm, &s.size);
    int status = PT_TASK_OK;
    if (s.rank == 0) {
        s.tasks = tasks;
        s.n_tasks = n_tasks;
        s.active_workers = s.size - 1;
        for (;;) {
            master_service(&s, 0);
            int task = next_task(&s);
            if (task >= 0) {
                unsigned char *result = NULL;
                size_t len = 0;
                int st = cb->run(cb->ctx, &s, task, &result, &len);
                task_done(&s, task, st, 0, result, len);
                free(result);
            } else if (s.active_workers > 0) {
                master_service(&s, 1);
            } else {
                break;
            }
        }
        status = s.failed ? PT_TASK_FAILED : (s.unfinished > 0 || s.next_task < s.n_tasks) ? PT_TASK_INTERRUPTED
                                                                                            : PT_TASK_OK;
    } else {
        int32_t hello[2] = {-1, PT_TASK_OK};
        pt_mpi_check(MPI_Send(hello, (int)sizeof hello, MPI_BYTE, 0, PT_TAG_RESULT, comm), "MPI_Send (hello)");
        for (;;) {
            int32_t task;
            pt_mpi_check(MPI_Recv(&task, 1, MPI_INT32_T, 0, PT_TAG_TASK, comm, MPI_STATUS_IGNORE), "MPI_Recv (task)");
            if (task < 0) break;
            unsigned char *result = NULL;
            size_t len = 0;
            int st = cb->run(cb->ctx, &s, task, &result, &len);
            size_t n = 2 * sizeof(int32_t) + len;
            unsigned char *msg = pt_malloc(n);
            int32_t header[2] = {task, st};
            memcpy(msg, header, sizeof header);
            if (len) memcpy(msg + sizeof header, result, len);
            free(result);
            pt_mpi_check(MPI_Send(msg, (int)n, MPI_BYTE, 0, PT_TAG_RESULT, comm), "MPI_Send (task result)");
            free(msg);
        }
    }
    pt_mpi_check(MPI_Bcast(&status, 1, MPI_INT, 0, comm), "MPI_Bcast (schedule status)");
    return status;
}
