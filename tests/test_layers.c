/* test_layers.c — properties of the layers whose behaviour depends on the
 * mode or the batch, beyond their gradients (test_gradcheck_f64.c):
 * dropout's masks belong to the sample (global row, epoch, layer), not to
 * its place in a batch, drop `rate` of the values and scale the rest;
 * inference is the identity; batch_norm uses the batch in training and
 * the moving statistics in inference; an embedding id out of range is an
 * error, never a read outside the table. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/model.h"
#include "mimo/mimo.h"

typedef struct {
    mimo_spec spec;
    mimo_graph *g;
    mimo_real *params;
} net;

static void build(net *t, const char *yaml, int batch)
{
    memset(t, 0, sizeof *t);
    if (mimo_config_parse(yaml, strlen(yaml), "t.yaml", NULL, 0, &t->spec) ||
        mimo_graph_compile(&t->spec, batch, 0, &t->g))
        fail_msg("%s", mimo_errmsg());
    t->params = calloc(mimo_graph_param_count(t->g) + 1, sizeof(mimo_real));
    mimo_graph_init_params(t->g, t->params, 3);
}

static void drop(net *t)
{
    free(t->params);
    mimo_graph_free(&t->g);
    mimo_spec_free(&t->spec);
}

static const char *DROPOUT =
    "inputs: {x: {shape: 1000}}\n"
    "layers:\n"
    "  d: {type: dropout, rate: 0.3, from: x}\n"
    "outputs: {d: {loss: mse}}\n";

static void test_dropout_rate_and_scale(void **s)
{
    (void)s;
    net t;
    build(&t, DROPOUT, 4);
    mimo_real *x = malloc(sizeof *x * 4000);
    for (int i = 0; i < 4000; i++)
        x[i] = 1;
    const mimo_real *in[] = {x};
    uint64_t rows[4] = {0, 1, 2, 3};
    mimo_graph_set_training(t.g, rows, 0);
    mimo_graph_forward(t.g, t.params, in, 4);
    const mimo_real *y = mimo_graph_output(t.g, 0);
    int zeros = 0;
    for (int i = 0; i < 4000; i++) {
        assert_true(y[i] == 0 || fabs(y[i] - 1 / 0.7) < 1e-6);
        zeros += y[i] == 0;
    }
    assert_true(zeros > 1100 && zeros < 1300); /* 0.3 of 4000, +- 4 sd */
    mimo_graph_set_inference(t.g); /* the identity */
    mimo_graph_forward(t.g, t.params, in, 4);
    for (int i = 0; i < 4000; i++)
        assert_true(y[i] == 1);
    free(x);
    drop(&t);
}

/* Row 7's mask is the same in a batch of 4 (third place) and a batch of 1;
 * another epoch or another row draws another. */
static void test_dropout_mask_belongs_to_the_sample(void **s)
{
    (void)s;
    net a, b;
    build(&a, DROPOUT, 4);
    build(&b, DROPOUT, 1);
    mimo_real *x = malloc(sizeof *x * 4000);
    for (int i = 0; i < 4000; i++)
        x[i] = (mimo_real)(1 + i % 1000);
    const mimo_real *in[] = {x}, *in7[] = {x + 2000};
    uint64_t rows[4] = {11, 5, 7, 12}, one[1] = {7};
    mimo_graph_set_training(a.g, rows, 3);
    mimo_graph_forward(a.g, a.params, in, 4);
    mimo_graph_set_training(b.g, one, 3);
    mimo_graph_forward(b.g, b.params, in7, 1);
    assert_memory_equal(mimo_graph_output(a.g, 0) + 2000, mimo_graph_output(b.g, 0),
                        sizeof(mimo_real) * 1000);
    mimo_real keep[1000];
    memcpy(keep, mimo_graph_output(b.g, 0), sizeof keep);
    mimo_graph_set_training(b.g, one, 4); /* another epoch */
    mimo_graph_forward(b.g, b.params, in7, 1);
    assert_memory_not_equal(keep, mimo_graph_output(b.g, 0), sizeof keep);
    free(x);
    drop(&a);
    drop(&b);
}

/* Training normalizes with the batch (mean 0, variance 1 per channel);
 * inference with the moving statistics (after one step: 0.9 x 0 + 0.1 x
 * the batch mean, 0.9 x 1 + 0.1 x the batch variance). */
static void test_batch_norm_modes(void **s)
{
    (void)s;
    net t;
    build(&t, "inputs: {x: {shape: 2}}\n"
              "layers: {b: {type: batch_norm, momentum: 0.9, epsilon: 0.0001, from: x}}\n"
              "outputs: {b: {loss: mse}}\n", 4);
    mimo_real x[8] = {1, 10, 2, 20, 3, 30, 6, 60};
    const mimo_real *in[] = {x};
    uint64_t rows[4] = {0, 1, 2, 3};
    mimo_graph_set_training(t.g, rows, 0);
    mimo_graph_forward(t.g, t.params, in, 4);
    const mimo_real *y = mimo_graph_output(t.g, 0);
    for (int c = 0; c < 2; c++) {
        double m = 0, v = 0;
        for (int r = 0; r < 4; r++)
            m += y[2 * r + c] / 4;
        for (int r = 0; r < 4; r++)
            v += (y[2 * r + c] - m) * (y[2 * r + c] - m) / 4;
        assert_true(fabs(m) < 1e-5 && fabs(v - 1) < 1e-3);
    }
    mimo_graph_set_inference(t.g);
    mimo_graph_forward(t.g, t.params, in, 4);
    /* channel 0: batch mean 3, variance 3.5 -> moving 0.3, 1.25 */
    assert_true(fabs(y[0] - (1 - 0.3) / sqrt(1.25 + 1e-4)) < 1e-5);
    drop(&t);
}

static void test_embedding_out_of_range(void **s)
{
    (void)s;
    net t;
    build(&t, "inputs: {ids: {shape: 2, dtype: int32}}\n"
              "layers:\n"
              "  e: {type: embedding, input_dim: 5, output_dim: 3, from: ids}\n"
              "  f: {type: flatten, from: e}\n"
              "outputs: {f: {loss: mse}}\n", 2);
    mimo_real ids[4] = {0, 4, 1, 5}, tgt[12] = {0};
    const mimo_real *in[] = {ids}, *tg[] = {tgt};
    mimo_graph_forward(t.g, t.params, in, 2);
    assert_int_equal(mimo_graph_loss(t.g, tg, 2, 0, NULL), MIMO_EINVAL);
    assert_non_null(strstr(mimo_errmsg(), "embedding layer 'e': id 5 is not an "
                           "integer in [0, 5)"));
    ids[3] = 2.5;
    mimo_graph_forward(t.g, t.params, in, 2);
    assert_int_equal(mimo_graph_status(t.g), MIMO_EINVAL);
    ids[3] = 2;
    mimo_graph_forward(t.g, t.params, in, 2);
    assert_int_equal(mimo_graph_loss(t.g, tg, 2, 0, NULL), 0);
    /* row 1, id 1 -> the table's row 1 */
    assert_memory_equal(mimo_graph_output(t.g, 0) + 6,
                        t.params + mimo_graph_tensor(t.g, 0).offset + 3,
                        3 * sizeof(mimo_real));
    drop(&t);
}

/* A linear head with from_logits is the same loss and gradient as the
 * same head ending in sigmoid/softmax (which mimo fuses from the logits),
 * also for logits of +-1000; its metrics see the probabilities. */
static void test_from_logits_equals_fused(void **s)
{
    (void)s;
    static const char *const loss[2] = {"binary_crossentropy",
                                        "sparse_categorical_crossentropy"};
    static const char *const act[2] = {"sigmoid", "softmax"};
    for (int k = 0; k < 2; k++) {
        char ya[512], yb[512];
        const char *fmt = "inputs: {x: {shape: 2}}\n"
                          "layers: {o: {type: dense, units: 3, activation: %s, from: x}}\n"
                          "outputs: {o: {loss: %s, metrics: [accuracy]%s}}\n";
        snprintf(ya, sizeof ya, fmt, act[k], loss[k], "");
        snprintf(yb, sizeof yb, fmt, "linear", loss[k], ", from_logits: true");
        net a, b;
        build(&a, ya, 3);
        build(&b, yb, 3);
        memcpy(b.params, a.params, sizeof(mimo_real) * mimo_graph_param_count(a.g));
        mimo_real x[6] = {0.5f, -1, 300, -200, -0.1f, 0.2f};
        mimo_real t[9] = {1, 0, 1, 0, 1, 1, 1, 0, 0}, lab[3] = {2, 0, 1};
        const mimo_real *in[] = {x}, *tg[] = {k ? lab : t};
        size_t n = mimo_graph_param_count(a.g);
        mimo_real *ga = calloc(n, sizeof *ga), *gb = calloc(n, sizeof *gb);
        mimo_head_stats sa = {0}, sb = {0};
        mimo_graph_forward(a.g, a.params, in, 3);
        assert_int_equal(mimo_graph_loss(a.g, tg, 3, 1.0 / 3, &sa), 0);
        mimo_graph_backward(a.g, a.params, ga, 3);
        mimo_graph_forward(b.g, b.params, in, 3);
        assert_int_equal(mimo_graph_loss(b.g, tg, 3, 1.0 / 3, &sb), 0);
        mimo_graph_backward(b.g, b.params, gb, 3);
        assert_true(isfinite(sb.loss) && fabs(sa.loss - sb.loss) <= 1e-4 * fabs(sa.loss));
        assert_true(sa.acc == sb.acc);
        for (size_t i = 0; i < n; i++)
            assert_true(fabs(ga[i] - gb[i]) <= 1e-5 + 1e-4 * fabs(ga[i]));
        free(ga), free(gb);
        drop(&a), drop(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dropout_rate_and_scale),
        cmocka_unit_test(test_dropout_mask_belongs_to_the_sample),
        cmocka_unit_test(test_batch_norm_modes),
        cmocka_unit_test(test_embedding_out_of_range),
        cmocka_unit_test(test_from_logits_equals_fused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
