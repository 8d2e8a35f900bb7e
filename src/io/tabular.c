/* tabular.c — `mimo import csv --schema`: a CSV with string, numeric and
 * list columns into dataset files mimo trains from, in two streaming
 * passes of bounded memory:
 *   pass 1  every row: its split, its fields checked (numbers, field
 *           count); training rows only: vocabularies counted, numeric
 *           statistics (count, mean, variance, min, max) accumulated
 *   pass 2  every row converted (ids through the finished vocabularies)
 *           into a window of each split's rows, written chunked into the
 *           split's file; shuffled rows land at a seeded random position,
 *           so a split larger than the window is read once per window
 * Each split's file is written under a temporary name and renamed only
 * when every file is complete (fsutil's atomic writer): an error leaves
 * nothing. Every file carries /preprocessing: the vocabularies, the
 * statistics, the hash's name and key, the schema text.
 * With window: L in the schema the rows are a time series (in file order):
 * the split goes by time (train the first rows, then val, then test:
 * floor(total * val) and floor(total * test) rows, test last), and each
 * split's rows i..i+L-1 become one written row, an input (L,) per
 * category or hashed column and (L, F) per numeric dataset, its targets
 * those of row i+L-1+H (horizon: H). A window never reaches across a
 * split's boundary, so no val or test row is in a training window nor
 * the target of one; shuffle: true shuffles the training windows only.
 * split: {ordered: true} splits plain rows by time the same way (the
 * file in time order; shuffle: true then shuffles the training rows).
 * Pass 2 keeps the last L+H converted rows of the split in a ring.
 * Memory: the read block, the windows (--memory-mb), and the
 * vocabularies (one entry per distinct training value of a category
 * column: use hashed for ids without bound).
 *
 * The same passes, frozen, convert a raw CSV at predict and eval
 * (mimo_tab_raw, io/prep.h): the schema, delimiter, vocabularies and
 * means come from a checkpoint's /preprocessing instead of pass 1, which
 * then only counts and checks the rows; one split, unshuffled, in one
 * window, written to a file in memory. A row is thus converted by the
 * very code that converted the training data. */
#define _POSIX_C_SOURCE 200809L
#include "mimo/import.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fsutil.h"
#include "base/hash.h"
#include "base/strutil.h"
#include "io/h5_impl.h"
#include "io/prep.h"
#include "io/schema.h"
#include "mimo/error.h"
#include "io/csv.h"

enum { TRAIN, VAL, TEST, NSPLIT };
static const char *const SPLIT_NAME[NSPLIT] = {"train", "val", "test"};

#define DEFAULT_MEMORY_MB 256.0
#define CHUNK_BYTES ((size_t)1 << 18) /* HDF5 chunk: 256 KiB, a few per read */
/* the split's draw: SipHash-2-4 keyed (seed, SPLIT_KEY1) of the row's
 * number (8 bytes, little-endian) or of the `by` column's value */
#define SPLIT_KEY1 0x73706c6974ULL /* "split" */
#define SHUFFLE_KEY1 0x73687566ULL /* "shuf" */

/* ---- vocabularies ------------------------------------------------------ */

typedef struct {
    char *s;
    size_t len;
    uint64_t count; /* training rows (tokens, for multi_hot) */
    int32_t id;     /* after finish */
} ventry;

/* An open-addressing table of the distinct values. */
typedef struct {
    ventry *e;
    size_t n, cap;
    uint32_t *slot; /* index + 1, 0 empty; nslot a power of two */
    size_t nslot;
    ventry **sorted; /* after finish: by id order (n_kept) */
    size_t n_kept;
    uint64_t oov;    /* training count mapped to OOV */
} vocab;

static size_t vslot(const vocab *v, const char *s, size_t len)
{
    size_t mask = v->nslot - 1, i = (size_t)mimo_siphash24(0, 0, s, len) & mask;
    while (v->slot[i]) {
        const ventry *e = &v->e[v->slot[i] - 1];
        if (e->len == len && memcmp(e->s, s, len) == 0)
            break;
        i = (i + 1) & mask;
    }
    return i;
}

static ventry *vfind(const vocab *v, const char *s, size_t len)
{
    if (!v->nslot)
        return NULL;
    size_t i = vslot(v, s, len);
    return v->slot[i] ? &v->e[v->slot[i] - 1] : NULL;
}

static int vgrow(vocab *v)
{
    size_t ns = v->nslot ? 2 * v->nslot : 1024;
    uint32_t *slot = calloc(ns, sizeof *slot);
    if (!slot || ns > UINT32_MAX) {
        free(slot);
        return MIMO_ENOMEM;
    }
    free(v->slot);
    v->slot = slot;
    v->nslot = ns;
    for (size_t k = 0; k < v->n; k++)
        v->slot[vslot(v, v->e[k].s, v->e[k].len)] = (uint32_t)(k + 1);
    return 0;
}

/* Counts one occurrence of s. */
static int vadd(vocab *v, const char *s, size_t len)
{
    if (2 * (v->n + 1) > v->nslot && vgrow(v))
        return MIMO_ENOMEM;
    size_t i = vslot(v, s, len);
    if (v->slot[i]) {
        v->e[v->slot[i] - 1].count++;
        return 0;
    }
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 64;
        ventry *e = realloc(v->e, cap * sizeof *e);
        if (!e)
            return MIMO_ENOMEM;
        v->e = e;
        v->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return MIMO_ENOMEM;
    memcpy(copy, s, len);
    copy[len] = '\0';
    v->e[v->n] = (ventry){copy, len, 1, 0};
    v->slot[i] = (uint32_t)(++v->n);
    return 0;
}

/* Descending count, then ascending bytes (a shorter prefix first). */
static int by_count(const void *a, const void *b)
{
    const ventry *x = *(ventry *const *)a, *y = *(ventry *const *)b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    size_t m = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, m);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Ids by StringLookup's rule: first (0 for a target, 2 otherwise, after
 * mask 0 and OOV 1) counting up in descending frequency; values rarer
 * than min_count, or past max_tokens ids in all, get `rest` (OOV 1, or -1
 * for a target). */
static int vfinish(vocab *v, int32_t first, int32_t rest, long long max_tokens,
                   long long min_count)
{
    if (!(v->sorted = malloc((v->n ? v->n : 1) * sizeof *v->sorted)))
        return MIMO_ENOMEM;
    for (size_t k = 0; k < v->n; k++)
        v->sorted[k] = &v->e[k];
    qsort(v->sorted, v->n, sizeof *v->sorted, by_count);
    size_t room = max_tokens ? (size_t)max_tokens - (size_t)first : SIZE_MAX;
    v->n_kept = 0;
    for (size_t k = 0; k < v->n; k++) {
        ventry *e = v->sorted[k];
        if (v->n_kept < room && e->count >= (uint64_t)min_count) {
            e->id = first + (int32_t)v->n_kept++;
        } else {
            e->id = rest;
            v->oov += e->count;
        }
    }
    return 0;
}

static void vfree(vocab *v)
{
    for (size_t k = 0; k < v->n; k++)
        free(v->e[k].s);
    free(v->e);
    free(v->slot);
    free(v->sorted);
    memset(v, 0, sizeof *v);
}

/* ---- the job ----------------------------------------------------------- */

/* One schema column, bound to the CSV and to its dataset. */
typedef struct {
    const mimo_schema_col *s;
    size_t field;        /* its index in a record */
    int set, slot;       /* the dataset it fills, its first value there */
    vocab voc;           /* category, multi_hot: training values */
    double n, mean, m2, min, max; /* numeric, training split (Welford) */
    uint64_t missing;    /* empty cells in the training split */
    uint64_t truncated;  /* multi_hot rows with more than max_length ids */
} tcol;

/* One dataset of the output files. */
typedef struct {
    const char *name;
    mimo_col_kind kind;
    int is_int, target;
    size_t width;        /* values per row */
    int rank1;           /* written (N,) */
    int first;           /* its first column (tcol index) */
    size_t steps;        /* rows per written row: window L for an input
                            of a windowed import, else 1 */
    void *ring;          /* windowed: the split's last L+H rows (L+H,
                            width) 4-byte values, row i at i % (L+H) */
    hid_t d[NSPLIT];     /* open while pass 2 writes */
    void *win[NSPLIT];   /* the window: (W_s, steps, width) 4-byte values */
} tset;

typedef struct {
    const mimo_tab_opts *o;
    mimo_schema sc;
    mimo_csv csv;
    char **header;
    size_t nh;
    tcol *cols;
    int ncols;
    tset *sets;
    int nsets;
    int by;              /* tcol index of split.by, or -1 */
    size_t by_field;
    uint64_t rows[NSPLIT], total;
    uint64_t out_rows[NSPLIT]; /* the rows written: rows, or windows */
    int windowed;        /* the schema's window > 0 */
    int timed;           /* split by time: windowed, or split.ordered */
    uint64_t span;       /* windowed: window + horizon rows */
    uint64_t time_end[NSPLIT]; /* timed: the split's rows end here */
    int want[NSPLIT];    /* the split has a file */
    char *path[NSPLIT];  /* its output file */
    mimo_atomic at[NSPLIT];
    int at_open[NSPLIT];
    hid_t f[NSPLIT];
    size_t win_rows[NSPLIT];
    uint64_t lo[NSPLIT], seen[NSPLIT]; /* pass 2: window starts, rows met */
    /* a raw CSV for predict and eval (mimo_tab_raw): the vocabularies and
     * statistics are a checkpoint's, one file of every row in order,
     * built in memory */
    int frozen;
    int targets;         /* frozen: the target columns too (eval) */
    const char *ckpt;    /* frozen: where the preprocessing came from */
    mimo_h5_image img;   /* frozen: the file's bytes */
} tjob;

/* "'name' (column 3)" for messages. */
static const char *col_desc(const tjob *j, size_t field, char *buf, size_t cap)
{
    snprintf(buf, cap, "column '%s' (%zu)", j->header[field], field + 1);
    return buf;
}

/* ---- binding the schema to the header ----------------------------------- */

static int find_field(const tjob *j, const char *name, size_t *field)
{
    for (size_t c = 0; c < j->nh; c++)
        if (strcmp(j->header[c], name) == 0) {
            *field = c;
            return 1;
        }
    return 0;
}

static int missing_column(const tjob *j, const char *name, mimo_pos pos)
{
    int target = 0;
    for (int i = 0; i < j->sc.n_cols; i++)
        target |= !strcmp(j->sc.cols[i].name, name) && j->sc.cols[i].target;
    char list[600] = "";
    for (size_t c = 0; c < j->nh; c++) {
        size_t used = strlen(list);
        if (used > sizeof list - 80) {
            snprintf(list + used, sizeof list - used, ", ...");
            break;
        }
        snprintf(list + used, sizeof list - used, "%s%s", c ? ", " : "",
                 j->header[c]);
    }
    if (j->frozen)
        return mimo_error(MIMO_EINVAL, "%s: no column '%s', which the training "
                          "schema (kept in %s) needs%s (its columns: %s)",
                          j->o->path, name, j->ckpt,
                          target ? " to evaluate (a target)" : "", list);
    return mimo_error(MIMO_EINVAL, "%s:%d:%d: column '%s' is not in %s (its "
                      "columns: %s)", j->sc.file, pos.line, pos.col, name,
                      j->o->path, list);
}

/* The dataset named name, created if new; numeric columns may share one. */
static int bind_set(tjob *j, int ci)
{
    tcol *c = &j->cols[ci];
    const mimo_schema_col *s = c->s;
    const char *name = s->into ? s->into : s->name;
    for (int k = 0; k < j->nsets; k++) {
        tset *t = &j->sets[k];
        if (strcmp(t->name, name))
            continue;
        if (t->kind != MIMO_COL_NUMERIC || s->kind != MIMO_COL_NUMERIC ||
            t->target != s->target)
            return mimo_error(MIMO_EINVAL, "%s:%d:%d: column '%s' writes "
                              "dataset '%s', which column '%s' writes too (only "
                              "numeric columns, all inputs or all targets, "
                              "share one)", j->sc.file, s->pos.line, s->pos.col,
                              s->name, name, j->cols[t->first].s->name);
        c->set = k;
        c->slot = (int)t->width++;
        t->rank1 = 0;
        return 0;
    }
    tset *t = &j->sets[j->nsets];
    memset(t, 0, sizeof *t);
    t->name = name;
    t->kind = s->kind;
    t->is_int = s->kind != MIMO_COL_NUMERIC;
    t->target = s->target;
    t->width = s->kind == MIMO_COL_MULTI_HOT ? (size_t)s->max_length : 1;
    t->rank1 = s->kind != MIMO_COL_MULTI_HOT;
    t->first = ci;
    t->steps = j->windowed && !s->target ? (size_t)j->sc.window : 1;
    for (int p = 0; p < NSPLIT; p++)
        t->d[p] = -1;
    c->set = j->nsets++;
    c->slot = 0;
    return 0;
}

static int bind(tjob *j)
{
    j->by = -1;
    if (!(j->cols = calloc((size_t)j->sc.n_cols, sizeof *j->cols)) ||
        !(j->sets = calloc((size_t)j->sc.n_cols, sizeof *j->sets)))
        return mimo_error(MIMO_ENOMEM, "out of memory");
    for (int i = 0; i < j->sc.n_cols; i++) {
        const mimo_schema_col *s = &j->sc.cols[i];
        size_t field = 0;
        if (j->frozen && (s->kind == MIMO_COL_SKIP || (s->target && !j->targets)))
            continue; /* not needed to predict */
        const char *csv_name = s->column ? s->column : s->name;
        if (!find_field(j, csv_name, &field))
            return missing_column(j, csv_name, s->pos);
        for (int k = 0; k < j->ncols && !s->column; k++)
            if (j->cols[k].field == field && !j->cols[k].s->column)
                return mimo_error(MIMO_EINVAL, "%s:%d:%d: column '%s' appears "
                                  "twice in the header of %s", j->sc.file,
                                  s->pos.line, s->pos.col, s->name, j->o->path);
        if (s->kind == MIMO_COL_SKIP)
            continue;
        tcol *c = &j->cols[j->ncols];
        c->s = s;
        c->field = field;
        c->min = INFINITY;
        c->max = -INFINITY;
        int rc = bind_set(j, j->ncols++);
        if (rc)
            return rc;
    }
    if (!j->ncols)
        return mimo_error(MIMO_EINVAL, "%s: every column is kind: skip, nothing "
                          "to import", j->sc.file);
    if (j->sc.by && !j->frozen && !find_field(j, j->sc.by, &j->by_field))
        return missing_column(j, j->sc.by, j->sc.by_pos);
    if (j->sc.by && !j->frozen)
        j->by = 0;
    return 0;
}

/* ---- reading ------------------------------------------------------------ */

static int read_header(tjob *j)
{
    int r = mimo_csv_next(&j->csv);
    if (r < 0)
        return r;
    if (r == 0)
        return mimo_error(MIMO_EINVAL, "%s: empty file (expected a header "
                          "line naming the columns)", j->o->path);
    j->nh = j->csv.nf;
    if (!(j->header = calloc(j->nh, sizeof *j->header)))
        return mimo_error(MIMO_ENOMEM, "out of memory");
    for (size_t c = 0; c < j->nh; c++) {
        const char *s = mimo_csv_field(&j->csv, c);
        s += strspn(s, " \t");
        if (!(j->header[c] = mimo_strdup(s)))
            return mimo_error(MIMO_ENOMEM, "out of memory");
        size_t n = strlen(j->header[c]);
        while (n && (j->header[c][n - 1] == ' ' || j->header[c][n - 1] == '\t'))
            j->header[c][--n] = '\0';
    }
    return 0;
}

/* The next data record, its field count checked. */
static int next_row(tjob *j)
{
    int r = mimo_csv_next(&j->csv);
    if (r <= 0)
        return r;
    size_t nf = j->csv.nf;
    if (nf == j->nh)
        return 1;
    char d[300];
    if (nf < j->nh)
        return mimo_error(MIMO_EINVAL, "%s:%ld: expected %zu fields, found %zu: "
                          "%s and after are missing", j->o->path,
                          j->csv.rec_line, j->nh, nf, col_desc(j, nf, d, sizeof d));
    return mimo_error(MIMO_EINVAL, "%s:%ld: expected %zu fields, found %zu: "
                      "field %zu is past the last column '%s'", j->o->path,
                      j->csv.rec_line, j->nh, nf, j->nh + 1, j->header[j->nh - 1]);
}

/* The split of data row `row` (0-based): a uniform draw in [0, 1) from
 * SipHash of the row's number, or of the `by` column's value (a group's
 * rows go together); [0, test) test, [test, test + val) val, else train. */
static int row_split(const tjob *j, uint64_t row)
{
    if (j->timed)
        return row < j->time_end[TRAIN] ? TRAIN
               : row < j->time_end[VAL] ? VAL : TEST;
    uint64_t h;
    if (j->by >= 0) {
        const char *v = mimo_csv_field(&j->csv, j->by_field);
        h = mimo_siphash24(j->sc.seed, SPLIT_KEY1, v, strlen(v));
    } else {
        unsigned char b[8];
        for (int k = 0; k < 8; k++)
            b[k] = (unsigned char)(row >> (8 * k));
        h = mimo_siphash24(j->sc.seed, SPLIT_KEY1, b, 8);
    }
    double u = (double)(h >> 11) * 0x1.0p-53;
    return u < j->sc.test ? TEST : u < j->sc.test + j->sc.val ? VAL : TRAIN;
}

/* A plain decimal ([+-]digits[.digits], at most 19 digits) parsed
 * exactly as strtod would: the digits as an integer m < 2^53 and at most
 * 22 decimals are both exact doubles, so m / 10^k is one correctly
 * rounded division (Clinger's fast path). Anything else (exponents, more
 * digits, inf, nan) goes to strtod. Parsing is most of an import's time. */
static double fast_number(const char *s, char **end)
{
    static const double p10[23] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7,
                                   1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14,
                                   1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21,
                                   1e22};
    const char *p = s;
    int neg = *p == '-';
    p += *p == '-' || *p == '+';
    uint64_t m = 0;
    int digits = 0, decimals = 0;
    for (; *p >= '0' && *p <= '9' && digits < 19; p++, digits++)
        m = 10 * m + (uint64_t)(*p - '0');
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9' && digits < 19; p++, digits++, decimals++)
            m = 10 * m + (uint64_t)(*p - '0');
    if (!digits || (*p && *p != ' ' && *p != '\t') ||
        m > ((uint64_t)1 << 53) || decimals > 22)
        return strtod(s, end);
    *end = (char *)p;
    double x = (double)m / p10[decimals];
    return neg ? -x : x;
}

/* Field s of numeric column c as the stored float (NaN when empty). */
static int parse_num(const tjob *j, const tcol *c, const char *s, float *out)
{
    const char *t = s + strspn(s, " \t");
    char *end = NULL, d[300];
    if (!*t) {
        *out = NAN;
        return 0;
    }
    double x = fast_number(t, &end);
    end += strspn(end, " \t");
    if (end == t || *end)
        return mimo_error(MIMO_EINVAL, "%s:%ld: %s: '%.60s' is not a number (the "
                          "schema says numeric; kind: category takes text)",
                          j->o->path, j->csv.rec_line,
                          col_desc(j, c->field, d, sizeof d), s);
    if (isnan(x)) {
        *out = NAN;
        return 0;
    }
    if (c->s->log) {
        if (!(x > 0))
            return mimo_error(MIMO_EINVAL, "%s:%ld: %s: %.60s has no logarithm "
                              "(log: true needs values > 0)", j->o->path,
                              j->csv.rec_line, col_desc(j, c->field, d, sizeof d), s);
        x = log(x);
    }
    if (!isfinite(x) || fabs(x) > FLT_MAX)
        return mimo_error(MIMO_EINVAL, "%s:%ld: %s: '%.60s' is not finite as a "
                          "float32", j->o->path, j->csv.rec_line,
                          col_desc(j, c->field, d, sizeof d), s);
    *out = (float)x;
    return 0;
}

/* Calls fn(j, c, token, len, arg) for each non-empty token of a list. */
static int tokens(tjob *j, tcol *c, const char *s,
                  int (*fn)(tjob *, tcol *, const char *, size_t, void *),
                  void *arg)
{
    for (const char *p = s;;) {
        const char *q = strchr(p, c->s->separator);
        size_t len = q ? (size_t)(q - p) : strlen(p);
        if (len) {
            int rc = fn(j, c, p, len, arg);
            if (rc)
                return rc;
        }
        if (!q)
            return 0;
        p = q + 1;
    }
}

static int count_token(tjob *j, tcol *c, const char *s, size_t len, void *arg)
{
    (void)arg;
    return vadd(&c->voc, s, len) ? mimo_error(MIMO_ENOMEM, "%s:%ld: out of "
                                              "memory (the vocabulary of column "
                                              "'%s')", j->o->path,
                                              j->csv.rec_line, c->s->name) : 0;
}

/* Pass 1's work on a training row's field of column c. */
static int learn(tjob *j, tcol *c, const char *s)
{
    float x = 0;
    int rc = 0;
    switch (c->s->kind) {
    case MIMO_COL_NUMERIC:
        if ((rc = parse_num(j, c, s, &x)))
            return rc;
        if (isnan(x)) {
            c->missing++;
            return 0;
        }
        c->n += 1; /* Welford's update, in double */
        double dx = x - c->mean;
        c->mean += dx / c->n;
        c->m2 += dx * (x - c->mean);
        c->min = x < c->min ? x : c->min;
        c->max = x > c->max ? x : c->max;
        return 0;
    case MIMO_COL_CATEGORY:
        if (!*s) {
            c->missing++;
            return 0;
        }
        return count_token(j, c, s, strlen(s), NULL);
    case MIMO_COL_MULTI_HOT:
        return tokens(j, c, s, count_token, NULL);
    default:
        return 0;
    }
}

/* The progress line: the pass and how far into the file, redrawn when
 * the percentage moves. */
static void progress(tjob *j, const char *pass, int *last)
{
    if (!j->o->progress || !j->csv.size)
        return;
    int pct = (int)(100.0 * (double)j->csv.bytes / (double)j->csv.size);
    if (pct == *last)
        return;
    *last = pct;
    fprintf(j->o->progress, "\rimport %s: %3d%% of %.0f MB", pass, pct,
            (double)j->csv.size / 1e6);
    if (pct >= 100)
        fputc('\n', j->o->progress);
    fflush(j->o->progress);
}

/* A split by time (windowed or ordered) needs the row count first: the
 * records counted (their field counts checked), the file rewound past
 * the header. */
static int time_split(tjob *j)
{
    int r;
    uint64_t n = 0;
    while ((r = next_row(j)) > 0)
        n++;
    int rc = r < 0 ? r : mimo_csv_rewind(&j->csv);
    if (rc || (r = mimo_csv_next(&j->csv)) < 0)
        return rc ? rc : r;
    uint64_t val = (uint64_t)((double)n * j->sc.val),
             test = (uint64_t)((double)n * j->sc.test);
    j->time_end[TEST] = n;
    j->time_end[VAL] = n - test;
    j->time_end[TRAIN] = n - test - val;
    return 0;
}

/* Pass 1: splits, checks, training statistics. */
static int pass1(tjob *j)
{
    int r, last = -1;
    float x;
    while ((r = next_row(j)) > 0) {
        if (!(j->total & 0xffff))
            progress(j, "pass 1 (statistics)", &last);
        int sp = row_split(j, j->total++);
        j->rows[sp]++;
        for (int i = 0; i < j->ncols; i++) {
            tcol *c = &j->cols[i];
            const char *s = mimo_csv_field(&j->csv, c->field);
            int rc = sp == TRAIN && !j->frozen ? learn(j, c, s)
                     : c->s->kind == MIMO_COL_NUMERIC ? parse_num(j, c, s, &x) : 0;
            if (rc)
                return rc;
        }
    }
    if (r < 0)
        return r;
    if (last >= 0) {
        j->csv.bytes = j->csv.size; /* the end (a byte-order mark is not counted) */
        progress(j, "pass 1 (statistics)", &last);
    }
    if (!j->total)
        return mimo_error(MIMO_EINVAL, "%s: no data rows after the header",
                          j->o->path);
    return 0;
}

/* The vocabularies' ids, once pass 1 has counted. */
static int finish_vocabs(tjob *j)
{
    for (int i = 0; i < j->ncols; i++) {
        tcol *c = &j->cols[i];
        const mimo_schema_col *s = c->s;
        if (s->kind != MIMO_COL_CATEGORY && s->kind != MIMO_COL_MULTI_HOT)
            continue;
        int rc = s->target ? vfinish(&c->voc, 0, -1, s->max_tokens, s->min_count)
                           : vfinish(&c->voc, 2, 1, s->max_tokens, s->min_count);
        if (rc)
            return mimo_error(MIMO_ENOMEM, "out of memory");
        if (s->target && c->voc.n_kept == 0)
            return mimo_error(MIMO_EINVAL, "%s:%d:%d: target column '%s' has no "
                              "value in the training split", j->sc.file,
                              s->pos.line, s->pos.col, s->name);
    }
    return 0;
}

/* ---- converting a row --------------------------------------------------- */

typedef struct {
    int32_t *out;
    size_t n, max;
} ids_out;

static int put_token(tjob *j, tcol *c, const char *s, size_t len, void *arg)
{
    (void)j;
    ids_out *o = arg;
    if (o->n == o->max) {
        o->n++; /* counts the truncation */
        return 1;
    }
    const ventry *e = vfind(&c->voc, s, len);
    o->out[o->n++] = e ? e->id : 1;
    return 0;
}

/* Column c of the current record into the dataset row at dst. */
static int convert(tjob *j, tcol *c, void *row)
{
    const char *s = mimo_csv_field(&j->csv, c->field);
    const mimo_schema_col *sc = c->s;
    int32_t *id = (int32_t *)row + c->slot;
    if (sc->kind == MIMO_COL_NUMERIC) {
        float *x = (float *)row + c->slot;
        int rc = parse_num(j, c, s, x);
        if (!rc && isnan(*x) && sc->fill_kind)
            *x = sc->fill_kind == 1 ? (float)c->mean : (float)sc->fill;
        return rc;
    }
    if (sc->kind == MIMO_COL_HASHED) {
        *id = (int32_t)(mimo_siphash24(sc->hash_seed, sc->hash_seed, s, strlen(s)) %
                        (uint64_t)sc->num_bins);
        return 0;
    }
    if (sc->kind == MIMO_COL_CATEGORY) {
        const ventry *e = *s ? vfind(&c->voc, s, strlen(s)) : NULL;
        *id = e ? e->id : sc->target ? -1 : (!*s && sc->missing_mask) ? 0 : 1;
        return 0;
    }
    ids_out o = {id, 0, (size_t)sc->max_length};
    memset(id, 0, o.max * sizeof *id);
    int rc = tokens(j, c, s, put_token, &o);
    if (rc > 0)
        c->truncated++;
    return rc < 0 ? rc : 0;
}

/* ---- the output files --------------------------------------------------- */

/* PATH for a split: the train file is --out, val and test insert .val or
 * .test before its .h5 (data/d.h5 -> data/d.val.h5). */
static char *split_path(const char *out, int sp)
{
    if (sp == TRAIN)
        return mimo_strdup(out);
    size_t n = strlen(out);
    const char *ext = n > 3 && !strcmp(out + n - 3, ".h5") ? ".h5"
                      : n > 5 && !strcmp(out + n - 5, ".hdf5") ? ".hdf5" : "";
    size_t stem = n - strlen(ext), len = n + 8;
    char *p = malloc(len);
    if (p)
        snprintf(p, len, "%.*s.%s%s", (int)stem, out, SPLIT_NAME[sp], ext);
    return p;
}

static int create_file(tjob *j, int sp)
{
    const char *path = j->path[sp];
    char fdpath[4200];
    if (j->frozen) {
        j->f[sp] = mimo_h5_mem_create(path, 1u << 20, &j->img);
        return j->f[sp] < 0 ? (int)j->f[sp] : 0;
    }
    int rc = mimo_mkdirs_for(path);
    if (!rc)
        rc = mimo_atomic_begin(&j->at[sp], path);
    if (rc)
        return rc;
    j->at_open[sp] = 1;
    mimo_h5_quiet();
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_LATEST);
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    j->f[sp] = mimo_atomic_fd_path(&j->at[sp], fdpath, sizeof fdpath)
                   ? -1 : H5Fcreate(fdpath, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (j->f[sp] < 0)
        return mimo_h5_fail("H5Fcreate", j->at[sp].tmp, NULL);
    return 0;
}

/* Dataset t's shape with n rows: (n,) or (n, width); a window's input
 * (n, L) for ids, (n, L, width) for numbers and lists. Returns the rank. */
static int shape_of(const tset *t, uint64_t n, hsize_t dims[3])
{
    dims[0] = n;
    if (t->steps == 1) {
        dims[1] = t->width;
        return t->rank1 ? 1 : 2;
    }
    dims[1] = t->steps;
    dims[2] = t->width;
    return t->rank1 && t->kind != MIMO_COL_NUMERIC ? 2 : 3;
}

/* Dataset t of split sp (see shape_of), chunked. */
static int create_set(tjob *j, int sp, tset *t)
{
    const char *path = j->path[sp];
    hsize_t dims[3], chunk[3];
    int rank = shape_of(t, j->out_rows[sp], dims);
    size_t per = CHUNK_BYTES / (4 * t->width * t->steps);
    memcpy(chunk, dims, sizeof dims);
    chunk[0] = per < 1 ? 1 : per > dims[0] ? dims[0] : per;
    hid_t s = -1, p = -1;
    int rc = 0;
    MIMO_H5_TRY(&rc, s = H5Screate_simple(rank, dims, NULL), path, t->name);
    MIMO_H5_TRY(&rc, p = H5Pcreate(H5P_DATASET_CREATE), path, t->name);
    MIMO_H5_TRY(&rc, H5Pset_chunk(p, rank, chunk), path, t->name);
    MIMO_H5_TRY(&rc, t->d[sp] = H5Dcreate2(j->f[sp], t->name,
                                           t->is_int ? H5T_STD_I32LE
                                                     : H5T_IEEE_F32LE,
                                           s, H5P_DEFAULT, p, H5P_DEFAULT),
                path, t->name);
    if (p >= 0)
        H5Pclose(p);
    if (s >= 0)
        H5Sclose(s);
    return rc;
}

/* Writes the window's n rows of every dataset of split sp at row lo. */
static int flush(tjob *j, int sp, uint64_t lo, size_t n)
{
    int rc = 0;
    for (int k = 0; k < j->nsets && !rc && n; k++) {
        tset *t = &j->sets[k];
        hsize_t start[3] = {lo, 0, 0}, count[3];
        int rank = shape_of(t, n, count);
        hid_t fs = -1, ms = -1;
        MIMO_H5_TRY(&rc, fs = H5Dget_space(t->d[sp]), j->path[sp], t->name);
        MIMO_H5_TRY(&rc, H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL,
                                             count, NULL), j->path[sp], t->name);
        MIMO_H5_TRY(&rc, ms = H5Screate_simple(rank, count, NULL),
                    j->path[sp], t->name);
        MIMO_H5_TRY(&rc, H5Dwrite(t->d[sp], t->is_int ? H5T_NATIVE_INT32
                                                      : H5T_NATIVE_FLOAT,
                                  ms, fs, H5P_DEFAULT, t->win[sp]),
                    j->path[sp], t->name);
        if (ms >= 0)
            H5Sclose(ms);
        if (fs >= 0)
            H5Sclose(fs);
    }
    return rc;
}

/* splitmix64's finalizer: a bijective mix of 64 bits. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A seeded permutation of [0, n) evaluated one index at a time, in O(1)
 * memory: a 4-round Feistel network on the smallest power-of-4 domain
 * holding n, round function mix64(half ^ key[round]) with keys from
 * SipHash of the seed, cycle-walking back into [0, n) (Black & Rogaway's
 * construction; at most 4 walks expected, 1.x typical). */
static uint64_t permute(const uint64_t key[4], uint64_t n, uint64_t x)
{
    int bits = 2;
    while (bits < 64 && ((uint64_t)1 << bits) < n)
        bits += 2;
    int half = bits / 2;
    uint64_t mask = ((uint64_t)1 << half) - 1;
    do {
        uint64_t l = x >> half, r = x & mask;
        for (int round = 0; round < 4; round++) {
            uint64_t t = l ^ (mix64(r ^ key[round]) & mask);
            l = r;
            r = t;
        }
        x = l << half | r;
    } while (x >= n);
    return x;
}

static void permute_keys(uint64_t seed, int sp, uint64_t key[4])
{
    for (uint64_t round = 0; round < 4; round++) {
        uint64_t in[2] = {(uint64_t)sp, round};
        key[round] = mimo_siphash24(seed, SHUFFLE_KEY1, in, sizeof in);
    }
}

/* The current record's columns into row w of split sp's window. */
static int convert_row_at(tjob *j, int sp, size_t w)
{
    int rc = 0;
    for (int i = 0; i < j->ncols && !rc; i++) {
        tcol *c = &j->cols[i];
        tset *t = &j->sets[c->set];
        rc = convert(j, c, (int32_t *)t->win[sp] + w * t->width);
    }
    return rc;
}

/* The current record's columns into the ring's row r (windowed). */
static int convert_row(tjob *j, uint64_t r)
{
    int rc = 0;
    for (int i = 0; i < j->ncols && !rc; i++) {
        tcol *c = &j->cols[i];
        tset *t = &j->sets[c->set];
        rc = convert(j, c, (int32_t *)t->ring + (size_t)r * t->width);
    }
    return rc;
}

/* Window k of split sp (its rows k..k+L-1 of the split, the targets of
 * row k+L-1+H, all in the ring) into row w of the split's write window. */
static void copy_window(tjob *j, int sp, uint64_t k, size_t w)
{
    for (int s = 0; s < j->nsets; s++) {
        tset *t = &j->sets[s];
        int32_t *dst = (int32_t *)t->win[sp] + w * t->steps * t->width;
        const int32_t *ring = t->ring;
        if (t->target) {
            uint64_t r = (k + j->span - 1) % j->span;
            memcpy(dst, ring + r * t->width, 4 * t->width);
            continue;
        }
        for (size_t q = 0; q < t->steps; q++)
            memcpy(dst + q * t->width, ring + ((k + q) % j->span) * t->width,
                   4 * t->width);
    }
}

/* Pass 2 (once per window when shuffled): converts and writes. */
static int pass2(tjob *j)
{
    int r, rc = 0;
    memset(j->seen, 0, sizeof j->seen);
    if ((rc = mimo_csv_rewind(&j->csv)) || (r = mimo_csv_next(&j->csv)) < 0)
        return rc ? rc : r; /* the header, read in pass 1 */
    uint64_t key[NSPLIT][4];
    for (int sp = 0; sp < NSPLIT; sp++)
        permute_keys(j->sc.seed, sp, key[sp]);
    int last = -1;
    for (uint64_t row = 0; (r = next_row(j)) > 0; row++) {
        if (!(row & 0xffff))
            progress(j, "pass 2 (writing)", &last);
        int sp = row_split(j, row);
        uint64_t k = j->seen[sp]++;
        if (j->windowed) { /* the row into the ring; k: the window it ends */
            if ((rc = convert_row(j, k % j->span)))
                return rc;
            if (k + 1 < j->span)
                continue;
            k = k + 1 - j->span;
        }
        int shuffled = j->sc.shuffle && (!j->timed || sp == TRAIN);
        uint64_t pos = shuffled ? permute(key[sp], j->out_rows[sp], k) : k;
        if (!shuffled && pos == j->lo[sp] + j->win_rows[sp]) {
            if ((rc = flush(j, sp, j->lo[sp], j->win_rows[sp])))
                return rc;
            j->lo[sp] += j->win_rows[sp];
        }
        if (pos < j->lo[sp] || pos >= j->lo[sp] + j->win_rows[sp])
            continue;
        size_t w = (size_t)(pos - j->lo[sp]);
        if (j->windowed)
            copy_window(j, sp, k, w);
        else if ((rc = convert_row_at(j, sp, w)))
            return rc;
    }
    if (r < 0)
        return r;
    if (last >= 0) {
        j->csv.bytes = j->csv.size; /* the end (a byte-order mark is not counted) */
        progress(j, "pass 2 (writing)", &last);
    }
    for (int sp = 0; sp < NSPLIT && !rc; sp++) {
        if (!j->want[sp] || j->lo[sp] >= j->out_rows[sp])
            continue;
        uint64_t left = j->out_rows[sp] - j->lo[sp];
        size_t n = left < j->win_rows[sp] ? (size_t)left : j->win_rows[sp];
        rc = flush(j, sp, j->lo[sp], n);
        j->lo[sp] += n;
    }
    return rc;
}

/* The windows: the memory budget shared by the splits by their rows. */
static int windows(tjob *j)
{
    size_t row_bytes = 0;
    for (int k = 0; k < j->nsets; k++) {
        tset *t = &j->sets[k];
        row_bytes += 4 * t->width * t->steps;
        if (j->windowed && !(t->ring = calloc(j->span * t->width, 4)))
            return mimo_error(MIMO_ENOMEM, "out of memory");
    }
    double budget = (j->o->memory_mb > 0 ? j->o->memory_mb : DEFAULT_MEMORY_MB)
                    * 1048576.0;
    double all = budget / (double)row_bytes;
    for (int sp = 0; sp < NSPLIT; sp++) {
        if (!j->want[sp])
            continue;
        double n = (double)j->out_rows[sp];
        double w = j->frozen ? n : all * (double)j->rows[sp] / (double)j->total;
        j->win_rows[sp] = w < 1 ? 1 : w > n ? (size_t)n : (size_t)w;
        for (int k = 0; k < j->nsets; k++) {
            tset *t = &j->sets[k];
            if (!(t->win[sp] = calloc(j->win_rows[sp] * t->width * t->steps, 4)))
                return mimo_error(MIMO_ENOMEM, "out of memory for a window of "
                                  "%zu rows (lower --memory-mb)", j->win_rows[sp]);
        }
    }
    return 0;
}

/* ---- /preprocessing ------------------------------------------------------ */

/* A (n,) dataset of fixed-length UTF-8 strings (NUL-padded to the
 * longest; as mimo's checkpoints store strings: inside checksummed
 * metadata, none in HDF5's global heap). */
static int write_strings(hid_t loc, const char *path, const char *name,
                         const char *const *v, size_t n)
{
    size_t width = 1;
    for (size_t k = 0; k < n; k++)
        width = strlen(v[k]) > width ? strlen(v[k]) : width;
    char *buf = calloc(n ? n : 1, width);
    if (!buf)
        return mimo_error(MIMO_ENOMEM, "out of memory");
    for (size_t k = 0; k < n; k++)
        memcpy(buf + k * width, v[k], strlen(v[k]));
    hid_t t = -1, s = -1, d = -1;
    hsize_t dims[1] = {n};
    int rc = 0;
    MIMO_H5_TRY(&rc, t = H5Tcopy(H5T_C_S1), path, name);
    MIMO_H5_TRY(&rc, H5Tset_size(t, width), path, name);
    MIMO_H5_TRY(&rc, H5Tset_strpad(t, H5T_STR_NULLPAD), path, name);
    MIMO_H5_TRY(&rc, H5Tset_cset(t, H5T_CSET_UTF8), path, name);
    MIMO_H5_TRY(&rc, s = H5Screate_simple(1, dims, NULL), path, name);
    MIMO_H5_TRY(&rc, d = H5Dcreate2(loc, name, t, s, H5P_DEFAULT, H5P_DEFAULT,
                                    H5P_DEFAULT), path, name);
    if (n)
        MIMO_H5_TRY(&rc, H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), path,
                    name);
    if (d >= 0)
        MIMO_H5_KEEP(&rc, H5Dclose(d), path, name);
    if (s >= 0)
        H5Sclose(s);
    if (t >= 0)
        H5Tclose(t);
    free(buf);
    return rc;
}

/* vocabulary (V,) strings by id and counts (V,): Keras' get_vocabulary()
 * order ("" the mask 0, "[UNK]" the OOV 1, then the values) for an input;
 * the classes for a target. */
static int write_vocab(hid_t g, const char *path, const tcol *c)
{
    const vocab *v = &c->voc;
    size_t extra = c->s->target ? 0 : 2, n = extra + v->n_kept;
    const char **s = malloc(n * sizeof *s);
    double *cnt = malloc(n * sizeof *cnt);
    int rc = 0;
    if (!s || !cnt)
        rc = mimo_error(MIMO_ENOMEM, "out of memory");
    if (!rc && extra) {
        s[0] = "", s[1] = "[UNK]";
        cnt[0] = (double)c->missing * c->s->missing_mask;
        cnt[1] = (double)v->oov + (double)c->missing * !c->s->missing_mask;
    }
    for (size_t k = 0; !rc && k < v->n_kept; k++) {
        s[extra + k] = v->sorted[k]->s;
        cnt[extra + k] = (double)v->sorted[k]->count;
    }
    if (!rc)
        rc = write_strings(g, path, "vocabulary", s, n);
    if (!rc)
        rc = mimo_h5_write_f64(g, path, "counts", cnt, n);
    if (!rc)
        rc = mimo_h5_attr_write_i64(g, path, "mask_id", extra ? 0 : -1);
    if (!rc)
        rc = mimo_h5_attr_write_i64(g, path, "oov_id", extra ? 1 : -1);
    if (!rc)
        rc = mimo_h5_attr_write_i64(g, path, "max_tokens", c->s->max_tokens);
    if (!rc)
        rc = mimo_h5_attr_write_i64(g, path, "min_count", c->s->min_count);
    if (!rc && c->s->kind == MIMO_COL_CATEGORY)
        rc = mimo_h5_attr_write_str(g, path, "missing", c->s->target ? "-1"
                                    : c->s->missing_mask ? "mask" : "oov");
    if (!rc && c->s->kind == MIMO_COL_MULTI_HOT) {
        char sep[2] = {c->s->separator, 0};
        rc = mimo_h5_attr_write_str(g, path, "separator", sep);
        if (!rc)
            rc = mimo_h5_attr_write_i64(g, path, "max_length", c->s->max_length);
        if (!rc)
            rc = mimo_h5_attr_write_i64(g, path, "truncated_rows",
                                        (int64_t)c->truncated);
    }
    free(s);
    free(cnt);
    return rc;
}

/* mean, variance (population, as Keras' Normalization), min, max, count,
 * missing, log, fill (what an empty cell became; NaN: NaN): one value per
 * column of the dataset, from the training split. */
static int write_stats(hid_t g, const char *path, const tjob *j, const tset *t)
{
    size_t k = t->width;
    double *a = malloc(8 * k * sizeof *a);
    if (!a)
        return mimo_error(MIMO_ENOMEM, "out of memory");
    for (int i = 0; i < j->ncols; i++) {
        const tcol *c = &j->cols[i];
        if (&j->sets[c->set] != t)
            continue;
        size_t q = (size_t)c->slot;
        a[q] = c->n ? c->mean : NAN;
        a[k + q] = c->n ? c->m2 / c->n : NAN;
        a[2 * k + q] = c->n ? c->min : NAN;
        a[3 * k + q] = c->n ? c->max : NAN;
        a[4 * k + q] = c->n;
        a[5 * k + q] = (double)c->missing;
        a[6 * k + q] = c->s->log;
        a[7 * k + q] = c->s->fill_kind == 1 ? a[q]
                       : c->s->fill_kind == 2 ? c->s->fill : NAN;
    }
    static const char *const names[8] = {"mean", "variance", "min", "max",
                                         "count", "missing", "log", "fill"};
    int rc = 0;
    for (int s = 0; s < 8 && !rc; s++)
        rc = mimo_h5_write_f64(g, path, names[s], a + (size_t)s * k, k);
    free(a);
    return rc;
}

static int write_set_info(hid_t pre, const char *path, const tjob *j,
                          const tset *t)
{
    hid_t g = -1;
    int rc = 0;
    char cols[4096] = "";
    for (int i = 0; i < j->ncols; i++)
        if (&j->sets[j->cols[i].set] == t) {
            size_t used = strlen(cols);
            snprintf(cols + used, sizeof cols - used, "%s%s", used ? "," : "",
                     j->cols[i].s->name);
        }
    MIMO_H5_TRY(&rc, g = H5Gcreate2(pre, t->name, H5P_DEFAULT, H5P_DEFAULT,
                                    H5P_DEFAULT), path, t->name);
    if (!rc)
        rc = mimo_h5_attr_write_str(g, path, "kind", mimo_col_kind_name(t->kind));
    if (!rc)
        rc = mimo_h5_attr_write_str(g, path, "columns", cols);
    if (!rc)
        rc = mimo_h5_attr_write_i64(g, path, "target", t->target);
    const tcol *c = &j->cols[t->first];
    if (!rc && t->kind == MIMO_COL_NUMERIC)
        rc = write_stats(g, path, j, t);
    if (!rc && (t->kind == MIMO_COL_CATEGORY || t->kind == MIMO_COL_MULTI_HOT))
        rc = write_vocab(g, path, c);
    if (!rc && t->kind == MIMO_COL_HASHED) {
        rc = mimo_h5_attr_write_str(g, path, "hash", "siphash-2-4");
        if (!rc)
            rc = mimo_h5_attr_write_str(g, path, "key", "k0 = k1 = seed");
        if (!rc)
            rc = mimo_h5_attr_write_i64(g, path, "seed", (int64_t)c->s->hash_seed);
        if (!rc)
            rc = mimo_h5_attr_write_i64(g, path, "num_bins", c->s->num_bins);
    }
    if (g >= 0)
        MIMO_H5_KEEP(&rc, H5Gclose(g), path, t->name);
    return rc;
}

static int write_preprocessing(tjob *j, int sp)
{
    const char *path = j->path[sp];
    hid_t pre = -1;
    int rc = 0;
    MIMO_H5_TRY(&rc, pre = H5Gcreate2(j->f[sp], "preprocessing", H5P_DEFAULT,
                                      H5P_DEFAULT, H5P_DEFAULT), path,
                "preprocessing");
    char delim[2] = {j->csv.delim, 0};
    struct { const char *k, *v; } strs[] = {
        {"format", "mimo-preprocessing"}, {"source", j->o->path},
        {"delimiter", delim},
        {"split", SPLIT_NAME[sp]}, {"split_by", j->sc.by ? j->sc.by : ""},
        {"split_hash", j->timed ? "none: by time" : "siphash-2-4"}};
    for (size_t i = 0; i < sizeof strs / sizeof *strs && !rc; i++)
        rc = mimo_h5_attr_write_str(pre, path, strs[i].k, strs[i].v);
    struct { const char *k; int64_t v; } ints[] = {
        {"format_version", 1}, {"split_seed", (int64_t)j->sc.seed},
        {"shuffle", j->sc.shuffle}, {"rows_train", (int64_t)j->rows[TRAIN]},
        {"rows_val", (int64_t)j->rows[VAL]}, {"rows_test", (int64_t)j->rows[TEST]},
        {"window", j->sc.window}, {"horizon", j->windowed ? j->sc.horizon : 0},
        {"windows", (int64_t)j->out_rows[sp]}};
    for (size_t i = 0; i < sizeof ints / sizeof *ints && !rc; i++)
        rc = mimo_h5_attr_write_i64(pre, path, ints[i].k, ints[i].v);
    if (!rc)
        rc = mimo_h5_write_text(pre, path, "schema", j->sc.text);
    for (int k = 0; k < j->nsets && !rc; k++)
        rc = write_set_info(pre, path, j, &j->sets[k]);
    if (pre >= 0)
        MIMO_H5_KEEP(&rc, H5Gclose(pre), path, "preprocessing");
    return rc;
}

/* Closes every dataset and file; on success commits them all (renames). */
static int finish_files(tjob *j, int rc)
{
    for (int sp = 0; sp < NSPLIT; sp++) {
        for (int k = 0; k < j->nsets; k++)
            if (j->sets[k].d[sp] >= 0) {
                MIMO_H5_KEEP(&rc, H5Dclose(j->sets[k].d[sp]), j->path[sp],
                             j->sets[k].name);
                j->sets[k].d[sp] = -1;
            }
        if (j->f[sp] >= 0 && j->frozen) {
            int closed = mimo_h5_mem_close(j->f[sp], j->path[sp], &j->img);
            rc = rc ? rc : closed;
        } else if (j->f[sp] >= 0)
            MIMO_H5_KEEP(&rc, H5Fclose(j->f[sp]), j->path[sp], NULL);
        j->f[sp] = -1;
    }
    for (int sp = 0; sp < NSPLIT; sp++) {
        if (!j->at_open[sp])
            continue;
        if (!rc)
            rc = mimo_atomic_commit(&j->at[sp], NULL);
        else
            mimo_atomic_abort(&j->at[sp]);
        j->at_open[sp] = 0;
    }
    return rc;
}

/* ---- the report ---------------------------------------------------------- */

static void report(const tjob *j, FILE *out)
{
    if (!out)
        return;
    for (int sp = 0; sp < NSPLIT; sp++)
        if (j->want[sp] && j->windowed)
            fprintf(out, "wrote %s (%s, rows %llu..%llu of the series: %llu "
                    "windows of %lld, targets %lld ahead)\n", j->path[sp],
                    SPLIT_NAME[sp],
                    (unsigned long long)(j->time_end[sp] - j->rows[sp] + 1),
                    (unsigned long long)j->time_end[sp],
                    (unsigned long long)j->out_rows[sp], j->sc.window,
                    j->sc.horizon);
        else if (j->want[sp])
            fprintf(out, "wrote %s (%s, %llu rows)\n", j->path[sp],
                    SPLIT_NAME[sp], (unsigned long long)j->rows[sp]);
    for (int k = 0; k < j->nsets; k++) {
        const tset *t = &j->sets[k];
        const tcol *c = &j->cols[t->first];
        char shape[64];
        hsize_t d[3];
        int rank = shape_of(t, 0, d);
        if (rank == 1)
            snprintf(shape, sizeof shape, "(N,)");
        else if (rank == 2)
            snprintf(shape, sizeof shape, "(N, %llu)", (unsigned long long)d[1]);
        else
            snprintf(shape, sizeof shape, "(N, %llu, %llu)",
                     (unsigned long long)d[1], (unsigned long long)d[2]);
        fprintf(out, "  %-12s %-9s %s %s%s", t->name, mimo_col_kind_name(t->kind),
                t->is_int ? "int32" : "float32", shape, t->target ? " target" : "");
        if (t->kind == MIMO_COL_NUMERIC && t->width == 1)
            fprintf(out, ": mean %.6g, std %.6g, %llu missing", c->mean,
                    sqrt(c->n ? c->m2 / c->n : 0), (unsigned long long)c->missing);
        else if ((t->kind == MIMO_COL_CATEGORY || t->kind == MIMO_COL_MULTI_HOT)
                 && t->target)
            fprintf(out, ": %zu classes (ids 0..%zu; unseen -> -1)",
                    c->voc.n_kept, c->voc.n_kept - 1);
        else if (t->kind == MIMO_COL_CATEGORY || t->kind == MIMO_COL_MULTI_HOT)
            fprintf(out, ": %zu ids (0 mask, 1 OOV, %zu values): embedding "
                    "input_dim %zu", c->voc.n_kept + 2, c->voc.n_kept,
                    c->voc.n_kept + 2);
        else if (t->kind == MIMO_COL_HASHED)
            fprintf(out, ": %lld bins: embedding input_dim %lld", c->s->num_bins,
                    c->s->num_bins);
        fputc('\n', out);
    }
    for (size_t f = 0; f < j->nh; f++) {
        int used = 0;
        for (int i = 0; i < j->sc.n_cols; i++)
            used |= strcmp(j->sc.cols[i].name, j->header[f]) == 0;
        if (!used)
            fprintf(out, "  (column '%s' is not in the schema: not imported)\n",
                    j->header[f]);
    }
}

/* ---- entry --------------------------------------------------------------- */

static int open_outputs(tjob *j)
{
    int rc = 0;
    for (int sp = 0; sp < NSPLIT && !rc; sp++) {
        j->f[sp] = -1;
        j->want[sp] = sp == TRAIN || (sp == VAL ? j->sc.val : j->sc.test) > 0;
    }
    for (int sp = 0; sp < NSPLIT && !rc; sp++) {
        if (!j->want[sp])
            continue;
        j->out_rows[sp] = j->rows[sp];
        if (j->windowed && j->rows[sp] < j->span)
            return mimo_error(MIMO_EINVAL, "%s:%d:%d: window %lld + horizon %lld "
                              "needs %llu rows in each split, and the %s split "
                              "of %s has %llu (rows %llu..%llu of %llu, split "
                              "by time): a shorter window or horizon, %s%s%s",
                              j->sc.file, j->sc.window_pos.line,
                              j->sc.window_pos.col, j->sc.window, j->sc.horizon,
                              (unsigned long long)j->span, SPLIT_NAME[sp],
                              j->o->path, (unsigned long long)j->rows[sp],
                              (unsigned long long)(j->time_end[sp] - j->rows[sp] + 1),
                              (unsigned long long)j->time_end[sp],
                              (unsigned long long)j->total,
                              sp == TRAIN ? "smaller val and test fractions"
                                          : "a larger ",
                              sp == TRAIN ? "" : SPLIT_NAME[sp],
                              sp == TRAIN ? "" : " fraction (or 0: no such "
                                                 "split)");
        if (j->windowed)
            j->out_rows[sp] = j->rows[sp] - j->span + 1;
        if (!j->rows[sp])
            return mimo_error(MIMO_EINVAL, "%s: the %s split is empty (of the %llu "
                              "data rows%s): more rows, or %s", j->o->path,
                              SPLIT_NAME[sp], (unsigned long long)j->total,
                              j->sc.by ? ", split by groups" : "",
                              sp == TRAIN ? "smaller val and test fractions"
                                          : "set its fraction to 0");
        if (!(j->path[sp] = split_path(j->o->out, sp)))
            return mimo_error(MIMO_ENOMEM, "out of memory");
        const char *in[2] = {j->o->path, j->o->schema};
        if ((!j->frozen && (rc = mimo_check_not_input(j->path[sp], in, 2))) ||
            (rc = create_file(j, sp)))
            return rc;
        for (int k = 0; k < j->nsets && !rc; k++)
            rc = create_set(j, sp, &j->sets[k]);
    }
    return rc;
}

static void free_job(tjob *j)
{
    for (int i = 0; i < j->ncols; i++)
        vfree(&j->cols[i].voc);
    for (int k = 0; k < j->nsets; k++) {
        for (int sp = 0; sp < NSPLIT; sp++)
            free(j->sets[k].win[sp]);
        free(j->sets[k].ring);
    }
    for (size_t c = 0; j->header && c < j->nh; c++)
        free(j->header[c]);
    for (int sp = 0; sp < NSPLIT; sp++)
        free(j->path[sp]);
    free(j->header);
    free(j->cols);
    free(j->sets);
    mimo_csv_close(&j->csv);
    mimo_schema_free(&j->sc);
}

/* Pass 2 as many times as the windows need. */
static int write_all(tjob *j)
{
    int rc = 0;
    for (;;) {
        int left = 0;
        for (int sp = 0; sp < NSPLIT; sp++)
            left |= j->want[sp] && j->lo[sp] < j->out_rows[sp];
        if (!left || (rc = pass2(j)))
            return rc;
    }
}

int mimo_import_tabular(const mimo_tab_opts *o)
{
    if (!o->path || !o->out || !o->schema)
        return mimo_error(MIMO_EINVAL, "import csv: input, output and schema "
                          "files are required");
    tjob j;
    memset(&j, 0, sizeof j);
    j.o = o;
    for (int sp = 0; sp < NSPLIT; sp++)
        j.f[sp] = -1;
    int rc = mimo_schema_load(o->schema, &j.sc);
    j.windowed = !rc && j.sc.window > 0;
    j.timed = j.windowed || (!rc && j.sc.ordered);
    j.span = j.windowed ? (uint64_t)(j.sc.window + j.sc.horizon) : 1;
    if (!rc)
        rc = mimo_csv_open(&j.csv, o->path,
                           o->delimiter ? o->delimiter
                                        : j.sc.delimiter ? j.sc.delimiter : ',');
    if (!rc)
        rc = read_header(&j);
    if (!rc)
        rc = bind(&j);
    if (!rc && j.timed)
        rc = time_split(&j);
    if (!rc)
        rc = pass1(&j);
    if (!rc)
        rc = finish_vocabs(&j);
    if (!rc)
        rc = open_outputs(&j);
    if (!rc)
        rc = windows(&j);
    if (!rc)
        rc = write_all(&j);
    for (int sp = 0; sp < NSPLIT && !rc; sp++)
        if (j.want[sp])
            rc = write_preprocessing(&j, sp);
    rc = finish_files(&j, rc);
    if (!rc)
        report(&j, o->report);
    free_job(&j);
    return rc;
}

/* ---- a raw CSV through a checkpoint's preprocessing ---------------------- */

/* Column c's ids as stored in pre's /preprocessing/<its dataset>/vocabulary
 * (index = id; an input's mask "" and OOV "[UNK]", ids 0 and 1, are no
 * values): an unseen value then finds no entry, as in pass 2 of an import. */
static int load_vocab(tjob *j, hid_t pre, tcol *c)
{
    char obj[600];
    snprintf(obj, sizeof obj, "preprocessing/%s/vocabulary", j->sets[c->set].name);
    if (!mimo_h5_exists(pre, obj))
        return mimo_error(MIMO_EINVAL, "%s: no /%s (column '%s'): the file is "
                          "damaged", j->ckpt, obj, c->s->name);
    hid_t d = H5Dopen2(pre, obj, H5P_DEFAULT);
    hid_t t = d < 0 ? -1 : H5Dget_type(d), sp = d < 0 ? -1 : H5Dget_space(d);
    hssize_t n = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp);
    size_t width = t < 0 ? 0 : H5Tget_size(t);
    char *buf = NULL;
    int rc = 0;
    if (n < 0 || t < 0 || H5Tget_class(t) != H5T_STRING || H5Tis_variable_str(t) > 0)
        rc = mimo_error(MIMO_EINVAL, "%s: /%s is not a dataset of fixed-length "
                        "strings", j->ckpt, obj);
    else if (!(buf = malloc((size_t)n * width + 1)))
        rc = mimo_error(MIMO_ENOMEM, "out of memory");
    else if (n && H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        rc = mimo_h5_fail("H5Dread", j->ckpt, obj);
    for (hssize_t k = c->s->target ? 0 : 2; !rc && k < n; k++) {
        const char *v = buf + (size_t)k * width;
        size_t len = strnlen(v, width);
        if (vadd(&c->voc, v, len))
            rc = mimo_error(MIMO_ENOMEM, "out of memory");
        else
            vfind(&c->voc, v, len)->id = (int32_t)k;
    }
    free(buf);
    if (sp >= 0)
        H5Sclose(sp);
    if (t >= 0)
        H5Tclose(t);
    if (d >= 0)
        H5Dclose(d);
    return rc;
}

/* Column c's training mean (what fill: mean puts in an empty cell). */
static int load_mean(tjob *j, hid_t pre, tcol *c)
{
    char obj[600];
    double *v = NULL;
    size_t n = 0;
    snprintf(obj, sizeof obj, "preprocessing/%s/mean", j->sets[c->set].name);
    int rc = mimo_h5_read_f64(pre, j->ckpt, obj, &v, &n);
    if (!rc && (size_t)c->slot >= n)
        rc = mimo_error(MIMO_EINVAL, "%s: /%s has %zu values, column '%s' is "
                        "number %d: the file is damaged", j->ckpt, obj, n,
                        c->s->name, c->slot + 1);
    if (!rc)
        c->mean = v[c->slot];
    free(v);
    return rc;
}

/* The schema stored with the preprocessing; no split, no shuffle. */
static int load_schema(tjob *j, hid_t pre)
{
    char *text = NULL, name[4200];
    snprintf(name, sizeof name, "%s:/preprocessing/schema", j->ckpt);
    int rc = mimo_h5_read_text(pre, j->ckpt, "preprocessing/schema", &text);
    if (!rc)
        rc = mimo_schema_parse(text, name, &j->sc);
    free(text);
    j->sc.val = j->sc.test = 0;
    j->sc.shuffle = j->sc.ordered = 0;
    return rc;
}

/* The delimiter the import read (stored since the checkpoints carry the
 * preprocessing; before: the schema's, else ','). */
static char stored_delimiter(const tjob *j, hid_t pre)
{
    char *d = NULL, out = j->sc.delimiter ? j->sc.delimiter : ',';
    hid_t g = H5Gopen2(pre, "preprocessing", H5P_DEFAULT);
    if (g >= 0 && H5Aexists(g, "delimiter") > 0 &&
        !mimo_h5_attr_read_str(g, j->ckpt, "delimiter", &d) && d[0])
        out = d[0];
    free(d);
    if (g >= 0)
        H5Gclose(g);
    return out;
}

int mimo_tab_raw(const char *csv, const char *ckpt, hid_t pre, int targets,
                 void **buf, size_t *len)
{
    mimo_tab_opts o = {.path = csv, .out = csv};
    tjob j;
    memset(&j, 0, sizeof j);
    j.o = &o, j.frozen = 1, j.targets = targets, j.ckpt = ckpt;
    for (int sp = 0; sp < NSPLIT; sp++)
        j.f[sp] = -1;
    *buf = NULL, *len = 0;
    int rc = load_schema(&j, pre);
    if (!rc && j.sc.window)
        rc = mimo_error(MIMO_EINVAL, "%s: its training data were windows of a "
                        "time series (window: %lld in the schema it keeps): "
                        "import %s with that schema and predict from the "
                        "imported file", ckpt, j.sc.window, csv);
    if (!rc)
        rc = mimo_csv_open(&j.csv, csv, stored_delimiter(&j, pre));
    if (!rc)
        rc = read_header(&j);
    if (!rc)
        rc = bind(&j);
    for (int i = 0; i < j.ncols && !rc; i++) {
        tcol *c = &j.cols[i];
        if (c->s->kind == MIMO_COL_CATEGORY || c->s->kind == MIMO_COL_MULTI_HOT)
            rc = load_vocab(&j, pre, c);
        else if (c->s->kind == MIMO_COL_NUMERIC)
            rc = load_mean(&j, pre, c);
    }
    if (!rc)
        rc = pass1(&j); /* the rows counted, every number checked */
    if (!rc)
        rc = open_outputs(&j);
    if (!rc)
        rc = windows(&j);
    if (!rc)
        rc = write_all(&j);
    rc = finish_files(&j, rc);
    if (!rc)
        *buf = j.img.buf, *len = j.img.len;
    else
        free(j.img.buf);
    free_job(&j);
    return rc;
}
