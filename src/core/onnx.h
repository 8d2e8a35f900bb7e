/* onnx.h — what a layer kind needs to write itself as ONNX operators for
 * inference (`mimo export onnx`), without knowing ONNX's file format: a
 * builder (io/onnx.c implements it over protobuf-c) that takes operators
 * by their ONNX names and constants, and hands back the names of the
 * values they make. Each kind's `onnx` function (core/kind.h) reads its
 * parents' values by name and returns its own; its math in inference
 * mode must be the kind's forward in inference mode (dropout the
 * identity, batch_norm with its moving statistics).
 *
 * Values carry the batch axis first, then the node's per-sample shape:
 * a (h, w, c) sample is an (N, h, w, c) tensor, channels last as in the
 * checkpoint; kinds that call ONNX's channels-first operators transpose
 * around them. Core: no protobuf here. */
#ifndef MIMO_CORE_ONNX_H
#define MIMO_CORE_ONNX_H

#include <stddef.h>

#include "core/graph_impl.h"

/* An attribute of an operator: one of i, f, ints (n of them) or s. */
typedef enum {
    MIMO_ONNX_INT,
    MIMO_ONNX_FLOAT,
    MIMO_ONNX_INTS,
    MIMO_ONNX_STRING
} mimo_onnx_attr_type;

typedef struct {
    const char *name;
    mimo_onnx_attr_type type;
    long long i;
    double f;
    const long long *ints;
    int n;
    const char *s;
} mimo_onnx_attr;

typedef struct mimo_onnx mimo_onnx;

/* The builder. Names it returns stay valid until the export ends; NULL
 * means an error it has recorded (out of memory): the kind returns -1. */
struct mimo_onnx {
    /* Operator `op` (ONNX's name: "MatMul") of the default domain on
     * inputs in[0, n_in) ("" for an omitted optional input), with
     * attributes; returns the name of its one output. */
    const char *(*op)(mimo_onnx *x, const char *op, const char *const *in,
                      int n_in, const mimo_onnx_attr *attrs, int n_attrs);
    /* A float32 constant of shape dims[0, rank) (rank 0: a scalar) from
     * v (converted from mimo_real); hint names it after the layer's
     * tensor ("kernel"). */
    const char *(*constant)(mimo_onnx *x, const char *hint, const mimo_real *v,
                            const long long *dims, int rank);
    /* An int64 constant of n values, n <= 64 (shapes for Reshape, axes,
     * hashing's powers); n 0: the scalar v[0]. */
    const char *(*constant_i64)(mimo_onnx *x, const char *hint,
                                const long long *v, int n);
    const mimo_real *params; /* the model's parameters (flat buffer) */
    int opset;               /* of the file: a kind whose operator came
                              * later says so in its error */
    /* Masks (ARCHITECTURE.md, Masks), as values (N, T) of bool, true
     * where the step counts. Before each kind's onnx the driver sets mask
     * to the mask its input carries (NULL: none) and clears the two
     * others. A kind that reads it (MIMO_MASK_USE) sets mask_used; one
     * whose output carries a mask of its own (embedding's mask_zero,
     * MIMO_MASK_OWN) sets mask_out to it. A kind that passes the mask on
     * (MIMO_MASK_PASS) does nothing: the driver hands the same value on.
     * A node that reads a mask without mask_used, or makes one without
     * mask_out, is an export error, never a model that ignores it. */
    const char *mask;
    const char *mask_out;
    int mask_used;
    /* The masks of each input in[i] (NULL: none), for a kind of several
     * inputs that reads more than the first's (multi_head_attention: the
     * value's and the key's); it sets mask_used too. */
    const char *const *masks_in;
};

/* Helpers over the builder (core/onnx.c). */

/* op with one or two inputs and no attributes. */
const char *mimo_onnx_op1(mimo_onnx *x, const char *op, const char *a);
const char *mimo_onnx_op2(mimo_onnx *x, const char *op, const char *a,
                          const char *b);
/* The activation a (with alpha: leaky_relu's slope, elu's) applied to v
 * as the kinds' act.c computes it; linear gives v itself. */
const char *mimo_onnx_act(mimo_onnx *x, mimo_act a, double alpha, const char *v);
/* Parameter tensor k of node n as a constant of its own shape. */
const char *mimo_onnx_tensor(mimo_onnx *x, const mimo_node *n, int k);
/* (v - mean) inv, inv = 1 / sqrt(variance + eps) rounded to mimo_real as
 * the forwards of batch_norm and normalization round it: node n's state
 * tensors mean and var (indices), broadcast over the last axis. */
const char *mimo_onnx_standardize(mimo_onnx *x, const mimo_node *n, const char *v,
                                  int mean, int var, double eps);
/* v reshaped to (N, shape...) — N kept from v's first axis. */
const char *mimo_onnx_reshape(mimo_onnx *x, const char *v, const mimo_shape *shape);
/* v with its axes permuted (Transpose's perm, rank values). */
const char *mimo_onnx_transpose(mimo_onnx *x, const char *v, const long long *perm,
                                int rank);

#endif
