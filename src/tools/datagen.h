/* datagen.h — dataset files made by libmimo: the built-in datasets of the
 * seed tutorials (`mimo gen`), CSV and IDX (MNIST) conversion (`mimo
 * import`), and the atomic writer both use. A dataset file holds one
 * dataset per model input and head target at its root, all sharing the
 * first dimension N: float32 (N, features), or int32 (N,) class labels. */
#ifndef MIMO_DATAGEN_H
#define MIMO_DATAGEN_H

#include <stddef.h>
#include <stdint.h>

#include "mimo/dsfile.h"
#include "mimo/real.h"
#include "mimo/spec.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Built-in datasets (`mimo gen`) ---------------------------------- */

typedef struct {
    const char *name;    /* generator: one of mimo_gen_names() */
    const char *path;    /* output file */
    long n;              /* samples; 0 = the generator's default */
    uint64_t seed;       /* every random draw comes from mimo_rng(seed) */
    long vocab;          /* ctr: ids per table (0: MIMO_GEN_VOCAB_DEFAULT) */
    double correlation;  /* correlated: the tasks' correlation p, [-1, 1] */
    int random_x;        /* sinexp, sin12: x uniform in [0, 1), sorted,
                            instead of linspace(0, 1, N) (validation sets) */
} mimo_gen_opts;

/* mimo gen's seed when none is given. */
#define MIMO_GEN_SEED_DEFAULT 42
/* ctr's ids per table when --vocab is not given. */
#define MIMO_GEN_VOCAB_DEFAULT 100000
#define MIMO_GEN_STR_(x) #x
#define MIMO_GEN_STR(x) MIMO_GEN_STR_(x)

/* What a generator makes, for help texts and argument checks. */
typedef struct {
    const char *name;
    const char *summary;   /* one line: datasets and shapes */
    long default_n;
    int has_random_x;      /* accepts random_x */
} mimo_gen_info;

/* The generator names, NULL-terminated. Static; don't free(). */
const char *const *mimo_gen_names(void);

/* Looks a generator up: 0 and *info, or MIMO_EINVAL listing valid names. */
int mimo_gen_lookup(const char *name, mimo_gen_info *info);

/* Writes the dataset file. Root string attributes record how: generator,
 * seed, n (and x = linspace|uniform; for sine-window series_mean and
 * series_std, to undo the standardization). Errors: unknown name, n < 0,
 * random_x where the generator has none (MIMO_EINVAL); unwritable path
 * (MIMO_EIO). */
int mimo_gen(const mimo_gen_opts *o);

/* ---- CSV import (`mimo import csv`) ---------------------------------- */

/* One output dataset: `name` gets the columns listed in `spec`, a comma
 * list of header names, 0-based indices and index ranges ("a,b", "0-3",
 * "4"), in the order given. */
typedef struct {
    const char *name;
    const char *spec;
} mimo_csv_column;

typedef struct {
    const char *path;                 /* input CSV */
    const char *out;                  /* output HDF5 dataset file */
    const mimo_csv_column *columns;   /* n_columns >= 1 output datasets */
    size_t n_columns;
    const char *const *labels;        /* names of columns[] stored as int32
                                         (N,) class labels (one column each) */
    size_t n_labels;
    char delimiter;                   /* 0 = ',' */
    int no_header;                    /* first row is data; indices only */
} mimo_csv_opts;

/* Converts the CSV. Fields may be quoted ("a,b", "say ""hi"""); blank
 * lines are skipped. Errors name file:line (and the column): wrong field
 * count, non-numeric or non-finite value, non-integer label, empty file,
 * unknown column, no columns (MIMO_EINVAL); unreadable/unwritable file
 * (MIMO_EIO). */
int mimo_import_csv(const mimo_csv_opts *o);

/* ---- IDX import (`mimo import idx`, MNIST and Fashion-MNIST) ---------- */

typedef struct {
    const char *images;       /* IDX3 ubyte (N, rows, cols), plain or .gz */
    const char *labels;       /* IDX1 ubyte (N,), plain or .gz */
    const char *out;          /* output HDF5 dataset file */
    const char *image_name;   /* NULL = "image": float32 (N, rows*cols) */
    const char *label_name;   /* NULL = "label": int32 (N,) */
    int scale;                /* pixels / 255 (else 0..255 as floats) */
    int image_full;           /* 1: the images (N, rows, cols, 1), the shape
                                 of a conv2d input; 0: flat (N, rows*cols),
                                 the same values in the same order */
} mimo_idx_opts;

/* Converts the pair. Errors name the file: missing, bad magic, truncated
 * (fewer bytes than the header promises), image and label counts differ. */
int mimo_import_idx(const mimo_idx_opts *o);

/* Extra datasets derived in the same pass, for multi-input / multi-head
 * models (`mimo import idx --pool K --label-map NAME=m0,m1,...`). */
typedef struct {
    int pool;               /* 0 = none; K >= 1: K x K average pooling of
                               each image, float32 (N, rows/K * cols/K),
                               row-major like the image, same scale */
    const char *pool_name;  /* NULL = "pooled" */
    const char *map_name;   /* NULL = no derived label */
    const int32_t *map;     /* derived label of class c = map[c], >= 0 */
    size_t n_map;           /* entries of map; every label must be < n_map */
    int pool_full;          /* 1: the pooled view (N, rows/K, cols/K, 1) */
    /* partly labelled data: the labels of dataset keep_name (the label's
     * or the map's name; NULL: all kept) kept for a random fraction keep
     * of the rows (exactly round(keep N), drawn from keep_seed), -1 on
     * the others (a head's `missing: -1`); only_kept: write only the kept
     * rows instead (the same ones, in file order) */
    const char *keep_name;
    double keep;
    uint64_t keep_seed;
    int only_kept;
} mimo_idx_views;

/* mimo_import_idx plus the views in v (NULL = none). Further errors
 * (MIMO_EINVAL): K < 0 or K not dividing the image's rows and columns, a
 * negative map value, an empty map, a label with no map entry (naming the
 * row), two datasets with the same name, keep_name not one of the label
 * datasets, keep outside (0, 1]. */
int mimo_import_idx_views(const mimo_idx_opts *o, const mimo_idx_views *v);

#ifdef __cplusplus
}
#endif
#endif
