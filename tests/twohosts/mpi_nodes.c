/* mpi_nodes.c: what an MPI job sees of its hosts (tests/e2e_two_hosts.sh). Rank 0 prints one line
 * per rank, "rank R host H node_size S node_rank K node_index N", then "nodes N" and "allreduce
 * ok" once a 1.65 MB MPI_Allreduce (the size of pretext's gradients) across all ranks has given
 * the exact sum. MPI_COMM_TYPE_SHARED is what pretext's gradient sum splits nodes by. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    char name[MPI_MAX_PROCESSOR_NAME] = {0};
    int len = 0;
    MPI_Get_processor_name(name, &len);
    MPI_Comm node, leaders;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    int node_rank, node_size;
    MPI_Comm_rank(node, &node_rank);
    MPI_Comm_size(node, &node_size);
    /* node index: the rank of this node's leader among the leaders */
    MPI_Comm_split(MPI_COMM_WORLD, node_rank == 0 ? 0 : MPI_UNDEFINED, rank, &leaders);
    int node_index = -1, n_nodes = 0;
    if (leaders != MPI_COMM_NULL) {
        MPI_Comm_rank(leaders, &node_index);
        MPI_Comm_size(leaders, &n_nodes);
        MPI_Comm_free(&leaders);
    }
    MPI_Bcast(&node_index, 1, MPI_INT, 0, node);
    MPI_Bcast(&n_nodes, 1, MPI_INT, 0, node);
    int mine[3] = {node_size, node_rank, node_index};
    int *all = malloc((size_t)size * 3 * sizeof(int));
    char *names = malloc((size_t)size * MPI_MAX_PROCESSOR_NAME);
    MPI_Gather(mine, 3, MPI_INT, all, 3, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Gather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, names, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, 0, MPI_COMM_WORLD);
    enum { N = 412778 + 3 };
    float *buf = malloc(N * sizeof(float));
    for (int i = 0; i < N; i++) buf[i] = (float)(rank + 1) * (float)(i % 1000);
    MPI_Allreduce(MPI_IN_PLACE, buf, N, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    int ok = 1;
    float ranks_sum = (float)(size * (size + 1) / 2);
    for (int i = 0; i < N; i++)
        if (buf[i] != ranks_sum * (float)(i % 1000)) ok = 0;
    if (rank == 0) {
        for (int r = 0; r < size; r++)
            printf("rank %d host %s node_size %d node_rank %d node_index %d\n", r,
                   names + (size_t)r * MPI_MAX_PROCESSOR_NAME, all[3 * r], all[3 * r + 1], all[3 * r + 2]);
        printf("nodes %d\n", n_nodes);
        printf("allreduce %s\n", ok ? "ok" : "WRONG");
    }
    free(buf);
    free(all);
    free(names);
    MPI_Comm_free(&node);
    MPI_Finalize();
    return ok ? 0 : 1;
}
