/* test_bf16.c — train.precision: bf16's products against float32.
 *
 * The matmul kernel (core/bf16.h, the one dense uses for its three
 * products: x W, dz W^T as a transposed operand, x^T dz likewise), on odd
 * sizes, writing and accumulating: (a) it accumulates in float32 — against
 * the exact (double) product of the bf16-rounded inputs it is within
 * 1e-5 of sum_k |a_ik b_kj| per element (a bf16 accumulator would be
 * ~4e-3 off); (b) against sgemm on the unrounded inputs each element is
 * within 1e-2 of the same sum (bf16's rounding of two inputs: at most
 * 2^-8 relative per product).
 *
 * The layers: one dense (on a sequence), conv2d (same and valid, 1 and 3
 * channels) and conv1d (causal, dilated) layer each, compiled with and
 * without precision: bf16 from the same parameters; the output, the
 * input's gradient and every parameter's gradient of one backward agree
 * with float32's within 1e-2 relative per element (with a floor of 1e-2
 * of the tensor's rms, for elements near zero by cancellation), and the
 * forward, against float32 on the bf16-rounded input and kernel, within
 * 1e-5 of sum |x||W| (float32 accumulation in oneDNN's convolutions too).
 * And the bf16 graph really ran bf16 (its output differs from float32's).
 * Each at 16, 15 and 5 rows of a 16-row graph (a last short batch, a
 * rank's slice), and a row's output is bitwise the same whatever rows
 * share its step (what keeps ranks training the same weights).
 *
 * Skipped, with a SKIP line, where the CPU has no native bf16 (or the
 * build no oneDNN): the fallback is tests/cli/precision.sh's. */
#define _DEFAULT_SOURCE /* sigaction, pthread_sigmask */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cblas.h>
#include <signal.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bf16.h"
#include "core/graph_impl.h"
#include "core/model.h"
#include "mimo/mimo.h"

static int no_bf16(void)
{
    const char *why = NULL;
    if (mimo_bf16_native(&why))
        return 0;
    print_message("SKIP: no native bf16 here (%s)\n", why);
    return 1;
}

static float round_bf16(float v)
{
    mimo_bf16 b;
    mimo_bf16_from(&b, &v, 1);
    return mimo_bf16_to(b);
}

static void fill(float *v, size_t n, unsigned seed)
{
    mimo_rng r;
    mimo_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)mimo_rng_normal(&r);
}

/* element (i, j) of op(A) op(B) in double over rounded (or not) values;
 * *abs the sum of |a||b| */
static double ref(int ta, int tb, int K, const float *A, int lda, const float *B, int ldb,
                  int i, int j, int rounded, double *abs)
{
    double s = 0;
    *abs = 0;
    for (int k = 0; k < K; k++) {
        float a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
        float b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
        if (rounded)
            a = round_bf16(a), b = round_bf16(b);
        s += (double)a * b, *abs += fabs((double)a * b);
    }
    return s;
}

/* One product C (+)= op(A) op(B), M x N x K, checked as the header says. */
static void check_gemm(mimo_bf16_mm *mm, int ta, int tb, int M, int N, int K, int acc)
{
    int lda = ta ? M : K, ldb = tb ? K : N, ldc = N + 3; /* C: a wider matrix's columns */
    size_t na = (size_t)M * K, nb = (size_t)K * N, nc = (size_t)M * ldc;
    float *A = malloc(na * 4), *B = malloc(nb * 4), *C = malloc(nc * 4), *C0 = malloc(nc * 4);
    mimo_bf16 *Ab = malloc(na * 2), *Bb = malloc(nb * 2);
    fill(A, na, 1), fill(B, nb, 2), fill(C0, nc, 3);
    memcpy(C, C0, nc * 4);
    mimo_bf16_from(Ab, A, na);
    mimo_bf16_from(Bb, B, nb);
    assert_int_equal(mimo_bf16_gemm(mm, ta, tb, M, N, K, Ab, lda, Bb, ldb, acc, C, ldc), 0);
    double worst_acc = 0, worst_f32 = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double abs, abs32, base = acc ? C0[(size_t)i * ldc + j] : 0;
            double exact = base + ref(ta, tb, K, A, lda, B, ldb, i, j, 1, &abs);
            double f32 = base + ref(ta, tb, K, A, lda, B, ldb, i, j, 0, &abs32);
            double got = C[(size_t)i * ldc + j];
            worst_acc = fmax(worst_acc, fabs(got - exact) / (abs + fabs(base)));
            worst_f32 = fmax(worst_f32, fabs(got - f32) / (abs32 + fabs(base)));
        }
    for (int i = 0; i < M; i++) /* the columns past N are not written */
        for (int j = N; j < ldc; j++)
            assert_true(C[(size_t)i * ldc + j] == C0[(size_t)i * ldc + j]);
    print_message("gemm ta %d tb %d %dx%dx%d acc %d: float32 accumulation %.2g, "
                  "against float32 %.2g (of sum |a||b|)\n", ta, tb, M, N, K, acc,
                  worst_acc, worst_f32);
    if (worst_acc > 1e-5)
        fail_msg("not float32 accumulation: %.3g of sum |a||b| off the exact product "
                 "of the bf16 inputs", worst_acc);
    if (worst_f32 > 1e-2)
        fail_msg("%.3g of sum |a||b| off float32", worst_f32);
    free(A), free(B), free(C), free(C0), free(Ab), free(Bb);
}

/* to nearest, ties to even; NaN stays NaN, signs and infinities kept */
static void test_round(void **s)
{
    (void)s;
    float in[] = {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, 1.0f + 0x1p-8f + 0x1p-20f, -2.5f,
                  -0.0f, INFINITY, 65280.0f};
    float want[] = {1.0f, 1.0f + 0x1p-6f, 1.0f + 0x1p-7f, -2.5f, -0.0f, INFINITY,
                    65280.0f};
    mimo_bf16 b[7];
    mimo_bf16_from(b, in, 7);
    for (int i = 0; i < 7; i++)
        if (mimo_bf16_to(b[i]) != want[i] || signbit(mimo_bf16_to(b[i])) != signbit(want[i]))
            fail_msg("bf16 of %.9g: %.9g, want %.9g", (double)in[i],
                     (double)mimo_bf16_to(b[i]), (double)want[i]);
    float nan = NAN, sub[2] = {1e-40f, -1e-40f}; /* subnormals: zeros of their sign */
    mimo_bf16_from(b, &nan, 1);
    assert_true(isnan(mimo_bf16_to(b[0])));
    mimo_bf16_from(b, sub, 2);
    assert_true(b[0] == 0 && b[1] == 0x8000);
    /* the vector conversion (16 at a time) = the scalar one (tails) */
    float v[53];
    mimo_bf16 all[53], one;
    fill(v, 53, 11);
    v[3] = 1e-39f, v[17] = -INFINITY, v[20] = NAN, v[40] = 1.0f + 0x1p-8f;
    mimo_bf16_from(all, v, 53);
    for (int i = 0; i < 53; i++) {
        mimo_bf16_from(&one, v + i, 1);
        if (one != all[i])
            fail_msg("value %d (%.9g): 0x%04x in a block, 0x%04x alone", i, (double)v[i],
                     all[i], one);
    }
}

static void test_gemm(void **s)
{
    (void)s;
    if (no_bf16())
        skip();
    mimo_bf16_mm *mm = mimo_bf16_mm_new();
    assert_non_null(mm);
    /* dense's three: forward x W, backward x^T dz (ta) and dz W^T (tb) */
    for (int acc = 0; acc < 2; acc++) {
        check_gemm(mm, 0, 0, 37, 29, 53, acc);
        check_gemm(mm, 1, 0, 53, 29, 37, acc);
        check_gemm(mm, 0, 1, 37, 53, 29, acc);
    }
    check_gemm(mm, 0, 0, 130, 67, 300, 0);
    check_gemm(mm, 1, 0, 300, 67, 130, 1);
    mimo_bf16_mm_free(mm);
}

/* ---- layers ---------------------------------------------------------- */

/* the graph's rows, and each step's: the largest, or fewer (the last,
 * short batch of an epoch; a rank's slice) */
enum { MAX_BATCH = 16 };
static int batch = MAX_BATCH;

typedef struct {
    mimo_spec spec;
    mimo_graph *g;
    size_t np, nx;
    int width;
    mimo_real *params, *grads, *x, *t;
} net;

/* targets far from the outputs: d loss / d y = 2 (y - t) / width is
 * then t's, nearly the same in both precisions (the backward's kernels
 * compared, not the forward's error carried into them) */
static void targets(net *n, unsigned seed)
{
    size_t ny = (size_t)batch * n->width;
    fill(n->t, ny, seed);
    for (size_t i = 0; i < ny; i++)
        n->t[i] *= 100;
}

/* input x of shape `shape`, layer y, an mse head on it; bf16 or not */
static void build(net *n, const char *shape, const char *layer, int bf16)
{
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "inputs: {x: {shape: %s}}\nlayers:\n  y: %s\noutputs: {y: {loss: mse}}\n"
             "train: {precision: %s}\n", shape, layer, bf16 ? "bf16" : "float32");
    memset(n, 0, sizeof *n);
    if (mimo_config_parse(yaml, strlen(yaml), "t.yaml", NULL, 0, &n->spec))
        fail_msg("config: %s\n%s", mimo_errmsg(), yaml);
    if (mimo_graph_compile(&n->spec, MAX_BATCH, 1, &n->g))
        fail_msg("compile: %s", mimo_errmsg());
    assert_int_equal(mimo_graph_bf16(n->g), bf16);
    n->np = mimo_graph_param_count(n->g);
    size_t width = (size_t)mimo_graph_input_width(n->g, 0);
    n->nx = (size_t)batch * width;
    n->width = mimo_graph_head_units(n->g, 0);
    n->params = calloc(n->np, sizeof(mimo_real));
    n->grads = calloc(n->np, sizeof(mimo_real));
    n->x = malloc(sizeof(mimo_real) * MAX_BATCH * width);
    n->t = malloc(sizeof(mimo_real) * (size_t)MAX_BATCH * n->width);
    mimo_graph_init_params(n->g, n->params, 3);
    fill(n->x, MAX_BATCH * width, 7);
    for (size_t i = 0; i < n->np; i++) /* biases too */
        n->params[i] += (mimo_real)(0.05 * sin(3.0 * (double)i));
}

static void drop(net *n)
{
    free(n->params), free(n->grads), free(n->x), free(n->t);
    mimo_graph_free(&n->g);
    mimo_spec_free(&n->spec);
}

static void run(net *n)
{
    const mimo_real *in[1] = {n->x}, *tg[1] = {n->t};
    memset(n->grads, 0, n->np * sizeof *n->grads);
    mimo_graph_forward(n->g, n->params, in, batch);
    assert_int_equal(mimo_graph_loss(n->g, tg, batch, 1.0, NULL), 0);
    mimo_graph_backward(n->g, n->params, n->grads, batch);
}

/* each |a - b| <= tol mag, mag >= 0 the magnitude of the sums: the same
 * products over |x|, |W|, |dz|; the worst ratio is returned */
static double within(const char *layer, const char *what, const mimo_real *a,
                     const mimo_real *b, const mimo_real *mag, size_t len, double tol)
{
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < len; i++) {
        double e = fabs((double)a[i] - b[i]) / ((double)mag[i] + 1e-30);
        if (e > worst)
            worst = e, at = i;
    }
    if (worst > tol)
        fail_msg("%s, %s[%zu]: bf16 %.8g, float32 %.8g (magnitude %.3g): %.3g > %.3g",
                 layer, what, at, (double)a[at], (double)b[at], (double)mag[at], worst,
                 tol);
    return worst;
}

/* The layer in float32 (f), in bf16 (h), in float32 on the bf16-rounded
 * input and kernel (r), and in float32 on the magnitudes |x|, |W|, |b|
 * with targets -|t| (ab: as 100 |t| >> |y|, its dz = 2 (y + |t|) / width
 * >= |dz| of the others: every product of ab bounds the sum of the
 * magnitudes of the terms of the same product of the others). Two steps,
 * the second with other targets (another dz: nothing of the first step's
 * kept in the bf16 copies). */
static void check_layer(const char *shape, const char *layer)
{
    net f, h, r, ab;
    build(&f, shape, layer, 0);
    build(&h, shape, layer, 1);
    build(&r, shape, layer, 0);
    build(&ab, shape, layer, 0);
    memcpy(h.params, f.params, f.np * sizeof *f.params);
    mimo_param_info kern = mimo_graph_tensor(f.g, 0);
    for (size_t i = 0; i < f.np; i++) {
        int in_kernel = i >= kern.offset && i < kern.offset + kern.size;
        r.params[i] = in_kernel ? round_bf16(f.params[i]) : f.params[i];
        ab.params[i] = fabsf(r.params[i]);
    }
    for (size_t i = 0; i < f.nx; i++)
        r.x[i] = round_bf16(f.x[i]), ab.x[i] = fabsf(r.x[i]);
    size_t ny = (size_t)batch * f.width;
    double w = 0, acc = 0;
    for (int step = 0; step < 2; step++) {
        targets(&f, 8 + (unsigned)step);
        memcpy(h.t, f.t, ny * sizeof *f.t), memcpy(r.t, f.t, ny * sizeof *f.t);
        for (size_t i = 0; i < ny; i++)
            ab.t[i] = -fabsf(f.t[i]);
        run(&f), run(&h), run(&r), run(&ab);
        const mimo_real *yf = mimo_graph_output(f.g, 0), *yh = mimo_graph_output(h.g, 0);
        const mimo_real *yr = mimo_graph_output(r.g, 0), *ya = mimo_graph_output(ab.g, 0);
        assert_memory_not_equal(yh, yf, ny * sizeof *yf); /* bf16 ran */
        w = fmax(w, within(layer, "output", yh, yf, ya, ny, 1e-2));
        /* float32 accumulation: as float32 on the rounded values */
        acc = fmax(acc, within(layer, "output (accumulation)", yh, yr, ya, ny, 1e-5));
        w = fmax(w, within(layer, "input gradient", mimo_graph_input_grad(h.g, 0),
                           mimo_graph_input_grad(f.g, 0), mimo_graph_input_grad(ab.g, 0),
                           f.nx, 1e-2));
        for (int k = 0; k < mimo_graph_n_tensors(f.g); k++) {
            mimo_param_info p = mimo_graph_tensor(f.g, k);
            w = fmax(w, within(layer, p.name, h.grads + p.offset, f.grads + p.offset,
                               ab.grads + p.offset, p.size, 1e-2));
        }
    }
    print_message("%-70s against float32 %.2g; accumulation %.2g\n", layer, w, acc);
    drop(&f), drop(&h), drop(&r), drop(&ab);
}

/* A row's bf16 output does not depend on the rows beside it: the first 5
 * rows of a 16-row step are bitwise those of a 5-row step (what keeps
 * ranks, each with its slice, training the same weights) */
static void rows_alone(const char *shape, const char *layer)
{
    net h;
    batch = MAX_BATCH;
    build(&h, shape, layer, 1);
    targets(&h, 8);
    run(&h);
    size_t w = (size_t)h.width;
    mimo_real *full = malloc(sizeof *full * MAX_BATCH * w);
    memcpy(full, mimo_graph_output(h.g, 0), sizeof *full * MAX_BATCH * w);
    batch = 5;
    run(&h);
    assert_memory_equal(mimo_graph_output(h.g, 0), full, sizeof *full * 5 * w);
    free(full);
    drop(&h);
}

static void test_rows_alone(void **s)
{
    (void)s;
    if (no_bf16())
        skip();
    rows_alone("300", "{type: dense, units: 33, from: x}");
    rows_alone("[9, 8, 3]", "{type: conv2d, filters: 5, kernel_size: 3, padding: same, from: x}");
    rows_alone("[12, 4]", "{type: conv1d, filters: 6, kernel_size: 3, from: x}");
    batch = MAX_BATCH;
}

/* Two backwards over one forward (task balancing's per-head passes), the
 * second with other targets: bitwise the backward of a fresh step with
 * those (no bf16 copy of the first pass's dz reused); and a step of 0
 * rows (a rank without rows beside a collective layer) adds nothing. */
static void two_backwards(const char *shape, const char *layer)
{
    net a, b;
    batch = MAX_BATCH;
    build(&a, shape, layer, 1);
    build(&b, shape, layer, 1);
    targets(&a, 8);
    run(&a);
    targets(&a, 9), targets(&b, 9);
    const mimo_real *tg[1] = {a.t}, *in[1] = {a.x};
    memset(a.grads, 0, a.np * sizeof *a.grads);
    assert_int_equal(mimo_graph_loss(a.g, tg, batch, 1.0, NULL), 0);
    mimo_graph_backward(a.g, a.params, a.grads, batch);
    run(&b);
    if (memcmp(a.grads, b.grads, a.np * sizeof *a.grads))
        fail_msg("%s: a second backward over one forward is not a fresh step's", layer);
    memset(a.grads, 0, a.np * sizeof *a.grads);
    mimo_graph_forward(a.g, a.params, in, 0);
    mimo_graph_backward(a.g, a.params, a.grads, 0);
    for (size_t i = 0; i < a.np; i++)
        assert_true(a.grads[i] == 0);
    drop(&a), drop(&b);
}

static void test_two_backwards(void **s)
{
    (void)s;
    if (no_bf16())
        skip();
    two_backwards("300", "{type: dense, units: 33, from: x}");
    two_backwards("[9, 8, 3]", "{type: conv2d, filters: 5, kernel_size: 3, padding: same, from: x}");
    two_backwards("[12, 4]", "{type: conv1d, filters: 6, kernel_size: 3, from: x}");
}

static void test_layers(void **s)
{
    (void)s;
    if (no_bf16())
        skip();
    static const int batches[] = {MAX_BATCH, 15, 5};
    for (int i = 0; i < 3; i++) {
        batch = batches[i];
        print_message("%d rows of a graph of %d:\n", batch, MAX_BATCH);
        check_layer("[4, 6]", "{type: dense, units: 7, from: x}");
        check_layer("300", "{type: dense, units: 33, from: x}");
        check_layer("[9, 8, 3]", "{type: conv2d, filters: 5, kernel_size: 3, padding: same, "
                    "from: x}");
        check_layer("[10, 7, 1]", "{type: conv2d, filters: 16, kernel_size: [3, 2], "
                    "strides: 2, from: x}");
        check_layer("[12, 4]", "{type: conv1d, filters: 6, kernel_size: 3, padding: causal, "
                    "dilation_rate: 2, from: x}");
    }
}

/* Large float32 products go to oneDNN's dnnl_sgemm only where no signal
 * handler can run on the computing thread (oneDNN 2.6's kernels keep
 * their stack in the heap: core/graph_impl.h's mimo_sgemm): a handler
 * of SIGUSR2 makes the thread unsafe, blocking it there makes it safe
 * again; a fault's handler (SIGSEGV) does not count. */
#ifdef MIMO_DNNL
static void on_usr2(int sig) { (void)sig; }
#endif

static void test_sgemm_signal_gate(void **s)
{
    (void)s;
#ifdef MIMO_DNNL
    struct sigaction sa, old, old_segv;
    sigset_t usr2;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr2;
    sigemptyset(&sa.sa_mask);
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    assert_int_equal(sigaction(SIGSEGV, &sa, &old_segv), 0);
    int before = mimo_dnnl_signal_safe();
    assert_int_equal(sigaction(SIGUSR2, &sa, &old), 0);
    assert_false(mimo_dnnl_signal_safe());
    pthread_sigmask(SIG_BLOCK, &usr2, NULL);
    assert_int_equal(mimo_dnnl_signal_safe(), before);
    pthread_sigmask(SIG_UNBLOCK, &usr2, NULL);
    sigaction(SIGUSR2, &old, NULL);
    sigaction(SIGSEGV, &old_segv, NULL);
    assert_true(before); /* this test program handles nothing else */
#else
    skip();
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round),
        cmocka_unit_test(test_gemm),
        cmocka_unit_test(test_layers),
        cmocka_unit_test(test_rows_alone),
        cmocka_unit_test(test_two_backwards),
        cmocka_unit_test(test_sgemm_signal_gate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
