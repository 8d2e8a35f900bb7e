/* conv_dnnl.h — conv2d's and conv1d's three products by oneDNN's
 * convolution primitives (JIT kernels for the CPU's widest vectors),
 * instead of im2col + sgemm. The layouts stay mimo's: x, z, dz, dx
 * channels last (b, h, w, c) and the kernel as Keras stores it
 * (kh, kw, c_in, filters); what oneDNN wants inside (blocked kernels) is
 * reordered to and from per call, into buffers owned here.
 *   forward:          z   = x (*) W            (no bias: conv.c adds it
 *                                               with the activation)
 *   backward data:    dx += dz (*)^T W
 *   backward weights: dW += x^T (*) dz, db += the sum of dz over positions
 * Primitives and their buffers are made at the first call with a batch of
 * b rows and kept (a few batch sizes per layer: the training batch, the
 * last short one, evaluation's), so a step allocates nothing of mimo's.
 * Deterministic for a given thread count (oneDNN's OpenMP threads are
 * mimo's: OMP_NUM_THREADS); a sample's output does not depend on how many
 * samples the call holds beyond rounding.
 * Built only with MIMO_DNNL (float32 mimo_real, OpenMP): otherwise there
 * is no plan and conv.c keeps im2col. */
#ifndef MIMO_CORE_LAYERS_CONV_DNNL_H
#define MIMO_CORE_LAYERS_CONV_DNNL_H

#include <stddef.h>

#include "core/layers/window.h"
#include "mimo/real.h"

typedef struct mimo_conv_dnnl mimo_conv_dnnl;

#if defined(MIMO_DNNL) && !defined(MIMO_REAL_DOUBLE)
#define MIMO_CONV_DNNL 1
/* A plan for window w with `filters` outputs (NULL: oneDNN cannot run it,
 * or out of memory; the caller keeps im2col). bias: backward weights
 * also sums db. bf16: the products read bf16 copies of x, W and dz and
 * write float32 (core/bf16.h; only where the CPU has native bf16). */
mimo_conv_dnnl *mimo_conv_dnnl_new(const mimo_window *w, int filters, int bias,
                                   int bf16);
void mimo_conv_dnnl_free(mimo_conv_dnnl *c);
/* b samples; 0, or -1 when no primitive could be made for b (nothing
 * written: the caller computes it its own way). */
int mimo_conv_dnnl_forward(mimo_conv_dnnl *c, int b, const mimo_real *x,
                           const mimo_real *W, mimo_real *z);
int mimo_conv_dnnl_backward_data(mimo_conv_dnnl *c, int b, const mimo_real *dz,
                                 const mimo_real *W, mimo_real *dx);
/* dW and db (may be NULL: no bias, or a frozen one) are added into. */
int mimo_conv_dnnl_backward_weights(mimo_conv_dnnl *c, int b, const mimo_real *x,
                                    const mimo_real *dz, mimo_real *dW, mimo_real *db);
/* oneDNN's name of the forward kernel for b ("brgconv:avx512_core"), or "". */
const char *mimo_conv_dnnl_impl(mimo_conv_dnnl *c, int b);
/* Testing only, in a build with MIMO_TEST_HOOKS: called with 1 before
 * and 0 after each call into oneDNN's primitives at run time.
 * oneDNN 2.6's dnnl_primitive_execute allocates its argument map and
 * execution context (~8 small blocks a call) through the C API, however
 * primitives and scratchpads are kept: tests/test_alloc.c counts those
 * apart, as OpenBLAS's, by this hook. */
#ifdef MIMO_TEST_HOOKS
extern void (*mimo_conv_dnnl_hook)(int entering);
#endif
#else
static inline mimo_conv_dnnl *mimo_conv_dnnl_new(const mimo_window *w,
                                                 int filters, int bias, int bf16)
{
    (void)w, (void)filters, (void)bias, (void)bf16;
    return NULL;
}
static inline void mimo_conv_dnnl_free(mimo_conv_dnnl *c) { (void)c; }
static inline int mimo_conv_dnnl_forward(mimo_conv_dnnl *c, int b, const mimo_real *x,
                                         const mimo_real *W, mimo_real *z)
{
    (void)c, (void)b, (void)x, (void)W, (void)z;
    return -1;
}
static inline int mimo_conv_dnnl_backward_data(mimo_conv_dnnl *c, int b,
                                               const mimo_real *dz,
                                               const mimo_real *W, mimo_real *dx)
{
    (void)c, (void)b, (void)dz, (void)W, (void)dx;
    return -1;
}
static inline int mimo_conv_dnnl_backward_weights(mimo_conv_dnnl *c, int b,
                                                  const mimo_real *x,
                                                  const mimo_real *dz,
                                                  mimo_real *dW, mimo_real *db)
{
    (void)c, (void)b, (void)x, (void)dz, (void)dW, (void)db;
    return -1;
}
#endif

#endif
