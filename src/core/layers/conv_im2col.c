/* conv_im2col.c — conv2d's and conv1d's products lowered to matrix
 * products over the rank's whole batch slice (im2col), with OpenBLAS (or
 * the double build's BLAS): the path without oneDNN (conv_dnnl.c), and
 * the only one of the double build the gradient checks run.
 *   col = patches(x)   (b oh ow, K), K = kh kw c_in: each output position's
 *                      window of x in (i, j, c) order, zeros where it
 *                      reads padding
 *   z = col W          W the kernel (kh, kw, c_in, filters) read as a
 *                      (K, filters) matrix; z (b, oh, ow, filters)
 * Backward: dW += col^T dz (the forward's patches); dcol = dz W^T, added
 * back window by window into dx (col2im). A 1x1 kernel with stride 1
 * needs no patches: col is x itself. */
#include "core/layers/conv_im2col.h"

#include <cblas.h>
#include <string.h>

#include "core/par.h"

/* The taps [j0, j1) of the window at input column x0, taps dil apart,
 * that lie inside the input (tap j reads column x0 + j dil). */
static void inside(int x0, int k, int dil, int in, int *j0, int *j1)
{
    *j0 = x0 < 0 ? (-x0 + dil - 1) / dil : 0;
    *j1 = in - x0 <= 0 ? 0 : (in - x0 + dil - 1) / dil;
    if (*j1 > k)
        *j1 = k;
    if (*j1 < *j0)
        *j1 = *j0;
}

/* One output row's patches column by column, for short runs (a window row
 * of fewer than 16 values, e.g. 3x3 over one channel) and dilated windows
 * (whose rows are no one run of x): for each (i, j, c) a strided pass over
 * ox, without the per-run overhead. */
static void im2col_line_narrow(const mimo_window *w, const mimo_real *xs, int y0,
                               mimo_real *dst)
{
    const int C = w->c, K = w->kh * w->kw * C;
    for (int i = 0; i < w->kh; i++) {
        int iy = y0 + i, in = iy >= 0 && iy < w->in_h;
        const mimo_real *row = xs + (size_t)(in ? iy : 0) * w->in_w * C;
        for (int j = 0; j < w->kw; j++)
            for (int c = 0; c < C; c++) {
                mimo_real *d = dst + (i * w->kw + j) * C + c;
                for (int ox = 0; ox < w->out_w; ox++) {
                    int ix = ox * w->sw - w->pad_left + j * w->dil;
                    d[(size_t)ox * K] = in && ix >= 0 && ix < w->in_w
                                            ? row[(size_t)ix * C + c] : 0;
                }
            }
    }
}

/* col (b oh ow, K) = the windows of x (b, in_h, in_w, c): row (s, oy, ox)
 * holds x[s, oy sh - pt + i, ox sw - pl + j, :] at (i kw + j) c, zeros for
 * padding. Each window row is one contiguous run of x. */
static void im2col(const mimo_window *w, const mimo_real *x, mimo_real *col, int b)
{
    const int C = w->c, run = w->kw * C, K = w->kh * run;
    const size_t in_s = (size_t)w->in_h * w->in_w * C;
    const int lines = b * w->out_h;
    MIMO_PAR_FOR((long)lines * w->out_w * K >= MIMO_PAR_MIN, int r = 0, r < lines, r++, {
        int s = r / w->out_h, oy = r % w->out_h, y0 = oy * w->sh - w->pad_top;
        const mimo_real *xs = x + (size_t)s * in_s;
        mimo_real *dst = col + (size_t)r * w->out_w * K;
        if (run < 16 || w->dil > 1) {
            im2col_line_narrow(w, xs, y0, dst);
            continue;
        }
        for (int ox = 0; ox < w->out_w; ox++) {
            int x0 = ox * w->sw - w->pad_left, j0, j1;
            inside(x0, w->kw, 1, w->in_w, &j0, &j1);
            for (int i = 0; i < w->kh; i++, dst += run) {
                int iy = y0 + i;
                if (iy < 0 || iy >= w->in_h || j1 == j0) {
                    memset(dst, 0, sizeof *dst * (size_t)run);
                    continue;
                }
                const mimo_real *src = xs + ((size_t)iy * w->in_w + x0 + j0) * C;
                int lo = j0 * C, hi = j1 * C;
                for (int t = 0; t < lo; t++)
                    dst[t] = 0;
                for (int t = lo; t < hi; t++)
                    dst[t] = src[t - lo];
                for (int t = hi; t < run; t++)
                    dst[t] = 0;
            }
        }
    });
}

/* dx (b, in_h, in_w, c) += each row of dcol added back onto the window it
 * came from (padding dropped). Samples in parallel: their dx are apart. */
static void col2im(const mimo_window *w, const mimo_real *dcol, mimo_real *dx, int b)
{
    const int C = w->c, run = w->kw * C, K = w->kh * run;
    const size_t in_s = (size_t)w->in_h * w->in_w * C;
    const size_t out_s = (size_t)w->out_h * w->out_w * K;
    MIMO_PAR_FOR((long)b * (long)out_s >= MIMO_PAR_MIN, int s = 0, s < b, s++, {
        mimo_real *xs = dx + (size_t)s * in_s;
        const mimo_real *src = dcol + (size_t)s * out_s;
        for (int oy = 0; oy < w->out_h; oy++) {
            int y0 = oy * w->sh - w->pad_top;
            for (int ox = 0; ox < w->out_w; ox++, src += K) {
                int x0 = ox * w->sw - w->pad_left, j0, j1;
                inside(x0, w->kw, w->dil, w->in_w, &j0, &j1);
                for (int i = 0; i < w->kh; i++) {
                    int iy = y0 + i;
                    if (iy < 0 || iy >= w->in_h || j1 == j0)
                        continue;
                    /* taps dil apart: runs of C (dil 1: one run) */
                    int per = w->dil == 1 ? j1 - j0 : 1;
                    for (int j = j0; j < j1; j += per) {
                        mimo_real *dst = xs + ((size_t)iy * w->in_w + x0 +
                                               (size_t)j * w->dil) * C;
                        const mimo_real *row = src + (size_t)i * run + (size_t)j * C;
                        int len = per * C;
                        for (int t = 0; t < len; t++)
                            dst[t] += row[t];
                    }
                }
            }
        }
    });
}

size_t mimo_conv_im2col_scratch(const mimo_window *w, int b)
{
    if (mimo_conv_im2col_direct(w))
        return 0;
    return (size_t)b * (size_t)w->out_h * (size_t)w->out_w *
           (size_t)(w->kh * w->kw * w->c);
}

int mimo_conv_im2col_direct(const mimo_window *w)
{
    return w->kh == 1 && w->kw == 1 && w->sh == 1 && w->sw == 1;
}

void mimo_conv_im2col_patches(const mimo_window *w, int b, const mimo_real *x,
                              mimo_real *col)
{
    if (!mimo_conv_im2col_direct(w))
        im2col(w, x, col, b);
}

void mimo_conv_im2col_forward(const mimo_window *w, int filters, int b,
                              const mimo_real *x, const mimo_real *W,
                              mimo_real *col, mimo_real *z)
{
    int m = b * w->out_h * w->out_w, K = w->kh * w->kw * w->c;
    int direct = mimo_conv_im2col_direct(w);
    if (!direct)
        im2col(w, x, col, b);
    /* col is (m, K), W is (K, filters), z is (m, filters) */
    MIMO_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, filters, K, 1,
              direct ? x : col, K, W, filters, 0, z, filters);
}

void mimo_conv_im2col_backward_weights(const mimo_window *w, int filters, int b,
                                       const mimo_real *x, const mimo_real *col,
                                       const mimo_real *dz, mimo_real *dW)
{
    int m = b * w->out_h * w->out_w, K = w->kh * w->kw * w->c;
    MIMO_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, K, filters, m, 1,
              mimo_conv_im2col_direct(w) ? x : col, K, dz, filters, 1, dW, filters);
}

void mimo_conv_im2col_backward_data(const mimo_window *w, int filters, int b,
                                    const mimo_real *dz, const mimo_real *W,
                                    mimo_real *col, mimo_real *dx)
{
    int m = b * w->out_h * w->out_w, K = w->kh * w->kw * w->c;
    if (mimo_conv_im2col_direct(w)) { /* col is x: dx += dz W^T */
        MIMO_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, m, K, filters, 1, dz,
                  filters, W, filters, 1, dx, K);
        return;
    }
    MIMO_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, m, K, filters, 1, dz, filters,
              W, filters, 0, col, K);
    col2im(w, col, dx, b);
}
