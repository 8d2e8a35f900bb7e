/* merge.h — what the merge kinds share (concat.c, add.c, subtract.c,
 * multiply.c, average.c): the same-shape check, and the sums of add,
 * subtract and average with their backward. */
#ifndef MIMO_CORE_LAYERS_MERGE_H
#define MIMO_CORE_LAYERS_MERGE_H

#include "core/kind.h"

/* Every input of n has the shape of the first: n->shape = it; else a
 * message naming the two inputs and -1. */
int mimo_merge_same_shape(mimo_graph *g, mimo_node *n, char *err, size_t len);

/* y = (x_0 + sign (x_1 + ... + x_K-1)) scale;
 * dx_0 += scale dy, dx_k += sign scale dy. */
void mimo_merge_sum_forward(mimo_graph *g, mimo_node *n, int b, mimo_real sign,
                            mimo_real scale);
void mimo_merge_sum_backward(mimo_graph *g, mimo_node *n, int b, mimo_real sign,
                             mimo_real scale);

/* The same sum as ONNX operators, in the same order (core/onnx.h). */
const char *mimo_merge_sum_onnx(mimo_onnx *x, const mimo_node *n,
                                const char *const *in, int sign, mimo_real scale);

#endif
