/* leak_probe.c: built and run by tests/e2e_lsan_scope.sh (AddressSanitizer) and
 * tests/e2e_valgrind_scope.sh (valgrind memcheck); no pretext code. Do tests/lsan.supp and
 * tests/valgrind.supp still let the leaks a program causes inside HDF5 and Open MPI be reported?
 * With PROBE_LEAK=1 it leaks three ways pretext could, each through library frames:
 *   probe_leak_hdf5_vlen  a variable-length string HDF5 allocates for the caller (H5Aread), never
 *                         given back with H5free_memory (pretext's pt_h5_attr_read_string reads
 *                         such strings);
 *   probe_hdf5_walk_cb    memory allocated in an HDF5 callback (H5Ewalk2, as pretext's
 *                         pt_h5_innermost_error is) and never freed;
 *   probe_mpi_op          memory allocated in a user function MPI calls (a reduction run by
 *                         MPI_Reduce_local) and never freed.
 * Without PROBE_LEAK the same calls run and free everything: the suppressions must hide all of
 * Open MPI's and HDF5's own memory, so the run must end cleanly. */
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_leak;
static void *volatile g_sink; /* stores and clears pointers: the leaked blocks end unreachable */

static void drop(void *p) {
    g_sink = p;
    g_sink = NULL;
    if (!g_leak) free(p);
}

__attribute__((noinline)) static int probe_leak_hdf5_vlen(const char *path) {
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(file, "format", type, space, H5P_DEFAULT, H5P_DEFAULT);
    const char *text = "other";
    H5Awrite(attr, type, &text);
    char *value = NULL;
    int ok = H5Aread(attr, type, &value) >= 0 && value && strcmp(value, "other") == 0;
    g_sink = value;
    g_sink = NULL;
    if (!g_leak) H5free_memory(value);
    value = NULL;
    H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
    H5Fclose(file);
    return ok;
}

__attribute__((noinline)) static herr_t probe_hdf5_walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
    (void)n;
    char *copy = malloc(64);
    snprintf(copy, 64, "%s", e->desc ? e->desc : "");
    ++*(int *)data;
    drop(copy);
    return 0;
}

__attribute__((noinline)) static int probe_leak_hdf5_callback(const char *path) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT); /* fails: no such file */
    int calls = 0;
    if (file < 0) H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, probe_hdf5_walk_cb, &calls);
    else H5Fclose(file);
    return calls > 0;
}

__attribute__((noinline)) static void probe_mpi_op(void *in, void *inout, int *len, MPI_Datatype *type) {
    (void)type;
    char *scratch = malloc(48);
    memset(scratch, 0, 48);
    for (int i = 0; i < *len; i++) ((int *)inout)[i] += ((int *)in)[i];
    drop(scratch);
}

__attribute__((noinline)) static int probe_leak_mpi_op(void) {
    MPI_Op op;
    MPI_Op_create(probe_mpi_op, 1, &op);
    int in[4] = {1, 2, 3, 4}, inout[4] = {10, 20, 30, 40};
    MPI_Reduce_local(in, inout, 4, MPI_INT, op);
    MPI_Op_free(&op);
    return inout[3] == 44;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: leak_probe FOLDER\n");
        return 2;
    }
    g_leak = getenv("PROBE_LEAK") != NULL;
    MPI_Init(&argc, &argv);
    char path[4096], missing[4096];
    snprintf(path, sizeof path, "%s/probe.h5", argv[1]);
    snprintf(missing, sizeof missing, "%s/no-such-file.h5", argv[1]);
    int ok_vlen = probe_leak_hdf5_vlen(path);
    int ok_callback = probe_leak_hdf5_callback(missing);
    int ok_op = probe_leak_mpi_op();
    printf("leak_probe: vlen read %s, HDF5 callback %s, MPI user op %s (%s)\n", ok_vlen ? "ok" : "FAILED",
           ok_callback ? "ok" : "FAILED", ok_op ? "ok" : "FAILED", g_leak ? "leaking" : "freeing everything");
    fflush(stdout);
    MPI_Finalize();
    return ok_vlen && ok_callback && ok_op ? 0 : 1;
}
