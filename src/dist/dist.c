/* dist.c — the gradient sum over ranks in each step (see dist.h for its
 * three forms) and the hooks that wire it into the model.
 * bucketed: the gradient buffer is split into fixed buckets (front to back,
 * the same on every rank); backward finishes the buffer front to back, so
 * each bucket's MPI_Iallreduce starts as soon as its last value is final,
 * and MPI_Test drives the started ones while backward goes on; the sum
 * hook starts what is left and waits for all before the optimizer runs.
 * blocking: one MPI_Allreduce in the sum hook.
 * shared: shm.c, through the apply hook.
 * Checksums and logged sums are in collect.c; communicators and checked
 * calls in comm.c.
 *
 * Part dist (src/dist/): everything MPI — gradient sums, collectives,
 * node-shared memory, traces; uses core (through mimo_step_hooks) and base.
 */
#include "mimo/dist.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "dist/mpicall.h"
#include "dist/shm.h"
#include "dist/stall.h"
#include "mimo/error.h"

struct mimo_dist {
    MPI_Comm comm;
    int rank, size;
    mimo_allreduce mode;
    int ranks_per_node;
    mimo_shm *shm;             /* the shared form's state, or NULL */
    size_t n;
    int nb, next;              /* buckets; the next one to start */
    size_t *start;             /* nb + 1 bucket boundaries (values) */
    MPI_Request *req;
    mimo_real *grads;          /* the buffer of the current step */
    int err;                   /* the first MPI failure inside a hook */
    mimo_trace *trace;
    double t_phase[4], t_layer;
    double spent[5];           /* seconds: data, forward, backward, optimizer, wait */
    double t_wall[4];
    /* the vote in flight (mimo_dist_vote) */
    int vote_send, vote_sum, vote_pending;
    MPI_Request vote_req;
};

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
    d->trace = trace;
    d->vote_req = MPI_REQUEST_NULL;
    size_t per = (o && o->bucket_bytes ? o->bucket_bytes : MIMO_BUCKET_BYTES_DEFAULT)
                 / sizeof(mimo_real);
    if (per < 1)
        per = 1;
    if (per > INT_MAX)
        per = INT_MAX;
    size_t nb = n ? (n + per - 1) / per : 1;
    d->nb = (int)nb;
    d->start = malloc(sizeof *d->start * (nb + 1));
    d->req = malloc(sizeof *d->req * nb);
    if (!d->start || !d->req || nb > INT_MAX) {
        mimo_dist_free(&d);
        return mimo_error(MIMO_ENOMEM, "out of memory for %zu buckets", nb);
    }
    for (size_t k = 0; k <= nb; k++) /* equal shares, front to back */
        d->start[k] = n * k / nb;
    for (size_t k = 0; k < nb; k++)
        d->req[k] = MPI_REQUEST_NULL;
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
    free((*dp)->start);
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
    size_t s = d->start[k], e = d->start[k + 1];
    mimo_trace_instant(d->trace, "allreduce", "bucket start", k);
    MIMO_MPI_KEEP(&d->err, MPI_Iallreduce(MPI_IN_PLACE, d->grads + s, (int)(e - s),
                                          MIMO_MPI_REAL, MPI_SUM, d->comm,
                                          &d->req[k]));
}

static void hook_begin(void *u, mimo_real *grads, size_t n)
{
    mimo_dist *d = u;
    (void)n;
    d->grads = grads;
    d->next = 0;
    d->t_layer = mimo_trace_now(d->trace);
}

/* Starts every bucket whose values are all final, then lets MPI progress
 * the ones in flight. */
static void hook_layer(void *u, const char *layer, size_t done)
{
    mimo_dist *d = u;
    if (d->trace) {
        double t = mimo_trace_now(d->trace);
        mimo_trace_span(d->trace, "backward", layer, d->t_layer, t);
        d->t_layer = t;
    }
    if (d->mode != MIMO_ALLREDUCE_BUCKETED || d->size == 1)
        return;
    while (d->next < d->nb && d->start[d->next + 1] <= done)
        start_bucket(d, d->next++);
    for (int k = 0; k < d->next; k++)
        if (d->req[k] != MPI_REQUEST_NULL) {
            int flag = 0;
            MIMO_MPI_KEEP(&d->err, MPI_Test(&d->req[k], &flag, MPI_STATUS_IGNORE));
        }
}

/* Blocking: one allreduce in pieces of at most INT_MAX values. */
static int sum_blocking(mimo_dist *d, mimo_real *grads, size_t n)
{
    for (size_t s = 0; s < n; s += INT_MAX)
        MIMO_MPI(MPI_Allreduce(MPI_IN_PLACE, grads + s,
                               (int)(n - s < INT_MAX ? n - s : INT_MAX),
                               MIMO_MPI_REAL, MPI_SUM, d->comm));
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

static int hook_sum(void *u, mimo_real *grads, size_t n)
{
    mimo_dist *d = u;
    double t0 = mimo_trace_now(d->trace), w0 = mimo_clock();
    int blocking = d->mode == MIMO_ALLREDUCE_BLOCKING;
    mimo_stall_enter(MIMO_STALL_GRADIENTS);
    int rc = blocking ? sum_blocking(d, grads, n) : sum_buckets(d, grads);
    mimo_stall_leave();
    mimo_trace_span(d->trace, "allreduce", blocking ? "allreduce (blocking)"
                    : "allreduce wait", t0, mimo_trace_now(d->trace));
    d->spent[4] += mimo_clock() - w0;
    return rc;
}

/* The shared form: the sum and this rank's slice of the update. */
static int hook_apply(void *u, mimo_optim *o, mimo_real *params, double lr)
{
    mimo_dist *d = u;
    double t0 = mimo_trace_now(d->trace), w0 = mimo_clock();
    mimo_stall_enter(MIMO_STALL_GRADIENTS);
    int rc = mimo_shm_apply(d->shm, o, params, lr);
    mimo_stall_leave();
    mimo_trace_span(d->trace, "allreduce", "sum and update (shared memory)", t0,
                    mimo_trace_now(d->trace));
    d->spent[4] += mimo_clock() - w0;
    return rc;
}

/* Batch statistics (batch_norm): a small sum over all ranks. */
static int hook_reduce(void *u, double *v, int n)
{
    mimo_dist *d = u;
    mimo_stall_enter(MIMO_STALL_BATCH_STATS);
    int err = MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, d->comm);
    mimo_stall_leave();
    MIMO_MPI(err);
    return 0;
}

static void hook_phase(void *u, const char *name, int end)
{
    mimo_dist *d = u;
    static const char *const names[4] = {"data", "forward", "backward", "optimizer"};
    for (int i = 0; i < 4; i++)
        if (strcmp(name, names[i]) == 0) {
            double w = mimo_clock();
            if (!end)
                d->t_wall[i] = w;
            else
                d->spent[i] += w - d->t_wall[i];
            if (!d->trace)
                return;
            double t = mimo_trace_now(d->trace);
            if (!end)
                d->t_phase[i] = t;
            else if (i != 2) /* backward is traced per layer */
                mimo_trace_span(d->trace, "step", names[i], d->t_phase[i], t);
        }
}

void mimo_dist_times(mimo_dist *d, double secs[5], int reset)
{
    memcpy(secs, d->spent, sizeof d->spent);
    if (reset)
        memset(d->spent, 0, sizeof d->spent);
}

/* The shared form when asked for, or under auto when every node has the
 * same number (> 1) of ranks; h gets its buffers and apply. */
static int attach_shared(mimo_dist *d, mimo_model *m, mimo_step_hooks *h)
{
    int rc = mimo_shm_create(d->comm, d->n, d->ranks_per_node,
                             d->mode == MIMO_ALLREDUCE_SHARED, &d->shm);
    if (!rc)
        rc = mimo_agree(d->comm, mimo_shm_attach(d->shm, m, h));
    if (rc) /* none of the shared buffers, whatever happens next */
        h->grads = h->params = NULL;
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
        h->apply = hook_apply;
        h->sum = NULL;
        h->skip_state = mimo_shm_local_rank(d->shm) != 0; /* one writer a node */
    }
    return rc;
}

int mimo_dist_attach(mimo_dist *d, mimo_model *m)
{
    mimo_step_hooks h = {.user = d, .begin = hook_begin, .layer_done = hook_layer,
                         .phase = hook_phase};
    int rc = 0;
    if (d->size > 1) /* one rank (a trace only): nothing to sum */
        h.sum = hook_sum, h.reduce = hook_reduce;
    if (d->size > 1 &&
        (d->mode == MIMO_ALLREDUCE_SHARED || d->mode == MIMO_ALLREDUCE_AUTO))
        rc = attach_shared(d, m, &h);
    else if (d->mode == MIMO_ALLREDUCE_AUTO)
        d->mode = MIMO_ALLREDUCE_BUCKETED;
    mimo_model_set_partition(m, d->rank, d->size, &h);
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
