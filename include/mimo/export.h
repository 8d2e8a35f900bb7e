/* export.h — a trained model out of mimo: its inference graph as an ONNX
 * file that other runtimes run (onnxruntime, TensorRT, a browser), and a
 * PyTorch module for users who go on in PyTorch. */
#ifndef MIMO_EXPORT_H
#define MIMO_EXPORT_H

#include "mimo/api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The opset written when none is asked for. */
#define MIMO_ONNX_OPSET_DEFAULT 17

/* Writes the model of a checkpoint file (or a run directory's newest
 * checkpoint) as ONNX to out, atomically: the inference graph (dropout
 * removed, batch_norm with its moving statistics), inputs and outputs
 * named as the model's inputs and heads, the batch axis dynamic ("N"),
 * inputs typed as declared (float32; int32 ids), each head's output
 * (N, units) as `mimo predict` writes it. opset 0: the default; mimo
 * writes 13 to 17. A layer kind without an export is an error naming the
 * layer. One process; no MPI needed. */
MIMO_API int mimo_export_onnx(const char *checkpoint, const char *out, int opset);

/* Writes the model of a checkpoint (or a run directory's newest) as a
 * self-contained PyTorch module to out (a .py file, atomically): plain
 * torch.nn, no mimo import; the network's graph as data, each kind as
 * PyTorch code, and load_mimo(path), which reads a checkpoint's /params
 * with h5py. The module's outputs are what `mimo predict` writes. */
MIMO_API int mimo_export_torch(const char *checkpoint, const char *out);

#ifdef __cplusplus
}
#endif
#endif
