/* config_yaml.c — the config's YAML document: loading it with libyaml
 * (one document, bounded nesting, parse errors at file:line:column), its
 * nodes and where each came from (the file's line and column, or the
 * --set that made it), error messages that name that place, the keys of
 * a mapping (unknown, duplicate, missing), scalars read as names,
 * integers, numbers and booleans, and the document re-emitted as the
 * text actually used. */
#include "io/config_impl.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/error.h"
#include "base/strutil.h"

/* ---- nodes and messages ------------------------------------------------ */

yaml_node_t *mimo_cfg_node_at(cfg *c, int index)
{
    return yaml_document_get_node(&c->doc, index);
}

static int node_index(const cfg *c, const yaml_node_t *n)
{
    return (int)(n - c->doc.nodes.start) + 1;
}

const char *mimo_cfg_sval(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

int mimo_cfg_is_null(const yaml_node_t *n)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    return n->type == YAML_SCALAR_NODE
           && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE
           && mimo_cfg_in_list(mimo_cfg_sval(n), nulls, 5);
}

int mimo_cfg_seq_len(const yaml_node_t *seq)
{
    return (int)(seq->data.sequence.items.top - seq->data.sequence.items.start);
}

int mimo_cfg_pair_count(const yaml_node_t *map)
{
    return (int)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
}

/* The --set that created node n, or -1 if n comes from the text. */
int mimo_cfg_set_of(const cfg *c, const yaml_node_t *n)
{
    int idx = node_index(c, n), s = -1;
    if (idx <= c->n_orig)
        return -1;
    for (int i = 0; i < c->n_sets; i++)
        if (c->set_first[i] <= idx)
            s = i;
    return s;
}

int mimo_cfg_set_path_len(const char *set)
{
    const char *eq = strchr(set, '=');
    return (int)(eq ? eq - set : (ptrdiff_t)strlen(set));
}

/* "FILE:LINE:COL" or "FILE: --set KEY.PATH" */
void mimo_cfg_where(const cfg *c, const yaml_node_t *n, char *buf, size_t cap)
{
    int s = n ? mimo_cfg_set_of(c, n) : -1;
    if (!n)
        snprintf(buf, cap, "%s", c->file);
    else if (s >= 0)
        snprintf(buf, cap, "%s: --set %.*s", c->file,
                 mimo_cfg_set_path_len(c->sets[s]), c->sets[s]);
    else
        snprintf(buf, cap, "%s:%lu:%lu", c->file,
                 (unsigned long)n->start_mark.line + 1,
                 (unsigned long)n->start_mark.column + 1);
}

/* "line 3, column 5" or "--set KEY.PATH", for "first given at ..." */
void mimo_cfg_where_short(const cfg *c, const yaml_node_t *n, char *buf,
                          size_t cap)
{
    int s = mimo_cfg_set_of(c, n);
    if (s >= 0)
        snprintf(buf, cap, "--set %.*s", mimo_cfg_set_path_len(c->sets[s]),
                 c->sets[s]);
    else
        snprintf(buf, cap, "line %lu, column %lu",
                 (unsigned long)n->start_mark.line + 1,
                 (unsigned long)n->start_mark.column + 1);
}

mimo_pos mimo_cfg_pos_of(const cfg *c, const yaml_node_t *n)
{
    mimo_pos p = {0, 0};
    if (mimo_cfg_set_of(c, n) < 0) {
        size_t l = n->start_mark.line + 1, k = n->start_mark.column + 1;
        p.line = l > INT_MAX ? INT_MAX : (int)l;
        p.col = k > INT_MAX ? INT_MAX : (int)k;
    }
    return p;
}

/* Records "WHERE: message" for node n and returns MIMO_EINVAL. */
int mimo_cfg_err(const cfg *c, const yaml_node_t *n, const char *fmt, ...)
{
    char loc[MSG_MAX], msg[MSG_MAX];
    va_list ap;
    mimo_cfg_where(c, n, loc, sizeof loc);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mimo_error(MIMO_EINVAL, "%s: %s", loc, msg);
}

/* The same for a position kept in the spec (line 0: from --set). */
int mimo_cfg_err_at(const cfg *c, mimo_pos p, const char *fmt, ...)
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

int mimo_cfg_nomem(const cfg *c)
{
    return mimo_error(MIMO_ENOMEM, "%s: out of memory reading the config",
                      c->file);
}

/* "a mapping", "a list", "nothing", "'text'" */
static void describe(const yaml_node_t *n, char *buf, size_t cap)
{
    if (n->type == YAML_MAPPING_NODE)
        snprintf(buf, cap, "%s",
                 mimo_cfg_pair_count(n) ? "a mapping" : "an empty mapping");
    else if (n->type == YAML_SEQUENCE_NODE)
        snprintf(buf, cap, "%s",
                 mimo_cfg_seq_len(n) ? "a list" : "an empty list");
    else if (mimo_cfg_is_null(n))
        snprintf(buf, cap, "nothing");
    else
        snprintf(buf, cap, "'%.60s'", mimo_cfg_sval(n));
}

int mimo_cfg_wrong(const cfg *c, const yaml_node_t *n, const char *expected,
                   const char *what)
{
    char got[80];
    describe(n, got, sizeof got);
    return mimo_cfg_err(c, n, "expected %s for %s, got %s", expected, what,
                        got);
}

/* ---- mappings: lookup, unknown and duplicate keys ---------------------- */

/* Value of `key` in map (first match), its key node in *knode. */
yaml_node_t *mimo_cfg_get(cfg *c, yaml_node_t *map, const char *key,
                          yaml_node_t **knode)
{
    yaml_node_pair_t *p;
    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = mimo_cfg_node_at(c, p->key);
        if (k && k->type == YAML_SCALAR_NODE
            && strcmp(mimo_cfg_sval(k), key) == 0) {
            if (knode)
                *knode = k;
            return mimo_cfg_node_at(c, p->value);
        }
    }
    return NULL;
}

static int cmp_entry(const void *pa, const void *pb)
{
    const entry *a = pa, *b = pb;
    int r = strcmp(a->name, b->name);
    return r ? r : (a->order > b->order) - (a->order < b->order);
}

/* Finds the earliest second use of a name; 1 if found, with both nodes. */
int mimo_cfg_find_dup(entry *e, int n, yaml_node_t **first, yaml_node_t **again)
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
    if (k->type != YAML_SCALAR_NODE || mimo_cfg_is_null(k)
        || strlen(mimo_cfg_sval(k)) != k->data.scalar.length)
        return mimo_cfg_wrong(c, k, "a key name", what);
    return 0;
}

static int check_dups(cfg *c, yaml_node_t *map, const char *what)
{
    int n = mimo_cfg_pair_count(map), rc = 0;
    yaml_node_t *first, *again;
    entry *e;
    if (n < 2)
        return 0;
    e = calloc((size_t)n, sizeof *e);
    if (!e)
        return mimo_cfg_nomem(c);
    for (int i = 0; i < n; i++) {
        e[i].node = mimo_cfg_node_at(c, map->data.mapping.pairs.start[i].key);
        e[i].name = mimo_cfg_sval(e[i].node);
        e[i].order = i;
    }
    if (mimo_cfg_find_dup(e, n, &first, &again)) {
        char at[MSG_MAX];
        mimo_cfg_where_short(c, first, at, sizeof at);
        rc = mimo_cfg_err(c, again,
                          "duplicate key '%s' in %s (first given at %s)",
                          mimo_cfg_sval(again), what, at);
    }
    free(e);
    return rc;
}

/* Every key a name, known (if allowed != NULL) and given once. */
int mimo_cfg_check_keys(cfg *c, yaml_node_t *map, const char *what,
                        const char *const *allowed, int n_allowed)
{
    yaml_node_pair_t *p;
    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = mimo_cfg_node_at(c, p->key);
        int rc = key_name(c, k, what);
        if (rc)
            return rc;
        if (allowed
            && !mimo_cfg_in_list(mimo_cfg_sval(k), allowed, n_allowed)) {
            char list[MSG_MAX / 2], hint[96];
            mimo_cfg_join(list, sizeof list, allowed, n_allowed);
            mimo_cfg_suggest(hint, sizeof hint, mimo_cfg_sval(k), allowed,
                             n_allowed);
            if (!hint[0] && strchr(mimo_cfg_sval(k), ':'))
                snprintf(hint, sizeof hint, "; put a space after ':'");
            return mimo_cfg_err(
                c, k, "unknown key '%s' in %s (expected one of: %s%s)",
                mimo_cfg_sval(k), what, list, hint);
        }
    }
    return check_dups(c, map, what);
}

/* ---- scalars ----------------------------------------------------------- */

/* A non-null scalar without NUL bytes. */
int mimo_cfg_scalar(cfg *c, yaml_node_t *n, const char *expected,
                    const char *what, const char **s)
{
    if (n->type != YAML_SCALAR_NODE || mimo_cfg_is_null(n)
        || strlen(mimo_cfg_sval(n)) != n->data.scalar.length)
        return mimo_cfg_wrong(c, n, expected, what);
    *s = mimo_cfg_sval(n);
    return 0;
}

int mimo_cfg_get_name(cfg *c, yaml_node_t *n, const char *what, const char **s)
{
    return mimo_cfg_scalar(c, n, "a name", what, s);
}

/* Decimal integer: 0 ok, 1 not an integer, 2 out of range. */
int mimo_cfg_parse_ll(const char *s, long long *v)
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

int mimo_cfg_get_int(cfg *c, yaml_node_t *n, const char *what, long long lo,
                     long long hi, const char *expected, long long *v)
{
    const char *s = NULL;
    int rc = mimo_cfg_scalar(c, n, expected, what, &s), r;
    if (rc)
        return rc;
    r = mimo_cfg_parse_ll(s, v);
    if (r == 1)
        return mimo_cfg_wrong(c, n, expected, what);
    if (r == 2 || *v > hi)
        return mimo_cfg_err(c, n, "%s is too large for %s (expected %s)", s,
                            what, expected);
    if (*v < lo)
        return mimo_cfg_wrong(c, n, expected, what);
    return 0;
}

int mimo_cfg_get_ull(cfg *c, yaml_node_t *n, const char *what,
                     unsigned long long *v)
{
    const char *s = NULL, *expected = "a non-negative integer";
    int rc = mimo_cfg_scalar(c, n, expected, what, &s);
    const char *p;
    if (rc)
        return rc;
    p = s + (*s == '+');
    if (!*p)
        return mimo_cfg_wrong(c, n, expected, what);
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            return mimo_cfg_wrong(c, n, expected, what);
    errno = 0;
    *v = strtoull(p, NULL, 10);
    if (errno == ERANGE)
        return mimo_cfg_err(c, n, "%s is too large for %s (expected %s)", s,
                            what, expected);
    return 0;
}

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

int mimo_cfg_get_double(cfg *c, yaml_node_t *n, const char *what, int range,
                        double *v)
{
    static const char *const expect[] = {
        "a number", "a number > 0", "a number >= 0", "a number in [0, 1)",
        "a number in (0, 1]", "a number in (0, 1)"};
    const char *s = NULL, *e = expect[range];
    char *end;
    int rc = mimo_cfg_scalar(c, n, e, what, &s);
    if (rc)
        return rc;
    *v = strtod(s, &end);
    if (end == s || *end)
        return mimo_cfg_wrong(c, n, e, what);
    if (!isfinite(*v))
        return mimo_cfg_err(c, n,
                            "expected %s for %s, got %s (NaN and Inf are not "
                            "allowed)",
                            e, what, s);
    if (!in_range(range, *v))
        return mimo_cfg_wrong(c, n, e, what);
    return 0;
}

/* YAML 1.1 booleans, any case: 1 and *v set when s is one. */
int mimo_cfg_bool_word(const char *s, int *v)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    for (int i = 0; i < 3; i++) {
        if (mimo_cfg_lower_eq(s, yes[i]) || mimo_cfg_lower_eq(s, no[i])) {
            *v = mimo_cfg_lower_eq(s, yes[i]);
            return 1;
        }
    }
    return 0;
}

int mimo_cfg_is_bool_node(const yaml_node_t *n)
{
    int v;
    return n->type == YAML_SCALAR_NODE && !mimo_cfg_is_null(n)
           && strlen(mimo_cfg_sval(n)) == n->data.scalar.length
           && mimo_cfg_bool_word(mimo_cfg_sval(n), &v);
}

int mimo_cfg_get_bool(cfg *c, yaml_node_t *n, const char *what, int *v)
{
    const char *e = "true or false", *s = NULL;
    int rc = mimo_cfg_scalar(c, n, e, what, &s);
    if (rc)
        return rc;
    if (mimo_cfg_bool_word(s, v))
        return 0;
    return mimo_cfg_wrong(c, n, e, what);
}

/* Error for a required key missing in the item named by node `at`. */
int mimo_cfg_missing(cfg *c, yaml_node_t *at, const char *what, const char *key,
                     const char *expected)
{
    return mimo_cfg_err(c, at, "%s has no '%s' (expected %s)", what, key,
                        expected);
}

/* ---- loading ----------------------------------------------------------- */

int mimo_cfg_parse_error(cfg *c, yaml_parser_t *p, const char *text, size_t len,
                         const char *who)
{
    size_t line = p->problem_mark.line, col = p->problem_mark.column;
    char ctx[MSG_MAX / 2] = "";
    if (p->error == YAML_MEMORY_ERROR)
        return mimo_cfg_nomem(c);
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
        return mimo_cfg_parse_error(c, p, text, len, NULL);
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

int mimo_cfg_load(cfg *c, const char *text, size_t len)
{
    yaml_parser_t p;
    yaml_node_t *root;
    int rc = 0;
    size_t deep = too_deep(text, len);
    if (deep)
        return mimo_error(MIMO_EINVAL, "%s:%zu: nested more than %d levels deep "
                          "(a config needs a handful)", c->file, deep, MAX_DEPTH);
    if (!yaml_parser_initialize(&p))
        return mimo_cfg_nomem(c);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    if (!yaml_parser_load(&p, &c->doc)) {
        rc = mimo_cfg_parse_error(c, &p, text, len, NULL);
        yaml_parser_delete(&p);
        return rc;
    }
    c->loaded = 1;
    c->n_orig = (int)(c->doc.nodes.top - c->doc.nodes.start);
    root = yaml_document_get_root_node(&c->doc);
    if (!root || mimo_cfg_is_null(root))
        rc = mimo_error(MIMO_EINVAL, "%s: empty config, expected a mapping "
                        "with inputs, layers, outputs", c->file);
    if (!rc)
        rc = check_one_doc(c, &p, text, len);
    yaml_parser_delete(&p);
    return rc;
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
        return mimo_cfg_nomem(c);
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
                     || !e.problem
                 ? mimo_cfg_nomem(c)
                 : mimo_error(MIMO_EINVAL,
                              "%s: cannot write the config after "
                              "--set: %s",
                              c->file, e.problem);
    yaml_emitter_delete(&e);
    if (rc)
        free(b.buf);
    else
        out->text = b.buf;
    return rc;
}

int mimo_cfg_keep_text(cfg *c, const char *text, size_t len, mimo_spec *out)
{
    if (c->n_sets > 0 || c->rewritten)
        return emit_text(c, out);
    if (!(out->text = malloc(len + 1)))
        return mimo_cfg_nomem(c);
    if (len)
        memcpy(out->text, text, len);
    out->text[len] = '\0';
    return 0;
}


/* A file path. One written in the config file is relative to the file's
 * directory (as a compiler resolves includes), and the document gets the
 * resolved, absolute path, so the config saved with the run resolves the
 * same from anywhere; one given with --set is relative to the current
 * directory, as every path on the command line. */
int mimo_cfg_path(cfg *c, yaml_node_t *n, const char *what, char **dst)
{
    const char *s = NULL;
    int rc = mimo_cfg_scalar(c, n, "a file path", what, &s);
    if (rc)
        return rc;
    if (!c->base || s[0] == '/' || mimo_cfg_set_of(c, n) >= 0)
        return (*dst = mimo_strdup(s)) ? 0 : mimo_cfg_nomem(c);
    size_t len = strlen(c->base) + strlen(s) + 2;
    char *full = malloc(len);
    if (!full)
        return mimo_cfg_nomem(c);
    snprintf(full, len, "%s/%s", c->base, s);
    if (!(*dst = mimo_strdup(full))) {
        free(full);
        return mimo_cfg_nomem(c);
    }
    free(n->data.scalar.value); /* libyaml's allocator is malloc's */
    n->data.scalar.value = (yaml_char_t *)full;
    n->data.scalar.length = len - 1;
    c->rewritten = 1;
    return 0;
}
