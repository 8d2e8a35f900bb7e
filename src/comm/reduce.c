/* reduce.c — the reductions around the step: the replica checksums
 * (min and max of every rank's parameter hash) and the sums of logged
 * statistics (counts, each head's sums, the AUC over every rank's scores).
 * Each is collective on the dist's communicator and a no-op on one
 * process. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "comm/mpicall.h"
#include "comm/stall.h"
#include "comm/dist.h"
#include "core/model.h"
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

/* Up to this many AUC entries per message: MPI counts are ints. */
#define MIMO_AUC_CHUNK ((size_t)1 << 28)

/* n AUC entries from rank r into sc, pos (on rank 0), in chunks. */
static int recv_scores(MPI_Comm comm, int r, mimo_real *sc, unsigned char *pos,
                       size_t n)
{
    int rc = 0;
    for (size_t off = 0; off < n && !rc; off += MIMO_AUC_CHUNK) {
        int c = (int)(n - off < MIMO_AUC_CHUNK ? n - off : MIMO_AUC_CHUNK);
        MIMO_MPI_KEEP(&rc, MPI_Recv(sc + off, c, MIMO_MPI_REAL, r, 0, comm,
                                    MPI_STATUS_IGNORE));
        MIMO_MPI_KEEP(&rc, MPI_Recv(pos + off, c, MPI_UNSIGNED_CHAR, r, 1, comm,
                                    MPI_STATUS_IGNORE));
    }
    return rc;
}

/* This rank's n AUC entries to rank 0, in the same chunks. */
static int send_scores(MPI_Comm comm, const mimo_real *sc, const unsigned char *pos,
                       size_t n)
{
    int rc = 0;
    for (size_t off = 0; off < n && !rc; off += MIMO_AUC_CHUNK) {
        int c = (int)(n - off < MIMO_AUC_CHUNK ? n - off : MIMO_AUC_CHUNK);
        MIMO_MPI_KEEP(&rc, MPI_Send(sc + off, c, MIMO_MPI_REAL, 0, 0, comm));
        MIMO_MPI_KEEP(&rc, MPI_Send(pos + off, c, MPI_UNSIGNED_CHAR, 0, 1, comm));
    }
    return rc;
}

/* Head h's AUC over every rank's scores: rank 0 receives them (in rank
 * order, after its own: what its checkpoint keeps), computes the AUC and
 * sends every rank the value (fixed in each one's metrics). The other
 * ranks keep only their own scores; no int limit on the total. */
static int gather_scores(mimo_dist *d, mimo_metrics *mt, int h)
{
    MPI_Comm comm = mimo_dist_comm(d);
    int p = mimo_dist_size(d), me = mimo_dist_rank(d), rc = 0;
    const mimo_real *sc;
    const unsigned char *pos;
    unsigned long long n = mimo_metrics_scores(mt, h, &sc, &pos), total = 0;
    unsigned long long *all = me == 0 ? malloc(sizeof *all * (size_t)p) : NULL;
    if (me == 0 && !all)
        rc = mimo_error(MIMO_ENOMEM, "out of memory gathering AUC scores");
    MIMO_MPI_KEEP(&rc, MPI_Gather(&n, 1, MPI_UNSIGNED_LONG_LONG, all ? all : &n, 1,
                                  MPI_UNSIGNED_LONG_LONG, 0, comm));
    mimo_real *dst_sc = NULL;
    unsigned char *dst_pos = NULL;
    for (int r = 0; r < p && all && !rc; r++)
        total += all[r];
    if (me == 0 && !rc)
        rc = mimo_metrics_set_scores(mt, h, total, &dst_sc, &dst_pos); /* own first */
    if ((rc = mimo_agree(comm, rc))) {
        free(all);
        return rc;
    }
    if (me == 0)
        for (size_t r = 1, off = n; r < (size_t)p && !rc; off += all[r], r++)
            rc = recv_scores(comm, (int)r, dst_sc + off, dst_pos + off, all[r]);
    else
        rc = send_scores(comm, sc, pos, n);
    double auc = me == 0 && !rc ? mimo_metrics_auc(mt, h) : 0;
    if (!(rc = mimo_agree(comm, rc)))
        MIMO_MPI_KEEP(&rc, MPI_Bcast(&auc, 1, MPI_DOUBLE, 0, comm));
    if (!rc)
        mimo_metrics_fix_auc(mt, h, auc);
    free(all);
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
        if (mimo_metrics_has_scores(st->metrics, h)) {
            mimo_stall_enter(MIMO_STALL_SUM);
            rc = gather_scores(d, st->metrics, h);
            mimo_stall_leave();
        }
    return rc;
}
