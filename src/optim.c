/* optim.c — sgd, adam, adamw and rmsprop over flat buffers (formulas in
 * include/mimo/optim.h). Each update is one loop over the parameters (or
 * over one rank's slice of them), threaded only when large enough to pay. */
#include "mimo/optim.h"

#include <stdlib.h>
#include <tgmath.h>

#include "mimo/error.h"
#include "graph_impl.h"

#define MAX_SLOTS 2

struct mimo_optim {
    mimo_opt_spec s;
    size_t n;
    long long t;
    int n_slots;
    const char *slot_name[MAX_SLOTS];
    mimo_real *slot[MAX_SLOTS];  /* in use: own[k], or a buffer lent */
    mimo_real *own[MAX_SLOTS];
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

int mimo_optim_is_plain_sgd(const mimo_optim *o)
{
    return o->s.kind == MIMO_OPT_SGD && o->n_slots == 0 && o->s.weight_decay == 0 &&
           o->s.clipnorm <= 0 && o->s.clipvalue <= 0;
}
void mimo_optim_set_steps(mimo_optim *o, long long t) { o->t = t; }

/* One step over params[lo, hi): the slice a rank updates (all of them,
 * unless the ranks of a node share the parameters). g and out hold the
 * slice (g[i - lo]); w and the slots are whole buffers, indexed i. */
typedef struct {
    mimo_optim *o;
    long lo, hi;
    mimo_real *w;
    const mimo_real *g;
    mimo_real lr;
} step_args;

#define FOR_SLICE(a) \
    _Pragma("omp parallel for schedule(static) if ((a)->hi - (a)->lo >= MIMO_PAR_MIN)") \
    for (long i = (a)->lo; i < (a)->hi; i++)

/* out = g + wd w (L2), clamped to +-clipvalue, then the global-norm clip
 * (sum_sq adds up the squares of every rank's slice); returns the gradient
 * to apply: g itself when there is nothing to do. */
static const mimo_real *prepare_grads(const step_args *a, mimo_real *out,
                                      double (*sum_sq)(void *, double), void *user)
{
    const mimo_optim *o = a->o;
    const mimo_real *g = a->g, *w = a->w;
    long lo = a->lo;
    mimo_real wd = o->s.kind == MIMO_OPT_ADAMW ? 0 : (mimo_real)o->s.weight_decay;
    mimo_real cv = (mimo_real)o->s.clipvalue;
    double sq = 0;
    if (wd == 0 && cv <= 0 && o->s.clipnorm <= 0)
        return g; /* nothing to do: spare a pass over the buffers */
    #pragma omp parallel for reduction(+:sq) schedule(static) if (a->hi - lo >= MIMO_PAR_MIN)
    for (long i = lo; i < a->hi; i++) {
        mimo_real v = g[i - lo] + wd * w[i];
        if (cv > 0)
            v = v > cv ? cv : v < -cv ? -cv : v;
        out[i - lo] = v;
        sq += (double)v * v;
    }
    if (o->s.clipnorm <= 0)
        return out;
    double norm = sqrt(sum_sq ? sum_sq(user, sq) : sq);
    if (norm > o->s.clipnorm) {
        mimo_real scale = (mimo_real)(o->s.clipnorm / norm);
        FOR_SLICE(a)
            out[i - lo] *= scale;
    }
    return out;
}

static void sgd_step(const step_args *a)
{
    const mimo_optim *o = a->o;
    const mimo_real *g = a->g;
    mimo_real *w = a->w, lr = a->lr, m = (mimo_real)o->s.momentum, *v = o->slot[0];
    long lo = a->lo;
    int nesterov = o->s.nesterov;
    if (o->n_slots == 0) {
        FOR_SLICE(a)
            w[i] -= lr * g[i - lo];
        return;
    }
    FOR_SLICE(a) {
        v[i] = m * v[i] - lr * g[i - lo];
        w[i] += nesterov ? m * v[i] - lr * g[i - lo] : v[i];
    }
}

static void adam_step(const step_args *a)
{
    const mimo_optim *o = a->o;
    const mimo_real *g = a->g;
    long lo = a->lo;
    double t = (double)o->t;
    mimo_real lr = a->lr, *w = a->w;
    mimo_real b1 = (mimo_real)o->s.beta1, b2 = (mimo_real)o->s.beta2;
    mimo_real c1 = (mimo_real)(1 / (1 - pow(o->s.beta1, t)));
    mimo_real c2 = (mimo_real)(1 / (1 - pow(o->s.beta2, t)));
    mimo_real eps = (mimo_real)o->s.eps, *m = o->slot[0], *v = o->slot[1];
    mimo_real decay = o->s.kind == MIMO_OPT_ADAMW
                          ? 1 - lr * (mimo_real)o->s.weight_decay : 1;
    FOR_SLICE(a) {
        mimo_real gi = g[i - lo];
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
    mimo_real lr = a->lr, *w = a->w;
    mimo_real rho = (mimo_real)o->s.rho, eps = (mimo_real)o->s.eps;
    mimo_real mom = (mimo_real)o->s.momentum, *v = o->slot[0], *u = o->slot[1];
    FOR_SLICE(a) {
        mimo_real gi = g[i - lo];
        v[i] = rho * v[i] + (1 - rho) * gi * gi;
        mimo_real d = lr * gi / (sqrt(v[i]) + eps);
        if (u) {
            u[i] = mom * u[i] + d;
            d = u[i];
        }
        w[i] -= d;
    }
}

void mimo_optim_step_range(mimo_optim *o, size_t lo, size_t hi, mimo_real *params,
                           const mimo_real *grads, mimo_real *scratch, double lr,
                           double (*sum_sq)(void *user, double local), void *user)
{
    step_args a = {o, (long)lo, (long)hi, params, grads, (mimo_real)lr};
    o->t++;
    a.g = prepare_grads(&a, scratch, sum_sq, user);
    switch (o->s.kind) {
    case MIMO_OPT_SGD: sgd_step(&a); break;
    case MIMO_OPT_RMSPROP: rmsprop_step(&a); break;
    default: adam_step(&a);
    }
}

void mimo_optim_step(mimo_optim *o, mimo_real *params, const mimo_real *grads,
                     mimo_real *scratch, double lr)
{
    mimo_optim_step_range(o, 0, o->n, params, grads, scratch, lr, NULL, NULL);
}
