/* plugin_kind.c — the adapter: a plug-in's mimo_plugin_kind (mimo/plugin.h,
 * plain arrays) as a mimo_kind (core/kind.h, graph nodes). Its config keys
 * become mimo_args over a settings struct of one slot per key, so the
 * config parser checks them as any kind's; infer, forward and backward
 * gather the node's inputs, parameters and gradients into arrays and call
 * the plug-in's. The plug-in never sees a graph or a node. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/plugin_impl.h"

/* Per node: the settings as doubles (what the plug-in reads), the shapes,
 * and the pointer arrays handed to forward and backward (filled per call:
 * buffers move only when the graph is compiled, but a sharing layer's
 * parameters are its owner's block). */
typedef struct {
    double args[MIMO_PLUGIN_MAX_ARGS];
    mimo_plugin_shape in[MIMO_PLUGIN_MAX_INPUTS], out;
    int in_width[MIMO_PLUGIN_MAX_INPUTS];
    const mimo_real *x[MIMO_PLUGIN_MAX_INPUTS];
    mimo_real *dx[MIMO_PLUGIN_MAX_INPUTS];
    const mimo_real *p[MIMO_PLUGIN_MAX_PARAMS];
    mimo_real *dp[MIMO_PLUGIN_MAX_PARAMS];
} plugin_node;

static const mimo_plugin_entry *entry_of(const mimo_node *n)
{
    return (const mimo_plugin_entry *)n->kind; /* the entry's first member */
}

static void load_args(const mimo_plugin_entry *e, const void *settings,
                      double *out)
{
    const mimo_plugin_slot *s = settings;
    for (int i = 0; i < e->pk->n_args; i++)
        out[i] = e->pk->args[i].type == MIMO_PLUGIN_REAL ? s[i].d : (double)s[i].i;
}

/* A parameter's fans when the plug-in gives none: Keras' for a dense
 * kernel (rank 2: in, out), a bias (rank 1: the axis both) and a
 * convolution kernel (the receptive field times the channels). */
static void default_fans(const mimo_plugin_param *p, double *in, double *out)
{
    const mimo_plugin_shape *s = &p->shape;
    double rf = 1;
    for (int k = 0; k + 2 < s->rank; k++)
        rf *= s->dim[k];
    *in = p->fan_in > 0 ? p->fan_in : s->rank == 1 ? s->dim[0] : rf * s->dim[s->rank - 2];
    *out = p->fan_out > 0 ? p->fan_out : rf * s->dim[s->rank - 1];
}

/* The parameter tensors the plug-in declared, checked and added. */
static int add_params(const mimo_plugin_entry *e, mimo_node *n,
                      const mimo_plugin_param *ps, int np, char *err, size_t len)
{
    const char *who = e->kind.name;
    if (np < 0 || np > MIMO_PLUGIN_MAX_PARAMS) {
        snprintf(err, len, "%s layer '%s': the plug-in %s declared %d parameter "
                 "tensors (at most %d)", who, n->name, e->file, np,
                 MIMO_PLUGIN_MAX_PARAMS);
        return -1;
    }
    for (int j = 0; j < np; j++) {
        const mimo_plugin_param *p = &ps[j];
        const char *end = memchr(p->name, '\0', MIMO_PLUGIN_NAME_MAX);
        size_t nl = end ? (size_t)(end - p->name) : MIMO_PLUGIN_NAME_MAX;
        int bad_shape = p->shape.rank < 1 || p->shape.rank > MIMO_MAX_RANK;
        for (int k = 0; !bad_shape && k < p->shape.rank; k++)
            bad_shape = p->shape.dim[k] < 1;
        int init = mimo_init_parse(p->init ? p->init : "zeros");
        int dup = 0;
        for (int i = 0; i < j; i++)
            dup |= strncmp(ps[i].name, p->name, MIMO_PLUGIN_NAME_MAX) == 0;
        const char *what = nl == 0 || nl == MIMO_PLUGIN_NAME_MAX ? "has no name (or one too long)"
                         : dup ? "has the name of another"
                         : bad_shape ? "has a shape of no 1 to 4 positive axes"
                         : init < 0 ? "has an unknown initializer" : NULL;
        if (what) {
            snprintf(err, len, "%s layer '%s': parameter %d ('%.*s') the plug-in "
                     "%s declared %s", who, n->name, j + 1, (int)nl, p->name,
                     e->file, what);
            return -1;
        }
        const char *name = mimo_plugin_intern(p->name);
        mimo_shape s = {p->shape.rank, {0}};
        memcpy(s.dim, p->shape.dim, sizeof(int) * (size_t)p->shape.rank);
        double fi, fo;
        default_fans(p, &fi, &fo);
        if (!name || mimo_node_add_tensor(n, name, &s,
                                          (mimo_init){(mimo_init_kind)init, p->init_a,
                                                      p->init_b}, fi, fo) < 0)
            return -1; /* out of memory: no message */
    }
    return 0;
}

static int plugin_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    const mimo_plugin_entry *e = entry_of(n);
    plugin_node *d = n->priv;
    mimo_plugin_param ps[MIMO_PLUGIN_MAX_PARAMS];
    char msg[256] = "";
    int np = 0;
    if (mimo_check_inputs(n, e->pk->min_inputs, e->pk->max_inputs, "", err, len))
        return -1;
    load_args(e, n->args, d->args);
    for (int i = 0; i < n->n_in; i++) {
        const mimo_node *p = MIMO_PARENT(g, n, i);
        d->in[i] = (mimo_plugin_shape){p->shape.rank, {0}};
        memcpy(d->in[i].dim, p->shape.dim, sizeof(int) * (size_t)p->shape.rank);
        d->in_width[i] = p->width;
    }
    memset(ps, 0, sizeof ps);
    memset(&d->out, 0, sizeof d->out);
    if (e->pk->infer(d->args, n->n_in, d->in, &d->out, ps, &np, msg, sizeof msg)) {
        msg[sizeof msg - 1] = '\0';
        snprintf(err, len, "%s layer '%s': %s", e->kind.name, n->name,
                 msg[0] ? msg : "the plug-in refused its inputs");
        return -1;
    }
    if (d->out.rank < 1 || d->out.rank > MIMO_SAMPLE_RANK) {
        snprintf(err, len, "%s layer '%s': the plug-in %s gave an output of %d "
                 "axes (1 to %d)", e->kind.name, n->name, e->file, d->out.rank,
                 MIMO_SAMPLE_RANK);
        return -1;
    }
    n->shape.rank = d->out.rank;
    memcpy(n->shape.dim, d->out.dim, sizeof(int) * (size_t)d->out.rank);
    return add_params(e, n, ps, np, err, len);
}

static void plugin_forward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                           int b)
{
    const mimo_plugin_entry *e = entry_of(n);
    plugin_node *d = n->priv;
    for (int i = 0; i < n->n_in; i++)
        d->x[i] = MIMO_PARENT(g, n, i)->y;
    for (int j = 0; j < n->n_tensors; j++)
        d->p[j] = params + n->tensors[j].off;
    e->pk->forward(d->args, b, n->n_in, d->x, d->in_width, d->p, n->y, n->width);
}

/* Gradients add into the parents' dy (NULL: nobody needs it) and into
 * grads for the trained tensors (NULL for the others). */
static void plugin_backward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                            mimo_real *grads, int b)
{
    const mimo_plugin_entry *e = entry_of(n);
    plugin_node *d = n->priv;
    for (int i = 0; i < n->n_in; i++) {
        const mimo_node *p = MIMO_PARENT(g, n, i);
        d->x[i] = p->y;
        d->dx[i] = p->dy;
    }
    for (int j = 0; j < n->n_tensors; j++) {
        d->p[j] = params + n->tensors[j].off;
        d->dp[j] = n->tensors[j].trained ? grads + n->tensors[j].off : NULL;
    }
    e->pk->backward(d->args, b, n->n_in, d->x, d->in_width, d->p, n->y, n->dy,
                    n->width, d->dx, d->dp);
}

static void plugin_describe(const mimo_node *n, char *buf, size_t len)
{
    const mimo_plugin_entry *e = entry_of(n);
    const plugin_node *d = n->priv;
    buf[0] = '\0';
    if (e->pk->describe)
        e->pk->describe(d->args, buf, len);
    if (!buf[0])
        snprintf(buf, len, "%s", e->kind.name);
}

static double plugin_flops(const mimo_graph *g, const mimo_node *n)
{
    (void)g;
    const mimo_plugin_entry *e = entry_of(n);
    const plugin_node *d = n->priv;
    return e->pk->flops ? e->pk->flops(d->args, n->n_in, d->in, &d->out) : 0;
}

/* A key's bounds as the config parser checks them, and its message. */
static void make_arg(mimo_plugin_entry *e, int i)
{
    const mimo_plugin_arg *a = &e->pk->args[i];
    mimo_arg *m = &e->args[i];
    m->key = a->key;
    m->offset = (size_t)i * sizeof(mimo_plugin_slot);
    m->required = a->required;
    m->type = a->type == MIMO_PLUGIN_INT ? MIMO_ARG_INT
            : a->type == MIMO_PLUGIN_REAL ? MIMO_ARG_REAL : MIMO_ARG_BOOL;
    m->lo = a->lo, m->hi = a->hi;
    if (a->type == MIMO_PLUGIN_INT) { /* the parser reads ints as long long */
        m->lo = fmax(ceil(a->lo), INT_MIN);
        m->hi = fmin(floor(a->hi), INT_MAX);
    }
    const char *noun = a->type == MIMO_PLUGIN_INT ? "an integer" : "a number";
    if (isinf(m->lo) && isinf(m->hi))
        snprintf(e->expect[i], sizeof e->expect[i], "%s", noun);
    else if (isinf(m->hi))
        snprintf(e->expect[i], sizeof e->expect[i], "%s >= %g", noun, m->lo);
    else if (isinf(m->lo))
        snprintf(e->expect[i], sizeof e->expect[i], "%s <= %g", noun, m->hi);
    else
        snprintf(e->expect[i], sizeof e->expect[i], "%s in [%g, %g]", noun, m->lo,
                 m->hi);
    m->expect = e->expect[i];
    if (a->type == MIMO_PLUGIN_REAL)
        e->initial[i].d = a->def;
    else
        e->initial[i].i = (int)a->def;
}

void mimo_plugin_entry_init(mimo_plugin_entry *e, const mimo_plugin_kind *pk,
                            const char *file)
{
    memset(e, 0, sizeof *e);
    e->pk = pk;
    e->file = file;
    for (int i = 0; i < pk->n_args; i++)
        make_arg(e, i);
    e->kind = (mimo_kind){
        .name = pk->name,
        .aliases = pk->aliases,
        .args = e->args,
        .n_args = pk->n_args,
        .args_size = sizeof(mimo_plugin_slot) * (size_t)(pk->n_args ? pk->n_args : 1),
        .node_size = sizeof(plugin_node),
        .dot_shape = "box",
        .infer = plugin_infer,
        .forward = plugin_forward,
        .backward = plugin_backward,
        .describe = plugin_describe,
        .flops = plugin_flops,
        .initial = e->initial,
    };
}
