/* infer_schema.c — `mimo import csv FILE --infer-schema`: a first schema for a CSV,
 * printed as YAML to edit, each column's kind guessed from its first rows:
 * every non-empty value a number -> numeric; text with few distinct
 * values -> category; with many -> hashed; a distinct text in every row
 * (an id, a name) -> skip. A guess, said so in the comments it prints. */
#include "mimo/import.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "mimo/error.h"
#include "io/csv.h"

#define DISTINCT_CAP 10000 /* distinct values tracked per column */
#define CATEGORY_MAX 1000  /* more distinct strings: hashed */

typedef struct {
    long empty, text, rows;
    double min, max;
    int all_int;
    uint64_t *seen;        /* hashes of distinct values (open addressing) */
    size_t n_seen, cap;
    int capped;            /* more than DISTINCT_CAP */
    char example[3][32];
} icol;

static void see(icol *c, const char *s)
{
    uint64_t h = mimo_siphash24(1, 2, s, strlen(s)) | 1;
    if (c->capped)
        return;
    size_t i = (size_t)h & (c->cap - 1);
    while (c->seen[i] && c->seen[i] != h)
        i = (i + 1) & (c->cap - 1);
    if (c->seen[i])
        return;
    if (c->n_seen == DISTINCT_CAP) {
        c->capped = 1;
        return;
    }
    c->seen[i] = h;
    if (c->n_seen < 3)
        snprintf(c->example[c->n_seen], sizeof c->example[0], "%s", s);
    c->n_seen++;
}

static void look(icol *c, const char *s)
{
    c->rows++;
    const char *t = s + strspn(s, " \t");
    if (!*t) {
        c->empty++;
        return;
    }
    char *end;
    double x = strtod(t, &end);
    end += strspn(end, " \t");
    if (end == t || *end || !isfinite(x)) {
        c->text++;
    } else {
        c->min = x < c->min ? x : c->min;
        c->max = x > c->max ? x : c->max;
        c->all_int &= x == floor(x);
    }
    see(c, s);
}

/* A YAML key: plain when safe, else double-quoted. */
static void key(FILE *out, const char *s)
{
    int plain = *s && strchr("-?:,[]{}#&*!|>'\"%@` ", *s) == NULL;
    for (const char *p = s; *p && plain; p++)
        plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '-';
    if (plain) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fputc('\\', out);
        fputc(*p, out);
    }
    fputc('"', out);
}

static void print_col(FILE *out, const char *name, const icol *c)
{
    fputs("  ", out);
    key(out, name);
    long filled = c->rows - c->empty;
    if (filled == 0) {
        fprintf(out, ": {kind: skip}   # empty in every row read\n");
    } else if (c->text == 0) {
        fprintf(out, ": {kind: numeric}   # %g to %g", c->min, c->max);
        if (c->all_int && !c->capped && c->n_seen <= 20)
            fprintf(out, ", %zu distinct integers (ids? kind: category)",
                    c->n_seen);
        fputs(c->empty ? ", some empty (NaN)\n" : "\n", out);
    } else if (!c->capped && (long)c->n_seen == filled && filled > CATEGORY_MAX) {
        fprintf(out, ": {kind: skip}   # a distinct text in every row (an "
                "id?)\n");
    } else if (c->capped || c->n_seen > CATEGORY_MAX) {
        size_t bins = 1024;
        while (bins < 2 * c->n_seen && bins < (1u << 20))
            bins *= 2;
        fprintf(out, ": {kind: hashed, num_bins: %zu}   # %s%zu distinct "
                "values\n", bins, c->capped ? "more than " : "", c->n_seen);
    } else {
        fprintf(out, ": {kind: category}   # %zu values, e.g. ", c->n_seen);
        for (size_t e = 0; e < c->n_seen && e < 3; e++)
            fprintf(out, "%s'%s'", e ? ", " : "", c->example[e]);
        fputc('\n', out);
    }
}

int mimo_infer_schema(const char *path, char delimiter, long max_rows, FILE *out)
{
    mimo_csv csv;
    int rc = mimo_csv_open(&csv, path, delimiter), r = 0;
    if (rc)
        return rc;
    if ((r = mimo_csv_next(&csv)) <= 0) {
        mimo_csv_close(&csv);
        return r < 0 ? r : mimo_error(MIMO_EINVAL, "%s: empty file (expected a "
                                      "header line naming the columns)", path);
    }
    size_t nh = csv.nf;
    char **names = calloc(nh, sizeof *names);
    icol *cols = calloc(nh, sizeof *cols);
    rc = names && cols ? 0 : mimo_error(MIMO_ENOMEM, "out of memory");
    for (size_t f = 0; f < nh && !rc; f++) {
        const char *s = mimo_csv_field(&csv, f);
        names[f] = malloc(strlen(s) + 1);
        cols[f].cap = (size_t)1 << 15; /* a power of two > 3 x DISTINCT_CAP */
        cols[f].seen = calloc(cols[f].cap, sizeof *cols[f].seen);
        cols[f].min = INFINITY, cols[f].max = -INFINITY, cols[f].all_int = 1;
        if (!names[f] || !cols[f].seen)
            rc = mimo_error(MIMO_ENOMEM, "out of memory");
        else
            strcpy(names[f], s);
    }
    long rows = 0;
    while (!rc && rows < max_rows && (r = mimo_csv_next(&csv)) > 0) {
        if (csv.nf != nh) {
            rc = mimo_error(MIMO_EINVAL, "%s:%ld: expected %zu fields, found %zu",
                            path, csv.rec_line, nh, csv.nf);
            break;
        }
        for (size_t f = 0; f < nh; f++)
            look(&cols[f], mimo_csv_field(&csv, f));
        rows++;
    }
    if (!rc && r < 0)
        rc = r;
    if (!rc) {
        fprintf(out, "# a schema guessed from the first %ld rows of %s: check "
                "each kind\n# (mimo import csv %s --out F.h5 --schema THIS)\n"
                "columns:\n", rows, path, path);
        for (size_t f = 0; f < nh; f++)
            print_col(out, names[f], &cols[f]);
        fprintf(out, "split: {val: 0.1, test: 0.1, seed: 0}\nshuffle: true\n");
        if (delimiter && delimiter != ',')
            fprintf(out, delimiter == '\t' ? "delimiter: tab\n"
                                           : "delimiter: \"%c\"\n", delimiter);
    }
    for (size_t f = 0; f < nh; f++) {
        if (names)
            free(names[f]);
        if (cols)
            free(cols[f].seen);
    }
    free(names);
    free(cols);
    mimo_csv_close(&csv);
    return rc;
}
