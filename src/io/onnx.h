/* onnx.h — a compiled graph and its parameters as an ONNX model file for
 * inference (io/onnx.c, over protobuf-c and ONNX's own onnx.proto). */
#ifndef MIMO_IO_ONNX_H
#define MIMO_IO_ONNX_H

#include "core/graph.h"

/* The opsets mimo writes: 13 (Softmax on one axis) to 17
 * (LayerNormalization, which layer_norm needs). */
#define MIMO_ONNX_OPSET_MIN 13
#define MIMO_ONNX_OPSET_MAX 17

/* Writes g with params as an ONNX model to path, atomically (the file
 * appears complete or not at all): graph inputs and outputs named as the
 * model's inputs and heads, the batch axis dynamic ("N"), inputs typed
 * as declared (float32, int32 ids), each head's output (N, units) as
 * predict writes it. Every layer's kind must have an ONNX export; the
 * error otherwise names the layer and its kind. */
int mimo_onnx_write(const mimo_graph *g, const mimo_real *params, int opset,
                    const char *path);

#endif
