/* test_stability.c — logits of +-1000 through sigmoid, softmax, binary and
 * categorical cross-entropy (from logits and from probabilities) give
 * finite losses and finite gradients, in the float32 library; and the
 * vectorized activations and losses (libmvec's exp, log1p, expm1, tanh)
 * agree with double-precision libm on rows long enough to vectorize; and
 * a sample's output, loss and gradient are bitwise the same wherever it
 * lies in a batch (narrow rows are computed as one run of values); relu
 * keeps NaN. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/graph_impl.h"
#include "core/model.h"
#include "mimo/mimo.h"

#define B 2

/* Runs forward/loss/backward with x = +-1000 patterns and checks that
 * every loss, parameter gradient and input gradient is finite, and that
 * the gradient is not all zero. */
static void check_finite(const char *yaml)
{
    mimo_spec spec;
    mimo_graph *g = NULL;
    if (mimo_config_parse(yaml, strlen(yaml), "stab.yaml", NULL, 0, &spec))
        fail_msg("%s", mimo_errmsg());
    if (mimo_graph_compile(&spec, B, 1, &g))
        fail_msg("%s", mimo_errmsg());
    size_t n = mimo_graph_param_count(g);
    mimo_real params[256] = {0}, grads[256] = {0};
    assert_true(n <= 256);
    mimo_graph_init_params(g, params, 1);
    mimo_real x[B * 4] = {1000, -1000, 1000, -1000, -1000, 1000, 0, 500};
    /* targets chosen to be maximally wrong: one-hot / probabilities */
    mimo_real t[4][B * 4] = {{0, 1, 0, 1, 1, 0, 1, 0},
                             {0, 1, 0, 0, 1, 0, 0, 0},
                             {0, 1, 0, 0, 1, 0, 0, 0},
                             {1, 0, 0, 0, 0, 1, 0, 0}};
    const mimo_real *in[1] = {x};
    const mimo_real *tg[4] = {t[0], t[1], t[2], t[3]};
    mimo_head_stats st[4];
    memset(st, 0, sizeof st);
    mimo_graph_forward(g, params, in, B);
    assert_int_equal(mimo_graph_loss(g, tg, B, 1.0 / B, st), 0);
    mimo_graph_backward(g, params, grads, B);
    double norm = 0;
    for (int h = 0; h < mimo_graph_n_heads(g); h++) {
        if (!isfinite(st[h].loss))
            fail_msg("head %d loss %g", h, st[h].loss);
        assert_true(st[h].loss > 0);
    }
    for (size_t i = 0; i < n; i++) {
        assert_true(isfinite(grads[i]));
        norm += fabs(grads[i]);
    }
    const mimo_real *gx = mimo_graph_input_grad(g, 0);
    for (int i = 0; i < B * 4; i++) {
        assert_true(isfinite(gx[i]));
        norm += fabs(gx[i]);
    }
    assert_true(norm > 0);
    mimo_graph_free(&g);
    mimo_spec_free(&spec);
}

static void test_sigmoid_bce_logits(void **s)
{
    (void)s;
    check_finite("inputs: {x: {shape: 4}}\n"
                 "layers: {p: {type: activation, activation: sigmoid, from: x}}\n"
                 "outputs: {p: {loss: binary_crossentropy}}\n");
}

static void test_softmax_cce_logits(void **s)
{
    (void)s;
    check_finite("inputs: {x: {shape: 4}}\n"
                 "layers: {p: {type: activation, activation: softmax, from: x}}\n"
                 "outputs: {p: {loss: categorical_crossentropy}}\n");
}

/* The heads also feed other layers, so the losses work on probabilities. */
static void test_probabilities(void **s)
{
    (void)s;
    check_finite("inputs: {x: {shape: 4}}\n"
                 "layers:\n"
                 "  p: {type: activation, activation: sigmoid, from: x}\n"
                 "  q: {type: activation, activation: softmax, from: x}\n"
                 "  r: {type: add, from: [p, q]}\n"
                 "  o: {type: dense, units: 4, from: r}\n"
                 "outputs:\n"
                 "  p: {loss: binary_crossentropy}\n"
                 "  q: {loss: categorical_crossentropy}\n"
                 "  r: {loss: mse}\n"
                 "  o: {loss: mse}\n");
}

/* Dense layers whose kernels turn the inputs into logits of +-1000s. */
static void test_dense_heads(void **s)
{
    (void)s;
    check_finite("inputs: {x: {shape: 4}}\n"
                 "layers:\n"
                 "  a: {type: dense, units: 4, activation: sigmoid, from: x,\n"
                 "      kernel_initializer: {type: constant, value: 1.0}}\n"
                 "  b: {type: dense, units: 4, activation: softmax, from: x,\n"
                 "      kernel_initializer: {type: uniform, min: -1, max: 1}}\n"
                 "  c: {type: dense, units: 4, activation: softmax, from: x}\n"
                 "  d: {type: dense, units: 4, activation: tanh, from: x}\n"
                 "outputs:\n"
                 "  a: {loss: binary_crossentropy}\n"
                 "  b: {loss: categorical_crossentropy}\n"
                 "  c: {loss: sparse_categorical_crossentropy}\n"
                 "  d: {loss: huber}\n");
}

/* ---- vectorized kernels against double-precision references ---------- */

#define W 1000 /* row width: many full AVX2/SSE vectors plus a tail */

static double ref_act(const char *act, double x)
{
    if (!strcmp(act, "sigmoid"))
        return 1 / (1 + exp(-x));
    if (!strcmp(act, "tanh"))
        return tanh(x);
    if (!strcmp(act, "softplus"))
        return log1p(exp(x));
    return x > 0 ? x : 0.5 * expm1(x); /* elu, alpha 0.5 */
}

/* x spans [-30, 30) over the row, with a few exact zeros and tiny values. */
static void fill_row(mimo_real *x)
{
    for (int j = 0; j < W; j++)
        x[j] = (mimo_real)(-30.0 + 60.0 * j / W);
    x[3] = 0, x[7] = (mimo_real)1e-30, x[11] = (mimo_real)-1e-5;
}

/* Compiles a one-layer graph `p = act(x)` with head p; runs forward and
 * the loss against t; returns the graph (freed by the caller). */
static mimo_graph *run_one(const char *act, const char *loss, const mimo_real *x,
                           const mimo_real *t, mimo_head_stats *st, mimo_spec *spec)
{
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "inputs: {x: {shape: %d}}\n"
             "layers: {p: {type: activation, activation: %s, alpha: 0.5, from: x}}\n"
             "outputs: {p: {loss: %s}}\n", W, act, loss);
    mimo_graph *g = NULL;
    if (mimo_config_parse(yaml, strlen(yaml), "vec.yaml", NULL, 0, spec))
        fail_msg("%s", mimo_errmsg());
    if (mimo_graph_compile(spec, 1, 0, &g))
        fail_msg("%s", mimo_errmsg());
    const mimo_real *in[1] = {x}, *tg[1] = {t};
    memset(st, 0, sizeof *st);
    mimo_graph_forward(g, NULL, in, 1);
    assert_int_equal(mimo_graph_loss(g, tg, 1, 1.0, st), 0);
    return g;
}

static void test_vector_activations(void **s)
{
    (void)s;
    const char *acts[] = {"sigmoid", "tanh", "softplus", "elu"};
    mimo_real x[W], t[W] = {0};
    fill_row(x);
    for (size_t a = 0; a < sizeof acts / sizeof *acts; a++) {
        mimo_spec spec;
        mimo_head_stats st;
        mimo_graph *g = run_one(acts[a], "mse", x, t, &st, &spec);
        const mimo_real *y = mimo_graph_output(g, 0);
        for (int j = 0; j < W; j++) {
            double r = ref_act(acts[a], x[j]);
            if (!(fabs(y[j] - r) <= 1e-6 * fabs(r) + 1e-37))
                fail_msg("%s(%g) = %.9g, expected %.9g", acts[a], (double)x[j],
                         (double)y[j], r);
        }
        mimo_graph_free(&g);
        mimo_spec_free(&spec);
    }
}

/* relu over rows long enough for the vector kernels, with the bias
 * fused and without, and over the padded tail: NaN stays NaN, +-inf and
 * the finite values as max(x, 0). */
static void test_relu_values(void **s)
{
    (void)s;
    enum { N = 21 }; /* two chunks of 8 and a tail of 5 */
    const mimo_real v[] = {NAN, -INFINITY, INFINITY, -2, -0.0f, 0, 3, -1e-30f};
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        mimo_real z[2 * N], y[2 * N], bias[N] = {0};
        for (int i = 0; i < 2 * N; i++)
            z[i] = v[i % 8];
        mimo_act_forward(MIMO_ACT_RELU, 0, with_bias ? bias : NULL, z, y, 2, N);
        for (int i = 0; i < 2 * N; i++) {
            mimo_real x = v[i % 8];
            if (isnan(x))
                assert_true(isnan(y[i]));
            else if (!(y[i] == (x > 0 ? x : 0)))
                fail_msg("relu(%g) = %g (bias %d, index %d)", (double)x, (double)y[i],
                         with_bias, i);
        }
    }
}

/* Softmax over the row and binary cross-entropy from logits. */
static void test_vector_losses(void **s)
{
    (void)s;
    mimo_real x[W], t[W];
    fill_row(x);
    for (int j = 0; j < W; j++)
        t[j] = (mimo_real)(j % 3 == 0);
    mimo_spec spec;
    mimo_head_stats st;
    mimo_graph *g = run_one("sigmoid", "binary_crossentropy", x, t, &st, &spec);
    double ref = 0;
    for (int j = 0; j < W; j++) /* exact: log(1 + e^x) - x t */
        ref += log1p(exp(-fabs((double)x[j]))) + (x[j] > 0 ? x[j] : 0) - x[j] * t[j];
    ref /= W;
    if (!(fabs(st.loss - ref) <= 1e-6 * ref))
        fail_msg("binary cross-entropy %.9g, expected %.9g", st.loss, ref);
    mimo_graph_free(&g);
    mimo_spec_free(&spec);

    g = run_one("softmax", "mse", x, t, &st, &spec);
    const mimo_real *y = mimo_graph_output(g, 0);
    double sum = 0;
    mimo_real d[W]; /* the float shifted logits: their rounding is not ours */
    for (int j = 0; j < W; j++)
        sum += exp(d[j] = x[j] - x[W - 1]);
    for (int j = 0; j < W; j++) {
        double r = exp(d[j]) / sum;
        if (!(fabs(y[j] - r) <= 1e-6 * r + 1e-37))
            fail_msg("softmax[%d] = %.9g, expected %.9g", j, (double)y[j], r);
    }
    mimo_graph_free(&g);
    mimo_spec_free(&spec);
}

/* ---- a sample's result does not depend on its place in the batch ------ */

#define PB 7 /* rows in the batch */

/* p = act(x) with head p (loss), on PB rows of n at once and on each row
 * alone: outputs and input gradients bitwise equal, and the batch's loss
 * the sum of the rows' in order. Narrow rows go through the kernels as
 * one run of values, so a value's lane and chunk depend on its row. */
static void check_rows(const char *act, const char *loss, int n)
{
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "inputs: {x: {shape: %d}}\n"
             "layers: {p: {type: activation, activation: %s, alpha: 0.5, from: x}}\n"
             "outputs: {p: {loss: %s}}\n", n, act, loss);
    mimo_spec spec;
    mimo_graph *g = NULL;
    if (mimo_config_parse(yaml, strlen(yaml), "rows.yaml", NULL, 0, &spec))
        fail_msg("%s", mimo_errmsg());
    if (mimo_graph_compile(&spec, PB, 1, &g))
        fail_msg("%s", mimo_errmsg());
    mimo_real x[PB * 16], t[PB * 16], y[PB * 16], gx[PB * 16], params[1], grads[1];
    assert_true(n <= 16);
    for (int i = 0; i < PB * n; i++) { /* values in (-12, 12), no pattern */
        x[i] = (mimo_real)(12.0 * sin(1.7 * i + 0.3));
        t[i] = (mimo_real)(i % 3 == 0);
    }
    const mimo_real *in[1] = {x}, *tg[1] = {t};
    mimo_head_stats st = {0};
    mimo_graph_forward(g, params, in, PB);
    assert_int_equal(mimo_graph_loss(g, tg, PB, 1.0, &st), 0);
    mimo_graph_backward(g, params, grads, PB);
    memcpy(y, mimo_graph_output(g, 0), sizeof(mimo_real) * PB * n);
    memcpy(gx, mimo_graph_input_grad(g, 0), sizeof(mimo_real) * PB * n);
    double sum = 0;
    for (int r = 0; r < PB; r++) {
        const mimo_real *in1[1] = {x + r * n}, *tg1[1] = {t + r * n};
        mimo_head_stats one = {0};
        mimo_graph_forward(g, params, in1, 1);
        assert_int_equal(mimo_graph_loss(g, tg1, 1, 1.0, &one), 0);
        mimo_graph_backward(g, params, grads, 1);
        if (memcmp(mimo_graph_output(g, 0), y + r * n, sizeof(mimo_real) * n) ||
            memcmp(mimo_graph_input_grad(g, 0), gx + r * n, sizeof(mimo_real) * n))
            fail_msg("%s/%s, width %d: row %d alone differs from row %d of a "
                     "batch of %d", act, loss, n, r, r, PB);
        sum += one.loss;
    }
    if (sum != st.loss)
        fail_msg("%s/%s, width %d: batch loss %.17g, rows' sum %.17g", act, loss,
                 n, st.loss, sum);
    mimo_graph_free(&g);
    mimo_spec_free(&spec);
}

static void test_rows_anywhere(void **s)
{
    (void)s;
    const char *acts[] = {"sigmoid", "tanh", "softplus", "elu", "softmax"};
    const int widths[] = {1, 3, 5, 9, 13};
    for (size_t a = 0; a < sizeof acts / sizeof *acts; a++)
        for (size_t w = 0; w < sizeof widths / sizeof *widths; w++)
            check_rows(acts[a], "mse", widths[w]);
    for (size_t w = 0; w < sizeof widths / sizeof *widths; w++) {
        check_rows("sigmoid", "binary_crossentropy", widths[w]); /* from logits */
        if (widths[w] > 1)
            check_rows("softmax", "categorical_crossentropy", widths[w]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigmoid_bce_logits),
        cmocka_unit_test(test_softmax_cce_logits),
        cmocka_unit_test(test_probabilities),
        cmocka_unit_test(test_dense_heads),
        cmocka_unit_test(test_vector_activations),
        cmocka_unit_test(test_relu_values),
        cmocka_unit_test(test_vector_losses),
        cmocka_unit_test(test_rows_anywhere),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
