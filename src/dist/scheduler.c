/* scheduler.c: the dynamic task queue over MPI ranks, with readiness and events (protocol in
 * pt_scheduler.h). */
#include "pt_scheduler.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pt_mpi.h"
#include "pt_util.h"

struct PtScheduler {
    MPI_Comm comm;
    int rank, size;
    PtSchedulerCallbacks cb;
    /* master state (rank 0) */
    int *tasks;           /* (n_tasks) in hand-out order; -1 once handed out */
    int n_tasks;
    int handed_out;       /* tasks given so far */
    int unfinished;       /* tasks handed out and not reported OK */
    int active_workers;   /* workers not yet told -1 */
    int *parked;          /* (size) workers waiting for a task to become ready */
    int n_parked;
    int stopping;         /* no more tasks handed out */
    int failed;           /* a task or a phase failed */
};

PtScheduler *pt_scheduler_create(MPI_Comm comm, const int *tasks, int n_tasks, const PtSchedulerCallbacks *cb) {
    PtScheduler *s = pt_calloc(1, sizeof *s);
    s->comm = comm;
    s->cb = *cb;
    MPI_Comm_rank(comm, &s->rank);
    MPI_Comm_size(comm, &s->size);
    if (s->rank == 0) {
        s->n_tasks = n_tasks;
        s->tasks = pt_malloc((size_t)(n_tasks > 0 ? n_tasks : 1) * sizeof *s->tasks);
        if (n_tasks > 0) memcpy(s->tasks, tasks, (size_t)n_tasks * sizeof *s->tasks);
        s->active_workers = s->size - 1;
        s->parked = pt_malloc((size_t)s->size * sizeof *s->parked);
    }
    return s;
}

void pt_scheduler_free(PtScheduler *s) {
    if (!s) return;
    free(s->tasks);
    free(s->parked);
    free(s);
}

void pt_scheduler_stop(PtScheduler *s, int failed) {
    s->stopping = 1;
    if (failed) s->failed = 1;
}

/* Master: whether any task is still to be handed out. */
static int tasks_left(const PtScheduler *s) { return s->handed_out < s->n_tasks; }

/* Master: the next ready task in hand-out order (taken from the list), or -1 if none is ready
 * now; *none_left = 1 if no task is left at all (or none will be handed out any more). */
static int next_task(PtScheduler *s, int *none_left) {
    *none_left = 0;
    if (!s->stopping && s->cb.should_stop && s->cb.should_stop(s->cb.ctx, s->handed_out)) s->stopping = 1;
    if (s->stopping || s->failed || !tasks_left(s)) {
        *none_left = 1;
        return -1;
    }
    for (int i = 0; i < s->n_tasks; i++) {
        int task = s->tasks[i];
        if (task < 0) continue;
        if (s->cb.ready && !s->cb.ready(s->cb.ctx, task)) continue;
        s->tasks[i] = -1;
        s->handed_out++;
        s->unfinished++;
        return task;
    }
    return -1;
}

/* Master: a task's status, from any rank. */
static void task_done(PtScheduler *s, int task, int status, int rank, const unsigned char *result, size_t len) {
    if (status == PT_TASK_OK) s->unfinished--;
    else if (status == PT_TASK_FAILED) s->failed = 1;
    else s->stopping = 1;
    s->cb.on_result(s->cb.ctx, task, status, rank, result, len);
}

/* Master: sends task (or -1) to a worker, with its payload. */
static void send_task(PtScheduler *s, int worker, int task) {
    unsigned char *payload = NULL;
    size_t len = 0;
    if (task >= 0 && s->cb.payload) s->cb.payload(s->cb.ctx, task, worker, &payload, &len);
    unsigned char *msg = pt_malloc(sizeof(int32_t) + len);
    int32_t t = task;
    memcpy(msg, &t, sizeof t);
    if (len) memcpy(msg + sizeof t, payload, len);
    free(payload);
    if (sizeof t + len > (size_t)INT32_MAX) pt_fatal("scheduler: a task message of %zu bytes", sizeof t + len);
    pt_mpi_check(MPI_Send(msg, (int)(sizeof t + len), MPI_BYTE, worker, PT_TAG_TASK, s->comm), "MPI_Send (task)");
    free(msg);
    if (task < 0) s->active_workers--;
}

/* Master: a worker wants work: a ready task, or -1 if none will come, or it waits (parked). */
static void serve_worker(PtScheduler *s, int worker) {
    int none_left;
    int task = next_task(s, &none_left);
    if (task >= 0 || none_left) send_task(s, worker, task);
    else s->parked[s->n_parked++] = worker;
}

/* Master: hands ready tasks to parked workers; tells them -1 when no task will come. */
static void serve_parked(PtScheduler *s) {
    while (s->n_parked > 0) {
        int none_left;
        int task = next_task(s, &none_left);
        if (task < 0 && !none_left) return;
        send_task(s, s->parked[--s->n_parked], task);
    }
}

/* Master: receives one message that a probe found and acts on it. */
static void handle(PtScheduler *s, const MPI_Status *st) {
    int count = 0;
    MPI_Get_count(st, MPI_BYTE, &count);
    unsigned char *msg = pt_malloc((size_t)(count > 0 ? count : 1));
    pt_mpi_check(MPI_Recv(msg, count, MPI_BYTE, st->MPI_SOURCE, st->MPI_TAG, s->comm, MPI_STATUS_IGNORE),
                 "MPI_Recv (scheduler)");
    if (st->MPI_TAG == PT_TAG_EVENT) {
        if (!s->cb.on_event) pt_fatal("scheduler: an event from rank %d, but none expected", st->MPI_SOURCE);
        s->cb.on_event(s->cb.ctx, st->MPI_SOURCE, msg, (size_t)count);
    } else {
        if (count < (int)(2 * sizeof(int32_t))) pt_fatal("scheduler: a message of %d bytes from rank %d", count, st->MPI_SOURCE);
        int32_t header[2];
        memcpy(header, msg, sizeof header);
        int quits = 0;
        if (header[0] >= 0) {
            task_done(s, header[0], header[1], st->MPI_SOURCE, msg + sizeof header, (size_t)count - sizeof header);
            quits = header[1] == PT_TASK_INTERRUPTED; /* that rank got a signal */
        }
        if (quits) send_task(s, st->MPI_SOURCE, -1);
        else serve_worker(s, st->MPI_SOURCE);
    }
    free(msg);
    serve_parked(s); /* an event may have made tasks ready, a stop may end the waits */
}

/* Master: answers every waiting message; blocks for one if block is set. */
static void master_service(PtScheduler *s, int block) {
    for (;;) {
        int flag = 0;
        MPI_Status st;
        if (block) {
            pt_mpi_check(MPI_Probe(MPI_ANY_SOURCE, MPI_ANY_TAG, s->comm, &st), "MPI_Probe (scheduler)");
            flag = 1;
            block = 0;
        } else {
            pt_mpi_check(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, s->comm, &flag, &st), "MPI_Iprobe (scheduler)");
        }
        if (!flag) break;
        handle(s, &st);
    }
    serve_parked(s);
}

void pt_scheduler_poll(void *sched) {
    PtScheduler *s = sched;
    if (s && s->rank == 0 && s->size > 1) master_service(s, 0);
}

void pt_scheduler_order_stop(PtScheduler *s, int rank) {
    int32_t zero = 0;
    pt_mpi_check(MPI_Send(&zero, 1, MPI_INT32_T, rank, PT_TAG_STOP, s->comm), "MPI_Send (stop order)");
}

void pt_scheduler_send_event(PtScheduler *s, const unsigned char *msg, size_t len) {
    if (len > (size_t)INT32_MAX) pt_fatal("scheduler: an event of %zu bytes", len);
    pt_mpi_check(MPI_Send(msg, (int)len, MPI_BYTE, 0, PT_TAG_EVENT, s->comm), "MPI_Send (event)");
}

int pt_scheduler_stop_ordered(PtScheduler *s) {
    int flag = 0;
    MPI_Status st;
    pt_mpi_check(MPI_Iprobe(0, PT_TAG_STOP, s->comm, &flag, &st), "MPI_Iprobe (stop order)");
    if (!flag) return 0;
    int32_t zero;
    pt_mpi_check(MPI_Recv(&zero, 1, MPI_INT32_T, 0, PT_TAG_STOP, s->comm, MPI_STATUS_IGNORE), "MPI_Recv (stop order)");
    return 1;
}

/* Worker: the next task (and its payload), taking and dropping stop orders that arrive first. */
static int worker_receive(PtScheduler *s, unsigned char **payload, size_t *len) {
    for (;;) {
        MPI_Status st;
        pt_mpi_check(MPI_Probe(0, MPI_ANY_TAG, s->comm, &st), "MPI_Probe (task)");
        int count = 0;
        MPI_Get_count(&st, MPI_BYTE, &count);
        unsigned char *msg = pt_malloc((size_t)(count > 0 ? count : 1));
        pt_mpi_check(MPI_Recv(msg, count, MPI_BYTE, 0, st.MPI_TAG, s->comm, MPI_STATUS_IGNORE), "MPI_Recv (task)");
        if (st.MPI_TAG == PT_TAG_STOP) { /* late: the phases it meant are over */
            free(msg);
            continue;
        }
        if (st.MPI_TAG != PT_TAG_TASK || count < (int)sizeof(int32_t))
            pt_fatal("scheduler: unexpected message (tag %d, %d bytes) from the master", st.MPI_TAG, count);
        int32_t task;
        memcpy(&task, msg, sizeof task);
        *len = (size_t)count - sizeof task;
        *payload = NULL;
        if (*len) {
            *payload = pt_malloc(*len);
            memcpy(*payload, msg + sizeof task, *len);
        }
        free(msg);
        return task;
    }
}

int pt_scheduler_run(PtScheduler *s) {
    int status = PT_TASK_OK;
    if (s->rank == 0) {
        for (;;) {
            master_service(s, 0);
            int none_left;
            int task = next_task(s, &none_left);
            if (task >= 0) {
                unsigned char *result = NULL;
                size_t len = 0;
                int st = s->cb.run(s->cb.ctx, s, task, NULL, 0, &result, &len);
                task_done(s, task, st, 0, result, len);
                free(result);
            } else if (s->active_workers > 0 || (!none_left && s->size > 1)) {
                /* wait for a worker's message, or an event that makes a task ready */
                if (s->active_workers == 0 && !none_left) {
                    /* nobody left to make a task ready: the remaining tasks never will be */
                    s->stopping = 1;
                    continue;
                }
                master_service(s, 1);
            } else if (!none_left) {
                s->stopping = 1; /* one rank, and tasks that cannot become ready */
            } else {
                break;
            }
        }
        status = s->failed ? PT_TASK_FAILED : (s->unfinished > 0 || tasks_left(s)) ? PT_TASK_INTERRUPTED : PT_TASK_OK;
    } else {
        int32_t hello[2] = {-1, PT_TASK_OK};
        pt_mpi_check(MPI_Send(hello, (int)sizeof hello, MPI_BYTE, 0, PT_TAG_RESULT, s->comm), "MPI_Send (hello)");
        for (;;) {
            unsigned char *payload = NULL;
            size_t payload_len = 0;
            int task = worker_receive(s, &payload, &payload_len);
            if (task < 0) break;
            unsigned char *result = NULL;
            size_t len = 0;
            int st = s->cb.run(s->cb.ctx, s, task, payload, payload_len, &result, &len);
            free(payload);
            size_t n = 2 * sizeof(int32_t) + len;
            unsigned char *msg = pt_malloc(n);
            int32_t header[2] = {task, st};
            memcpy(msg, header, sizeof header);
            if (len) memcpy(msg + sizeof header, result, len);
            free(result);
            pt_mpi_check(MPI_Send(msg, (int)n, MPI_BYTE, 0, PT_TAG_RESULT, s->comm), "MPI_Send (task result)");
            free(msg);
        }
    }
    pt_mpi_check(MPI_Bcast(&status, 1, MPI_INT, 0, s->comm), "MPI_Bcast (schedule status)");
    return status;
}
