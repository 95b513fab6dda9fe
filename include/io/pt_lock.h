/* pt_lock.h: one writer per results file. Rank 0 of a run holds an exclusive fcntl (POSIX record)
 * lock on "<results>.lock" for the whole run. The kernel drops the lock when the process dies,
 * however it dies, so a killed run leaves nothing to clean up; a second run aimed at the same
 * file is refused at once with the holder's host, pid, start time and Slurm job id (written into
 * the lock file by the holder). Works wherever the file system honours fcntl locks across the
 * machines that share it: local disks, NFSv4 and NFSv3 with lockd, Lustre mounted with -o flock,
 * GPFS, BeeGFS (docs/reliability.md). */
#ifndef PT_LOCK_H
#define PT_LOCK_H

#include "pt_util.h"

typedef struct PtLock PtLock;

/* Takes the lock of results_path (creating "<results_path>.lock"); NULL with err naming the file
 * and, if another run holds it, that run. If the file system does not support the lock, err says
 * so and how to proceed (PRETEXT_NO_LOCK=1 skips locking, at the user's risk). */
PtLock *pt_lock_acquire(const char *results_path, PtError *err);
/* Releases the lock and removes the lock file (NULL is fine). */
void pt_lock_release(PtLock *lock);

#endif
