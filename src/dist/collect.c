/* collect.c — the collectives around the step: replica checksums and the
 * sums of logged statistics. Each is collective on the dist's
 * communicator and a no-op on one process. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "dist/mpicall.h"
#include "dist/stall.h"
#include "mimo/dist.h"
#include "mimo/error.h"

uint64_t mimo_params_checksum(const mimo_real *params, size_t n)
{
    const unsigned char *p = (const unsigned char *)params;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n * sizeof *params; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

int mimo_dist_check_replicas(mimo_dist *d, const mimo_real *params, size_t n,
                             long long step)
{
    uint64_t h = mimo_params_checksum(params, n), lo = h, hi = h;
    if (mimo_dist_size(d) == 1)
        return 0;
    mimo_stall_enter(MIMO_STALL_REPLICAS);
    int err = MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN,
                            mimo_dist_comm(d));
    if (err == MPI_SUCCESS)
        err = MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX,
                            mimo_dist_comm(d));
    mimo_stall_leave();
    MIMO_MPI(err);
    if (lo != hi)
        return mimo_error(MIMO_EMPI, "the parameter replicas differ across ranks "
                          "at step %lld (this rank's checksum %016llx)", step,
                          (unsigned long long)h);
    return 0;
}

int mimo_dist_sum(mimo_dist *d, double *v, int n)
{
    if (mimo_dist_size(d) == 1)
        return 0;
    mimo_stall_enter(MIMO_STALL_SUM);
    int err = MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, mimo_dist_comm(d));
    mimo_stall_leave();
    MIMO_MPI(err);
    return 0;
}

/* Every rank's AUC scores of head h, in rank order, on every rank. */
static int gather_scores(mimo_dist *d, mimo_metrics *mt, int h)
{
    MPI_Comm comm = mimo_dist_comm(d);
    int p = mimo_dist_size(d), rc = 0;
    const mimo_real *sc;
    const unsigned char *pos;
    unsigned long long n = mimo_metrics_scores(mt, h, &sc, &pos), total = 0;
    unsigned long long *all = malloc(sizeof *all * (size_t)p);
    int *cnt = malloc(sizeof *cnt * (size_t)p), *disp = malloc(sizeof *disp * (size_t)p);
    mimo_real *my_sc = malloc(sizeof *my_sc * (n ? n : 1));
    unsigned char *my_pos = malloc(n ? n : 1);
    if (!all || !cnt || !disp || !my_sc || !my_pos)
        rc = mimo_error(MIMO_ENOMEM, "out of memory gathering AUC scores");
    /* every rank gets this far: agree on the counts before the data */
    unsigned long long mine = rc ? ~0ULL : n;
    if (MPI_Allgather(&mine, 1, MPI_UNSIGNED_LONG_LONG, all ? all : &mine, all ? 1 : 0,
                      MPI_UNSIGNED_LONG_LONG, comm) != MPI_SUCCESS && !rc)
        rc = mimo_error(MIMO_EMPI, "MPI_Allgather of AUC counts failed");
    for (int r = 0; r < p && !rc; r++) {
        if (all[r] == ~0ULL)
            rc = mimo_error(MIMO_EPEER, "another rank could not gather AUC scores");
        else if (total + all[r] > INT_MAX)
            rc = mimo_error(MIMO_EINVAL, "more than 2^31 AUC scores in an epoch "
                            "on head %d: too many for an exact AUC", h);
        else
            disp[r] = (int)total, cnt[r] = (int)all[r], total += all[r];
    }
    mimo_real *dst_sc = NULL;
    unsigned char *dst_pos = NULL;
    if (!rc && n) {
        memcpy(my_sc, sc, sizeof *sc * n);
        memcpy(my_pos, pos, n);
    }
    if (!rc) {
        rc = mimo_metrics_set_scores(mt, h, total, &dst_sc, &dst_pos);
    }
    if (!(rc = mimo_agree(comm, rc)) && total) {
        MIMO_MPI_KEEP(&rc, MPI_Allgatherv(my_sc, (int)n, MIMO_MPI_REAL, dst_sc, cnt,
                                          disp, MIMO_MPI_REAL, comm));
        MIMO_MPI_KEEP(&rc, MPI_Allgatherv(my_pos, (int)n, MPI_UNSIGNED_CHAR, dst_pos,
                                          cnt, disp, MPI_UNSIGNED_CHAR, comm));
    }
    free(all), free(cnt), free(disp), free(my_sc), free(my_pos);
    return rc;
}

/* count and every head's sums: one allreduce; then the AUC scores */
int mimo_dist_sum_stats(mimo_dist *d, mimo_stats *st)
{
    if (!st->metrics)
        return mimo_error(MIMO_EINVAL, "statistics not bound to a graph");
    if (mimo_dist_size(d) == 1)
        return 0;
    size_t n = mimo_metrics_n_sums(st->metrics), k = 0;
    double *buf = malloc(sizeof *buf * (n + 1));
    if (!buf)
        return mimo_error(MIMO_ENOMEM, "out of memory");
    double *sums = mimo_metrics_sums(st->metrics);
    buf[k++] = (double)st->count;
    memcpy(buf + 1, sums, sizeof *buf * n);
    int rc = n + 1 > INT_MAX ? mimo_error(MIMO_EINVAL, "too many sums")
                             : mimo_dist_sum(d, buf, (int)(n + 1));
    if (!rc) {
        st->count = (long long)buf[0];
        memcpy(sums, buf + 1, sizeof *buf * n);
    }
    free(buf);
    for (int h = 0; h < st->n_heads && !rc; h++)
        if (mimo_metrics_has_scores(st->metrics, h))
            rc = gather_scores(d, st->metrics, h);
    return rc;
}
