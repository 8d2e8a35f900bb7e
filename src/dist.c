/* dist.c — the MPI side of data parallelism (see dist.h for the three
 * forms of the gradient sum).
 * bucketed: the gradient buffer is split into fixed buckets (front to back,
 * the same on every rank); backward finishes the buffer front to back, so
 * each bucket's MPI_Iallreduce starts as soon as its last value is final,
 * and MPI_Test drives the started ones while backward goes on. finish()
 * starts what is left and waits for all before the optimizer runs.
 * shared: see shared_setup and shared_finish below. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "mimo/dist.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mimo/error.h"

typedef struct {           /* the shared-memory gradient sum */
    MPI_Comm node, cross;      /* ranks of this node; same local rank, all nodes */
    int lrank, lsize, nodes;
    MPI_Win gwin, swin;        /* the node's gradients; their sum */
    mimo_real **seg;           /* lsize gradient buffers, n values each */
    mimo_real *sum;            /* n values, contiguous across the node */
    size_t lo, hi;             /* this rank's slice of the sum */
} shared_sum;

struct mimo_dist {
    MPI_Comm comm;
    int rank, size;
    mimo_allreduce mode;
    int ranks_per_node;
    shared_sum sh;
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

static int mpi_fail(const char *what, int err)
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
    d->sh.node = d->sh.cross = MPI_COMM_NULL;
    d->sh.gwin = d->sh.swin = MPI_WIN_NULL;
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

static void shared_free(shared_sum *sh)
{
    MPI_Win *w[2] = {&sh->gwin, &sh->swin};
    for (int k = 0; k < 2; k++)
        if (*w[k] != MPI_WIN_NULL) {
            MPI_Win_unlock_all(*w[k]);
            MPI_Win_free(w[k]);
        }
    if (sh->node != MPI_COMM_NULL)
        MPI_Comm_free(&sh->node);
    if (sh->cross != MPI_COMM_NULL)
        MPI_Comm_free(&sh->cross);
    free(sh->seg);
    sh->seg = NULL;
}

static void dist_release(mimo_dist **dp, int collective)
{
    if (!dp || !*dp)
        return;
    if (collective)
        shared_free(&(*dp)->sh);
    free((*dp)->sh.seg);
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

/* ---- the shared-memory sum ---------------------------------------------- */

/* The node communicator: the ranks that share memory, or groups of
 * ranks_per_node consecutive ranks when set (to try the several-node path
 * on one machine). */
static int split_nodes(mimo_dist *d, MPI_Comm *node)
{
    int err = d->ranks_per_node > 0
                  ? MPI_Comm_split(d->comm, d->rank / d->ranks_per_node, d->rank, node)
                  : MPI_Comm_split_type(d->comm, MPI_COMM_TYPE_SHARED, d->rank,
                                        MPI_INFO_NULL, node);
    return err == MPI_SUCCESS ? 0 : mpi_fail("splitting the ranks into nodes", err);
}

/* One window of `bytes` per rank of the node, locked for the program's
 * life (the barriers in shared_finish order the accesses). */
static int alloc_window(MPI_Comm node, size_t bytes, int noncontig,
                        const char *what, mimo_real **base, MPI_Win *win)
{
    MPI_Info info = MPI_INFO_NULL;
    if (noncontig) { /* each rank's buffer starts on its own pages */
        MPI_Info_create(&info);
        MPI_Info_set(info, "alloc_shared_noncontig", "true");
    }
    int err = MPI_Win_allocate_shared((MPI_Aint)bytes, (int)sizeof(mimo_real), info,
                                      node, base, win);
    if (info != MPI_INFO_NULL)
        MPI_Info_free(&info);
    if (err != MPI_SUCCESS)
        return mpi_fail(what, err);
    MPI_Win_lock_all(MPI_MODE_NOCHECK, *win);
    int *model = NULL, found = 0; /* stores must be visible after a sync */
    MPI_Win_get_attr(*win, MPI_WIN_MODEL, &model, &found);
    if (found && *model != MPI_WIN_UNIFIED)
        return mimo_error(MIMO_EMPI, "%s: this MPI's shared windows are not in "
                          "the unified memory model (use --allreduce bucketed)", what);
    return 0;
}

/* Maps every local rank's gradient buffer and the contiguous sum. */
static int map_windows(mimo_dist *d)
{
    shared_sum *sh = &d->sh;
    mimo_real *mine;
    int rc = alloc_window(sh->node, d->n * sizeof(mimo_real), 1,
                          "the shared gradient buffers", &mine, &sh->gwin);
    if (!rc)
        rc = alloc_window(sh->node, (sh->hi - sh->lo) * sizeof(mimo_real), 0,
                          "the shared gradient sum", &mine, &sh->swin);
    if (rc)
        return rc;
    for (int q = 0; q < sh->lsize; q++) {
        MPI_Aint bytes;
        int unit;
        mimo_real *b0 = NULL, *bq = NULL;
        MPI_Win_shared_query(sh->gwin, q, &bytes, &unit, &sh->seg[q]);
        MPI_Win_shared_query(sh->swin, 0, &bytes, &unit, &b0);
        MPI_Win_shared_query(sh->swin, q, &bytes, &unit, &bq);
        if (bq != b0 + d->n * (size_t)q / (size_t)sh->lsize) /* MPI-3: contiguous */
            return mimo_error(MIMO_EMPI, "the shared gradient sum is not "
                              "contiguous across the node's ranks");
        sh->sum = b0;
    }
    return 0;
}

/* Sets up the shared form, or returns 1 (and leaves d as it was) when
 * auto finds a node of one rank or nodes of different sizes. */
static int shared_setup(mimo_dist *d)
{
    shared_sum *sh = &d->sh;
    int rc = split_nodes(d, &sh->node);
    if (rc)
        return rc;
    MPI_Comm_rank(sh->node, &sh->lrank);
    MPI_Comm_size(sh->node, &sh->lsize);
    int range[2] = {sh->lsize, -sh->lsize}; /* min, -max of the node sizes */
    MPI_Allreduce(MPI_IN_PLACE, range, 2, MPI_INT, MPI_MIN, d->comm);
    if (range[0] != -range[1] || (range[0] == 1 && d->mode == MIMO_ALLREDUCE_AUTO)) {
        MPI_Comm_free(&sh->node);
        if (d->mode == MIMO_ALLREDUCE_AUTO)
            return 1;
        return mimo_error(MIMO_EINVAL, "--allreduce shared needs the same number "
                          "of ranks on every node, got %d to %d", range[0], -range[1]);
    }
    sh->nodes = d->size / sh->lsize;
    sh->lo = d->n * (size_t)sh->lrank / (size_t)sh->lsize;
    sh->hi = d->n * (size_t)(sh->lrank + 1) / (size_t)sh->lsize;
    int err = MPI_Comm_split(d->comm, sh->lrank, d->rank, &sh->cross);
    if (err != MPI_SUCCESS)
        return mpi_fail("splitting the ranks across nodes", err);
    sh->seg = calloc((size_t)sh->lsize, sizeof *sh->seg);
    if ((rc = mimo_agree(d->comm, sh->seg ? 0 : mimo_error(MIMO_ENOMEM,
                                                           "out of memory"))))
        return rc; /* before the window collectives, which all must enter */
    return map_windows(d);
}

#define SUM_BLOCK 4096 /* values summed per pass while in L1 */

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

/* sum[lo, hi) = seg[0] + seg[1] + ... in rank order, block by block. */
static void sum_slice(shared_sum *sh)
{
    size_t len = sh->hi - sh->lo;
    long nblk = (long)((len + SUM_BLOCK - 1) / SUM_BLOCK);
    #pragma omp parallel for schedule(static) if (len >= 65536)
    for (long k = 0; k < nblk; k++) {
        size_t s = sh->lo + (size_t)k * SUM_BLOCK;
        size_t e = s + SUM_BLOCK < sh->hi ? s + SUM_BLOCK : sh->hi;
        if (sh->lsize == 1)
            memcpy(sh->sum + s, sh->seg[0] + s, sizeof(mimo_real) * (e - s));
        else
            add2(sh->sum + s, sh->seg[0] + s, sh->seg[1] + s, e - s);
        for (int q = 2; q < sh->lsize; q++)
            add_into(sh->sum + s, sh->seg[q] + s, e - s);
    }
}

/* All of the node's gradients are written (barrier); this rank sums its
 * slice, and with several nodes allreduces it across them; once every
 * slice is done (barrier) the whole sum is final on every rank. The next
 * step writes gradients only after the second barrier, and the sum only
 * after the next first barrier, which every rank reaches after its
 * optimizer has read the sum. */
static int shared_finish(mimo_dist *d)
{
    shared_sum *sh = &d->sh;
    int err;
    MPI_Win_sync(sh->gwin);
    if ((err = MPI_Barrier(sh->node)) != MPI_SUCCESS)
        return mpi_fail("MPI_Barrier", err);
    MPI_Win_sync(sh->gwin);
    sum_slice(sh);
    for (size_t s = sh->lo; sh->nodes > 1 && s < sh->hi; s += INT_MAX)
        if ((err = MPI_Allreduce(MPI_IN_PLACE, sh->sum + s,
                                 (int)(sh->hi - s < INT_MAX ? sh->hi - s : INT_MAX),
                                 MIMO_MPI_REAL, MPI_SUM, sh->cross)) != MPI_SUCCESS)
            return mpi_fail("MPI_Allreduce across nodes", err);
    MPI_Win_sync(sh->swin);
    MPI_Win_sync(sh->gwin); /* our reads of the gradients come first */
    if ((err = MPI_Barrier(sh->node)) != MPI_SUCCESS)
        return mpi_fail("MPI_Barrier", err);
    MPI_Win_sync(sh->swin);
    MPI_Win_sync(sh->gwin);
    return 0;
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
    if (d->mode == MIMO_ALLREDUCE_SHARED) {
        int rc = shared_finish(d);
        mimo_trace_span(d->trace, "allreduce", "sum (shared memory)", t0,
                        mimo_trace_now(d->trace));
        d->spent[4] += wall_s() - w0;
        *sum = d->sh.sum;
        return rc;
    }
    if (d->mode == MIMO_ALLREDUCE_BLOCKING) {
        for (size_t s = 0; s < n && err == MPI_SUCCESS; s += INT_MAX)
            err = MPI_Allreduce(MPI_IN_PLACE, grads + s,
                                (int)(n - s < INT_MAX ? n - s : INT_MAX),
                                MIMO_MPI_REAL, MPI_SUM, d->comm);
        mimo_trace_span(d->trace, "allreduce", "allreduce (blocking)", t0,
                        mimo_trace_now(d->trace));
        d->spent[4] += wall_s() - w0;
        return err == MPI_SUCCESS ? 0 : mpi_fail("MPI_Allreduce", err);
    }
    d->grads = grads;
    while (d->next < d->nb)
        start_bucket(d, d->next++);
    err = MPI_Waitall(d->nb, d->req, MPI_STATUSES_IGNORE);
    mimo_trace_span(d->trace, "allreduce", "allreduce wait", t0,
                    mimo_trace_now(d->trace));
    d->spent[4] += wall_s() - w0;
    return err == MPI_SUCCESS ? 0 : mpi_fail("MPI_Iallreduce", err);
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

int mimo_dist_attach(mimo_dist *d, mimo_model *m)
{
    mimo_step_hooks h = {d, NULL, hook_begin, hook_layer, hook_finish, hook_phase};
    int rc = 0;
    if (d->size > 1 &&
        (d->mode == MIMO_ALLREDUCE_SHARED || d->mode == MIMO_ALLREDUCE_AUTO)) {
        rc = shared_setup(d);
        if (rc == 1) /* auto: no node shares memory between ranks */
            rc = 0, d->mode = MIMO_ALLREDUCE_BUCKETED;
        else if (!rc)
            d->mode = MIMO_ALLREDUCE_SHARED, h.grads = d->sh.seg[d->sh.lrank];
        else
            shared_free(&d->sh);
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
    for (size_t s = 0; s < n; s += INT_MAX) {
        int err = MPI_Bcast(params + s, (int)(n - s < INT_MAX ? n - s : INT_MAX),
                            MIMO_MPI_REAL, 0, d->comm);
        if (err != MPI_SUCCESS)
            return mpi_fail("MPI_Bcast of the parameters", err);
    }
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
        return mpi_fail("MPI_Allreduce of the checksums", err);
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
    return err == MPI_SUCCESS ? 0 : mpi_fail("MPI_Allreduce of the logged sums", err);
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
