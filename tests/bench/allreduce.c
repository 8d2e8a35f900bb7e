/* allreduce.c — the gradient sum alone, without a network to train: the
 * time of an MPI_Allreduce (SUM, float) of N values, and of the same N
 * values as MPI_Iallreduce buckets all started at once and then waited
 * for (mimo's bucketed form with no backward to overlap). Each timed
 * call starts after a barrier, so a late rank does not count. For
 * tests/bench/multihost.py; not part of the build.
 *
 *   mpicc -O2 -o allreduce tests/bench/allreduce.c
 *   mpirun -np 2 ./allreduce N_VALUES [REPEATS] [BUCKET_MB]
 * prints: blocking_ms MEDIAN MIN and bucketed_ms MEDIAN MIN (rank 0) */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    long n = argc > 1 ? atol(argv[1]) : 10491648;
    int reps = argc > 2 ? atoi(argv[2]) : 10;
    double mb = argc > 3 ? atof(argv[3]) : 2.0;
    long per = (long)(mb * 1048576 / sizeof(float));
    int nb = (int)((n + per - 1) / per);
    float *g = malloc(sizeof *g * (size_t)n);
    MPI_Request *req = malloc(sizeof *req * (size_t)nb);
    double *t = malloc(sizeof *t * (size_t)reps);
    if (!g || !req || !t || reps < 1)
        MPI_Abort(MPI_COMM_WORLD, 1);
    for (long i = 0; i < n; i++)
        g[i] = 1e-6f * (float)(i % 1000);
    for (int form = 0; form < 2; form++) {
        for (int r = -1; r < reps; r++) { /* r = -1: warm-up */
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            if (form == 0) {
                MPI_Allreduce(MPI_IN_PLACE, g, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            } else {
                for (int k = 0; k < nb; k++) { /* equal shares, as mimo's buckets */
                    long s = n * k / nb, e = n * (k + 1) / nb;
                    MPI_Iallreduce(MPI_IN_PLACE, g + s, (int)(e - s), MPI_FLOAT, MPI_SUM,
                                   MPI_COMM_WORLD, &req[k]);
                }
                MPI_Waitall(nb, req, MPI_STATUSES_IGNORE);
            }
            if (r >= 0)
                t[r] = 1e3 * (MPI_Wtime() - t0);
        }
        qsort(t, (size_t)reps, sizeof *t, cmp);
        if (rank == 0)
            printf("%s_ms %.2f %.2f\n", form ? "bucketed" : "blocking", t[reps / 2], t[0]);
    }
    free(g), free(req), free(t);
    MPI_Finalize();
    return 0;
}
