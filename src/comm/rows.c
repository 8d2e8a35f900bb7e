/* rows.c — the sum over the ranks of the embedding tables' gradients by
 * the rows each rank touched (see rows.h; the tables and their row lists
 * are core's, core/sparse.h). After backward each rank packs, for every
 * table, the rows it touched with their gradient into one message,
 *     [count_t0][row][width values][row][values]... [count_t1]...
 * (the row ids and counts carried bit for bit in mimo_real slots), and
 * one MPI_Allgatherv gives every rank every message. Each rank then sums
 * them into its gradient buffer in rank order 0, 1, ..., p-1: a row's
 * sum is ((g_0 + g_1) + g_2) ..., the ranks that did not touch it left
 * out. A dense sum adds their zeros instead, and x + 0 = x exactly, so
 * the two are bitwise equal whenever the dense allreduce also adds in
 * rank order (always on 2 ranks, where a + b = b + a; on more, MPI's
 * reduction order decides the last bit). The sum is the same on every
 * rank (the same messages, the same order), so the replicas stay equal.
 * The messages and the work are the touched rows, never the table. */
#include "comm/rows.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "comm/dist.h"
#include "comm/mpicall.h"
#include "mimo/error.h"

struct mimo_rows {
    MPI_Comm comm;
    int rank, size;
    mimo_sparse *s;
    mimo_real *send, *recv;
    int *counts, *displs;
};

void mimo_rows_free(mimo_rows **rp)
{
    mimo_rows *r = rp ? *rp : NULL;
    if (!r)
        return;
    mimo_sparse_free(&r->s);
    free(r->send);
    free(r->recv);
    free(r->counts);
    free(r->displs);
    free(r);
    *rp = NULL;
}

/* One message of at most sum_t (1 + max_touched_t (1 + width_t)) values
 * per rank. */
static int take_buffers(mimo_rows *r)
{
    size_t msg = 0;
    for (int k = 0; k < mimo_sparse_count(r->s); k++) {
        const mimo_sparse_table *t = mimo_sparse_table_at(r->s, k);
        msg += 1 + t->max_touched * (1 + (size_t)t->width);
    }
    if (r->size > 1 && msg > (size_t)INT_MAX / (size_t)r->size)
        return mimo_error(MIMO_EINVAL, "the embedding rows one step may touch "
                          "(%zu values a rank) are too many for one MPI "
                          "message on %d ranks: use --embedding-grads dense",
                          msg, r->size);
    r->send = malloc(sizeof(mimo_real) * msg);
    r->recv = malloc(sizeof(mimo_real) * msg * (size_t)r->size);
    r->counts = malloc(sizeof(int) * (size_t)r->size);
    r->displs = malloc(sizeof(int) * (size_t)r->size);
    return r->send && r->recv && r->counts && r->displs
               ? 0 : mimo_error(MIMO_ENOMEM, "out of memory for the embedding "
                                "rows' exchange");
}

int mimo_rows_create(MPI_Comm comm, int rank, int size, mimo_model *m,
                     size_t n_grads, mimo_rows **out)
{
    *out = NULL;
    mimo_sparse *s = NULL;
    int rc = mimo_sparse_create(m, n_grads, size, &s);
    if (rc || !s)
        return rc;
    mimo_rows *r = calloc(1, sizeof *r);
    if (!r) {
        mimo_sparse_free(&s);
        return mimo_error(MIMO_ENOMEM, "out of memory");
    }
    *r = (mimo_rows){.comm = comm, .rank = rank, .size = size, .s = s};
    if ((rc = take_buffers(r))) {
        mimo_rows_free(&r);
        return rc;
    }
    *out = r;
    return 0;
}

int mimo_rows_dense(const mimo_rows *r, const size_t **lo, const size_t **hi)
{
    return mimo_sparse_dense(r->s, lo, hi);
}

void mimo_rows_begin(mimo_rows *r, mimo_real *grads) { mimo_sparse_begin(r->s, grads); }

/* This rank's message: per table its count, then each touched row and
 * its gradient, which leaves the buffer (zeros there until the merge). */
static int pack(mimo_rows *r, mimo_real *grads)
{
    size_t at = 0;
    for (int k = 0; k < mimo_sparse_count(r->s); k++) {
        const mimo_sparse_table *t = mimo_sparse_table_at(r->s, k);
        size_t w = (size_t)t->width;
        const int32_t *rows;
        size_t n = mimo_sparse_local(r->s, k, &rows);
        r->send[at++] = mimo_rows_to_slot((int32_t)n);
        for (size_t i = 0; i < n; i++) {
            mimo_real *row = grads + t->off + (size_t)rows[i] * w;
            r->send[at++] = mimo_rows_to_slot(rows[i]);
            memcpy(r->send + at, row, sizeof *row * w);
            memset(row, 0, sizeof *row * w);
            at += w;
        }
    }
    return (int)at;
}

/* Adds every rank's message into grads, rank by rank (the order that
 * makes the sum the same everywhere), noting the rows met. */
static void merge(mimo_rows *r, mimo_real *grads)
{
    for (int q = 0; q < r->size; q++) {
        const mimo_real *msg = r->recv + r->displs[q];
        for (int k = 0; k < mimo_sparse_count(r->s); k++) {
            const mimo_sparse_table *t = mimo_sparse_table_at(r->s, k);
            size_t w = (size_t)t->width;
            int32_t n = mimo_rows_from_slot(*msg++);
            for (int32_t i = 0; i < n; i++, msg += w) {
                int32_t row = mimo_rows_from_slot(*msg++);
                mimo_real *dst = grads + t->off + (size_t)row * w;
                mimo_sparse_note(r->s, k, row);
                for (size_t j = 0; j < w; j++)
                    dst[j] += msg[j];
            }
        }
    }
    mimo_sparse_noted(r->s);
}

int mimo_rows_sum(mimo_rows *r, mimo_real *grads)
{
    int count = pack(r, grads);
    MIMO_MPI(MPI_Allgather(&count, 1, MPI_INT, r->counts, 1, MPI_INT, r->comm));
    for (int q = 0, at = 0; q < r->size; q++) {
        r->displs[q] = at;
        at += r->counts[q];
    }
    MIMO_MPI(MPI_Allgatherv(r->send, count, MIMO_MPI_REAL, r->recv, r->counts,
                            r->displs, MIMO_MPI_REAL, r->comm));
    merge(r, grads);
    return 0;
}

void mimo_rows_note_local(mimo_rows *r) { mimo_sparse_note_local(r->s); }

void mimo_rows_update(mimo_rows *r, mimo_optim *o, mimo_real *params,
                      mimo_real *grads, double lr)
{
    mimo_sparse_update(r->s, o, params, grads, lr);
}
