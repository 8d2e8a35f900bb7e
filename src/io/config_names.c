/* config_names.c — names in a config: the enums (activations,
 * initializers, losses, optimizers, metrics, ...) read Keras' way (any
 * case, underscores or not, and Keras' aliases), the layer kinds, the
 * lists and typo hints of error messages, and Keras' spellings of keys
 * (learning_rate for lr), which the document takes as ours. */
#include "io/config_impl.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/strutil.h"
#include "core/bf16.h"
#include "core/kind.h"

/* ---- small string helpers ---------------------------------------------- */

int mimo_cfg_lower_eq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        int ca = (*a >= 'A' && *a <= 'Z') ? *a - 'A' + 'a' : *a;
        if (ca != *b)
            return 0;
    }
    return *a == *b;
}

int mimo_cfg_in_list(const char *s, const char *const *list, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return 1;
    return 0;
}

static int min3(int a, int b, int c)
{
    int m = a < b ? a : b;
    return m < c ? m : c;
}

/* Optimal string alignment distance (a swap counts 1); 99 if too long. */
/* Damerau-Levenshtein distance, case-insensitive (Keras users write ReLU). */
static int edit_distance(const char *ca, const char *cb)
{
    enum { L = 40 };
    size_t n = strlen(ca), m = strlen(cb);
    int d[L + 1][L + 1];
    char a[L + 1], b[L + 1];
    if (n > L || m > L)
        return 99;
    for (size_t i = 0; i <= n; i++)
        a[i] = ca[i] >= 'A' && ca[i] <= 'Z' ? (char)(ca[i] - 'A' + 'a') : ca[i];
    for (size_t j = 0; j <= m; j++)
        b[j] = cb[j] >= 'A' && cb[j] <= 'Z' ? (char)(cb[j] - 'A' + 'a') : cb[j];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            d[i][j] = min3(d[i - 1][j] + 1, d[i][j - 1] + 1,
                           d[i - 1][j - 1] + cost);
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]
                && d[i - 2][j - 2] + 1 < d[i][j])
                d[i][j] = d[i - 2][j - 2] + 1;
        }
    return d[n][m];
}

/* "; did you mean 'x'?" for the closest candidate within distance 2. */
void mimo_cfg_suggest(char *buf, size_t cap, const char *s,
                      const char *const *cands, int n)
{
    int best = 3;
    const char *pick = NULL;
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        int d = edit_distance(s, cands[i]);
        if (d < best && d < (int)strlen(cands[i])) {
            best = d;
            pick = cands[i];
        }
    }
    if (pick)
        snprintf(buf, cap, "; did you mean '%s'?", pick);
}

/* "a, b, c" */
void mimo_cfg_join(char *buf, size_t cap, const char *const *names, int n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && used < cap; i++) {
        int k = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "",
                         names[i]);
        if (k < 0)
            break;
        used += (size_t)k;
    }
}

const char *mimo_cfg_article(const char *word)
{
    return strchr("aeiou", word[0]) ? "an" : "a";
}

/* ---- enum names -------------------------------------------------------- */

/* The index of s among d's names and their Keras aliases, or -1. */
static int enum_find(const enum_desc *d, const char *s)
{
    int v = d->parse(s);
    for (int i = d->first; v < 0 && i < d->count && d->name(i); i++)
        if (mimo_same_name(s, d->name(i)))
            v = i;
    for (int k = 0; v < 0 && d->aliases && d->aliases[k]; k += 2)
        if (mimo_same_name(s, d->aliases[k]))
            v = d->parse(d->aliases[k + 1]);
    return v;
}

static const char *act_name(int i) { return mimo_act_name((mimo_act)i); }
static const char *init_name(int i)
{
    return mimo_init_name((mimo_init_kind)i);
}
static const char *loss_name(int i) { return mimo_loss_name((mimo_loss)i); }
static const char *opt_name(int i) { return mimo_opt_name((mimo_opt_kind)i); }

static const char *metric_name(int i)
{
    return i < MIMO_METRIC_COUNT ? mimo_metric_name(i) : NULL;
}

static const char *const ACT_ALIASES[] = {"silu", "swish", NULL};
const enum_desc mimo_cfg_enum_act = {
    "activation", mimo_act_parse, act_name, 0, MIMO_ACT_COUNT, ACT_ALIASES};
static const char *const INIT_ALIASES[] = {
    "random_uniform", "uniform", "Zeros", "zeros", NULL};
static const char *const LOSS_ALIASES[] = {
    "mean_squared_error", "mse", "mean_absolute_error", "mae",
    "huber_loss", "huber", NULL};
static const char *const METRIC_ALIASES[] = {
    "acc", "accuracy", "binary_accuracy", "accuracy", "categorical_accuracy",
    "accuracy", "sparse_categorical_accuracy", "accuracy",
    "mean_squared_error", "mse", "mean_absolute_error", "mae",
    "f1_score", "f1", "top_k_categorical_accuracy", "top_k_accuracy",
    "sparse_top_k_categorical_accuracy", "top_k_accuracy", "r2_score", "r2",
    NULL};
const enum_desc mimo_cfg_enum_init = {"initializer",   mimo_init_parse,
                                      init_name,       0,
                                      MIMO_INIT_COUNT, INIT_ALIASES};
const enum_desc mimo_cfg_enum_loss = {"loss", mimo_loss_parse, loss_name,
                                      1,      MIMO_LOSS_COUNT, LOSS_ALIASES};
const enum_desc mimo_cfg_enum_opt = {"optimizer", mimo_opt_parse, opt_name,
                                     0,           MIMO_OPT_COUNT, NULL};
const enum_desc mimo_cfg_enum_metric = {"metric",          mimo_metric_parse,
                                        metric_name,       0,
                                        MIMO_METRIC_COUNT, METRIC_ALIASES};
static const char *weighting_name(int i)
{
    return mimo_weighting_name((mimo_loss_weighting)i);
}
const enum_desc mimo_cfg_enum_weighting = {
    "loss_weighting", mimo_weighting_parse, weighting_name, 0, 2, NULL};

static const char *const balancing_names[MIMO_BALANCING_COUNT] = {"none", "pcgrad",
                                                                   "mgda_ub", "gradnorm"};
static const char *balancing_name(int i)
{
    return i >= 0 && i < MIMO_BALANCING_COUNT ? balancing_names[i] : "?";
}
static int balancing_parse(const char *s)
{
    for (int i = 0; i < MIMO_BALANCING_COUNT; i++)
        if (strcmp(s, balancing_names[i]) == 0)
            return i;
    return -1;
}
const enum_desc mimo_cfg_enum_balancing = {
    "task_balancing", balancing_parse, balancing_name, 0, MIMO_BALANCING_COUNT, NULL};

/* train.precision; Keras' policy names too */
static const char *precision_name(int i) { return mimo_precision_name(i); }
static const char *const PRECISION_ALIASES[] = {"mixed_bfloat16", "bf16", "bfloat16",
                                                "bf16", NULL};
const enum_desc mimo_cfg_enum_precision = {"precision", mimo_precision_parse,
                                           precision_name, 0, MIMO_PRECISION_COUNT,
                                           PRECISION_ALIASES};

static const char *sched_name(int i)
{
    return mimo_sched_name((mimo_sched_kind)i);
}
static const char *mode_name(int i) { return mimo_mode_name((mimo_mode)i); }

const enum_desc mimo_cfg_enum_sched = {"schedule", mimo_sched_parse, sched_name,
                                       0,          MIMO_SCHED_COUNT, NULL};
const enum_desc mimo_cfg_enum_mode = {"mode", mimo_mode_parse, mode_name, 0, 3,
                                      NULL};

/* "linear, relu, ..." and, for a typo, the hint. */
void mimo_cfg_enum_list(const enum_desc *d, const char *s, char *list,
                        size_t cap, char *hint, size_t hcap)
{
    const char *names[64] = {0}; /* the layer kinds are past 32 */
    int n = 0;
    for (int i = d->first; i < d->count && n < 64 && d->name(i); i++)
        names[n++] = d->name(i);
    mimo_cfg_join(list, cap, names, n);
    if (hint)
        mimo_cfg_suggest(hint, hcap, s ? s : "", names, n);
}

int mimo_cfg_get_enum(cfg *c, yaml_node_t *n, const enum_desc *d,
                      const char *what, int *v)
{
    char list[MSG_MAX / 2], hint[96], expected[MSG_MAX / 2 + 16];
    const char *s = NULL;
    *v = 0;
    mimo_cfg_enum_list(d, NULL, list, sizeof list, NULL, 0);
    snprintf(expected, sizeof expected, "one of: %s", list);
    if (n->type != YAML_SCALAR_NODE || mimo_cfg_is_null(n))
        return mimo_cfg_wrong(c, n, expected, what);
    s = mimo_cfg_sval(n);
    *v = enum_find(d, s);
    if (*v >= 0 && strlen(s) == n->data.scalar.length)
        return 0;
    mimo_cfg_enum_list(d, s, list, sizeof list, hint, sizeof hint);
    return mimo_cfg_err(c, n, "unknown %s '%s' in %s (expected one of: %s%s)",
                        d->kind, s, what, list, hint);
}

/* ---- layer kinds ------------------------------------------------------ */

static const char *layer_name(int i)
{
    const mimo_kind *k = mimo_kind_at(i);
    return k ? k->name : NULL;
}

/* The index in the kind table of the kind s names, Keras' way (Dense,
 * BatchNormalization: mimo_kind_find), or -1. */
static int layer_parse(const char *s)
{
    const mimo_kind *k = mimo_kind_find(s);
    for (int i = 0; k && mimo_kind_at(i); i++)
        if (mimo_kind_at(i) == k)
            return i;
    return -1;
}

/* (the count is no bound: names end where mimo_kind_at does, plug-in
 * kinds included) */
const enum_desc mimo_cfg_enum_layer = {"layer type", layer_parse, layer_name, 0,
                                       INT_MAX,      NULL};

/* ---- Keras spellings of keys ------------------------------------------ */

/* Keras' spellings of keys, and ours (the document keeps ours). */
static const char *const KEY_ALIASES[] = {
    "learning_rate", "lr", "beta_1", "beta1", "beta_2", "beta2",
    "restore_best_weights", "restore_best", NULL};

/* The key's own spelling for an alias of k[0, *klen), else k itself. */
const char *mimo_cfg_canonical_key(const char *k, size_t *klen)
{
    for (int i = 0; KEY_ALIASES[i]; i += 2)
        if (strlen(KEY_ALIASES[i]) == *klen && memcmp(KEY_ALIASES[i], k, *klen) == 0) {
            *klen = strlen(KEY_ALIASES[i + 1]);
            return KEY_ALIASES[i + 1];
        }
    return k;
}

/* Every mapping key of the document that is a Keras alias becomes ours. */
int mimo_cfg_canonical_keys(cfg *c)
{
    for (yaml_node_t *n = c->doc.nodes.start; n < c->doc.nodes.top; n++) {
        if (n->type != YAML_MAPPING_NODE)
            continue;
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
             p < n->data.mapping.pairs.top; p++) {
            yaml_node_t *k = mimo_cfg_node_at(c, p->key);
            size_t len = k->type == YAML_SCALAR_NODE ? k->data.scalar.length : 0;
            const char *to =
                len ? mimo_cfg_canonical_key(mimo_cfg_sval(k), &len) : NULL;
            if (!to || to == mimo_cfg_sval(k))
                continue;
            char *copy = mimo_strdup(to);
            if (!copy)
                return mimo_cfg_nomem(c);
            free(k->data.scalar.value); /* libyaml's allocator is malloc's */
            k->data.scalar.value = (yaml_char_t *)copy;
            k->data.scalar.length = len;
            c->rewritten = 1;
        }
    }
    return 0;
}
