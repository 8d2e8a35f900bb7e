/* conv_bench.c — the convolution layers' products alone, on this machine,
 * against its own sgemm: for each layer of the Fashion CNN
 * (configs/fashion-cnn.yaml) and of issue 29's new user's CNN, at batch
 * 128, the GFLOP/s of the forward, the backward data and the backward
 * weights as mimo's engines compute them (conv_im2col.c: im2col +
 * OpenBLAS sgemm; conv_dnnl.c: oneDNN, when built with MIMO_DNNL), and
 * each as a fraction of a square OpenBLAS sgemm; where the CPU has native
 * bf16 also oneDNN's in bf16 (train.precision: bf16: bf16 inputs, float32
 * outputs, x and dz converted as conv_dnnl.c does in a step), against the
 * same fp32 sgemm. A measurement to read,
 * not a test: run by tests/bench/conv.sh, never by ctest.
 *
 * What each pass times (as conv.c runs it in a step):
 *   forward   im2col: the patches and col W; oneDNN: the kernel reordered
 *             into its format and the convolution
 *   bwd data  im2col: dz W^T and col2im into dx; oneDNN: the kernel
 *             reordered, the convolution and dx += its result
 *   bwd wts   im2col: col^T dz over the forward's patches; oneDNN: the
 *             convolution with db, dW += it by a reorder, db += it
 * FLOPs: 2 oh ow kh kw c_in filters per sample for each pass (the
 * multiply-adds of the product; padding's zeros included, as mimo bench
 * counts them). Times: the best of 7 rounds of enough calls for ~0.15 s;
 * the sgemm rate: the best seen, measured before and after each layer.
 *
 *   conv_bench [BATCH]   (threads: OMP_NUM_THREADS) */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "core/bf16.h"
#include "core/layers/conv_dnnl.h"
#include "core/layers/conv_im2col.h"

typedef struct {
    const char *net, *name;
    int h, w, c, k, filters, same, dx; /* dx: the input takes a gradient */
} layer;

/* c1 reads the model's input: no gradient goes back to it */
static const layer layers[] = {
    {"fashion", "c1", 28, 28, 1, 3, 32, 1, 0},
    {"fashion", "c2", 14, 14, 32, 3, 64, 0, 1},
    {"new user", "c1", 28, 28, 1, 3, 16, 1, 0},
    {"new user", "c2", 14, 14, 16, 3, 32, 0, 1},
};

/* Keras' arithmetic (window.h): same pads total/2 before */
static mimo_window window_of(const layer *l)
{
    mimo_window w = {.in_h = l->h, .in_w = l->w, .c = l->c, .kh = l->k, .kw = l->k,
                     .sh = 1, .sw = 1, .dil = 1};
    w.out_h = l->same ? l->h : l->h - l->k + 1;
    w.out_w = l->same ? l->w : l->w - l->k + 1;
    w.pad_top = l->same ? (l->k - 1) / 2 : 0;
    w.pad_left = w.pad_top;
    return w;
}

static float *values(size_t n, int seed)
{
    float *v = malloc(sizeof *v * (n ? n : 1));
    for (size_t i = 0; v && i < n; i++)
        v[i] = (float)((i * 7919 + (size_t)seed * 104729) % 1000) / 1000 - 0.5f;
    return v;
}

/* the engines' passes behind one signature */
typedef struct {
    const mimo_window *w;
    int filters, b;
    float *x, *W, *z, *dz, *dx, *dW, *db, *col;
    mimo_conv_dnnl *dnnl;
} bench;

typedef int (*pass_fn)(bench *s);

static int im_fwd(bench *s)
{
    mimo_conv_im2col_forward(s->w, s->filters, s->b, s->x, s->W, s->col, s->z);
    return 0;
}
static int im_bwd_d(bench *s)
{
    mimo_conv_im2col_backward_data(s->w, s->filters, s->b, s->dz, s->W, s->col, s->dx);
    return 0;
}
static int im_bwd_w(bench *s)
{
    mimo_conv_im2col_backward_weights(s->w, s->filters, s->b, s->x, s->col, s->dz, s->dW);
    return 0;
}
#ifdef MIMO_CONV_DNNL
static int dn_fwd(bench *s)
{
    return mimo_conv_dnnl_forward(s->dnnl, s->b, s->x, s->W, s->z);
}
static int dn_bwd_d(bench *s)
{
    return mimo_conv_dnnl_backward_data(s->dnnl, s->b, s->dz, s->W, s->dx);
}
static int dn_bwd_w(bench *s)
{
    return mimo_conv_dnnl_backward_weights(s->dnnl, s->b, s->x, s->dz, s->dW, s->db);
}
#endif

/* seconds per call: the best of 7 rounds of n calls, n for ~0.15 s */
static double per_call(pass_fn f, bench *s)
{
    if (f(s)) /* warms up (makes oneDNN's primitives) */
        return -1;
    double t = mimo_clock();
    long n = 0;
    while (mimo_clock() - t < 0.05 || n < 2)
        f(s), n++;
    n = (long)(n * 0.15 / (mimo_clock() - t)) + 1;
    double best = 1e30;
    for (int r = 0; r < 7; r++) {
        t = mimo_clock();
        for (long i = 0; i < n; i++)
            f(s);
        double c = (mimo_clock() - t) / (double)n;
        best = c < best ? c : best;
    }
    return best;
}

static double sgemm_gflops(int n)
{
    float *a = values((size_t)n * n, 1), *b = values((size_t)n * n, 2),
          *c = values((size_t)n * n, 3);
    double best = 0;
    for (int r = 0; r < 6; r++) {
        double t = mimo_clock();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n,
                    0, c, n);
        double g = 2.0 * n * n * n / (mimo_clock() - t) / 1e9;
        best = r && g > best ? g : best; /* the first warms up */
    }
    free(a), free(b), free(c);
    return best;
}

/* one row of the table: GFLOP/s of each engine (-1: not run) */
typedef struct {
    const layer *l;
    char shape[64];
    const char *impl, *impl16;
    double im[3], dn[3], bf[3]; /* bf: oneDNN in bf16 */
} row;

int main(int argc, char **argv)
{
    int b = argc > 1 ? atoi(argv[1]) : 128;
    enum { N_LAYERS = sizeof layers / sizeof *layers };
    row rows[N_LAYERS];
    pass_fn im[3] = {im_fwd, im_bwd_d, im_bwd_w};
#ifdef MIMO_CONV_DNNL
    pass_fn dn[3] = {dn_fwd, dn_bwd_d, dn_bwd_w};
#endif
    /* sgemm before and after each layer: on a shared machine the best
     * seen is the denominator (fractions err low, never high) */
    double peak = sgemm_gflops(1024);
    for (int i = 0; i < N_LAYERS; i++) {
        const layer *l = &layers[i];
        row *r = &rows[i];
        mimo_window w = window_of(l);
        size_t xin = (size_t)b * l->h * l->w * l->c;
        size_t out = (size_t)b * w.out_h * w.out_w * l->filters;
        size_t K = (size_t)l->k * l->k * l->c;
        bench s = {&w, l->filters, b, values(xin, 4), values(K * l->filters, 5),
                   values(out, 6), values(out, 7), values(xin, 8),
                   values(K * l->filters, 9), values((size_t)l->filters, 10),
                   values(mimo_conv_im2col_scratch(&w, b), 11),
                   mimo_conv_dnnl_new(&w, l->filters, 1, 0)};
        double flops = 2.0 * b * w.out_h * w.out_w * (double)K * l->filters;
        r->l = l;
        snprintf(r->shape, sizeof r->shape, "%dx%dx%d %dx%dx%d %s", l->h, l->w, l->c,
                 l->k, l->k, l->filters, l->same ? "same" : "valid");
        r->impl = "(not built: MIMO_DNNL off)";
        im_fwd(&s); /* the patches bwd wts reads */
        for (int p = 0; p < 3; p++) {
            r->im[p] = flops / per_call(im[p], &s) / 1e9;
            r->dn[p] = -1;
#ifdef MIMO_CONV_DNNL
            double u = s.dnnl ? per_call(dn[p], &s) : -1;
            r->dn[p] = u > 0 ? flops / u / 1e9 : -1;
#endif
        }
#ifdef MIMO_CONV_DNNL
        static char impl[N_LAYERS][64];
        snprintf(impl[i], sizeof impl[i], "%s", s.dnnl ? mimo_conv_dnnl_impl(s.dnnl, b) : "-");
        r->impl = impl[i];
#endif
        mimo_conv_dnnl_free(s.dnnl);
        /* the same passes in bf16 (NULL without native bf16) */
        s.dnnl = mimo_bf16_native(NULL) ? mimo_conv_dnnl_new(&w, l->filters, 1, 1) : NULL;
        r->impl16 = "";
        for (int p = 0; p < 3; p++) {
            r->bf[p] = -1;
#ifdef MIMO_CONV_DNNL
            double u = s.dnnl ? per_call(dn[p], &s) : -1;
            r->bf[p] = u > 0 ? flops / u / 1e9 : -1;
#endif
        }
#ifdef MIMO_CONV_DNNL
        static char impl16[N_LAYERS][64];
        snprintf(impl16[i], sizeof impl16[i], "%s", s.dnnl ? mimo_conv_dnnl_impl(s.dnnl, b) : "");
        r->impl16 = impl16[i];
#endif
        mimo_conv_dnnl_free(s.dnnl);
        free(s.x), free(s.W), free(s.z), free(s.dz), free(s.dx), free(s.dW), free(s.db),
            free(s.col);
        double g = sgemm_gflops(1024);
        peak = g > peak ? g : peak;
    }
    printf("sgemm (OpenBLAS, 1024x1024x1024, fp32): %.1f GFLOP/s (best of the run)\n", peak);
    printf("batch %d; GFLOP/s and %% of that sgemm per pass\n\n", b);
    const char *why = NULL;
    if (!mimo_bf16_native(&why))
        printf("no bf16 column: %s\n", why);
    printf("%-9s %-3s %-22s %-9s %16s %16s %16s  %s\n", "net", "lay", "shape", "pass",
           "im2col+sgemm", "oneDNN", "oneDNN bf16", "oneDNN kernels (fp32, bf16)");
    const char *passes[3] = {"forward", "bwd data", "bwd wts"};
    for (int i = 0; i < N_LAYERS; i++) {
        const row *r = &rows[i];
        for (int p = 0; p < 3; p++) {
            char a[32], d[32] = "-", h[32] = "-";
            snprintf(a, sizeof a, "%6.1f (%3.0f%%)", r->im[p], 100 * r->im[p] / peak);
            if (r->dn[p] > 0)
                snprintf(d, sizeof d, "%6.1f (%3.0f%%)", r->dn[p], 100 * r->dn[p] / peak);
            if (r->bf[p] > 0)
                snprintf(h, sizeof h, "%6.1f (%3.0f%%)", r->bf[p], 100 * r->bf[p] / peak);
            printf("%-9s %-3s %-22s %-9s %16s %16s %16s  %s%s%s%s\n", r->l->net, r->l->name,
                   r->shape, passes[p], a, d, h, p == 0 ? r->impl : "",
                   p == 0 && *r->impl16 ? ", " : "", p == 0 ? r->impl16 : "",
                   p == 1 && !r->l->dx ? "(not run in training: input layer)" : "");
        }
    }
    return 0;
}
