/* shm.c — node-shared gradients, parameters and optimizer moments, each
 * rank summing and updating its slice (see shm.h). Windows are locked
 * with MPI_MODE_NOCHECK for their whole life and ordered by the MPI-3
 * unified-model idiom: MPI_Win_sync, MPI_Barrier on the node,
 * MPI_Win_sync.
 *
 * Embedding tables (core/sparse.h) are summed by rows: each rank
 * publishes the rows its backward touched in a node-shared list, every
 * rank notes the node's union of them, and the owner of a slice sums
 * only those rows of the node's buffers (all of the node's buffers, in
 * rank order: exactly the dense sum of those values, the other rows
 * being zeros everywhere) and zeroes them; across nodes each slice's
 * owners exchange their rows with their values in the slice (one
 * MPI_Allgatherv, added in node order as rows.c does), never the table.
 * The update: a row-sparse optimizer (mimo_optim_row_sparse) the rows
 * only; others the whole slice from the sum, whose table part is kept
 * zeros outside the step's rows. */
#include "comm/shm.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "comm/mpicall.h"
#include "comm/dist.h"
#include "comm/rows.h" /* mimo_rows_to_slot, mimo_rows_from_slot */
#include "core/model.h"
#include "mimo/error.h"
#include "core/optim.h"
#include "core/par.h"
#include "core/graph_impl.h" /* MIMO_PAR_MIN */
#include "core/sparse.h"

#define MAX_SLOTS 2
#define SUM_BLOCK 4096 /* values summed per pass while in L1 */

struct mimo_shm {
    MPI_Comm node, cross;      /* ranks of this node; same local rank, all nodes */
    int lrank, lsize, nodes;
    size_t n, lo, hi;          /* trained values; this rank's slice */
    size_t n_all;              /* all parameters (the untrained tail too) */
    MPI_Win gwin, pwin, mwin[MAX_SLOTS];
    int n_slots;
    mimo_real **seg;           /* lsize gradient buffers, n values each */
    mimo_real *params;         /* node-shared, n values */
    mimo_real *slot[MAX_SLOTS];/* node-shared optimizer moments */
    mimo_real *sum;            /* private: this rank's slice of the sum */
    mimo_model *m;             /* the model attached */
    /* the embedding tables summed by rows (NULL: in full, with the rest) */
    mimo_sparse *sp;
    MPI_Win rwin;              /* the ranks' touched rows, node-shared: */
    int32_t **rl;              /* rank q's table k: rl[q][rl_at[k]] rows, */
    size_t *rl_at;             /* then the rows */
    mimo_real *send, *recv;    /* several nodes: the slice's rows */
    int *counts, *displs;
};

/* ---- set-up ------------------------------------------------------------- */

/* The node communicator: the ranks that share memory, or groups of
 * ranks_per_node consecutive ranks (to try the several-node path on one
 * machine: the groups must share memory too). */
static int split_nodes(MPI_Comm comm, int rank, int ranks_per_node, MPI_Comm *node)
{
    if (ranks_per_node > 0)
        MIMO_MPI(MPI_Comm_split(comm, rank / ranks_per_node, rank, node));
    else
        MIMO_MPI(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank,
                                     MPI_INFO_NULL, node));
    return 0;
}

/* One window of `bytes` from each rank of the node, locked for life. */
static int alloc_window(MPI_Comm node, size_t bytes, int noncontig,
                        const char *what, mimo_real **base, MPI_Win *win)
{
    MPI_Info info = MPI_INFO_NULL;
    if (noncontig) { /* each rank's buffer starts on its own pages */
        MIMO_MPI(MPI_Info_create(&info));
        MIMO_MPI(MPI_Info_set(info, "alloc_shared_noncontig", "true"));
    }
    int err = MPI_Win_allocate_shared((MPI_Aint)bytes, (int)sizeof(mimo_real), info,
                                      node, base, win);
    if (info != MPI_INFO_NULL)
        MIMO_MPI(MPI_Info_free(&info));
    if (err != MPI_SUCCESS) {
        mimo_mpi_fail("MPI_Win_allocate_shared", err);
        return mimo_error(MIMO_EMPI, "%s: %s", what, mimo_errmsg());
    }
    MIMO_MPI(MPI_Win_set_errhandler(*win, MPI_ERRORS_RETURN));
    MIMO_MPI(MPI_Win_lock_all(MPI_MODE_NOCHECK, *win));
    int *model = NULL, found = 0; /* stores must be visible after a sync */
    MIMO_MPI(MPI_Win_get_attr(*win, MPI_WIN_MODEL, &model, &found));
    if (found && *model != MPI_WIN_UNIFIED)
        return mimo_error(MIMO_EMPI, "%s: this MPI's shared windows are not in "
                          "the unified memory model (use --allreduce bucketed)", what);
    return 0;
}

/* An array of n + tail values shared by the node, each rank contributing
 * its slice of the first n (the last rank also the tail), contiguous
 * across the ranks (MPI-3's default, checked). */
static int shared_array(mimo_shm *s, const char *what, size_t tail, MPI_Win *win,
                        mimo_real **base)
{
    mimo_real *mine;
    size_t len = s->hi - s->lo + (s->lrank == s->lsize - 1 ? tail : 0);
    int rc = alloc_window(s->node, len * sizeof(mimo_real), 0, what, &mine, win);
    MPI_Aint bytes;
    int unit;
    for (int q = 0; !rc && q < s->lsize; q++) {
        mimo_real *bq = NULL;
        MIMO_MPI(MPI_Win_shared_query(*win, q, &bytes, &unit, q ? &bq : base));
        if (q && bq != *base + s->n * (size_t)q / (size_t)s->lsize)
            rc = mimo_error(MIMO_EMPI, "%s: the node's slices are not contiguous",
                            what);
    }
    return rc;
}

/* Nodes of equal size > 1 (or any equal size when required). */
static int check_nodes(mimo_shm *s, MPI_Comm comm, int required)
{
    int range[2] = {s->lsize, -s->lsize}; /* min, -max of the node sizes */
    MIMO_MPI(MPI_Allreduce(MPI_IN_PLACE, range, 2, MPI_INT, MPI_MIN, comm));
    if (range[0] == -range[1] && (range[0] > 1 || required))
        return 0;
    if (!required)
        return 1;
    return mimo_error(MIMO_EINVAL, "--allreduce shared needs the same number of "
                      "ranks on every node, got %d to %d", range[0], -range[1]);
}

int mimo_shm_create(MPI_Comm comm, size_t n, size_t keep, int ranks_per_node,
                    int required, mimo_shm **out)
{
    int rank, size, rc;
    *out = NULL;
    MIMO_MPI(MPI_Comm_rank(comm, &rank));
    MIMO_MPI(MPI_Comm_size(comm, &size));
    mimo_shm *s = calloc(1, sizeof *s);
    if ((rc = mimo_agree(comm, s ? 0 : mimo_error(MIMO_ENOMEM, "out of memory"))))
        return free(s), rc;
    s->node = s->cross = MPI_COMM_NULL;
    s->gwin = s->pwin = s->mwin[0] = s->mwin[1] = s->rwin = MPI_WIN_NULL;
    s->n = n;
    *out = s; /* from here on, mimo_shm_free undoes what was done */
    if ((rc = split_nodes(comm, rank, ranks_per_node, &s->node)))
        return rc;
    MIMO_MPI(MPI_Comm_rank(s->node, &s->lrank));
    MIMO_MPI(MPI_Comm_size(s->node, &s->lsize));
    if ((rc = check_nodes(s, comm, required)) == 1) { /* not for auto */
        mimo_shm_free(out);
        return 1;
    }
    if (rc)
        return rc;
    s->nodes = size / s->lsize;
    s->lo = n * (size_t)s->lrank / (size_t)s->lsize;
    s->hi = n * (size_t)(s->lrank + 1) / (size_t)s->lsize;
    if (s->lrank > 0 && s->lo < keep) /* [0, keep) in local rank 0's slice */
        s->lo = keep < n ? keep : n;
    if (s->hi < keep)
        s->hi = keep < n ? keep : n;
    MIMO_MPI(MPI_Comm_split(comm, s->lrank, rank, &s->cross));
    s->seg = calloc((size_t)s->lsize, sizeof *s->seg);
    s->sum = calloc(s->hi - s->lo + 1, sizeof(mimo_real)); /* zeros: see clear_sum */
    if ((rc = mimo_agree(comm, s->seg && s->sum ? 0 : mimo_error(MIMO_ENOMEM,
                                                                 "out of memory"))))
        return rc; /* before the window collectives, which all must enter */
    mimo_real *mine;
    if ((rc = alloc_window(s->node, n * sizeof(mimo_real), 1,
                           "the shared gradient buffers", &mine, &s->gwin)))
        return rc;
    for (int q = 0; q < s->lsize; q++) {
        MPI_Aint bytes;
        int unit;
        MIMO_MPI(MPI_Win_shared_query(s->gwin, q, &bytes, &unit, &s->seg[q]));
    }
    return 0;
}

/* ---- the embedding tables' rows: set-up ----------------------------------- */

/* Several nodes: one message of the slice's rows, at most the node's
 * rows of each table (1 + max_touched_t x ranks of the node, never more
 * than the table's) with their values, per node. */
static int cross_buffers(mimo_shm *s)
{
    size_t msg = 0;
    for (int k = 0; k < mimo_sparse_count(s->sp); k++) {
        const mimo_sparse_table *t = mimo_sparse_table_at(s->sp, k);
        size_t cap = t->max_touched * (size_t)s->lsize;
        cap = cap < (size_t)t->rows ? cap : (size_t)t->rows;
        msg += 1 + cap * (1 + (size_t)t->width);
    }
    if (msg > (size_t)INT_MAX / (size_t)s->nodes)
        return mimo_error(MIMO_EINVAL, "the embedding rows one step may touch "
                          "(%zu values a node) are too many for one MPI message "
                          "on %d nodes: use --embedding-grads dense", msg, s->nodes);
    s->send = malloc(sizeof(mimo_real) * msg);
    s->recv = malloc(sizeof(mimo_real) * msg * (size_t)s->nodes);
    s->counts = malloc(sizeof(int) * (size_t)s->nodes);
    s->displs = malloc(sizeof(int) * (size_t)s->nodes);
    return s->send && s->recv && s->counts && s->displs
               ? 0 : mimo_error(MIMO_ENOMEM, "out of memory for the embedding "
                                "rows' exchange");
}

/* The tables of m summed by rows (none: s->sp stays NULL): their row
 * lists, each rank's list of the rows it touched in a node-shared window
 * (per table a count, then max_touched rows) and, with several nodes,
 * the messages. Collective on the node. */
static int attach_rows(mimo_shm *s, mimo_model *m)
{
    int rc = mimo_sparse_create(m, s->n, s->lsize * s->nodes, &s->sp);
    size_t len = 0;
    if (!rc && s->sp) {
        int nt = mimo_sparse_count(s->sp);
        s->rl = calloc((size_t)s->lsize, sizeof *s->rl);
        s->rl_at = malloc(sizeof(size_t) * (size_t)nt);
        rc = s->rl && s->rl_at ? 0 : mimo_error(MIMO_ENOMEM, "out of memory");
        for (int k = 0; !rc && k < nt; k++) {
            s->rl_at[k] = len;
            len += 1 + mimo_sparse_table_at(s->sp, k)->max_touched;
        }
        if (!rc && s->nodes > 1)
            rc = cross_buffers(s);
    }
    if ((rc = mimo_agree(s->node, rc)) || !s->sp) /* the same graph: all or none */
        return rc;
    mimo_real *mine;
    if ((rc = alloc_window(s->node, len * sizeof(int32_t), 1,
                           "the shared lists of rows", &mine, &s->rwin)))
        return rc;
    for (int q = 0; q < s->lsize; q++) {
        MPI_Aint bytes;
        int unit;
        MIMO_MPI(MPI_Win_shared_query(s->rwin, q, &bytes, &unit, &s->rl[q]));
    }
    return 0;
}

int mimo_shm_rows(const mimo_shm *s) { return s->sp != NULL; }

/* Every rank of the node has done its stores (and its loads) before any
 * rank goes on. */
static int node_barrier(mimo_shm *s)
{
    MPI_Win *w[3 + MAX_SLOTS] = {&s->gwin, &s->pwin, &s->rwin, &s->mwin[0],
                                 &s->mwin[1]};
    for (int k = 0; k < 3 + MAX_SLOTS; k++)
        if (*w[k] != MPI_WIN_NULL)
            MIMO_MPI(MPI_Win_sync(*w[k]));
    MIMO_MPI(MPI_Barrier(s->node));
    for (int k = 0; k < 3 + MAX_SLOTS; k++)
        if (*w[k] != MPI_WIN_NULL)
            MIMO_MPI(MPI_Win_sync(*w[k]));
    return 0;
}

/* The model's own parameters, gradients and optimizer moments, whose
 * values the shared buffers hold from now on (mimo_shm_free copies them
 * back): their pages given back to the system. */
static void release_own(const mimo_shm *s, mimo_model *m)
{
    mimo_optim *o = mimo_model_optim(m);
    mimo_mem_release(mimo_model_params(m), sizeof(mimo_real) * s->n_all);
    mimo_mem_release(mimo_model_grads(m), sizeof(mimo_real) * s->n);
    for (int k = 0; k < mimo_optim_n_slots(o); k++)
        mimo_mem_release(mimo_optim_slot(o, k), sizeof(mimo_real) * s->n);
}

int mimo_shm_attach(mimo_shm *s, mimo_model *m, int dense_tables,
                    mimo_real **params, mimo_real **grads)
{
    mimo_optim *o = mimo_model_optim(m);
    if (mimo_optim_n_slots(o) > MAX_SLOTS)
        return mimo_error(MIMO_EINVAL, "an optimizer with %d moments cannot "
                          "share them (at most %d)", mimo_optim_n_slots(o), MAX_SLOTS);
    int rc = dense_tables ? 0 : attach_rows(s, m); /* before any buffer moves */
    if (rc)
        return rc;
    /* the parameters' tail that is not trained (moving statistics, frozen
     * layers) is shared too: one copy per node, as the rest */
    s->n_all = mimo_model_param_count(m);
    rc = shared_array(s, "the shared parameters", s->n_all - s->n, &s->pwin,
                          &s->params);
    s->n_slots = mimo_optim_n_slots(o);
    for (int k = 0; !rc && k < s->n_slots; k++)
        rc = shared_array(s, "the shared optimizer moments", 0, &s->mwin[k],
                          &s->slot[k]);
    if (rc)
        return rc;
    /* each rank touches its own slice first, so that its pages live next
     * to it (NUMA), then local rank 0 fills in the values; the ranks'
     * own buffers are given back before (the others: theirs are never
     * read) or right after (local rank 0: once copied), so that a node
     * never holds more than the shared buffers and one private copy */
    if (s->lrank != 0)
        release_own(s, m);
    size_t len = sizeof(mimo_real) * (s->hi - s->lo);
    memset(s->params + s->lo, 0, len);
    for (int k = 0; k < s->n_slots; k++)
        memset(s->slot[k] + s->lo, 0, len);
    memset(s->seg[s->lrank], 0, sizeof(mimo_real) * s->n); /* see sum_block */
    if ((rc = node_barrier(s)))
        return rc;
    if (s->lrank == 0) { /* its parameters: those rank 0 broadcasts later */
        memcpy(s->params, mimo_model_params(m), sizeof(mimo_real) * s->n_all);
        for (int k = 0; k < s->n_slots; k++)
            memcpy(s->slot[k], mimo_optim_slot(o, k), sizeof(mimo_real) * s->n);
        release_own(s, m);
    }
    if ((rc = node_barrier(s)))
        return rc;
    for (int k = 0; k < s->n_slots; k++)
        mimo_optim_lend_slot(o, k, s->slot[k]);
    s->m = m;
    *grads = s->seg[s->lrank];
    *params = s->params;
    return 0;
}

int mimo_shm_local_rank(const mimo_shm *s) { return s->lrank; }

/* ---- the step ----------------------------------------------------------- */

static void add2(mimo_real *restrict out, const mimo_real *restrict a,
                 const mimo_real *restrict b, size_t len)
{
    for (size_t i = 0; i < len; i++)
        out[i] = a[i] + b[i];
}

static void add_into(mimo_real *restrict out, const mimo_real *restrict a, size_t len)
{
    for (size_t i = 0; i < len; i++)
        out[i] += a[i];
}

/* out[0, e - a) = seg[0][a, e) + seg[1][a, e) + ..., in rank order. */
static void sum_block(const mimo_shm *s, size_t a, size_t e, mimo_real *out)
{
    if (s->lsize == 1)
        memcpy(out, s->seg[0] + a, sizeof(mimo_real) * (e - a));
    else
        add2(out, s->seg[0] + a, s->seg[1] + a, e - a);
    for (int q = 2; q < s->lsize; q++)
        add_into(out, s->seg[q] + a, e - a);
    for (int q = 0; q < s->lsize; q++) /* while in cache: the next step's zeros */
        memset(s->seg[q] + a, 0, sizeof(mimo_real) * (e - a));
}

/* [a, e) of the slice, one node, no clipnorm: each block summed into L1
 * and applied at once, so the sum never goes to memory. */
static void apply_fused(mimo_shm *s, mimo_optim *o, mimo_real *params, double lr,
                        size_t a, size_t e)
{
    long nblk = (long)((e - a + SUM_BLOCK - 1) / SUM_BLOCK);
    int prep = mimo_optim_prepares(o);
    MIMO_PAR_FOR(e - a >= 2 * MIMO_PAR_MIN, long k = 0, k < nblk, k++, {
        mimo_real g[SUM_BLOCK];
        size_t b = a + (size_t)k * SUM_BLOCK;
        size_t f = b + SUM_BLOCK < e ? b + SUM_BLOCK : e;
        sum_block(s, b, f, g);
        if (prep)
            mimo_optim_prepare(o, b, f, params, g, g);
        mimo_optim_apply(o, b, f, params, g, 1, lr);
    });
}

/* The node's sum of [a, e) of the slice into its place in s->sum. */
static void sum_range(mimo_shm *s, size_t a, size_t e)
{
    size_t len = e - a;
    mimo_real *out = s->sum + (a - s->lo);
    MIMO_PAR_FOR(len >= 2 * MIMO_PAR_MIN, size_t b = 0, b < len, b += SUM_BLOCK, {
        sum_block(s, a + b, a + (b + SUM_BLOCK < len ? b + SUM_BLOCK : len), out + b);
    });
}

/* Several nodes: [a, e) of s->sum allreduced with the slice's owners on
 * the other nodes. */
static int cross_sum(mimo_shm *s, size_t a, size_t e)
{
    for (size_t b = a; b < e; b += INT_MAX)
        MIMO_MPI(MPI_Allreduce(MPI_IN_PLACE, s->sum + (b - s->lo),
                               (int)(e - b < INT_MAX ? e - b : INT_MAX),
                               MIMO_MPI_REAL, MPI_SUM, s->cross));
    return 0;
}

/* The whole slice's update from s->sum: decay and clipping (in place),
 * the norm over the node (which covers every slice) for clipnorm. */
static int apply_slice(mimo_shm *s, mimo_optim *o, mimo_real *params, double lr)
{
    double scale = 1;
    if (mimo_optim_prepares(o)) {
        double sq = mimo_optim_prepare(o, s->lo, s->hi, params, s->sum, s->sum), all = sq;
        if (mimo_optim_clips_norm(o)) {
            MIMO_MPI(MPI_Allreduce(&sq, &all, 1, MPI_DOUBLE, MPI_SUM, s->node));
            scale = mimo_optim_clip_scale(o, all);
        }
    }
    mimo_optim_apply(o, s->lo, s->hi, params, s->sum, scale, lr);
    return 0;
}

/* Several nodes or clipnorm: the slice's sum in s->sum, allreduced across
 * the nodes, then its update. */
static int apply_staged(mimo_shm *s, mimo_optim *o, mimo_real *params, double lr)
{
    sum_range(s, s->lo, s->hi);
    int rc = s->nodes > 1 ? cross_sum(s, s->lo, s->hi) : 0;
    return rc ? rc : apply_slice(s, o, params, lr);
}

/* ---- the step: embedding tables by rows ---------------------------------- */

/* This rank's touched rows, for the node to read after the barrier. */
static void publish_rows(mimo_shm *s)
{
    int32_t *mine = s->rl[s->lrank];
    for (int k = 0; k < mimo_sparse_count(s->sp); k++) {
        const int32_t *rows;
        size_t n = mimo_sparse_local(s->sp, k, &rows);
        mine[s->rl_at[k]] = (int32_t)n;
        memcpy(mine + s->rl_at[k] + 1, rows, sizeof *rows * n);
    }
}

/* The node's rows: every rank's, noted in rank order (the same list on
 * every rank of the node; marked until mimo_sparse_noted). */
static void note_node_rows(mimo_shm *s)
{
    mimo_sparse_forget(s->sp);
    for (int q = 0; q < s->lsize; q++)
        for (int k = 0; k < mimo_sparse_count(s->sp); k++) {
            const int32_t *l = s->rl[q] + s->rl_at[k];
            for (int32_t i = 0; i < l[0]; i++)
                mimo_sparse_note(s->sp, k, l[1 + i]);
        }
}

/* [*a, *e): [lo, hi) within this rank's slice; whether not empty. */
static int clip(const mimo_shm *s, size_t lo, size_t hi, size_t *a, size_t *e)
{
    *a = lo > s->lo ? lo : s->lo;
    *e = hi < s->hi ? hi : s->hi;
    return *a < *e;
}

/* Row `row` of table t within this rank's slice (a row may straddle
 * two slices: each owner takes its part). */
static int row_in_slice(const mimo_shm *s, const mimo_sparse_table *t, int32_t row,
                        size_t *a, size_t *e)
{
    size_t lo = t->off + (size_t)row * (size_t)t->width;
    return clip(s, lo, lo + (size_t)t->width, a, e);
}

/* For each noted row of each table in the slice: its part [a, e). */
#define FOR_ROWS_IN_SLICE(s, a, e, ...)                                      \
    for (int k_ = 0; k_ < mimo_sparse_count((s)->sp); k_++) {                \
        const mimo_sparse_table *t_ = mimo_sparse_table_at((s)->sp, k_);     \
        const int32_t *r_;                                                   \
        size_t n_ = mimo_sparse_rows((s)->sp, k_, &r_);                      \
        for (size_t i_ = 0; i_ < n_; i_++)                                   \
            if (row_in_slice((s), t_, r_[i_], &(a), &(e))) { __VA_ARGS__ }   \
    }

/* Several nodes: the slice's part of each node's rows, with their sums,
 * to the slice's owners on every node (one MPI_Allgatherv over cross),
 * then added into s->sum node by node, in node order (zeros first:
 * ((n_0 + n_1) + n_2)..., as rows.c); the other nodes' rows noted. A
 * message: per table a count, then each row and its values in the
 * slice (the receiver knows how many from the row). */
static int cross_rows(mimo_shm *s)
{
    size_t at = 0, a, e;
    for (int k = 0; k < mimo_sparse_count(s->sp); k++) {
        const mimo_sparse_table *t = mimo_sparse_table_at(s->sp, k);
        const int32_t *rows;
        size_t n = mimo_sparse_rows(s->sp, k, &rows), count = at++;
        int32_t c = 0;
        for (size_t i = 0; i < n; i++)
            if (row_in_slice(s, t, rows[i], &a, &e)) {
                s->send[at++] = mimo_rows_to_slot(rows[i]);
                memcpy(s->send + at, s->sum + (a - s->lo), sizeof *s->sum * (e - a));
                memset(s->sum + (a - s->lo), 0, sizeof *s->sum * (e - a));
                at += e - a;
                c++;
            }
        s->send[count] = mimo_rows_to_slot(c);
    }
    int mine = (int)at;
    MIMO_MPI(MPI_Allgather(&mine, 1, MPI_INT, s->counts, 1, MPI_INT, s->cross));
    for (int q = 0, d = 0; q < s->nodes; q++) {
        s->displs[q] = d;
        d += s->counts[q];
    }
    MIMO_MPI(MPI_Allgatherv(s->send, mine, MIMO_MPI_REAL, s->recv, s->counts,
                            s->displs, MIMO_MPI_REAL, s->cross));
    for (int q = 0; q < s->nodes; q++) {
        const mimo_real *msg = s->recv + s->displs[q];
        for (int k = 0; k < mimo_sparse_count(s->sp); k++) {
            const mimo_sparse_table *t = mimo_sparse_table_at(s->sp, k);
            for (int32_t i = 0, n = mimo_rows_from_slot(*msg++); i < n; i++) {
                int32_t row = mimo_rows_from_slot(*msg++);
                row_in_slice(s, t, row, &a, &e); /* the sender's slice: ours */
                mimo_sparse_note(s->sp, k, row);
                add_into(s->sum + (a - s->lo), msg, e - a);
                msg += e - a;
            }
        }
    }
    return 0;
}

/* The slice's sums: each noted row's part (s->sum's table part is zeros
 * elsewhere), and, staged, the ranges outside the tables; across the
 * nodes when there are several. */
static int sum_by_rows(mimo_shm *s, int staged)
{
    size_t a, e;
    const size_t *lo, *hi;
    FOR_ROWS_IN_SLICE(s, a, e, sum_block(s, a, e, s->sum + (a - s->lo));)
    for (int i = 0, nd = mimo_sparse_dense(s->sp, &lo, &hi); staged && i < nd; i++)
        if (clip(s, lo[i], hi[i], &a, &e)) {
            sum_range(s, a, e);
            int rc = s->nodes > 1 ? cross_sum(s, a, e) : 0;
            if (rc)
                return rc;
        }
    return s->nodes > 1 ? cross_rows(s) : 0;
}

/* [a, e) of the slice updated from its sum in s->sum, decayed and
 * clipped block by block in L1 (s->sum's zeros stay zeros), in place
 * there as apply_fused does (the same calls: the same code, whatever
 * the compiler makes of a prepare in place and one into another
 * buffer). */
static void apply_sum(mimo_shm *s, mimo_optim *o, mimo_real *params, double lr,
                      size_t a, size_t e)
{
    if (!mimo_optim_prepares(o)) {
        mimo_optim_apply(o, a, e, params, s->sum + (a - s->lo), 1, lr);
        return;
    }
    long nblk = (long)((e - a + SUM_BLOCK - 1) / SUM_BLOCK);
    MIMO_PAR_FOR(e - a >= 2 * MIMO_PAR_MIN, long k = 0, k < nblk, k++, {
        mimo_real g[SUM_BLOCK];
        size_t b = a + (size_t)k * SUM_BLOCK;
        size_t f = b + SUM_BLOCK < e ? b + SUM_BLOCK : e;
        memcpy(g, s->sum + (b - s->lo), sizeof *g * (f - b));
        mimo_optim_prepare(o, b, f, params, g, g);
        mimo_optim_apply(o, b, f, params, g, 1, lr);
    });
}

/* Unless the whole slice is staged and updated (an optimizer that is
 * not row-sparse, with several nodes or clipnorm): the ranges outside
 * the tables (fused on one node), then the tables: a row-sparse
 * optimizer their noted rows, another the whole of them. */
static void apply_parts(mimo_shm *s, mimo_optim *o, mimo_real *params, double lr,
                        int staged, int rows_only)
{
    size_t a, e;
    const size_t *lo, *hi;
    int nd = mimo_sparse_dense(s->sp, &lo, &hi);
    for (int i = 0; i < nd; i++)
        if (clip(s, lo[i], hi[i], &a, &e)) {
            if (staged)
                mimo_optim_apply(o, a, e, params, s->sum + (a - s->lo), 1, lr);
            else
                apply_fused(s, o, params, lr, a, e);
        }
    if (rows_only) {
        FOR_ROWS_IN_SLICE(s, a, e,
                          mimo_optim_apply(o, a, e, params, s->sum + (a - s->lo), 1, lr);)
        return;
    }
    for (int k = 0; k < mimo_sparse_count(s->sp); k++) {
        const mimo_sparse_table *t = mimo_sparse_table_at(s->sp, k);
        if (clip(s, t->off, t->off + (size_t)t->rows * (size_t)t->width, &a, &e))
            apply_sum(s, o, params, lr, a, e);
    }
}

/* The tables' part of s->sum zeros again for the next step: the noted
 * rows, or all of it after apply_slice's decay or clipping wrote it. */
static void clear_sum(mimo_shm *s, int whole)
{
    size_t a, e;
    if (whole)
        memset(s->sum, 0, sizeof *s->sum * (s->hi - s->lo));
    else
        FOR_ROWS_IN_SLICE(s, a, e, memset(s->sum + (a - s->lo), 0,
                                          sizeof *s->sum * (e - a));)
}

/* The step with the tables by rows: the node's rows, their sums (and
 * across nodes), the update, s->sum's table part cleared. */
static int apply_rows(mimo_shm *s, mimo_optim *o, mimo_real *params, double lr)
{
    int rows_only = mimo_optim_row_sparse(o);
    int staged = s->nodes > 1 || mimo_optim_clips_norm(o);
    note_node_rows(s);
    int rc = sum_by_rows(s, staged);
    if (!rc && staged && !rows_only)
        rc = apply_slice(s, o, params, lr);
    else if (!rc)
        apply_parts(s, o, params, lr, staged, rows_only);
    clear_sum(s, staged && !rows_only && mimo_optim_prepares(o));
    mimo_sparse_noted(s->sp);
    return rc;
}

/* The barriers: every gradient of the node (and its list of rows) is
 * written before any rank sums; every slice is updated before any
 * rank's next forward reads it or next backward overwrites a gradient
 * another rank read. */
int mimo_shm_apply(mimo_shm *s, mimo_optim *o, mimo_real *params, double lr)
{
    if (s->sp)
        publish_rows(s);
    int rc = node_barrier(s);
    if (rc)
        return rc;
    mimo_optim_begin_step(o);
    if (s->sp)
        rc = apply_rows(s, o, params, lr);
    else if (s->nodes == 1 && !mimo_optim_clips_norm(o))
        apply_fused(s, o, params, lr, s->lo, s->hi);
    else
        rc = apply_staged(s, o, params, lr);
    return rc ? rc : node_barrier(s);
}

/* ---- writes outside the step -------------------------------------------- */

int mimo_shm_bcast_params(mimo_shm *s)
{
    int rc = node_barrier(s); /* nobody reads them while they change */
    if (rc)
        return rc;
    for (size_t a = 0; s->nodes > 1 && s->lrank == 0 && a < s->n_all; a += INT_MAX)
        MIMO_MPI(MPI_Bcast(s->params + a,
                           (int)(s->n_all - a < INT_MAX ? s->n_all - a : INT_MAX),
                           MIMO_MPI_REAL, 0, s->cross));
    return node_barrier(s);
}

int mimo_shm_write_params(mimo_shm *s, mimo_real *dst, const mimo_real *src,
                          size_t n)
{
    int rc = node_barrier(s); /* nobody reads them while they change */
    if (rc)
        return rc;
    if (s->lrank == 0 && dst != src)
        memcpy(dst, src, sizeof(mimo_real) * n); /* n: all the parameters */
    return node_barrier(s);
}

/* ---- freeing ------------------------------------------------------------ */

static void release(mimo_shm *s)
{
    mimo_sparse_free(&s->sp);
    free(s->rl);
    free(s->rl_at);
    free(s->send);
    free(s->recv);
    free(s->counts);
    free(s->displs);
    free(s->seg);
    free(s->sum);
    free(s);
}

/* Teardown: a failure here has no one left to tell. */
static void free_window(MPI_Win *w)
{
    int ignored = 0;
    if (*w == MPI_WIN_NULL)
        return;
    MIMO_MPI_KEEP(&ignored, MPI_Win_unlock_all(*w));
    MIMO_MPI_KEEP(&ignored, MPI_Win_free(w));
}

/* The model gets its own buffers back, with the values, one buffer at a
 * time, each shared window freed once copied (the gradients' first: no
 * values to keep), so that a node never holds a private copy of all of
 * them beside all the shared ones (with a large embedding table, more
 * than training itself needs). */
void mimo_shm_free(mimo_shm **sp)
{
    mimo_shm *s = sp ? *sp : NULL;
    if (!s)
        return;
    mimo_model *m = s->m;
    if (m)
        mimo_model_set_exchange(m, mimo_model_rank(m), mimo_model_size(m), NULL);
    free_window(&s->gwin);
    free_window(&s->rwin);
    if (m)
        memcpy(mimo_model_params(m), s->params, sizeof(mimo_real) * s->n_all);
    free_window(&s->pwin);
    for (int k = 0; k < MAX_SLOTS; k++) {
        if (m && k < s->n_slots) {
            mimo_optim *o = mimo_model_optim(m);
            mimo_optim_lend_slot(o, k, NULL);
            memcpy(mimo_optim_slot(o, k), s->slot[k], sizeof(mimo_real) * s->n);
        }
        free_window(&s->mwin[k]);
    }
    int ignored = 0;
    if (s->node != MPI_COMM_NULL)
        MIMO_MPI_KEEP(&ignored, MPI_Comm_free(&s->node));
    if (s->cross != MPI_COMM_NULL)
        MIMO_MPI_KEEP(&ignored, MPI_Comm_free(&s->cross));
    release(s);
    *sp = NULL;
}

void mimo_shm_abandon(mimo_shm **sp)
{
    if (sp && *sp) {
        release(*sp);
        *sp = NULL;
    }
}
