/* config.c — YAML config text into a mimo_spec, with libyaml's document API.
 * Here: loading the document, --set overrides applied to it, re-emitting it
 * as text, and every check that needs no graph (keys, types, enum names).
 * Not here: `from` names, cycles and shapes (graph.c); defaults and enum
 * names (spec.c). */
#define _XOPEN_SOURCE 700 /* realpath */
#include "mimo/config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

#include "mimo/error.h"
#include "base/fsutil.h"
#include "base/strutil.h"
#include "core/kind.h"

#if defined(__GNUC__)
#define CFG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CFG_PRINTF(a, b)
#endif

#define MSG_MAX 1024       /* one error message */
#define SET_MAX_DEPTH 64   /* nesting of a --set value */
#define SET_MAX_NODES 4096 /* nodes of one --set value (aliases expanded) */

/* The parse state: the document, and which nodes came from which --set. */
typedef struct {
    yaml_document_t doc;
    int loaded;                /* doc must be deleted */
    const char *file;
    const char *const *sets;
    int n_sets;
    int n_orig;                /* nodes 1..n_orig come from the text */
    int *set_first;            /* first node index created by each set */
    const char *base;          /* the config file's directory (absolute),
                                * for its relative data paths; or NULL */
    int rewritten;             /* a path was resolved: emit the text */
} cfg;

/* ---- small string helpers ---------------------------------------------- */

#define NKEYS(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int lower_eq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        int ca = (*a >= 'A' && *a <= 'Z') ? *a - 'A' + 'a' : *a;
        if (ca != *b)
            return 0;
    }
    return *a == *b;
}

static int in_list(const char *s, const char *const *list, int n)
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
static void suggest(char *buf, size_t cap, const char *s,
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
static void join(char *buf, size_t cap, const char *const *names, int n)
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

static const char *article(const char *word)
{
    return strchr("aeiou", word[0]) ? "an" : "a";
}

/* ---- nodes and messages ------------------------------------------------ */

static yaml_node_t *node_at(cfg *c, int index)
{
    return yaml_document_get_node(&c->doc, index);
}

static int node_index(const cfg *c, const yaml_node_t *n)
{
    return (int)(n - c->doc.nodes.start) + 1;
}

static const char *sval(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static int is_null(const yaml_node_t *n)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    return n->type == YAML_SCALAR_NODE
        && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE
        && in_list(sval(n), nulls, 5);
}

static int seq_len(const yaml_node_t *seq)
{
    return (int)(seq->data.sequence.items.top - seq->data.sequence.items.start);
}

static int pair_count(const yaml_node_t *map)
{
    return (int)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
}

/* The --set that created node n, or -1 if n comes from the text. */
static int set_of(const cfg *c, const yaml_node_t *n)
{
    int idx = node_index(c, n), s = -1;
    if (idx <= c->n_orig)
        return -1;
    for (int i = 0; i < c->n_sets; i++)
        if (c->set_first[i] <= idx)
            s = i;
    return s;
}

static int set_path_len(const char *set)
{
    const char *eq = strchr(set, '=');
    return (int)(eq ? eq - set : (ptrdiff_t)strlen(set));
}

/* "FILE:LINE:COL" or "FILE: --set KEY.PATH" */
static void where(const cfg *c, const yaml_node_t *n, char *buf, size_t cap)
{
    int s = n ? set_of(c, n) : -1;
    if (!n)
        snprintf(buf, cap, "%s", c->file);
    else if (s >= 0)
        snprintf(buf, cap, "%s: --set %.*s", c->file,
                 set_path_len(c->sets[s]), c->sets[s]);
    else
        snprintf(buf, cap, "%s:%lu:%lu", c->file,
                 (unsigned long)n->start_mark.line + 1,
                 (unsigned long)n->start_mark.column + 1);
}

/* "line 3, column 5" or "--set KEY.PATH", for "first given at ..." */
static void where_short(const cfg *c, const yaml_node_t *n, char *buf,
                        size_t cap)
{
    int s = set_of(c, n);
    if (s >= 0)
        snprintf(buf, cap, "--set %.*s", set_path_len(c->sets[s]),
                 c->sets[s]);
    else
        snprintf(buf, cap, "line %lu, column %lu",
                 (unsigned long)n->start_mark.line + 1,
                 (unsigned long)n->start_mark.column + 1);
}

static mimo_pos pos_of(const cfg *c, const yaml_node_t *n)
{
    mimo_pos p = {0, 0};
    if (set_of(c, n) < 0) {
        size_t l = n->start_mark.line + 1, k = n->start_mark.column + 1;
        p.line = l > INT_MAX ? INT_MAX : (int)l;
        p.col = k > INT_MAX ? INT_MAX : (int)k;
    }
    return p;
}

/* Records "WHERE: message" for node n and returns MIMO_EINVAL. */
static int err(const cfg *c, const yaml_node_t *n, const char *fmt, ...)
    CFG_PRINTF(3, 4);
static int err(const cfg *c, const yaml_node_t *n, const char *fmt, ...)
{
    char loc[MSG_MAX], msg[MSG_MAX];
    va_list ap;
    where(c, n, loc, sizeof loc);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mimo_error(MIMO_EINVAL, "%s: %s", loc, msg);
}

/* The same for a position kept in the spec (line 0: from --set). */
static int err_at(const cfg *c, mimo_pos p, const char *fmt, ...) CFG_PRINTF(3, 4);
static int err_at(const cfg *c, mimo_pos p, const char *fmt, ...)
{
    char msg[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p.line > 0)
        return mimo_error(MIMO_EINVAL, "%s:%d:%d: %s", c->file, p.line, p.col, msg);
    return mimo_error(MIMO_EINVAL, "%s: (--set) %s", c->file, msg);
}

static int nomem(const cfg *c)
{
    return mimo_error(MIMO_ENOMEM, "%s: out of memory reading the config",
                      c->file);
}

/* "a mapping", "a list", "nothing", "'text'" */
static void describe(const yaml_node_t *n, char *buf, size_t cap)
{
    if (n->type == YAML_MAPPING_NODE)
        snprintf(buf, cap, "%s", pair_count(n) ? "a mapping"
                                               : "an empty mapping");
    else if (n->type == YAML_SEQUENCE_NODE)
        snprintf(buf, cap, "%s", seq_len(n) ? "a list" : "an empty list");
    else if (is_null(n))
        snprintf(buf, cap, "nothing");
    else
        snprintf(buf, cap, "'%.60s'", sval(n));
}

static int wrong(const cfg *c, const yaml_node_t *n, const char *expected,
                 const char *what)
{
    char got[80];
    describe(n, got, sizeof got);
    return err(c, n, "expected %s for %s, got %s", expected, what, got);
}

/* ---- mappings: lookup, unknown and duplicate keys ---------------------- */

/* Value of `key` in map (first match), its key node in *knode. */
static yaml_node_t *get(cfg *c, yaml_node_t *map, const char *key,
                        yaml_node_t **knode)
{
    yaml_node_pair_t *p;
    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = node_at(c, p->key);
        if (k && k->type == YAML_SCALAR_NODE && strcmp(sval(k), key) == 0) {
            if (knode)
                *knode = k;
            return node_at(c, p->value);
        }
    }
    return NULL;
}

typedef struct {
    const char *name;
    yaml_node_t *node;
    int order;
} entry;

static int cmp_entry(const void *pa, const void *pb)
{
    const entry *a = pa, *b = pb;
    int r = strcmp(a->name, b->name);
    return r ? r : (a->order > b->order) - (a->order < b->order);
}

/* Finds the earliest second use of a name; 1 if found, with both nodes. */
static int find_dup(entry *e, int n, yaml_node_t **first, yaml_node_t **again)
{
    int best = -1;
    qsort(e, (size_t)n, sizeof *e, cmp_entry);
    for (int i = 1; i < n; i++) {
        int second = strcmp(e[i].name, e[i - 1].name) == 0
            && (i == 1 || strcmp(e[i].name, e[i - 2].name) != 0);
        if (second && (best < 0 || e[i].order < e[best].order))
            best = i;
    }
    if (best < 0)
        return 0;
    *first = e[best - 1].node;
    *again = e[best].node;
    return 1;
}

/* A key must be a non-empty name without NUL bytes. */
static int key_name(cfg *c, yaml_node_t *k, const char *what)
{
    if (k->type != YAML_SCALAR_NODE || is_null(k)
        || strlen(sval(k)) != k->data.scalar.length)
        return wrong(c, k, "a key name", what);
    return 0;
}

static int check_dups(cfg *c, yaml_node_t *map, const char *what)
{
    int n = pair_count(map), rc = 0;
    yaml_node_t *first, *again;
    entry *e;
    if (n < 2)
        return 0;
    e = calloc((size_t)n, sizeof *e);
    if (!e)
        return nomem(c);
    for (int i = 0; i < n; i++) {
        e[i].node = node_at(c, map->data.mapping.pairs.start[i].key);
        e[i].name = sval(e[i].node);
        e[i].order = i;
    }
    if (find_dup(e, n, &first, &again)) {
        char at[MSG_MAX];
        where_short(c, first, at, sizeof at);
        rc = err(c, again, "duplicate key '%s' in %s (first given at %s)",
                 sval(again), what, at);
    }
    free(e);
    return rc;
}

/* Every key a name, known (if allowed != NULL) and given once. */
static int check_keys(cfg *c, yaml_node_t *map, const char *what,
                      const char *const *allowed, int n_allowed)
{
    yaml_node_pair_t *p;
    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = node_at(c, p->key);
        int rc = key_name(c, k, what);
        if (rc)
            return rc;
        if (allowed && !in_list(sval(k), allowed, n_allowed)) {
            char list[MSG_MAX / 2], hint[96];
            join(list, sizeof list, allowed, n_allowed);
            suggest(hint, sizeof hint, sval(k), allowed, n_allowed);
            if (!hint[0] && strchr(sval(k), ':'))
                snprintf(hint, sizeof hint, "; put a space after ':'");
            return err(c, k, "unknown key '%s' in %s (expected one of: %s%s)",
                       sval(k), what, list, hint);
        }
    }
    return check_dups(c, map, what);
}

/* ---- scalars ----------------------------------------------------------- */

/* A non-null scalar without NUL bytes. */
static int scalar(cfg *c, yaml_node_t *n, const char *expected,
                  const char *what, const char **s)
{
    if (n->type != YAML_SCALAR_NODE || is_null(n)
        || strlen(sval(n)) != n->data.scalar.length)
        return wrong(c, n, expected, what);
    *s = sval(n);
    return 0;
}

static int get_name(cfg *c, yaml_node_t *n, const char *what, const char **s)
{
    return scalar(c, n, "a name", what, s);
}

/* Decimal integer: 0 ok, 1 not an integer, 2 out of range. */
static int parse_ll(const char *s, long long *v)
{
    const char *p = s + (*s == '+' || *s == '-');
    if (!*p)
        return 1;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            return 1;
    errno = 0;
    *v = strtoll(s, NULL, 10);
    return errno == ERANGE ? 2 : 0;
}

static int get_int(cfg *c, yaml_node_t *n, const char *what, long long lo,
                   long long hi, const char *expected, long long *v)
{
    const char *s = NULL;
    int rc = scalar(c, n, expected, what, &s), r;
    if (rc)
        return rc;
    r = parse_ll(s, v);
    if (r == 1)
        return wrong(c, n, expected, what);
    if (r == 2 || *v > hi)
        return err(c, n, "%s is too large for %s (expected %s)", s, what,
                   expected);
    if (*v < lo)
        return wrong(c, n, expected, what);
    return 0;
}

static int get_ull(cfg *c, yaml_node_t *n, const char *what,
                   unsigned long long *v)
{
    const char *s = NULL, *expected = "a non-negative integer";
    int rc = scalar(c, n, expected, what, &s);
    const char *p;
    if (rc)
        return rc;
    p = s + (*s == '+');
    if (!*p)
        return wrong(c, n, expected, what);
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            return wrong(c, n, expected, what);
    errno = 0;
    *v = strtoull(p, NULL, 10);
    if (errno == ERANGE)
        return err(c, n, "%s is too large for %s (expected %s)", s, what,
                   expected);
    return 0;
}

/* Number ranges: any, (0, inf), [0, inf), [0, 1), (0, 1] (decay factors
 * that may be 1), (0, 1) (factors that must shrink). */
enum { R_ANY, R_POS, R_NONNEG, R_UNIT, R_GAMMA, R_FACTOR };

static int in_range(int range, double v)
{
    switch (range) {
    case R_POS:
        return v > 0;
    case R_NONNEG:
        return v >= 0;
    case R_UNIT:
        return v >= 0 && v < 1;
    case R_GAMMA:
        return v > 0 && v <= 1;
    case R_FACTOR:
        return v > 0 && v < 1;
    default:
        return 1;
    }
}

static int get_double(cfg *c, yaml_node_t *n, const char *what, int range,
                      double *v)
{
    static const char *const expect[] = {
        "a number", "a number > 0", "a number >= 0", "a number in [0, 1)",
        "a number in (0, 1]", "a number in (0, 1)"};
    const char *s = NULL, *e = expect[range];
    char *end;
    int rc = scalar(c, n, e, what, &s);
    if (rc)
        return rc;
    *v = strtod(s, &end);
    if (end == s || *end)
        return wrong(c, n, e, what);
    if (!isfinite(*v))
        return err(c, n, "expected %s for %s, got %s (NaN and Inf are not "
                   "allowed)", e, what, s);
    if (!in_range(range, *v))
        return wrong(c, n, e, what);
    return 0;
}

/* YAML 1.1 booleans, any case: 1 and *v set when s is one. */
static int bool_word(const char *s, int *v)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    for (int i = 0; i < 3; i++) {
        if (lower_eq(s, yes[i]) || lower_eq(s, no[i])) {
            *v = lower_eq(s, yes[i]);
            return 1;
        }
    }
    return 0;
}

static int is_bool_node(const yaml_node_t *n)
{
    int v;
    return n->type == YAML_SCALAR_NODE && !is_null(n)
        && strlen(sval(n)) == n->data.scalar.length && bool_word(sval(n), &v);
}

static int get_bool(cfg *c, yaml_node_t *n, const char *what, int *v)
{
    const char *e = "true or false", *s = NULL;
    int rc = scalar(c, n, e, what, &s);
    if (rc)
        return rc;
    if (bool_word(s, v))
        return 0;
    return wrong(c, n, e, what);
}

/* ---- enum names -------------------------------------------------------- */

typedef struct {
    const char *kind;            /* "activation" */
    int (*parse)(const char *);
    const char *(*name)(int);
    int first, count;
    const char *const *aliases;  /* pairs: Keras' name, ours; NULL-ended */
} enum_desc;

/* Whether a and b name the same thing, Keras' way: case and underscores
 * do not matter (ReLU = relu, BatchNormalization = batch_normalization). */
static int same_name(const char *a, const char *b)
{
    for (;;) {
        while (*a == '_')
            a++;
        while (*b == '_')
            b++;
        if (!*a || !*b)
            return !*a && !*b;
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a;
        char y = *b >= 'A' && *b <= 'Z' ? (char)(*b - 'A' + 'a') : *b;
        if (x != y)
            return 0;
        a++, b++;
    }
}

/* The index of s among d's names and their Keras aliases, or -1. */
static int enum_find(const enum_desc *d, const char *s)
{
    int v = d->parse(s);
    for (int i = d->first; v < 0 && i < d->count && d->name(i); i++)
        if (same_name(s, d->name(i)))
            v = i;
    for (int k = 0; v < 0 && d->aliases && d->aliases[k]; k += 2)
        if (same_name(s, d->aliases[k]))
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

static const enum_desc E_ACT = {"activation", mimo_act_parse, act_name, 0,
                                MIMO_ACT_COUNT, NULL};
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
static const enum_desc E_INIT = {"initializer", mimo_init_parse, init_name,
                                 0, MIMO_INIT_COUNT, INIT_ALIASES};
static const enum_desc E_LOSS = {"loss", mimo_loss_parse, loss_name, 1,
                                 MIMO_LOSS_COUNT, LOSS_ALIASES};
static const enum_desc E_OPT = {"optimizer", mimo_opt_parse, opt_name, 0,
                                MIMO_OPT_COUNT, NULL};
static const enum_desc E_METRIC = {"metric", mimo_metric_parse, metric_name, 0,
                                   MIMO_METRIC_COUNT, METRIC_ALIASES};
static const char *weighting_name(int i)
{
    return mimo_weighting_name((mimo_loss_weighting)i);
}
static const enum_desc E_WEIGHTING = {"loss_weighting", mimo_weighting_parse,
                                      weighting_name, 0, 2, NULL};

static const char *sched_name(int i)
{
    return mimo_sched_name((mimo_sched_kind)i);
}
static const char *mode_name(int i) { return mimo_mode_name((mimo_mode)i); }

static const enum_desc E_SCHED = {"schedule", mimo_sched_parse, sched_name,
                                  0, MIMO_SCHED_COUNT, NULL};
static const enum_desc E_MODE = {"mode", mimo_mode_parse, mode_name, 0, 3, NULL};

/* "linear, relu, ..." and, for a typo, the hint. */
static void enum_list(const enum_desc *d, const char *s, char *list,
                      size_t cap, char *hint, size_t hcap)
{
    const char *names[32] = {0};
    int n = 0;
    for (int i = d->first; i < d->count && n < 32 && d->name(i); i++)
        names[n++] = d->name(i);
    join(list, cap, names, n);
    if (hint)
        suggest(hint, hcap, s ? s : "", names, n);
}

static int get_enum(cfg *c, yaml_node_t *n, const enum_desc *d,
                    const char *what, int *v)
{
    char list[MSG_MAX / 2], hint[96], expected[MSG_MAX / 2 + 16];
    const char *s = NULL;
    *v = 0;
    enum_list(d, NULL, list, sizeof list, NULL, 0);
    snprintf(expected, sizeof expected, "one of: %s", list);
    if (n->type != YAML_SCALAR_NODE || is_null(n))
        return wrong(c, n, expected, what);
    s = sval(n);
    *v = enum_find(d, s);
    if (*v >= 0 && strlen(s) == n->data.scalar.length)
        return 0;
    enum_list(d, s, list, sizeof list, hint, sizeof hint);
    return err(c, n, "unknown %s '%s' in %s (expected one of: %s%s)",
               d->kind, s, what, list, hint);
}

/* Error for a required key missing in the item named by node `at`. */
static int missing(cfg *c, yaml_node_t *at, const char *what, const char *key,
                   const char *expected)
{
    return err(c, at, "%s has no '%s' (expected %s)", what, key, expected);
}

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
    if (n->type == YAML_SCALAR_NODE && !is_null(n)) {
        int rc = get_int(c, n, what, 1, INT_MAX, "an integer > 0", &v);
        *shape = (mimo_shape){1, {(int)v}};
        return rc;
    }
    if (n->type != YAML_SEQUENCE_NODE || seq_len(n) == 0 ||
        seq_len(n) > MIMO_SAMPLE_RANK)
        return wrong(c, n, e, what);
    for (it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        int rc = get_int(c, node_at(c, *it), what, 1, INT_MAX,
                         "an integer > 0", &v);
        if (rc)
            return rc;
        if (prod > INT_MAX / v)
            return err(c, n, "shape of %s is too large (more than %d "
                       "features)", what, INT_MAX);
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
    snprintf(what, sizeof what, "input '%s'", sval(key));
    if (val->type != YAML_MAPPING_NODE)
        return wrong(c, val, "a mapping {shape: N}", what);
    if ((rc = check_keys(c, val, what, INPUT_KEYS, 2)))
        return rc;
    shape = get(c, val, "shape", NULL);
    if (!shape)
        return missing(c, key, what, "shape", "shape: N or [N, ...]");
    snprintf(w2, sizeof w2, "'shape' of %s", what);
    if ((rc = get_shape(c, shape, w2, &in->shape)))
        return rc;
    yaml_node_t *dt = get(c, val, "dtype", NULL);
    int d = 0;
    const mimo_arg a = {.key = "dtype", .type = MIMO_ARG_CHOICE, .choices = DTYPES};
    snprintf(w2, sizeof w2, "'dtype' of %s", what);
    if (dt && (rc = get_choice(c, dt, w2, &a, &d)))
        return rc;
    in->dtype = d ? MIMO_DTYPE_INT32 : MIMO_DTYPE_FLOAT32;
    return 0;
}

/* A section mapping NAME -> item: non-empty, names unique. */
static int section(cfg *c, yaml_node_t *n, const char *name,
                   const char *example)
{
    char e[MSG_MAX / 4];
    snprintf(e, sizeof e, "a mapping like %s", example);
    if (is_null(n) || (n->type == YAML_MAPPING_NODE && !pair_count(n)))
        return err(c, n, "empty %s (expected %s)", name, e);
    if (n->type != YAML_MAPPING_NODE)
        return wrong(c, n, e, name);
    return check_keys(c, n, name, NULL, 0);
}

static int conv_inputs(cfg *c, yaml_node_t *n, mimo_spec *s)
{
    int rc = section(c, n, "inputs", "{x1: {shape: 5}}");
    yaml_node_pair_t *p;
    if (rc)
        return rc;
    s->inputs = calloc((size_t)pair_count(n), sizeof *s->inputs);
    if (!s->inputs)
        return nomem(c);
    for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = node_at(c, p->key);
        mimo_input_spec *in = &s->inputs[s->n_inputs++];
        if (!(in->name = mimo_strdup(sval(k))))
            return nomem(c);
        in->pos = pos_of(c, k);
        if ((rc = conv_input(c, k, node_at(c, p->value), in)))
            return rc;
    }
    return 0;
}

/* ---- layers ------------------------------------------------------------
 * A layer's keys are type, from, and its kind's (core/kind.h): the kind's
 * arg table says each key's type, bounds and default. */

static const char *const INIT_KEYS[] = {"type", "value", "min", "max"};

/* "'units' in layer 'h1'" */
static const char *kw(char *buf, size_t cap, const char *key, const char *what)
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
    yaml_node_t *t = get(c, n, "type", NULL), *k = NULL, *v;
    int rc = check_keys(c, n, what, INIT_KEYS, 4), kind;
    char w[MSG_MAX];
    if (rc)
        return rc;
    if (!t) {
        char list[MSG_MAX / 2];
        enum_list(&E_INIT, NULL, list, sizeof list, NULL, 0);
        return err(c, n, "%s has no 'type' (expected one of: %s)", what, list);
    }
    if ((rc = get_enum(c, t, &E_INIT, what, &kind)))
        return rc;
    in->kind = (mimo_init_kind)kind;
    init_defaults(in);
    if (((v = get(c, n, "value", &k)) && in->kind != MIMO_INIT_CONSTANT)
        || ((v = get(c, n, "min", &k)) && in->kind != MIMO_INIT_UNIFORM)
        || ((v = get(c, n, "max", &k)) && in->kind != MIMO_INIT_UNIFORM))
        return err(c, k, "key '%s' is not valid for %s %s initializer",
                   sval(k), article(sval(t)), sval(t));
    if ((v = get(c, n, "value", NULL))
        && (rc = get_double(c, v, kw(w, sizeof w, "value", what), R_ANY,
                            &in->a)))
        return rc;
    if ((v = get(c, n, "min", NULL))
        && (rc = get_double(c, v, kw(w, sizeof w, "min", what), R_ANY,
                            &in->a)))
        return rc;
    if ((v = get(c, n, "max", NULL))
        && (rc = get_double(c, v, kw(w, sizeof w, "max", what), R_ANY,
                            &in->b)))
        return rc;
    if (in->kind == MIMO_INIT_UNIFORM && !(in->a <= in->b))
        return err(c, n, "%s has min %g > max %g", what, in->a, in->b);
    return 0;
}

static int conv_init(cfg *c, yaml_node_t *n, const char *what, mimo_init *in)
{
    int kind, rc;
    if (n->type == YAML_MAPPING_NODE)
        return conv_init_map(c, n, what, in);
    if ((rc = get_enum(c, n, &E_INIT, what, &kind)))
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
        count = seq_len(n);
    if (n->type == YAML_MAPPING_NODE || count == 0)
        return wrong(c, n, "a name or a non-empty list of names", what);
    l->from = calloc((size_t)count, sizeof *l->from);
    l->from_pos = calloc((size_t)count, sizeof *l->from_pos);
    if (!l->from || !l->from_pos)
        return nomem(c);
    for (int i = 0; i < count; i++) {
        yaml_node_t *it = n->type == YAML_SEQUENCE_NODE
            ? node_at(c, n->data.sequence.items.start[i]) : n;
        if ((rc = get_name(c, it, what, &s)))
            return rc;
        if (!(l->from[i] = mimo_strdup(s)))
            return nomem(c);
        l->from_pos[i] = pos_of(c, it);
        l->n_from = i + 1;
    }
    return 0;
}

/* A real within the arg's bounds. */
static int get_bounded(cfg *c, yaml_node_t *n, const char *what,
                       const mimo_arg *a, double *v)
{
    int rc = get_double(c, n, what, R_ANY, v);
    if (rc)
        return rc;
    int low = (a->excl & 1) ? *v > a->lo : *v >= a->lo;
    int high = (a->excl & 2) ? *v < a->hi : *v <= a->hi;
    return low && high ? 0 : wrong(c, n, a->expect, what);
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
        int len = seq_len(n);
        if (len < 1 || len > MIMO_MAX_RANK)
            return wrong(c, n, e, what);
        for (int i = 0; i < len; i++) {
            rc = get_int(c, node_at(c, n->data.sequence.items.start[i]), what,
                         (long long)a->lo, (long long)a->hi, a->expect, &x);
            if (rc)
                return rc;
            v->v[i] = (int)x;
        }
        v->n = len;
        return 0;
    }
    if (n->type != YAML_SCALAR_NODE)
        return wrong(c, n, e, what);
    if ((rc = get_int(c, n, what, (long long)a->lo, (long long)a->hi, a->expect,
                      &x)))
        return rc;
    v->n = 1, v->v[0] = (int)x;
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
    join(list, sizeof list, a->choices, count);
    snprintf(e, sizeof e, "one of: %s", list);
    int rc = scalar(c, n, e, what, &s);
    if (rc)
        return rc;
    for (int i = 0; i < count; i++)
        if (strcmp(s, a->choices[i]) == 0) {
            *v = i;
            return 0;
        }
    suggest(hint, sizeof hint, s, a->choices, count);
    return err(c, n, "unknown value '%s' for %s (expected %s%s)", s, what, e,
               hint);
}

/* Reads the value of one of a kind's keys into the settings struct. */
static int conv_arg(cfg *c, yaml_node_t *v, const char *what,
                    const mimo_arg *a, void *args)
{
    char w[MSG_MAX / 2];
    void *dst = (char *)args + a->offset;
    const char *s = NULL;
    long long i;
    int rc, e;
    kw(w, sizeof w, a->key, what);
    switch (a->type) {
    case MIMO_ARG_INT:
        rc = get_int(c, v, w, (long long)a->lo, (long long)a->hi, a->expect, &i);
        if (!rc)
            *(int *)dst = (int)i;
        return rc;
    case MIMO_ARG_REAL: return get_bounded(c, v, w, a, (double *)dst);
    case MIMO_ARG_BOOL: return get_bool(c, v, w, (int *)dst);
    case MIMO_ARG_ACT:
        rc = get_enum(c, v, &E_ACT, what, &e);
        if (!rc)
            *(mimo_act *)dst = (mimo_act)e;
        return rc;
    case MIMO_ARG_INIT: return conv_init(c, v, w, (mimo_init *)dst);
    case MIMO_ARG_INTS: return get_ints(c, v, w, a, (mimo_ints *)dst);
    case MIMO_ARG_CHOICE: return get_choice(c, v, w, a, (int *)dst);
    case MIMO_ARG_NAME:
        if ((rc = get_name(c, v, w, &s)))
            return rc;
        free(*(char **)dst);
        return (*(char **)dst = mimo_strdup(s)) ? 0 : nomem(c);
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

/* Every key of the layer is a common one or one of its kind's. */
static int check_layer_keys(cfg *c, yaml_node_t *val, const char *what,
                            yaml_node_t *t, const mimo_kind *kind)
{
    const char *keys[64] = {"type", "from", "shares", "trainable"};
    int n = 4;
    for (int i = 0; i < kind->n_args && n < 64; i++)
        keys[n++] = kind->args[i].key;
    for (yaml_node_pair_t *p = val->data.mapping.pairs.start;
         p < val->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(c, p->key);
        char list[MSG_MAX / 2], hint[96];
        if (in_list(sval(k), keys, n))
            continue;
        if (kinds_taking(sval(k), list, sizeof list))
            return err(c, k, "key '%s' is not valid for %s %s layer (only %s "
                       "layers take it)", sval(k), article(sval(t)), sval(t),
                       list);
        join(list, sizeof list, keys, n);
        suggest(hint, sizeof hint, sval(k), keys, n);
        if (!hint[0] && strchr(sval(k), ':'))
            snprintf(hint, sizeof hint, "; put a space after ':'");
        return err(c, k, "unknown key '%s' in %s (expected one of: %s%s)",
                   sval(k), what, list, hint);
    }
    return 0;
}

/* The kind's keys, in its table's order, then its own checks. */
static int conv_kind_args(cfg *c, yaml_node_t *key, yaml_node_t *val,
                          const char *what, mimo_layer_spec *l)
{
    const mimo_kind *kind = l->kind;
    char msg[MSG_MAX / 2];
    int rc;
    for (int i = 0; i < kind->n_args; i++) {
        const mimo_arg *a = &kind->args[i];
        yaml_node_t *v = get(c, val, a->key, NULL);
        if (!v && a->required) {
            char list[MSG_MAX / 2], e[MSG_MAX / 2 + 16];
            if (a->type == MIMO_ARG_ACT) {
                enum_list(&E_ACT, NULL, list, sizeof list, NULL, 0);
                snprintf(e, sizeof e, "one of: %s", list);
            } else
                snprintf(e, sizeof e, "%s", a->expect ? a->expect : "a value");
            return missing(c, key, what, a->key, e);
        }
        if (v && (rc = conv_arg(c, v, what, a, l->args)))
            return rc;
    }
    msg[0] = '\0';
    if (kind->finish && kind->finish(l->args, msg, sizeof msg) < 0)
        return err(c, key, "%s: %s", what, msg[0] ? msg : "invalid settings");
    return 0;
}

static const char *layer_name(int i)
{
    const mimo_kind *k = mimo_kind_at(i);
    return k ? k->name : NULL;
}

/* A kind by its name, Keras' way (Dense, BatchNormalization, ...): any
 * case, underscores or not, or one of the kind's aliases. */
static int layer_parse(const char *s)
{
    for (int i = 0; mimo_kind_at(i); i++) {
        const mimo_kind *k = mimo_kind_at(i);
        if (same_name(k->name, s))
            return i;
        for (int a = 0; k->aliases && k->aliases[a]; a++)
            if (same_name(k->aliases[a], s))
                return i;
    }
    return -1;
}

static const enum_desc E_LAYER = {"layer type", layer_parse, layer_name, 0, 64,
                                  NULL};

/* `shares: LAYER`: the settings come from LAYER (conv_layers copies them
 * once every layer is read), so no other key of the kind is given. */
static int conv_shares(cfg *c, yaml_node_t *val, yaml_node_t *v,
                       const char *what, mimo_layer_spec *l)
{
    char w[MSG_MAX / 2];
    const char *s = NULL;
    int rc = get_name(c, v, kw(w, sizeof w, "shares", what), &s);
    if (rc)
        return rc;
    for (yaml_node_pair_t *p = val->data.mapping.pairs.start;
         p < val->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(c, p->key);
        if (!in_list(sval(k), LAYER_COMMON, 4) || strcmp(sval(k), "trainable") == 0)
            return err(c, k, "key '%s' is not valid in %s, which shares '%s': a "
                       "shared layer takes the settings%s of the layer it shares",
                       sval(k), what, s, strcmp(sval(k), "trainable") == 0
                       ? " and trainability" : "");
    }
    l->shares_pos = pos_of(c, v);
    return (l->shares = mimo_strdup(s)) ? 0 : nomem(c);
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
            return err_at(c, l->shares_pos, "layer '%s' shares '%s', which "
                          "is not a layer", l->name, s->layers[j].shares);
        if (next == i)
            return err_at(c, l->shares_pos, "layer '%s' shares its own "
                          "parameters (through 'shares')", l->name);
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
        return nomem(c);
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
            rc = err_at(c, l->shares_pos, "layer '%s' is %s %s layer but shares "
                        "'%s', %s %s layer; a shared layer has the type of the "
                        "layer it shares", l->name, article(l->kind->name),
                        l->kind->name, o->name, article(o->kind->name),
                        o->kind->name);
            continue;
        }
        void *copy = mimo_kind_args_copy(o->kind, o->args);
        if (!copy) {
            rc = nomem(c);
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
    snprintf(what, sizeof what, "layer '%s'", sval(key));
    if (val->type != YAML_MAPPING_NODE)
        return wrong(c, val, "a mapping {type: ..., from: ...}", what);
    if ((rc = check_keys(c, val, what, NULL, 0)))
        return rc;
    if (!(t = get(c, val, "type", NULL))) {
        enum_list(&E_LAYER, NULL, list, sizeof list, NULL, 0);
        return err(c, key, "%s has no 'type' (expected one of: %s)", what,
                   list);
    }
    if ((rc = get_enum(c, t, &E_LAYER, what, &type)))
        return rc;
    l->kind = mimo_kind_at(type);
    if (!(l->args = mimo_kind_args_new(l->kind)))
        return nomem(c);
    if ((rc = check_layer_keys(c, val, what, t, l->kind)))
        return rc;
    if (!(v = get(c, val, "from", NULL)))
        return missing(c, key, what, "from", "a name or a list of names");
    if ((rc = conv_from(c, v, kw(w, sizeof w, "from", what), l)))
        return rc;
    l->trainable = 1;
    l->trainable_pos = (mimo_pos){-1, -1}; /* not given */
    if ((v = get(c, val, "trainable", NULL))) {
        if ((rc = get_bool(c, v, kw(w, sizeof w, "trainable", what), &l->trainable)))
            return rc;
        l->trainable_pos = pos_of(c, v);
    }
    if ((v = get(c, val, "shares", NULL)))
        return conv_shares(c, val, v, what, l);
    return conv_kind_args(c, key, val, what, l);
}

static int conv_layers(cfg *c, yaml_node_t *n, mimo_spec *s)
{
    int rc = section(c, n, "layers", "{h1: {type: dense, units: 4, from: x1}}");
    yaml_node_pair_t *p;
    if (rc)
        return rc;
    s->layers = calloc((size_t)pair_count(n), sizeof *s->layers);
    if (!s->layers)
        return nomem(c);
    for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = node_at(c, p->key);
        mimo_layer_spec *l = &s->layers[s->n_layers++];
        if (!(l->name = mimo_strdup(sval(k))))
            return nomem(c);
        l->pos = pos_of(c, k);
        if ((rc = conv_layer(c, k, node_at(c, p->value), l)))
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
        return err(c, it, "metric '%s' needs class labels, but %s has the %s "
                   "loss (use it on a binary_crossentropy, "
                   "categorical_crossentropy or sparse_categorical_crossentropy "
                   "head)", mimo_metric_name(m), what, mimo_loss_name(l));
    if (bit == MIMO_METRIC_TOP_K && l == MIMO_LOSS_BCE)
        return err(c, it, "metric 'top_k_accuracy' needs a categorical head, "
                   "but %s is binary (binary_crossentropy)", what);
    return 0;
}

static int conv_metrics(cfg *c, yaml_node_t *n, const char *what,
                        mimo_output_spec *o)
{
    int count = 1, m, rc;
    if (n->type == YAML_SEQUENCE_NODE)
        count = seq_len(n);
    for (int i = 0; i < count; i++) {
        yaml_node_t *it = n->type == YAML_SEQUENCE_NODE
            ? node_at(c, n->data.sequence.items.start[i]) : n;
        if ((rc = get_enum(c, it, &E_METRIC, what, &m)) ||
            (rc = metric_fits(c, it, what, m, o->loss)))
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
    int rc = scalar(c, n, e, kw(w, sizeof w, "missing", what), &s);
    if (rc)
        return rc;
    if (lower_eq(s, "nan") || lower_eq(s, ".nan")) {
        o->missing = MIMO_MISSING_NAN;
        return 0;
    }
    if (parse_ll(s, &v) || v < -(1LL << 24) || v > (1LL << 24))
        return wrong(c, n, e, w);
    if (o->loss != MIMO_LOSS_SPARSE_CCE && o->loss != MIMO_LOSS_BCE)
        return err(c, n, "missing: %s marks class labels (binary_crossentropy "
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
        return err(c, k, "class_weight needs class labels, but %s has the %s "
                   "loss (use sample_weight to weigh the rows of a regression "
                   "head)", what, mimo_loss_name(o->loss));
    if (n->type != YAML_MAPPING_NODE)
        return wrong(c, n, "a mapping {CLASS: WEIGHT, ...}", kw(w, sizeof w,
                     "class_weight", what));
    free(o->class_weight);
    o->n_class_weight = 0;
    if (!(o->class_weight = calloc((size_t)pair_count(n) + 1, sizeof *o->class_weight)))
        return nomem(c);
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
         p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *ck = node_at(c, p->key), *cv = node_at(c, p->value);
        mimo_class_weight *cw = &o->class_weight[o->n_class_weight];
        kw(w, sizeof w, "class_weight", what);
        if ((rc = get_int(c, ck, w, 0, INT_MAX, "a class index >= 0", &cls)) ||
            (rc = get_double(c, cv, w, R_NONNEG, &cw->weight)))
            return rc;
        for (int j = 0; j < o->n_class_weight; j++)
            if (o->class_weight[j].cls == cls)
                return err(c, ck, "class %lld appears twice in %s", cls, w);
        cw->cls = cls;
        cw->pos = pos_of(c, ck);
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
    if ((v = get(c, val, "weight", NULL))
        && (rc = get_double(c, v, kw(w, sizeof w, "weight", what), R_NONNEG,
                            &o->weight)))
        return rc;
    if ((v = get(c, val, "metrics", NULL))
        && (rc = conv_metrics(c, v, what, o)))
        return rc;
    if ((v = get(c, val, "missing", NULL)) && (rc = conv_missing(c, v, what, o)))
        return rc;
    if ((v = get(c, val, "class_weight", &k))
        && (rc = conv_class_weight(c, k, v, what, o)))
        return rc;
    if ((v = get(c, val, "top_k", &k))) {
        long long x;
        if (!(o->metrics & MIMO_METRIC_TOP_K))
            return err(c, k, "key 'top_k' goes with the metric top_k_accuracy "
                       "in %s", what);
        if ((rc = get_int(c, v, kw(w, sizeof w, "top_k", what), 1, INT_MAX,
                          "an integer > 0", &x)))
            return rc;
        o->top_k = (int)x;
    }
    if ((v = get(c, val, "sample_weight", NULL))) {
        if ((rc = get_name(c, v, kw(w, sizeof w, "sample_weight", what), &s)))
            return rc;
        free(o->sample_weight);
        if (!(o->sample_weight = mimo_strdup(s)))
            return nomem(c);
        o->sample_weight_pos = pos_of(c, v);
    }
    if ((v = get(c, val, "delta", &k))) {
        if (o->loss != MIMO_LOSS_HUBER)
            return err(c, k, "key 'delta' is only valid with the huber loss "
                       "in %s", what);
        if ((rc = get_double(c, v, kw(w, sizeof w, "delta", what), R_POS,
                             &o->huber_delta)))
            return rc;
    }
    if ((v = get(c, val, "from_logits", &k))) {
        if (o->loss != MIMO_LOSS_BCE && o->loss != MIMO_LOSS_CCE &&
            o->loss != MIMO_LOSS_SPARSE_CCE)
            return err(c, k, "key 'from_logits' is only valid with the "
                       "cross-entropy losses in %s", what);
        if ((rc = get_bool(c, v, kw(w, sizeof w, "from_logits", what),
                           &o->from_logits)))
            return rc;
    }
    if ((v = get(c, val, "target", NULL))) {
        if ((rc = get_name(c, v, kw(w, sizeof w, "target", what), &s)))
            return rc;
        free(o->target);
        if (!(o->target = mimo_strdup(s)))
            return nomem(c);
    }
    return 0;
}

static int conv_output(cfg *c, yaml_node_t *key, yaml_node_t *val,
                       mimo_output_spec *o)
{
    char what[MSG_MAX / 4], list[MSG_MAX / 2], e[MSG_MAX / 2 + 16];
    yaml_node_t *v = NULL;
    int rc, loss;
    snprintf(what, sizeof what, "output '%s'", sval(key));
    if (!is_null(val) && val->type != YAML_MAPPING_NODE)
        return wrong(c, val, "a mapping {loss: ..., weight: ...}", what);
    if (val->type == YAML_MAPPING_NODE
        && (rc = check_keys(c, val, what, OUTPUT_KEYS, NKEYS(OUTPUT_KEYS))))
        return rc;
    if (val->type == YAML_MAPPING_NODE)
        v = get(c, val, "loss", NULL);
    if (!v) {
        enum_list(&E_LOSS, NULL, list, sizeof list, NULL, 0);
        snprintf(e, sizeof e, "one of: %s", list);
        return missing(c, key, what, "loss", e);
    }
    if ((rc = get_enum(c, v, &E_LOSS, what, &loss)))
        return rc;
    o->loss = (mimo_loss)loss;
    return conv_output_body(c, val, what, o);
}

static int conv_outputs(cfg *c, yaml_node_t *n, mimo_spec *s)
{
    int rc = section(c, n, "outputs", "{y1: {loss: mse}}");
    yaml_node_pair_t *p;
    if (rc)
        return rc;
    s->outputs = calloc((size_t)pair_count(n), sizeof *s->outputs);
    if (!s->outputs)
        return nomem(c);
    for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = node_at(c, p->key);
        mimo_output_spec *o = &s->outputs[s->n_outputs++];
        o->weight = 1.0;
        o->huber_delta = 1.0;
        o->top_k = 5;
        if (!(o->name = mimo_strdup(sval(k))) || !(o->target = mimo_strdup(sval(k))))
            return nomem(c);
        o->pos = pos_of(c, k);
        if ((rc = conv_output(c, k, node_at(c, p->value), o)))
            return rc;
    }
    return 0;
}

/* ---- train and data ---------------------------------------------------- */


static const char *const TRAIN_KEYS[] = {
    "optimizer", "batch_size", "epochs", "seed", "shuffle",
    "validation_split", "lr_schedule", "reduce_lr_on_plateau",
    "early_stopping", "checkpoint", "loss_weighting"};
static const char *const OPT_KEYS[] = {
    "type", "lr", "momentum", "nesterov", "beta1", "beta2", "epsilon", "rho",
    "weight_decay", "clipnorm", "clipvalue"};
static const char *const DATA_KEYS[] = {"train", "val", "memory_limit_mb",
                                        "prefetch"};

static int opt_key_ok(mimo_opt_kind k, const char *key)
{
    static const char *const common[] = {"type", "lr", "weight_decay",
                                         "clipnorm", "clipvalue"};
    static const char *const sgd[] = {"momentum", "nesterov"};
    static const char *const adam[] = {"beta1", "beta2", "epsilon"};
    static const char *const rms[] = {"rho", "momentum", "epsilon"};
    if (in_list(key, common, 5))
        return 1;
    if (k == MIMO_OPT_SGD)
        return in_list(key, sgd, 2);
    if (k == MIMO_OPT_ADAM || k == MIMO_OPT_ADAMW)
        return in_list(key, adam, 3);
    return in_list(key, rms, 3);
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
    {"clipvalue", offsetof(mimo_opt_spec, clipvalue), R_NONNEG}};

static int conv_opt_map(cfg *c, yaml_node_t *n, mimo_opt_spec *o)
{
    const char *what = "train.optimizer";
    char w[MSG_MAX / 2];
    yaml_node_t *t = get(c, n, "type", NULL), *v;
    yaml_node_pair_t *p;
    int rc = check_keys(c, n, what, OPT_KEYS, 11), kind = MIMO_OPT_SGD;
    if (rc)
        return rc;
    if (t && (rc = get_enum(c, t, &E_OPT, what, &kind)))
        return rc;
    o->kind = (mimo_opt_kind)kind;
    o->lr = o->kind == MIMO_OPT_SGD ? 0.01 : 0.001;
    for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = node_at(c, p->key);
        if (!opt_key_ok(o->kind, sval(k)))
            return err(c, k, "key '%s' is not valid for the %s optimizer",
                       sval(k), mimo_opt_name(o->kind));
    }
    for (size_t i = 0; i < sizeof OPT_NUMS / sizeof OPT_NUMS[0]; i++) {
        double *dst = (double *)((char *)o + OPT_NUMS[i].off);
        if ((v = get(c, n, OPT_NUMS[i].key, NULL))
            && (rc = get_double(c, v, kw(w, sizeof w, OPT_NUMS[i].key, what),
                                OPT_NUMS[i].range, dst)))
            return rc;
    }
    if ((v = get(c, n, "nesterov", NULL))
        && (rc = get_bool(c, v, kw(w, sizeof w, "nesterov", what),
                          &o->nesterov)))
        return rc;
    return 0;
}

static int conv_opt(cfg *c, yaml_node_t *n, mimo_opt_spec *o)
{
    int kind, rc;
    if (n->type == YAML_MAPPING_NODE)
        return conv_opt_map(c, n, o);
    if ((rc = get_enum(c, n, &E_OPT, "train.optimizer", &kind)))
        return rc;
    o->kind = (mimo_opt_kind)kind;
    o->lr = o->kind == MIMO_OPT_SGD ? 0.01 : 0.001;
    return 0;
}

/* An optional section: a mapping, or nothing at all. */
static int optional_section(cfg *c, yaml_node_t *n, const char *name,
                            const char *const *keys, int n_keys)
{
    if (is_null(n))
        return 0;
    if (n->type != YAML_MAPPING_NODE)
        return wrong(c, n, "a mapping", name);
    return check_keys(c, n, name, keys, n_keys);
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
    int rc = scalar(c, n, e, what, &s);
    if (rc)
        return rc;
    if (!*s)
        return wrong(c, n, e, what);
    free(*dst);
    if (!(*dst = mimo_strdup(s)))
        return nomem(c);
    return 0;
}

static int get_count(cfg *c, yaml_node_t *n, const char *what, int type,
                     long long *x)
{
    int pos = type == F_LONG1 || type == F_INT1;
    long long hi = type == F_INT0 || type == F_INT1 ? INT_MAX : LONG_MAX;
    return get_int(c, n, what, pos, hi,
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
    kw(w, sizeof w, f->key, sect);
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
        return get_double(c, n, w, f->range, (double *)(void *)dst);
    case F_BOOL:
        return get_bool(c, n, w, (int *)(void *)dst);
    case F_MONITOR:
        return get_monitor(c, n, w, (char **)(void *)dst);
    case F_MODE:
        if (!(rc = get_enum(c, n, &E_MODE, sect, &e)))
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
    return check_keys(c, map, sect, keys, nf < 16 ? nf : 16);
}

/* Every field of the table present in map, in table order. */
static int read_fields(cfg *c, yaml_node_t *map, const char *sect,
                       const field *f, int nf, void *base)
{
    for (int i = 0; i < nf; i++) {
        yaml_node_t *v = get(c, map, f[i].key, NULL);
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
        if (!(rc = get_enum(c, n, &E_SCHED, sect, &kind)))
            sched_kind(s, kind);
        return rc;
    }
    if ((rc = check_fields(c, n, sect, SCHED_FIELDS, NKEYS(SCHED_FIELDS))))
        return rc;
    if ((t = get(c, n, "type", NULL))
        && (rc = get_enum(c, t, &E_SCHED, sect, &kind)))
        return rc;
    sched_kind(s, kind);
    for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = node_at(c, p->key);
        if (!sched_key_ok(s->kind, sval(k)))
            return err(c, k, "key '%s' is not valid for the %s schedule",
                       sval(k), mimo_sched_name(s->kind));
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
    if (!is_bool_node(n))
        return wrong(c, n, "true, false or a mapping of settings", sect);
    bool_word(sval(n), enabled);
    return 0;
}

static int conv_ckpt(cfg *c, yaml_node_t *n, mimo_ckpt_spec *k)
{
    const char *sect = "train.checkpoint";
    int rc;
    if (is_null(n))
        return 0;
    if (n->type != YAML_MAPPING_NODE)
        return wrong(c, n, "a mapping", sect);
    if ((rc = check_fields(c, n, sect, CKPT_FIELDS, NKEYS(CKPT_FIELDS))))
        return rc;
    return read_fields(c, n, sect, CKPT_FIELDS, NKEYS(CKPT_FIELDS), k);
}

/* The train sections after the scalar keys. */
static int conv_train_extras(cfg *c, yaml_node_t *n, mimo_train_spec *t)
{
    yaml_node_t *v;
    int rc = 0;
    if ((v = get(c, n, "lr_schedule", NULL))
        && (rc = conv_sched(c, v, &t->schedule)))
        return rc;
    if ((v = get(c, n, "reduce_lr_on_plateau", NULL))
        && (rc = conv_callback(c, v, "train.reduce_lr_on_plateau",
                               PLATEAU_FIELDS, NKEYS(PLATEAU_FIELDS),
                               &t->plateau, &t->plateau.enabled)))
        return rc;
    if ((v = get(c, n, "early_stopping", NULL))
        && (rc = conv_callback(c, v, "train.early_stopping", EARLY_FIELDS,
                               NKEYS(EARLY_FIELDS), &t->early,
                               &t->early.enabled)))
        return rc;
    if ((v = get(c, n, "checkpoint", NULL))
        && (rc = conv_ckpt(c, v, &t->checkpoint)))
        return rc;
    return 0;
}

static int conv_train(cfg *c, yaml_node_t *n, mimo_train_spec *t)
{
    char w[MSG_MAX / 2];
    yaml_node_t *v;
    long long x;
    int rc = optional_section(c, n, "train", TRAIN_KEYS, NKEYS(TRAIN_KEYS));
    if (rc || is_null(n))
        return rc;
    if ((v = get(c, n, "optimizer", NULL)) && (rc = conv_opt(c, v, &t->opt)))
        return rc;
    if ((v = get(c, n, "batch_size", NULL))) {
        if ((rc = get_int(c, v, kw(w, sizeof w, "batch_size", "train"), 1,
                          1L << 30, "an integer from 1 to 1073741824", &x)))
            return rc;
        t->batch_size = (long)x;
    }
    if ((v = get(c, n, "epochs", NULL))) {
        if ((rc = get_int(c, v, kw(w, sizeof w, "epochs", "train"), 0,
                          LONG_MAX, "an integer >= 0", &x)))
            return rc;
        t->epochs = (long)x;
    }
    if ((v = get(c, n, "seed", NULL))
        && (rc = get_ull(c, v, kw(w, sizeof w, "seed", "train"), &t->seed)))
        return rc;
    if ((v = get(c, n, "shuffle", NULL))
        && (rc = get_bool(c, v, kw(w, sizeof w, "shuffle", "train"),
                          &t->shuffle)))
        return rc;
    if ((v = get(c, n, "validation_split", NULL))
        && (rc = get_double(c, v, kw(w, sizeof w, "validation_split", "train"),
                            R_UNIT, &t->validation_split)))
        return rc;
    if ((v = get(c, n, "loss_weighting", NULL))) {
        int lw;
        if ((rc = get_enum(c, v, &E_WEIGHTING, "train", &lw)))
            return rc;
        t->loss_weighting = (mimo_loss_weighting)lw;
    }
    return conv_train_extras(c, n, t);
}

/* A data path. One written in the config file is relative to the file's
 * directory (as a compiler resolves includes), and the document gets the
 * resolved, absolute path, so the config saved with the run resolves the
 * same from anywhere; one given with --set is relative to the current
 * directory, as every path on the command line. */
static int conv_path(cfg *c, yaml_node_t *n, const char *key, char **dst)
{
    char w[MSG_MAX / 2];
    const char *s = NULL;
    int rc = scalar(c, n, "a file path", kw(w, sizeof w, key, "data"), &s);
    if (rc)
        return rc;
    if (!c->base || s[0] == '/' || set_of(c, n) >= 0)
        return (*dst = mimo_strdup(s)) ? 0 : nomem(c);
    size_t len = strlen(c->base) + strlen(s) + 2;
    char *full = malloc(len);
    if (!full)
        return nomem(c);
    snprintf(full, len, "%s/%s", c->base, s);
    if (!(*dst = mimo_strdup(full))) {
        free(full);
        return nomem(c);
    }
    free(n->data.scalar.value); /* libyaml's allocator is malloc's */
    n->data.scalar.value = (yaml_char_t *)full;
    n->data.scalar.length = len - 1;
    c->rewritten = 1;
    return 0;
}

static int conv_data(cfg *c, yaml_node_t *n, mimo_data_spec *d)
{
    yaml_node_t *v;
    int rc = optional_section(c, n, "data", DATA_KEYS, NKEYS(DATA_KEYS));
    if (rc || is_null(n))
        return rc;
    if ((v = get(c, n, "train", NULL))
        && (rc = conv_path(c, v, "train", &d->train)))
        return rc;
    if ((v = get(c, n, "val", NULL)) && (rc = conv_path(c, v, "val", &d->val)))
        return rc;
    return read_fields(c, n, "data", DATA_FIELDS, NKEYS(DATA_FIELDS), d);
}

/* ---- the root ---------------------------------------------------------- */

static const char *const ROOT_KEYS[] = {"inputs", "layers", "outputs",
                                        "train", "data"};

static int check_root_kind(cfg *c)
{
    yaml_node_t *root = yaml_document_get_root_node(&c->doc);
    if (root->type != YAML_MAPPING_NODE)
        return wrong(c, root, "a mapping with inputs, layers, outputs",
                     "the top level of the config");
    return 0;
}

/* Known sections, each once, the required ones present (after --set). */
static int check_root(cfg *c)
{
    yaml_node_t *root = yaml_document_get_root_node(&c->doc);
    int rc;
    if ((rc = check_keys(c, root, "the config", ROOT_KEYS, 5)))
        return rc;
    for (int i = 0; i < 3; i++)
        if (!get(c, root, ROOT_KEYS[i], NULL))
            return err(c, root, "missing section '%s' (expected inputs, "
                       "layers, outputs)", ROOT_KEYS[i]);
    return 0;
}

/* No name is both an input and a layer. */
static int check_names(cfg *c, yaml_node_t *inputs, yaml_node_t *layers)
{
    int ni = pair_count(inputs), nl = pair_count(layers), rc = 0;
    yaml_node_t *first, *again;
    entry *e = calloc((size_t)ni + (size_t)nl, sizeof *e);
    if (!e)
        return nomem(c);
    for (int i = 0; i < ni + nl; i++) {
        yaml_node_t *m = i < ni ? inputs : layers;
        int j = i < ni ? i : i - ni;
        e[i].node = node_at(c, m->data.mapping.pairs.start[j].key);
        e[i].name = sval(e[i].node);
        e[i].order = i;
    }
    if (find_dup(e, ni + nl, &first, &again)) {
        char at[MSG_MAX];
        where_short(c, first, at, sizeof at);
        rc = err(c, again, "name '%s' is used by both an input and a layer "
                 "(the input is at %s); names must be unique", sval(again), at);
    }
    free(e);
    return rc;
}

/* Converts the sections in file order, then checks names across them. */
static int convert(cfg *c, mimo_spec *s)
{
    yaml_node_t *root = yaml_document_get_root_node(&c->doc);
    yaml_node_pair_t *p;
    int rc = 0;
    for (p = root->data.mapping.pairs.start;
         !rc && p < root->data.mapping.pairs.top; p++) {
        const char *k = sval(node_at(c, p->key));
        yaml_node_t *v = node_at(c, p->value);
        if (strcmp(k, "inputs") == 0)
            rc = conv_inputs(c, v, s);
        else if (strcmp(k, "layers") == 0)
            rc = conv_layers(c, v, s);
        else if (strcmp(k, "outputs") == 0)
            rc = conv_outputs(c, v, s);
        else if (strcmp(k, "train") == 0)
            rc = conv_train(c, v, &s->train);
        else
            rc = conv_data(c, v, &s->data);
    }
    if (rc)
        return rc;
    return check_names(c, get(c, root, "inputs", NULL),
                       get(c, root, "layers", NULL));
}

/* ---- loading ----------------------------------------------------------- */

static int parse_error(cfg *c, yaml_parser_t *p, const char *text, size_t len,
                       const char *who)
{
    size_t line = p->problem_mark.line, col = p->problem_mark.column;
    char ctx[MSG_MAX / 2] = "";
    if (p->error == YAML_MEMORY_ERROR)
        return nomem(c);
    if (p->error == YAML_READER_ERROR) {
        line = col = 0;
        for (size_t i = 0; i < p->problem_offset && i < len; i++) {
            col = text[i] == '\n' ? 0 : col + 1;
            line += text[i] == '\n';
        }
    }
    if (p->context)
        snprintf(ctx, sizeof ctx, " (%s at line %lu, column %lu)", p->context,
                 (unsigned long)p->context_mark.line + 1,
                 (unsigned long)p->context_mark.column + 1);
    if (who)
        return mimo_error(MIMO_EINVAL, "%s: --set %s: value is not valid "
                          "YAML: %s%s", c->file, who,
                          p->problem ? p->problem : "unknown error", ctx);
    return mimo_error(MIMO_EINVAL, "%s:%lu:%lu: not valid YAML: %s%s",
                      c->file, (unsigned long)line + 1,
                      (unsigned long)col + 1,
                      p->problem ? p->problem : "unknown error", ctx);
}

/* A second document in the file is an error. */
static int check_one_doc(cfg *c, yaml_parser_t *p, const char *text,
                         size_t len)
{
    yaml_document_t extra;
    yaml_node_t *r;
    int rc = 0;
    if (!yaml_parser_load(p, &extra))
        return parse_error(c, p, text, len, NULL);
    r = yaml_document_get_root_node(&extra);
    if (r)
        rc = mimo_error(MIMO_EINVAL, "%s:%lu:%lu: a second YAML document "
                        "(expected one document)", c->file,
                        (unsigned long)r->start_mark.line + 1,
                        (unsigned long)r->start_mark.column + 1);
    yaml_document_delete(&extra);
    return rc;
}

#define MAX_DEPTH 64 /* nesting of a config: ~5 in practice */

/* The line (1-based) where text first nests deeper than MAX_DEPTH, or 0:
 * block levels (an indentation stack, plus each "- " that opens a
 * sequence entry on the line) and flow brackets outside quotes and
 * comments. One pass, before libyaml, which takes tens of seconds on
 * text nested 100,000 deep before anything could reject it. */
static size_t too_deep(const char *t, size_t len)
{
    int stack[MAX_DEPTH + 2], sp = 0, flow = 0;
    char quote = 0;
    size_t line = 1;
    for (size_t i = 0; i < len; line++) {
        size_t indent = 0;
        int dashes = 0;
        while (i + indent < len && t[i + indent] == ' ')
            indent++;
        size_t j = i + indent;
        while (!quote && !flow && j + 1 < len && t[j] == '-' &&
               (t[j + 1] == ' ' || t[j + 1] == '\n')) {
            dashes++, j++;
            while (j < len && t[j] == ' ')
                j++;
        }
        int blank = j >= len || t[j] == '\n' || t[j] == '#' || t[j] == '\r';
        if (!quote && !flow && !blank) {
            while (sp && stack[sp - 1] >= (int)indent)
                sp--;
            stack[sp++] = (int)indent;
        }
        for (; j < len && t[j] != '\n'; j++) {
            char ch = t[j];
            if (quote) {
                if (ch == quote)
                    quote = 0;
            } else if (ch == '"' || ch == '\'')
                quote = ch;
            else if (ch == '#' && (j == 0 || t[j - 1] == ' ' || t[j - 1] == '\t'))
                break;
            else if (ch == '[' || ch == '{')
                flow++;
            else if ((ch == ']' || ch == '}') && flow > 0)
                flow--;
            if (sp + dashes + flow > MAX_DEPTH)
                return line;
        }
        if (sp + dashes + flow > MAX_DEPTH)
            return line;
        while (j < len && t[j] != '\n')
            j++;
        i = j + 1;
    }
    return 0;
}

static int load(cfg *c, const char *text, size_t len)
{
    yaml_parser_t p;
    yaml_node_t *root;
    int rc = 0;
    size_t deep = too_deep(text, len);
    if (deep)
        return mimo_error(MIMO_EINVAL, "%s:%zu: nested more than %d levels deep "
                          "(a config needs a handful)", c->file, deep, MAX_DEPTH);
    if (!yaml_parser_initialize(&p))
        return nomem(c);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    if (!yaml_parser_load(&p, &c->doc)) {
        rc = parse_error(c, &p, text, len, NULL);
        yaml_parser_delete(&p);
        return rc;
    }
    c->loaded = 1;
    c->n_orig = (int)(c->doc.nodes.top - c->doc.nodes.start);
    root = yaml_document_get_root_node(&c->doc);
    if (!root || is_null(root))
        rc = mimo_error(MIMO_EINVAL, "%s: empty config, expected a mapping "
                        "with inputs, layers, outputs", c->file);
    if (!rc)
        rc = check_one_doc(c, &p, text, len);
    yaml_parser_delete(&p);
    return rc;
}

/* ---- --set overrides --------------------------------------------------- */

typedef struct {
    yaml_document_t *src;
    int budget;                /* nodes left to copy */
} copier;

/* Deep copy of node si of the value document into c->doc; 0 on failure. */
static int copy_node(cfg *c, copier *cp, int si, int depth)
{
    yaml_node_t *n = yaml_document_get_node(cp->src, si);
    yaml_document_t *d = &c->doc;
    int di, len;
    if (depth > SET_MAX_DEPTH)
        cp->budget = -1;
    if (!n || --cp->budget < 0)
        return 0;
    if (n->type == YAML_SCALAR_NODE) {
        len = n->data.scalar.length > INT_MAX ? -1 : (int)n->data.scalar.length;
        return len < 0 ? 0 : yaml_document_add_scalar(d, n->tag,
                   n->data.scalar.value, len, n->data.scalar.style);
    }
    if (n->type == YAML_SEQUENCE_NODE) {
        di = yaml_document_add_sequence(d, n->tag, n->data.sequence.style);
        len = seq_len(n);
        for (int i = 0; di && i < len; i++) {
            int item = copy_node(c, cp, n->data.sequence.items.start[i],
                                 depth + 1);
            if (!item || !yaml_document_append_sequence_item(d, di, item))
                return 0;
        }
        return di;
    }
    di = yaml_document_add_mapping(d, n->tag, n->data.mapping.style);
    len = pair_count(n);
    for (int i = 0; di && i < len; i++) {
        yaml_node_pair_t pr = n->data.mapping.pairs.start[i];
        int k = copy_node(c, cp, pr.key, depth + 1);
        int v = k ? copy_node(c, cp, pr.value, depth + 1) : 0;
        if (!v || !yaml_document_append_mapping_pair(d, di, k, v))
            return 0;
    }
    return di;
}

/* Parses the value text of set i as YAML into a new node of c->doc. */
static int set_value(cfg *c, int i, const char *text, int *out)
{
    const char *set = c->sets[i];
    char who[MSG_MAX / 2];
    yaml_parser_t p;
    copier cp;
    yaml_document_t vd;
    int rc = 0;
    snprintf(who, sizeof who, "%.*s", set_path_len(set), set);
    if (!yaml_parser_initialize(&p))
        return nomem(c);
    yaml_parser_set_input_string(&p, (const unsigned char *)text,
                                 strlen(text));
    if (!yaml_parser_load(&p, &vd)) {
        rc = parse_error(c, &p, text, strlen(text), who);
        yaml_parser_delete(&p);
        return rc;
    }
    yaml_parser_delete(&p);
    cp.src = &vd;
    cp.budget = SET_MAX_NODES;
    if (!yaml_document_get_root_node(&vd))
        *out = yaml_document_add_scalar(&c->doc, NULL,
                                        (yaml_char_t *)"", 0,
                                        YAML_PLAIN_SCALAR_STYLE);
    else
        *out = copy_node(c, &cp, 1, 0);
    if (!*out)
        rc = cp.budget < 0 ? mimo_error(MIMO_EINVAL, "%s: --set %s: value "
                                        "is too large or too deeply nested",
                                        c->file, who)
                           : nomem(c);
    yaml_document_delete(&vd);
    return rc;
}

/* Index of the pair of `map` whose key is [k, k+klen), or -1. */
/* Keras' spellings of keys, and ours (the document keeps ours). */
static const char *const KEY_ALIASES[] = {
    "learning_rate", "lr", "beta_1", "beta1", "beta_2", "beta2",
    "restore_best_weights", "restore_best", NULL};

/* The key's own spelling for an alias of k[0, *klen), else k itself. */
static const char *canonical_key(const char *k, size_t *klen)
{
    for (int i = 0; KEY_ALIASES[i]; i += 2)
        if (strlen(KEY_ALIASES[i]) == *klen && memcmp(KEY_ALIASES[i], k, *klen) == 0) {
            *klen = strlen(KEY_ALIASES[i + 1]);
            return KEY_ALIASES[i + 1];
        }
    return k;
}

/* Every mapping key of the document that is a Keras alias becomes ours. */
static int canonical_keys(cfg *c)
{
    for (yaml_node_t *n = c->doc.nodes.start; n < c->doc.nodes.top; n++) {
        if (n->type != YAML_MAPPING_NODE)
            continue;
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
             p < n->data.mapping.pairs.top; p++) {
            yaml_node_t *k = node_at(c, p->key);
            size_t len = k->type == YAML_SCALAR_NODE ? k->data.scalar.length : 0;
            const char *to = len ? canonical_key(sval(k), &len) : NULL;
            if (!to || to == sval(k))
                continue;
            char *copy = mimo_strdup(to);
            if (!copy)
                return nomem(c);
            free(k->data.scalar.value); /* libyaml's allocator is malloc's */
            k->data.scalar.value = (yaml_char_t *)copy;
            k->data.scalar.length = len;
            c->rewritten = 1;
        }
    }
    return 0;
}

static int find_pair(cfg *c, int map, const char *k, size_t klen)
{
    k = canonical_key(k, &klen);
    yaml_node_t *m = node_at(c, map);
    for (int i = 0; i < pair_count(m); i++) {
        yaml_node_t *key = node_at(c, m->data.mapping.pairs.start[i].key);
        if (key->type == YAML_SCALAR_NODE && key->data.scalar.length == klen
            && memcmp(key->data.scalar.value, k, klen) == 0)
            return i;
    }
    return -1;
}

/* Adds the pair (new key [k, k+klen), value) to map; 0 on failure. */
static int add_pair(cfg *c, int map, const char *k, size_t klen, int value)
{
    k = canonical_key(k, &klen);
    int key = yaml_document_add_scalar(&c->doc, NULL, (yaml_char_t *)k,
                                       (int)klen, YAML_PLAIN_SCALAR_STYLE);
    return key && yaml_document_append_mapping_pair(&c->doc, map, key, value);
}

/* Keys whose value may be true/false instead of a mapping. */
static int is_callback_key(const char *k, size_t klen)
{
    static const char *const keys[] = {"reduce_lr_on_plateau",
                                       "early_stopping"};
    for (int i = 0; i < 2; i++)
        if (strlen(keys[i]) == klen && memcmp(keys[i], k, klen) == 0)
            return 1;
    return 0;
}

/* The mapping at pair j of map, made one if it is a scalar: NAME becomes
 * {type: NAME} (optimizer: adam); nothing, or a callback's true/false
 * (early_stopping: false), becomes {}, so setting a key below a callback
 * enables it. */
static int child_mapping(cfg *c, int set, int map, int j, const char *k,
                         size_t klen, int *out)
{
    int v = node_at(c, map)->data.mapping.pairs.start[j].value, m;
    yaml_node_t *vn = node_at(c, v);
    if (vn->type == YAML_MAPPING_NODE) {
        *out = v;
        return 0;
    }
    if (vn->type == YAML_SEQUENCE_NODE)
        return mimo_error(MIMO_EINVAL, "%s: --set %.*s: '%.*s' is a list, "
                          "not a mapping (expected a path of mapping keys)",
                          c->file, set_path_len(c->sets[set]), c->sets[set],
                          (int)klen, k);
    static const char *const sections[] = {"inputs", "layers", "outputs", "train",
                                           "data", "checkpoint"};
    for (size_t i = 0; !is_null(vn) && i < sizeof sections / sizeof *sections; i++)
        if (strlen(sections[i]) == klen && memcmp(sections[i], k, klen) == 0)
            return err(c, vn, "--set %.*s: '%.*s' is '%s', not a mapping (expected "
                       "a mapping of keys)", set_path_len(c->sets[set]),
                       c->sets[set], (int)klen, k,
                       vn->type == YAML_SCALAR_NODE ? sval(vn) : "?");
    if (!(m = yaml_document_add_mapping(&c->doc, NULL,
                                        YAML_BLOCK_MAPPING_STYLE)))
        return nomem(c);
    vn = node_at(c, v);                /* adding nodes may move them */
    if (!is_null(vn) && !(is_bool_node(vn) && is_callback_key(k, klen))
        && !add_pair(c, m, "type", 4, v))
        return nomem(c);
    node_at(c, map)->data.mapping.pairs.start[j].value = m;
    *out = m;
    return 0;
}

/* Walks path (dotted, klen bytes) from the root and sets the last key. */
static int walk_set(cfg *c, int set, const char *path, size_t plen, int value)
{
    const char *k = path, *end = path + plen;
    int cur = 1, rc;                      /* the root is node 1 */
    for (;;) {
        const char *dot = memchr(k, '.', (size_t)(end - k));
        size_t klen = (size_t)((dot ? dot : end) - k);
        int j = find_pair(c, cur, k, klen), m = 0;
        if (!dot) {
            if (j >= 0)
                node_at(c, cur)->data.mapping.pairs.start[j].value = value;
            else if (!add_pair(c, cur, k, klen, value))
                return nomem(c);
            return 0;
        }
        if (j >= 0) {
            if ((rc = child_mapping(c, set, cur, j, k, klen, &m)))
                return rc;
        } else if (!(m = yaml_document_add_mapping(&c->doc, NULL,
                                                   YAML_BLOCK_MAPPING_STYLE))
                   || !add_pair(c, cur, k, klen, m)) {
            return nomem(c);
        }
        cur = m;
        k = dot + 1;
    }
}

/* Splits "key.path=value"; the path trimmed of spaces, no empty parts. */
static int split_set(const char *s, const char **path, size_t *plen,
                     const char **value)
{
    const char *eq = s ? strchr(s, '=') : NULL, *b = s, *e = eq;
    if (!eq)
        return -1;
    while (b < e && (*b == ' ' || *b == '\t'))
        b++;
    while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    if (b == e || *b == '.' || e[-1] == '.')
        return -1;
    for (const char *q = b; q + 1 < e; q++)
        if (q[0] == '.' && q[1] == '.')
            return -1;
    *path = b;
    *plen = (size_t)(e - b);
    *value = eq + 1;
    return 0;
}

static int apply_sets(cfg *c)
{
    if (c->n_sets <= 0)
        return 0;
    c->set_first = malloc((size_t)c->n_sets * sizeof *c->set_first);
    if (!c->set_first)
        return nomem(c);
    for (int i = 0; i < c->n_sets; i++)
        c->set_first[i] = INT_MAX;
    for (int i = 0; i < c->n_sets; i++) {
        const char *path, *value;
        size_t plen;
        int v, rc;
        c->set_first[i] = (int)(c->doc.nodes.top - c->doc.nodes.start) + 1;
        if (split_set(c->sets[i], &path, &plen, &value))
            return mimo_error(MIMO_EINVAL, "%s: --set '%s': expected "
                              "KEY.PATH=VALUE", c->file,
                              c->sets[i] ? c->sets[i] : "(null)");
        if ((rc = set_value(c, i, value, &v))
            || (rc = walk_set(c, i, path, plen, v)))
            return rc;
    }
    return 0;
}

/* ---- the text actually used -------------------------------------------- */

typedef struct {
    char *buf;
    size_t len, cap;
} outbuf;

static int write_out(void *data, unsigned char *bytes, size_t size)
{
    outbuf *b = data;
    if (size >= SIZE_MAX / 2 - b->len)
        return 0;
    if (b->len + size + 1 > b->cap) {
        size_t cap = (b->len + size + 1) * 2;
        char *p = realloc(b->buf, cap);
        if (!p)
            return 0;
        b->buf = p;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, bytes, size);
    b->len += size;
    b->buf[b->len] = '\0';
    return 1;
}

/* Re-emits the document (this consumes it) as out->text. */
static int emit_text(cfg *c, mimo_spec *out)
{
    yaml_emitter_t e;
    outbuf b = {NULL, 0, 0};
    int ok, rc = 0;
    if (!yaml_emitter_initialize(&e))
        return nomem(c);
    yaml_emitter_set_output(&e, write_out, &b);
    yaml_emitter_set_unicode(&e, 1);
    yaml_emitter_set_width(&e, -1);
    ok = yaml_emitter_open(&e);
    if (ok) {
        ok = yaml_emitter_dump(&e, &c->doc);   /* deletes the document */
        c->loaded = 0;
    }
    ok = ok && yaml_emitter_close(&e) && yaml_emitter_flush(&e) && b.buf;
    if (!ok)
        rc = e.error == YAML_MEMORY_ERROR || e.error == YAML_WRITER_ERROR
           || !e.problem ? nomem(c)
           : mimo_error(MIMO_EINVAL, "%s: cannot write the config after "
                        "--set: %s", c->file, e.problem);
    yaml_emitter_delete(&e);
    if (rc)
        free(b.buf);
    else
        out->text = b.buf;
    return rc;
}

static int keep_text(cfg *c, const char *text, size_t len, mimo_spec *out)
{
    if (c->n_sets > 0 || c->rewritten)
        return emit_text(c, out);
    if (!(out->text = malloc(len + 1)))
        return nomem(c);
    if (len)
        memcpy(out->text, text, len);
    out->text[len] = '\0';
    return 0;
}

/* ---- public ------------------------------------------------------------ */

static int parse(const char *text, size_t len, const char *file,
                 const char *base, const char *const *sets, int n_sets,
                 mimo_spec *out)
{
    cfg c;
    int rc;
    if (!out)
        return mimo_error(MIMO_EINVAL, "mimo_config_parse: out is NULL");
    mimo_spec_defaults(out);
    memset(&c, 0, sizeof c);
    c.file = file ? file : "<config>";
    c.base = base;
    c.sets = sets;
    c.n_sets = sets ? n_sets : 0;
    if (!text && len)
        return mimo_error(MIMO_EINVAL, "%s: no config text", c.file);
    if (!(out->file = mimo_strdup(c.file)))
        return nomem(&c);
    rc = load(&c, text ? text : "", text ? len : 0);
    if (!rc)
        rc = check_root_kind(&c);
    if (!rc)
        rc = canonical_keys(&c);
    if (!rc)
        rc = apply_sets(&c);
    if (!rc)
        rc = check_root(&c);
    if (!rc)
        rc = convert(&c, out);
    if (!rc)
        rc = keep_text(&c, text, len, out);
    if (c.loaded)
        yaml_document_delete(&c.doc);
    free(c.set_first);
    if (rc)
        mimo_spec_free(out);
    return rc;
}

int mimo_config_parse(const char *text, size_t len, const char *file,
                      const char *const *sets, int n_sets, mimo_spec *out)
{
    return parse(text, len, file, NULL, sets, n_sets, out);
}

/* The absolute directory of the file at path (NULL when out of memory or
 * it cannot be resolved: the paths then stay as written). */
static char *dir_of(const char *path)
{
    char *copy = mimo_strdup(path), *dir = NULL;
    if (copy) {
        char *slash = strrchr(copy, '/');
        if (slash)
            *(slash == copy ? slash + 1 : slash) = '\0';
        dir = realpath(slash ? copy : ".", NULL);
    }
    free(copy);
    return dir;
}

/* A config larger than this is refused, not read (a 100,000-layer chain
 * is about 6 MB). */
#define MIMO_CONFIG_MAX_BYTES (64u << 20)

/* Reads a whole config file, a regular file of at most
 * MIMO_CONFIG_MAX_BYTES; *buf owned by the caller. */
static int read_file(const char *path, char **buf, size_t *len)
{
    size_t cap = 0, n = 0, k;
    char *b = NULL, *p;
    int bad, fd, rc = mimo_open_regular(path, "config file", &fd);
    if (rc)
        return rc;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return mimo_error(MIMO_ENOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (n > MIMO_CONFIG_MAX_BYTES) {
            free(b);
            fclose(f);
            return mimo_error(MIMO_EINVAL, "%s: config file larger than %u MB: "
                              "not a config", path, MIMO_CONFIG_MAX_BYTES >> 20);
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            if (cap < n || !(p = realloc(b, cap))) {
                free(b);
                fclose(f);
                return mimo_error(MIMO_ENOMEM, "%s: out of memory", path);
            }
            b = p;
        }
        n += k = fread(b + n, 1, cap - n, f);
        if (k == 0)
            break;
    }
    bad = ferror(f);
    fclose(f);
    if (bad) {
        free(b);
        return mimo_error(MIMO_EIO, "%s: cannot read config file", path);
    }
    *buf = b;
    *len = n;
    return 0;
}

int mimo_config_load(const char *path, const char *const *sets, int n_sets,
                     mimo_spec *out)
{
    char *text = NULL;
    size_t len = 0;
    int rc;
    if (out)
        mimo_spec_defaults(out);
    if (!path)
        return mimo_error(MIMO_EINVAL, "mimo_config_load: path is NULL");
    if ((rc = read_file(path, &text, &len)))
        return rc;
    char *base = dir_of(path);
    rc = parse(text, len, path, base, sets, n_sets, out);
    free(base);
    free(text);
    return rc;
}
