/* dist.c — the MPI implementations of the exchange contract
 * (mimo/exchange.h), chosen once by mimo_dist_attach (see dist.h for the
 * forms):
 * allreduce (owns nothing; sums the model's gradient buffer in place):
 *   bucketed: the gradient buffer is split into fixed buckets (front to
 *   back, the same on every rank); backward finishes the buffer front to
 *   back, so each bucket's MPI_Iallreduce starts in layer_done as soon as
 *   its last value is final, and MPI_Test drives the started ones while
 *   backward goes on; finish starts what is left, waits for all, then
 *   runs the optimizer. blocking: one MPI_Allreduce in finish.
 * row_sparse (as allreduce, for a model with embedding tables): the
 *   buckets (or the blocking allreduce) cover the buffer outside the
 *   tables, and rows.c sums the tables by the rows the ranks touched.
 * node_shared (owns the parameters, the gradients and the moments, in
 *   shm.c's node-shared windows): finish sums the node's gradients and
 *   updates this rank's slice; node_shared_rows the same with the
 *   embedding tables summed by the rows the ranks touched (shm.c).
 * Both time the step's phases (for mimo_dist_times and traces) and sum
 * row weights and batch statistics over the ranks (reduce).
 * Checksums and logged sums are in reduce.c; communicators and checked
 * calls in comm.c.
 *
 * Part comm (src/comm/): everything MPI — gradient sums, collectives,
 * node-shared memory, traces; uses core (through its exchange contract)
 * and base.
 */
#include "comm/dist.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "comm/mpicall.h"
#include "comm/rows.h"
#include "comm/shm.h"
#include "comm/stall.h"
#include "core/model.h"
#include "mimo/error.h"

struct mimo_dist {
    MPI_Comm comm;
    int rank, size;
    mimo_allreduce mode;
    int ranks_per_node;
    size_t per;                /* values a bucket */
    mimo_shm *shm;             /* the shared form's state, or NULL */
    size_t n;
    int dense_tables;          /* --embedding-grads dense */
    mimo_rows *rows;           /* row_sparse's tables, or NULL */
    int nb, next;              /* buckets; the next one to start */
    size_t *lo, *hi;           /* bucket k: values [lo[k], hi[k]) */
    MPI_Request *req;
    mimo_real *grads;          /* the buffer of the current step */
    int err;                   /* the first MPI failure inside a hook */
    mimo_trace *trace;
    double t_phase[MIMO_N_PHASES], t_layer;
    double spent[MIMO_N_PHASES]; /* seconds in each phase */
    double t_wall[MIMO_N_PHASES];
    /* the vote in flight (mimo_dist_vote) */
    int vote_send, vote_sum, vote_pending;
    MPI_Request vote_req;
};

/* The buckets: each of the nseg ranges [lo, hi) of the gradient buffer
 * (the whole buffer, or what the embedding tables leave) cut in equal
 * shares of at most d->per values, front to back, the same on every
 * rank. */
static int make_buckets(mimo_dist *d, int nseg, const size_t *lo, const size_t *hi)
{
    size_t per = d->per < 1 ? 1 : d->per > INT_MAX ? INT_MAX : d->per, nb = 0;
    for (int s = 0; s < nseg; s++)
        nb += (hi[s] - lo[s] + per - 1) / per;
    free(d->lo);
    free(d->hi);
    free(d->req);
    d->lo = malloc(sizeof *d->lo * (nb ? nb : 1));
    d->hi = malloc(sizeof *d->hi * (nb ? nb : 1));
    d->req = malloc(sizeof *d->req * (nb ? nb : 1));
    if (!d->lo || !d->hi || !d->req || nb > INT_MAX)
        return mimo_error(MIMO_ENOMEM, "out of memory for %zu buckets", nb);
    d->nb = 0;
    for (int s = 0; s < nseg; s++) {
        size_t len = hi[s] - lo[s], k = (len + per - 1) / per;
        for (size_t j = 0; j < k; j++, d->nb++) { /* equal shares */
            d->lo[d->nb] = lo[s] + len * j / k;
            d->hi[d->nb] = lo[s] + len * (j + 1) / k;
            d->req[d->nb] = MPI_REQUEST_NULL;
        }
    }
    return 0;
}

int mimo_dist_create(MPI_Comm comm, size_t n, const mimo_dist_opts *o,
                     mimo_trace *trace, mimo_dist **out)
{
    *out = NULL;
    mimo_dist *d = calloc(1, sizeof *d);
    if (!d)
        return mimo_error(MIMO_ENOMEM, "out of memory");
    d->comm = comm;
    d->size = 1;
    if (comm != MPI_COMM_NULL) { /* MPI_COMM_NULL: one process, MPI unused */
        int rc = 0;
        MIMO_MPI_KEEP(&rc, MPI_Comm_rank(comm, &d->rank));
        MIMO_MPI_KEEP(&rc, MPI_Comm_size(comm, &d->size));
        if (rc) {
            free(d);
            return rc;
        }
    }
    d->mode = o ? o->mode : MIMO_ALLREDUCE_AUTO;
    d->ranks_per_node = o ? o->ranks_per_node : 0;
    d->n = n;
    d->dense_tables = o ? o->dense_embeddings : 0;
    d->trace = trace;
    d->vote_req = MPI_REQUEST_NULL;
    d->per = (o && o->bucket_bytes ? o->bucket_bytes : MIMO_BUCKET_BYTES_DEFAULT)
             / sizeof(mimo_real);
    size_t lo = 0;
    int rc = make_buckets(d, 1, &lo, &n);
    if (rc) {
        mimo_dist_free(&d);
        return rc;
    }
    *out = d;
    return 0;
}

/* Whether a nonblocking operation still targets d's memory. */
static int in_flight(const mimo_dist *d)
{
    for (int k = 0; d->req && k < d->nb; k++)
        if (d->req[k] != MPI_REQUEST_NULL)
            return 1;
    return d->vote_pending;
}

static void dist_release(mimo_dist **dp, int collective)
{
    if (!dp || !*dp)
        return;
    if (collective) {
        mimo_dist_vote_drain(*dp);
        mimo_shm_free(&(*dp)->shm);
    } else {
        mimo_shm_abandon(&(*dp)->shm);
        /* Abandoned (the other ranks may be gone): an operation still in
         * flight cannot be completed, and MPI may yet write its result
         * here while the process ends (seen: the step-late vote's sum,
         * delivered by the stall detector's last probe). Its memory is
         * left to the exit, not freed under it. */
        if (in_flight(*dp)) {
            *dp = NULL;
            return;
        }
    }
    mimo_rows_free(&(*dp)->rows);
    free((*dp)->lo);
    free((*dp)->hi);
    free((*dp)->req);
    free(*dp);
    *dp = NULL;
}

void mimo_dist_free(mimo_dist **dp) { dist_release(dp, 1); }
void mimo_dist_abandon(mimo_dist **dp) { dist_release(dp, 0); }

int mimo_dist_rank(const mimo_dist *d) { return d->rank; }
int mimo_dist_size(const mimo_dist *d) { return d->size; }
MPI_Comm mimo_dist_comm(const mimo_dist *d) { return d->comm; }
int mimo_dist_buckets(const mimo_dist *d) { return d->nb; }
mimo_allreduce mimo_dist_mode(const mimo_dist *d) { return d->mode; }

static const char *const mode_names[] = {"auto", "shared", "bucketed", "blocking"};

int mimo_allreduce_parse(const char *s, mimo_allreduce *out)
{
    for (int k = 0; s && k < 4; k++)
        if (strcmp(s, mode_names[k]) == 0) {
            *out = (mimo_allreduce)k;
            return 0;
        }
    return -1;
}

const char *mimo_allreduce_name(mimo_allreduce a)
{
    return (unsigned)a < 4 ? mode_names[a] : "?";
}

/* ---- the gradient sum in the step ------------------------------------------ */

static void start_bucket(mimo_dist *d, int k)
{
    size_t s = d->lo[k], e = d->hi[k];
    mimo_trace_instant(d->trace, "allreduce", "bucket start", k);
    MIMO_MPI_KEEP(&d->err, MPI_Iallreduce(MPI_IN_PLACE, d->grads + s, (int)(e - s),
                                          MIMO_MPI_REAL, MPI_SUM, d->comm,
                                          &d->req[k]));
}

static void allreduce_begin(void *u, mimo_real *grads, size_t n)
{
    mimo_dist *d = u;
    memset(grads, 0, sizeof *grads * n);
    d->grads = grads;
    d->next = 0;
    d->t_layer = mimo_trace_now(d->trace);
}

/* row_sparse: zeros outside the tables, and in the rows of the tables
 * the last step touched (rows.c) */
static void rows_begin(void *u, mimo_real *grads, size_t n)
{
    mimo_dist *d = u;
    const size_t *lo, *hi;
    (void)n;
    for (int s = 0, nseg = mimo_rows_dense(d->rows, &lo, &hi); s < nseg; s++)
        memset(grads + lo[s], 0, sizeof *grads * (hi[s] - lo[s]));
    mimo_rows_begin(d->rows, grads);
    d->grads = grads;
    d->next = 0;
    d->t_layer = mimo_trace_now(d->trace);
}

/* node_shared: the last finish left zeros in this rank's shared buffer
 * (and attach cleared it) */
static void shared_begin(void *u, mimo_real *grads, size_t n)
{
    mimo_dist *d = u;
    (void)grads, (void)n;
    d->t_layer = mimo_trace_now(d->trace);
}

/* Starts every bucket whose values are all final, then lets MPI progress
 * the ones in flight. */
static void layer_done(void *u, const char *layer, size_t done)
{
    mimo_dist *d = u;
    if (d->trace) {
        double t = mimo_trace_now(d->trace);
        mimo_trace_span(d->trace, "backward", layer, d->t_layer, t);
        d->t_layer = t;
    }
    if (d->mode != MIMO_ALLREDUCE_BUCKETED || d->size == 1)
        return;
    while (d->next < d->nb && d->hi[d->next] <= done)
        start_bucket(d, d->next++);
    for (int k = 0; k < d->next; k++)
        if (d->req[k] != MPI_REQUEST_NULL) {
            int flag = 0;
            MIMO_MPI_KEEP(&d->err, MPI_Test(&d->req[k], &flag, MPI_STATUS_IGNORE));
        }
}

/* Blocking: one allreduce of [lo, hi) in pieces of at most INT_MAX
 * values. */
static int allreduce_range(mimo_dist *d, mimo_real *grads, size_t lo, size_t hi)
{
    for (size_t s = lo; s < hi; s += INT_MAX)
        MIMO_MPI(MPI_Allreduce(MPI_IN_PLACE, grads + s,
                               (int)(hi - s < INT_MAX ? hi - s : INT_MAX),
                               MIMO_MPI_REAL, MPI_SUM, d->comm));
    return 0;
}

/* Blocking: the whole buffer, or (row_sparse) each range outside the
 * tables. */
static int sum_blocking(mimo_dist *d, mimo_real *grads, size_t n)
{
    size_t zero = 0;
    const size_t *lo = &zero, *hi = &n;
    int nseg = d->rows ? mimo_rows_dense(d->rows, &lo, &hi) : 1;
    for (int s = 0; s < nseg; s++) {
        int rc = allreduce_range(d, grads, lo[s], hi[s]);
        if (rc)
            return rc;
    }
    return 0;
}

/* Bucketed: start what backward left, wait for all. */
static int sum_buckets(mimo_dist *d, mimo_real *grads)
{
    d->grads = grads;
    while (d->next < d->nb)
        start_bucket(d, d->next++);
    if (d->err)
        return d->err;
    MIMO_MPI(MPI_Waitall(d->nb, d->req, MPI_STATUSES_IGNORE));
    return 0;
}

static void phase(void *u, mimo_phase p, int end)
{
    static const char *const names[MIMO_N_PHASES] = {"data", "forward", "backward",
                                                     "optimizer", "exchange"};
    mimo_dist *d = u;
    double w = mimo_clock();
    if (!end)
        d->t_wall[p] = w;
    else
        d->spent[p] += w - d->t_wall[p];
    if (!d->trace)
        return;
    double t = mimo_trace_now(d->trace);
    if (!end)
        d->t_phase[p] = t;
    else if (p != MIMO_PHASE_BACKWARD) /* backward is traced per layer */
        mimo_trace_span(d->trace, "step", names[p], d->t_phase[p], t);
}

/* allreduce: the sum (none on one rank: a trace only), then the
 * optimizer on every rank. grads is also the optimizer's scratch for
 * decay and clipping: the next begin_step clears it. row_sparse: the
 * same for the buffer outside the tables, then their rows (rows.c). */
static int allreduce_finish(void *u, mimo_optim *o, mimo_real *params,
                            mimo_real *grads, size_t n, double lr)
{
    mimo_dist *d = u;
    if (d->size > 1) {
        double t0 = mimo_trace_now(d->trace), w0 = mimo_clock();
        int blocking = d->mode == MIMO_ALLREDUCE_BLOCKING;
        mimo_stall_enter(MIMO_STALL_GRADIENTS);
        int rc = blocking ? sum_blocking(d, grads, n) : sum_buckets(d, grads);
        if (!rc && d->rows) {
            mimo_trace_span(d->trace, "allreduce", "dense part", t0,
                            mimo_trace_now(d->trace));
            rc = mimo_rows_sum(d->rows, grads);
        }
        mimo_stall_leave();
        mimo_trace_span(d->trace, "allreduce", blocking ? "allreduce (blocking)"
                        : "allreduce wait", t0, mimo_trace_now(d->trace));
        d->spent[MIMO_PHASE_EXCHANGE] += mimo_clock() - w0;
        if (rc)
            return rc;
    } else if (d->rows) { /* one rank: its rows are the step's */
        mimo_rows_note_local(d->rows);
    }
    phase(d, MIMO_PHASE_OPTIMIZER, 0);
    if (d->rows)
        mimo_rows_update(d->rows, o, params, grads, lr);
    else
        mimo_optim_step(o, params, grads, grads, lr);
    phase(d, MIMO_PHASE_OPTIMIZER, 1);
    return 0;
}

/* node_shared: the sum and this rank's slice of the update (the update
 * counts as exchange time). */
static int shared_finish(void *u, mimo_optim *o, mimo_real *params,
                         mimo_real *grads, size_t n, double lr)
{
    mimo_dist *d = u;
    (void)grads, (void)n;
    double t0 = mimo_trace_now(d->trace), w0 = mimo_clock();
    mimo_stall_enter(MIMO_STALL_GRADIENTS);
    int rc = mimo_shm_apply(d->shm, o, params, lr);
    mimo_stall_leave();
    mimo_trace_span(d->trace, "allreduce", "sum and update (shared memory)", t0,
                    mimo_trace_now(d->trace));
    d->spent[MIMO_PHASE_EXCHANGE] += mimo_clock() - w0;
    return rc;
}

/* Batch statistics (batch_norm), row weights: a small sum over all ranks
 * (one rank, a trace only: already the sum; its comm may be null). */
static int reduce(void *u, double *v, int n)
{
    mimo_dist *d = u;
    if (d->size == 1)
        return 0;
    mimo_stall_enter(MIMO_STALL_BATCH_STATS);
    int err = MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, d->comm);
    mimo_stall_leave();
    MIMO_MPI(err);
    return 0;
}

static int checksum(void *u, const mimo_real *params, size_t n, long long step)
{
    return mimo_dist_check_replicas(u, params, n, step);
}

static const mimo_exchange_ops allreduce_ops = {
    .name = "allreduce",
    .owns = 0,
    .begin_step = allreduce_begin,
    .layer_done = layer_done,
    .finish = allreduce_finish,
    .checksum = checksum,
    .reduce = reduce,
    .phase = phase,
};

/* allreduce with the embedding tables summed by the rows each rank
 * touched (rows.c), never in full */
static const mimo_exchange_ops row_sparse_ops = {
    .name = "row_sparse",
    .owns = 0,
    .begin_step = rows_begin,
    .layer_done = layer_done,
    .finish = allreduce_finish,
    .checksum = checksum,
    .reduce = reduce,
    .phase = phase,
};

/* node_shared and node_shared_rows (the embedding tables summed by rows)
 * run the same functions: shm.c decides at attach which sum it does. Two
 * tables only for their names, which `mimo bench` prints (ops->name). */
#define MIMO_NODE_SHARED_OPS(NAME)                                            \
    {                                                                         \
        .name = NAME,                                                         \
        .owns = MIMO_EXCHANGE_OWNS_PARAMS | MIMO_EXCHANGE_OWNS_GRADS |        \
                MIMO_EXCHANGE_OWNS_MOMENTS,                                   \
        .begin_step = shared_begin,                                           \
        .layer_done = layer_done,                                             \
        .finish = shared_finish,                                              \
        .checksum = checksum,                                                 \
        .reduce = reduce,                                                     \
        .phase = phase,                                                       \
    }
static const mimo_exchange_ops node_shared_ops = MIMO_NODE_SHARED_OPS("node_shared");
static const mimo_exchange_ops node_shared_rows_ops =
    MIMO_NODE_SHARED_OPS("node_shared_rows");
#undef MIMO_NODE_SHARED_OPS

void mimo_dist_times(mimo_dist *d, double secs[MIMO_N_PHASES], int reset)
{
    memcpy(secs, d->spent, sizeof d->spent);
    if (reset)
        memset(d->spent, 0, sizeof d->spent);
}

/* node_shared when asked for, or under auto when every node has the
 * same number (> 1) of ranks: x gets its table and the buffers it lends. */
static int attach_shared(mimo_dist *d, mimo_model *m, mimo_exchange *x)
{
    int rc = mimo_shm_create(d->comm, d->n, mimo_optim_renorm(mimo_model_optim(m)),
                             d->ranks_per_node,
                             d->mode == MIMO_ALLREDUCE_SHARED, &d->shm);
    if (!rc)
        rc = mimo_agree(d->comm, mimo_shm_attach(d->shm, m, d->dense_tables,
                                                   &x->params, &x->grads));
    if (rc) /* none of the shared buffers, whatever happens next */
        x->grads = x->params = NULL;
    if (rc && d->mode == MIMO_ALLREDUCE_AUTO) {
        /* 1: no node shares memory between ranks; or this MPI cannot
         * (e.g. no unified memory model): the MPI allreduce then */
        mimo_shm_free(&d->shm);
        mimo_error_clear();
        d->mode = MIMO_ALLREDUCE_BUCKETED;
        return 0;
    }
    if (!rc) {
        d->mode = MIMO_ALLREDUCE_SHARED;
        x->ops = mimo_shm_rows(d->shm) ? &node_shared_rows_ops : &node_shared_ops;
        x->writes_state = mimo_shm_local_rank(d->shm) == 0; /* one writer a node */
    }
    return rc;
}

/* row_sparse when the model has embedding tables (and they are not
 * asked to be summed in full): the buckets cover the rest of the buffer.
 * Collective (a rank short of memory fails them all). */
static int attach_rows(mimo_dist *d, mimo_model *m, mimo_exchange *x)
{
    int rc = mimo_rows_create(d->comm, d->rank, d->size, m, d->n, &d->rows);
    if (!rc && d->rows) {
        const size_t *lo, *hi;
        int nseg = mimo_rows_dense(d->rows, &lo, &hi);
        rc = make_buckets(d, nseg, lo, hi);
    }
    if (d->size > 1) /* one rank: its comm may be null */
        rc = mimo_agree(d->comm, rc);
    if (!rc && d->rows)
        x->ops = &row_sparse_ops;
    return rc;
}

/* The one place a runtime's exchange is chosen: allreduce (also for one
 * rank with a trace: it sums nothing, times the phases) unless the ranks
 * of a node share memory; row_sparse instead of allreduce, and
 * node_shared_rows instead of node_shared (shm.c decides), when the
 * model has embedding tables and --embedding-grads is not dense. */
int mimo_dist_attach(mimo_dist *d, mimo_model *m)
{
    mimo_exchange x = {.ops = &allreduce_ops, .state = d, .writes_state = 1};
    int rc = 0;
    if (d->size > 1 &&
        (d->mode == MIMO_ALLREDUCE_SHARED || d->mode == MIMO_ALLREDUCE_AUTO))
        rc = attach_shared(d, m, &x);
    else if (d->mode == MIMO_ALLREDUCE_AUTO)
        d->mode = MIMO_ALLREDUCE_BUCKETED;
    if (!rc && x.ops == &allreduce_ops && !d->dense_tables)
        rc = attach_rows(d, m, &x);
    mimo_model_set_exchange(m, d->rank, d->size, &x);
    return rc;
}

int mimo_dist_bcast(mimo_dist *d, mimo_real *params, size_t n)
{
    if (d->size == 1)
        return 0;
    int err = MPI_SUCCESS;
    mimo_stall_enter(MIMO_STALL_BCAST);
    if (d->shm) { /* one buffer per node: its local rank 0 receives */
        int rc = mimo_shm_bcast_params(d->shm);
        mimo_stall_leave();
        return rc;
    }
    for (size_t s = 0; s < n && err == MPI_SUCCESS; s += INT_MAX)
        err = MPI_Bcast(params + s, (int)(n - s < INT_MAX ? n - s : INT_MAX),
                        MIMO_MPI_REAL, 0, d->comm);
    mimo_stall_leave();
    MIMO_MPI(err);
    return 0;
}

int mimo_dist_write_params(mimo_dist *d, mimo_model *m, const mimo_real *src)
{
    size_t n = mimo_model_param_count(m);
    if (d && d->shm)
        return mimo_shm_write_params(d->shm, mimo_model_params(m), src, n);
    memcpy(mimo_model_params(m), src, sizeof(mimo_real) * n);
    return 0;
}

/* ---- votes: flags combined one step late ------------------------------------ */

int mimo_dist_vote(mimo_dist *d, int flags, int *verdict)
{
    if (!d || d->size == 1) {
        *verdict = flags;
        return 0;
    }
    *verdict = 0;
    if (d->vote_pending) {
        mimo_stall_enter(MIMO_STALL_VOTE);
        int err = MPI_Wait(&d->vote_req, MPI_STATUS_IGNORE);
        mimo_stall_leave();
        MIMO_MPI(err);
        *verdict = d->vote_sum;
        d->vote_pending = 0;
    }
    d->vote_send = flags; /* a buffer of its own while in flight */
    MIMO_MPI(MPI_Iallreduce(&d->vote_send, &d->vote_sum, 1, MPI_INT, MPI_BOR,
                            d->comm, &d->vote_req));
    d->vote_pending = 1;
    return 0;
}

int mimo_dist_vote_drain(mimo_dist *d)
{
    if (!d || !d->vote_pending)
        return 0;
    d->vote_pending = 0;
    mimo_stall_enter(MIMO_STALL_VOTE);
    int err = MPI_Wait(&d->vote_req, MPI_STATUS_IGNORE);
    mimo_stall_leave();
    MIMO_MPI(err);
    return 0;
}
