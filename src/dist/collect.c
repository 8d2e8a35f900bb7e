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

/* count, then loss, acc, mse, mae of each head: one allreduce */
int mimo_dist_sum_stats(mimo_dist *d, mimo_stats *st)
{
    size_t len = 1 + 4 * (size_t)st->n_heads, k = 0;
    double *buf = malloc(sizeof *buf * len);
    if (!buf)
        return mimo_error(MIMO_ENOMEM, "out of memory");
    buf[k++] = (double)st->count;
    for (int h = 0; h < st->n_heads; h++) {
        buf[k++] = st->head[h].loss, buf[k++] = st->head[h].acc;
        buf[k++] = st->head[h].mse, buf[k++] = st->head[h].mae;
    }
    int rc = len > INT_MAX ? mimo_error(MIMO_EINVAL, "too many heads")
                           : mimo_dist_sum(d, buf, (int)len);
    if (!rc) {
        k = 0;
        st->count = (long long)buf[k++];
        for (int h = 0; h < st->n_heads; h++) {
            st->head[h].loss = buf[k++], st->head[h].acc = buf[k++];
            st->head[h].mse = buf[k++], st->head[h].mae = buf[k++];
        }
    }
    free(buf);
    return rc;
}
