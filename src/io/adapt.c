/* adapt.c — a layer's statistics taken from the training data (`adapt:
 * from_data`, normalization): the state tensors `mean` and `variance` of
 * each such node set from /preprocessing/<input>/mean and variance of the
 * training file, where `mimo import csv --schema` stores the training
 * split's statistics of each numeric dataset. Every rank reads the same
 * file, so every rank sets the same values.
 *
 * A file without them (any HDF5 dataset file): the statistics are
 * computed over the training rows (the source given: validation_split's
 * rows left out) as Keras' adapt does — per feature of the last axis, the
 * mean and the population variance, in double, two passes in row order
 * over chunks of rows. Every rank reads all the training rows itself, so
 * the result is the same on every rank and any number of ranks, bitwise
 * (the cost: one read of the training inputs per rank, at a fresh start).
 *
 * discretization with num_bins K: its state tensor `bin_boundaries` set
 * to the quantiles q = i/K (i = 1..K-1) of all the values of its input
 * (every position, as Keras, not per feature) over the training rows,
 * always computed (no file stores them), exactly: the values sorted in
 * double, then numpy.quantile's default method 'linear' (Hyndman & Fan's
 * 7th): h = (n - 1) q, the value at floor(h) and the next interpolated
 * by t = h - floor(h) as numpy's _lerp does (from the nearer end), so
 * the double is numpy's bitwise; then rounded to mimo_real. Keras' own
 * boundaries are approximate. Again every rank reads all the rows (the
 * cost: those values in memory as doubles, 8 bytes each, while sorting). */
#include "io/dataset_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/kind.h"
#include "io/h5_impl.h"
#include "mimo/error.h"

/* The index of node n's tensor `name`, or -1. */
static int tensor_of(const mimo_node *n, const char *name)
{
    for (int t = 0; t < n->n_tensors; t++)
        if (strcmp(n->tensors[t].name, name) == 0)
            return t;
    return -1;
}

/* /preprocessing/<input>/<what> (c values) into the tensor `what` of n. */
static int adapt_one(hid_t f, const char *path, const mimo_node *n,
                     const char *input, const char *what, mimo_real *params)
{
    char obj[512];
    snprintf(obj, sizeof obj, "preprocessing/%s/%s", input, what);
    int t = tensor_of(n, what);
    if (t < 0)
        return mimo_error(MIMO_EINVAL, "layer '%s' has no tensor '%s'", n->name,
                          what);
    if (!mimo_h5_exists(f, obj))
        return mimo_error(MIMO_EINVAL, "%s has no /%s, which layer '%s' (adapt: "
                          "from_data) needs: the statistics `mimo import csv "
                          "--schema` stores for a numeric dataset '%s'", path,
                          obj, n->name, input);
    double *v = NULL;
    size_t k = 0;
    int rc = mimo_h5_read_f64(f, path, obj, &v, &k);
    if (!rc && k != n->tensors[t].size)
        rc = mimo_error(MIMO_EINVAL, "%s: /%s has %zu values, layer '%s' "
                        "normalizes %zu features", path, obj, k, n->name,
                        n->tensors[t].size);
    for (size_t j = 0; !rc && j < k; j++) {
        if (!isfinite(v[j]) || (!strcmp(what, "variance") && v[j] < 0))
            rc = mimo_error(MIMO_EINVAL, "%s: /%s[%zu] is %g: no statistic (a "
                            "column empty in every training row?)", path, obj,
                            j, v[j]);
        else
            params[n->tensors[t].off + j] = (mimo_real)v[j];
    }
    free(v);
    return rc;
}

#define ADAPT_ROWS 1024 /* rows read at a time */

/* The model input node n reads (its first parent), as an index. */
static int input_of(const mimo_graph *g, const mimo_node *n)
{
    for (int i = 0; i < g->n_inputs; i++)
        if (g->input_node[i] == n->in[0])
            return i;
    return -1;
}

/* Reads src's rows in row order, ADAPT_ROWS at a time, every input into
 * its own buffer, and calls visit(u, buffers, first row, rows) for each
 * chunk: the one read loop of the moments and the quantiles. */
typedef int (*chunk_fn)(void *u, mimo_real *const *buf, size_t r0, int b);

static int each_chunk(const char *path, const mimo_graph *g, const mimo_source *src,
                      chunk_fn visit, void *u)
{
    int ni = g->n_inputs, rc = 0;
    mimo_real **buf = calloc((size_t)ni, sizeof *buf);
    uint64_t *rows = malloc(sizeof *rows * ADAPT_ROWS);
    if (!buf || !rows)
        rc = mimo_error(MIMO_ENOMEM, "out of memory adapting to %s", path);
    for (int i = 0; i < ni && !rc; i++) {
        size_t w = (size_t)mimo_graph_input_width(g, i);
        if (!(buf[i] = malloc(sizeof **buf * ADAPT_ROWS * (w ? w : 1))))
            rc = mimo_error(MIMO_ENOMEM, "out of memory adapting to %s", path);
    }
    if (!rc && src->rows == 0)
        rc = mimo_error(MIMO_EINVAL, "%s: no training rows to adapt to", path);
    for (size_t r0 = 0; !rc && r0 < src->rows; r0 += ADAPT_ROWS) {
        int b = (int)(src->rows - r0 < ADAPT_ROWS ? src->rows - r0 : ADAPT_ROWS);
        for (int k = 0; k < b; k++)
            rows[k] = r0 + (uint64_t)k;
        if (!(rc = src->read(src->ctx, rows, b, buf, NULL)))
            rc = visit(u, buf, r0, b);
    }
    for (int i = 0; buf && i < ni; i++)
        free(buf[i]);
    free(buf), free(rows);
    return rc;
}

/* The moments' pass: per input i with want[i], sum[i] (c_i values) of x
 * (pass 0), or of (x - mean)^2 (pass 1, mean = the first pass's). */
typedef struct {
    const mimo_graph *g;
    const int *want;
    double **sum;
    int pass;
} moments_pass;

static int add_moments(void *u, mimo_real *const *buf, size_t r0, int b)
{
    const moments_pass *p = u;
    (void)r0;
    for (int i = 0; i < p->g->n_inputs; i++) {
        if (!p->want[i])
            continue;
        const mimo_shape *sh = mimo_graph_input_shape(p->g, i);
        size_t w = (size_t)mimo_graph_input_width(p->g, i);
        size_t c = (size_t)sh->dim[sh->rank - 1];
        for (size_t e = 0; e < (size_t)b * w; e++) {
            double x = (double)buf[i][e], *s = &p->sum[i][e % c];
            *s += p->pass ? (x - s[c]) * (x - s[c]) : x; /* s[c]: the mean */
        }
    }
    return 0;
}

/* The statistics of the inputs with want[i], over src's rows: into the
 * mean and variance tensors of every adapting node reading them. */
static int adapt_computed(const char *path, mimo_graph *g, const mimo_source *src,
                          const int *want, mimo_real *params)
{
    int ni = g->n_inputs, rc = 0;
    double **sum = calloc((size_t)ni, sizeof *sum);
    if (!sum)
        rc = mimo_error(MIMO_ENOMEM, "out of memory adapting to %s", path);
    for (int i = 0; i < ni && !rc; i++) {
        const mimo_shape *sh = mimo_graph_input_shape(g, i);
        /* per feature: the sum, then (after c) mean, then variance */
        sum[i] = want[i] ? calloc(3 * (size_t)sh->dim[sh->rank - 1], sizeof **sum) : NULL;
        if (want[i] && !sum[i])
            rc = mimo_error(MIMO_ENOMEM, "out of memory adapting to %s", path);
    }
    for (int pass = 0; pass < 2 && !rc; pass++) {
        moments_pass p = {g, want, sum, pass};
        if (!(rc = each_chunk(path, g, src, add_moments, &p)))
            for (int i = 0; i < ni; i++) {
                const mimo_shape *sh = mimo_graph_input_shape(g, i);
                size_t c = (size_t)sh->dim[sh->rank - 1];
                double per = (double)src->rows * (double)(mimo_graph_input_width(g, i) / (int)c);
                for (size_t j = 0; want[i] && j < c; j++) { /* sum -> mean, variance */
                    sum[i][(pass ? 2 * c : c) + j] = sum[i][j] / per;
                    sum[i][j] = 0;
                }
            }
    }
    for (int k = 0; k < g->n_nodes && !rc; k++) {
        const mimo_node *n = &g->nodes[k];
        int i = n->kind && n->kind->from_data &&
                n->kind->from_data(n) == MIMO_ADAPT_MOMENTS ? input_of(g, n) : -1;
        if (i < 0 || !want[i])
            continue;
        size_t c = n->tensors[tensor_of(n, "mean")].size;
        for (size_t j = 0; j < c && !rc; j++) {
            double mean = sum[i][c + j], var = sum[i][2 * c + j];
            if (!isfinite(mean) || !isfinite(var))
                rc = mimo_error(MIMO_EINVAL, "%s: input '%s' feature %zu has a "
                                "non-finite value in its training rows: no "
                                "statistics for layer '%s' (adapt: from_data)", path,
                                mimo_graph_input_name(g, i), j, n->name);
            params[n->tensors[tensor_of(n, "mean")].off + j] = (mimo_real)mean;
            params[n->tensors[tensor_of(n, "variance")].off + j] = (mimo_real)var;
        }
    }
    for (int i = 0; sum && i < ni; i++)
        free(sum[i]);
    free(sum);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* numpy.quantile(v, q), method 'linear', of the n sorted values v. */
static double quantile_linear(const double *v, size_t n, double q)
{
    double h = (double)(n - 1) * q, lo = floor(h), t = h - lo;
    size_t i = (size_t)lo, j = i + 1 < n ? i + 1 : n - 1;
    double a = v[i], b = v[j], d = b - a;
    return t >= 0.5 ? b - d * (1 - t) : a + d * t;
}

/* The quantiles' read: input i's values of each chunk into v, checked. */
typedef struct {
    const char *path;
    const mimo_graph *g;
    const mimo_node *n;
    int i;
    size_t w;
    double *v;
} values_read;

static int keep_values(void *u, mimo_real *const *buf, size_t r0, int b)
{
    const values_read *p = u;
    for (size_t e = 0; e < (size_t)b * p->w; e++) {
        double x = p->v[r0 * p->w + e] = (double)buf[p->i][e];
        if (!isfinite(x))
            return mimo_error(MIMO_EINVAL, "%s: input '%s' has a non-finite value in "
                              "training row %zu: no quantiles for layer '%s' (adapt: "
                              "from_data)", p->path, mimo_graph_input_name(p->g, p->i),
                              r0 + e / p->w, p->n->name);
    }
    return 0;
}

/* Node n's bin_boundaries (k values): the quantiles i/(k+1) of all the
 * values of its input i over src's rows, read in chunks, sorted. */
static int adapt_quantiles(const char *path, const mimo_graph *g,
                           const mimo_source *src, const mimo_node *n, int i,
                           mimo_real *params)
{
    int rc = 0, t = tensor_of(n, "bin_boundaries");
    size_t w = (size_t)mimo_graph_input_width(g, i), k = n->tensors[t].size;
    size_t count = (size_t)src->rows * w;
    double *v = count && count <= SIZE_MAX / sizeof(double) ? malloc(sizeof *v * count) : NULL;
    if (!v && count)
        rc = mimo_error(MIMO_ENOMEM, "out of memory adapting layer '%s' to %s "
                        "(%zu values of input '%s')", n->name, path, count,
                        mimo_graph_input_name(g, i));
    values_read p = {path, g, n, i, w, v};
    if (!rc)
        rc = each_chunk(path, g, src, keep_values, &p);
    if (!rc && count == 0)
        rc = mimo_error(MIMO_EINVAL, "%s: no training rows to adapt to", path);
    if (!rc) {
        qsort(v, count, sizeof *v, cmp_double);
        for (size_t q = 0; q < k; q++) /* q = i/K as numpy's arange(1, K) / K */
            params[n->tensors[t].off + q] =
                (mimo_real)quantile_linear(v, count, (double)(q + 1) / (double)(k + 1));
    }
    free(v);
    return rc;
}

int mimo_data_adapt(const char *path, mimo_model *m, const mimo_source *src,
                    int *count, int *computed)
{
    mimo_graph *g = mimo_model_graph(m);
    mimo_real *params = mimo_model_params(m);
    int rc = 0, *want = calloc((size_t)g->n_inputs + 1, sizeof *want);
    char obj[512];
    hid_t f = -1;
    *count = *computed = 0;
    if (!want)
        return mimo_error(MIMO_ENOMEM, "out of memory");
    for (int k = 0; k < g->n_nodes && !rc; k++) {
        const mimo_node *n = &g->nodes[k];
        if (!n->kind || !n->kind->from_data || !n->kind->from_data(n))
            continue;
        if (n->kind->from_data(n) == MIMO_ADAPT_QUANTILES) {
            ++*count, ++*computed; /* below, once the moments are set */
            continue;
        }
        if (f < 0 && (f = mimo_h5_open_read(path, H5P_DEFAULT)) < 0) {
            free(want);
            return (int)f;
        }
        const char *input = MIMO_PARENT(g, n, 0)->name;
        snprintf(obj, sizeof obj, "preprocessing/%s", input);
        if (!mimo_h5_exists(f, obj) && input_of(g, n) >= 0) {
            want[input_of(g, n)] = 1; /* none stored: computed below */
            ++*computed;
        } else {
            rc = adapt_one(f, path, n, input, "mean", params);
            if (!rc)
                rc = adapt_one(f, path, n, input, "variance", params);
        }
        ++*count;
    }
    if (f >= 0)
        H5Fclose(f);
    int moments = 0;
    for (int i = 0; i < g->n_inputs; i++)
        moments |= want[i];
    if (!rc && moments)
        rc = adapt_computed(path, g, src, want, params);
    for (int k = 0; k < g->n_nodes && !rc; k++) {
        const mimo_node *n = &g->nodes[k];
        if (n->kind && n->kind->from_data &&
            n->kind->from_data(n) == MIMO_ADAPT_QUANTILES)
            rc = adapt_quantiles(path, g, src, n, input_of(g, n), params);
    }
    free(want);
    return rc;
}
