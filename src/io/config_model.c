/* config_model.c — the sections that describe the network: inputs (shape,
 * dtype), layers (type, from, shares, trainable and the kind's own keys,
 * read through its arg table in core/kind.h) and outputs (loss, weight,
 * metrics, class weights, missing labels). */
#include "io/config_impl.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/strutil.h"
#include "core/kind.h"

/* ---- inputs ------------------------------------------------------------ */

static const char *const INPUT_KEYS[] = {"shape", "dtype"};
/* int32 and int64 alike: integer ids (read as exact values below 2^24) */
static const char *const DTYPES[] = {"float32", "int32", "int64", NULL};

/* shape: INT > 0 or a list of 1 to MIMO_SAMPLE_RANK of them, whose
 * product stays below 2^31. */
static int get_shape(cfg *c, yaml_node_t *n, const char *what, mimo_shape *shape)
{
    char e[MSG_MAX / 4];
    long long v, prod = 1;
    yaml_node_item_t *it;
    snprintf(e, sizeof e, "an integer > 0 or a list of 1 to %d of them",
             MIMO_SAMPLE_RANK);
    memset(shape, 0, sizeof *shape);
    if (n->type == YAML_SCALAR_NODE && !mimo_cfg_is_null(n)) {
        int rc = mimo_cfg_get_int(c, n, what, 1, INT_MAX, "an integer > 0", &v);
        *shape = (mimo_shape){1, {(int)v}};
        return rc;
    }
    if (n->type != YAML_SEQUENCE_NODE || mimo_cfg_seq_len(n) == 0
        || mimo_cfg_seq_len(n) > MIMO_SAMPLE_RANK)
        return mimo_cfg_wrong(c, n, e, what);
    for (it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        int rc = mimo_cfg_get_int(c, mimo_cfg_node_at(c, *it), what, 1, INT_MAX,
                                  "an integer > 0", &v);
        if (rc)
            return rc;
        if (prod > INT_MAX / v)
            return mimo_cfg_err(c, n,
                                "shape of %s is too large (more than %d "
                                "features)",
                                what, INT_MAX);
        prod *= v;
        shape->dim[shape->rank++] = (int)v;
    }
    return 0;
}

static int get_choice(cfg *c, yaml_node_t *n, const char *what,
                      const mimo_arg *a, int *v);

static int conv_input(cfg *c, yaml_node_t *key, yaml_node_t *val,
                      mimo_input_spec *in)
{
    char what[MSG_MAX / 4], w2[MSG_MAX / 2];
    yaml_node_t *shape;
    int rc;
    snprintf(what, sizeof what, "input '%s'", mimo_cfg_sval(key));
    if (val->type != YAML_MAPPING_NODE)
        return mimo_cfg_wrong(c, val, "a mapping {shape: N}", what);
    if ((rc = mimo_cfg_check_keys(c, val, what, INPUT_KEYS, 2)))
        return rc;
    shape = mimo_cfg_get(c, val, "shape", NULL);
    if (!shape)
        return mimo_cfg_missing(c, key, what, "shape", "shape: N or [N, ...]");
    snprintf(w2, sizeof w2, "'shape' of %s", what);
    if ((rc = get_shape(c, shape, w2, &in->shape)))
        return rc;
    yaml_node_t *dt = mimo_cfg_get(c, val, "dtype", NULL);
    int d = 0;
    const mimo_arg a = {.key = "dtype", .type = MIMO_ARG_CHOICE, .choices = DTYPES};
    snprintf(w2, sizeof w2, "'dtype' of %s", what);
    if (dt && (rc = get_choice(c, dt, w2, &a, &d)))
        return rc;
    in->dtype = (mimo_dtype)d; /* DTYPES' order */
    return 0;
}

/* A section mapping NAME -> item: non-empty, names unique. */
int mimo_cfg_section(cfg *c, yaml_node_t *n, const char *name,
                     const char *example)
{
    char e[MSG_MAX / 4];
    snprintf(e, sizeof e, "a mapping like %s", example);
    if (mimo_cfg_is_null(n)
        || (n->type == YAML_MAPPING_NODE && !mimo_cfg_pair_count(n)))
        return mimo_cfg_err(c, n, "empty %s (expected %s)", name, e);
    if (n->type != YAML_MAPPING_NODE)
        return mimo_cfg_wrong(c, n, e, name);
    return mimo_cfg_check_keys(c, n, name, NULL, 0);
}

int mimo_cfg_conv_inputs(cfg *c, yaml_node_t *n, mimo_spec *s)
{
    int rc = mimo_cfg_section(c, n, "inputs", "{x1: {shape: 5}}");
    yaml_node_pair_t *p;
    if (rc)
        return rc;
    s->inputs = calloc((size_t)mimo_cfg_pair_count(n), sizeof *s->inputs);
    if (!s->inputs)
        return mimo_cfg_nomem(c);
    for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = mimo_cfg_node_at(c, p->key);
        mimo_input_spec *in = &s->inputs[s->n_inputs++];
        if (!(in->name = mimo_strdup(mimo_cfg_sval(k))))
            return mimo_cfg_nomem(c);
        in->pos = mimo_cfg_pos_of(c, k);
        if ((rc = conv_input(c, k, mimo_cfg_node_at(c, p->value), in)))
            return rc;
    }
    return 0;
}

/* ---- layers ------------------------------------------------------------
 * A layer's keys are type, from, and its kind's (core/kind.h): the kind's
 * arg table says each key's type, bounds and default. */

static const char *const INIT_KEYS[] = {"type", "value", "min", "max"};

/* "'units' in layer 'h1'" */
const char *mimo_cfg_kw(char *buf, size_t cap, const char *key,
                        const char *what)
{
    snprintf(buf, cap, "'%s' in %s", key, what);
    return buf;
}

static void init_defaults(mimo_init *in)
{
    in->a = in->kind == MIMO_INIT_UNIFORM ? -0.05 : 0.0;
    in->b = in->kind == MIMO_INIT_UNIFORM ? 0.05 : 0.0;
}

/* {type: NAME, value: X, min: A, max: B} */
static int conv_init_map(cfg *c, yaml_node_t *n, const char *what,
                         mimo_init *in)
{
    yaml_node_t *t = mimo_cfg_get(c, n, "type", NULL), *k = NULL, *v;
    int rc = mimo_cfg_check_keys(c, n, what, INIT_KEYS, 4), kind;
    char w[MSG_MAX];
    if (rc)
        return rc;
    if (!t) {
        char list[MSG_MAX / 2];
        mimo_cfg_enum_list(&mimo_cfg_enum_init, NULL, list, sizeof list, NULL,
                           0);
        return mimo_cfg_err(c, n, "%s has no 'type' (expected one of: %s)",
                            what, list);
    }
    if ((rc = mimo_cfg_get_enum(c, t, &mimo_cfg_enum_init, what, &kind)))
        return rc;
    in->kind = (mimo_init_kind)kind;
    init_defaults(in);
    if (((v = mimo_cfg_get(c, n, "value", &k))
         && in->kind != MIMO_INIT_CONSTANT)
        || ((v = mimo_cfg_get(c, n, "min", &k))
            && in->kind != MIMO_INIT_UNIFORM)
        || ((v = mimo_cfg_get(c, n, "max", &k))
            && in->kind != MIMO_INIT_UNIFORM))
        return mimo_cfg_err(c, k, "key '%s' is not valid for %s %s initializer",
                            mimo_cfg_sval(k),
                            mimo_cfg_article(mimo_cfg_sval(t)),
                            mimo_cfg_sval(t));
    if ((v = mimo_cfg_get(c, n, "value", NULL))
        && (rc = mimo_cfg_get_double(
                c, v, mimo_cfg_kw(w, sizeof w, "value", what), R_ANY, &in->a)))
        return rc;
    if ((v = mimo_cfg_get(c, n, "min", NULL))
        && (rc = mimo_cfg_get_double(
                c, v, mimo_cfg_kw(w, sizeof w, "min", what), R_ANY, &in->a)))
        return rc;
    if ((v = mimo_cfg_get(c, n, "max", NULL))
        && (rc = mimo_cfg_get_double(
                c, v, mimo_cfg_kw(w, sizeof w, "max", what), R_ANY, &in->b)))
        return rc;
    if (in->kind == MIMO_INIT_UNIFORM && !(in->a <= in->b))
        return mimo_cfg_err(c, n, "%s has min %g > max %g", what, in->a, in->b);
    return 0;
}

static int conv_init(cfg *c, yaml_node_t *n, const char *what, mimo_init *in)
{
    int kind, rc;
    if (n->type == YAML_MAPPING_NODE)
        return conv_init_map(c, n, what, in);
    if ((rc = mimo_cfg_get_enum(c, n, &mimo_cfg_enum_init, what, &kind)))
        return rc;
    in->kind = (mimo_init_kind)kind;
    init_defaults(in);
    return 0;
}

/* from: NAME or [NAME, ...] */
static int conv_from(cfg *c, yaml_node_t *n, const char *what,
                     mimo_layer_spec *l)
{
    int count = 1, rc;
    const char *s = NULL;
    if (n->type == YAML_SEQUENCE_NODE)
        count = mimo_cfg_seq_len(n);
    if (n->type == YAML_MAPPING_NODE || count == 0)
        return mimo_cfg_wrong(c, n, "a name or a non-empty list of names",
                              what);
    l->from = calloc((size_t)count, sizeof *l->from);
    l->from_pos = calloc((size_t)count, sizeof *l->from_pos);
    if (!l->from || !l->from_pos)
        return mimo_cfg_nomem(c);
    for (int i = 0; i < count; i++) {
        yaml_node_t *it =
            n->type == YAML_SEQUENCE_NODE
                ? mimo_cfg_node_at(c, n->data.sequence.items.start[i])
                : n;
        if ((rc = mimo_cfg_get_name(c, it, what, &s)))
            return rc;
        if (!(l->from[i] = mimo_strdup(s)))
            return mimo_cfg_nomem(c);
        l->from_pos[i] = mimo_cfg_pos_of(c, it);
        l->n_from = i + 1;
    }
    return 0;
}

/* A real within the arg's bounds. */
static int get_bounded(cfg *c, yaml_node_t *n, const char *what,
                       const mimo_arg *a, double *v)
{
    int rc = mimo_cfg_get_double(c, n, what, R_ANY, v);
    if (rc)
        return rc;
    int low = (a->excl & 1) ? *v > a->lo : *v >= a->lo;
    int high = (a->excl & 2) ? *v < a->hi : *v <= a->hi;
    return low && high ? 0 : mimo_cfg_wrong(c, n, a->expect, what);
}

/* An integer, or a list of 1 to MIMO_MAX_RANK of them, within bounds. */
static int get_ints(cfg *c, yaml_node_t *n, const char *what,
                    const mimo_arg *a, mimo_ints *v)
{
    char e[MSG_MAX / 4];
    long long x;
    int rc;
    snprintf(e, sizeof e, "%s or a list of them", a->expect);
    if (n->type == YAML_SEQUENCE_NODE) {
        int len = mimo_cfg_seq_len(n);
        if (len < 1 || len > MIMO_MAX_RANK)
            return mimo_cfg_wrong(c, n, e, what);
        for (int i = 0; i < len; i++) {
            rc = mimo_cfg_get_int(
                c, mimo_cfg_node_at(c, n->data.sequence.items.start[i]), what,
                (long long)a->lo, (long long)a->hi, a->expect, &x);
            if (rc)
                return rc;
            v->v[i] = (int)x;
        }
        v->n = len;
        return 0;
    }
    if (n->type != YAML_SCALAR_NODE)
        return mimo_cfg_wrong(c, n, e, what);
    if ((rc = mimo_cfg_get_int(c, n, what, (long long)a->lo, (long long)a->hi,
                               a->expect, &x)))
        return rc;
    v->n = 1, v->v[0] = (int)x;
    return 0;
}

/* A list of 1 to MIMO_MAX_REALS numbers, each within bounds. */
static int get_reals(cfg *c, yaml_node_t *n, const char *what,
                     const mimo_arg *a, mimo_reals *v)
{
    char e[MSG_MAX / 4];
    snprintf(e, sizeof e, "a list of 1 to %d numbers", MIMO_MAX_REALS);
    if (n->type != YAML_SEQUENCE_NODE)
        return mimo_cfg_wrong(c, n, e, what);
    int len = mimo_cfg_seq_len(n);
    if (len < 1 || len > MIMO_MAX_REALS)
        return mimo_cfg_wrong(c, n, e, what);
    for (int i = 0; i < len; i++) {
        int rc = get_bounded(c, mimo_cfg_node_at(c, n->data.sequence.items.start[i]),
                             what, a, &v->v[i]);
        if (rc)
            return rc;
    }
    v->n = len;
    return 0;
}

/* One of the names in a->choices. */
static int get_choice(cfg *c, yaml_node_t *n, const char *what,
                      const mimo_arg *a, int *v)
{
    const char *s = NULL;
    int count = 0;
    while (a->choices[count])
        count++;
    char list[MSG_MAX / 2], hint[96], e[MSG_MAX / 2 + 16];
    mimo_cfg_join(list, sizeof list, a->choices, count);
    snprintf(e, sizeof e, "one of: %s", list);
    int rc = mimo_cfg_scalar(c, n, e, what, &s);
    if (rc)
        return rc;
    for (int i = 0; i < count; i++)
        if (strcmp(s, a->choices[i]) == 0) {
            *v = i;
            return 0;
        }
    mimo_cfg_suggest(hint, sizeof hint, s, a->choices, count);
    return mimo_cfg_err(c, n, "unknown value '%s' for %s (expected %s%s)", s,
                        what, e, hint);
}

static int conv_sublayer(cfg *c, yaml_node_t *v, const char *what,
                         const mimo_arg *a, mimo_sublayer *dst);

/* Reads the value of one of a kind's keys into the settings struct. */
static int conv_arg(cfg *c, yaml_node_t *v, const char *what,
                    const mimo_arg *a, void *args)
{
    char w[MSG_MAX / 2];
    void *dst = (char *)args + a->offset;
    const char *s = NULL;
    long long i;
    int rc, e;
    mimo_cfg_kw(w, sizeof w, a->key, what);
    switch (a->type) {
    case MIMO_ARG_INT:
        rc = mimo_cfg_get_int(c, v, w, (long long)a->lo, (long long)a->hi,
                              a->expect, &i);
        if (!rc)
            *(int *)dst = (int)i;
        return rc;
    case MIMO_ARG_REAL: return get_bounded(c, v, w, a, (double *)dst);
    case MIMO_ARG_BOOL:
        return mimo_cfg_get_bool(c, v, w, (int *)dst);
    case MIMO_ARG_ACT:
        rc = mimo_cfg_get_enum(c, v, &mimo_cfg_enum_act, what, &e);
        if (!rc)
            *(mimo_act *)dst = (mimo_act)e;
        return rc;
    case MIMO_ARG_INIT: return conv_init(c, v, w, (mimo_init *)dst);
    case MIMO_ARG_INTS: return get_ints(c, v, w, a, (mimo_ints *)dst);
    case MIMO_ARG_REALS: return get_reals(c, v, w, a, (mimo_reals *)dst);
    case MIMO_ARG_CHOICE: return get_choice(c, v, w, a, (int *)dst);
    case MIMO_ARG_NAME:
        if ((rc = mimo_cfg_get_name(c, v, w, &s)))
            return rc;
        free(*(char **)dst);
        return (*(char **)dst = mimo_strdup(s)) ? 0 : mimo_cfg_nomem(c);
    case MIMO_ARG_LAYER: return conv_sublayer(c, v, w, a, (mimo_sublayer *)dst);
    }
    return 0;
}

/* "dense", "dense and activation", ...: the kinds that take key. */
static int kinds_taking(const char *key, char *buf, size_t cap)
{
    const char *names[64];
    int n = 0;
    for (int i = 0; mimo_kind_at(i) && n < 64; i++)
        if (mimo_kind_arg(mimo_kind_at(i), key))
            names[n++] = mimo_kind_at(i)->name;
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, cap - len, "%s%s", i == 0 ? "" : i == n - 1 ? " and "
                 : ", ", names[i]);
    }
    return n;
}

/* Keys every layer may have, whatever its kind. */
static const char *const LAYER_COMMON[] = {"type", "from", "shares", "trainable"};

/* Every key of the layer is a common one (the first n_common of
 * LAYER_COMMON) or one of its kind's. */
static int check_layer_keys(cfg *c, yaml_node_t *val, const char *what,
                            yaml_node_t *t, const mimo_kind *kind, int n_common)
{
    const char *keys[64];
    int n = n_common;
    memcpy(keys, LAYER_COMMON, sizeof *keys * (size_t)n_common);
    for (int i = 0; i < kind->n_args && n < 64; i++)
        keys[n++] = kind->args[i].key;
    for (yaml_node_pair_t *p = val->data.mapping.pairs.start;
         p < val->data.mapping.pairs.top; p++) {
        yaml_node_t *k = mimo_cfg_node_at(c, p->key);
        char list[MSG_MAX / 2], hint[96];
        if (mimo_cfg_in_list(mimo_cfg_sval(k), keys, n))
            continue;
        if (kinds_taking(mimo_cfg_sval(k), list, sizeof list))
            return mimo_cfg_err(
                c, k,
                "key '%s' is not valid for %s %s layer (only %s "
                "layers take it)",
                mimo_cfg_sval(k), mimo_cfg_article(mimo_cfg_sval(t)),
                mimo_cfg_sval(t), list);
        mimo_cfg_join(list, sizeof list, keys, n);
        mimo_cfg_suggest(hint, sizeof hint, mimo_cfg_sval(k), keys, n);
        if (!hint[0] && strchr(mimo_cfg_sval(k), ':'))
            snprintf(hint, sizeof hint, "; put a space after ':'");
        return mimo_cfg_err(c, k,
                            "unknown key '%s' in %s (expected one of: %s%s)",
                            mimo_cfg_sval(k), what, list, hint);
    }
    return 0;
}

/* The kind's keys, in its table's order, into its settings struct args,
 * then its own checks. */
static int conv_kind_args(cfg *c, yaml_node_t *key, yaml_node_t *val,
                          const char *what, const mimo_kind *kind, void *args)
{
    char msg[MSG_MAX / 2];
    int rc;
    for (int i = 0; i < kind->n_args; i++) {
        const mimo_arg *a = &kind->args[i];
        yaml_node_t *v = mimo_cfg_get(c, val, a->key, NULL);
        if (!v && a->required) {
            char list[MSG_MAX / 2], e[MSG_MAX / 2 + 16];
            if (a->type == MIMO_ARG_ACT) {
                mimo_cfg_enum_list(&mimo_cfg_enum_act, NULL, list, sizeof list,
                                   NULL, 0);
                snprintf(e, sizeof e, "one of: %s", list);
            } else
                snprintf(e, sizeof e, "%s", a->expect ? a->expect : "a value");
            return mimo_cfg_missing(c, key, what, a->key, e);
        }
        if (v && (rc = conv_arg(c, v, what, a, args)))
            return rc;
    }
    msg[0] = '\0';
    if (kind->finish && kind->finish(args, msg, sizeof msg) < 0)
        return mimo_cfg_err(c, key, "%s: %s", what,
                            msg[0] ? msg : "invalid settings");
    return 0;
}

/* `shares: LAYER`: the settings come from LAYER (conv_layers copies them
 * once every layer is read), so no other key of the kind is given. */
static int conv_shares(cfg *c, yaml_node_t *val, yaml_node_t *v,
                       const char *what, mimo_layer_spec *l)
{
    char w[MSG_MAX / 2];
    const char *s = NULL;
    int rc =
        mimo_cfg_get_name(c, v, mimo_cfg_kw(w, sizeof w, "shares", what), &s);
    if (rc)
        return rc;
    for (yaml_node_pair_t *p = val->data.mapping.pairs.start;
         p < val->data.mapping.pairs.top; p++) {
        yaml_node_t *k = mimo_cfg_node_at(c, p->key);
        if (!mimo_cfg_in_list(mimo_cfg_sval(k), LAYER_COMMON, 4)
            || strcmp(mimo_cfg_sval(k), "trainable") == 0)
            return mimo_cfg_err(
                c, k,
                "key '%s' is not valid in %s, which shares '%s': a "
                "shared layer takes the settings%s of the layer it shares",
                mimo_cfg_sval(k), what, s,
                strcmp(mimo_cfg_sval(k), "trainable") == 0 ? " and trainability"
                                                           : "");
    }
    l->shares_pos = mimo_cfg_pos_of(c, v);
    return (l->shares = mimo_strdup(s)) ? 0 : mimo_cfg_nomem(c);
}

/* The end of layer i's `shares` chain into *owner (a layer index; i when
 * it shares nothing); an error at i's `shares` for a name that is not a
 * layer or a chain that comes back to i. own[] keeps the ends found so
 * far, so a chain is walked once however long (the walk stops at a layer
 * already resolved, then marks its path): O(n log n) in all, where a scan
 * per hop was cubic. */
static int shares_owner(cfg *c, const mimo_spec *s, const mimo_names *ix, int *own,
                        int i, int *owner)
{
    const mimo_layer_spec *l = &s->layers[i];
    int j = i;
    for (int hops = 0; own[j] < 0 && s->layers[j].shares && hops <= s->n_layers; hops++) {
        int next = mimo_names_find(ix, s->layers[j].shares);
        if (next < 0)
            return mimo_cfg_err_at(c, l->shares_pos,
                                   "layer '%s' shares '%s', which "
                                   "is not a layer",
                                   l->name, s->layers[j].shares);
        if (next == i)
            return mimo_cfg_err_at(c, l->shares_pos,
                                   "layer '%s' shares its own "
                                   "parameters (through 'shares')",
                                   l->name);
        j = next;
    }
    if (own[j] < 0 && s->layers[j].shares) { /* in a cycle that is not i's: */
        *owner = j; /* that cycle's own layers report it */
        return 0;
    }
    int o = own[j] >= 0 ? own[j] : j;
    for (j = i; own[j] < 0; j = mimo_names_find(ix, s->layers[j].shares)) {
        own[j] = o;
        if (!s->layers[j].shares)
            break;
    }
    *owner = o;
    return 0;
}

/* Each sharing layer gets its owner's settings: the owner must be a layer
 * of the same type; chains resolve to the layer that owns the parameters. */
static int resolve_shares(cfg *c, mimo_spec *s)
{
    mimo_names ix;
    int *own = malloc(sizeof(int) * (size_t)(s->n_layers + 1)), rc = 0;
    if (!own || mimo_names_init(&ix, s->n_layers)) {
        free(own);
        return mimo_cfg_nomem(c);
    }
    for (int i = 0; i < s->n_layers; i++)
        mimo_names_add(&ix, s->layers[i].name, i), own[i] = -1;
    mimo_names_sort(&ix);
    for (int i = 0; i < s->n_layers && !rc; i++) {
        mimo_layer_spec *l = &s->layers[i], *o;
        int at = i;
        if ((rc = shares_owner(c, s, &ix, own, i, &at)) || at == i)
            continue;
        o = &s->layers[at];
        if (o->kind != l->kind) {
            rc = mimo_cfg_err_at(
                c, l->shares_pos,
                "layer '%s' is %s %s layer but shares "
                "'%s', %s %s layer; a shared layer has the type of the "
                "layer it shares",
                l->name, mimo_cfg_article(l->kind->name), l->kind->name,
                o->name, mimo_cfg_article(o->kind->name), o->kind->name);
            continue;
        }
        void *copy = mimo_kind_args_copy(o->kind, o->args);
        if (!copy) {
            rc = mimo_cfg_nomem(c);
            continue;
        }
        mimo_kind_args_free(l->kind, l->args);
        l->args = copy;
        l->trainable = o->trainable;
    }
    mimo_names_free(&ix);
    free(own);
    return rc;
}

/* The type first (an unknown type is reported before its keys), then the
 * keys, `from`, and the kind's settings. */
static int conv_layer(cfg *c, yaml_node_t *key, yaml_node_t *val,
                      mimo_layer_spec *l)
{
    char what[MSG_MAX / 4], list[MSG_MAX / 2], w[MSG_MAX / 2];
    yaml_node_t *t, *v;
    int rc, type;
    snprintf(what, sizeof what, "layer '%s'", mimo_cfg_sval(key));
    if (val->type != YAML_MAPPING_NODE)
        return mimo_cfg_wrong(c, val, "a mapping {type: ..., from: ...}", what);
    if ((rc = mimo_cfg_check_keys(c, val, what, NULL, 0)))
        return rc;
    if (!(t = mimo_cfg_get(c, val, "type", NULL))) {
        mimo_cfg_enum_list(&mimo_cfg_enum_layer, NULL, list, sizeof list, NULL,
                           0);
        return mimo_cfg_err(c, key, "%s has no 'type' (expected one of: %s)",
                            what, list);
    }
    if ((rc = mimo_cfg_get_enum(c, t, &mimo_cfg_enum_layer, what, &type)))
        return rc;
    l->kind = mimo_kind_at(type);
    if (!(l->args = mimo_kind_args_new(l->kind)))
        return mimo_cfg_nomem(c);
    if ((rc = check_layer_keys(c, val, what, t, l->kind, 4)))
        return rc;
    if (!(v = mimo_cfg_get(c, val, "from", NULL)))
        return mimo_cfg_missing(c, key, what, "from",
                                "a name or a list of names");
    if ((rc = conv_from(c, v, mimo_cfg_kw(w, sizeof w, "from", what), l)))
        return rc;
    l->trainable = 1;
    l->trainable_pos = (mimo_pos){-1, -1}; /* not given */
    if ((v = mimo_cfg_get(c, val, "trainable", NULL))) {
        if ((rc = mimo_cfg_get_bool(c, v,
                                    mimo_cfg_kw(w, sizeof w, "trainable", what),
                                    &l->trainable)))
            return rc;
        l->trainable_pos = mimo_cfg_pos_of(c, v);
    }
    if ((v = mimo_cfg_get(c, val, "shares", NULL)))
        return conv_shares(c, val, v, what, l);
    return conv_kind_args(c, key, val, what, l->kind, l->args);
}

/* A layer inside a layer's settings (bidirectional's `layer: {type: gru,
 * units: 6}`): a mapping with a type among a->choices and that kind's
 * keys (no from, shares or trainable: the outer layer has them). */
static int conv_sublayer(cfg *c, yaml_node_t *v, const char *what,
                         const mimo_arg *a, mimo_sublayer *dst)
{
    char list[MSG_MAX / 4] = "";
    const mimo_kind *k = NULL;
    yaml_node_t *t;
    int rc, n = 0;
    for (; a->choices[n]; n++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                 n ? ", " : "", a->choices[n]);
    if (v->type != YAML_MAPPING_NODE)
        return mimo_cfg_wrong(c, v, "a mapping {type: ..., units: ...}", what);
    if (!(t = mimo_cfg_get(c, v, "type", NULL)))
        return mimo_cfg_err(c, v, "%s has no 'type' (expected one of: %s)", what, list);
    const char *s = mimo_cfg_sval(t);
    for (int i = 0; s && i < n && !k; i++)
        if (mimo_kind_find(s) == mimo_kind_find(a->choices[i]))
            k = mimo_kind_find(s);
    if (!k)
        return mimo_cfg_err(c, t, "%s: type '%s' cannot be wrapped here "
                            "(expected one of: %s)", what, s ? s : "", list);
    if (dst->args)
        mimo_kind_args_free(dst->kind, dst->args);
    dst->kind = k;
    if (!(dst->args = mimo_kind_args_new(k)))
        return mimo_cfg_nomem(c);
    if ((rc = check_layer_keys(c, v, what, t, k, 1)))
        return rc;
    return conv_kind_args(c, v, v, what, k, dst->args);
}

int mimo_cfg_conv_layers(cfg *c, yaml_node_t *n, mimo_spec *s)
{
    int rc = mimo_cfg_section(c, n, "layers",
                              "{h1: {type: dense, units: 4, from: x1}}");
    yaml_node_pair_t *p;
    if (rc)
        return rc;
    s->layers = calloc((size_t)mimo_cfg_pair_count(n), sizeof *s->layers);
    if (!s->layers)
        return mimo_cfg_nomem(c);
    for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = mimo_cfg_node_at(c, p->key);
        mimo_layer_spec *l = &s->layers[s->n_layers++];
        if (!(l->name = mimo_strdup(mimo_cfg_sval(k))))
            return mimo_cfg_nomem(c);
        l->pos = mimo_cfg_pos_of(c, k);
        if ((rc = conv_layer(c, k, mimo_cfg_node_at(c, p->value), l)))
            return rc;
    }
    return resolve_shares(c, s);
}

/* ---- outputs ----------------------------------------------------------- */

static const char *const OUTPUT_KEYS[] = {
    "loss", "weight", "metrics", "delta", "target", "from_logits", "missing",
    "sample_weight", "class_weight", "top_k"};

static int is_classifier(mimo_loss l)
{
    return l == MIMO_LOSS_BCE || l == MIMO_LOSS_CCE || l == MIMO_LOSS_SPARSE_CCE;
}

/* A metric must suit the head's loss: the class metrics need classes,
 * top_k_accuracy more than two of them. */
static int metric_fits(cfg *c, yaml_node_t *it, const char *what, int m,
                       mimo_loss l)
{
    unsigned bit = 1u << m;
    if ((bit & MIMO_METRICS_CLASSIFY) && !is_classifier(l))
        return mimo_cfg_err(
            c, it,
            "metric '%s' needs class labels, but %s has the %s "
            "loss (use it on a binary_crossentropy, "
            "categorical_crossentropy or sparse_categorical_crossentropy "
            "head)",
            mimo_metric_name(m), what, mimo_loss_name(l));
    if (bit == MIMO_METRIC_TOP_K && l == MIMO_LOSS_BCE)
        return mimo_cfg_err(c, it,
                            "metric 'top_k_accuracy' needs a categorical head, "
                            "but %s is binary (binary_crossentropy)",
                            what);
    return 0;
}

static int conv_metrics(cfg *c, yaml_node_t *n, const char *what,
                        mimo_output_spec *o)
{
    int count = 1, m, rc;
    if (n->type == YAML_SEQUENCE_NODE)
        count = mimo_cfg_seq_len(n);
    for (int i = 0; i < count; i++) {
        yaml_node_t *it =
            n->type == YAML_SEQUENCE_NODE
                ? mimo_cfg_node_at(c, n->data.sequence.items.start[i])
                : n;
        if ((rc = mimo_cfg_get_enum(c, it, &mimo_cfg_enum_metric, what, &m))
            || (rc = metric_fits(c, it, what, m, o->loss)))
            return rc;
        o->metrics |= 1u << m;
    }
    return 0;
}

/* missing: nan (any float target), or an integer marking class labels. */
static int conv_missing(cfg *c, yaml_node_t *n, const char *what,
                        mimo_output_spec *o)
{
    const char *e = "nan or an integer (e.g. -1)", *s = NULL;
    char w[MSG_MAX / 2];
    long long v;
    int rc =
        mimo_cfg_scalar(c, n, e, mimo_cfg_kw(w, sizeof w, "missing", what), &s);
    if (rc)
        return rc;
    if (mimo_cfg_lower_eq(s, "nan") || mimo_cfg_lower_eq(s, ".nan")) {
        o->missing = MIMO_MISSING_NAN;
        return 0;
    }
    if (mimo_cfg_parse_ll(s, &v) || v < -(1LL << 24) || v > (1LL << 24))
        return mimo_cfg_wrong(c, n, e, w);
    if (o->loss != MIMO_LOSS_SPARSE_CCE && o->loss != MIMO_LOSS_BCE)
        return mimo_cfg_err(
            c, n,
            "missing: %s marks class labels (binary_crossentropy "
            "or sparse_categorical_crossentropy), but %s has the %s "
            "loss: mark its missing targets with NaN and use missing: nan",
            s, what, mimo_loss_name(o->loss));
    o->missing = MIMO_MISSING_VALUE;
    o->missing_value = (double)v;
    return 0;
}

/* class_weight: {CLASS: WEIGHT, ...} on a classification head. */
static int conv_class_weight(cfg *c, yaml_node_t *k, yaml_node_t *n,
                             const char *what, mimo_output_spec *o)
{
    char w[MSG_MAX / 2];
    long long cls;
    int rc;
    if (!is_classifier(o->loss))
        return mimo_cfg_err(
            c, k,
            "class_weight needs class labels, but %s has the %s "
            "loss (use sample_weight to weigh the rows of a regression "
            "head)",
            what, mimo_loss_name(o->loss));
    if (n->type != YAML_MAPPING_NODE)
        return mimo_cfg_wrong(c, n, "a mapping {CLASS: WEIGHT, ...}",
                              mimo_cfg_kw(w, sizeof w, "class_weight", what));
    free(o->class_weight);
    o->n_class_weight = 0;
    if (!(o->class_weight = calloc((size_t)mimo_cfg_pair_count(n) + 1,
                                   sizeof *o->class_weight)))
        return mimo_cfg_nomem(c);
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
         p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *ck = mimo_cfg_node_at(c, p->key),
                    *cv = mimo_cfg_node_at(c, p->value);
        mimo_class_weight *cw = &o->class_weight[o->n_class_weight];
        mimo_cfg_kw(w, sizeof w, "class_weight", what);
        if ((rc = mimo_cfg_get_int(c, ck, w, 0, INT_MAX, "a class index >= 0",
                                   &cls))
            || (rc = mimo_cfg_get_double(c, cv, w, R_NONNEG, &cw->weight)))
            return rc;
        for (int j = 0; j < o->n_class_weight; j++)
            if (o->class_weight[j].cls == cls)
                return mimo_cfg_err(c, ck, "class %lld appears twice in %s",
                                    cls, w);
        cw->cls = cls;
        cw->pos = mimo_cfg_pos_of(c, ck);
        o->n_class_weight++;
    }
    return 0;
}

static int conv_output_body(cfg *c, yaml_node_t *val, const char *what,
                            mimo_output_spec *o)
{
    char w[MSG_MAX / 2];
    yaml_node_t *v, *k;
    const char *s = NULL;
    int rc;
    if ((v = mimo_cfg_get(c, val, "weight", NULL))
        && (rc = mimo_cfg_get_double(c, v,
                                     mimo_cfg_kw(w, sizeof w, "weight", what),
                                     R_NONNEG, &o->weight)))
        return rc;
    if ((v = mimo_cfg_get(c, val, "metrics", NULL))
        && (rc = conv_metrics(c, v, what, o)))
        return rc;
    if ((v = mimo_cfg_get(c, val, "missing", NULL))
        && (rc = conv_missing(c, v, what, o)))
        return rc;
    if ((v = mimo_cfg_get(c, val, "class_weight", &k))
        && (rc = conv_class_weight(c, k, v, what, o)))
        return rc;
    if ((v = mimo_cfg_get(c, val, "top_k", &k))) {
        long long x;
        if (!(o->metrics & MIMO_METRIC_TOP_K))
            return mimo_cfg_err(
                c, k,
                "key 'top_k' goes with the metric top_k_accuracy "
                "in %s",
                what);
        if ((rc =
                 mimo_cfg_get_int(c, v, mimo_cfg_kw(w, sizeof w, "top_k", what),
                                  1, INT_MAX, "an integer > 0", &x)))
            return rc;
        o->top_k = (int)x;
    }
    if ((v = mimo_cfg_get(c, val, "sample_weight", NULL))) {
        if ((rc = mimo_cfg_get_name(
                 c, v, mimo_cfg_kw(w, sizeof w, "sample_weight", what), &s)))
            return rc;
        free(o->sample_weight);
        if (!(o->sample_weight = mimo_strdup(s)))
            return mimo_cfg_nomem(c);
        o->sample_weight_pos = mimo_cfg_pos_of(c, v);
    }
    if ((v = mimo_cfg_get(c, val, "delta", &k))) {
        if (o->loss != MIMO_LOSS_HUBER)
            return mimo_cfg_err(c, k,
                                "key 'delta' is only valid with the huber loss "
                                "in %s",
                                what);
        if ((rc = mimo_cfg_get_double(c, v,
                                      mimo_cfg_kw(w, sizeof w, "delta", what),
                                      R_POS, &o->huber_delta)))
            return rc;
    }
    if ((v = mimo_cfg_get(c, val, "from_logits", &k))) {
        if (o->loss != MIMO_LOSS_BCE && o->loss != MIMO_LOSS_CCE &&
            o->loss != MIMO_LOSS_SPARSE_CCE)
            return mimo_cfg_err(c, k,
                                "key 'from_logits' is only valid with the "
                                "cross-entropy losses in %s",
                                what);
        if ((rc = mimo_cfg_get_bool(
                 c, v, mimo_cfg_kw(w, sizeof w, "from_logits", what),
                 &o->from_logits)))
            return rc;
    }
    if ((v = mimo_cfg_get(c, val, "target", NULL))) {
        if ((rc = mimo_cfg_get_name(
                 c, v, mimo_cfg_kw(w, sizeof w, "target", what), &s)))
            return rc;
        free(o->target);
        if (!(o->target = mimo_strdup(s)))
            return mimo_cfg_nomem(c);
    }
    return 0;
}

static int conv_output(cfg *c, yaml_node_t *key, yaml_node_t *val,
                       mimo_output_spec *o)
{
    char what[MSG_MAX / 4], list[MSG_MAX / 2], e[MSG_MAX / 2 + 16];
    yaml_node_t *v = NULL;
    int rc, loss;
    snprintf(what, sizeof what, "output '%s'", mimo_cfg_sval(key));
    if (!mimo_cfg_is_null(val) && val->type != YAML_MAPPING_NODE)
        return mimo_cfg_wrong(c, val, "a mapping {loss: ..., weight: ...}",
                              what);
    if (val->type == YAML_MAPPING_NODE
        && (rc = mimo_cfg_check_keys(c, val, what, OUTPUT_KEYS,
                                     NKEYS(OUTPUT_KEYS))))
        return rc;
    if (val->type == YAML_MAPPING_NODE)
        v = mimo_cfg_get(c, val, "loss", NULL);
    if (!v) {
        mimo_cfg_enum_list(&mimo_cfg_enum_loss, NULL, list, sizeof list, NULL,
                           0);
        snprintf(e, sizeof e, "one of: %s", list);
        return mimo_cfg_missing(c, key, what, "loss", e);
    }
    if ((rc = mimo_cfg_get_enum(c, v, &mimo_cfg_enum_loss, what, &loss)))
        return rc;
    o->loss = (mimo_loss)loss;
    return conv_output_body(c, val, what, o);
}

int mimo_cfg_conv_outputs(cfg *c, yaml_node_t *n, mimo_spec *s)
{
    int rc = mimo_cfg_section(c, n, "outputs", "{y1: {loss: mse}}");
    yaml_node_pair_t *p;
    if (rc)
        return rc;
    s->outputs = calloc((size_t)mimo_cfg_pair_count(n), sizeof *s->outputs);
    if (!s->outputs)
        return mimo_cfg_nomem(c);
    for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = mimo_cfg_node_at(c, p->key);
        mimo_output_spec *o = &s->outputs[s->n_outputs++];
        o->weight = 1.0;
        o->huber_delta = 1.0;
        o->top_k = 5;
        if (!(o->name = mimo_strdup(mimo_cfg_sval(k)))
            || !(o->target = mimo_strdup(mimo_cfg_sval(k))))
            return mimo_cfg_nomem(c);
        o->pos = mimo_cfg_pos_of(c, k);
        if ((rc = conv_output(c, k, mimo_cfg_node_at(c, p->value), o)))
            return rc;
    }
    return 0;
}

