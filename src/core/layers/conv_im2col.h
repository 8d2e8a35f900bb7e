/* conv_im2col.h — conv2d's and conv1d's products as matrix products over
 * the windows' patches (im2col + sgemm): see conv_im2col.c. Shapes: x
 * (b, in_h, in_w, c), W (kh, kw, c, filters) as a (K, filters) matrix,
 * K = kh kw c; z, dz (b, out_h, out_w, filters); col (b out_h out_w, K). */
#ifndef MIMO_CORE_LAYERS_CONV_IM2COL_H
#define MIMO_CORE_LAYERS_CONV_IM2COL_H

#include <stddef.h>

#include "core/layers/window.h"

/* 1 when the patches are x itself (a 1x1 kernel, stride 1): no col. */
int mimo_conv_im2col_direct(const mimo_window *w);
/* Values of col for a batch of b (0 when direct). */
size_t mimo_conv_im2col_scratch(const mimo_window *w, int b);
/* col = x's patches (nothing when direct). */
void mimo_conv_im2col_patches(const mimo_window *w, int b, const mimo_real *x,
                              mimo_real *col);
/* z = col W, col filled with x's patches (kept for the backward). */
void mimo_conv_im2col_forward(const mimo_window *w, int filters, int b,
                              const mimo_real *x, const mimo_real *W,
                              mimo_real *col, mimo_real *z);
/* dW += col^T dz, col as the forward left it (x's patches). */
void mimo_conv_im2col_backward_weights(const mimo_window *w, int filters, int b,
                                       const mimo_real *x, const mimo_real *col,
                                       const mimo_real *dz, mimo_real *dW);
/* dx += the patches' gradient dz W^T put back; col is overwritten (after
 * the weights' gradient, which reads it). */
void mimo_conv_im2col_backward_data(const mimo_window *w, int filters, int b,
                                    const mimo_real *dz, const mimo_real *W,
                                    mimo_real *col, mimo_real *dx);

#endif
