/* schema.h — the schema of `mimo import csv --schema`: what each CSV column
 * becomes (its kind and settings), how rows split into train, val and
 * test, and whether the written rows are shuffled. Parsed from YAML by
 * io/config_schema.c with the config parser's checks (unknown keys, types
 * and ranges named by file:line:column). Internal (tools use it). */
#ifndef MIMO_IO_SCHEMA_H
#define MIMO_IO_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include "mimo/spec.h"

typedef enum {
    MIMO_COL_SKIP = 0,  /* not imported */
    MIMO_COL_NUMERIC,   /* float32; empty -> NaN */
    MIMO_COL_CATEGORY,  /* strings -> int32 ids through a vocabulary */
    MIMO_COL_HASHED,    /* strings -> SipHash-2-4 mod num_bins, int32 */
    MIMO_COL_MULTI_HOT  /* "a|b|c" -> (N, max_length) int32 ids, 0-padded */
} mimo_col_kind;

/* One column of the CSV, by its header name. */
typedef struct {
    char *name;           /* the header's name */
    char *column;         /* the CSV column read (default: name): one
                             column may feed an input and a target */
    char *into;           /* the dataset written (default: name); numeric
                             columns sharing one make one (N, k) dataset */
    mimo_col_kind kind;
    int target;           /* a head's target (category: ids 0..K-1, no
                             mask or OOV id; an unseen value -> -1) */
    long long max_tokens; /* category, multi_hot: ids incl. mask and OOV;
                             0 = no limit */
    long long min_count;  /* rarer values (training split) -> OOV */
    long long num_bins;   /* hashed: required */
    unsigned long long hash_seed; /* hashed: the key (k0 = k1 = seed) */
    long long max_length; /* multi_hot: ids per row (required) */
    char separator;       /* multi_hot: default '|' */
    int missing_mask;     /* category: empty -> 0 (mask) instead of 1 (OOV) */
    int log;              /* numeric: the natural log of the value */
    int fill_kind;        /* numeric, empty cells: 0 NaN, 1 the training
                             mean, 2 the value fill */
    double fill;
    mimo_pos pos;         /* of the column's key in the schema */
} mimo_schema_col;

typedef struct {
    char *file;           /* the schema's path, for messages */
    char *text;           /* its text, stored in the imported files */
    mimo_schema_col *cols;
    int n_cols;
    double val, test;     /* split fractions, val + test < 1 */
    uint64_t seed;        /* of the split and the shuffle (default 0) */
    char *by;             /* NULL, or a column whose value picks the split */
    mimo_pos by_pos;
    int ordered;          /* split by time: the rows are in time order, the
                             last test fraction is test, the val fraction
                             before it val (implied by window) */
    int shuffle;          /* write each split's rows in a seeded random order */
    char delimiter;       /* 0 = not given */
    long long window;     /* > 0: rows become windows of this many time
                             steps, split by time (see tabular.c) */
    long long horizon;    /* the target's row: this many rows after the
                             window's last (window only; default 1) */
    mimo_pos window_pos;  /* of window: (or of the root) */
} mimo_schema;

/* Reads and checks the schema at path. Errors name path:line:col. */
int mimo_schema_load(const char *path, mimo_schema *out);
/* The same from a schema's text (as stored in /preprocessing/schema);
 * name stands for the file in messages. */
int mimo_schema_parse(const char *text, const char *name, mimo_schema *out);
/* Frees what load allocated; the struct is zeroed. */
void mimo_schema_free(mimo_schema *s);
/* "category" etc., for messages and the stored files. */
const char *mimo_col_kind_name(mimo_col_kind k);

#endif
