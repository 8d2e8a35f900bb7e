/* config_schema.c — reads the schema of `mimo import csv --schema` (see
 * io/schema.h) with the config parser's document and checks: unknown
 * keys, wrong types, out-of-range numbers and settings that do not belong
 * to a column's kind are errors naming file:line:column. Which columns the
 * CSV really has is checked by the importer, against this. */
#define _POSIX_C_SOURCE 200809L /* fdopen */
#include "io/schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fsutil.h"
#include "base/strutil.h"
#include "io/config_impl.h"
#include "mimo/error.h"

#define SCHEMA_MAX_BYTES (4u << 20) /* a schema of 10,000 columns is ~600 kB */

static const char *const ROOT_KEYS[] = {"columns", "split", "shuffle",
                                        "delimiter", "window", "horizon"};
static const char *const SPLIT_KEYS[] = {"val", "test", "seed", "by", "ordered"};
static const char *const COL_KEYS[] = {
    "kind", "target", "into", "column", "max_tokens", "min_count", "num_bins",
    "separator", "max_length", "missing", "log", "seed", "fill"};
static const char *const KINDS[] = {"skip", "numeric", "category", "hashed",
                                    "multi_hot"};

const char *mimo_col_kind_name(mimo_col_kind k)
{
    return (unsigned)k < 5 ? KINDS[k] : "?";
}

/* Which settings each kind takes (besides kind, target and into). */
static int key_fits(mimo_col_kind k, const char *key)
{
    static const char *const num[] = {"log", "fill"};
    static const char *const cat[] = {"max_tokens", "min_count", "missing"};
    static const char *const hsh[] = {"num_bins", "seed"};
    static const char *const mh[] = {"max_tokens", "min_count", "separator",
                                     "max_length"};
    if (!strcmp(key, "kind") || !strcmp(key, "target") || !strcmp(key, "into") ||
        !strcmp(key, "column"))
        return 1;
    switch (k) {
    case MIMO_COL_NUMERIC: return mimo_cfg_in_list(key, num, 2);
    case MIMO_COL_CATEGORY: return mimo_cfg_in_list(key, cat, 3);
    case MIMO_COL_HASHED: return mimo_cfg_in_list(key, hsh, 2);
    case MIMO_COL_MULTI_HOT: return mimo_cfg_in_list(key, mh, 4);
    default: return 0;
    }
}

/* A one-character setting (separator, delimiter): "," or "tab". */
static int get_char(cfg *c, yaml_node_t *n, const char *what, char *out)
{
    const char *s = NULL;
    int rc = mimo_cfg_scalar(c, n, "one character (or \"tab\")", what, &s);
    if (rc)
        return rc;
    if (!strcmp(s, "tab") || !strcmp(s, "\t"))
        *out = '\t';
    else if (strlen(s) == 1 && s[0] != '"' && s[0] != '\n' && s[0] != '\r')
        *out = s[0];
    else
        return mimo_cfg_wrong(c, n, "one character (or \"tab\")", what);
    return 0;
}

static int col_kind(cfg *c, yaml_node_t *map, mimo_schema_col *col, char *what)
{
    yaml_node_t *v = mimo_cfg_get(c, map, "kind", NULL);
    if (!v)
        return mimo_cfg_missing(c, map, what, "kind",
                                "numeric, category, hashed, multi_hot or skip");
    const char *s = NULL;
    int rc = mimo_cfg_scalar(c, v, "numeric, category, hashed, multi_hot or "
                             "skip", what, &s);
    if (rc)
        return rc;
    for (int k = 0; k < 5; k++)
        if (mimo_same_name(s, KINDS[k])) {
            col->kind = (mimo_col_kind)k;
            return 0;
        }
    char hint[96];
    mimo_cfg_suggest(hint, sizeof hint, s, KINDS, 5);
    return mimo_cfg_err(c, v, "unknown kind '%s' for %s (expected numeric, "
                        "category, hashed, multi_hot or skip%s)", s, what, hint);
}

/* The settings of one column after its kind. */
static int col_settings(cfg *c, yaml_node_t *map, mimo_schema_col *col,
                        const char *what)
{
    char w[MSG_MAX / 2];
    yaml_node_t *v;
    int rc = 0;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = mimo_cfg_node_at(c, p->key);
        if (!key_fits(col->kind, mimo_cfg_sval(k)))
            return mimo_cfg_err(c, k, "'%s' does not apply to %s, a %s column",
                                mimo_cfg_sval(k), what,
                                mimo_col_kind_name(col->kind));
    }
    mimo_cfg_kw(w, sizeof w, "target", what);
    if ((v = mimo_cfg_get(c, map, "target", NULL)) &&
        (rc = mimo_cfg_get_bool(c, v, w, &col->target)))
        return rc;
    const char *s = NULL;
    if ((v = mimo_cfg_get(c, map, "into", NULL))) {
        if ((rc = mimo_cfg_get_name(c, v, mimo_cfg_kw(w, sizeof w, "into", what),
                                    &s)))
            return rc;
        if (strchr(s, '/') || !*s)
            return mimo_cfg_err(c, v, "'%s' cannot name a dataset (no '/')", s);
        if (!(col->into = mimo_strdup(s)))
            return mimo_cfg_nomem(c);
    }
    if ((v = mimo_cfg_get(c, map, "column", NULL))) {
        if ((rc = mimo_cfg_scalar(c, v, "a CSV column's name",
                                  mimo_cfg_kw(w, sizeof w, "column", what), &s)))
            return rc;
        if (!(col->column = mimo_strdup(s)))
            return mimo_cfg_nomem(c);
    }
    struct { const char *key; long long lo, *dst; const char *exp; } ints[] = {
        {"max_tokens", 3, &col->max_tokens, "an integer >= 3 (mask, OOV and "
         "one value)"},
        {"min_count", 1, &col->min_count, "an integer >= 1"},
        {"num_bins", 1, &col->num_bins, "an integer >= 1"},
        {"max_length", 1, &col->max_length, "an integer >= 1"}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if ((v = mimo_cfg_get(c, map, ints[i].key, NULL)) &&
            (rc = mimo_cfg_get_int(c, v, mimo_cfg_kw(w, sizeof w, ints[i].key,
                                                     what),
                                   ints[i].lo, INT32_MAX, ints[i].exp,
                                   ints[i].dst)))
            return rc;
    if ((v = mimo_cfg_get(c, map, "separator", NULL)) &&
        (rc = get_char(c, v, mimo_cfg_kw(w, sizeof w, "separator", what),
                       &col->separator)))
        return rc;
    if ((v = mimo_cfg_get(c, map, "seed", NULL)) &&
        (rc = mimo_cfg_get_ull(c, v, mimo_cfg_kw(w, sizeof w, "seed", what),
                               &col->hash_seed)))
        return rc;
    if ((v = mimo_cfg_get(c, map, "log", NULL)) &&
        (rc = mimo_cfg_get_bool(c, v, mimo_cfg_kw(w, sizeof w, "log", what),
                                &col->log)))
        return rc;
    if ((v = mimo_cfg_get(c, map, "fill", NULL))) {
        mimo_cfg_kw(w, sizeof w, "fill", what);
        if (v->type == YAML_SCALAR_NODE && !strcmp(mimo_cfg_sval(v), "mean"))
            col->fill_kind = 1;
        else if ((rc = mimo_cfg_get_double(c, v, w, R_ANY, &col->fill)))
            return mimo_cfg_wrong(c, v, "mean or a number", w);
        else
            col->fill_kind = 2;
    }
    if ((v = mimo_cfg_get(c, map, "missing", NULL))) {
        if ((rc = mimo_cfg_scalar(c, v, "oov or mask",
                                  mimo_cfg_kw(w, sizeof w, "missing", what), &s)))
            return rc;
        if (strcmp(s, "oov") && strcmp(s, "mask"))
            return mimo_cfg_wrong(c, v, "oov or mask", w);
        col->missing_mask = !strcmp(s, "mask");
    }
    return 0;
}

/* What a kind requires, and what a target may be. */
static int col_check(cfg *c, yaml_node_t *key, yaml_node_t *map,
                     const mimo_schema_col *col, const char *what)
{
    if (col->kind == MIMO_COL_HASHED && !col->num_bins)
        return mimo_cfg_missing(c, key, what, "num_bins",
                                "the number of hash bins, e.g. num_bins: 1024");
    if (col->kind == MIMO_COL_MULTI_HOT && !col->max_length)
        return mimo_cfg_missing(c, key, what, "max_length",
                                "the most ids a row keeps, e.g. max_length: 8");
    if (col->target && col->kind != MIMO_COL_NUMERIC &&
        col->kind != MIMO_COL_CATEGORY)
        return mimo_cfg_err(c, mimo_cfg_get(c, map, "target", NULL),
                            "%s: a %s column cannot be a target (numeric or "
                            "category can)", what, mimo_col_kind_name(col->kind));
    return 0;
}

static int one_column(cfg *c, yaml_node_t *key, yaml_node_t *map,
                      mimo_schema_col *col)
{
    char what[MSG_MAX / 4];
    snprintf(what, sizeof what, "column '%s'", mimo_cfg_sval(key));
    col->pos = mimo_cfg_pos_of(c, key);
    col->min_count = 1;
    col->separator = '|';
    if (!(col->name = mimo_strdup(mimo_cfg_sval(key))))
        return mimo_cfg_nomem(c);
    if (map->type != YAML_MAPPING_NODE)
        return mimo_cfg_wrong(c, map, "a mapping like {kind: numeric}", what);
    int rc = mimo_cfg_check_keys(c, map, what, COL_KEYS,
                                 (int)(sizeof COL_KEYS / sizeof *COL_KEYS));
    if (!rc)
        rc = col_kind(c, map, col, what);
    if (!rc)
        rc = col_settings(c, map, col, what);
    if (!rc)
        rc = col_check(c, key, map, col, what);
    if (!rc && !col->into && strchr(col->name, '/'))
        rc = mimo_cfg_err(c, key, "%s cannot name a dataset ('/' makes HDF5 "
                          "groups): give it one with into: NAME", what);
    return rc;
}

static int columns(cfg *c, yaml_node_t *n, mimo_schema *s)
{
    if (n->type != YAML_MAPPING_NODE || mimo_cfg_pair_count(n) == 0)
        return mimo_cfg_wrong(c, n, "a mapping of column names to {kind: ...}",
                              "columns");
    int rc = mimo_cfg_check_keys(c, n, "columns", NULL, 0);
    if (rc)
        return rc;
    int count = mimo_cfg_pair_count(n);
    if (!(s->cols = calloc((size_t)count, sizeof *s->cols)))
        return mimo_cfg_nomem(c);
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
         p < n->data.mapping.pairs.top && !rc; p++)
        rc = one_column(c, mimo_cfg_node_at(c, p->key),
                        mimo_cfg_node_at(c, p->value), &s->cols[s->n_cols++]);
    return rc;
}

static int split(cfg *c, yaml_node_t *n, mimo_schema *s)
{
    if (mimo_cfg_is_null(n))
        return 0;
    if (n->type != YAML_MAPPING_NODE)
        return mimo_cfg_wrong(c, n, "a mapping like {val: 0.1, test: 0.1, "
                              "seed: 7}", "split");
    int rc = mimo_cfg_check_keys(c, n, "split", SPLIT_KEYS, 5);
    yaml_node_t *v;
    unsigned long long seed = 0;
    if (!rc && (v = mimo_cfg_get(c, n, "val", NULL)))
        rc = mimo_cfg_get_double(c, v, "'val' in split", R_UNIT, &s->val);
    if (!rc && (v = mimo_cfg_get(c, n, "test", NULL)))
        rc = mimo_cfg_get_double(c, v, "'test' in split", R_UNIT, &s->test);
    if (!rc && (v = mimo_cfg_get(c, n, "seed", NULL)) &&
        !(rc = mimo_cfg_get_ull(c, v, "'seed' in split", &seed)))
        s->seed = seed;
    if (!rc && (v = mimo_cfg_get(c, n, "by", NULL)) && !mimo_cfg_is_null(v)) {
        const char *name = NULL;
        if (!(rc = mimo_cfg_get_name(c, v, "'by' in split", &name)) &&
            !(s->by = mimo_strdup(name)))
            rc = mimo_cfg_nomem(c);
        s->by_pos = mimo_cfg_pos_of(c, v);
    }
    if (!rc && (v = mimo_cfg_get(c, n, "ordered", NULL)) &&
        !(rc = mimo_cfg_get_bool(c, v, "'ordered' in split", &s->ordered)) &&
        s->ordered && s->by)
        rc = mimo_cfg_err(c, v, "split: ordered (by time, the file's row order) "
                          "and by (groups drawn at random) cannot both apply");
    if (!rc && s->val + s->test >= 1)
        rc = mimo_cfg_err(c, n, "split: val + test is %g, which leaves no "
                          "training rows (expected less than 1)",
                          s->val + s->test);
    return rc;
}

/* window: L and horizon: H: windows of L rows, the targets H rows after
 * the window's last; the split then goes by time, so `by` cannot apply. */
static int windowing(cfg *c, yaml_node_t *root, mimo_schema *s)
{
    yaml_node_t *w = mimo_cfg_get(c, root, "window", NULL);
    yaml_node_t *h = mimo_cfg_get(c, root, "horizon", NULL);
    int rc = 0;
    if (w && (rc = mimo_cfg_get_int(c, w, "window", 1, INT32_MAX,
                                    "an integer >= 1 (time steps per window)",
                                    &s->window)))
        return rc;
    if (h && !w)
        return mimo_cfg_err(c, h, "horizon applies to windows: give window: L "
                            "(time steps per window) too");
    s->horizon = 1;
    if (h && (rc = mimo_cfg_get_int(c, h, "horizon", 1, INT32_MAX,
                                    "an integer >= 1 (the target's row after "
                                    "the window's last; 1: the next)",
                                    &s->horizon)))
        return rc;
    s->window_pos = mimo_cfg_pos_of(c, w ? w : root);
    if (w && s->by)
        return mimo_cfg_err(c, w, "window: the split goes by time (train the "
                            "earliest rows, then val, then test), so split: "
                            "by: %s cannot apply: remove one", s->by);
    return 0;
}

static int convert(cfg *c, mimo_schema *s)
{
    yaml_node_t *root = yaml_document_get_root_node(&c->doc), *v;
    if (root->type != YAML_MAPPING_NODE)
        return mimo_cfg_wrong(c, root, "a mapping with columns (and split, "
                              "shuffle, delimiter)", "the schema");
    int rc = mimo_cfg_check_keys(c, root, "the schema", ROOT_KEYS, 6);
    if (rc)
        return rc;
    if (!(v = mimo_cfg_get(c, root, "columns", NULL)))
        return mimo_cfg_missing(c, root, "the schema", "columns",
                                "a mapping of column names to {kind: ...}");
    if ((rc = columns(c, v, s)))
        return rc;
    if ((v = mimo_cfg_get(c, root, "split", NULL)) && (rc = split(c, v, s)))
        return rc;
    if ((v = mimo_cfg_get(c, root, "shuffle", NULL)) &&
        (rc = mimo_cfg_get_bool(c, v, "shuffle", &s->shuffle)))
        return rc;
    if ((v = mimo_cfg_get(c, root, "delimiter", NULL)) &&
        (rc = get_char(c, v, "delimiter", &s->delimiter)))
        return rc;
    return windowing(c, root, s);
}

/* The whole schema file, NUL-terminated. */
static int read_text(const char *path, char **text, size_t *len)
{
    int fd, rc = mimo_open_regular(path, "schema file", &fd);
    if (rc)
        return rc;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return mimo_error(MIMO_ENOMEM, "%s: out of memory", path);
    }
    char *b = malloc(SCHEMA_MAX_BYTES + 1);
    size_t n = b ? fread(b, 1, SCHEMA_MAX_BYTES + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (!b)
        return mimo_error(MIMO_ENOMEM, "%s: out of memory", path);
    if (bad || n > SCHEMA_MAX_BYTES) {
        free(b);
        return bad ? mimo_error(MIMO_EIO, "%s: cannot read the schema", path)
                   : mimo_error(MIMO_EINVAL, "%s: larger than %u MB: not a "
                                "schema", path, SCHEMA_MAX_BYTES >> 20);
    }
    b[n] = '\0';
    *text = b;
    *len = n;
    return 0;
}

/* Parses out->text (len bytes) as the schema named out->file. */
static int parse(mimo_schema *out, size_t len)
{
    if (strspn(out->text, " \t\r\n") == len) {
        mimo_error(MIMO_EINVAL, "%s: empty schema, expected a mapping with "
                   "columns: {NAME: {kind: ...}}", out->file);
        mimo_schema_free(out);
        return MIMO_EINVAL;
    }
    cfg c;
    memset(&c, 0, sizeof c);
    c.file = out->file;
    int rc = mimo_cfg_load(&c, out->text, len);
    if (!rc)
        rc = convert(&c, out);
    if (c.loaded)
        yaml_document_delete(&c.doc);
    if (rc)
        mimo_schema_free(out);
    return rc;
}

int mimo_schema_load(const char *path, mimo_schema *out)
{
    memset(out, 0, sizeof *out);
    size_t len = 0;
    int rc = read_text(path, &out->text, &len);
    if (rc)
        return rc;
    if (!(out->file = mimo_strdup(path))) {
        mimo_schema_free(out);
        return mimo_error(MIMO_ENOMEM, "out of memory");
    }
    return parse(out, len);
}

int mimo_schema_parse(const char *text, const char *name, mimo_schema *out)
{
    memset(out, 0, sizeof *out);
    if (!(out->text = mimo_strdup(text)) || !(out->file = mimo_strdup(name))) {
        mimo_schema_free(out);
        return mimo_error(MIMO_ENOMEM, "out of memory");
    }
    return parse(out, strlen(text));
}

void mimo_schema_free(mimo_schema *s)
{
    for (int i = 0; s->cols && i < s->n_cols; i++) {
        free(s->cols[i].name);
        free(s->cols[i].into);
        free(s->cols[i].column);
    }
    free(s->cols);
    free(s->by);
    free(s->file);
    free(s->text);
    memset(s, 0, sizeof *s);
}
