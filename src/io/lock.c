/* lock.c: the results file's writer lock (see pt_lock.h). */
#define _POSIX_C_SOURCE 200809L
#include "pt_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct PtLock {
    int fd;            /* the open lock file, holding the lock; -1: locking disabled */
    char path[4200];   /* "<results>.lock" */
};

/* What the holder wrote into the lock file, for the refused run's message. */
static void read_holder(int fd, char *buf, size_t n) {
    buf[0] = 0;
    ssize_t got = pread(fd, buf, n - 1, 0);
    if (got <= 0) {
        snprintf(buf, n, "(the holder has not written its details yet)");
        return;
    }
    buf[got] = 0;
    for (char *p = buf; *p; p++)
        if (*p == '\n') *p = (p[1] ? ';' : 0);
}

static void write_holder(int fd) {
    char host[256] = "?", when[64] = "?", text[1024];
    gethostname(host, sizeof host);
    host[sizeof host - 1] = 0;
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    const char *job = getenv("SLURM_JOB_ID");
    int len = snprintf(text, sizeof text, "host %s pid %ld started %s%s%s\n", host, (long)getpid(), when,
                       job ? " slurm job " : "", job ? job : "");
    if (ftruncate(fd, 0) == 0 && pwrite(fd, text, (size_t)len, 0) == len) fsync(fd);
}

PtLock *pt_lock_acquire(const char *results_path, PtError *err) {
    PtLock *lock = pt_calloc(1, sizeof *lock);
    lock->fd = -1;
    snprintf(lock->path, sizeof lock->path, "%s.lock", results_path);
    const char *off = getenv("PRETEXT_NO_LOCK");
    if (off && strcmp(off, "1") == 0) return lock;
    for (int attempt = 0; attempt < 10; attempt++) {
        int fd = open(lock->path, O_RDWR | O_CREAT, 0644);
        if (fd < 0) {
            pt_error_set(err, "cannot create the lock file '%s' of '%s': %s", lock->path, results_path,
                         strerror(errno));
            free(lock);
            return NULL;
        }
        struct flock fl;
        memset(&fl, 0, sizeof fl);
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        if (fcntl(fd, F_SETLK, &fl) < 0) {
            int e = errno;
            if (e == EACCES || e == EAGAIN) {
                char holder[512];
                read_holder(fd, holder, sizeof holder);
                pt_error_set(err, "another run is writing '%s' (%s; lock file %s): wait for it to end, or "
                                  "give this run another --out", results_path, holder, lock->path);
            } else {
                pt_error_set(err, "cannot lock '%s' (for '%s'): %s: the file system does not support fcntl "
                                  "locks (e.g. Lustre mounted without -o flock). Put the results on a file "
                                  "system that does, or set PRETEXT_NO_LOCK=1 if you are sure no other run "
                                  "writes this file", lock->path, results_path, strerror(e));
            }
            close(fd);
            free(lock);
            return NULL;
        }
        /* The previous holder may have removed the file between our open and our lock: then we hold
         * a lock on a file nobody else will ever open. Make sure the path is still our file. */
        struct stat mine, now;
        if (fstat(fd, &mine) == 0 && stat(lock->path, &now) == 0 && mine.st_ino == now.st_ino &&
            mine.st_dev == now.st_dev) {
            lock->fd = fd;
            write_holder(fd);
            return lock;
        }
        close(fd);
    }
    pt_error_set(err, "cannot lock '%s': the lock file keeps being replaced", lock->path);
    free(lock);
    return NULL;
}

void pt_lock_release(PtLock *lock) {
    if (!lock) return;
    if (lock->fd >= 0) {
        /* Remove the file while holding the lock: a run that opened it meanwhile finds, once it
         * gets the lock, that the path is no longer its file, and retries (see above). */
        unlink(lock->path);
        close(lock->fd);
    }
    free(lock);
}
