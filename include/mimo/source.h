/* source.h — where a model reads its rows from: a mimo_source is an HDF5
 * file (dataset.h) or in-memory arrays (mimo_arrays_source in model.h)
 * alike. Plain data; nothing here knows MPI or HDF5. */
#ifndef MIMO_SOURCE_H
#define MIMO_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "mimo/real.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Rows for the model: fills in[i] (b, input width i) and, when tgt is not
 * NULL, tgt[h] (b, target width h) with rows[0..b) in that order, and for
 * each head with a sample_weight dataset tgt[n_heads + h] (b values; the
 * entry is NULL for the other heads). */
typedef struct {
    size_t rows;
    void *ctx;
    int (*read)(void *ctx, const uint64_t *rows, int b, mimo_real *const *in,
                mimo_real *const *tgt);
    /* Optional: start reading these rows in the background (a hint). */
    void (*prefetch)(void *ctx, const uint64_t *rows, int b);
} mimo_source;

/* A named (rows, cols) row-major array; the caller owns data. cols is
 * the input's width (mimo_graph_input_width): for an input of dtype
 * int64, each value's 8 bytes (int64_t) in place of two floats. */
typedef struct {
    const char *name;
    const mimo_real *data;
    size_t rows;
    int cols;
} mimo_array;

/* Arrays matched by name to the model's inputs and head targets. */
typedef struct {
    const mimo_array *arrays;
    int n_arrays;
} mimo_dataset;

#ifdef __cplusplus
}
#endif
#endif
