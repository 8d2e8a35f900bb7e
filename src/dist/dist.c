/* dist.c — the MPI side of data parallelism (see dist.h for the three
 * forms of the gradient sum).
 * bucketed: the gradient buffer is split into fixed buckets (front to back,
 * the same on every rank); backward finishes the buffer front to back, so
 * each bucket's MPI_Iallreduce starts as soon as its last value is final,
 * and MPI_Test drives the started ones while backward goes on. finish()
 * starts what is left and waits for all before the optimizer runs.
 * shared: shm.c, driven from the hooks below. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "mimo/dist.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mimo/error.h"
#include "dist/shm.h"

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
    mimo_trace *trace;
    double t_phase[4], t_layer;
    double spent[5];           /* seconds: data, forward, backward, optimizer, wait */
    double t_wall[4];
};

int mimo_mpi_fail(const char *what, int err)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(err, msg, &len);
    return mimo_error(MIMO_EMPI, "%s failed: %s", what, msg);
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
        MPI_Comm_rank(comm, &d->rank);
        MPI_Comm_size(comm, &d->size);
    }
    d->mode = o ? o->mode : MIMO_ALLREDUCE_AUTO;
    d->ranks_per_node = o ? o->ranks_per_node : 0;
    d->n = n;
    d->trace = trace;
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

static void dist_release(mimo_dist **dp, int collective)
{
    if (!dp || !*dp)
        return;
    if (collective)
        mimo_shm_free(&(*dp)->shm);
    else
        mimo_shm_abandon(&(*dp)->shm);
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

/* ---- the allreduce in the step ------------------------------------------ */

static void start_bucket(mimo_dist *d, int k)
{
    size_t s = d->start[k], e = d->start[k + 1];
    mimo_trace_instant(d->trace, "allreduce", "bucket start", k);
    MPI_Iallreduce(MPI_IN_PLACE, d->grads + s, (int)(e - s), MIMO_MPI_REAL,
                   MPI_SUM, d->comm, &d->req[k]);
}

static double wall_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
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
            MPI_Test(&d->req[k], &flag, MPI_STATUS_IGNORE);
        }
}

static int hook_finish(void *u, mimo_real *grads, size_t n, const mimo_real **sum)
{
    mimo_dist *d = u;
    double t0 = mimo_trace_now(d->trace), w0 = wall_s();
    int err = MPI_SUCCESS;
    *sum = grads;
    if (d->size == 1)
        return 0;
    if (d->mode == MIMO_ALLREDUCE_BLOCKING) {
        for (size_t s = 0; s < n && err == MPI_SUCCESS; s += INT_MAX)
            err = MPI_Allreduce(MPI_IN_PLACE, grads + s,
                                (int)(n - s < INT_MAX ? n - s : INT_MAX),
                                MIMO_MPI_REAL, MPI_SUM, d->comm);
        mimo_trace_span(d->trace, "allreduce", "allreduce (blocking)", t0,
                        mimo_trace_now(d->trace));
        d->spent[4] += wall_s() - w0;
        return err == MPI_SUCCESS ? 0 : mimo_mpi_fail("MPI_Allreduce", err);
    }
    d->grads = grads;
    while (d->next < d->nb)
        start_bucket(d, d->next++);
    err = MPI_Waitall(d->nb, d->req, MPI_STATUSES_IGNORE);
    mimo_trace_span(d->trace, "allreduce", "allreduce wait", t0,
                    mimo_trace_now(d->trace));
    d->spent[4] += wall_s() - w0;
    return err == MPI_SUCCESS ? 0 : mimo_mpi_fail("MPI_Iallreduce", err);
}

static void hook_phase(void *u, const char *name, int end)
{
    mimo_dist *d = u;
    static const char *const names[4] = {"data", "forward", "backward", "optimizer"};
    for (int i = 0; i < 4; i++)
        if (strcmp(name, names[i]) == 0) {
            double w = wall_s();
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

/* The shared form: the sum and this rank's slice of the update. */
static int hook_apply(void *u, mimo_optim *o, mimo_real *params, double lr)
{
    mimo_dist *d = u;
    double t0 = mimo_trace_now(d->trace), w0 = wall_s();
    int rc = mimo_shm_apply(d->shm, o, params, lr);
    mimo_trace_span(d->trace, "allreduce", "sum and update (shared memory)", t0,
                    mimo_trace_now(d->trace));
    d->spent[4] += wall_s() - w0;
    return rc;
}

int mimo_dist_attach(mimo_dist *d, mimo_model *m)
{
    mimo_step_hooks h = {.user = d, .begin = hook_begin, .layer_done = hook_layer,
                         .phase = hook_phase};
    int rc = 0;
    if (d->size > 1) /* one rank (a trace only): nothing to sum */
        h.finish = hook_finish;
    if (d->size > 1 &&
        (d->mode == MIMO_ALLREDUCE_SHARED || d->mode == MIMO_ALLREDUCE_AUTO)) {
        rc = mimo_shm_create(d->comm, d->n, d->ranks_per_node,
                             d->mode == MIMO_ALLREDUCE_SHARED, &d->shm);
        if (!rc)
            rc = mimo_agree(d->comm, mimo_shm_attach(d->shm, m, &h));
        if (rc) /* none of the shared buffers, whatever happens next */
            h.grads = h.params = NULL, h.grads_zeroed = 0;
        if (rc && d->mode == MIMO_ALLREDUCE_AUTO) {
            /* 1: no node shares memory between ranks; or this MPI cannot
             * (e.g. no unified memory model): the MPI allreduce then */
            mimo_shm_free(&d->shm);
            mimo_error_clear();
            rc = 0, d->mode = MIMO_ALLREDUCE_BUCKETED;
        } else if (!rc) {
            d->mode = MIMO_ALLREDUCE_SHARED;
            h.apply = hook_apply;
        }
    } else if (d->mode == MIMO_ALLREDUCE_AUTO)
        d->mode = MIMO_ALLREDUCE_BUCKETED;
    mimo_model_set_partition(m, d->rank, d->size, &h);
    return rc;
}

/* ---- other collectives -------------------------------------------------- */

int mimo_dist_bcast(mimo_dist *d, mimo_real *params, size_t n)
{
    if (d->size == 1)
        return 0;
    if (d->shm) /* one buffer per node: its local rank 0 receives */
        return mimo_shm_bcast_params(d->shm);
    for (size_t s = 0; s < n; s += INT_MAX) {
        int err = MPI_Bcast(params + s, (int)(n - s < INT_MAX ? n - s : INT_MAX),
                            MIMO_MPI_REAL, 0, d->comm);
        if (err != MPI_SUCCESS)
            return mimo_mpi_fail("MPI_Bcast of the parameters", err);
    }
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
    if (d->size == 1)
        return 0;
    int err = MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, d->comm);
    if (err == MPI_SUCCESS)
        err = MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, d->comm);
    if (err != MPI_SUCCESS)
        return mimo_mpi_fail("MPI_Allreduce of the checksums", err);
    if (lo != hi)
        return mimo_error(MIMO_EMPI, "the parameter replicas differ across ranks "
                          "at step %lld (this rank's checksum %016llx)", step,
                          (unsigned long long)h);
    return 0;
}

int mimo_dist_sum(mimo_dist *d, double *v, int n)
{
    if (d->size == 1)
        return 0;
    int err = MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, d->comm);
    return err == MPI_SUCCESS ? 0 : mimo_mpi_fail("MPI_Allreduce of the logged sums", err);
}

int mimo_dist_sum_stats(mimo_dist *d, mimo_stats *st)
{
    double buf[1 + 4 * 64];
    int nh = st->n_heads < 64 ? st->n_heads : 64, k = 0;
    buf[k++] = (double)st->count;
    for (int h = 0; h < nh; h++) {
        buf[k++] = st->head[h].loss, buf[k++] = st->head[h].acc;
        buf[k++] = st->head[h].mse, buf[k++] = st->head[h].mae;
    }
    int rc = mimo_dist_sum(d, buf, k);
    if (rc)
        return rc;
    k = 0;
    st->count = (long long)buf[k++];
    for (int h = 0; h < nh; h++) {
        st->head[h].loss = buf[k++], st->head[h].acc = buf[k++];
        st->head[h].mse = buf[k++], st->head[h].mae = buf[k++];
    }
    return 0;
}

int mimo_agree(MPI_Comm comm, int rc)
{
    int rank = 0, size = 1, first;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    int mine = rc ? rank : size;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm);
    if (first == size)
        return 0;
    mimo_error_set_agreed();
    return first == rank ? rc : MIMO_EPEER;
}
