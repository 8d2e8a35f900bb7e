/* test_train.c — training through the library API on in-memory arrays:
 * the seed 000 network on its one sample, XOR (seed 002), and seed 004's
 * two-input sin/exp network with RMSprop; plus seeded determinism and the
 * Keras-style validation split. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error_impl.h"
#include "core/model.h"
#include "mimo/mimo.h"
#include "train/fit_impl.h"
#include "train/teardown.h"

typedef struct {
    mimo_stats last, last_val;
    int have_val;
    long epochs;
} record;

static int on_epoch(void *user, long epoch, const mimo_stats *tr,
                    const mimo_stats *va)
{
    record *r = user;
    r->epochs = epoch + 1;
    r->last.loss = tr->loss;
    memcpy(r->last.head, tr->head, sizeof *tr->head * (size_t)tr->n_heads);
    if (va) {
        r->have_val = 1;
        memcpy(r->last_val.head, va->head, sizeof *va->head * (size_t)va->n_heads);
    }
    return 0;
}

static void parse(const char *yaml, mimo_spec *spec)
{
    if (mimo_config_parse(yaml, strlen(yaml), "train.yaml", NULL, 0, spec))
        fail_msg("%s", mimo_errmsg());
}

/* Fits and returns the record (caller frees its stats). */
static void fit(mimo_model *m, const mimo_dataset *tr, const mimo_dataset *va,
                record *r)
{
    int nh = mimo_graph_n_heads(mimo_model_graph(m));
    memset(r, 0, sizeof *r);
    mimo_stats_init(&r->last, nh);
    mimo_stats_init(&r->last_val, nh);
    if (mimo_fit(m, tr, va, on_epoch, r))
        fail_msg("fit: %s", mimo_errmsg());
}

static int evaluate(mimo_model *m, const mimo_dataset *d, mimo_stats *st)
{
    mimo_source src;
    int rc = mimo_arrays_source(m, d, 1, &src);
    return rc ? rc : mimo_model_evaluate(m, &src, st);
}

static void record_free(record *r)
{
    mimo_stats_free(&r->last);
    mimo_stats_free(&r->last_val);
}

/* The tutorial's network and data (default glorot_uniform init). */
static const char *seed000 =
    "inputs:\n  x1: {shape: 5}\n  x2: {shape: 3}\n"
    "layers:\n"
    "  h1:  {type: dense, units: 4, activation: relu, from: x1}\n"
    "  h2:  {type: dense, units: 3, activation: relu, from: x1}\n"
    "  cat: {type: concat, from: [x2, h1, h2]}\n"
    "  h3:  {type: dense, units: 4, activation: relu, from: cat}\n"
    "  y1:  {type: dense, units: 5, activation: sigmoid, from: h3}\n"
    "  y2:  {type: dense, units: 4, activation: softmax, from: h3}\n"
    "outputs:\n"
    "  y1: {loss: binary_crossentropy, metrics: [accuracy]}\n"
    "  y2: {loss: mae}\n"
    "train: {optimizer: {type: sgd, lr: 0.01}, batch_size: 1, epochs: 1000, seed: 42}\n";

static void test_seed000(void **s)
{
    (void)s;
    static const mimo_real x1[5] = {0.52f, 0.93f, 0.15f, 0.72f, 0.61f};
    static const mimo_real x2[3] = {0.21f, 0.83f, 0.87f};
    static const mimo_real y1[5] = {1, 1, 0, 0, 1}, y2[4] = {0, 1, 0, 0};
    mimo_array a[] = {{"x1", x1, 1, 5}, {"x2", x2, 1, 3}, {"y1", y1, 1, 5},
                      {"y2", y2, 1, 4}};
    mimo_dataset d = {a, 4};
    mimo_spec spec;
    mimo_model *m = NULL;
    parse(seed000, &spec);
    assert_int_equal(mimo_model_create(&spec, &m), 0);
    mimo_stats before;
    mimo_stats_init(&before, 2);
    assert_int_equal(evaluate(m, &d, &before), 0);
    mimo_stats_finish(m, &before);
    record r;
    fit(m, &d, NULL, &r);
    mimo_stats after;
    mimo_stats_init(&after, 2);
    assert_int_equal(evaluate(m, &d, &after), 0);
    mimo_stats_finish(m, &after);
    print_message("seed 000: bce %.4f -> %.5f, mae %.4f -> %.5f\n",
                  before.head[0].loss, after.head[0].loss, before.head[1].loss,
                  after.head[1].loss);
    assert_int_equal(r.epochs, 1000);
    assert_true(before.head[0].loss > 0.1 && before.head[1].loss > 0.1);
    assert_true(after.head[0].loss < 0.01);
    assert_true(after.head[1].loss < 0.01);
    assert_true(after.head[0].acc == 1.0);
    mimo_stats_free(&before);
    mimo_stats_free(&after);
    record_free(&r);
    mimo_model_free(&m);
    mimo_spec_free(&spec);
}

static void test_xor(void **s)
{
    (void)s;
    static const mimo_real x[8] = {0, 0, 0, 1, 1, 0, 1, 1}, y[4] = {0, 1, 1, 0};
    mimo_array a[] = {{"x", x, 4, 2}, {"y", y, 4, 1}};
    mimo_dataset d = {a, 2};
    mimo_spec spec;
    mimo_model *m = NULL;
    parse("inputs: {x: {shape: 2}}\n"
          "layers:\n"
          "  h: {type: dense, units: 8, activation: tanh, from: x}\n"
          "  y: {type: dense, units: 1, activation: sigmoid, from: h}\n"
          "outputs: {y: {loss: binary_crossentropy, metrics: [accuracy]}}\n"
          "train: {optimizer: {type: adam, lr: 0.05}, batch_size: 4, epochs: 300, seed: 3}\n",
          &spec);
    assert_int_equal(mimo_model_create(&spec, &m), 0);
    record r;
    fit(m, &d, NULL, &r);
    mimo_stats st;
    mimo_stats_init(&st, 1);
    assert_int_equal(evaluate(m, &d, &st), 0);
    mimo_stats_finish(m, &st);
    print_message("xor: loss %.5f accuracy %.2f\n", st.head[0].loss, st.head[0].acc);
    assert_true(st.head[0].acc == 1.0);
    assert_true(st.head[0].loss < 0.1);
    mimo_stats_free(&st);
    record_free(&r);
    mimo_model_free(&m);
    mimo_spec_free(&spec);
}

/* Seed 004: x and x^2 in; sin(2 pi x) and exp(x) out; RMSprop. */
static const char *sinexp =
    "inputs: {x1: {shape: 1}, x2: {shape: 1}}\n"
    "layers:\n"
    "  l1: {type: dense, units: 32, activation: relu, from: x1}\n"
    "  r1: {type: dense, units: 32, activation: relu, from: x2}\n"
    "  cat: {type: concat, from: [l1, r1]}\n"
    "  l2: {type: dense, units: 32, activation: relu, from: cat}\n"
    "  l3: {type: dense, units: 32, activation: relu, from: l2}\n"
    "  r2: {type: dense, units: 32, activation: relu, from: cat}\n"
    "  sin: {type: dense, units: 1, from: l3}\n"
    "  exp: {type: dense, units: 1, from: r2}\n"
    "outputs:\n"
    "  sin: {loss: mse, metrics: [mse]}\n"
    "  exp: {loss: mse, metrics: [mse]}\n"
    "train: {optimizer: rmsprop, batch_size: 32, epochs: 300, seed: 7}\n";

static void make_sinexp(mimo_real *x1, mimo_real *x2, mimo_real *ys, mimo_real *ye,
                        int n, int random, mimo_rng *r)
{
    for (int i = 0; i < n; i++) {
        double x = random ? mimo_rng_uniform(r) : (double)i / (n - 1);
        x1[i] = (mimo_real)x, x2[i] = (mimo_real)(x * x);
        ys[i] = (mimo_real)sin(6.283185307179586 * x), ye[i] = (mimo_real)exp(x);
    }
}

static void test_sinexp(void **s)
{
    (void)s;
    enum { N = 1000, NV = 100 };
    static mimo_real x1[N], x2[N], ys[N], ye[N], v1[NV], v2[NV], vs[NV], ve[NV];
    mimo_rng r;
    mimo_rng_seed(&r, 7);
    make_sinexp(x1, x2, ys, ye, N, 0, &r);
    make_sinexp(v1, v2, vs, ve, NV, 1, &r);
    mimo_array ta[] = {{"x1", x1, N, 1}, {"x2", x2, N, 1}, {"sin", ys, N, 1}, {"exp", ye, N, 1}};
    mimo_array va[] = {{"x1", v1, NV, 1}, {"x2", v2, NV, 1}, {"sin", vs, NV, 1}, {"exp", ve, NV, 1}};
    mimo_dataset dt = {ta, 4}, dv = {va, 4};
    mimo_spec spec;
    mimo_model *m = NULL;
    parse(sinexp, &spec);
    assert_int_equal(mimo_model_create(&spec, &m), 0);
    record rec;
    fit(m, &dt, &dv, &rec);
    print_message("sin/exp: val mse sin %.5f exp %.5f\n", rec.last_val.head[0].mse,
                  rec.last_val.head[1].mse);
    assert_true(rec.have_val);
    assert_true(rec.last_val.head[0].mse < 0.01);
    assert_true(rec.last_val.head[1].mse < 0.01);
    assert_true(fabs(rec.last_val.head[0].mse - rec.last_val.head[0].loss) < 1e-9);
    record_free(&rec);
    mimo_model_free(&m);
    mimo_spec_free(&spec);
}

/* The same seed gives bitwise the same parameters; another seed does not. */
static void test_seeded_determinism(void **s)
{
    (void)s;
    enum { N = 64 };
    static mimo_real x1[N], x2[N], ys[N], ye[N];
    mimo_rng r;
    mimo_rng_seed(&r, 1);
    make_sinexp(x1, x2, ys, ye, N, 1, &r);
    mimo_array ta[] = {{"x1", x1, N, 1}, {"x2", x2, N, 1}, {"sin", ys, N, 1}, {"exp", ye, N, 1}};
    mimo_dataset dt = {ta, 4};
    mimo_real *p[3];
    size_t n = 0;
    mimo_model *m[3];
    mimo_spec spec[3];
    for (int k = 0; k < 3; k++) {
        parse(sinexp, &spec[k]);
        spec[k].train.epochs = 3;
        spec[k].train.batch_size = 10; /* uneven last batch */
        spec[k].train.seed = k == 2 ? 8 : 7;
        assert_int_equal(mimo_model_create(&spec[k], &m[k]), 0);
        assert_int_equal(mimo_fit(m[k], &dt, NULL, NULL, NULL), 0);
        p[k] = mimo_model_params(m[k]);
        n = mimo_model_param_count(m[k]);
    }
    assert_memory_equal(p[0], p[1], n * sizeof(mimo_real));
    assert_memory_not_equal(p[0], p[2], n * sizeof(mimo_real));
    for (int k = 0; k < 3; k++) {
        mimo_model_free(&m[k]);
        mimo_spec_free(&spec[k]);
    }
}

/* validation_split takes the LAST rows, before shuffling (Keras). */
static void test_validation_split(void **s)
{
    (void)s;
    enum { N = 10 };
    static mimo_real x[N], y[N];
    for (int i = 0; i < N; i++)
        x[i] = (mimo_real)i, y[i] = i < 8 ? 0.0f : 100.0f;
    mimo_array a[] = {{"x", x, N, 1}, {"y", y, N, 1}};
    mimo_dataset d = {a, 2};
    mimo_spec spec;
    mimo_model *m = NULL;
    parse("inputs: {x: {shape: 1}}\n"
          "layers: {y: {type: dense, units: 1, from: x, kernel_initializer: zeros}}\n"
          "outputs: {y: {loss: mae}}\n"
          "train: {optimizer: {type: sgd, lr: 1.0}, epochs: 1, validation_split: 0.2}\n",
          &spec);
    spec.train.opt.lr = 0; /* frozen: the loss shows which rows were used */
    assert_int_equal(mimo_model_create(&spec, &m), 0);
    record r;
    fit(m, &d, NULL, &r);
    assert_true(r.have_val);
    assert_true(fabs(r.last.head[0].loss - 0.0) < 1e-6);      /* rows 0..7 */
    assert_true(fabs(r.last_val.head[0].loss - 100.0) < 1e-4); /* rows 8, 9 */
    record_free(&r);
    mimo_model_free(&m);
    mimo_spec_free(&spec);
}

/* The rows validation_split holds out, one function for `mimo train` and
 * mimo_fit: the last n * split rows, and an error naming the config when
 * either part would be empty. */
static void test_validation_rows(void **s)
{
    (void)s;
    size_t nv = 99;
    assert_int_equal(mimo_validation_rows(0.2, 10, "c.yaml", &nv), 0);
    assert_int_equal(nv, 2);
    assert_int_equal(mimo_validation_rows(0, 10, "c.yaml", &nv), 0);
    assert_int_equal(nv, 0);
    assert_int_equal(mimo_validation_rows(0.05, 10, "c.yaml", &nv), MIMO_EINVAL);
    assert_string_equal(mimo_errmsg(), "c.yaml: validation_split 0.05 of 10 rows "
                                       "leaves no validation rows");
    assert_int_equal(mimo_validation_rows(1, 10, NULL, &nv), MIMO_EINVAL);
    assert_string_equal(mimo_errmsg(), "validation_split 1 of 10 rows leaves no "
                                       "training rows");
    /* mimo_fit refuses it the same way */
    static mimo_real x[10], y[10];
    mimo_array a[] = {{"x", x, 10, 1}, {"y", y, 10, 1}};
    mimo_dataset d = {a, 2};
    mimo_spec spec;
    mimo_model *m = NULL;
    parse("inputs: {x: {shape: 1}}\n"
          "layers: {y: {type: dense, units: 1, from: x}}\n"
          "outputs: {y: {loss: mse}}\n"
          "train: {epochs: 1, validation_split: 0.05}\n",
          &spec);
    assert_int_equal(mimo_model_create(&spec, &m), 0);
    assert_int_equal(mimo_fit(m, &d, NULL, NULL, NULL), MIMO_EINVAL);
    assert_string_equal(mimo_errmsg(), "validation_split 0.05 of 10 rows leaves no "
                                       "validation rows");
    mimo_model_free(&m);
    mimo_spec_free(&spec);
}

/* Saving and restoring the last error keeps its message and whether it
 * was agreed, whatever came in between. */
static void test_error_saved(void **s)
{
    (void)s;
    mimo_error_saved keep;
    mimo_error(MIMO_EIO, "first");
    mimo_error_set_agreed();
    mimo_error_save(&keep);
    mimo_error(MIMO_EINVAL, "second");
    assert_int_equal(mimo_error_restore(&keep, MIMO_EIO), MIMO_EIO);
    assert_string_equal(mimo_errmsg(), "first");
    assert_true(mimo_error_agreed());
    mimo_error(MIMO_EIO, "alone");
    mimo_error_save(&keep);
    mimo_error(MIMO_EINVAL, "agreed");
    mimo_error_set_agreed();
    mimo_error_restore(&keep, MIMO_EIO);
    assert_string_equal(mimo_errmsg(), "alone");
    assert_false(mimo_error_agreed());
    mimo_error_clear();
}

/* The lone-failure rule needs an error (not a stop) on more than one
 * rank: without MPI, nothing is ever alone (2 ranks: tests/cli). */
static void test_failed_alone_one_process(void **s)
{
    (void)s;
    mimo_error(MIMO_EIO, "alone");
    assert_false(mimo_failed_alone(MPI_COMM_NULL, MIMO_EIO));
    assert_false(mimo_failed_alone(MPI_COMM_NULL, 0));
    mimo_error_clear();
}

/* A head with no trainable layer upstream (an activation of an input)
 * trains beside a normal head: it gets no gradient and breaks nothing. */
static void test_head_without_parameters(void **s)
{
    (void)s;
    static const mimo_real x[8] = {0.1f, -0.2f, 0.3f, 0.4f, -0.5f, 0.6f, 0.7f, -0.8f};
    static const mimo_real y[8] = {0.2f, 0.1f, -0.3f, 0.5f, 0.4f, -0.6f, 0.1f, 0.9f};
    mimo_array a[] = {{"x", x, 4, 2}, {"h", y, 4, 2}, {"z", y, 4, 2}};
    mimo_dataset d = {a, 3};
    mimo_spec spec;
    mimo_model *m = NULL;
    parse("inputs: {x: {shape: 2}}\n"
          "layers:\n"
          "  h: {type: dense, units: 2, from: x}\n"
          "  z: {type: activation, activation: tanh, from: x}\n"
          "outputs: {h: {loss: mse}, z: {loss: mse}}\n"
          "train: {optimizer: {type: sgd, lr: 0.1}, batch_size: 4, epochs: 50}\n",
          &spec);
    assert_int_equal(mimo_model_create(&spec, &m), 0);
    record r;
    fit(m, &d, NULL, &r);
    assert_true(r.last.head[0].loss < 0.05); /* h learns the linear map part */
    assert_true(r.last.head[1].loss > 0);    /* z is fixed: its loss stays */
    record_free(&r);
    mimo_model_free(&m);
    mimo_spec_free(&spec);
}

/* Trains one epoch of config (batches of 4 over 8 rows) and returns its
 * model's parameters (caller frees) and the epoch's record. */
static mimo_real *train_rows(const char *yaml, const mimo_dataset *d, record *r,
                             mimo_real **log_var)
{
    mimo_spec spec;
    mimo_model *m = NULL;
    parse(yaml, &spec);
    assert_int_equal(mimo_model_create(&spec, &m), 0);
    fit(m, d, NULL, r);
    size_t n = mimo_model_param_count(m);
    mimo_real *p = malloc(sizeof *p * n);
    memcpy(p, mimo_model_params(m), sizeof *p * n);
    *log_var = NULL;
    if (mimo_graph_log_vars(mimo_model_graph(m))) {
        *log_var = malloc(sizeof(mimo_real) * 2);
        memcpy(*log_var, p, sizeof(mimo_real) * 2);
    }
    mimo_model_free(&m);
    mimo_spec_free(&spec);
    return p;
}

/* A head without a single label in the whole epoch contributes exactly
 * nothing: the same parameters as with that head weighing 0, finite
 * everything, its loss NaN (no labelled row) and the total finite; with
 * learned task weights its s_h stays at 0 while the other's moves. */
static void test_head_without_labels(void **s)
{
    (void)s;
    static const mimo_real x[16] = {0.1f, -0.2f, 0.3f, 0.4f, -0.5f, 0.6f, 0.7f, -0.8f,
                                    0.2f, 0.1f, -0.3f, 0.5f, 0.4f, -0.6f, 0.1f, 0.9f};
    static const mimo_real c[8] = {1, 0, 0, 1, 1, 0, 1, 0};
    static mimo_real none[8], zero[8];
    for (int i = 0; i < 8; i++)
        none[i] = (mimo_real)NAN, zero[i] = 0;
    mimo_array a[] = {{"x", x, 8, 2}, {"c", c, 8, 1}, {"r", none, 8, 1}};
    mimo_array b[] = {{"x", x, 8, 2}, {"c", c, 8, 1}, {"r", zero, 8, 1}};
    const char *graph =
        "inputs: {x: {shape: 2}}\n"
        "layers:\n"
        "  h: {type: dense, units: 3, activation: tanh, from: x}\n"
        "  r: {type: dense, units: 1, from: h}\n"
        "  c: {type: dense, units: 1, activation: sigmoid, from: h}\n";
    const char *train = "train: {optimizer: {type: sgd, lr: 0.5}, batch_size: 4, "
                        "epochs: 1, shuffle: false%s}\n";
    char ya[1024], yb[1024], yu[1024], ta[256], tu[256];
    snprintf(ta, sizeof ta, train, "");
    snprintf(tu, sizeof tu, train, ", loss_weighting: uncertainty");
    snprintf(ya, sizeof ya, "%soutputs: {r: {loss: mse, missing: nan}, "
             "c: {loss: binary_crossentropy}}\n%s", graph, ta);
    snprintf(yb, sizeof yb, "%soutputs: {r: {loss: mse, weight: 0}, "
             "c: {loss: binary_crossentropy}}\n%s", graph, ta);
    snprintf(yu, sizeof yu, "%soutputs: {r: {loss: mse, missing: nan}, "
             "c: {loss: binary_crossentropy}}\n%s", graph, tu);
    record ra, rb, ru;
    mimo_real *lv, *lvb, *lvu;
    mimo_real *pa = train_rows(ya, &(mimo_dataset){a, 3}, &ra, &lv);
    mimo_real *pb = train_rows(yb, &(mimo_dataset){b, 3}, &rb, &lvb);
    mimo_real *pu = train_rows(yu, &(mimo_dataset){a, 3}, &ru, &lvu);
    for (int i = 0; i < 2 * 3 + 3 + 3 + 1 + 3 + 1; i++) {
        assert_true(pa[i] == pb[i]);
        assert_true(isfinite(pu[i]));
    }
    assert_true(isnan(ra.last.head[0].loss) && ra.last.head[0].labelled == 0);
    assert_true(isfinite(ra.last.loss) && ra.last.loss == ra.last.head[1].loss);
    assert_true(fabs(rb.last.head[1].loss - ra.last.head[1].loss) < 1e-7);
    assert_non_null(lvu);
    print_message("s after an epoch: r %g, c %g\n", lvu[0], lvu[1]);
    assert_true(lvu[0] == 0 && lvu[1] != 0);
    free(pa), free(pb), free(pu), free(lvu);
    record_free(&ra), record_free(&rb), record_free(&ru);
}

/* Sample weights from arrays: a row of weight 0 changes nothing, bad
 * weights are an error naming the head and the row. */
static void test_sample_weights_arrays(void **s)
{
    (void)s;
    static const mimo_real x[8] = {0.1f, -0.2f, 0.3f, 0.4f, -0.5f, 0.6f, 0.7f, -0.8f};
    static mimo_real y[8] = {0.2f, 0.1f, -0.3f, 0.5f, 0.4f, -0.6f, 0.1f, 0.9f};
    static mimo_real w[8] = {1, 2, 0, 1, 0.5f, 1, 0, 3};
    const char *yaml = "inputs: {x: {shape: 1}}\n"
                       "layers: {y: {type: dense, units: 1, from: x}}\n"
                       "outputs: {y: {loss: mse, sample_weight: w}}\n"
                       "train: {optimizer: {type: sgd, lr: 0.3}, batch_size: 8, "
                       "epochs: 3}\n";
    mimo_array a[] = {{"x", x, 8, 1}, {"y", y, 8, 1}, {"w", w, 8, 1}};
    record r1, r2;
    mimo_real *lv;
    mimo_real *p1 = train_rows(yaml, &(mimo_dataset){a, 3}, &r1, &lv);
    y[2] = 1000, y[6] = -50; /* rows of weight 0 */
    mimo_real *p2 = train_rows(yaml, &(mimo_dataset){a, 3}, &r2, &lv);
    assert_true(p1[0] == p2[0] && p1[1] == p2[1]);
    assert_true(r1.last.head[0].labelled == 8 && r1.last.head[0].weight == 8.5);
    free(p1), free(p2);
    record_free(&r1), record_free(&r2);
    w[5] = -1;
    mimo_spec spec;
    mimo_model *m = NULL;
    parse(yaml, &spec);
    assert_int_equal(mimo_model_create(&spec, &m), 0);
    record r;
    memset(&r, 0, sizeof r);
    mimo_stats_init(&r.last, 1);
    mimo_stats_init(&r.last_val, 1);
    assert_int_equal(mimo_fit(m, &(mimo_dataset){a, 3}, NULL, on_epoch, &r), MIMO_EINVAL);
    print_message("%s\n", mimo_errmsg());
    assert_non_null(strstr(mimo_errmsg(), "sample weight -1"));
    record_free(&r);
    mimo_model_free(&m);
    mimo_spec_free(&spec);
    w[5] = 1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed000),
        cmocka_unit_test(test_xor),
        cmocka_unit_test(test_sinexp),
        cmocka_unit_test(test_seeded_determinism),
        cmocka_unit_test(test_validation_split),
        cmocka_unit_test(test_validation_rows),
        cmocka_unit_test(test_error_saved),
        cmocka_unit_test(test_failed_alone_one_process),
        cmocka_unit_test(test_head_without_parameters),
        cmocka_unit_test(test_head_without_labels),
        cmocka_unit_test(test_sample_weights_arrays),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
