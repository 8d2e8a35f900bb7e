/* kind.c — the table of layer kinds, and what every kind shares: its
 * settings struct made from its arg table, read back by key. A new kind
 * adds one row here; everything else about it is in its own file.
 *
 * Sub-part core/layers: one file per layer kind, each filling one
 * mimo_kind; they use core/kind.h and graph_impl.h only.
 */
#include "core/kind.h"
#include "base/strutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const mimo_kind *const kinds[] = {
    &mimo_kind_dense,    &mimo_kind_activation, &mimo_kind_concat,
    &mimo_kind_add,      &mimo_kind_subtract,   &mimo_kind_multiply,
    &mimo_kind_average,  &mimo_kind_masked_softmax, &mimo_kind_flatten,
    &mimo_kind_reshape,  &mimo_kind_embedding,  &mimo_kind_dropout,
    &mimo_kind_batch_norm, &mimo_kind_layer_norm, &mimo_kind_conv2d,
    &mimo_kind_max_pool2d, &mimo_kind_avg_pool2d,
    &mimo_kind_global_avg_pool2d, &mimo_kind_global_max_pool2d,
    &mimo_kind_conv1d, &mimo_kind_max_pool1d, &mimo_kind_avg_pool1d,
    &mimo_kind_global_avg_pool1d, &mimo_kind_global_max_pool1d,
    &mimo_kind_gru, &mimo_kind_lstm,
    &mimo_kind_normalization,
    &mimo_kind_embedding_bag, &mimo_kind_hashing, &mimo_kind_stack, &mimo_kind_softmax,
    &mimo_kind_weighted_sum, &mimo_kind_dot,
    &mimo_kind_multi_head_attention,
    &mimo_kind_bidirectional, &mimo_kind_position_embedding,
    &mimo_kind_discretization,
};
#define N_KINDS ((int)(sizeof kinds / sizeof *kinds))

const mimo_kind *mimo_kind_at(int i)
{
    return i < 0 ? NULL : i < N_KINDS ? kinds[i] : mimo_plugin_kind_at(i - N_KINDS);
}

const mimo_kind *mimo_kind_find(const char *s)
{
    const mimo_kind *k;
    for (int i = 0; s && (k = mimo_kind_at(i)); i++) {
        if (mimo_same_name(k->name, s))
            return k;
        for (int a = 0; k->aliases && k->aliases[a]; a++)
            if (mimo_same_name(k->aliases[a], s))
                return k;
    }
    return NULL;
}

const mimo_arg *mimo_kind_arg(const mimo_kind *k, const char *key)
{
    for (int i = 0; k && key && i < k->n_args; i++)
        if (strcmp(k->args[i].key, key) == 0)
            return &k->args[i];
    return NULL;
}

void *mimo_kind_args_new(const mimo_kind *k)
{
    void *a = calloc(1, k->args_size ? k->args_size : 1);
    if (a && k->initial)
        memcpy(a, k->initial, k->args_size);
    if (a && k->defaults)
        k->defaults(a);
    return a;
}

/* The owned parts of settings struct a (names, a nested layer's
 * settings): copied in place (returns -1 out of memory, what was
 * copied released again), or released. */
static int own_copy(const mimo_kind *k, void *a, int n)
{
    for (int i = 0; i < n; i++) {
        void *p = (char *)a + k->args[i].offset;
        int fail = 0;
        if (k->args[i].type == MIMO_ARG_NAME && *(char **)p)
            fail = !(*(char **)p = mimo_strdup(*(char **)p));
        if (k->args[i].type == MIMO_ARG_LAYER && ((mimo_sublayer *)p)->args) {
            mimo_sublayer *s = p;
            fail = !(s->args = mimo_kind_args_copy(s->kind, s->args));
        }
        if (fail) {
            for (int j = 0; j < i; j++) /* undo the copies made */
                mimo_kind_args_free_owned(k, a, j);
            return -1;
        }
    }
    return 0;
}

void mimo_kind_args_free_owned(const mimo_kind *k, void *args, int i)
{
    void *p = (char *)args + k->args[i].offset;
    if (k->args[i].type == MIMO_ARG_NAME)
        free(*(char **)p);
    if (k->args[i].type == MIMO_ARG_LAYER && ((mimo_sublayer *)p)->args)
        mimo_kind_args_free(((mimo_sublayer *)p)->kind, ((mimo_sublayer *)p)->args);
}

void *mimo_kind_args_copy(const mimo_kind *k, const void *args)
{
    void *a = malloc(k->args_size ? k->args_size : 1);
    if (!a)
        return NULL;
    memcpy(a, args, k->args_size);
    if (own_copy(k, a, k->n_args)) {
        free(a);
        return NULL;
    }
    return a;
}

void mimo_kind_args_free(const mimo_kind *k, void *args)
{
    for (int i = 0; args && k && i < k->n_args; i++)
        mimo_kind_args_free_owned(k, args, i);
    free(args);
}

int mimo_check_inputs(const mimo_node *n, int min, int max, const char *hint,
                      char *err, size_t len)
{
    if (n->n_in >= min && (max == 0 || n->n_in <= max))
        return 0;
    if (min == max && min == 1)
        snprintf(err, len, "%s layer '%s' takes one input, got %d%s",
                 n->kind->name, n->name, n->n_in, hint);
    else if (min == max)
        snprintf(err, len, "%s layer '%s' takes exactly %d inputs, got %d%s",
                 n->kind->name, n->name, min, n->n_in, hint);
    else
        snprintf(err, len, "%s layer '%s' needs at least %d inputs, got %d%s",
                 n->kind->name, n->name, min, n->n_in, hint);
    return -1;
}

/* ---- the public view of a layer's settings ------------------------------- */

const char *mimo_layer_kind_name(const mimo_layer_spec *l)
{
    return l && l->kind ? l->kind->name : "?";
}

const char *mimo_layer_kind_at(int i)
{
    const mimo_kind *k = mimo_kind_at(i);
    return k ? k->name : NULL;
}

int mimo_layer_arg(const mimo_layer_spec *l, const char *key, mimo_arg_value *v)
{
    const mimo_arg *a = l ? mimo_kind_arg(l->kind, key) : NULL;
    memset(v, 0, sizeof *v);
    if (!a || !l->args)
        return -1;
    const char *p = (const char *)l->args + a->offset;
    switch (a->type) {
    case MIMO_ARG_REAL: v->d = *(const double *)p; break;
    case MIMO_ARG_INIT: v->init = *(const mimo_init *)p; break;
    case MIMO_ARG_INTS: {
        const mimo_ints *x = (const mimo_ints *)p;
        v->n = x->n;
        memcpy(v->list, x->v, sizeof v->list);
        v->i = x->n ? x->v[0] : 0;
        break;
    }
    case MIMO_ARG_NAME: v->s = *(char *const *)p; break;
    case MIMO_ARG_REALS: { /* the count, and the first value */
        const mimo_reals *x = (const mimo_reals *)p;
        v->n = x->n;
        v->d = x->n ? x->v[0] : 0;
        break;
    }
    case MIMO_ARG_LAYER: {
        const mimo_sublayer *sl = (const mimo_sublayer *)p;
        v->s = sl->kind ? sl->kind->name : NULL; /* its kind */
        break;
    }
    case MIMO_ARG_CHOICE:
        v->i = *(const int *)p;
        v->s = a->choices[v->i];
        break;
    case MIMO_ARG_ACT:
        v->i = *(const int *)p;
        v->s = mimo_act_name((mimo_act)v->i);
        break;
    default: v->i = *(const int *)p;
    }
    return 0;
}
