/* test_gradcheck_f64.c — every op, activation, loss and merge checked
 * against central differences, in double precision (this test links the
 * MIMO_REAL_DOUBLE build). Each check compares d loss / d parameter and
 * d loss / d input, and fails when the analytic gradient is all zero. */
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
#include "core/plugin_impl.h"
#include "../examples/plugin/swish.c"

#define BATCH 5
#define STEP 1e-6

typedef struct {
    mimo_spec spec;
    mimo_graph *g;
    mimo_real *params, *grads;
    mimo_real *in[8], *tgt[8];
    size_t n;
    /* sample weights: the heads' row weights with sw[h], each head's loss
     * divided by its weight sum plus `others` (the weights of the other
     * ranks' rows of a global batch) */
    int sample_weights;
    mimo_real *sw[8], *w[8];
    double others;
} fixture;

/* Targets that suit each loss: probabilities, one-hot rows, labels; a
 * head with `missing` has no label in rows 1 and 3. */
static void fill_target(mimo_rng *r, const mimo_output_spec *o, mimo_real *t,
                        int units, int tw)
{
    mimo_loss l = o->loss;
    for (int row = 0; row < BATCH; row++) {
        mimo_real *tr = t + (size_t)row * tw;
        int c = (int)mimo_rng_below(r, (uint64_t)units);
        for (int j = 0; j < tw; j++) {
            if (o->missing && (row == 1 || row == 3)) {
                tr[j] = o->missing == MIMO_MISSING_NAN ? (mimo_real)NAN
                                                       : (mimo_real)o->missing_value;
                continue;
            }
            if (l == MIMO_LOSS_BCE)
                tr[j] = mimo_rng_uniform(r);
            else if (l == MIMO_LOSS_CCE)
                tr[j] = j == c;
            else if (l == MIMO_LOSS_SPARSE_CCE)
                tr[j] = c;
            else
                tr[j] = mimo_rng_normal(r);
        }
    }
}

/* Inputs named mask* get 0/1 values with at least one 1 per row; integer
 * id inputs ids in [0, bound), repeating; those named tok* ids in
 * [1, bound) with padding (0) at the end of row 0, the start of row 1,
 * the middle of row 2, everywhere but one step of row 3, nowhere in row
 * 4; bag* inputs: row 0 a bag with a repeated id and padding, row 1 all
 * padding (id 0), the others any ids of [0, bound). */
static int padded(int row, int j, int w)
{
    switch (row) {
    case 0: return j >= w - 2;
    case 1: return j < 2;
    case 2: return j == w / 2 || j == w / 2 - 1;
    case 3: return j != w / 2;
    default: return 0;
    }
}

static void fill_input(mimo_rng *r, const char *name, mimo_real *x, int w,
                       long long bound)
{
    for (int row = 0; row < BATCH; row++)
        for (int j = 0; j < w; j++) {
            mimo_real *v = &x[(size_t)row * w + j];
            if (bound > 0 && strncmp(name, "tok", 3) == 0)
                *v = padded(row, j, w) ? 0
                                       : (mimo_real)(1 + mimo_rng_below(r, (uint64_t)bound - 1));
            else if (bound > 0 && strncmp(name, "bag", 3) == 0)
                *v = row == 0 ? (j < 2 ? 2 : j == 2 ? 3 : 0) /* repeated, padded */
                     : row == 1 ? 0                          /* all padding */
                     : (mimo_real)mimo_rng_below(r, (uint64_t)bound);
            else if (bound > 0)
                *v = (mimo_real)mimo_rng_below(r, (uint64_t)(bound < 3 ? bound : 3));
            else if (strncmp(name, "mask", 4) == 0)
                *v = j == row % w || mimo_rng_uniform(r) < 0.5;
            else
                *v = mimo_rng_normal(r);
        }
}

/* The global rows of the checked batch: dropout's masks come from them. */
static const uint64_t ROWS[BATCH] = {3, 17, 4, 250, 9};

static void setup_graph(fixture *f, const char *yaml)
{
    memset(f, 0, sizeof *f);
    int rc = mimo_config_parse(yaml, strlen(yaml), "test.yaml", NULL, 0, &f->spec);
    if (rc)
        fail_msg("config: %s", mimo_errmsg());
    rc = mimo_graph_compile(&f->spec, BATCH, 1, &f->g);
    if (rc)
        fail_msg("compile: %s", mimo_errmsg());
    mimo_graph_set_training(f->g, ROWS, 2); /* masks fixed by rows and epoch */
    f->n = mimo_graph_param_count(f->g);
    f->params = calloc(f->n + 1, sizeof(mimo_real));
    f->grads = calloc(f->n + 1, sizeof(mimo_real));
    mimo_graph_init_params(f->g, f->params, 7);
    mimo_rng r;
    mimo_rng_seed(&r, 11);
    for (size_t i = 0; i < f->n; i++) /* biases too: make them nonzero */
        f->params[i] += 0.1 * mimo_rng_normal(&r);
    for (int i = 0; i < mimo_graph_n_inputs(f->g); i++) {
        int w = mimo_graph_input_width(f->g, i);
        long long bound = 0;
        mimo_graph_input_ids(f->g, i, &bound);
        f->in[i] = calloc((size_t)BATCH * w, sizeof(mimo_real));
        fill_input(&r, mimo_graph_input_name(f->g, i), f->in[i], w, bound);
    }
    for (int h = 0; h < mimo_graph_n_heads(f->g); h++) {
        int tw = mimo_graph_head_target_width(f->g, h);
        f->tgt[h] = calloc((size_t)BATCH * tw, sizeof(mimo_real));
        fill_target(&r, mimo_graph_head_spec(f->g, h), f->tgt[h],
                    mimo_graph_head_units(f->g, h), tw);
        f->sw[h] = calloc(BATCH, sizeof(mimo_real));
        f->w[h] = calloc(BATCH, sizeof(mimo_real));
        for (int k = 0; k < BATCH; k++)
            f->sw[h][k] = k == 2 ? 0 : 0.25 + 2 * mimo_rng_uniform(&r);
    }
}

static void teardown_graph(fixture *f)
{
    for (int i = 0; i < 8; i++) {
        free(f->in[i]);
        free(f->tgt[i]);
        free(f->sw[i]);
        free(f->w[i]);
    }
    free(f->params);
    free(f->grads);
    mimo_graph_free(&f->g);
    mimo_spec_free(&f->spec);
}

/* With sample weights: sum_h weight_h * sum v loss / (sum v + others);
 * scale (may be NULL) gets the gradient scales that go with it. */
static double weighted_loss(fixture *f, double *scale)
{
    int nh = mimo_graph_n_heads(f->g);
    double sums[8], L = 0;
    mimo_head_stats st[8];
    memset(st, 0, sizeof st);
    assert_int_equal(mimo_graph_weigh(f->g, (const mimo_real *const *)f->tgt,
                                      (const mimo_real *const *)f->sw, BATCH, f->w,
                                      sums), 0);
    for (int h = 0; h < nh; h++) {
        sums[h] += f->others;
        if (scale)
            scale[h] = mimo_graph_head_spec(f->g, h)->weight / sums[h];
    }
    mimo_graph_forward(f->g, f->params, (const mimo_real *const *)f->in, BATCH);
    const mimo_real *w[8];
    for (int h = 0; h < nh; h++)
        w[h] = mimo_graph_head_weighted(f->g, h) ? f->w[h] : NULL;
    assert_int_equal(mimo_graph_loss_weighted(f->g, (const mimo_real *const *)f->tgt,
                                              w, BATCH, scale, st), 0);
    for (int h = 0; h < nh; h++)
        L += mimo_graph_head_spec(f->g, h)->weight * st[h].loss / sums[h];
    return L;
}

/* The total loss: sum_h weight_h * mean over rows of the head loss. */
static double total_loss(fixture *f)
{
    mimo_head_stats st[8];
    if (f->sample_weights)
        return weighted_loss(f, NULL);
    memset(st, 0, sizeof st);
    mimo_graph_forward(f->g, f->params, (const mimo_real *const *)f->in, BATCH);
    assert_int_equal(mimo_graph_loss(f->g, (const mimo_real *const *)f->tgt,
                                     BATCH, 0, st), 0);
    double L = 0;
    for (int h = 0; h < mimo_graph_n_heads(f->g); h++)
        L += mimo_graph_head_spec(f->g, h)->weight * st[h].loss / BATCH;
    return L;
}

static void analytic(fixture *f)
{
    memset(f->grads, 0, sizeof(mimo_real) * f->n);
    if (f->sample_weights) {
        double scale[8];
        weighted_loss(f, scale);
        mimo_graph_backward(f->g, f->params, f->grads, BATCH);
        return;
    }
    mimo_graph_forward(f->g, f->params, (const mimo_real *const *)f->in, BATCH);
    assert_int_equal(mimo_graph_loss(f->g, (const mimo_real *const *)f->tgt,
                                     BATCH, 1.0 / BATCH, NULL), 0);
    mimo_graph_backward(f->g, f->params, f->grads, BATCH);
}

/* Compares a with the central difference of total_loss in *v. */
static int compare(fixture *f, mimo_real *v, double a, const char *what,
                   size_t idx)
{
    double keep = *v;
    *v = keep + STEP;
    double lp = total_loss(f);
    *v = keep - STEP;
    double lm = total_loss(f);
    *v = keep;
    double num = (lp - lm) / (2 * STEP);
    double tol = 1e-6 + 1e-5 * fmax(fabs(num), fabs(a));
    if (fabs(num - a) > tol) {
        print_error("%s[%zu]: analytic %.10g, numeric %.10g\n", what, idx, a, num);
        return 1;
    }
    return 0;
}

/* The same graph compiled without input gradients (as training compiles
 * it: dense layers then skip the input columns nobody needs, e.g. a raw
 * input's part of a concat) must give the same parameter gradients. */
static int check_without_input_grads(fixture *f)
{
    mimo_graph *full = f->g, *lean = NULL;
    mimo_real *want = malloc(sizeof(mimo_real) * (f->n + 1));
    int bad = 0;
    memcpy(want, f->grads, sizeof(mimo_real) * f->n);
    if (mimo_graph_compile(&f->spec, BATCH, 0, &lean))
        fail_msg("compile: %s", mimo_errmsg());
    mimo_graph_set_training(lean, ROWS, 2);
    f->g = lean;
    analytic(f);
    for (size_t i = 0; i < f->n; i++)
        if (fabs(f->grads[i] - want[i]) > 1e-12 * (1 + fabs(want[i]))) {
            print_error("param[%zu] without input gradients: %.15g, with: "
                        "%.15g\n", i, f->grads[i], want[i]);
            bad++;
        }
    memcpy(f->grads, want, sizeof(mimo_real) * f->n);
    f->g = full;
    mimo_graph_free(&lean);
    free(want);
    return bad;
}

/* Every backward keeps one rule: it ADDS the gradient into grads and never
 * writes the parameters (the update is the exchange's, after backward).
 * Backward into a buffer already holding c must leave c + the gradient
 * checked here, and the parameters as forward left them (batch_norm's
 * moving statistics move in forward), bit for bit. */
static int check_adds_into_grads(fixture *f)
{
    const double c = 0.375;
    size_t nt = mimo_graph_trained_count(f->g);
    mimo_real *p = malloc(sizeof(mimo_real) * (f->n + 1));
    mimo_real *gr = malloc(sizeof(mimo_real) * (nt + 1));
    mimo_real *was = malloc(sizeof(mimo_real) * (f->n + 1));
    int bad = 0;
    assert_non_null(p);
    assert_non_null(gr);
    assert_non_null(was);
    memcpy(p, f->params, sizeof(mimo_real) * f->n);
    for (size_t i = 0; i < nt; i++)
        gr[i] = (mimo_real)c;
    mimo_graph_forward(f->g, p, (const mimo_real *const *)f->in, BATCH);
    assert_int_equal(mimo_graph_loss(f->g, (const mimo_real *const *)f->tgt,
                                     BATCH, 1.0 / BATCH, NULL), 0);
    memcpy(was, p, sizeof(mimo_real) * f->n);
    mimo_graph_backward(f->g, p, gr, BATCH);
    for (size_t i = 0; i < f->n; i++)
        if (memcmp(&p[i], &was[i], sizeof *p) != 0) {
            print_error("param[%zu] changed in backward: %.15g, was %.15g\n", i,
                        p[i], was[i]);
            bad++;
        }
    for (size_t i = 0; i < nt; i++) {
        double want = c + f->grads[i];
        if (!(fabs(gr[i] - want) <= 1e-12 * (1 + fabs(want)))) {
            print_error("grad[%zu] after backward into %g: %.15g, want %.15g\n", i,
                        c, gr[i], want);
            bad++;
        }
    }
    free(was);
    free(gr);
    free(p);
    return bad;
}

/* Checks every parameter and every input gradient of the graph in yaml.
 * Unless allow_zero, every trainable tensor must get a nonzero gradient. */
static void check_mode(const char *yaml, int allow_zero, int sample_weights)
{
    fixture f;
    setup_graph(&f, yaml);
    f.sample_weights = sample_weights;
    f.others = sample_weights ? 1.75 : 0;
    analytic(&f);
    int bad = sample_weights ? 0 : check_without_input_grads(&f) + check_adds_into_grads(&f);
    double norm = 0;
    for (size_t i = 0; i < mimo_graph_trained_count(f.g); i++) {
        bad += compare(&f, &f.params[i], f.grads[i], "param", i);
        norm += f.grads[i] * f.grads[i];
    }
    for (int i = 0; i < mimo_graph_n_inputs(f.g); i++) {
        long long bound;
        if (mimo_graph_input_ids(f.g, i, &bound))
            continue; /* integer ids have no gradient */
        const mimo_real *gx = mimo_graph_input_grad(f.g, i);
        size_t w = (size_t)mimo_graph_input_width(f.g, i);
        mimo_real *copy = malloc(sizeof(mimo_real) * BATCH * w);
        memcpy(copy, gx, sizeof(mimo_real) * BATCH * w);
        for (size_t k = 0; k < BATCH * w; k++) {
            bad += compare(&f, &f.in[i][k], copy[k], mimo_graph_input_name(f.g, i), k);
            norm += copy[k] * copy[k];
        }
        free(copy);
    }
    /* every trainable tensor must receive some gradient, but attention's
     * key_bias: it adds q_i . b_k to every score of query i's row, which
     * the softmax cancels, so its gradient is zero in exact arithmetic (in
     * Keras too); the central differences above check that it is */
    for (int t = 0; t < mimo_graph_n_tensors(f.g); t++) {
        mimo_param_info p = mimo_graph_tensor(f.g, t);
        double s = 0;
        for (size_t k = 0; k < p.size && p.trainable; k++)
            s += fabs(f.grads[p.offset + k]);
        if (p.trainable && s < 1e-12 && !allow_zero && strcmp(p.name, "key_bias") != 0) {
            print_error("tensor %s/%s has an all-zero gradient\n", p.layer, p.name);
            bad++;
        }
    }
    teardown_graph(&f);
    assert_true(norm > 1e-12);
    assert_int_equal(bad, 0);
}

static void check_opt(const char *yaml, int allow_zero) { check_mode(yaml, allow_zero, 0); }
static void check(const char *yaml) { check_opt(yaml, 0); }

/* ---- activations -------------------------------------------------------- */

static void check_dense_act(const char *act)
{
    char y[1024];
    snprintf(y, sizeof y,
             "inputs: {x: {shape: 4}}\n"
             "layers:\n"
             "  h: {type: dense, units: 3, activation: %s, from: x}\n"
             "  o: {type: dense, units: 2, from: h}\n"
             "outputs: {o: {loss: mse}}\n", act);
    check(y);
    snprintf(y, sizeof y,
             "inputs: {x: {shape: 4}}\n"
             "layers:\n"
             "  h: {type: dense, units: 3, from: x}\n"
             "  a: {type: activation, activation: %s, from: h}\n"
             "  o: {type: dense, units: 2, from: a}\n"
             "outputs: {o: {loss: mse}}\n", act);
    check(y);
}

static void test_act_linear(void **s) { (void)s; check_dense_act("linear"); }
static void test_act_relu(void **s) { (void)s; check_dense_act("relu"); }
static void test_act_leaky_relu(void **s) { (void)s; check_dense_act("leaky_relu, alpha: 0.2"); }
static void test_act_elu(void **s) { (void)s; check_dense_act("elu, alpha: 0.7"); }
static void test_act_sigmoid(void **s) { (void)s; check_dense_act("sigmoid"); }
static void test_act_tanh(void **s) { (void)s; check_dense_act("tanh"); }
static void test_act_softmax(void **s) { (void)s; check_dense_act("softmax"); }
static void test_act_softplus(void **s) { (void)s; check_dense_act("softplus"); }
static void test_act_quadratic(void **s) { (void)s; check_dense_act("quadratic"); }
static void test_act_gelu(void **s) { (void)s; check_dense_act("gelu"); check_dense_act("gelu_approximate"); }
static void test_act_swish(void **s) { (void)s; check_dense_act("swish"); check_dense_act("silu"); }
static void test_act_selu(void **s) { (void)s; check_dense_act("selu"); }
static void test_act_mish(void **s) { (void)s; check_dense_act("mish"); }
static void test_act_hard_sigmoid(void **s) { (void)s; check_dense_act("hard_sigmoid"); }

/* The new activations' values at 1 and -1.5 against float64 PyTorch
 * 1.13's (F.gelu, approximate='tanh', F.silu, F.selu, F.mish) and Keras
 * 3's hard_sigmoid, clip(x / 6 + 1/2, 0, 1). */
static void test_act_values(void **s)
{
    (void)s;
    static const struct {
        const char *act;
        double at1, at_m15;
    } want[] = {
        {"gelu", 0.84134474606854304, -0.10021080190328704},
        {"gelu_approximate", 0.84119199060827676, -0.10042842301976707},
        {"swish", 0.7310585786300049, -0.27363828570953452},
        {"silu", 0.7310585786300049, -0.27363828570953452},
        {"selu", 1.0507009873554805, -1.3658143533672527},
        {"mish", 0.86509838826731034, -0.29809974216680674},
        {"hard_sigmoid", 0.6666666666666666, 0.25},
    };
    for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
        char y[512];
        snprintf(y, sizeof y, "inputs: {x: {shape: 2}}\n"
                 "layers: {a: {type: activation, activation: %s, from: x}}\n"
                 "outputs: {a: {loss: mse}}\n", want[k].act);
        fixture f;
        setup_graph(&f, y);
        for (int r = 0; r < BATCH; r++)
            f.in[0][2 * r] = 1, f.in[0][2 * r + 1] = -1.5;
        total_loss(&f);
        const mimo_real *o = mimo_graph_output(f.g, 0);
        if (fabs(o[0] - want[k].at1) > 1e-12 || fabs(o[1] - want[k].at_m15) > 1e-12)
            fail_msg("%s: %.16g, %.16g; want %.16g, %.16g", want[k].act, o[0], o[1],
                     want[k].at1, want[k].at_m15);
        teardown_graph(&f);
    }
}

static void test_dense_no_bias(void **s)
{
    (void)s;
    check("inputs: {x: {shape: 3}}\n"
          "layers:\n"
          "  h: {type: dense, units: 4, activation: tanh, use_bias: false, from: x}\n"
          "  o: {type: dense, units: 2, use_bias: false, from: h}\n"
          "outputs: {o: {loss: mse}}\n");
}

/* A dense layer on the last axis of a (positions, features) input: every
 * position through the same kernel; a merge, a concat and a softmax on
 * the last axis of rank-2 tensors; sigmoid + BCE fused on a rank-2 head. */
static void test_dense_rank2(void **s)
{
    (void)s;
    check("inputs: {x: {shape: [3, 4]}, r: {shape: [3, 2]}}\n"
          "layers:\n"
          "  h: {type: dense, units: 2, activation: tanh, from: x}\n"
          "  g: {type: dense, units: 2, activation: elu, from: x}\n"
          "  s: {type: add, from: [h, g]}\n"
          "  c: {type: concat, from: [r, s]}\n"
          "  p: {type: activation, activation: softmax, from: c}\n"
          "  o: {type: dense, units: 2, activation: sigmoid, from: p}\n"
          "outputs: {o: {loss: binary_crossentropy}}\n");
}

/* reshape and flatten are views: their gradient is their input's; one
 * with an inferred axis, one of a concat that holds a raw input. */
static void test_reshape_flatten(void **s)
{
    (void)s;
    check("inputs: {x: {shape: [2, 3]}, r: {shape: 4}}\n"
          "layers:\n"
          "  t: {type: reshape, target_shape: [3, -1], from: x}\n"
          "  h: {type: dense, units: 2, activation: tanh, from: t}\n"
          "  f: {type: flatten, from: h}\n"
          "  c: {type: concat, from: [r, f]}\n"
          "  g: {type: flatten, from: c}\n"
          "  o: {type: dense, units: 2, from: g}\n"
          "  p: {type: reshape, target_shape: [2, 1], from: o}\n"
          "outputs: {p: {loss: mse}}\n");
}

/* ---- convolution and pooling ----------------------------------------------
 * Odd sizes, strides 1 and 2, both paddings (same with stride 2 pads
 * asymmetrically: the extra row and column at the bottom and right), 1 to
 * 3 input channels, with and without bias, on raw inputs (the input
 * gradient through col2im is checked too) and after trainable layers. */

static void test_conv2d_same_stride2(void **s)
{
    (void)s;
    /* 5x7: out ceil(5/2) x ceil(7/2) = 3x4; padding 3x3: total 2 rows (1,
     * 1), 2 columns (1, 1); 3x2: total 1 row (0, 1), 1 column (0, 1) */
    check("inputs: {x: {shape: [5, 7, 2]}}\n"
          "layers:\n"
          "  c: {type: conv2d, filters: 3, kernel_size: 3, strides: 2, padding: same, activation: tanh, from: x}\n"
          "  d: {type: conv2d, filters: 2, kernel_size: [3, 2], strides: 2, padding: same, from: c}\n"
          "  f: {type: flatten, from: d}\n"
          "  o: {type: dense, units: 2, from: f}\n"
          "outputs: {o: {loss: mse}}\n");
}

static void test_conv2d_valid_no_bias(void **s)
{
    (void)s;
    check("inputs: {x: {shape: [6, 5, 3]}}\n"
          "layers:\n"
          "  c: {type: conv2d, filters: 4, kernel_size: [3, 2], strides: [2, 1], use_bias: false, activation: elu, from: x}\n"
          "  d: {type: conv2d, filters: 2, kernel_size: 2, padding: valid, use_bias: false, activation: sigmoid, from: c}\n"
          "  f: {type: flatten, from: d}\n"
          "  o: {type: dense, units: 3, activation: softmax, from: f}\n"
          "outputs: {o: {loss: categorical_crossentropy}}\n");
}

/* 1x1 kernels read the input itself (no patches), one after a reshape of
 * a dense layer (its gradient flows into a view), a conv2d head fused
 * with binary cross-entropy, and a kernel as large as the input. */
static void test_conv2d_1x1_and_head(void **s)
{
    (void)s;
    check("inputs: {x: {shape: 6}, im: {shape: [3, 3, 2]}}\n"
          "layers:\n"
          "  h: {type: dense, units: 12, activation: tanh, from: x}\n"
          "  r: {type: reshape, target_shape: [2, 2, 3], from: h}\n"
          "  a: {type: conv2d, filters: 2, kernel_size: 1, activation: relu, from: r}\n"
          "  b: {type: conv2d, filters: 3, kernel_size: 1, strides: 2, from: im}\n"
          "  c: {type: conv2d, filters: 2, kernel_size: 2, padding: same, from: b}\n"
          "  o: {type: conv2d, filters: 2, kernel_size: 1, activation: sigmoid, from: a}\n"
          "  big: {type: conv2d, filters: 1, kernel_size: 3, from: im}\n"
          "  m: {type: concat, from: [c, o]}\n"
          "  q: {type: flatten, from: m}\n"
          "  z: {type: flatten, from: big}\n"
          "  out: {type: dense, units: 1, from: q}\n"
          "outputs:\n"
          "  o: {loss: binary_crossentropy}\n"
          "  out: {loss: mse, weight: 0.5}\n"
          "  z: {loss: mae, weight: 0.3}\n");
}

static void test_max_pool2d(void **s)
{
    (void)s;
    /* overlapping windows (3x3 stride 1), then same with stride 2 (odd
     * 5x4 input: the padding is never the maximum) */
    check("inputs: {x: {shape: [7, 6, 2]}}\n"
          "layers:\n"
          "  c: {type: conv2d, filters: 2, kernel_size: 2, activation: tanh, from: x}\n"
          "  p: {type: max_pool2d, pool_size: 3, strides: 1, from: c}\n"
          "  q: {type: max_pool2d, pool_size: [2, 3], strides: 2, padding: same, from: x}\n"
          "  f: {type: flatten, from: p}\n"
          "  g: {type: flatten, from: q}\n"
          "  c2: {type: concat, from: [f, g]}\n"
          "  o: {type: dense, units: 2, from: c2}\n"
          "outputs: {o: {loss: mse}}\n");
}

static void test_avg_pool2d(void **s)
{
    (void)s;
    /* same with stride 2 on 5x5: windows at the edge average fewer inputs */
    check("inputs: {x: {shape: [5, 5, 3]}}\n"
          "layers:\n"
          "  c: {type: conv2d, filters: 2, kernel_size: 1, activation: tanh, from: x}\n"
          "  p: {type: avg_pool2d, pool_size: 2, padding: same, from: c}\n"
          "  q: {type: avg_pool2d, pool_size: [3, 2], strides: [1, 2], from: x}\n"
          "  f: {type: flatten, from: p}\n"
          "  g: {type: flatten, from: q}\n"
          "  c2: {type: concat, from: [f, g]}\n"
          "  o: {type: dense, units: 2, from: c2}\n"
          "outputs: {o: {loss: mse}}\n");
}

static void test_global_pool2d(void **s)
{
    (void)s;
    check("inputs: {x: {shape: [4, 3, 2]}}\n"
          "layers:\n"
          "  c: {type: conv2d, filters: 3, kernel_size: 2, padding: same, activation: tanh, from: x}\n"
          "  a: {type: global_avg_pool2d, from: c}\n"
          "  m: {type: global_max_pool2d, from: c}\n"
          "  k: {type: global_max_pool2d, keepdims: true, from: x}\n"
          "  f: {type: flatten, from: k}\n"
          "  cat: {type: concat, from: [a, m, f]}\n"
          "  o: {type: dense, units: 2, from: cat}\n"
          "outputs: {o: {loss: mse}}\n");
}

/* The image + features network, shrunk: conv, max and average
 * pooling, global pooling and a dense branch on the features, merged. */
static void test_graph_conv_branches(void **s)
{
    (void)s;
    check("inputs:\n  image: {shape: [6, 6, 1]}\n  pooled: {shape: 4}\n"
          "layers:\n"
          "  c1: {type: conv2d, filters: 3, kernel_size: 3, padding: same, activation: relu, from: image}\n"
          "  p1: {type: max_pool2d, pool_size: 2, from: c1}\n"
          "  c2: {type: conv2d, filters: 4, kernel_size: [2, 2], padding: valid, activation: relu, from: p1}\n"
          "  p2: {type: avg_pool2d, pool_size: 2, from: c2}\n"
          "  g:  {type: global_avg_pool2d, from: c2}\n"
          "  f:  {type: flatten, from: p2}\n"
          "  feat: {type: dense, units: 3, activation: relu, from: pooled}\n"
          "  cat: {type: concat, from: [f, g, feat]}\n"
          "  label: {type: dense, units: 3, activation: softmax, from: cat}\n"
          "outputs: {label: {loss: sparse_categorical_crossentropy}}\n");
}

/* conv2d with shared and frozen parameters: a kernel used twice gets the
 * sum of both uses' gradients; a frozen one (trainable: false) passes the
 * gradient to the layers below but gets none itself: backward writes
 * nothing past the trained parameters' gradients (a buffer of just those,
 * checked by the sanitizers) and no parameter (the direct 1x1 path, and
 * im2col with and without an input gradient). */
static void test_conv2d_shared_frozen(void **s)
{
    (void)s;
    check("inputs: {x: {shape: [5, 4, 2]}}\n"
          "layers:\n"
          "  k: {type: conv2d, filters: 2, kernel_size: 2, padding: same, activation: tanh, from: x}\n"
          "  t: {type: conv2d, shares: k, from: k}\n"
          "  z: {type: conv2d, filters: 3, kernel_size: [2, 3], trainable: false, from: t}\n"
          "  f: {type: flatten, from: z}\n"
          "  o: {type: dense, units: 2, from: f}\n"
          "outputs: {o: {loss: mse}}\n");
    const char *y = "inputs: {x: {shape: [5, 4, 2]}}\n"
                    "layers:\n"
                    "  r: {type: conv2d, filters: 2, kernel_size: 3, trainable: false, from: x}\n"
                    "  c: {type: conv2d, filters: 3, kernel_size: 3, strides: 2, padding: same, activation: tanh, from: x}\n"
                    "  z: {type: conv2d, filters: 2, kernel_size: 2, trainable: false, from: c}\n"
                    "  w: {type: conv2d, filters: 2, kernel_size: 1, trainable: false, activation: elu, from: z}\n"
                    "  f: {type: flatten, from: w}\n"
                    "  g: {type: flatten, from: r}\n"
                    "  m: {type: concat, from: [f, g]}\n"
                    "  o: {type: dense, units: 2, from: m}\n"
                    "outputs: {o: {loss: mse}}\n";
    check(y);
    fixture f;
    setup_graph(&f, y);
    size_t nt = mimo_graph_trained_count(f.g);
    assert_true(nt < f.n);
    analytic(&f);
    for (size_t i = nt; i < f.n; i++)
        assert_true(f.grads[i] == 0);
    mimo_real *p = malloc(sizeof(mimo_real) * (f.n + 1));
    mimo_real *gr = calloc(nt + 1, sizeof(mimo_real));
    memcpy(p, f.params, sizeof(mimo_real) * f.n);
    mimo_graph_forward(f.g, p, (const mimo_real *const *)f.in, BATCH);
    assert_int_equal(mimo_graph_loss(f.g, (const mimo_real *const *)f.tgt, BATCH,
                                     1.0 / BATCH, NULL), 0);
    mimo_graph_backward(f.g, p, gr, BATCH); /* grads holds the trained only */
    for (size_t i = 0; i < f.n; i++)
        assert_true(p[i] == f.params[i]);
    free(gr);
    free(p);
    teardown_graph(&f);
}

/* ---- sequences: conv1d and 1-D pooling ----------------------------------
 * (timesteps, features) inputs: same (asymmetric with stride 2), valid,
 * causal (only the past: the left padding), dilated, a kernel as long as
 * the sequence, a 1-tap kernel (no patches); pools with and without
 * padding, and the global pools. */

static void test_conv1d(void **s)
{
    (void)s;
    check("inputs: {x: {shape: [7, 3]}}\n"
          "layers:\n"
          "  a: {type: conv1d, filters: 4, kernel_size: 3, strides: 2, padding: same, activation: tanh, from: x}\n"
          "  b: {type: conv1d, filters: 2, kernel_size: 2, padding: valid, use_bias: false, from: a}\n"
          "  c: {type: conv1d, filters: 3, kernel_size: 3, padding: causal, dilation_rate: 2, activation: elu, from: x}\n"
          "  d: {type: conv1d, filters: 2, kernel_size: 4, padding: causal, strides: 2, from: c}\n"
          "  e: {type: conv1d, filters: 2, kernel_size: 7, from: x}\n"
          "  f: {type: conv1d, filters: 3, kernel_size: [1], activation: sigmoid, from: c}\n"
          "  g: {type: conv1d, filters: 2, kernel_size: 2, dilation_rate: 3, padding: same, from: f}\n"
          "  fb: {type: flatten, from: b}\n"
          "  fd: {type: flatten, from: d}\n"
          "  fe: {type: flatten, from: e}\n"
          "  fg: {type: flatten, from: g}\n"
          "  cat: {type: concat, from: [fb, fd, fe, fg]}\n"
          "  o: {type: dense, units: 2, from: cat}\n"
          "outputs: {o: {loss: mse}}\n");
}

/* causal: output t depends on inputs up to t only (checked on values:
 * changing the last timestep changes only the last output) */
static void test_conv1d_causal_values(void **s)
{
    (void)s;
    fixture f;
    setup_graph(&f, "inputs: {x: {shape: [6, 2]}}\n"
                    "layers:\n"
                    "  c: {type: conv1d, filters: 2, kernel_size: 3, dilation_rate: 2, padding: causal, from: x}\n"
                    "outputs: {c: {loss: mse}}\n");
    total_loss(&f);
    double before[BATCH * 12];
    memcpy(before, mimo_graph_output(f.g, 0), sizeof before);
    f.in[0][2 * 12 + 5 * 2 + 1] += 3; /* sample 2, t = 5 */
    f.in[0][4 * 12 + 3 * 2 + 0] += 3; /* sample 4, t = 3: outputs 3 and 5 */
    total_loss(&f);
    const mimo_real *y = mimo_graph_output(f.g, 0);
    for (int r = 0; r < BATCH; r++)
        for (int t = 0; t < 6; t++)
            for (int c = 0; c < 2; c++) {
                int i = r * 12 + t * 2 + c;
                int moved = (r == 2 && t == 5) || (r == 4 && (t == 3 || t == 5));
                assert_true(moved ? y[i] != before[i] : y[i] == before[i]);
            }
    teardown_graph(&f);
}

static void test_pool1d(void **s)
{
    (void)s;
    check("inputs: {x: {shape: [7, 2]}}\n"
          "layers:\n"
          "  c: {type: conv1d, filters: 3, kernel_size: 2, activation: tanh, from: x}\n"
          "  p: {type: max_pool1d, pool_size: 3, strides: 1, from: c}\n"
          "  q: {type: max_pool1d, pool_size: 2, padding: same, from: x}\n"
          "  a: {type: avg_pool1d, pool_size: 2, padding: same, from: c}\n"
          "  v: {type: avg_pool1d, pool_size: 3, strides: 2, from: x}\n"
          "  ga: {type: global_avg_pool1d, from: c}\n"
          "  gm: {type: global_max_pool1d, from: c}\n"
          "  gk: {type: global_max_pool1d, keepdims: true, from: x}\n"
          "  f1: {type: flatten, from: p}\n"
          "  f2: {type: flatten, from: q}\n"
          "  f3: {type: flatten, from: a}\n"
          "  f4: {type: flatten, from: v}\n"
          "  f5: {type: flatten, from: gk}\n"
          "  cat: {type: concat, from: [f1, f2, f3, f4, ga, gm, f5]}\n"
          "  o: {type: dense, units: 2, from: cat}\n"
          "outputs: {o: {loss: mse}}\n");
}

/* ---- recurrent layers ------------------------------------------------------
 * gru and lstm, the last state and every step's, forwards and backwards,
 * other activations, without bias, stacked, on a raw input (its gradient
 * through the reordered steps) and after a conv1d. */

static void test_gru(void **s)
{
    (void)s;
    check("inputs: {x: {shape: [5, 3]}}\n"
          "layers:\n"
          "  a: {type: gru, units: 4, return_sequences: true, from: x}\n"
          "  b: {type: gru, units: 3, go_backwards: true, from: a}\n"
          "  c: {type: gru, units: 2, return_sequences: true, go_backwards: true, activation: elu, recurrent_activation: tanh, use_bias: false, from: x}\n"
          "  f: {type: flatten, from: c}\n"
          "  cat: {type: concat, from: [b, f]}\n"
          "  o: {type: dense, units: 2, from: cat}\n"
          "outputs: {o: {loss: mse}}\n");
}

/* a gru shared by two sequences (the kernels' gradients add up), a frozen
 * lstm (no gradient of its own, its input's still) */
static void test_rnn_shared_frozen(void **s)
{
    (void)s;
    check("inputs: {x: {shape: [4, 3]}, v: {shape: [4, 3]}}\n"
          "layers:\n"
          "  a: {type: gru, units: 3, return_sequences: true, from: x}\n"
          "  b: {type: gru, shares: a, from: v}\n"
          "  f: {type: lstm, units: 2, trainable: false, from: a}\n"
          "  g: {type: flatten, from: b}\n"
          "  cat: {type: concat, from: [f, g]}\n"
          "  o: {type: dense, units: 2, from: cat}\n"
          "outputs: {o: {loss: mse}}\n");
}

static void test_lstm(void **s)
{
    (void)s;
    check("inputs: {x: {shape: [6, 2]}}\n"
          "layers:\n"
          "  k: {type: conv1d, filters: 3, kernel_size: 2, padding: causal, activation: tanh, from: x}\n"
          "  a: {type: lstm, units: 4, return_sequences: true, go_backwards: true, from: k}\n"
          "  b: {type: lstm, units: 3, from: a}\n"
          "  c: {type: lstm, units: 2, return_sequences: true, activation: softplus, recurrent_activation: tanh, unit_forget_bias: false, from: x}\n"
          "  d: {type: lstm, units: 2, use_bias: false, go_backwards: true, from: x}\n"
          "  f: {type: flatten, from: c}\n"
          "  cat: {type: concat, from: [b, f, d]}\n"
          "  o: {type: dense, units: 2, from: cat}\n"
          "outputs: {o: {loss: mse}}\n");
}

/* Keras' defaults: the recurrent kernel (u, 3u) orthogonal (W W^T = I),
 * the forget gate's bias 1 (unit_forget_bias), the rest of the bias 0; a
 * tall dense kernel with orthogonal_initializer: W^T W = I. */
static void test_rnn_init(void **s)
{
    (void)s;
    const char *yaml = "inputs: {x: {shape: [4, 3]}}\n"
                       "layers:\n"
                       "  g: {type: gru, units: 5, from: x}\n"
                       "  l: {type: lstm, units: 2, from: x}\n"
                       "  c: {type: concat, from: [g, l]}\n"
                       "  o: {type: dense, units: 3, kernel_initializer: orthogonal, from: c}\n"
                       "outputs: {o: {loss: mse}}\n";
    mimo_spec spec;
    mimo_graph *g = NULL;
    assert_int_equal(mimo_config_parse(yaml, strlen(yaml), "i.yaml", NULL, 0, &spec), 0);
    assert_int_equal(mimo_graph_compile(&spec, 2, 0, &g), 0);
    mimo_real *p = calloc(mimo_graph_param_count(g), sizeof *p);
    mimo_graph_init_params(g, p, 3);
    for (int t = 0; t < mimo_graph_n_tensors(g); t++) {
        mimo_param_info i = mimo_graph_tensor(g, t);
        const mimo_real *w = p + i.offset;
        int rows = i.shape.dim[0], cols = i.shape.rank > 1 ? i.shape.dim[1] : 1;
        if (strcmp(i.name, "recurrent_kernel") == 0 || strcmp(i.layer, "o") == 0) {
            if (strcmp(i.name, "bias") == 0)
                continue;
            int wide = rows < cols, n = wide ? rows : cols, m = wide ? cols : rows;
            for (int a = 0; a < n; a++) /* the products of rows (wide) or columns */
                for (int b = 0; b < n; b++) {
                    double d = 0;
                    for (int k = 0; k < m; k++)
                        d += wide ? w[a * cols + k] * w[b * cols + k]
                                  : w[k * cols + a] * w[k * cols + b];
                    if (fabs(d - (a == b)) > 1e-9)
                        fail_msg("%s/%s: product (%d, %d) = %g", i.layer, i.name, a, b, d);
                }
        }
        if (strcmp(i.name, "bias") == 0 && strcmp(i.layer, "l") == 0)
            for (size_t k = 0; k < i.size; k++)
                assert_true(w[k] == (k >= 2 && k < 4 ? 1 : 0));
    }
    free(p);
    mimo_graph_free(&g);
    mimo_spec_free(&spec);
}

/* ---- masks ---------------------------------------------------------------
 * An embedding with mask_zero (tok: padding at the end, the start, the
 * middle, all but one step, none) through dropout, dense, activation,
 * layer_norm and conv1d (same, causal) into gru and lstm (every step's
 * output and the last, forwards and backwards) and the global pools. */

static void test_mask_recurrent(void **s)
{
    (void)s;
    check("inputs: {tok: {shape: 6, dtype: int32}}\n"
          "layers:\n"
          "  e: {type: embedding, input_dim: 7, output_dim: 3, mask_zero: true, from: tok}\n"
          "  d: {type: dropout, rate: 0.3, from: e}\n"
          "  g: {type: gru, units: 3, return_sequences: true, from: d}\n"
          "  l: {type: lstm, units: 2, go_backwards: true, from: g}\n"
          "  b: {type: gru, units: 2, return_sequences: true, go_backwards: true, from: e}\n"
          "  m: {type: lstm, units: 2, from: b}\n"
          "  h: {type: gru, units: 2, go_backwards: true, from: e}\n"
          "  cat: {type: concat, from: [l, m, h]}\n"
          "  o: {type: dense, units: 2, from: cat}\n"
          "outputs: {o: {loss: mse}}\n");
}

/* zero_output_for_mask: a masked step's output is zero, the state carries
 * over. conv1d (same) reads the zeros into its unmasked neighbours; the
 * last output (no return_sequences) is zero where the last step is
 * padding (tok row 0, forwards; row 1 backwards), as Keras. */
static void test_mask_zero_output(void **s)
{
    (void)s;
    check("inputs: {tok: {shape: 6, dtype: int32}}\n"
          "layers:\n"
          "  e: {type: embedding, input_dim: 7, output_dim: 3, mask_zero: true, from: tok}\n"
          "  g: {type: gru, units: 3, return_sequences: true, zero_output_for_mask: true, from: e}\n"
          "  c: {type: conv1d, filters: 2, kernel_size: 3, padding: same, from: g}\n"
          "  l: {type: lstm, units: 2, return_sequences: true, go_backwards: true, zero_output_for_mask: true, from: e}\n"
          "  k: {type: conv1d, filters: 2, kernel_size: 2, padding: causal, from: l}\n"
          "  pc: {type: global_avg_pool1d, from: c}\n"
          "  pk: {type: global_max_pool1d, from: k}\n"
          "  h: {type: gru, units: 2, zero_output_for_mask: true, from: e}\n"
          "  m: {type: lstm, units: 2, go_backwards: true, zero_output_for_mask: true, from: e}\n"
          "  cat: {type: concat, from: [pc, pk, h, m]}\n"
          "  o: {type: dense, units: 2, from: cat}\n"
          "outputs: {o: {loss: mse}}\n");
}

/* bidirectional around gru and lstm: every merge mode, every step's
 * output (the backward copy's reversed to time order) and the last, the
 * wrapped layer going backwards itself; masked (tok: padding anywhere,
 * all but one step; conv1d reads the zeros of masked steps) and on a raw
 * sequence (the input's gradient from both copies); shared layers. */
static void test_bidirectional_masked(void **s)
{
    (void)s;
    check("inputs: {tok: {shape: 6, dtype: int32}}\n"
          "layers:\n"
          "  e: {type: embedding, input_dim: 7, output_dim: 3, mask_zero: true, from: tok}\n"
          "  a: {type: bidirectional, layer: {type: gru, units: 3, return_sequences: true}, from: e}\n"
          "  c: {type: conv1d, filters: 2, kernel_size: 3, padding: same, from: a}\n"
          "  pc: {type: global_avg_pool1d, from: c}\n"
          "  b: {type: bidirectional, layer: {type: lstm, units: 2}, merge_mode: mul, from: e}\n"
          "  g: {type: bidirectional, layer: {type: gru, units: 2, return_sequences: true, go_backwards: true}, merge_mode: sum, from: e}\n"
          "  pg: {type: global_max_pool1d, from: g}\n"
          "  l: {type: Bidirectional, layer: {type: LSTM, units: 2, return_sequences: true}, merge_mode: ave, from: a}\n"
          "  pl: {type: global_avg_pool1d, from: l}\n"
          "  cat: {type: concat, from: [pc, b, pg, pl]}\n"
          "  o: {type: dense, units: 2, from: cat}\n"
          "outputs: {o: {loss: mse}}\n");
}

static void test_bidirectional(void **s)
{
    (void)s;
    check("inputs: {x: {shape: [5, 3]}}\n"
          "layers:\n"
          "  a: {type: bidirectional, layer: {type: gru, units: 3, return_sequences: true, use_bias: false}, merge_mode: ave, from: x}\n"
          "  b: {type: bidirectional, layer: {type: lstm, units: 2, activation: softplus}, from: a}\n"
          "  m: {type: bidirectional, layer: {type: gru, units: 2}, merge_mode: mul, from: x}\n"
          "  f: {type: flatten, from: a}\n"
          "  cat: {type: concat, from: [b, m, f]}\n"
          "  o: {type: dense, units: 2, from: cat}\n"
          "outputs: {o: {loss: mse}}\n");    /* shared (the gradients of both uses add up) */
    check("inputs: {x: {shape: [4, 3]}, v: {shape: [4, 3]}}\n"
          "layers:\n"
          "  a: {type: bidirectional, layer: {type: lstm, units: 2}, merge_mode: sum, from: x}\n"
          "  b: {type: bidirectional, shares: a, from: v}\n"
          "  p: {type: position_embedding, sequence_length: 5, from: x}\n"
          "  q: {type: position_embedding, shares: p, from: v}\n"
          "  g: {type: gru, units: 2, from: p}\n"
          "  h: {type: gru, shares: g, from: q}\n"
          "  cat: {type: concat, from: [a, b, g, h]}\n"
          "  o: {type: dense, units: 2, from: cat}\n"
          "outputs: {o: {loss: mse}}\n");
}

/* position_embedding: the table's first T rows (its later rows get no
 * gradient), added to the sequence; masked (the mask passes on) and not */
static void test_position_embedding(void **s)
{
    (void)s;
    check("inputs: {x: {shape: [4, 3]}, tok: {shape: 5, dtype: int32}}\n"
          "layers:\n"
          "  p: {type: position_embedding, sequence_length: 6, from: x}\n"
          "  a: {type: add, from: [x, p]}\n"
          "  g: {type: gru, units: 2, from: a}\n"
          "  e: {type: embedding, input_dim: 7, output_dim: 2, mask_zero: true, from: tok}\n"
          "  q: {type: PositionEmbedding, sequence_length: 5, initializer: {type: uniform, min: -0.5, max: 0.5}, from: e}\n"
          "  l: {type: lstm, units: 2, from: q}\n"
          "  m: {type: gru, units: 2, from: e}\n"
          "  cat: {type: concat, from: [g, l, m]}\n"
          "  o: {type: dense, units: 2, from: cat}\n"
          "outputs: {o: {loss: mse}}\n");
}

static void test_mask_pools(void **s)
{
    (void)s;
    check("inputs: {tok: {shape: 6, dtype: int32}}\n"
          "layers:\n"
          "  e: {type: embedding, input_dim: 7, output_dim: 3, mask_zero: true, from: tok}\n"
          "  h: {type: dense, units: 4, activation: tanh, from: e}\n"
          "  a: {type: activation, activation: elu, from: h}\n"
          "  n: {type: layer_norm, from: a}\n"
          "  c: {type: conv1d, filters: 3, kernel_size: 3, padding: same, from: n}\n"
          "  k: {type: conv1d, filters: 2, kernel_size: 2, padding: causal, dilation_rate: 2, from: c}\n"
          "  ga: {type: global_avg_pool1d, from: k}\n"
          "  gm: {type: global_max_pool1d, from: c}\n"
          "  l: {type: lstm, units: 2, return_sequences: true, go_backwards: true, from: c}\n"
          "  gl: {type: global_avg_pool1d, from: l}\n"
          "  cat: {type: concat, from: [ga, gm, gl]}\n"
          "  o: {type: dense, units: 2, from: cat}\n"
          "outputs: {o: {loss: mse}}\n");
}

/* The values: a masked step changes nothing (the ids there may be
 * anything), an unmasked one does; masked positions are left out of the
 * pools; lstm's every-step output repeats the state over masked steps. */
static void test_mask_values(void **s)
{
    (void)s;
    fixture f;
    setup_graph(&f, "inputs: {tok: {shape: 6, dtype: int32}}\n"
                    "layers:\n"
                    "  e: {type: embedding, input_dim: 7, output_dim: 3, mask_zero: true, from: tok}\n"
                    "  g: {type: gru, units: 3, from: e}\n"
                    "  l: {type: lstm, units: 2, return_sequences: true, from: e}\n"
                    "  p: {type: global_avg_pool1d, from: e}\n"
                    "  q: {type: global_max_pool1d, from: e}\n"
                    "  fl: {type: global_max_pool1d, from: l}\n"
                    "  cat: {type: concat, from: [g, p, q, fl]}\n"
                    "  o: {type: dense, units: 2, from: cat}\n"
                    "outputs: {o: {loss: mse}}\n");
    double base = total_loss(&f);
    /* the embedding row of id 0 is what masked steps read: moving it must
     * change nothing, moving another must */
    mimo_param_info e = mimo_graph_tensor(f.g, 0);
    assert_string_equal(e.name, "embeddings");
    for (int j = 0; j < 3; j++)
        f.params[e.offset + j] += 0.5;
    assert_true(total_loss(&f) == base);
    for (int j = 3; j < 21; j++) /* ids 1 to 6 */
        f.params[e.offset + j] += 0.5;
    assert_true(total_loss(&f) != base);
    teardown_graph(&f);
}

/* ---- multi_head_attention ------------------------------------------------
 * Self-attention (query = value) causal, with dropout on the weights (a
 * fixed draw: rows and epoch are fixed) and masked keys (tok: padding at
 * the end, the start, the middle, all but one step, none); cross
 * attention with a separate key (its mask and the value's both apply),
 * value_dim and output_shape of their own; without biases; the query's
 * mask passed on into a gru. */

static void test_attention_self(void **s)
{
    (void)s;
    check("inputs: {tok: {shape: 6, dtype: int32}, x: {shape: [4, 3]}}\n"
          "layers:\n"
          "  e: {type: embedding, input_dim: 7, output_dim: 4, mask_zero: true, from: tok}\n"
          "  a: {type: multi_head_attention, num_heads: 2, key_dim: 3, use_causal_mask: true, dropout: 0.3, from: [e, e]}\n"
          "  g: {type: gru, units: 3, from: a}\n"
          "  s: {type: MultiHeadAttention, num_heads: 1, key_dim: 2, from: [x, x]}\n"
          "  f: {type: flatten, from: s}\n"
          "  cat: {type: concat, from: [g, f]}\n"
          "  o: {type: dense, units: 2, from: cat}\n"
          "outputs: {o: {loss: mse}}\n");
}

static void test_attention_cross(void **s)
{
    (void)s;
    check("inputs: {tok: {shape: 5, dtype: int32}, q: {shape: [3, 2]}, v: {shape: [5, 3]}}\n"
          "layers:\n"
          "  e: {type: embedding, input_dim: 7, output_dim: 3, mask_zero: true, from: tok}\n"
          "  h: {type: dense, units: 3, activation: tanh, from: e}\n"
          "  a: {type: multi_head_attention, num_heads: 3, key_dim: 2, value_dim: 3, output_shape: 4, from: [q, v, h]}\n"
          "  b: {type: multi_head_attention, num_heads: 2, key_dim: 2, use_bias: false, use_causal_mask: true, from: [q, e]}\n"
          "  c: {type: multi_head_attention, num_heads: 2, key_dim: 2, from: [e, v]}\n"
          "  fa: {type: flatten, from: a}\n"
          "  fb: {type: flatten, from: b}\n"
          "  gc: {type: global_avg_pool1d, from: c}\n"
          "  cat: {type: concat, from: [fa, fb, gc]}\n"
          "  o: {type: dense, units: 2, from: cat}\n"
          "outputs: {o: {loss: mse}}\n");
}

/* The values: a masked key step (its id may be anything) changes
 * nothing of the output, an unmasked one does; the causal layer's first
 * query step does not see the later steps. */
static void test_attention_values(void **s)
{
    (void)s;
    fixture f;
    setup_graph(&f, "inputs: {tok: {shape: 6, dtype: int32}, q: {shape: [2, 3]}}\n"
                    "layers:\n"
                    "  e: {type: embedding, input_dim: 7, output_dim: 3, mask_zero: true, from: tok}\n"
                    "  a: {type: multi_head_attention, num_heads: 2, key_dim: 2, from: [q, e]}\n"
                    "  o: {type: flatten, from: a}\n"
                    "outputs: {o: {loss: mse}}\n");
    double base = total_loss(&f);
    mimo_param_info e = mimo_graph_tensor(f.g, 0);
    assert_string_equal(e.name, "embeddings");
    for (int j = 0; j < 3; j++) /* id 0: what masked steps read */
        f.params[e.offset + j] += 0.5;
    assert_true(total_loss(&f) == base);
    for (int j = 3; j < 21; j++)
        f.params[e.offset + j] += 0.5;
    assert_true(total_loss(&f) != base);
    teardown_graph(&f);
}

/* ---- the layers of real multi-input models ------------------------------ */

/* Ids repeated in the batch: their rows' gradients add up. */
static void test_embedding(void **s)
{
    (void)s;
    check("inputs: {ids: {shape: 3, dtype: int32}, x: {shape: 2}}\n"
          "layers:\n"
          "  e: {type: embedding, input_dim: 4, output_dim: 3, from: ids}\n"
          "  f: {type: flatten, from: e}\n"
          "  h: {type: dense, units: 2, activation: tanh, from: x}\n"
          "  c: {type: concat, from: [f, h]}\n"
          "  o: {type: dense, units: 2, from: c}\n"
          "outputs: {o: {loss: mse}}\n");
}

/* Bags of ids pooled by combiner (and weights from a layer: their
 * gradient checked too); the second bag is all padding. */
static void check_bag(const char *combiner, int weights, int mask_zero)
{
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "inputs: {bag: {shape: 4, dtype: int32}, x: {shape: 2}}\n"
             "layers:\n"
             "%s"
             "  e: {type: embedding_bag, input_dim: 5, output_dim: 3, combiner: %s,"
             " mask_zero: %s, from: %s}\n"
             "  h: {type: dense, units: 2, activation: tanh, from: x}\n"
             "  c: {type: concat, from: [e, h]}\n"
             "  o: {type: dense, units: 2, from: c}\n"
             "outputs: {o: {loss: mse}}\n",
             weights ? "  w: {type: dense, units: 4, activation: sigmoid, from: x}\n" : "",
             combiner, mask_zero ? "true" : "false", weights ? "[bag, w]" : "bag");
    check(yaml);
}

static void test_embedding_bag_sum(void **s) { (void)s; check_bag("sum", 0, 1); }
static void test_embedding_bag_mean(void **s) { (void)s; check_bag("mean", 0, 1); }
static void test_embedding_bag_max(void **s) { (void)s; check_bag("max", 0, 1); }
static void test_embedding_bag_sum_weights(void **s) { (void)s; check_bag("sum", 1, 1); }
static void test_embedding_bag_mean_weights(void **s) { (void)s; check_bag("mean", 1, 1); }
static void test_embedding_bag_no_mask(void **s)
{
    (void)s;
    check_bag("mean", 1, 0);
    check_bag("max", 0, 0);
}

/* A mixture of experts (MMoE's block): three experts stacked, a gate
 * of softmax weights, their weighted sum; both inputs of weighted_sum and
 * every expert get gradients. */
static void test_mixture(void **s)
{
    (void)s;
    check("inputs: {x: {shape: 4}}\n"
          "layers:\n"
          "  e1: {type: dense, units: 3, activation: tanh, from: x}\n"
          "  e2: {type: dense, units: 3, activation: tanh, from: x}\n"
          "  e3: {type: dense, units: 3, activation: relu, from: x}\n"
          "  st: {type: stack, from: [e1, e2, e3]}\n"
          "  gl: {type: dense, units: 3, from: x}\n"
          "  g:  {type: softmax, from: gl}\n"
          "  m:  {type: weighted_sum, from: [st, g]}\n"
          "  o:  {type: dense, units: 2, from: m}\n"
          "outputs: {o: {loss: mse}}\n");
}

/* stack with a raw input first and last (its slices routed right) */
static void test_stack_raw(void **s)
{
    (void)s;
    check("inputs: {x: {shape: 3}, z: {shape: 3}}\n"
          "layers:\n"
          "  h:  {type: dense, units: 3, activation: tanh, from: z}\n"
          "  a:  {type: stack, from: [x, h]}\n"
          "  b:  {type: stack, from: [h, x, h]}\n"
          "  fa: {type: flatten, from: a}\n"
          "  fb: {type: flatten, from: b}\n"
          "  c:  {type: concat, from: [fa, fb]}\n"
          "  o:  {type: dense, units: 2, from: c}\n"
          "outputs: {o: {loss: mse}}\n");
}

/* dot (Keras' Dot) in each geometry: (k, d)·(d) over [2, 1]; (T, d)·(S,
 * d) over 2, plain and cosine (normalize); over the first axis of both,
 * (3, 4)·(3, 2) -> (4, 2); the middle axis of (2, 3, 4) with (3); and
 * (d)·(d) -> (1) cosine, the same input on both sides. */
static void test_dot(void **s)
{
    (void)s;
    check("inputs: {x: {shape: [3, 4]}, q: {shape: 4}, z: {shape: [5, 4]},\n"
          "         w: {shape: [2, 3, 4]}, r: {shape: 3}, v: {shape: 4}}\n"
          "layers:\n"
          "  h:  {type: dense, units: 4, activation: tanh, from: x}\n"
          "  k:  {type: dense, units: 2, from: x}\n"
          "  a:  {type: dot, axes: [2, 1], from: [h, q]}\n"
          "  b:  {type: Dot, axes: 2, from: [h, z]}\n"
          "  c:  {type: dot, axes: -1, normalize: true, from: [h, z]}\n"
          "  m:  {type: dot, axes: 1, from: [h, k]}\n"
          "  t:  {type: dot, axes: [2, -1], from: [w, r]}\n"
          "  u:  {type: dot, axes: 1, normalize: true, from: [q, v]}\n"
          "  uu: {type: dot, axes: 1, from: [v, v]}\n"
          "  fb: {type: flatten, from: b}\n"
          "  fc: {type: flatten, from: c}\n"
          "  fm: {type: flatten, from: m}\n"
          "  ft: {type: flatten, from: t}\n"
          "  cc: {type: concat, from: [a, fb, fc, fm, ft, u, uu]}\n"
          "  o:  {type: dense, units: 2, activation: tanh, from: cc}\n"
          "outputs: {o: {loss: mse}}\n");
}

/* softmax over the first and the middle axis of a sample */
static void test_softmax_axis(void **s)
{
    (void)s;
    check("inputs: {x: {shape: [3, 4]}, z: {shape: [2, 3, 2]}}\n"
          "layers:\n"
          "  h:  {type: dense, units: 4, activation: tanh, from: x}\n"
          "  s1: {type: softmax, axis: 1, from: h}\n"
          "  s2: {type: softmax, axis: -2, from: z}\n"
          "  f1: {type: flatten, from: s1}\n"
          "  f2: {type: flatten, from: s2}\n"
          "  c:  {type: concat, from: [f1, f2]}\n"
          "  o:  {type: dense, units: 2, from: c}\n"
          "outputs: {o: {loss: mse}}\n");
}

/* A fixed mask (the rows and epoch are fixed): dx = dy m / (1 - rate). */
static void test_dropout(void **s)
{
    (void)s;
    check("inputs: {x: {shape: 6}}\n"
          "layers:\n"
          "  h: {type: dense, units: 8, activation: tanh, from: x}\n"
          "  d: {type: dropout, rate: 0.4, from: h}\n"
          "  o: {type: dense, units: 2, from: d}\n"
          "outputs: {o: {loss: mse}}\n");
}

/* Training mode: the batch's statistics, on one axis and on positions.
 * (A bias just before batch_norm has a zero gradient: none there.) */
static void test_batch_norm(void **s)
{
    (void)s;
    check("inputs: {x: {shape: 4}}\n"
          "layers:\n"
          "  h: {type: dense, units: 3, use_bias: false, from: x}\n"
          "  b: {type: batch_norm, from: h}\n"
          "  a: {type: activation, activation: tanh, from: b}\n"
          "  o: {type: dense, units: 2, from: a}\n"
          "outputs: {o: {loss: mse}}\n");
    check("inputs: {x: {shape: [3, 2]}}\n"
          "layers:\n"
          "  b: {type: batch_norm, momentum: 0.9, epsilon: 0.01, from: x}\n"
          "  f: {type: flatten, from: b}\n"
          "  h: {type: dense, units: 4, activation: tanh, from: f}\n"
          "  c: {type: batch_norm, center: false, from: h}\n"
          "  o: {type: dense, units: 2, from: c}\n"
          "outputs: {o: {loss: mse}}\n");
}

/* trainable: false on batch_norm: the moving statistics, affine; its own
 * tensors get no gradient, the layer below does. */
static void test_batch_norm_frozen(void **s)
{
    (void)s;
    check("inputs: {x: {shape: 4}}\n"
          "layers:\n"
          "  h: {type: dense, units: 3, from: x}\n"
          "  b: {type: batch_norm, trainable: false, from: h}\n"
          "  o: {type: dense, units: 2, from: b}\n"
          "outputs: {o: {loss: mse}}\n");
}

static void test_layer_norm(void **s)
{
    (void)s;
    check("inputs: {x: {shape: [2, 5]}}\n"
          "layers:\n"
          "  h: {type: dense, units: 4, from: x}\n"
          "  n: {type: layer_norm, epsilon: 0.001, from: h}\n"
          "  f: {type: flatten, from: n}\n"
          "  o: {type: dense, units: 2, from: f}\n"
          "outputs: {o: {loss: mse}}\n");
}

/* Fixed statistics (the fixture's noise moves them off 0 and 1, so a
 * backward that forgot 1/sqrt(variance + epsilon) fails): on an input,
 * whose gradient is checked too, and per position of a (3, 2) layer. */
static void test_normalization(void **s)
{
    (void)s;
    check("inputs: {x: {shape: 4}}\n"
          "layers:\n"
          "  n: {type: normalization, adapt: from_data, from: x}\n"
          "  h: {type: dense, units: 3, activation: tanh, from: n}\n"
          "  o: {type: dense, units: 2, from: h}\n"
          "outputs: {o: {loss: mse}}\n");
    check("inputs: {x: {shape: [3, 2]}}\n"
          "layers:\n"
          "  h: {type: dense, units: 2, activation: tanh, from: x}\n"
          "  n: {type: normalization, epsilon: 0.01, from: h}\n"
          "  f: {type: flatten, from: n}\n"
          "  o: {type: dense, units: 2, from: f}\n"
          "outputs: {o: {loss: mse}}\n");
}

/* Buckets have no gradient (a step's central difference is 0 away from
 * its boundaries): x's gradient is its dense branch's alone, and the
 * dense after the buckets, one-hot and as ids, learns from them. */
static void test_discretization(void **s)
{
    (void)s;
    check("inputs: {x: {shape: 4}}\n"
          "layers:\n"
          "  b: {type: discretization, bin_boundaries: [-0.5, 0, 0.5], "
          "output_mode: one_hot, from: x}\n"
          "  f: {type: flatten, from: b}\n"
          "  i: {type: discretization, bin_boundaries: [0], from: x}\n"
          "  h: {type: dense, units: 3, activation: tanh, from: x}\n"
          "  c: {type: concat, from: [f, i, h]}\n"
          "  o: {type: dense, units: 2, from: c}\n"
          "outputs: {o: {loss: mse}}\n");
}

/* One tower on two inputs: the shared kernel's gradient is the sum of both
 * uses (the central difference moves it in both). */
static void test_shared_layer(void **s)
{
    (void)s;
    /* tc shares through tb (a chain); tb comes before ta in the config */
    check("inputs: {a: {shape: 3}, b: {shape: 3}, c: {shape: 3}}\n"
          "layers:\n"
          "  tb: {type: dense, shares: ta, from: b}\n"
          "  ta: {type: dense, units: 4, activation: tanh, from: a}\n"
          "  tc: {type: dense, shares: tb, from: c}\n"
          "  m: {type: multiply, from: [ta, tb]}\n"
          "  j: {type: concat, from: [m, tc]}\n"
          "  o: {type: dense, units: 2, from: j}\n"
          "outputs: {o: {loss: mse}}\n");
    /* a shared layer deeper than its owner: the owner's block is final only
     * after the owner's backward (the gradient-sum hooks rely on that) */
    check("inputs: {a: {shape: 3}}\n"
          "layers:\n"
          "  t1: {type: dense, units: 3, activation: tanh, from: a}\n"
          "  t2: {type: dense, shares: t1, from: t1}\n"
          "  o: {type: dense, units: 2, from: t2}\n"
          "outputs: {o: {loss: mse}}\n");
}

/* A frozen layer: no gradient for its tensors, a nonzero one below it. */
static void test_frozen_layer(void **s)
{
    (void)s;
    const char *y = "inputs: {x: {shape: 3}}\n"
                    "layers:\n"
                    "  h: {type: dense, units: 4, activation: tanh, from: x}\n"
                    "  f: {type: dense, units: 3, activation: tanh, trainable: false, from: h}\n"
                    "  o: {type: dense, units: 2, from: f}\n"
                    "outputs: {o: {loss: mse}}\n";
    check(y);
    fixture f;
    setup_graph(&f, y);
    assert_int_equal(mimo_graph_param_count(f.g), 16 + 15 + 8);
    assert_int_equal(mimo_graph_trained_count(f.g), 16 + 8);
    for (int t = 0; t < mimo_graph_n_tensors(f.g); t++) {
        mimo_param_info p = mimo_graph_tensor(f.g, t);
        assert_int_equal(p.trainable, strcmp(p.layer, "f") != 0);
        assert_true(!p.trainable == (p.offset >= mimo_graph_trained_count(f.g)));
    }
    teardown_graph(&f);
}

/* The gradient-sum hooks start a bucket as soon as backward reports its
 * values final: every prefix reported must already hold its final values
 * (also when a shared layer adds into its owner's block later). */
typedef struct {
    const mimo_real *grads, *final;
    size_t last;
    int bad;
} prefix_check;

static void check_prefix(void *u, const char *layer, size_t done)
{
    prefix_check *c = u;
    if (done < c->last) {
        print_error("after '%s' the final prefix shrank: %zu < %zu\n", layer, done,
                    c->last);
        c->bad++;
    }
    for (size_t i = 0; i < done; i++)
        if (c->grads[i] != c->final[i]) {
            print_error("after '%s': gradient[%zu] reported final but changes\n",
                        layer, i);
            c->bad++;
            break;
        }
    c->last = done;
}

static void test_backward_prefix(void **s)
{
    (void)s;
    const char *graphs[] = {
        "inputs: {a: {shape: 3}, b: {shape: 3}}\n"
        "layers:\n"
        "  t1: {type: dense, units: 3, activation: tanh, from: a}\n"
        "  u: {type: dense, units: 3, activation: tanh, from: b}\n"
        "  t2: {type: dense, shares: t1, from: t1}\n"
        "  c: {type: concat, from: [t2, u]}\n"
        "  t3: {type: dense, shares: t1, from: u}\n"
        "  j: {type: concat, from: [c, t3]}\n"
        "  o: {type: dense, units: 2, from: j}\n"
        "outputs: {o: {loss: mse}}\n",
        "inputs: {x1: {shape: 5}, x2: {shape: 3}}\n"
        "layers:\n"
        "  h1: {type: dense, units: 4, activation: relu, from: x1}\n"
        "  h2: {type: dense, units: 3, activation: relu, from: x1}\n"
        "  cat: {type: concat, from: [x2, h1, h2]}\n"
        "  b: {type: batch_norm, from: cat}\n"
        "  h3: {type: dense, units: 4, trainable: false, from: b}\n"
        "  y1: {type: dense, units: 5, activation: sigmoid, from: h3}\n"
        "outputs: {y1: {loss: binary_crossentropy}}\n"};
    for (size_t k = 0; k < sizeof graphs / sizeof *graphs; k++) {
        fixture f;
        setup_graph(&f, graphs[k]);
        analytic(&f);
        mimo_real *final = malloc(sizeof(mimo_real) * (f.n + 1));
        memcpy(final, f.grads, sizeof(mimo_real) * f.n);
        memset(f.grads, 0, sizeof(mimo_real) * f.n);
        prefix_check c = {f.grads, final, 0, 0};
        mimo_graph_forward(f.g, f.params, (const mimo_real *const *)f.in, BATCH);
        assert_int_equal(mimo_graph_loss(f.g, (const mimo_real *const *)f.tgt,
                                         BATCH, 1.0 / BATCH, NULL), 0);
        mimo_graph_backward_hooked(f.g, f.params, f.grads, BATCH, check_prefix, &c);
        assert_int_equal(c.bad, 0);
        assert_int_equal(c.last, mimo_graph_trained_count(f.g));
        free(final);
        teardown_graph(&f);
    }
}

/* ---- losses ---------------------------------------------------------------- */

static void check_loss(const char *act, const char *loss, int feeds_more)
{
    char y[1024];
    snprintf(y, sizeof y,
             "inputs: {x: {shape: 4}}\n"
             "layers:\n"
             "  h: {type: dense, units: 5, activation: tanh, from: x}\n"
             "  o: {type: dense, units: 3, activation: %s, from: h}\n"
             "%s"
             "outputs:\n"
             "  o: {loss: %s, weight: 0.7}\n"
             "%s",
             act, feeds_more ? "  p: {type: dense, units: 2, from: o}\n" : "",
             loss, feeds_more ? "  p: {loss: mse, weight: 0.3}\n" : "");
    check(y);
}

static void test_loss_mse(void **s) { (void)s; check_loss("linear", "mse", 0); }
static void test_loss_mae(void **s) { (void)s; check_loss("linear", "mae", 0); }
static void test_loss_huber(void **s) { (void)s; check_loss("linear", "huber, delta: 0.5", 0); }
static void test_loss_bce_logits(void **s) { (void)s; check_loss("sigmoid", "binary_crossentropy", 0); }
static void test_loss_bce_probs(void **s) { (void)s; check_loss("sigmoid", "binary_crossentropy", 1); }
static void test_loss_cce_logits(void **s) { (void)s; check_loss("softmax", "categorical_crossentropy", 0); }
static void test_loss_cce_probs(void **s) { (void)s; check_loss("softmax", "categorical_crossentropy", 1); }
static void test_loss_scce_logits(void **s) { (void)s; check_loss("softmax", "sparse_categorical_crossentropy", 0); }
static void test_loss_scce_probs(void **s) { (void)s; check_loss("softmax", "sparse_categorical_crossentropy", 1); }

/* from_logits: the head's output is logits; the loss applies the sigmoid
 * or softmax itself (a linear head, and one ending in relu's neighbour
 * elu; one feeding another layer too). */
static void test_loss_from_logits(void **s)
{
    (void)s;
    static const char *losses[] = {"binary_crossentropy", "categorical_crossentropy",
                                   "sparse_categorical_crossentropy"};
    for (int k = 0; k < 3; k++) {
        char y[1024];
        snprintf(y, sizeof y,
                 "inputs: {x: {shape: 4}}\n"
                 "layers:\n"
                 "  h: {type: dense, units: 5, activation: tanh, from: x}\n"
                 "  o: {type: dense, units: 3, from: h}\n"
                 "  e: {type: dense, units: 3, activation: elu, from: h}\n"
                 "  p: {type: dense, units: 2, from: o}\n"
                 "outputs:\n"
                 "  o: {loss: %s, from_logits: true, weight: 0.7}\n"
                 "  e: {loss: %s, from_logits: true}\n"
                 "  p: {loss: mse, weight: 0.3}\n", losses[k], losses[k]);
        check(y);
    }
}

static void test_loss_bce_activation_layer(void **s)
{
    (void)s;
    check("inputs: {x: {shape: 4}}\n"
          "layers:\n"
          "  h: {type: dense, units: 3, from: x}\n"
          "  o: {type: activation, activation: sigmoid, from: h}\n"
          "outputs: {o: {loss: binary_crossentropy}}\n");
}

/* ---- merges ----------------------------------------------------------------
 * Each merge with a raw input and a trainable branch in both orders, with
 * two trainable branches, and with one tensor feeding it twice. */

static void check_merge(const char *type, const char *from, int raw_width)
{
    /* x - x is constant: the layer after it rightly gets a zero gradient */
    int self = strcmp(from, "[a, a]") == 0 || strcmp(from, "[r, r]") == 0;
    int allow_zero = self && strcmp(type, "subtract") == 0;
    char y[1024];
    /* the side head keeps a, b and r in use whichever variant is checked */
    snprintf(y, sizeof y,
             "inputs: {x: {shape: 3}, r: {shape: %d}}\n"
             "layers:\n"
             "  a: {type: dense, units: 4, activation: tanh, from: x}\n"
             "  b: {type: dense, units: 4, activation: sigmoid, from: x}\n"
             "  m: {type: %s, from: %s}\n"
             "  o: {type: dense, units: 2, from: m}\n"
             "  side: {type: concat, from: [r, a, b]}\n"
             "  so: {type: dense, units: 1, from: side}\n"
             "outputs:\n"
             "  o: {loss: mse}\n"
             "  so: {loss: mse, weight: 0.5}\n",
             raw_width, type, from);
    check_opt(y, allow_zero);
}

static void merge_all_variants(const char *type, int widths_differ)
{
    int rw = widths_differ ? 2 : 4;
    check_merge(type, "[r, a]", rw);   /* raw input first */
    check_merge(type, "[a, r]", rw);   /* trainable first */
    check_merge(type, "[a, b]", 4);    /* two trainable branches */
    check_merge(type, "[a, a]", 4);    /* one tensor twice */
    check_merge(type, "[r, r]", rw);   /* raw input twice */
}

static void test_merge_concat(void **s)
{
    (void)s;
    merge_all_variants("concat", 1);
    check_merge("concat", "[r, a, b, a]", 2);
}
static void test_merge_add(void **s) { (void)s; merge_all_variants("add", 0); check_merge("add", "[a, r, b]", 4); }
static void test_merge_subtract(void **s) { (void)s; merge_all_variants("subtract", 0); }
static void test_merge_multiply(void **s) { (void)s; merge_all_variants("multiply", 0); check_merge("multiply", "[a, r, b]", 4); }
static void test_merge_average(void **s) { (void)s; merge_all_variants("average", 0); check_merge("average", "[a, r, b]", 4); }

static void test_masked_softmax(void **s)
{
    (void)s;
    const char *y =
        "inputs: {x: {shape: 3}, mask: {shape: 4}}\n"
        "layers:\n"
        "  h: {type: dense, units: 4, from: x}\n"
        "  p: {type: masked_softmax, from: [h, mask]}\n"
        "outputs: {p: {loss: categorical_crossentropy}}\n";
    check(y);
    check("inputs: {x: {shape: 3}, mask: {shape: 4}}\n"
          "layers:\n"
          "  h: {type: dense, units: 4, from: x}\n"
          "  p: {type: masked_softmax, from: [h, mask]}\n"
          "  o: {type: dense, units: 2, from: p}\n"
          "outputs: {o: {loss: mse}}\n");
}

static void test_masked_softmax_zeros(void **s)
{
    (void)s;
    fixture f;
    setup_graph(&f, "inputs: {x: {shape: 3}, mask: {shape: 4}}\n"
                    "layers:\n"
                    "  h: {type: dense, units: 4, from: x}\n"
                    "  p: {type: masked_softmax, from: [h, mask]}\n"
                    "outputs: {p: {loss: mse}}\n");
    total_loss(&f);
    const mimo_real *p = mimo_graph_output(f.g, 0);
    for (int r = 0; r < BATCH; r++) {
        double sum = 0;
        for (int j = 0; j < 4; j++) {
            double m = f.in[1][r * 4 + j], v = p[r * 4 + j];
            if (m == 0)
                assert_true(v == 0.0); /* exact zeros off the mask */
            else
                assert_true(v > 0);
            sum += v;
        }
        assert_true(fabs(sum - 1) < 1e-12);
    }
    teardown_graph(&f);
}

/* ---- whole graphs ------------------------------------------------------- */

static void test_graph_seed000(void **s)
{
    (void)s;
    check("inputs:\n  x1: {shape: 5}\n  x2: {shape: 3}\n"
          "layers:\n"
          "  h1:  {type: dense, units: 4, activation: relu, from: x1}\n"
          "  h2:  {type: dense, units: 3, activation: relu, from: x1}\n"
          "  cat: {type: concat, from: [x2, h1, h2]}\n"
          "  h3:  {type: dense, units: 4, activation: relu, from: cat}\n"
          "  y1:  {type: dense, units: 5, activation: sigmoid, from: h3}\n"
          "  y2:  {type: dense, units: 4, activation: softmax, from: h3}\n"
          "outputs:\n"
          "  y1: {loss: binary_crossentropy}\n"
          "  y2: {loss: mae}\n");
}


/* ---- missing labels, sample and class weights, learned task weights ---- */

/* Heads of every loss with rows 1 and 3 unlabelled (NaN or -1), class
 * weights (one of 0), on fused and unfused outputs and from logits. */
#define WEIGHTED_GRAPH(sw)                                                     \
    "inputs: {x: {shape: 4}, z: {shape: 3}}\n"                                \
    "layers:\n"                                                                \
    "  h: {type: dense, units: 5, activation: tanh, from: x}\n"               \
    "  k: {type: dense, units: 4, activation: elu, from: z}\n"                \
    "  c: {type: concat, from: [h, k]}\n"                                      \
    "  r: {type: dense, units: 2, from: c}\n"                                  \
    "  b: {type: dense, units: 1, activation: sigmoid, from: c}\n"            \
    "  m: {type: dense, units: 3, activation: softmax, from: h}\n"            \
    "  s: {type: dense, units: 3, activation: softmax, from: k}\n"            \
    "  q: {type: dense, units: 2, activation: sigmoid, from: c}\n"            \
    "  l: {type: dense, units: 3, from: c}\n"                                  \
    "outputs:\n"                                                               \
    "  r: {loss: mse, missing: nan, weight: 0.6" sw "}\n"                     \
    "  b: {loss: binary_crossentropy, class_weight: {0: 0.5, 1: 3}, missing: nan}\n" \
    "  m: {loss: categorical_crossentropy, class_weight: {1: 2.5}, weight: 0.8" sw "}\n" \
    "  s: {loss: sparse_categorical_crossentropy, missing: -1, class_weight: {0: 0, 2: 1.5}}\n" \
    "  q: {loss: binary_crossentropy, missing: -1, weight: 0.4}\n"            \
    "  l: {loss: sparse_categorical_crossentropy, from_logits: true, missing: -1" sw "}\n"

static void test_weights_missing_and_classes(void **s)
{
    (void)s;
    check(WEIGHTED_GRAPH(""));
}

/* Sample weights (one row of weight 0), and each head divided by its
 * global weight sum, of which this batch holds only a part. */
static void test_weights_sample_global(void **s)
{
    (void)s;
    check_mode(WEIGHTED_GRAPH(", sample_weight: w"), 0, 1);
}

/* A row without a label adds nothing: its outputs get no gradient, and
 * its loss is not in the sum (NaN targets would poison both). */
static void test_weights_unlabelled_rows_silent(void **s)
{
    (void)s;
    fixture f;
    setup_graph(&f, "inputs: {x: {shape: 3}}\n"
                    "layers: {o: {type: dense, units: 2, activation: sigmoid, from: x}}\n"
                    "outputs: {o: {loss: binary_crossentropy, missing: nan}}\n");
    analytic(&f);
    double before = total_loss(&f);
    f.in[0][1 * 3 + 0] += 5, f.in[0][3 * 3 + 2] -= 7; /* the unlabelled rows */
    assert_true(fabs(total_loss(&f) - before) == 0);
    assert_true(isfinite(before) && before > 0);
    for (size_t i = 0; i < f.n; i++)
        assert_true(isfinite(f.grads[i]));
    teardown_graph(&f);
}

/* loss_weighting: uncertainty, through the model's step parts: the total
 * sum_h exp(-s_h) loss_h + s_h, each loss_h over the batch's weighted
 * labelled rows; d/d every parameter and every s_h. */
static double uncertainty_total(mimo_model *m, const mimo_source *src,
                                const uint64_t *rows)
{
    mimo_model_begin_step(m, 0);
    mimo_exchange_begin_step(mimo_model_exchange(m), m);
    assert_int_equal(mimo_model_read(m, src, rows, BATCH, 1), 0);
    assert_int_equal(mimo_model_weigh(m, BATCH, BATCH), 0);
    mimo_model_forward(m, BATCH);
    assert_int_equal(mimo_model_loss(m, BATCH, NULL), 0);
    const mimo_head_stats *st = mimo_model_step_stats(m);
    const mimo_real *p = mimo_model_params(m);
    double L = 0;
    for (int h = 0; h < mimo_graph_n_heads(mimo_model_graph(m)); h++)
        if (st[h].weight > 0)
            L += exp(-p[h]) * st[h].loss / st[h].weight + p[h];
    return L;
}

static void test_weights_uncertainty(void **s)
{
    (void)s;
    fixture f; /* for the data */
    setup_graph(&f, WEIGHTED_GRAPH(", sample_weight: w"));
    mimo_spec spec;
    const char *yaml = WEIGHTED_GRAPH(", sample_weight: w")
                       "train: {loss_weighting: uncertainty}\n";
    assert_int_equal(mimo_config_parse(yaml, strlen(yaml), "u.yaml", NULL, 0, &spec), 0);
    mimo_model *m = NULL;
    assert_int_equal(mimo_model_create(&spec, &m), 0);
    int nh = mimo_graph_n_heads(mimo_model_graph(m));
    assert_int_equal(mimo_graph_log_vars(mimo_model_graph(m)), nh);
    mimo_array arr[16];
    int na = 0;
    arr[na++] = (mimo_array){"x", f.in[0], BATCH, 4};
    arr[na++] = (mimo_array){"z", f.in[1], BATCH, 3};
    for (int h = 0; h < nh; h++) {
        const mimo_output_spec *o = mimo_graph_head_spec(f.g, h);
        arr[na++] = (mimo_array){o->name, f.tgt[h], BATCH,
                                 mimo_graph_head_target_width(f.g, h)};
    }
    arr[na++] = (mimo_array){"w", f.sw[0], BATCH, 1};
    mimo_source src;
    assert_int_equal(mimo_arrays_source(m, &(mimo_dataset){arr, na}, 1, &src), 0);
    mimo_real *p = mimo_model_params(m);
    for (int h = 0; h < nh; h++)
        p[h] = (mimo_real)(0.3 * h - 0.7); /* s_h */
    const uint64_t rows[BATCH] = {0, 1, 2, 3, 4};
    uncertainty_total(m, &src, rows);
    mimo_model_backward(m, BATCH);
    size_t n = mimo_model_trained_count(m);
    mimo_real *g = malloc(sizeof(mimo_real) * n);
    memcpy(g, mimo_model_grads(m), sizeof(mimo_real) * n);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double keep = p[i];
        p[i] = keep + STEP;
        double lp = uncertainty_total(m, &src, rows);
        p[i] = keep - STEP;
        double lm = uncertainty_total(m, &src, rows);
        p[i] = keep;
        double num = (lp - lm) / (2 * STEP);
        if (fabs(num - g[i]) > 1e-6 + 1e-5 * fmax(fabs(num), fabs(g[i]))) {
            print_error("param[%zu]: analytic %.10g, numeric %.10g\n", i, g[i], num);
            bad++;
        }
    }
    for (int h = 0; h < nh; h++) /* the s_h: 1 - exp(-s_h) loss_h, not 0 */
        assert_true(fabs(g[h]) > 1e-5);
    assert_int_equal(bad, 0);
    free(g);
    mimo_model_free(&m);
    mimo_spec_free(&spec);
    teardown_graph(&f);
}

static void test_graph_three_by_three(void **s)
{
    (void)s;
    check("inputs:\n  a: {shape: 4}\n  b: {shape: 3}\n  c: {shape: 2}\n"
          "layers:\n"
          "  ha: {type: dense, units: 5, activation: tanh, from: a}\n"
          "  hb: {type: dense, units: 5, activation: elu, from: b}\n"
          "  s:  {type: add, from: [ha, hb]}\n"
          "  hc: {type: dense, units: 5, activation: sigmoid, from: c}\n"
          "  m:  {type: multiply, from: [s, hc]}\n"
          "  d:  {type: dense, units: 5, activation: softplus, from: m}\n"
          "  skip: {type: concat, from: [d, s, c]}\n"
          "  o1: {type: dense, units: 2, from: skip}\n"
          "  o2: {type: dense, units: 3, activation: softmax, from: skip}\n"
          "  o3: {type: dense, units: 1, activation: sigmoid, from: m}\n"
          "outputs:\n"
          "  o1: {loss: huber, weight: 0.5}\n"
          "  o2: {loss: categorical_crossentropy, weight: 2.0}\n"
          "  o3: {loss: binary_crossentropy, weight: 0.25}\n");
}

/* A stack of blocks, each two dense layers and a concat skip connection
 * around them (seed 004's 42-layer pattern, shortened). */
static void test_graph_deep_skip(void **s)
{
    (void)s;
    char y[8192];
    int n = snprintf(y, sizeof y, "inputs: {x: {shape: 1}}\nlayers:\n"
                     "  c0: {type: dense, units: 3, activation: tanh, from: x}\n");
    for (int i = 1; i <= 6; i++)
        n += snprintf(y + n, sizeof y - (size_t)n,
                      "  a%d: {type: dense, units: 3, activation: tanh, from: c%d}\n"
                      "  b%d: {type: dense, units: 3, activation: tanh, from: a%d}\n"
                      "  c%d: {type: concat, from: [c%d, b%d]}\n",
                      i, i - 1, i, i, i, i - 1, i);
    snprintf(y + n, sizeof y - (size_t)n,
             "  out: {type: dense, units: 1, from: c6}\n"
             "outputs: {out: {loss: mse}}\n");
    check(y);
}

/* ---- a plug-in's kind (mimo/plugin.h) --------------------------------------- */

/* The example plug-in, compiled into this test in double (this build's
 * mimo_real) and registered as mimo_plugin_load does after dlopen: its
 * math and the adapter (core/plugin_kind.c: inputs, parameters, dx and
 * dparams wired to the graph) against central differences, its learned
 * beta shared by two layers and frozen in a third. */
static void test_plugin_kind(void **s)
{
    (void)s;
    assert_int_equal(mimo_plugin_register(&mimo_plugin, "examples/plugin/swish.c"), 0);
    check("inputs: {x: {shape: [2, 3]}, z: {shape: 4}}\n"
          "layers:\n"
          "  h: {type: dense, units: 4, from: x}\n"
          "  s1: {type: swish, beta: 0.7, learn_beta: true, from: h}\n"
          "  s2: {type: swish, shares: s1, from: h}\n"
          "  f: {type: swish, beta: 1.5, learn_beta: true, trainable: false, from: z}\n"
          "  g: {type: SiluBeta, beta: 2, from: s2}\n"
          "  c: {type: concat, from: [s1, g]}\n"
          "  fl: {type: flatten, from: c}\n"
          "  c2: {type: concat, from: [fl, f]}\n"
          "  o: {type: dense, units: 2, from: c2}\n"
          "outputs: {o: {loss: mse}}\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_act_linear),
        cmocka_unit_test(test_act_relu),
        cmocka_unit_test(test_act_leaky_relu),
        cmocka_unit_test(test_act_elu),
        cmocka_unit_test(test_act_sigmoid),
        cmocka_unit_test(test_act_tanh),
        cmocka_unit_test(test_act_softmax),
        cmocka_unit_test(test_act_softplus),
        cmocka_unit_test(test_act_quadratic),
        cmocka_unit_test(test_act_gelu),
        cmocka_unit_test(test_act_swish),
        cmocka_unit_test(test_act_selu),
        cmocka_unit_test(test_act_mish),
        cmocka_unit_test(test_act_hard_sigmoid),
        cmocka_unit_test(test_act_values),
        cmocka_unit_test(test_dense_no_bias),
        cmocka_unit_test(test_dense_rank2),
        cmocka_unit_test(test_reshape_flatten),
        cmocka_unit_test(test_conv2d_same_stride2),
        cmocka_unit_test(test_conv2d_valid_no_bias),
        cmocka_unit_test(test_conv2d_1x1_and_head),
        cmocka_unit_test(test_max_pool2d),
        cmocka_unit_test(test_avg_pool2d),
        cmocka_unit_test(test_global_pool2d),
        cmocka_unit_test(test_graph_conv_branches),
        cmocka_unit_test(test_conv2d_shared_frozen),
        cmocka_unit_test(test_conv1d),
        cmocka_unit_test(test_conv1d_causal_values),
        cmocka_unit_test(test_pool1d),
        cmocka_unit_test(test_gru),
        cmocka_unit_test(test_lstm),
        cmocka_unit_test(test_rnn_shared_frozen),
        cmocka_unit_test(test_rnn_init),
        cmocka_unit_test(test_mask_recurrent),
        cmocka_unit_test(test_mask_zero_output),
        cmocka_unit_test(test_bidirectional_masked),
        cmocka_unit_test(test_bidirectional),
        cmocka_unit_test(test_position_embedding),
        cmocka_unit_test(test_mask_pools),
        cmocka_unit_test(test_mask_values),
        cmocka_unit_test(test_attention_self),
        cmocka_unit_test(test_attention_cross),
        cmocka_unit_test(test_attention_values),
        cmocka_unit_test(test_embedding),
        cmocka_unit_test(test_embedding_bag_sum),
        cmocka_unit_test(test_embedding_bag_mean),
        cmocka_unit_test(test_embedding_bag_max),
        cmocka_unit_test(test_embedding_bag_sum_weights),
        cmocka_unit_test(test_embedding_bag_mean_weights),
        cmocka_unit_test(test_embedding_bag_no_mask),
        cmocka_unit_test(test_mixture),
        cmocka_unit_test(test_stack_raw),
        cmocka_unit_test(test_dot),
        cmocka_unit_test(test_softmax_axis),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_batch_norm),
        cmocka_unit_test(test_batch_norm_frozen),
        cmocka_unit_test(test_layer_norm),
        cmocka_unit_test(test_plugin_kind),
        cmocka_unit_test(test_normalization),
        cmocka_unit_test(test_discretization),
        cmocka_unit_test(test_shared_layer),
        cmocka_unit_test(test_frozen_layer),
        cmocka_unit_test(test_backward_prefix),
        cmocka_unit_test(test_loss_mse),
        cmocka_unit_test(test_loss_mae),
        cmocka_unit_test(test_loss_huber),
        cmocka_unit_test(test_loss_bce_logits),
        cmocka_unit_test(test_loss_bce_probs),
        cmocka_unit_test(test_loss_cce_logits),
        cmocka_unit_test(test_loss_cce_probs),
        cmocka_unit_test(test_loss_scce_logits),
        cmocka_unit_test(test_loss_scce_probs),
        cmocka_unit_test(test_loss_bce_activation_layer),
        cmocka_unit_test(test_loss_from_logits),
        cmocka_unit_test(test_merge_concat),
        cmocka_unit_test(test_merge_add),
        cmocka_unit_test(test_merge_subtract),
        cmocka_unit_test(test_merge_multiply),
        cmocka_unit_test(test_merge_average),
        cmocka_unit_test(test_masked_softmax),
        cmocka_unit_test(test_masked_softmax_zeros),
        cmocka_unit_test(test_graph_seed000),
        cmocka_unit_test(test_graph_three_by_three),
        cmocka_unit_test(test_graph_deep_skip),
        cmocka_unit_test(test_weights_missing_and_classes),
        cmocka_unit_test(test_weights_sample_global),
        cmocka_unit_test(test_weights_unlabelled_rows_silent),
        cmocka_unit_test(test_weights_uncertainty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
