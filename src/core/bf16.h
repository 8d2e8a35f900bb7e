/* bf16.h — train.precision: bf16 (Keras' mixed_bfloat16): the products of
 * dense and conv layers take bfloat16 inputs and accumulate and write in
 * float32; everything else (parameters, optimizer moments, gradient sums,
 * losses, metrics, checkpoints) stays float32.
 *
 * Only where the CPU multiplies bf16 natively (AVX512_BF16 or AMX-BF16,
 * as oneDNN's effective ISA says at run time): elsewhere a bf16 product
 * is an emulation slower than sgemm (TensorFlow issue 45441), so the
 * graph runs float32 and `mimo train` says so (or refuses, with
 * --strict-precision). MIMO_NO_BF16=1 in the environment, or oneDNN's
 * ONEDNN_MAX_CPU_ISA below avx512_core_bf16, forces that fallback (the
 * tests' way to run it on any machine).
 *
 * The products are oneDNN's matmul primitive, one per shape (operands'
 * transposes, sizes, leading dimensions, accumulate or not), made at its
 * first call and kept: a layer sees a few batch sizes (the training batch,
 * the last short one, evaluation's). Operands are converted into bf16
 * buffers the caller took from the graph's arena (round to nearest even),
 * so a step allocates nothing of mimo's. */
#ifndef MIMO_CORE_BF16_H
#define MIMO_CORE_BF16_H

#include <stddef.h>
#include <stdint.h>

#include "mimo/real.h"

typedef uint16_t mimo_bf16;

/* train.precision's names, by mimo_precision (mimo/spec.h) */
const char *mimo_precision_name(int p);
int mimo_precision_parse(const char *s); /* -1: not a name */

/* 1 if this process can multiply in bf16 natively, *what then its ISA
 * ("avx512_bf16", "amx_bf16"); 0 otherwise, *what then why not (a
 * phrase: "this CPU has neither AVX512_BF16 nor AMX-BF16"). Decided once
 * per process (the environment is read at the first call). */
int mimo_bf16_native(const char **what);

/* floats of the graph's arena that hold n bf16 values */
static inline size_t mimo_bf16_reals(size_t n)
{
    return (n * sizeof(mimo_bf16) + sizeof(mimo_real) - 1) / sizeof(mimo_real);
}

/* dst[i] = src[i] rounded to bf16 (nearest, ties to even; NaN stays NaN;
 * subnormals become zeros, as the CPUs' VCVTNEPS2BF16, which it uses where
 * there is one) */
void mimo_bf16_from(mimo_bf16 *dst, const mimo_real *src, size_t n);
/* the same for rows of a strided matrix: rows x cols from src (ld) */
void mimo_bf16_from_rows(mimo_bf16 *dst, const mimo_real *src, size_t rows, size_t cols,
                         size_t ld);
/* back to float (exact) */
static inline float mimo_bf16_to(mimo_bf16 v)
{
    union {
        uint32_t u;
        float f;
    } c = {(uint32_t)v << 16};
    return c.f;
}

/* One layer's products: its primitives by shape. */
typedef struct mimo_bf16_mm mimo_bf16_mm;

/* NULL: no native bf16, a build without oneDNN or the double build (the
 * caller keeps sgemm), or out of memory. */
mimo_bf16_mm *mimo_bf16_mm_new(void);
void mimo_bf16_mm_free(mimo_bf16_mm *c);
/* C (M, N, leading dimension ldc) = op(A) op(B), or += with acc: A is
 * (M, K) row-major with leading dimension lda, or its transpose stored
 * (K, M) when ta; B (K, N) with ldb, or stored (N, K) when tb. The
 * products accumulate in float32. 0, or -1 if oneDNN offers no kernel
 * for the shape but its reference one, or fails (nothing written: the
 * caller computes it in float32). */
int mimo_bf16_gemm(mimo_bf16_mm *c, int ta, int tb, int M, int N, int K,
                   const mimo_bf16 *A, int lda, const mimo_bf16 *B, int ldb, int acc,
                   mimo_real *C, int ldc);
/* oneDNN's name of the kernel of the last shape made ("brg:avx512_core_bf16") */
const char *mimo_bf16_mm_impl(const mimo_bf16_mm *c);

#endif
