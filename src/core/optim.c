/* optim.c — sgd, adam, adamw and rmsprop over flat buffers (formulas in
 * include/mimo/optim.h). Each update is one loop over the parameters (or
 * over one rank's slice of them), threaded only when large enough to pay. */
#include "core/optim.h"

#include <stdlib.h>
#include <tgmath.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/model.h"
#include "mimo/error.h"
#include "core/graph_impl.h"
#include "core/par.h"

#define MAX_SLOTS 2

struct mimo_optim {
    mimo_opt_spec s;
    size_t n;
    long long t;
    int n_slots;
    const char *slot_name[MAX_SLOTS];
    mimo_real *slot[MAX_SLOTS];  /* in use: own[k], or a buffer lent */
    mimo_real *own[MAX_SLOTS];
    int n_lazy;                  /* lazy adam: the tables' ranges, sorted */
    size_t *lazy_lo, *lazy_hi;
    size_t renorm;               /* [0, renorm) sums to renorm after a step */
};

int mimo_optim_create(const mimo_opt_spec *spec, size_t n, mimo_optim **out)
{
    *out = NULL;
    mimo_optim *o = calloc(1, sizeof *o);
    if (!o)
        return mimo_error(MIMO_ENOMEM, "out of memory for the optimizer");
    o->s = *spec;
    o->n = n;
    switch (spec->kind) {
    case MIMO_OPT_SGD:
        if (spec->momentum > 0)
            o->slot_name[o->n_slots++] = "velocity";
        break;
    case MIMO_OPT_RMSPROP:
        o->slot_name[o->n_slots++] = "v";
        if (spec->momentum > 0)
            o->slot_name[o->n_slots++] = "momentum";
        break;
    case MIMO_OPT_ADAGRAD:
        o->slot_name[o->n_slots++] = "accumulator";
        break;
    default:
        o->slot_name[o->n_slots++] = "m";
        o->slot_name[o->n_slots++] = "v";
    }
    for (int k = 0; k < o->n_slots; k++)
        if (!(o->slot[k] = o->own[k] = calloc(n ? n : 1, sizeof(mimo_real)))) {
            mimo_optim_free(&o);
            return mimo_error(MIMO_ENOMEM, "out of memory for optimizer "
                              "moments (%zu parameters)", n);
        }
    for (size_t i = 0; spec->kind == MIMO_OPT_ADAGRAD && i < n; i++)
        o->slot[0][i] = (mimo_real)spec->initial_accumulator;
    *out = o;
    return 0;
}

void mimo_optim_free(mimo_optim **op)
{
    mimo_optim *o = op ? *op : NULL;
    if (!o)
        return;
    for (int k = 0; k < o->n_slots; k++)
        free(o->own[k]);
    free(o->lazy_lo);
    free(o->lazy_hi);
    free(o);
    *op = NULL;
}

int mimo_optim_n_slots(const mimo_optim *o) { return o->n_slots; }
const char *mimo_optim_slot_name(const mimo_optim *o, int k) { return o->slot_name[k]; }
mimo_real *mimo_optim_slot(mimo_optim *o, int k) { return o->slot[k]; }
void mimo_optim_lend_slot(mimo_optim *o, int k, mimo_real *buf)
{
    o->slot[k] = buf ? buf : o->own[k];
}
long long mimo_optim_steps(const mimo_optim *o) { return o->t; }

void mimo_optim_set_steps(mimo_optim *o, long long t) { o->t = t; }

/* An update of params[lo, hi) (all of them, or the slice a rank updates
 * when the ranks of a node share the parameters). g holds the slice
 * (g[i - lo]), times scale (the clipnorm factor, else 1); w and the slots
 * are whole buffers, indexed i. */
typedef struct {
    mimo_optim *o;
    long lo, hi;
    mimo_real *w;
    const mimo_real *g;
    mimo_real lr, scale;
    int lazy;            /* adam: a zero gradient updates nothing */
} step_args;

/* The kernels below are serial over [a->lo, a->hi); run_split shares a
 * long range among the OpenMP threads, and calls a short one directly
 * (an OpenMP region per call would cost more than a short update: the
 * shared form updates its slice block by block). */
#define FOR_SLICE(a) for (long i = (a)->lo; i < (a)->hi; i++)

static void run_split(void (*kernel)(const step_args *), const step_args *a)
{
    long len = a->hi - a->lo;
    if (len < MIMO_PAR_MIN || mimo_par_threads() < 2) {
        kernel(a);
        return;
    }
    #pragma omp parallel
    {
        int t = 0, nt = 1;
#ifdef _OPENMP
        t = omp_get_thread_num(), nt = omp_get_num_threads();
#endif
        step_args part = *a;
        part.lo = a->lo + (long)((double)len * t / nt);
        part.hi = a->lo + (long)((double)len * (t + 1) / nt);
        part.g = a->g + (part.lo - a->lo); /* g holds the range */
        kernel(&part);
    }
}

static void sgd_step(const step_args *a)
{
    const mimo_optim *o = a->o;
    const mimo_real *g = a->g;
    mimo_real *w = a->w, lr = a->lr, sc = a->scale, m = (mimo_real)o->s.momentum;
    mimo_real *v = o->slot[0];
    long lo = a->lo;
    int nesterov = o->s.nesterov;
    if (o->n_slots == 0) {
        FOR_SLICE(a)
            w[i] -= lr * (g[i - lo] * sc);
        return;
    }
    FOR_SLICE(a) {
        mimo_real gi = g[i - lo] * sc;
        v[i] = m * v[i] - lr * gi;
        w[i] += nesterov ? m * v[i] - lr * gi : v[i];
    }
}

static void adam_step(const step_args *a)
{
    const mimo_optim *o = a->o;
    const mimo_real *g = a->g;
    long lo = a->lo;
    double t = (double)o->t;
    mimo_real lr = a->lr, sc = a->scale, *w = a->w;
    mimo_real b1 = (mimo_real)o->s.beta1, b2 = (mimo_real)o->s.beta2;
    mimo_real c1 = (mimo_real)(1 / (1 - pow(o->s.beta1, t)));
    mimo_real c2 = (mimo_real)(1 / (1 - pow(o->s.beta2, t)));
    mimo_real eps = (mimo_real)o->s.eps, *m = o->slot[0], *v = o->slot[1];
    mimo_real decay = o->s.kind == MIMO_OPT_ADAMW
                          ? 1 - lr * (mimo_real)o->s.weight_decay : 1;
    int lazy = a->lazy;
    FOR_SLICE(a) {
        mimo_real gi = g[i - lo] * sc;
        if (lazy && g[i - lo] == 0)
            continue;
        m[i] = b1 * m[i] + (1 - b1) * gi;
        v[i] = b2 * v[i] + (1 - b2) * gi * gi;
        w[i] = decay * w[i] - lr * (m[i] * c1) / (sqrt(v[i] * c2) + eps);
    }
}

static void rmsprop_step(const step_args *a)
{
    const mimo_optim *o = a->o;
    const mimo_real *g = a->g;
    long lo = a->lo;
    mimo_real lr = a->lr, sc = a->scale, *w = a->w;
    mimo_real rho = (mimo_real)o->s.rho, eps = (mimo_real)o->s.eps;
    mimo_real mom = (mimo_real)o->s.momentum, *v = o->slot[0], *u = o->slot[1];
    FOR_SLICE(a) {
        mimo_real gi = g[i - lo] * sc;
        v[i] = rho * v[i] + (1 - rho) * gi * gi;
        mimo_real d = lr * gi / (sqrt(v[i]) + eps);
        if (u) {
            u[i] = mom * u[i] + d;
            d = u[i];
        }
        w[i] -= d;
    }
}

/* adagrad (Duchi et al. 2011; Keras' and PyTorch's form): the squared
 * gradients summed from initial_accumulator, w -= lr g / (sqrt(acc) +
 * eps). A zero gradient changes neither: row-sparse exact. */
static void adagrad_step(const step_args *a)
{
    const mimo_optim *o = a->o;
    const mimo_real *g = a->g;
    long lo = a->lo;
    mimo_real lr = a->lr, sc = a->scale, *w = a->w;
    mimo_real eps = (mimo_real)o->s.eps, *acc = o->slot[0];
    FOR_SLICE(a) {
        mimo_real gi = g[i - lo] * sc;
        acc[i] += gi * gi;
        w[i] -= lr * gi / (sqrt(acc[i]) + eps);
    }
}

void mimo_optim_begin_step(mimo_optim *o) { o->t++; }

int mimo_optim_prepares(const mimo_optim *o)
{
    return (o->s.kind != MIMO_OPT_ADAMW && o->s.weight_decay != 0) ||
           o->s.clipvalue > 0 || o->s.clipnorm > 0;
}

/* out[i - base] = clamp(g[i - base] + wd w[i], +-cv) for i in [a, b);
 * returns the sum of their squares. */
static double prepare_serial(mimo_real wd, mimo_real cv, const mimo_real *w,
                             const mimo_real *g, mimo_real *out, long base, long a,
                             long b)
{
    double sq = 0;
    for (long i = a; i < b; i++) {
        mimo_real v = g[i - base] + wd * w[i];
        if (cv > 0)
            v = v > cv ? cv : v < -cv ? -cv : v;
        out[i - base] = v;
        sq += (double)v * v;
    }
    return sq;
}

double mimo_optim_prepare(const mimo_optim *o, size_t lo, size_t hi,
                          const mimo_real *params, const mimo_real *grads,
                          mimo_real *out)
{
    mimo_real wd = o->s.kind == MIMO_OPT_ADAMW ? 0 : (mimo_real)o->s.weight_decay;
    mimo_real cv = (mimo_real)o->s.clipvalue;
    long a = (long)lo, len = (long)(hi - lo);
    double sq = 0;
    if (len < MIMO_PAR_MIN || mimo_par_threads() < 2) /* see run_split */
        return prepare_serial(wd, cv, params, grads, out, a, a, a + len);
    #pragma omp parallel reduction(+:sq)
    {
        int t = 0, nt = 1;
#ifdef _OPENMP
        t = omp_get_thread_num(), nt = omp_get_num_threads();
#endif
        sq += prepare_serial(wd, cv, params, grads, out, a,
                             a + (long)((double)len * t / nt),
                             a + (long)((double)len * (t + 1) / nt));
    }
    return sq;
}

int mimo_optim_clips_norm(const mimo_optim *o) { return o->s.clipnorm > 0; }

int mimo_optim_row_sparse(const mimo_optim *o)
{
    return ((o->s.kind == MIMO_OPT_SGD && o->n_slots == 0) ||
            o->s.kind == MIMO_OPT_ADAGRAD || o->n_lazy > 0) &&
           !mimo_optim_prepares(o);
}

int mimo_optim_set_lazy(mimo_optim *o, int n, const size_t *lo, const size_t *hi)
{
    if (!o->s.lazy || n == 0)
        return 0;
    o->lazy_lo = malloc(sizeof(size_t) * (size_t)n);
    o->lazy_hi = malloc(sizeof(size_t) * (size_t)n);
    if (!o->lazy_lo || !o->lazy_hi)
        return mimo_error(MIMO_ENOMEM, "out of memory");
    for (int k = 0; k < n; k++) { /* insertion by lo: a few tables */
        int j = k;
        while (j > 0 && o->lazy_lo[j - 1] > lo[k]) {
            o->lazy_lo[j] = o->lazy_lo[j - 1];
            o->lazy_hi[j] = o->lazy_hi[j - 1];
            j--;
        }
        o->lazy_lo[j] = lo[k];
        o->lazy_hi[j] = hi[k];
    }
    o->n_lazy = n;
    return 0;
}

/* adam over [a->lo, a->hi), lazy inside the tables' ranges */
static void adam_ranges(const step_args *a)
{
    long at = a->lo;
    for (int k = 0; k <= a->o->n_lazy && at < a->hi; k++) {
        long tlo = k < a->o->n_lazy ? (long)a->o->lazy_lo[k] : a->hi;
        long thi = k < a->o->n_lazy ? (long)a->o->lazy_hi[k] : a->hi;
        for (int lazy = 0; lazy < 2; lazy++) { /* before the table, in it */
            long e = lazy ? thi : tlo;
            e = e < a->hi ? e : a->hi;
            if (e > at) {
                step_args part = *a;
                part.lo = at, part.hi = e, part.g = a->g + (at - a->lo);
                part.lazy = lazy;
                run_split(adam_step, &part);
                at = e;
            }
        }
    }
}

double mimo_optim_clip_scale(const mimo_optim *o, double sum_sq)
{
    double norm = sqrt(sum_sq);
    return o->s.clipnorm > 0 && norm > o->s.clipnorm ? o->s.clipnorm / norm : 1;
}

void mimo_optim_set_renorm(mimo_optim *o, size_t k) { o->renorm = k <= o->n ? k : 0; }
size_t mimo_optim_renorm(const mimo_optim *o) { return o->renorm; }

/* [0, k) rescaled to sum to k, in double, in index order (the same on
 * every rank); left as it is when its sum is not positive. */
static void renormalize(mimo_real *p, size_t k)
{
    double sum = 0;
    for (size_t i = 0; i < k; i++)
        sum += (double)p[i];
    if (!(sum > 0))
        return;
    for (size_t i = 0; i < k; i++)
        p[i] = (mimo_real)((double)p[i] * (double)k / sum);
}

void mimo_optim_apply(mimo_optim *o, size_t lo, size_t hi, mimo_real *params,
                      const mimo_real *grads, double scale, double lr)
{
    step_args a = {o, (long)lo, (long)hi, params, grads, (mimo_real)lr,
                   (mimo_real)scale, 0};
    switch (o->s.kind) {
    case MIMO_OPT_SGD: run_split(sgd_step, &a); break;
    case MIMO_OPT_RMSPROP: run_split(rmsprop_step, &a); break;
    case MIMO_OPT_ADAGRAD: run_split(adagrad_step, &a); break;
    default:
        if (o->n_lazy)
            adam_ranges(&a);
        else
            run_split(adam_step, &a);
    }
    if (o->renorm && lo == 0 && hi >= o->renorm)
        renormalize(params, o->renorm);
}

void mimo_optim_step(mimo_optim *o, mimo_real *params, const mimo_real *grads,
                     mimo_real *scratch, double lr)
{
    double scale = 1;
    mimo_optim_begin_step(o);
    if (mimo_optim_prepares(o)) {
        scale = mimo_optim_clip_scale(o, mimo_optim_prepare(o, 0, o->n, params,
                                                            grads, scratch));
        grads = scratch;
    }
    mimo_optim_apply(o, 0, o->n, params, grads, scale, lr);
}
