/* dataset.c — HDF5 dataset files bound to a graph: validation on open,
 * whole-file loading under a memory limit, otherwise streaming by
 * hyperslab with a reader thread that prefetches the next batch. Only one
 * thread touches HDF5 at a time: the reader works only between prefetch()
 * and the read() or mimo_data_wait() that collects it. */
#include "mimo/dataset.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tgmath.h>
#include <zlib.h>

#include "base/fsutil.h"
#include "core/gather.h"
#include "io/dataset_impl.h"
#include "io/h5_impl.h"
#include "io/prep.h"
#include "core/layers/ids.h"
#include "comm/dist.h"
#include "mimo/error.h"
#include "base/strutil.h"

typedef struct {
    char *name;     /* dataset name in the file */
    const char *owner; /* the input's or head's name */
    int slot;       /* where its rows go: in[slot] (inputs) or tgt[slot] */
    int cols;       /* float slots per row: the product of the sample's
                       shape (twice it for an int64 input: MIMO_I64_SLOTS) */
    int vals;       /* values per row in the file: the shape's product */
    mimo_shape shape; /* inputs: the sample's shape (rank 0 for targets) */
    int rank;       /* of the dataset in the file: 1 to 4 */
    hsize_t dims[MIMO_SAMPLE_RANK + 1]; /* its axes; dims[0] = N */
    int labels;     /* integer class labels in [0, classes) */
    int classes;
    int unit;       /* binary_crossentropy targets: in [0, 1] */
    int ids;        /* an input of integer ids (dtype: int32 or int64),
                       read from the file as int64, checked, carried as
                       floats (int32: exact to 2^24) or bytes (wide) ... */
    int wide;       /* ... dtype: int64 */
    int u64;        /* ... an unsigned 64-bit dataset: read as such, each
                       value checked to fit int64 (HDF5 would clip it) */
    long long id_bound; /* ... in [0, id_bound) when > 0 */
    const mimo_output_spec *head; /* a target: its `missing` marks rows */
    int weights;    /* sample weights: finite, >= 0 */
    int absent;     /* optional sample weights the file lacks: all 1 */
    int mask;       /* a masked_softmax's mask: 0/1, a 1 in each group of */
    int group;      /* ... this many values (the last axis) */
    mimo_real *mem; /* (N, cols) when loaded whole */
} column_set;

enum { IDLE, PENDING, DONE };

struct mimo_data {
    char *path;
    hid_t file;
    size_t n;            /* rows */
    size_t r0;           /* views: first row */
    int n_in, n_tgt, max_batch, owner;
    int n_sets;          /* inputs, targets, then sample weights */
    int rank, size;      /* of the communicator (0, 1 without MPI) */
    struct mimo_data *base; /* views: the file's owner (its reader thread) */
    column_set *sets;    /* inputs, then targets */
    /* streaming */
    uint64_t *sorted;    /* (max_batch) row << 32 | position */
    mimo_real *tmp;      /* (max_batch, max cols) */
    mimo_real **pre;     /* per set (max_batch, cols): prefetched rows */
    mimo_real **dst;     /* per set: where a streamed read puts its rows */
    uint64_t *req;       /* requested rows */
    int req_b, state, rc, stop, thread_on;
    double fp[3];        /* the file's size, mtime and digest (fingerprint) */
    int image;           /* opened from bytes in memory (a raw CSV
                            converted): each rank its own, no MPI-IO */
    char errmsg[1024];   /* the reader thread's error message */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

/* ---- validation -------------------------------------------------------- */

/* Whether row x of a target has no label (1), a label (0), or is partly
 * missing (-1), by its head's `missing`. */
static int row_unlabelled(const column_set *c, const mimo_real *x)
{
    const mimo_output_spec *o = c->head;
    int k = 0;
    if (!o || !o->missing)
        return 0;
    for (int j = 0; j < c->cols; j++)
        k += o->missing == MIMO_MISSING_NAN ? isnan(x[j])
                                            : x[j] == (mimo_real)o->missing_value;
    return k == 0 ? 0 : k == c->cols ? 1 : -1;
}

/* Counts NaN/Inf in x (rows, cols); reports the first row (global index). */
static int scan_finite(const mimo_data *d, const column_set *c,
                       const mimo_real *x, size_t rows, size_t row0,
                       size_t *bad, size_t *first)
{
    for (size_t r = 0; r < rows; r++) {
        int miss = row_unlabelled(c, x + r * (size_t)c->cols);
        if (miss < 0)
            return mimo_error(MIMO_EINVAL, "%s: dataset '%s' row %zu: some but "
                              "not all of its %d values are missing (%s); a row "
                              "without a label for head '%s' is missing in every "
                              "unit", d->path, c->name, row0 + r, c->cols,
                              c->head->missing == MIMO_MISSING_NAN ? "NaN"
                                                                  : "the missing value",
                              c->owner);
        if (miss)
            continue;
        for (int j = 0; j < c->cols; j++) {
            mimo_real v = x[r * (size_t)c->cols + (size_t)j];
            if (c->weights && isfinite(v) && !(v >= 0))
                return mimo_error(MIMO_EINVAL, "%s: dataset '%s' row %zu: sample "
                                  "weight %g of head '%s' is negative (weights "
                                  "must be finite and >= 0)", d->path, c->name,
                                  row0 + r, (double)v, c->owner);
            if (!isfinite(v)) {
                if (*bad == 0)
                    *first = row0 + r;
                ++*bad;
            } else if (c->labels && (v < 0 || v >= c->classes || v != floor(v)))
                return mimo_error(MIMO_EINVAL, "%s: dataset '%s' row %zu: class "
                                  "label %g is not an integer in [0, %d)", d->path,
                                  c->name, row0 + r, (double)v, c->classes);
            else if (c->unit && (v < 0 || v > 1))
                return mimo_error(MIMO_EINVAL, "%s: dataset '%s' row %zu: target "
                                  "%g of head '%s' is outside [0, 1] (its loss is "
                                  "binary_crossentropy: a probability)", d->path,
                                  c->name, row0 + r, (double)v, c->owner);
        }
    }
    return 0;
}

/* A mask: every value 0 or 1, and a 1 in every softmax group of a row
 * (an all-zero group has nothing to attend to: its loss cannot move). */
static int scan_mask(const mimo_data *d, const column_set *c, const mimo_real *x,
                     size_t rows, size_t row0)
{
    size_t w = (size_t)c->cols, gw = c->group > 0 ? (size_t)c->group : w;
    for (size_t r = 0; r < rows; r++)
        for (size_t g0 = 0; g0 < w; g0 += gw) {
            int any = 0;
            for (size_t j = g0; j < g0 + gw && j < w; j++) {
                mimo_real v = x[r * w + j];
                if (v != 0 && v != 1)
                    return mimo_error(MIMO_EINVAL, "%s: dataset '%s' row %zu: mask "
                                      "value %g is not 0 or 1 (input '%s' is the "
                                      "mask of a masked_softmax)", d->path, c->name,
                                      row0 + r, (double)v, c->owner);
                any |= v == 1;
            }
            if (!any)
                return mimo_error(MIMO_EINVAL, "%s: dataset '%s' row %zu: the mask "
                                  "is all zeros%s: the masked_softmax would have no "
                                  "position to attend to", d->path, c->name,
                                  row0 + r, w > gw ? " in a group" : "");
        }
    return 0;
}

/* Integer ids as the file holds them, v (rows, vals): in [0, id_bound)
 * when a layer bounds them (exactly: 2^40 + 1 is no 2^40 here), and an
 * int32 input's within what its floats carry exactly. */
static int check_ids(const mimo_data *d, const column_set *c, const void *v,
                     size_t rows, size_t row0)
{
    for (size_t r = 0; r < rows; r++)
        for (int j = 0; j < c->vals; j++) {
            int64_t x; /* (a float buffer: memcpy, never a misaligned load) */
            memcpy(&x, (const char *)v + (r * (size_t)c->vals + (size_t)j) * sizeof x,
                   sizeof x);
            if (c->u64 && x < 0) /* read as uint64: above 2^63 - 1 */
                return mimo_error(MIMO_EINVAL, "%s: dataset '%s' row %zu: id %llu "
                                  "of input '%s' does not fit an int64 (unsigned "
                                  "64-bit ids are read up to 2^63 - 1: store them "
                                  "as int64, the same bits)", d->path, c->name,
                                  row0 + r, (unsigned long long)x, c->owner);
            if (c->id_bound > 0 && (x < 0 || x >= c->id_bound))
                return mimo_error(MIMO_EINVAL, "%s: dataset '%s' row %zu: id %lld "
                                  "is outside [0, %lld), the input_dim of the "
                                  "embedding that reads input '%s'", d->path,
                                  c->name, row0 + r, (long long)x, c->id_bound, c->owner);
            if (!c->wide && (x > MIMO_IDS_MAX || x < -MIMO_IDS_MAX))
                return mimo_error(MIMO_EINVAL, "%s: dataset '%s' row %zu: id %lld "
                                  "does not fit input '%s' of dtype: int32 (exact "
                                  "up to 2^24 in magnitude): declare it dtype: "
                                  "int64", d->path, c->name, row0 + r, (long long)x,
                                  c->owner);
        }
    return 0;
}

/* n ids read as int64 at buf into their carried form in place: an int32
 * input's as floats (forward: each float lands before the next int64 is
 * read), an int64 input's bytes as they are. */
static void carry_ids(const column_set *c, void *buf, size_t n)
{
    for (size_t i = 0; !c->wide && i < n; i++) {
        int64_t v;
        memcpy(&v, (char *)buf + i * sizeof v, sizeof v);
        mimo_real f = (mimo_real)v;
        memcpy((char *)buf + i * sizeof f, &f, sizeof f);
    }
}

/* Rows [r0, r0 + m) of set c into buf (m, cols) in their carried form;
 * ids are checked on the way (buf holds m * vals int64: alloc_ids). */
static int read_rows(const mimo_data *d, const column_set *c, size_t r0, size_t m,
                     mimo_real *buf)
{
    if (!c->ids)
        return mimo_h5_read_rows(d->file, d->path, c->name, r0, m, (size_t)c->cols, buf);
    int rc = mimo_h5_read_rows_as(d->file, d->path, c->name, r0, m, (size_t)c->vals,
                                  c->u64 ? H5T_NATIVE_UINT64 : H5T_NATIVE_INT64, buf);
    if (!rc)
        rc = check_ids(d, c, buf, m, r0);
    if (!rc)
        carry_ids(c, buf, m * (size_t)c->vals);
    return rc;
}

/* Values of a buffer for m rows of set c read by read_rows. */
static size_t buf_len(const column_set *c, size_t m)
{
    size_t w = c->ids ? (size_t)c->vals * (sizeof(int64_t) / sizeof(mimo_real)) : 0;
    return m * (w > (size_t)c->cols ? w : (size_t)c->cols);
}

static int check_values(const mimo_data *d, const column_set *c,
                        const mimo_real *x, size_t rows, size_t row0,
                        size_t *bad, size_t *first)
{
    int rc = scan_finite(d, c, x, rows, row0, bad, first);
    return !rc && c->mask && !*bad ? scan_mask(d, c, x, rows, row0) : rc;
}

static int finish_scan(const mimo_data *d, const column_set *c, size_t bad,
                       size_t first)
{
    const char *hint = !c->head || c->head->missing ? ""
                       : " (rows without a label? mark them NaN in every unit "
                         "and give the head missing: nan)";
    if (bad)
        return mimo_error(MIMO_ENUM, "%s: dataset '%s' has %zu NaN/Inf value(s), "
                          "the first in row %zu%s", d->path, c->name, bad, first,
                          hint);
    return 0;
}

/* "(first, d1, d2, ...)" for a sample shape s after a first axis. */
static void shape_text(const char *first, const mimo_shape *s, char *buf,
                       size_t len)
{
    size_t used = (size_t)snprintf(buf, len, "(%s%s", first, s->rank ? "" : ",");
    for (int k = 0; k < s->rank && used < len; k++)
        used += (size_t)snprintf(buf + used, len - used, ", %d", s->dim[k]);
    if (used < len)
        snprintf(buf + used, len - used, ")");
}

/* Checks one dataset's shape against what the graph needs: (N, cols),
 * (N,) when cols is 1, or for an input of rank 2 or 3 also its full shape
 * (N, d1, d2[, d3]) (the same values in the same memory order). */
static int check_shape(mimo_data *d, column_set *c, const char *what,
                       const char *owner, size_t *n)
{
    int rank;
    size_t rows, cols;
    mimo_shape row;
    int rc = mimo_h5_shape(d->file, d->path, c->name, &rank, &rows, &cols, &row);
    if (rc == MIMO_EINVAL && !mimo_h5_exists(d->file, c->name))
        return mimo_error(MIMO_EINVAL, "%s: no dataset '%s' for %s '%s'", d->path,
                          c->name, what, owner);
    if (rc)
        return rc;
    if ((rc = mimo_h5_check_storage(d->file, d->path, c->name)))
        return rc;
    int full = c->shape.rank > 1; /* the input may come with its shape */
    char whole[96] = "";
    if (full)
        shape_text("N", &c->shape, whole, sizeof whole);
    if (rank > 2 && !(full && row.rank == c->shape.rank &&
                      memcmp(row.dim, c->shape.dim, sizeof(int) * (size_t)row.rank) == 0)) {
        char have[128], first[32], flat[48];
        snprintf(first, sizeof first, "%zu", rows);
        shape_text(first, &row, have, sizeof have);
        shape_text("N", &(mimo_shape){1, {c->vals}}, flat, sizeof flat);
        return mimo_error(MIMO_ESHAPE, "%s: dataset '%s' has shape %s, %s '%s' "
                          "needs %s%s%s", d->path, c->name, have, what, owner, flat,
                          full ? " or " : "", whole);
    }
    if (rank <= 2 && cols != (size_t)c->vals)
        return mimo_error(MIMO_ESHAPE, "%s: dataset '%s' has %zu feature(s) per "
                          "row, %s '%s' needs %d%s%s%s", d->path, c->name, cols,
                          what, owner, c->vals, full ? " (or shape " : "", whole,
                          full ? ")" : "");
    if (c->ids && !mimo_h5_is_integer(d->file, c->name))
        return mimo_error(MIMO_EINVAL, "%s: dataset '%s' holds floating-point "
                          "values, but input '%s' is declared dtype: %s "
                          "(integer ids): store it as an integer dataset",
                          d->path, c->name, owner, c->wide ? "int64" : "int32");
    c->u64 = c->ids && mimo_h5_is_u64(d->file, c->name);
    if (rows == 0)
        return mimo_error(MIMO_EINVAL, "%s: dataset '%s' is empty", d->path, c->name);
    if (*n != (size_t)-1 && rows != *n)
        return mimo_error(MIMO_ESHAPE, "%s: dataset '%s' has %zu rows but '%s' has "
                          "%zu; all datasets must share N", d->path, c->name, rows,
                          d->sets[0].name, *n);
    *n = rows;
    c->rank = rank;
    c->dims[0] = rows;
    for (int k = 1; k < rank; k++)
        c->dims[k] = (hsize_t)row.dim[k - 1];
    return 0;
}

static int describe_sets(mimo_data *d, const mimo_graph *g)
{
    int nh = mimo_graph_n_heads(g);
    for (int i = 0, w = 0; i < d->n_sets; i++) {
        column_set *c = &d->sets[i];
        if (i < d->n_in) {
            c->name = mimo_strdup(mimo_graph_input_name(g, i));
            c->owner = mimo_graph_input_name(g, i);
            c->slot = i;
            c->cols = mimo_graph_input_width(g, i);
            c->shape = *mimo_graph_input_shape(g, i);
            c->ids = mimo_graph_input_ids(g, i, &c->id_bound);
            c->wide = mimo_graph_spec(g)->inputs[i].dtype == MIMO_DTYPE_INT64;
            c->mask = mimo_graph_input_mask(g, i);
            const mimo_shape *sh = &c->shape;
            c->group = sh->rank > 0 ? sh->dim[sh->rank - 1] : c->cols;
        } else if (i < d->n_in + d->n_tgt) {
            int h = i - d->n_in;
            const mimo_output_spec *o = mimo_graph_head_spec(g, h);
            c->name = mimo_strdup(o->target ? o->target : o->name);
            c->owner = o->name;
            c->slot = h;
            c->cols = mimo_graph_head_target_width(g, h);
            c->labels = o->loss == MIMO_LOSS_SPARSE_CCE;
            c->unit = o->loss == MIMO_LOSS_BCE;
            c->classes = mimo_graph_head_units(g, h);
            c->head = o;
        } else { /* the next head with sample weights */
            while (!mimo_graph_head_spec(g, w)->sample_weight)
                w++;
            const mimo_output_spec *o = mimo_graph_head_spec(g, w);
            c->name = mimo_strdup(o->sample_weight);
            c->owner = o->name;
            c->slot = nh + w++;
            c->cols = 1;
            c->weights = 1;
        }
        if (!c->name)
            return mimo_error(MIMO_ENOMEM, "out of memory");
        c->vals = i < d->n_in ? (int)mimo_shape_size(&c->shape) : c->cols;
    }
    return 0;
}

static int validate(mimo_data *d, int weights_required)
{
    size_t n = (size_t)-1;
    int rc;
    for (int i = 0; i < d->n_sets; i++) {
        column_set *c = &d->sets[i];
        const char *what = i < d->n_in ? "input" : c->weights ? "the sample "
                           "weights of head" : "head";
        if (c->weights && !weights_required && !mimo_h5_exists(d->file, c->name)) {
            c->absent = 1; /* validation and eval data may have none */
            continue;
        }
        if ((rc = check_shape(d, c, what, c->owner, &n)))
            return rc;
    }
    d->n = n;
    return 0;
}

/* ---- loading whole, or scanning for streaming ---------------------------- */

#define SCAN_ROWS 65536

static volatile sig_atomic_t *scan_stop;

void mimo_data_stop_flag(volatile sig_atomic_t *stop) { scan_stop = stop; }

/* Loads every dataset whole (every rank all of it: any row may fall in
 * its slice of a shuffled batch), or scans them in chunks for NaN/Inf and
 * bad labels, with several ranks each only its share of the rows. */
static int load_or_scan(mimo_data *d, int whole)
{
    int rc = 0;
    size_t lo = whole ? 0 : d->n * (size_t)d->rank / (size_t)d->size;
    size_t hi = whole ? d->n : d->n * (size_t)(d->rank + 1) / (size_t)d->size;
    for (int i = 0; i < d->n_sets && !rc; i++) {
        column_set *c = &d->sets[i];
        size_t bad = 0, first = 0, chunk = whole ? d->n : SCAN_ROWS;
        if (c->absent)
            continue;
        mimo_real *buf = malloc(sizeof(mimo_real) * buf_len(c, chunk < d->n ? chunk : d->n));
        if (!buf)
            return mimo_error(MIMO_ENOMEM, "%s: out of memory reading '%s'",
                              d->path, c->name);
        for (size_t r = lo; r < hi && !rc; r += chunk) {
            size_t m = hi - r < chunk ? hi - r : chunk;
            if (scan_stop && *scan_stop) { /* a signal: seconds, not an hour */
                rc = mimo_error(MIMO_EINVAL, "%s: stopped while checking dataset "
                                "'%s' (row %zu of %zu)", d->path, c->name, r, d->n);
                break;
            }
            rc = read_rows(d, c, r, m, buf);
            if (!rc && !c->ids) /* ids: checked as integers by read_rows */
                rc = check_values(d, c, buf, m, r, &bad, &first);
        }
        if (!rc)
            rc = finish_scan(d, c, bad, first);
        if (whole && !rc)
            c->mem = buf;
        else
            free(buf);
    }
    return rc;
}

/* ---- the fingerprint ------------------------------------------------------- */

#define FP_ROWS 17 /* rows sampled per dataset: the first, the last, between */

/* What identifies the data a run trained on, cheaply: the file's size and
 * mtime, and a CRC-32 of every dataset's name and shape and of 17 rows
 * spread over it (a checkpoint keeps it; a resume compares). */
static int fingerprint(mimo_data *d)
{
    struct stat sb;
    uLong crc = crc32(0L, Z_NULL, 0);
    mimo_real row[8192]; /* 4096 values, or 4096 slots of ids read as int64 */
    if (stat(d->path, &sb) == 0) {
        d->fp[0] = (double)sb.st_size;
        d->fp[1] = (double)sb.st_mtime;
    }
    for (int i = 0; i < d->n_sets; i++) {
        const column_set *c = &d->sets[i];
        if (c->absent)
            continue;
        crc = crc32(crc, (const Bytef *)c->name, (uInt)strlen(c->name));
        crc = crc32(crc, (const Bytef *)c->dims, (uInt)(sizeof(hsize_t) * (size_t)c->rank));
        if (c->cols > 4096) /* (int32 ids are read as int64 first: 8192) */
            continue; /* wide rows: their shape only */
        for (int k = 0; k < FP_ROWS; k++) {
            size_t r = d->n > 1 ? (d->n - 1) * (size_t)k / (FP_ROWS - 1) : 0;
            const mimo_real *x = c->mem ? c->mem + r * (size_t)c->cols : row;
            int rc = c->mem ? 0 : read_rows(d, c, r, 1, row);
            if (rc)
                return rc;
            crc = crc32(crc, (const Bytef *)x, (uInt)(sizeof *x * (size_t)c->cols));
        }
    }
    d->fp[2] = (double)crc;
    return 0;
}

void mimo_data_fingerprint(const mimo_data *d, double fp[3])
{
    memcpy(fp, d->fp, sizeof d->fp);
}

/* ---- reading rows -------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Reads rows (file order made contiguous runs) of set c into dst (b, cols)
 * in request order, through one hyperslab union and one H5Dread. */
static int read_set(mimo_data *d, const column_set *c, int b, mimo_real *dst)
{
    hid_t ds = H5Dopen2(d->file, c->name, H5P_DEFAULT);
    hid_t fs = ds < 0 ? -1 : H5Dget_space(ds);
    herr_t st = fs < 0 ? -1 : H5Sselect_none(fs);
    hsize_t start[MIMO_SAMPLE_RANK + 1] = {0}, count[MIMO_SAMPLE_RANK + 1];
    memcpy(count, c->dims, sizeof count); /* whole rows: all the other axes */
    for (int k = 0; k < b && st >= 0;) {
        uint64_t row = d->sorted[k] >> 32;
        int run = 1;
        while (k + run < b && (d->sorted[k + run] >> 32) == row + (uint64_t)run)
            run++;
        if (k + run < b && (d->sorted[k + run] >> 32) == row + (uint64_t)run - 1) {
            st = -1; /* the same row twice: the union would drop one */
            break;
        }
        start[0] = row, count[0] = (hsize_t)run;
        st = H5Sselect_hyperslab(fs, H5S_SELECT_OR, start, NULL, count, NULL);
        k += run;
    }
    count[0] = (hsize_t)b;
    hid_t ms = H5Screate_simple(c->rank, count, NULL);
    if (st >= 0)
        st = H5Dread(ds, c->ids ? H5T_NATIVE_INT64 : MIMO_H5_REAL, ms, fs,
                     H5P_DEFAULT, d->tmp);
    if (st >= 0 && c->ids) /* checked when the file was opened */
        carry_ids(c, d->tmp, (size_t)b * (size_t)c->vals);
    H5Sclose(ms);
    if (fs >= 0)
        H5Sclose(fs);
    if (ds >= 0)
        H5Dclose(ds);
    if (st < 0)
        return mimo_error(MIMO_EIO, "%s: reading %d rows of '%s' failed (truncated "
                          "or damaged file?)", d->path, b, c->name);
    size_t w = (size_t)c->cols;
    for (int k = 0; k < b; k++) /* tmp is in file order: scatter to positions */
        memcpy(dst + (d->sorted[k] & 0xffffffffu) * w, d->tmp + (size_t)k * w,
               sizeof(mimo_real) * w);
    return 0;
}

static void fill_ones(mimo_real *x, int b)
{
    for (int k = 0; k < b; k++)
        x[k] = 1;
}

/* Where set i's rows go among a read's destinations. */
static mimo_real *dest(const mimo_data *d, int i, mimo_real *const *in,
                       mimo_real *const *tgt)
{
    return i < d->n_in ? in[d->sets[i].slot] : tgt[d->sets[i].slot];
}

/* Streaming read of rows[0..b) into the per-set destinations. */
static int stream_rows(mimo_data *d, const uint64_t *rows, int b,
                       mimo_real *const *dst, int n_sets)
{
    int rc = 0;
    for (int k = 0; k < b; k++)
        d->sorted[k] = ((rows[k] + d->r0) << 32) | (uint64_t)k;
    qsort(d->sorted, (size_t)b, sizeof *d->sorted, cmp_u64);
    mimo_h5_lock(); /* a checkpoint may be being built on another thread */
    for (int i = 0; i < n_sets && !rc; i++)
        rc = d->sets[i].absent ? (fill_ones(dst[i], b), 0)
                               : read_set(d, &d->sets[i], b, dst[i]);
    mimo_h5_unlock();
    return rc;
}

static void *reader_main(void *arg)
{
    mimo_data *d = arg;
    pthread_mutex_lock(&d->mu);
    for (;;) {
        while (d->state != PENDING && !d->stop)
            pthread_cond_wait(&d->cv, &d->mu);
        if (d->stop)
            break;
        pthread_mutex_unlock(&d->mu);
        int rc = stream_rows(d, d->req, d->req_b, d->pre, d->n_sets);
        pthread_mutex_lock(&d->mu);
        if (rc) /* messages are per thread: hand it to the reader's caller */
            snprintf(d->errmsg, sizeof d->errmsg, "%s", mimo_errmsg());
        d->rc = rc;
        d->state = DONE;
        pthread_cond_broadcast(&d->cv);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

/* Waits until the reader has finished any pending request. */
static void wait_reader(mimo_data *d)
{
    if (!d->thread_on)
        return;
    pthread_mutex_lock(&d->mu);
    while (d->state == PENDING)
        pthread_cond_wait(&d->cv, &d->mu);
    pthread_mutex_unlock(&d->mu);
}

static void source_prefetch(void *ctx, const uint64_t *rows, int b)
{
    mimo_data *d = ctx;
    if (!d->thread_on || b > d->max_batch)
        return;
    wait_reader(d);
    pthread_mutex_lock(&d->mu);
    memcpy(d->req, rows, sizeof *rows * (size_t)b);
    d->req_b = b;
    d->state = PENDING;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

/* Copies the prefetched batch out when it is the one asked for. */
static int take_prefetched(mimo_data *d, const uint64_t *rows, int b,
                           mimo_real *const *in, mimo_real *const *tgt, int *rc)
{
    wait_reader(d);
    if (d->state != DONE || d->req_b != b ||
        memcmp(d->req, rows, sizeof *rows * (size_t)b) != 0) {
        d->state = IDLE;
        return 0;
    }
    d->state = IDLE;
    *rc = d->rc ? mimo_error(d->rc, "%s", d->errmsg) : 0;
    for (int i = 0; i < (tgt ? d->n_sets : d->n_in) && !*rc; i++)
        memcpy(dest(d, i, in, tgt), d->pre[i],
               sizeof(mimo_real) * (size_t)b * (size_t)d->sets[i].cols);
    return 1;
}


static int source_read(void *ctx, const uint64_t *rows, int b,
                       mimo_real *const *in, mimo_real *const *tgt)
{
    mimo_data *d = ctx;
    int rc = 0;
    if (b > d->max_batch && !d->sets[0].mem)
        return mimo_error(MIMO_EINVAL, "%s: batch of %d rows exceeds %d", d->path,
                          b, d->max_batch);
    int n_sets = tgt ? d->n_sets : d->n_in;
    if (d->sets[0].mem) { /* loaded whole: gather */
        for (int i = 0; i < n_sets; i++) {
            const column_set *c = &d->sets[i];
            mimo_real *dst = dest(d, i, in, tgt);
            size_t w = (size_t)c->cols;
            if (c->absent) {
                fill_ones(dst, b);
                continue;
            }
            mimo_gather_rows(dst, c->mem, rows, b, d->r0, w);
        }
        return 0;
    }
    if (d->base)
        wait_reader(d->base); /* one thread in HDF5 at a time */
    if (d->thread_on && take_prefetched(d, rows, b, in, tgt, &rc))
        return rc;
    for (int i = 0; i < n_sets; i++)
        d->dst[i] = dest(d, i, in, tgt);
    return stream_rows(d, rows, b, d->dst, n_sets);
}

/* ---- open and close ------------------------------------------------------ */

static int alloc_stream(mimo_data *d)
{
    int maxc = 1, n_sets = d->n_sets;
    if (n_sets <= 0 || d->max_batch <= 0) /* (and GCC's range check knows it) */
        return -1;
    for (int i = 0; i < n_sets; i++)
        maxc = d->sets[i].cols > maxc ? d->sets[i].cols : maxc;
    size_t B = (size_t)d->max_batch;
    d->sorted = malloc(sizeof *d->sorted * B);
    d->req = malloc(sizeof *d->req * B);
    d->tmp = malloc(sizeof(int64_t) * B * (size_t)maxc); /* ids read as int64 */
    d->pre = calloc((size_t)n_sets, sizeof *d->pre);
    d->dst = calloc((size_t)n_sets, sizeof *d->dst);
    if (!d->sorted || !d->req || !d->tmp || !d->pre || !d->dst)
        return -1;
    for (int i = 0; i < n_sets; i++)
        if (!(d->pre[i] = malloc(sizeof(mimo_real) * B * (size_t)d->sets[i].cols)))
            return -1;
    return 0;
}

static int start_reader(mimo_data *d)
{
    if (pthread_mutex_init(&d->mu, NULL) || pthread_cond_init(&d->cv, NULL))
        return mimo_error(MIMO_ENOMEM, "cannot create the reader thread's lock");
    if (pthread_create(&d->thread, NULL, reader_main, d))
        return mimo_error(MIMO_ENOMEM, "cannot start the reader thread");
    d->thread_on = 1;
    return 0;
}

static int open_steps(mimo_data *d, const mimo_graph *g, int what, MPI_Comm comm)
{
    int rc, n_w = 0;
    const mimo_spec *s = mimo_graph_spec(g);
    d->n_in = mimo_graph_n_inputs(g);
    d->n_tgt = what != MIMO_DATA_INPUTS ? mimo_graph_n_heads(g) : 0;
    for (int h = 0; h < d->n_tgt; h++)
        n_w += mimo_graph_head_spec(g, h)->sample_weight != NULL;
    d->n_sets = d->n_in + d->n_tgt + n_w;
    /* a step reads all its micro-batches' rows at once (train.accumulate) */
    d->max_batch = mimo_graph_max_batch(g) > s->train.batch_size
                       ? mimo_graph_max_batch(g) : (int)s->train.batch_size;
    d->sets = calloc((size_t)d->n_sets, sizeof *d->sets);
    if (!d->sets)
        return mimo_error(MIMO_ENOMEM, "out of memory");
    if ((rc = describe_sets(d, g)) || (rc = validate(d, what == MIMO_DATA_TRAIN)))
        return rc;
    if (d->n >= (1ULL << 32))
        return mimo_error(MIMO_EINVAL, "%s: %zu rows is more than mimo handles "
                          "(2^32)", d->path, d->n);
    double bytes = 0;
    for (int i = 0; i < d->n_sets; i++)
        bytes += (double)d->n * d->sets[i].cols * sizeof(mimo_real);
    /* per rank: on several ranks each holds its own copy */
    int whole = bytes <= s->data.memory_limit_mb * 1048576.0;
    if ((rc = load_or_scan(d, whole)) || (rc = fingerprint(d)))
        return rc;
    if (whole)
        return 0;
    if (alloc_stream(d))
        return mimo_error(MIMO_ENOMEM, "out of memory for streaming buffers");
    int threads = MPI_THREAD_MULTIPLE;
    if (comm != MPI_COMM_NULL)
        MPI_Query_thread(&threads);
    /* with MPI-IO the reader thread calls MPI: it needs THREAD_MULTIPLE */
    return s->data.prefetch > 0 && (d->size == 1 || threads == MPI_THREAD_MULTIPLE)
               ? start_reader(d) : 0;
}

/* Opens the file: with several ranks, collectively with the MPI-IO
 * driver, after every rank has checked that it can read it at all. */
static int open_file(mimo_data *d, MPI_Comm comm)
{
    hid_t fapl = H5P_DEFAULT;
    int rc = 0;
    if (d->size > 1) {
        rc = mimo_check_regular(d->path, NULL); /* a rank that cannot read it says so */
        if ((rc = mimo_agree(comm, rc)))
            return rc;
        fapl = H5Pcreate(H5P_FILE_ACCESS);
        H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
    }
    d->file = mimo_h5_open_read(d->path, fapl);
    if (fapl != H5P_DEFAULT)
        H5Pclose(fapl);
    rc = d->file < 0 ? (int)d->file : 0;
    return d->size > 1 ? mimo_agree(comm, rc) : rc;
}

/* path's file, or (image) the file in buf's len bytes, path its name. */
static int data_open(const char *path, const void *image, size_t len,
                     const mimo_graph *g, int what, MPI_Comm comm, mimo_data **out)
{
    *out = NULL;
    mimo_data *d = calloc(1, sizeof *d);
    if (!d || !(d->path = mimo_strdup(path))) {
        free(d);
        return mimo_error(MIMO_ENOMEM, "out of memory");
    }
    d->owner = 1;
    d->size = 1;
    if (comm != MPI_COMM_NULL) {
        MPI_Comm_rank(comm, &d->rank);
        MPI_Comm_size(comm, &d->size);
    }
    int rc = 0;
    if (image) { /* every rank has the same bytes: no MPI-IO */
        d->image = 1;
        d->file = mimo_prep_open(image, len, path);
        rc = d->file < 0 ? (int)d->file : 0;
        rc = d->size > 1 ? mimo_agree(comm, rc) : rc;
    } else {
        rc = open_file(d, comm); /* agreed inside */
    }
    if (!rc) {
        rc = open_steps(d, g, what, comm);
        if (d->size > 1)
            rc = mimo_agree(comm, rc);
    }
    if (rc) {
        mimo_data_close(&d);
        return rc;
    }
    *out = d;
    return 0;
}

int mimo_data_open(const char *path, const mimo_graph *g, int what,
                   MPI_Comm comm, mimo_data **out)
{
    return data_open(path, NULL, 0, g, what, comm, out);
}

int mimo_data_open_image(const char *name, const void *buf, size_t len,
                         const mimo_graph *g, int what, MPI_Comm comm,
                         mimo_data **out)
{
    return data_open(name, buf, len, g, what, comm, out);
}

/* Frees d; close_file = 0 leaves an MPI-IO file open, since closing it is
 * collective and the other ranks may be stuck elsewhere (the job aborts). */
static void data_free(mimo_data **dp, int close_file)
{
    mimo_data *d = dp ? *dp : NULL;
    if (!d)
        return;
    if (d->owner) {
        if (d->thread_on) {
            wait_reader(d);
            pthread_mutex_lock(&d->mu);
            d->stop = 1;
            pthread_cond_broadcast(&d->cv);
            pthread_mutex_unlock(&d->mu);
            pthread_join(d->thread, NULL);
            pthread_mutex_destroy(&d->mu);
            pthread_cond_destroy(&d->cv);
        }
        for (int i = 0; d->sets && i < d->n_sets; i++) {
            free(d->sets[i].name);
            free(d->sets[i].mem);
            if (d->pre)
                free(d->pre[i]);
        }
        free(d->sets);
        free(d->pre);
        free(d->dst);
        free(d->sorted);
        free(d->req);
        free(d->tmp);
        free(d->path);
        if (d->file > 0 && close_file)
            H5Fclose(d->file);
    }
    free(d);
    *dp = NULL;
}

void mimo_data_close(mimo_data **dp) { data_free(dp, 1); }

void mimo_data_abandon(mimo_data **dp)
{
    data_free(dp, dp && *dp && ((*dp)->size == 1 || (*dp)->image));
}

mimo_source mimo_data_source(mimo_data *d)
{
    mimo_source s = {d->n, d, source_read, d->thread_on ? source_prefetch : NULL};
    return s;
}

size_t mimo_data_rows(const mimo_data *d) { return d->n; }
int mimo_data_in_memory(const mimo_data *d) { return d->sets[0].mem != NULL; }

void mimo_data_wait(mimo_data *d) { wait_reader(d); }

mimo_source mimo_data_range(mimo_data *d, size_t r0, size_t n, mimo_data **view)
{
    mimo_data *v = malloc(sizeof *v);
    mimo_source s = {0};
    *view = v;
    if (!v)
        return s;
    *v = *d;
    v->owner = 0;
    v->base = d->base ? d->base : d;
    v->r0 = d->r0 + r0;
    v->n = n;
    v->thread_on = 0; /* views read synchronously: one reader per file */
    v->state = IDLE;
    s = (mimo_source){n, v, source_read, NULL};
    return s;
}
