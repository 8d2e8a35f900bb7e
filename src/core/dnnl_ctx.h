/* dnnl_ctx.h — what the products by oneDNN share: bf16.c's matmuls and
 * layers/conv_dnnl.c's convolutions each hold a CPU engine and a stream
 * of their own (one per layer: its primitives run on it), made and
 * destroyed here, and run a primitive here: executed and waited for,
 * inside the test hook (conv_dnnl.h's mimo_conv_dnnl_hook) that tells
 * tests/test_alloc.c oneDNN's own allocations from ours. Only in a build
 * with oneDNN (MIMO_CONV_DNNL). */
#ifndef MIMO_CORE_DNNL_CTX_H
#define MIMO_CORE_DNNL_CTX_H

#include "core/layers/conv_dnnl.h" /* MIMO_CONV_DNNL */

#ifdef MIMO_CONV_DNNL
#include <dnnl.h>

/* *eng and *st made: 0; -1 (both NULL) when oneDNN could not. */
int mimo_dnnl_open(dnnl_engine_t *eng, dnnl_stream_t *st);
/* Destroys them (NULL ones are none). */
void mimo_dnnl_close(dnnl_engine_t eng, dnnl_stream_t st);
/* prim executed on st with args[0, n), then waited for: 0, or -1. */
int mimo_dnnl_run(dnnl_stream_t st, dnnl_primitive_t prim, int n,
                  const dnnl_exec_arg_t *args);
#endif

#endif
