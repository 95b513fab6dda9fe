/* pt_sha256.h: SHA-256 of a file, so results record (and resume checks) exactly which data a run
 * used, independent of the folder it was read from. */
#ifndef PT_SHA256_H
#define PT_SHA256_H

#include "pt_util.h"

/* SHA-256 of a file as 64 lowercase hex characters; -1 with err naming the file on a read
 * failure. */
int pt_sha256_file(const char *path, char hex[65], PtError *err);

#endif
