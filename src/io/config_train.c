/* config_train.c — the sections that describe the run: train (epochs,
 * batch, optimizer, schedule, callbacks, checkpoint) and data (files,
 * paths relative to the config's directory, memory limit). */
#include "io/config_impl.h"

#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/error.h"
#include "base/fsutil.h"
#include "base/strutil.h"

/* ---- train and data ---------------------------------------------------- */


static const char *const TRAIN_KEYS[] = {
    "optimizer", "batch_size", "epochs", "seed", "shuffle",
    "validation_split", "lr_schedule", "reduce_lr_on_plateau",
    "early_stopping", "checkpoint", "loss_weighting", "accumulate",
    "grad_diagnostics", "task_balancing", "precision"};
static const char *const OPT_KEYS[] = {
    "type", "lr", "momentum", "nesterov", "beta1", "beta2", "epsilon", "rho",
    "weight_decay", "clipnorm", "clipvalue", "lazy", "initial_accumulator_value"};
static const char *const DATA_KEYS[] = {"train", "val", "memory_limit_mb",
                                        "prefetch"};

static int opt_key_ok(mimo_opt_kind k, const char *key)
{
    static const char *const common[] = {"type", "lr", "weight_decay",
                                         "clipnorm", "clipvalue"};
    static const char *const sgd[] = {"momentum", "nesterov"};
    static const char *const adam[] = {"beta1", "beta2", "epsilon", "lazy"};
    static const char *const rms[] = {"rho", "momentum", "epsilon"};
    static const char *const adagrad[] = {"epsilon", "initial_accumulator_value"};
    if (mimo_cfg_in_list(key, common, 5))
        return 1;
    if (k == MIMO_OPT_SGD)
        return mimo_cfg_in_list(key, sgd, 2);
    if (k == MIMO_OPT_ADAM || k == MIMO_OPT_ADAMW)
        return mimo_cfg_in_list(key, adam, 4);
    if (k == MIMO_OPT_ADAGRAD)
        return mimo_cfg_in_list(key, adagrad, 2);
    return mimo_cfg_in_list(key, rms, 3);
}

/* One optimizer number: which key, where it goes, its range. */
typedef struct {
    const char *key;
    size_t off;
    int range;
} opt_num;

static const opt_num OPT_NUMS[] = {
    {"lr", offsetof(mimo_opt_spec, lr), R_POS},
    {"momentum", offsetof(mimo_opt_spec, momentum), R_UNIT},
    {"beta1", offsetof(mimo_opt_spec, beta1), R_UNIT},
    {"beta2", offsetof(mimo_opt_spec, beta2), R_UNIT},
    {"epsilon", offsetof(mimo_opt_spec, eps), R_NONNEG},
    {"rho", offsetof(mimo_opt_spec, rho), R_UNIT},
    {"weight_decay", offsetof(mimo_opt_spec, weight_decay), R_NONNEG},
    {"clipnorm", offsetof(mimo_opt_spec, clipnorm), R_NONNEG},
    {"clipvalue", offsetof(mimo_opt_spec, clipvalue), R_NONNEG},
    {"initial_accumulator_value", offsetof(mimo_opt_spec, initial_accumulator), R_NONNEG}};

static int conv_opt_map(cfg *c, yaml_node_t *n, mimo_opt_spec *o)
{
    const char *what = "train.optimizer";
    char w[MSG_MAX / 2];
    yaml_node_t *t = mimo_cfg_get(c, n, "type", NULL), *v;
    yaml_node_pair_t *p;
    int rc = mimo_cfg_check_keys(c, n, what, OPT_KEYS, 13), kind = MIMO_OPT_SGD;
    if (rc)
        return rc;
    if (t && (rc = mimo_cfg_get_enum(c, t, &mimo_cfg_enum_opt, what, &kind)))
        return rc;
    o->kind = (mimo_opt_kind)kind;
    o->lr = o->kind == MIMO_OPT_SGD ? 0.01 : 0.001;
    for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = mimo_cfg_node_at(c, p->key);
        if (!opt_key_ok(o->kind, mimo_cfg_sval(k)))
            return mimo_cfg_err(c, k,
                                "key '%s' is not valid for the %s optimizer",
                                mimo_cfg_sval(k), mimo_opt_name(o->kind));
    }
    for (size_t i = 0; i < sizeof OPT_NUMS / sizeof OPT_NUMS[0]; i++) {
        double *dst = (double *)((char *)o + OPT_NUMS[i].off);
        if ((v = mimo_cfg_get(c, n, OPT_NUMS[i].key, NULL))
            && (rc = mimo_cfg_get_double(
                    c, v, mimo_cfg_kw(w, sizeof w, OPT_NUMS[i].key, what),
                    OPT_NUMS[i].range, dst)))
            return rc;
    }
    if ((v = mimo_cfg_get(c, n, "nesterov", NULL))
        && (rc = mimo_cfg_get_bool(c, v,
                                   mimo_cfg_kw(w, sizeof w, "nesterov", what),
                                   &o->nesterov)))
        return rc;
    if ((v = mimo_cfg_get(c, n, "lazy", NULL))
        && (rc = mimo_cfg_get_bool(c, v, mimo_cfg_kw(w, sizeof w, "lazy", what),
                                   &o->lazy)))
        return rc;
    return 0;
}

static int conv_opt(cfg *c, yaml_node_t *n, mimo_opt_spec *o)
{
    int kind, rc;
    if (n->type == YAML_MAPPING_NODE)
        return conv_opt_map(c, n, o);
    if ((rc = mimo_cfg_get_enum(c, n, &mimo_cfg_enum_opt, "train.optimizer",
                                &kind)))
        return rc;
    o->kind = (mimo_opt_kind)kind;
    o->lr = o->kind == MIMO_OPT_SGD ? 0.01 : 0.001;
    return 0;
}

/* train.task_balancing: a method's name, or {type: NAME, alpha: A} (alpha:
 * gradnorm's only setting). */
static int conv_balancing(cfg *c, yaml_node_t *n, mimo_train_spec *t)
{
    static const char *const keys[] = {"type", "alpha"};
    const char *what = "train.task_balancing";
    yaml_node_t *ty = n, *a = NULL;
    int tb, rc;
    if (n->type == YAML_MAPPING_NODE) {
        if ((rc = mimo_cfg_check_keys(c, n, what, keys, 2)))
            return rc;
        if (!(ty = mimo_cfg_get(c, n, "type", NULL)))
            return mimo_cfg_err(c, n, "%s: missing 'type' (none, pcgrad, mgda_ub "
                                "or gradnorm)", what);
        a = mimo_cfg_get(c, n, "alpha", NULL);
    }
    if ((rc = mimo_cfg_get_enum(c, ty, &mimo_cfg_enum_balancing, "train", &tb)))
        return rc;
    t->task_balancing = (mimo_task_balancing)tb;
    if (a && tb != MIMO_BALANCING_GRADNORM)
        return mimo_cfg_err(c, a, "%s: alpha is gradnorm's setting, not %s's", what,
                            mimo_cfg_enum_balancing.name(tb));
    return a ? mimo_cfg_get_double(c, a, "train.task_balancing.alpha", R_NONNEG,
                                   &t->gradnorm_alpha)
             : 0;
}

/* An optional section: a mapping, or nothing at all. */
static int optional_section(cfg *c, yaml_node_t *n, const char *name,
                            const char *const *keys, int n_keys)
{
    if (mimo_cfg_is_null(n))
        return 0;
    if (n->type != YAML_MAPPING_NODE)
        return mimo_cfg_wrong(c, n, "a mapping", name);
    return mimo_cfg_check_keys(c, n, name, keys, n_keys);
}

/* ---- fields of the schedule, callbacks, checkpoint and data ----------- */

/* How one key is read: integers with a lower bound, numbers with a range,
 * booleans, monitor names (strdup'ed), modes; F_SKIP is read elsewhere. */
enum { F_SKIP, F_LONG0, F_LONG1, F_INT0, F_INT1, F_NUM, F_BOOL, F_MONITOR,
       F_MODE };

typedef struct {
    const char *key;
    size_t off;           /* offset of the field in its struct */
    int type;             /* F_* */
    int range;            /* R_* for F_NUM */
} field;

/* monitor: a non-empty name; which names exist is checked with the graph */
static int get_monitor(cfg *c, yaml_node_t *n, const char *what, char **dst)
{
    const char *e = "a monitored quantity like loss, val_loss or "
                    "val_<head>_<metric>", *s = NULL;
    int rc = mimo_cfg_scalar(c, n, e, what, &s);
    if (rc)
        return rc;
    if (!*s)
        return mimo_cfg_wrong(c, n, e, what);
    free(*dst);
    if (!(*dst = mimo_strdup(s)))
        return mimo_cfg_nomem(c);
    return 0;
}

static int get_count(cfg *c, yaml_node_t *n, const char *what, int type,
                     long long *x)
{
    int pos = type == F_LONG1 || type == F_INT1;
    long long hi = type == F_INT0 || type == F_INT1 ? INT_MAX : LONG_MAX;
    return mimo_cfg_get_int(c, n, what, pos, hi,
                            pos ? "an integer > 0" : "an integer >= 0", x);
}

/* Reads node n into the field f of the struct at base. */
static int conv_field(cfg *c, yaml_node_t *n, const char *sect,
                      const field *f, void *base)
{
    char w[MSG_MAX / 2];
    char *dst = (char *)base + f->off;
    long long x = 0;
    int rc = 0, e = 0;
    mimo_cfg_kw(w, sizeof w, f->key, sect);
    switch (f->type) {
    case F_LONG0: case F_LONG1:
        if (!(rc = get_count(c, n, w, f->type, &x)))
            *(long *)(void *)dst = (long)x;
        return rc;
    case F_INT0: case F_INT1:
        if (!(rc = get_count(c, n, w, f->type, &x)))
            *(int *)(void *)dst = (int)x;
        return rc;
    case F_NUM:
        return mimo_cfg_get_double(c, n, w, f->range, (double *)(void *)dst);
    case F_BOOL:
        return mimo_cfg_get_bool(c, n, w, (int *)(void *)dst);
    case F_MONITOR:
        return get_monitor(c, n, w, (char **)(void *)dst);
    case F_MODE:
        if (!(rc = mimo_cfg_get_enum(c, n, &mimo_cfg_enum_mode, sect, &e)))
            *(mimo_mode *)(void *)dst = (mimo_mode)e;
        return rc;
    default:
        return 0;
    }
}

/* Known keys of a field table, each once. */
static int check_fields(cfg *c, yaml_node_t *map, const char *sect,
                        const field *f, int nf)
{
    const char *keys[16];
    for (int i = 0; i < nf && i < 16; i++)
        keys[i] = f[i].key;
    return mimo_cfg_check_keys(c, map, sect, keys, nf < 16 ? nf : 16);
}

/* Every field of the table present in map, in table order. */
static int read_fields(cfg *c, yaml_node_t *map, const char *sect,
                       const field *f, int nf, void *base)
{
    for (int i = 0; i < nf; i++) {
        yaml_node_t *v = mimo_cfg_get(c, map, f[i].key, NULL);
        int rc = v ? conv_field(c, v, sect, &f[i], base) : 0;
        if (rc)
            return rc;
    }
    return 0;
}

#define FLD(T, key, type, range) {#key, offsetof(T, key), type, range}

static const field SCHED_FIELDS[] = {
    {"type", 0, F_SKIP, 0},
    FLD(mimo_sched_spec, step_size, F_LONG1, 0),
    FLD(mimo_sched_spec, gamma, F_NUM, R_GAMMA),
    FLD(mimo_sched_spec, min_lr, F_NUM, R_NONNEG),
    FLD(mimo_sched_spec, warmup_epochs, F_LONG0, 0)};

static const field PLATEAU_FIELDS[] = {
    FLD(mimo_plateau_spec, monitor, F_MONITOR, 0),
    FLD(mimo_plateau_spec, mode, F_MODE, 0),
    FLD(mimo_plateau_spec, factor, F_NUM, R_FACTOR),
    FLD(mimo_plateau_spec, patience, F_LONG0, 0),
    FLD(mimo_plateau_spec, min_delta, F_NUM, R_NONNEG),
    FLD(mimo_plateau_spec, cooldown, F_LONG0, 0),
    FLD(mimo_plateau_spec, min_lr, F_NUM, R_NONNEG)};

static const field EARLY_FIELDS[] = {
    FLD(mimo_early_spec, monitor, F_MONITOR, 0),
    FLD(mimo_early_spec, mode, F_MODE, 0),
    FLD(mimo_early_spec, patience, F_LONG0, 0),
    FLD(mimo_early_spec, min_delta, F_NUM, R_NONNEG),
    FLD(mimo_early_spec, restore_best, F_BOOL, 0)};

static const field CKPT_FIELDS[] = {
    FLD(mimo_ckpt_spec, every_epochs, F_LONG0, 0),
    FLD(mimo_ckpt_spec, every_steps, F_LONG0, 0),
    FLD(mimo_ckpt_spec, every_seconds, F_NUM, R_NONNEG),
    FLD(mimo_ckpt_spec, keep, F_INT1, 0),
    FLD(mimo_ckpt_spec, save_best, F_BOOL, 0),
    FLD(mimo_ckpt_spec, monitor, F_MONITOR, 0),
    FLD(mimo_ckpt_spec, mode, F_MODE, 0)};

static const field DATA_FIELDS[] = {
    FLD(mimo_data_spec, memory_limit_mb, F_NUM, R_POS),
    FLD(mimo_data_spec, prefetch, F_INT0, 0)};

/* Which schedule takes which key: warmup_epochs all, the rest one or two. */
static int sched_key_ok(mimo_sched_kind k, const char *key)
{
    if (strcmp(key, "step_size") == 0)
        return k == MIMO_SCHED_STEP;
    if (strcmp(key, "gamma") == 0)
        return k == MIMO_SCHED_STEP || k == MIMO_SCHED_EXPONENTIAL;
    if (strcmp(key, "min_lr") == 0)
        return k == MIMO_SCHED_COSINE;
    return 1;
}

/* The kind, and the gamma default that goes with it (step 0.1, exp 0.96). */
static void sched_kind(mimo_sched_spec *s, int kind)
{
    s->kind = (mimo_sched_kind)kind;
    s->gamma = s->kind == MIMO_SCHED_EXPONENTIAL ? 0.96 : 0.1;
}

/* lr_schedule: NAME or {type: NAME (default constant), KEY: VALUE, ...} */
static int conv_sched(cfg *c, yaml_node_t *n, mimo_sched_spec *s)
{
    const char *sect = "train.lr_schedule";
    yaml_node_t *t;
    yaml_node_pair_t *p;
    int rc, kind = MIMO_SCHED_CONSTANT;
    if (n->type != YAML_MAPPING_NODE) {
        if (!(rc = mimo_cfg_get_enum(c, n, &mimo_cfg_enum_sched, sect, &kind)))
            sched_kind(s, kind);
        return rc;
    }
    if ((rc = check_fields(c, n, sect, SCHED_FIELDS, NKEYS(SCHED_FIELDS))))
        return rc;
    if ((t = mimo_cfg_get(c, n, "type", NULL))
        && (rc = mimo_cfg_get_enum(c, t, &mimo_cfg_enum_sched, sect, &kind)))
        return rc;
    sched_kind(s, kind);
    for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = mimo_cfg_node_at(c, p->key);
        if (!sched_key_ok(s->kind, mimo_cfg_sval(k)))
            return mimo_cfg_err(c, k,
                                "key '%s' is not valid for the %s schedule",
                                mimo_cfg_sval(k), mimo_sched_name(s->kind));
    }
    return read_fields(c, n, sect, SCHED_FIELDS, NKEYS(SCHED_FIELDS), s);
}

/* A callback: true, false or a mapping; true or a mapping enables it. */
static int conv_callback(cfg *c, yaml_node_t *n, const char *sect,
                         const field *f, int nf, void *spec, int *enabled)
{
    int rc;
    if (n->type == YAML_MAPPING_NODE) {
        *enabled = 1;
        if ((rc = check_fields(c, n, sect, f, nf)))
            return rc;
        return read_fields(c, n, sect, f, nf, spec);
    }
    if (!mimo_cfg_is_bool_node(n))
        return mimo_cfg_wrong(c, n, "true, false or a mapping of settings",
                              sect);
    mimo_cfg_bool_word(mimo_cfg_sval(n), enabled);
    return 0;
}

static int conv_ckpt(cfg *c, yaml_node_t *n, mimo_ckpt_spec *k)
{
    const char *sect = "train.checkpoint";
    int rc;
    if (mimo_cfg_is_null(n))
        return 0;
    if (n->type != YAML_MAPPING_NODE)
        return mimo_cfg_wrong(c, n, "a mapping", sect);
    if ((rc = check_fields(c, n, sect, CKPT_FIELDS, NKEYS(CKPT_FIELDS))))
        return rc;
    return read_fields(c, n, sect, CKPT_FIELDS, NKEYS(CKPT_FIELDS), k);
}

/* The train sections after the scalar keys. */
static int conv_train_extras(cfg *c, yaml_node_t *n, mimo_train_spec *t)
{
    yaml_node_t *v;
    int rc = 0;
    if ((v = mimo_cfg_get(c, n, "lr_schedule", NULL))
        && (rc = conv_sched(c, v, &t->schedule)))
        return rc;
    if ((v = mimo_cfg_get(c, n, "reduce_lr_on_plateau", NULL))
        && (rc = conv_callback(c, v, "train.reduce_lr_on_plateau",
                               PLATEAU_FIELDS, NKEYS(PLATEAU_FIELDS),
                               &t->plateau, &t->plateau.enabled)))
        return rc;
    if ((v = mimo_cfg_get(c, n, "early_stopping", NULL))
        && (rc = conv_callback(c, v, "train.early_stopping", EARLY_FIELDS,
                               NKEYS(EARLY_FIELDS), &t->early,
                               &t->early.enabled)))
        return rc;
    if ((v = mimo_cfg_get(c, n, "checkpoint", NULL))
        && (rc = conv_ckpt(c, v, &t->checkpoint)))
        return rc;
    return 0;
}

/* train.accumulate: micro-steps per update. batch_size stays the update's
 * global batch (the epoch's steps, the lr schedule and a checkpoint's
 * position are counted in updates), so it must split into equal
 * micro-batches. */
static int conv_accumulate(cfg *c, yaml_node_t *n, mimo_train_spec *t)
{
    char w[MSG_MAX / 2];
    long long x;
    yaml_node_t *v = mimo_cfg_get(c, n, "accumulate", NULL);
    if (!v)
        return 0;
    int rc = mimo_cfg_get_int(c, v, mimo_cfg_kw(w, sizeof w, "accumulate", "train"),
                              1, 1L << 30, "an integer >= 1 (micro-steps per update)",
                              &x);
    if (rc)
        return rc;
    if (t->batch_size % x != 0)
        return mimo_cfg_err(c, v, "train.accumulate: %lld micro-steps do not divide "
                            "train.batch_size %ld (the update's global batch) into "
                            "equal micro-batches; use a divisor of it", x,
                            t->batch_size);
    t->accumulate = (long)x;
    return 0;
}

int mimo_cfg_conv_train(cfg *c, yaml_node_t *n, mimo_train_spec *t)
{
    char w[MSG_MAX / 2];
    yaml_node_t *v;
    long long x;
    int rc = optional_section(c, n, "train", TRAIN_KEYS, NKEYS(TRAIN_KEYS));
    if (rc || mimo_cfg_is_null(n))
        return rc;
    if ((v = mimo_cfg_get(c, n, "optimizer", NULL))
        && (rc = conv_opt(c, v, &t->opt)))
        return rc;
    if ((v = mimo_cfg_get(c, n, "batch_size", NULL))) {
        if ((rc = mimo_cfg_get_int(
                 c, v, mimo_cfg_kw(w, sizeof w, "batch_size", "train"), 1,
                 1L << 30, "an integer from 1 to 1073741824", &x)))
            return rc;
        t->batch_size = (long)x;
    }
    if ((v = mimo_cfg_get(c, n, "epochs", NULL))) {
        if ((rc = mimo_cfg_get_int(c, v,
                                   mimo_cfg_kw(w, sizeof w, "epochs", "train"),
                                   0, LONG_MAX, "an integer >= 0", &x)))
            return rc;
        t->epochs = (long)x;
    }
    if ((v = mimo_cfg_get(c, n, "seed", NULL))
        && (rc = mimo_cfg_get_ull(
                c, v, mimo_cfg_kw(w, sizeof w, "seed", "train"), &t->seed)))
        return rc;
    if ((v = mimo_cfg_get(c, n, "shuffle", NULL))
        && (rc = mimo_cfg_get_bool(c, v,
                                   mimo_cfg_kw(w, sizeof w, "shuffle", "train"),
                                   &t->shuffle)))
        return rc;
    if ((v = mimo_cfg_get(c, n, "validation_split", NULL))
        && (rc = mimo_cfg_get_double(
                c, v, mimo_cfg_kw(w, sizeof w, "validation_split", "train"),
                R_UNIT, &t->validation_split)))
        return rc;
    if ((v = mimo_cfg_get(c, n, "loss_weighting", NULL))) {
        int lw;
        if ((rc = mimo_cfg_get_enum(c, v, &mimo_cfg_enum_weighting, "train",
                                    &lw)))
            return rc;
        t->loss_weighting = (mimo_loss_weighting)lw;
    }
    if ((rc = conv_accumulate(c, n, t)))
        return rc;
    if ((v = mimo_cfg_get(c, n, "grad_diagnostics", NULL))
        && (rc = mimo_cfg_get_bool(c, v, mimo_cfg_kw(w, sizeof w, "grad_diagnostics",
                                                     "train"),
                                   &t->grad_diagnostics)))
        return rc;
    if ((v = mimo_cfg_get(c, n, "task_balancing", NULL))
        && (rc = conv_balancing(c, v, t)))
        return rc;
    if ((v = mimo_cfg_get(c, n, "precision", NULL))) {
        int p;
        if ((rc = mimo_cfg_get_enum(c, v, &mimo_cfg_enum_precision, "train", &p)))
            return rc;
        t->precision = (mimo_precision)p;
    }
    return conv_train_extras(c, n, t);
}

/* A data path (resolved as config_yaml.c's mimo_cfg_path says). */
static int conv_path(cfg *c, yaml_node_t *n, const char *key, char **dst)
{
    char w[MSG_MAX / 2];
    return mimo_cfg_path(c, n, mimo_cfg_kw(w, sizeof w, key, "data"), dst);
}

int mimo_cfg_conv_data(cfg *c, yaml_node_t *n, mimo_data_spec *d)
{
    yaml_node_t *v;
    int rc = optional_section(c, n, "data", DATA_KEYS, NKEYS(DATA_KEYS));
    if (rc || mimo_cfg_is_null(n))
        return rc;
    if ((v = mimo_cfg_get(c, n, "train", NULL))
        && (rc = conv_path(c, v, "train", &d->train)))
        return rc;
    if ((v = mimo_cfg_get(c, n, "val", NULL))
        && (rc = conv_path(c, v, "val", &d->val)))
        return rc;
    return read_fields(c, n, "data", DATA_FIELDS, NKEYS(DATA_FIELDS), d);
}

