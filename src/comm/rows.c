/* rows.c — the row-sparse sum of the embedding tables' gradients (see
 * rows.h). After backward each rank packs, for every table, the rows it
 * touched (mimo_graph_touched_rows: the ids its batch read) with their
 * gradient into one message,
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
 * Nothing here is sized by a table's rows but its mark bytes: the
 * messages and the work are the touched rows, never the table. */
#include "comm/rows.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "comm/dist.h"
#include "comm/mpicall.h"
#include "mimo/error.h"

typedef struct {
    mimo_sparse_table t;
    unsigned char *mark;   /* t.rows bytes, zeros between uses */
    int32_t *local;        /* this rank's rows of the step */
    int32_t *all;          /* the rows some rank touched, in merge order */
    size_t n_all, cap_all;
} table;

struct mimo_rows {
    MPI_Comm comm;
    int rank, size;
    mimo_model *m;
    int n;
    table *tab;            /* by offset */
    mimo_real *send, *recv;
    int *counts, *displs;
    int whole;             /* clear the tables in full at the next begin */
    int n_dense;           /* the ranges of the buffer outside the tables */
    size_t *lo, *hi;
};

/* A row id or count carried bit for bit in a value slot. */
static mimo_real to_slot(int32_t v)
{
    mimo_real x = 0;
    memcpy(&x, &v, sizeof v);
    return x;
}

static int32_t from_slot(mimo_real x)
{
    int32_t v;
    memcpy(&v, &x, sizeof v);
    return v;
}

static int by_offset(const void *a, const void *b)
{
    size_t x = ((const table *)a)->t.off, y = ((const table *)b)->t.off;
    return x < y ? -1 : x > y;
}

void mimo_rows_free(mimo_rows **rp)
{
    mimo_rows *r = rp ? *rp : NULL;
    if (!r)
        return;
    for (int k = 0; k < r->n; k++) {
        free(r->tab[k].mark);
        free(r->tab[k].local);
        free(r->tab[k].all);
    }
    free(r->tab);
    free(r->send);
    free(r->recv);
    free(r->counts);
    free(r->displs);
    free(r->lo);
    free(r->hi);
    free(r);
    *rp = NULL;
}

/* The buffers: each table's marks and row lists; one message of at most
 * sum (1 + max_touched (1 + width)) values per rank. */
static int take_buffers(mimo_rows *r)
{
    size_t msg = 0;
    for (int k = 0; k < r->n; k++) {
        table *t = &r->tab[k];
        size_t cap = t->t.max_touched;
        t->cap_all = (size_t)r->size * cap < (size_t)t->t.rows
                         ? (size_t)r->size * cap : (size_t)t->t.rows;
        t->mark = calloc((size_t)t->t.rows, 1);
        t->local = malloc(sizeof(int32_t) * (cap ? cap : 1));
        t->all = malloc(sizeof(int32_t) * (t->cap_all ? t->cap_all : 1));
        if (!t->mark || !t->local || !t->all)
            return -1;
        msg += 1 + cap * (1 + (size_t)t->t.width);
    }
    if (msg > (size_t)INT_MAX / (size_t)r->size)
        return mimo_error(MIMO_EINVAL, "the embedding rows one step may touch "
                          "(%zu values a rank) are too many for one MPI "
                          "message on %d ranks: use --embedding-grads dense",
                          msg, r->size);
    r->send = malloc(sizeof(mimo_real) * msg);
    r->recv = malloc(sizeof(mimo_real) * msg * (size_t)r->size);
    r->counts = malloc(sizeof(int) * (size_t)r->size);
    r->displs = malloc(sizeof(int) * (size_t)r->size);
    return r->send && r->recv && r->counts && r->displs ? 0 : -1;
}

/* The ranges of [0, n) outside the tables (sorted by offset). */
static int dense_ranges(mimo_rows *r, size_t n)
{
    r->lo = malloc(sizeof(size_t) * (size_t)(r->n + 1));
    r->hi = malloc(sizeof(size_t) * (size_t)(r->n + 1));
    if (!r->lo || !r->hi)
        return -1;
    size_t at = 0;
    for (int k = 0; k <= r->n; k++) {
        size_t end = k < r->n ? r->tab[k].t.off : n;
        if (end > at) {
            r->lo[r->n_dense] = at;
            r->hi[r->n_dense++] = end;
        }
        if (k < r->n)
            at = end + (size_t)r->tab[k].t.rows * (size_t)r->tab[k].t.width;
    }
    return 0;
}

int mimo_rows_create(MPI_Comm comm, int rank, int size, mimo_model *m,
                     size_t n_grads, mimo_rows **out)
{
    *out = NULL;
    const mimo_graph *g = mimo_model_graph(m);
    int n = mimo_graph_sparse_tables(g, NULL, 0);
    if (n == 0)
        return 0;
    mimo_rows *r = calloc(1, sizeof *r);
    mimo_sparse_table *ts = calloc((size_t)n, sizeof *ts);
    if (r)
        r->tab = calloc((size_t)n, sizeof *r->tab);
    if (!r || !ts || !r->tab) {
        free(ts);
        mimo_rows_free(&r);
        return mimo_error(MIMO_ENOMEM, "out of memory");
    }
    *r = (mimo_rows){.comm = comm, .rank = rank, .size = size, .m = m, .n = n,
                     .tab = r->tab, .whole = 1};
    mimo_graph_sparse_tables(g, ts, n);
    for (int k = 0; k < n; k++)
        r->tab[k].t = ts[k];
    free(ts);
    qsort(r->tab, (size_t)n, sizeof *r->tab, by_offset);
    int rc = take_buffers(r);
    if (!rc)
        rc = dense_ranges(r, n_grads);
    if (rc) {
        mimo_rows_free(&r);
        return rc < -1 ? rc : mimo_error(MIMO_ENOMEM, "out of memory for the "
                                         "embedding rows' exchange");
    }
    *out = r;
    return 0;
}

int mimo_rows_dense(const mimo_rows *r, const size_t **lo, const size_t **hi)
{
    *lo = r->lo;
    *hi = r->hi;
    return r->n_dense;
}

void mimo_rows_begin(mimo_rows *r, mimo_real *grads)
{
    for (int k = 0; k < r->n; k++) {
        table *t = &r->tab[k];
        size_t w = (size_t)t->t.width;
        if (r->whole)
            memset(grads + t->t.off, 0, sizeof *grads * (size_t)t->t.rows * w);
        else
            for (size_t i = 0; i < t->n_all; i++)
                memset(grads + t->t.off + (size_t)t->all[i] * w, 0, sizeof *grads * w);
        t->n_all = 0;
    }
    r->whole = 0;
}

/* This rank's message: per table its count, then each touched row and
 * its gradient, which leaves the buffer (zeros there until the merge). */
static int pack(mimo_rows *r, mimo_real *grads)
{
    const mimo_graph *g = mimo_model_graph(r->m);
    int b = mimo_model_backward_rows(r->m);
    size_t at = 0;
    for (int k = 0; k < r->n; k++) {
        table *t = &r->tab[k];
        size_t w = (size_t)t->t.width;
        size_t n = mimo_graph_touched_rows(g, &t->t, b, t->mark, t->local);
        r->send[at++] = to_slot((int32_t)n);
        for (size_t i = 0; i < n; i++) {
            mimo_real *row = grads + t->t.off + (size_t)t->local[i] * w;
            r->send[at++] = to_slot(t->local[i]);
            memcpy(r->send + at, row, sizeof *row * w);
            memset(row, 0, sizeof *row * w);
            at += w;
        }
    }
    return (int)at;
}

/* Adds every rank's message into grads, rank by rank (the order that
 * makes the sum the same everywhere), and lists the rows met. */
static void merge(mimo_rows *r, mimo_real *grads)
{
    for (int q = 0; q < r->size; q++) {
        const mimo_real *msg = r->recv + r->displs[q];
        for (int k = 0; k < r->n; k++) {
            table *t = &r->tab[k];
            size_t w = (size_t)t->t.width;
            int32_t n = from_slot(*msg++);
            for (int32_t i = 0; i < n; i++, msg += w) {
                int32_t row = from_slot(*msg++);
                mimo_real *dst = grads + t->t.off + (size_t)row * w;
                if (!t->mark[row]) {
                    t->mark[row] = 1;
                    t->all[t->n_all++] = row;
                }
                for (size_t j = 0; j < w; j++)
                    dst[j] += msg[j];
            }
        }
    }
    for (int k = 0; k < r->n; k++)
        for (size_t i = 0; i < r->tab[k].n_all; i++)
            r->tab[k].mark[r->tab[k].all[i]] = 0;
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

void mimo_rows_update(mimo_rows *r, mimo_optim *o, mimo_real *params,
                      mimo_real *grads, size_t n, double lr)
{
    (void)n; /* the optimizer's own size */
    if (!mimo_optim_row_sparse(o)) {
        /* the whole update on the summed gradient (zeros off the rows);
         * decay and clipping write the buffer as scratch: the next
         * begin_step clears it all */
        mimo_optim_step(o, params, grads, grads, lr);
        r->whole |= mimo_optim_prepares(o);
        return;
    }
    mimo_optim_begin_step(o);
    for (int i = 0; i < r->n_dense; i++)
        mimo_optim_apply(o, r->lo[i], r->hi[i], params, grads + r->lo[i], 1, lr);
    for (int k = 0; k < r->n; k++) {
        const table *t = &r->tab[k];
        size_t w = (size_t)t->t.width;
        for (size_t i = 0; i < t->n_all; i++) {
            size_t s = t->t.off + (size_t)t->all[i] * w;
            mimo_optim_apply(o, s, s + w, params, grads + s, 1, lr);
        }
    }
}
