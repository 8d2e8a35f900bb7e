/* test_balance.c — task balancing's pieces against cases solved by hand:
 * MGDA-UB's min-norm weights (two opposed gradients meet half way; three
 * orthonormal ones get a third each; a gradient inside the others' hull
 * takes all the weight; the weights stay on the simplex), PCGrad's order
 * of the other heads (a permutation of them, the same for the same step,
 * another for another step), and which parameters count as shared (found
 * from the graph: trunk yes, heads' own layers no). The float64 oracles
 * of the whole methods are tests/torch/pcgrad.py and mgda.py. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/balance.h"
#include "core/graph.h"
#include "mimo/mimo.h"
#include "nets.h"

static double sum(const double *a, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += a[i];
    return s;
}

static void test_min_norm(void **state)
{
    (void)state;
    double a[3];
    /* g1 = (1, 0), g2 = (-1, 0): the least norm is 0, half and half */
    const double opposed[4] = {1, -1, -1, 1};
    mimo_balance_min_norm(opposed, 2, a);
    assert_true(fabs(a[0] - 0.5) < 1e-12 && fabs(a[1] - 0.5) < 1e-12);
    /* orthonormal: a third each (Frank-Wolfe gets within its 1e-5 stop) */
    const double eye[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    mimo_balance_min_norm(eye, 3, a);
    for (int i = 0; i < 3; i++)
        assert_true(fabs(a[i] - 1.0 / 3) < 2e-3);
    assert_true(fabs(sum(a, 3) - 1) < 1e-12);
    /* g1 = (1, 0), g2 = (0, 1), g3 = (0.2, 0.2): the hull's point nearest
     * the origin is g3 itself (norm^2 0.08; both edges from it move away):
     * all the weight on it */
    const double inside[9] = {1, 0, 0.2, 0, 1, 0.2, 0.2, 0.2, 0.08};
    mimo_balance_min_norm(inside, 3, a);
    assert_true(a[2] > 0.99 && fabs(sum(a, 3) - 1) < 1e-12);
    for (int i = 0; i < 3; i++)
        assert_true(a[i] >= 0);
}

static void test_order(void **state)
{
    (void)state;
    int o[7], p[7], seen[8];
    for (int i = 0; i < 8; i++) {
        memset(seen, 0, sizeof seen);
        mimo_balance_order(8, 42, 3, 17, i, o);
        mimo_balance_order(8, 42, 3, 17, i, p);
        assert_memory_equal(o, p, sizeof o); /* the same for the same step */
        for (int k = 0; k < 7; k++) {
            assert_true(o[k] >= 0 && o[k] < 8 && o[k] != i);
            seen[o[k]]++;
        }
        for (int j = 0; j < 8; j++)
            assert_int_equal(seen[j], j == i ? 0 : 1);
    }
    int differ = 0; /* another step, another order (some of 8 heads' 7!) */
    for (int s = 0; s < 8; s++) {
        mimo_balance_order(8, 42, 3, 17, 0, o);
        mimo_balance_order(8, 42, 3, 18 + s, 0, p);
        differ += memcmp(o, p, sizeof o) != 0;
    }
    assert_true(differ >= 6);
}

static void test_shared(void **state)
{
    (void)state;
    static const char *yaml =
        "inputs: {x: {shape: 4}}\n"
        "layers:\n"
        "  t: {type: dense, units: 5, from: x}\n"     /* 4 x 5 + 5 = 25 */
        "  y1: {type: dense, units: 2, from: t}\n"
        "  y2: {type: dense, units: 1, from: t}\n"
        "outputs: {y1: {loss: mse}, y2: {loss: mse}}\n";
    mimo_spec spec;
    mimo_graph *g = NULL;
    mimo_balance *b = NULL;
    assert_int_equal(mimo_config_parse(yaml, strlen(yaml), NULL, NULL, 0, &spec), 0);
    assert_int_equal(mimo_graph_compile(&spec, 8, 0, &g), 0);
    assert_int_equal(mimo_balance_create(g, &b), 0);
    assert_int_equal((int)mimo_balance_shared(b), 25); /* t's, not y1's, y2's */
    mimo_balance_free(&b);
    mimo_graph_free(&g);
    mimo_spec_free(&spec);
}

/* The stacked backward (core/stacked.c) gives each head the gradient a
 * backward seeded by that head alone gives, on a trunk of a convolution,
 * batch_norm, a view of the trunk (flatten) and one only a head reads, a
 * concat, dense layers (taken stacked) and dropout; heads ordered so that
 * a trunk layer serves heads 0 and 2, not 1 (a slice between held zero). */
static const char *STACKED =
    "inputs: {img: {shape: [5, 5, 2]}, s: {shape: 3}}\n"
    "layers:\n"
    "  c:  {type: conv2d, filters: 3, kernel_size: 3, padding: same, activation: relu, from: img}\n"
    "  bn: {type: batch_normalization, from: c}\n"
    "  f:  {type: flatten, from: bn}\n"
    "  sd: {type: dense, units: 4, activation: tanh, from: s}\n"
    "  j:  {type: concat, from: [f, sd]}\n"
    "  t:  {type: dense, units: 8, activation: relu, from: j}\n"
    "  d:  {type: dropout, rate: 0.3, from: t}\n"
    "  u:  {type: dense, units: 6, activation: tanh, from: d}\n"
    "  g2: {type: flatten, from: c}\n"
    "  y1: {type: dense, units: 2, from: u}\n"
    "  y3: {type: dense, units: 3, from: g2}\n"
    "  y2: {type: dense, units: 1, activation: sigmoid, from: u}\n"
    "outputs: {y1: {loss: mse}, y3: {loss: mse}, y2: {loss: binary_crossentropy}}\n";

/* Every kind in the trunk taken once per head (none stacked but dense),
 * and a third head z on the convolution's branch alone. */
static const char *STACKED_KINDS =
    MIMO_TEST_EVERY_KIND_NET
    "  z: {type: dense, units: 2, from: f}\n"
    "outputs:\n"
    "  y: {loss: binary_crossentropy}\n"
    "  z: {loss: mse}\n"
    "  k: {loss: sparse_categorical_crossentropy}\n";

/* A layer reading one parent twice, a frozen dense layer, a concat of
 * a raw input and a branch (dx over some columns only), dense on rank-3
 * data, a view of a view. */
static const char *STACKED_MISC =
    "inputs: {x: {shape: [4, 3]}, s: {shape: 3}}\n"
    "layers:\n"
    "  d3: {type: dense, units: 5, activation: tanh, from: x}\n"
    "  m: {type: multiply, from: [d3, d3]}\n"
    "  r: {type: reshape, target_shape: [2, 10], from: m}\n"
    "  f: {type: flatten, from: r}\n"
    "  j: {type: concat, from: [s, f]}\n"
    "  t: {type: dense, units: 6, activation: relu, trainable: false, from: j}\n"
    "  t2: {type: dense, units: 4, from: t}\n"
    "  y1: {type: dense, units: 2, from: t2}\n"
    "  y2: {type: dense, units: 1, activation: sigmoid, from: t2}\n"
    "  y3: {type: dense, units: 3, from: f}\n"
    "outputs: {y1: {loss: mse}, y2: {loss: binary_crossentropy}, y3: {loss: mse}}\n";

/* yaml's network on b of its max batch of 7 random rows (ids below 10,
 * targets 0 or 1): the stacked backward's gradient of each head against
 * a backward seeded by that head alone, within 1e-6 of the largest
 * value, each with more than min_nonzero values that are not 0. */
static void stacked_matches(const char *yaml, int b, size_t min_nonzero)
{
    enum { B = 7, T = 3, MAXW = 64 };
    mimo_spec spec;
    mimo_graph *g = NULL;
    assert_int_equal(mimo_config_parse(yaml, strlen(yaml), NULL, NULL, 0, &spec), 0);
    assert_int_equal(mimo_graph_compile(&spec, B, 0, &g), 0);
    assert_int_equal(mimo_graph_n_heads(g), T);
    size_t np = mimo_graph_param_count(g), nt = mimo_graph_trained_count(g);
    mimo_real *params = calloc(np, sizeof *params), *ref = calloc(T * nt, sizeof *ref),
              *got = calloc(T * nt, sizeof *got);
    static mimo_real in[4][B * MAXW], tg[T][B * 4];
    const mimo_real *inp[4], *tgp[T];
    mimo_graph_init_params(g, params, 11);
    mimo_rng rng;
    mimo_rng_seed(&rng, 5);
    for (int i = 0; i < mimo_graph_n_inputs(g); i++) {
        long long bound = 0;
        int ids = mimo_graph_input_ids(g, i, &bound), w = mimo_graph_input_width(g, i);
        assert_true(w <= MAXW);
        for (int v = 0; v < B * w; v++)
            in[i][v] = ids ? (mimo_real)(int)(mimo_rng_uniform(&rng) * 10)
                           : (mimo_real)(mimo_rng_uniform(&rng) * 2 - 1);
        inp[i] = in[i];
    }
    for (int h = 0; h < T; h++) {
        for (int v = 0; v < B * mimo_graph_head_target_width(g, h); v++)
            tg[h][v] = (mimo_real)((v * 7 + h) % 3 == 0);
        tgp[h] = tg[h];
    }
    uint64_t rows[B];
    for (int i = 0; i < B; i++)
        rows[i] = (uint64_t)(3 * i + 1);
    mimo_graph_set_training(g, rows, 2);
    mimo_graph_forward(g, params, inp, b);
    const double w[T] = {0.5, 2, 1};
    for (int h = 0; h < T; h++) { /* head h alone */
        double one[T] = {0};
        one[h] = w[h];
        assert_int_equal(mimo_graph_loss_weighted(g, tgp, NULL, b, one, NULL), 0);
        mimo_graph_backward(g, params, ref + (size_t)h * nt, b);
    }
    assert_int_equal(mimo_graph_stacked_enable(g), 0);
    mimo_real *grads[T] = {got, got + nt, got + 2 * nt};
    assert_int_equal(mimo_graph_loss_weighted(g, tgp, NULL, b, w, NULL), 0);
    mimo_graph_backward_stacked(g, params, grads, b);
    for (int h = 0; h < T; h++) {
        double big = 0, diff = 0;
        size_t nonzero = 0;
        for (size_t i = 0; i < nt; i++) {
            double r = ref[(size_t)h * nt + i], x = got[(size_t)h * nt + i];
            big = fabs(r) > big ? fabs(r) : big;
            diff = fabs(r - x) > diff ? fabs(r - x) : diff;
            nonzero += r != 0;
        }
        if (nonzero <= min_nonzero || diff > 1e-6 * big)
            fail_msg("head %d: %zu values not 0, largest difference %g of %g", h,
                     nonzero, diff, big);
    }
    free(params), free(ref), free(got);
    mimo_graph_free(&g);
    mimo_spec_free(&spec);
}

static void test_stacked_backward(void **state)
{
    (void)state;
    for (int b = 7; b >= 4; b -= 3) { /* the whole batch, and fewer rows */
        stacked_matches(STACKED, b, 40);       /* the conv's kernel has 54 */
        stacked_matches(STACKED_KINDS, b, 40); /* z: the conv's 72 */
        stacked_matches(STACKED_MISC, b, 10);
    }
}

/* A head whose output feeds another head, and a head that is a view of
 * the trunk (the loss would seed the trunk's own dy, which the stacked
 * pass does not read): no stacked backward (model.c then runs one
 * backward per head); a view of a head's own layer is fine. */
static void test_stacked_refused(void **state)
{
    (void)state;
    static const char *const yaml[3] = {
        "inputs: {x: {shape: 4}}\n"
        "layers:\n"
        "  t: {type: dense, units: 5, from: x}\n"
        "  y1: {type: dense, units: 2, from: t}\n"
        "  y2: {type: dense, units: 1, from: y1}\n"
        "outputs: {y1: {loss: mse}, y2: {loss: mse}}\n",
        "inputs: {x: {shape: 4}}\n"
        "layers:\n"
        "  t: {type: dense, units: 6, activation: tanh, from: x}\n"
        "  a: {type: dense, units: 2, from: t}\n"
        "  r: {type: reshape, target_shape: [3, 2], from: t}\n"
        "outputs: {a: {loss: mse}, r: {loss: mse}}\n",
        "inputs: {x: {shape: 4}}\n"
        "layers:\n"
        "  t: {type: dense, units: 6, activation: tanh, from: x}\n"
        "  a: {type: dense, units: 2, from: t}\n"
        "  u: {type: dense, units: 6, from: t}\n"
        "  r: {type: reshape, target_shape: [3, 2], from: u}\n"
        "outputs: {a: {loss: mse}, r: {loss: mse}}\n"};
    for (int i = 0; i < 3; i++) {
        mimo_spec spec;
        mimo_graph *g = NULL;
        assert_int_equal(mimo_config_parse(yaml[i], strlen(yaml[i]), NULL, NULL, 0, &spec),
                         0);
        assert_int_equal(mimo_graph_compile(&spec, 8, 0, &g), 0);
        assert_int_equal(mimo_graph_stacked_enable(g), i < 2 ? MIMO_EINVAL : 0);
        assert_int_equal(mimo_graph_stacked_on(g), i == 2);
        mimo_graph_free(&g);
        mimo_spec_free(&spec);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_min_norm),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_shared),
        cmocka_unit_test(test_stacked_backward),
        cmocka_unit_test(test_stacked_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
