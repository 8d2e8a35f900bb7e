/* test_conv.c — conv2d and the pooling kinds against direct (naive)
 * implementations written here from the definitions, in double: the
 * output, and the kernel, bias and input gradients of one backward pass,
 * over odd sizes, strides, both paddings and several channels (the float
 * build, as training runs it). Also: max pooling sends a tie's gradient to
 * the first maximum in window order, every time; output shapes follow
 * Keras' arithmetic for same padding with stride 2. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model.h"
#include "mimo/mimo.h"
#include "core/graph_impl.h"

#define B 3

typedef struct {
    int h, w, c;        /* input */
    int kh, kw, sh, sw; /* window, strides */
    int same;
    int filters;        /* conv2d; 0: a pooling */
    int oh, ow, pt, pl; /* derived */
} geom;

/* Keras / TensorFlow: valid out = (in - k) / s + 1; same out = ceil(in /
 * s), padding max((out - 1) s + k - in, 0), half (rounded down) before. */
static void derive(geom *g)
{
    if (g->same) {
        g->oh = (g->h + g->sh - 1) / g->sh, g->ow = (g->w + g->sw - 1) / g->sw;
        int th = (g->oh - 1) * g->sh + g->kh - g->h, tw = (g->ow - 1) * g->sw + g->kw - g->w;
        g->pt = th > 0 ? th / 2 : 0, g->pl = tw > 0 ? tw / 2 : 0;
    } else {
        g->oh = (g->h - g->kh) / g->sh + 1, g->ow = (g->w - g->kw) / g->sw + 1;
        g->pt = g->pl = 0;
    }
}

static geom G(int h, int w, int c, int kh, int kw, int sh, int sw, int same,
             int filters)
{
    geom g = {h, w, c, kh, kw, sh, sw, same, filters, 0, 0, 0, 0};
    return g;
}

#define X(g, x, s, y, xx, c) (x)[(((size_t)(s) * (g)->h + (y)) * (g)->w + (xx)) * (g)->c + (c)]

typedef struct {
    mimo_spec spec;
    mimo_graph *g;
    mimo_real *params, *grads, *x, *t;
    int width;
} net;

/* A one-layer network: input x (h, w, c), layer y, an mse head on it. */
static void build(net *n, const char *layer, const geom *g)
{
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "inputs: {x: {shape: [%d, %d, %d]}}\n"
             "layers:\n  y: %s\n"
             "outputs: {y: {loss: mse}}\n", g->h, g->w, g->c, layer);
    memset(n, 0, sizeof *n);
    if (mimo_config_parse(yaml, strlen(yaml), "t.yaml", NULL, 0, &n->spec))
        fail_msg("config: %s\n%s", mimo_errmsg(), yaml);
    if (mimo_graph_compile(&n->spec, B, 1, &n->g))
        fail_msg("compile: %s", mimo_errmsg());
    size_t np = mimo_graph_param_count(n->g), nx = (size_t)B * g->h * g->w * g->c;
    n->width = mimo_graph_head_units(n->g, 0);
    n->params = calloc(np + 1, sizeof(mimo_real));
    n->grads = calloc(np + 1, sizeof(mimo_real));
    n->x = malloc(sizeof(mimo_real) * nx);
    n->t = calloc((size_t)B * n->width, sizeof(mimo_real));
    mimo_rng r;
    mimo_rng_seed(&r, 5);
    mimo_graph_init_params(n->g, n->params, 3);
    for (size_t i = 0; i < np; i++)
        n->params[i] += (mimo_real)(0.1 * mimo_rng_normal(&r)); /* biases too */
    for (size_t i = 0; i < nx; i++)
        n->x[i] = (mimo_real)mimo_rng_normal(&r);
}

static void drop(net *n)
{
    free(n->params);
    free(n->grads);
    free(n->x);
    free(n->t);
    mimo_graph_free(&n->g);
    mimo_spec_free(&n->spec);
}

/* Forward, then backward from the mse head against zeros: d loss / d y =
 * 2 y / width per row (grad_scale 1). Returns y; dy into *dy (malloc'd). */
static const mimo_real *run(net *n, double **dy)
{
    const mimo_real *in[1] = {n->x}, *tg[1] = {n->t};
    mimo_graph_forward(n->g, n->params, in, B);
    assert_int_equal(mimo_graph_loss(n->g, tg, B, 1.0, NULL), 0);
    mimo_graph_backward(n->g, n->params, n->grads, B);
    const mimo_real *y = mimo_graph_output(n->g, 0);
    *dy = malloc(sizeof(double) * (size_t)B * n->width);
    for (int i = 0; i < B * n->width; i++)
        (*dy)[i] = 2.0 * y[i] / n->width;
    return y;
}

/* max |a - b| <= tol max |b| (+ a floor), or print the first difference. */
static void close_to(const char *what, const mimo_real *a, const double *b, size_t n)
{
    double big = 1e-6, worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++)
        big = fmax(big, fabs(b[i]));
    for (size_t i = 0; i < n; i++)
        if (fabs(a[i] - b[i]) > worst)
            worst = fabs(a[i] - b[i]), at = i;
    if (worst > 2e-5 * big)
        fail_msg("%s[%zu]: mimo %.8g, direct %.8g (largest %.3g)", what, at,
                 (double)a[at], b[at], big);
}

static const mimo_param_info *tensor(const net *n, const char *name,
                                     mimo_param_info *p)
{
    for (int k = 0; k < mimo_graph_n_tensors(n->g); k++) {
        *p = mimo_graph_tensor(n->g, k);
        if (strcmp(p->name, name) == 0)
            return p;
    }
    return NULL;
}

/* ---- conv2d ------------------------------------------------------------ */

static void check_conv(geom g, int use_bias)
{
    derive(&g);
    char layer[256];
    snprintf(layer, sizeof layer, "{type: conv2d, filters: %d, kernel_size: [%d, %d], "
             "strides: [%d, %d], padding: %s, use_bias: %s, from: x}", g.filters,
             g.kh, g.kw, g.sh, g.sw, g.same ? "same" : "valid",
             use_bias ? "true" : "false");
    net n;
    build(&n, layer, &g);
    assert_int_equal(n.width, g.oh * g.ow * g.filters);
    mimo_param_info kp, bp;
    assert_non_null(tensor(&n, "kernel", &kp));
    assert_int_equal(kp.shape.rank, 4);
    assert_int_equal(kp.shape.dim[0], g.kh);
    assert_int_equal(kp.shape.dim[1], g.kw);
    assert_int_equal(kp.shape.dim[2], g.c);
    assert_int_equal(kp.shape.dim[3], g.filters);
    int has_b = tensor(&n, "bias", &bp) != NULL;
    assert_int_equal(has_b, use_bias);
    const mimo_real *W = n.params + kp.offset, *bias = has_b ? n.params + bp.offset : NULL;
    double *dy;
    const mimo_real *y = run(&n, &dy);

    size_t ny = (size_t)B * n.width, nw = kp.size, nx = (size_t)B * g.h * g.w * g.c;
    double *want = calloc(ny, sizeof *want), *dW = calloc(nw, sizeof *dW),
           *db = calloc((size_t)g.filters, sizeof *db), *dx = calloc(nx, sizeof *dx);
    /* z[s, oy, ox, f] = b[f] + sum_{i, j, c} x[s, oy sh - pt + i,
     * ox sw - pl + j, c] W[i, j, c, f]; the same sums give dW, db, dx */
    for (int s = 0; s < B; s++)
        for (int oy = 0; oy < g.oh; oy++)
            for (int ox = 0; ox < g.ow; ox++)
                for (int f = 0; f < g.filters; f++) {
                    size_t o = (((size_t)s * g.oh + oy) * g.ow + ox) * g.filters + f;
                    double z = bias ? bias[f] : 0, d = dy[o];
                    db[f] += d;
                    for (int i = 0; i < g.kh; i++)
                        for (int j = 0; j < g.kw; j++) {
                            int iy = oy * g.sh - g.pt + i, ix = ox * g.sw - g.pl + j;
                            if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w)
                                continue;
                            for (int c = 0; c < g.c; c++) {
                                size_t wi = (((size_t)i * g.kw + j) * g.c + c) * g.filters + f;
                                z += X(&g, n.x, s, iy, ix, c) * (double)W[wi];
                                dW[wi] += X(&g, n.x, s, iy, ix, c) * d;
                                X(&g, dx, s, iy, ix, c) += W[wi] * d;
                            }
                        }
                    want[o] = z;
                }
    close_to("conv2d y", y, want, ny);
    close_to("conv2d d kernel", n.grads + kp.offset, dW, nw);
    if (bias)
        close_to("conv2d d bias", n.grads + bp.offset, db, (size_t)g.filters);
    close_to("conv2d dx", mimo_graph_input_grad(n.g, 0), dx, nx);
    free(want), free(dW), free(db), free(dx), free(dy);
    drop(&n);
}

static void test_conv2d_direct(void **s)
{
    (void)s;
    /* h w c  kh kw  sh sw  same  filters */
    check_conv(G(7, 5, 1, 3, 3, 1, 1, 1, 4), 1);  /* same, one channel */
    check_conv(G(7, 5, 3, 3, 3, 2, 2, 1, 5), 1);  /* same, stride 2: asymmetric */
    check_conv(G(6, 8, 2, 2, 3, 2, 2, 1, 3), 0);  /* even kernel, same */
    check_conv(G(9, 7, 2, 3, 2, 2, 3, 0, 2), 1);  /* valid, strides (2, 3) */
    check_conv(G(5, 5, 4, 5, 5, 1, 1, 0, 3), 1);  /* kernel = input */
    check_conv(G(4, 6, 3, 1, 1, 1, 1, 0, 4), 1);  /* 1x1: no patches */
    check_conv(G(5, 7, 3, 1, 1, 2, 2, 1, 2), 0);  /* 1x1, stride 2 */
    check_conv(G(3, 3, 2, 5, 4, 1, 1, 1, 2), 1);  /* kernel > input, same */
    /* 20 filters (oneDNN's bias sum: a chunk of 16 and one of 4) over
     * 3 x 13 x 11 = 429 positions (a block of 256 rows and one of 173) */
    check_conv(G(13, 11, 2, 3, 3, 1, 1, 1, 20), 1);
    check_conv(G(14, 14, 16, 3, 3, 1, 1, 0, 32), 1); /* a CNN's second layer */
}

/* ---- pooling --------------------------------------------------------------- */

static void check_pool(geom g, const char *type, int global)
{
    derive(&g);
    char layer[256];
    if (global)
        snprintf(layer, sizeof layer, "{type: %s, from: x}", type);
    else
        snprintf(layer, sizeof layer, "{type: %s, pool_size: [%d, %d], strides: "
                 "[%d, %d], padding: %s, from: x}", type, g.kh, g.kw, g.sh, g.sw,
                 g.same ? "same" : "valid");
    int max = strstr(type, "max") != NULL;
    net n;
    build(&n, layer, &g);
    assert_int_equal(n.width, g.oh * g.ow * g.c);
    double *dy;
    const mimo_real *y = run(&n, &dy);
    size_t ny = (size_t)B * n.width, nx = (size_t)B * g.h * g.w * g.c;
    double *want = calloc(ny, sizeof *want), *dx = calloc(nx, sizeof *dx);
    for (int s = 0; s < B; s++)
        for (int oy = 0; oy < g.oh; oy++)
            for (int ox = 0; ox < g.ow; ox++)
                for (int c = 0; c < g.c; c++) {
                    size_t o = (((size_t)s * g.oh + oy) * g.ow + ox) * g.c + c;
                    double acc = max ? -INFINITY : 0;
                    int count = 0, by = -1, bx = -1;
                    for (int i = 0; i < g.kh; i++)
                        for (int j = 0; j < g.kw; j++) {
                            int iy = oy * g.sh - g.pt + i, ix = ox * g.sw - g.pl + j;
                            if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w)
                                continue; /* padding: neither max nor counted */
                            double v = X(&g, n.x, s, iy, ix, c);
                            count++;
                            if (!max)
                                acc += v;
                            else if (v > acc)
                                acc = v, by = iy, bx = ix;
                        }
                    want[o] = max ? acc : acc / count;
                    if (max)
                        X(&g, dx, s, by, bx, c) += dy[o];
                    else
                        for (int i = 0; i < g.kh; i++)
                            for (int j = 0; j < g.kw; j++) {
                                int iy = oy * g.sh - g.pt + i, ix = ox * g.sw - g.pl + j;
                                if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w)
                                    X(&g, dx, s, iy, ix, c) += dy[o] / count;
                            }
                }
    close_to(type, y, want, ny);
    close_to("pool dx", mimo_graph_input_grad(n.g, 0), dx, nx);
    free(want), free(dx), free(dy);
    drop(&n);
}

static void test_pool_direct(void **s)
{
    (void)s;
    const char *kinds[2] = {"max_pool2d", "avg_pool2d"};
    for (int k = 0; k < 2; k++) {
        check_pool(G(6, 6, 2, 2, 2, 2, 2, 0, 0), kinds[k], 0);
        check_pool(G(7, 5, 3, 2, 2, 2, 2, 0, 0), kinds[k], 0); /* drops a row */
        check_pool(G(7, 5, 3, 2, 2, 2, 2, 1, 0), kinds[k], 0); /* same: pads */
        check_pool(G(5, 8, 1, 3, 2, 1, 3, 1, 0), kinds[k], 0);
        check_pool(G(6, 7, 2, 3, 3, 1, 1, 0, 0), kinds[k], 0); /* overlapping */
        check_pool(G(3, 3, 2, 4, 4, 2, 2, 1, 0), kinds[k], 0); /* window > input */
    }
    check_pool(G(5, 7, 3, 5, 7, 1, 1, 0, 0), "global_max_pool2d", 1);
    check_pool(G(5, 7, 3, 5, 7, 1, 1, 0, 0), "global_avg_pool2d", 1);
}

/* ---- ties and shapes ------------------------------------------------------ */

/* Each 2x2 window of one channel holds its maximum twice (and a sample of
 * equal values): the gradient goes to the first in window order (row by
 * row), the same in every run. */
static void test_max_pool_ties(void **s)
{
    (void)s;
    geom g = G(2, 4, 1, 2, 2, 2, 2, 0, 0);
    derive(&g);
    net n;
    build(&n, "{type: max_pool2d, from: x}", &g);
    /* window 1: [[1, 3], [3, 2]] -> (0, 1); window 2: [[0, 0], [5, 5]] -> (1, 0) */
    static const mimo_real rows[8] = {1, 3, 0, 0, 3, 2, 5, 5};
    for (int smp = 0; smp < B; smp++)
        for (int k = 0; k < 8; k++)
            n.x[smp * 8 + k] = smp == 2 ? 7 : rows[k];
    for (int rep = 0; rep < 3; rep++) {
        double *dy;
        run(&n, &dy);
        const mimo_real *dx = mimo_graph_input_grad(n.g, 0);
        for (int smp = 0; smp < B; smp++) {
            const mimo_real *d = dx + smp * 8;
            const double *e = dy + smp * 2;
            int first[2] = {smp == 2 ? 0 : 1, smp == 2 ? 2 : 6}; /* flat index */
            for (int k = 0; k < 8; k++) {
                double want = k == first[0] ? e[0] : k == first[1] ? e[1] : 0;
                if (fabs(d[k] - want) > 1e-7)
                    fail_msg("sample %d run %d: dx[%d] = %g, want %g", smp, rep, k,
                             (double)d[k], want);
            }
        }
        free(dy);
    }
    drop(&n);
}

/* Output shapes of same/valid with stride 2 on odd inputs, as Keras. */
static void test_shapes(void **s)
{
    (void)s;
    static const struct {
        const char *layer;
        int oh, ow, oc;
    } cases[] = {
        {"{type: conv2d, filters: 4, kernel_size: 3, strides: 2, padding: same, from: x}", 4, 3, 4},
        {"{type: conv2d, filters: 4, kernel_size: 3, strides: 2, from: x}", 3, 2, 4},
        {"{type: conv2d, filters: 1, kernel_size: [1, 5], from: x}", 7, 1, 1},
        {"{type: max_pool2d, from: x}", 3, 2, 2},
        {"{type: avg_pool2d, pool_size: 3, strides: 2, padding: same, from: x}", 4, 3, 2},
        {"{type: max_pool2d, pool_size: [2, 1], strides: 1, from: x}", 6, 5, 2},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        geom g = G(7, 5, 2, 1, 1, 1, 1, 0, 0);
        net n;
        build(&n, cases[k].layer, &g);
        const mimo_shape *sh = &n.g->nodes[n.g->heads[0].node].shape;
        assert_int_equal(sh->rank, 3);
        assert_int_equal(sh->dim[0], cases[k].oh);
        assert_int_equal(sh->dim[1], cases[k].ow);
        assert_int_equal(sh->dim[2], cases[k].oc);
        drop(&n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv2d_direct),
        cmocka_unit_test(test_pool_direct),
        cmocka_unit_test(test_max_pool_ties),
        cmocka_unit_test(test_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
