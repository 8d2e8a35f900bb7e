/* test_metrics.c — the heads' metrics against direct computations: the
 * exact ROC AUC against counting every (positive, negative) pair, on ties,
 * over batches, without the unlabelled rows, and NaN for a single class;
 * precision, recall and f1 (binary pooled, categorical macro), top-k with
 * ties, r2; the sums' copy and reset; and NaN scores (an AUC of NaN,
 * in bounded time: the tie loop once spun forever on NaN != NaN). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/model.h"
#include "mimo/mimo.h"

#define N 240
#define B 64 /* batches of up to B rows */

typedef struct {
    mimo_spec spec;
    mimo_graph *g;
    mimo_metrics *m;
} bench;

static void make(bench *t, const char *yaml)
{
    memset(t, 0, sizeof *t);
    if (mimo_config_parse(yaml, strlen(yaml), "m.yaml", NULL, 0, &t->spec) ||
        mimo_graph_compile(&t->spec, B, 0, &t->g) || mimo_metrics_create(t->g, &t->m))
        fail_msg("%s", mimo_errmsg());
}

static void destroy(bench *t)
{
    mimo_metrics_free(&t->m);
    mimo_graph_free(&t->g);
    mimo_spec_free(&t->spec);
}

/* Feeds rows [0, N) of x (N, width) and targets t (N, tw) in batches;
 * out (may be NULL) gets the head's outputs (N, width). */
static void feed_out(bench *t, const mimo_real *x, int width, const mimo_real *tg,
                     int tw, mimo_real *out)
{
    mimo_real w[B];
    for (int r0 = 0; r0 < N; r0 += B) {
        int b = N - r0 < B ? N - r0 : B;
        const mimo_real *in[1] = {x + (size_t)r0 * width};
        const mimo_real *tt[1] = {tg + (size_t)r0 * tw};
        mimo_real *ww[1] = {w};
        double sum;
        mimo_head_stats st = {0};
        mimo_graph_forward(t->g, NULL, in, b);
        assert_int_equal(mimo_graph_weigh(t->g, tt, NULL, b, ww, &sum), 0);
        const mimo_real *wr[1] = {mimo_graph_head_weighted(t->g, 0) ? w : NULL};
        assert_int_equal(mimo_graph_loss_weighted(t->g, tt, wr, b, NULL, &st), 0);
        assert_int_equal(mimo_metrics_add(t->m, 0, &st, tt[0], wr[0], b), 0);
        if (out)
            memcpy(out + (size_t)r0 * width, mimo_graph_output(t->g, 0),
                   sizeof(mimo_real) * (size_t)b * (size_t)width);
    }
}

static void feed(bench *t, const mimo_real *x, int width, const mimo_real *tg, int tw)
{
    feed_out(t, x, width, tg, tw, NULL);
}

/* P(score of a positive > score of a negative), ties one half: O(n^2). */
static double auc_pairs(const double *s, const int *pos, int n)
{
    double hits = 0, pairs = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (pos[i] && !pos[j]) {
                pairs++;
                hits += s[i] > s[j] ? 1 : s[i] == s[j] ? 0.5 : 0;
            }
    return pairs ? hits / pairs : NAN;
}

static double sigmoid(double z) { return 1 / (1 + exp(-z)); }

/* Binary: scores on a coarse grid (many ties), every 7th row unlabelled. */
static void test_auc_binary_ties(void **state)
{
    (void)state;
    bench t;
    make(&t, "inputs: {x: {shape: 1}}\n"
             "layers: {p: {type: activation, activation: sigmoid, from: x}}\n"
             "outputs: {p: {loss: binary_crossentropy, missing: nan, "
             "metrics: [auc, accuracy, precision, recall, f1]}}\n");
    mimo_real x[N], y[N];
    double s[N];
    int pos[N], n = 0, tp = 0, fp = 0, fn = 0, hits = 0;
    mimo_rng r;
    mimo_rng_seed(&r, 5);
    for (int i = 0; i < N; i++) {
        x[i] = (mimo_real)((int)mimo_rng_below(&r, 9) - 4) / 2; /* 9 values */
        int label = mimo_rng_uniform(&r) < sigmoid(x[i]);
        y[i] = i % 7 == 3 ? (mimo_real)NAN : (mimo_real)label;
        if (i % 7 == 3)
            continue;
        s[n] = (double)(mimo_real)sigmoid(x[i]), pos[n] = label;
        int pred = s[n] > 0.5;
        tp += pred && label, fp += pred && !label, fn += !pred && label;
        hits += pred == label;
        n++;
    }
    feed(&t, x, 1, y, 1);
    mimo_head_stats v;
    mimo_metrics_values(t.m, 0, &v);
    double want = auc_pairs(s, pos, n);
    print_message("auc %.12f, pairs %.12f over %d rows\n", v.auc, want, n);
    assert_true(fabs(v.auc - want) < 1e-12);
    assert_true(v.labelled == n);
    assert_true(fabs(v.acc - (double)hits / n) < 1e-12);
    double P = (double)tp / (tp + fp), R = (double)tp / (tp + fn);
    assert_true(fabs(v.precision - P) < 1e-12);
    assert_true(fabs(v.recall - R) < 1e-12);
    assert_true(fabs(v.f1 - 2 * P * R / (P + R)) < 1e-12);
    /* a value fixed from elsewhere (rank 0's, over all ranks) is reported
     * until the entries change; new rows bring back this process's own */
    assert_true(mimo_metrics_auc(t.m, 0) == v.auc);
    mimo_metrics_fix_auc(t.m, 0, 0.25);
    mimo_metrics_values(t.m, 0, &v);
    assert_true(v.auc == 0.25);
    feed(&t, x, 1, y, 1);
    mimo_metrics_values(t.m, 0, &v);
    assert_true(fabs(v.auc - want) < 1e-12); /* each row twice: the same AUC */
    destroy(&t);
}

/* An epoch with one class only has no AUC: NaN (and so does a head
 * without a labelled row, for every metric). */
static void test_auc_single_class_nan(void **state)
{
    (void)state;
    bench t;
    make(&t, "inputs: {x: {shape: 1}}\n"
             "layers: {p: {type: activation, activation: sigmoid, from: x}}\n"
             "outputs: {p: {loss: binary_crossentropy, missing: nan, "
             "metrics: [auc, precision]}}\n");
    mimo_real x[N], y[N];
    for (int i = 0; i < N; i++)
        x[i] = (mimo_real)(i % 5), y[i] = 1;
    feed(&t, x, 1, y, 1);
    mimo_head_stats v;
    mimo_metrics_values(t.m, 0, &v);
    assert_true(isnan(v.auc));
    assert_true(v.precision == 1);
    mimo_metrics_reset(t.m);
    for (int i = 0; i < N; i++)
        y[i] = (mimo_real)NAN;
    feed(&t, x, 1, y, 1);
    mimo_metrics_values(t.m, 0, &v);
    assert_true(v.labelled == 0 && isnan(v.auc) && isnan(v.loss) && isnan(v.precision));
    assert_true(isnan(mimo_auc((mimo_real[]){0.5f}, (unsigned char[]){1}, 1, 1)));
    assert_true(mimo_auc((mimo_real[]){0.5f, 0.5f}, (unsigned char[]){1, 0}, 2, 1) == 0.5);
    destroy(&t);
}

/* A NaN score has no rank: the AUC of a list holding one is NaN (the rule
 * in metrics.c), through mimo_auc and through a head's epoch, binary and
 * one-vs-rest; infinite scores rank as any other. The alarm turns a
 * return of the endless tie loop into a failure, not a hung suite. */
static void test_auc_nan_scores(void **state)
{
    (void)state;
    alarm(60);
    mimo_real s[4] = {(mimo_real)NAN, 0.2f, (mimo_real)NAN, 0.7f};
    unsigned char p[4] = {1, 0, 0, 1};
    assert_true(isnan(mimo_auc(s, p, 4, 1)));
    s[0] = s[2] = (mimo_real)NAN, s[1] = s[3] = (mimo_real)NAN;
    assert_true(isnan(mimo_auc(s, p, 4, 1)));
    mimo_real inf[3] = {(mimo_real)-INFINITY, 0.5f, (mimo_real)INFINITY};
    assert_true(mimo_auc(inf, (unsigned char[]){0, 0, 1}, 3, 1) == 1);

    bench t;
    make(&t, "inputs: {x: {shape: 1}}\n"
             "layers: {p: {type: activation, activation: sigmoid, from: x}}\n"
             "outputs: {p: {loss: binary_crossentropy, "
             "metrics: [auc, accuracy]}}\n");
    mimo_real x[N], y[N];
    for (int i = 0; i < N; i++)
        x[i] = i % 50 == 3 ? (mimo_real)NAN : (mimo_real)(i % 5), y[i] = (mimo_real)(i % 2);
    feed(&t, x, 1, y, 1);
    mimo_head_stats v;
    mimo_metrics_values(t.m, 0, &v);
    assert_true(isnan(v.auc) && isnan(v.loss));
    assert_true(v.acc >= 0 && v.acc <= 1); /* a NaN output is no hit */
    destroy(&t);

    /* one-vs-rest: a NaN in any class's scores, not only skipped */
    make(&t, "inputs: {x: {shape: 3}}\n"
             "layers: {p: {type: activation, activation: softmax, from: x}}\n"
             "outputs: {p: {loss: sparse_categorical_crossentropy, "
             "metrics: [auc]}}\n");
    mimo_real x3[N * 3];
    for (int i = 0; i < N * 3; i++)
        x3[i] = i == 7 ? (mimo_real)NAN : (mimo_real)((i * 7) % 11);
    for (int i = 0; i < N; i++)
        y[i] = (mimo_real)(i % 3);
    feed(&t, x3, 3, y, 1);
    mimo_metrics_values(t.m, 0, &v);
    assert_true(isnan(v.auc));
    destroy(&t);
    alarm(0);
}

/* Categorical: one-vs-rest AUC per class averaged, precision/recall/f1 of
 * the argmax per class averaged, top-2 with ties; -1 rows unlabelled. */
static void test_categorical(void **state)
{
    (void)state;
    bench t;
    make(&t, "inputs: {x: {shape: 4}}\n"
             "layers: {p: {type: activation, activation: softmax, from: x}}\n"
             "outputs: {p: {loss: sparse_categorical_crossentropy, missing: -1, "
             "metrics: [auc, precision, recall, f1, top_k_accuracy], top_k: 2}}\n");
    enum { K = 4 };
    static mimo_real x[N * K], y[N], out[N * K];
    mimo_rng r;
    mimo_rng_seed(&r, 9);
    for (int i = 0; i < N; i++) {
        int c = (int)mimo_rng_below(&r, 3); /* class 3 never occurs */
        for (int j = 0; j < K; j++) /* ties: some rows have equal logits */
            x[i * K + j] = (mimo_real)(i % 11 == 0 ? 0 : (int)mimo_rng_below(&r, 3) +
                                                           (j == c));
        y[i] = i % 5 == 1 ? -1 : (mimo_real)c;
    }
    feed_out(&t, x, K, y, 1, out);
    mimo_head_stats v;
    mimo_metrics_values(t.m, 0, &v);
    /* the direct computation on the probabilities the graph made */
    static double s[N];
    static int pos[N];
    double auc = 0, prec = 0, rec = 0, f1 = 0, top = 0, labelled = 0;
    int used = 0, used_c = 0;
    mimo_real p[K];
    for (int c = 0; c < K; c++) {
        int n = 0, tp = 0, fp = 0, fn = 0;
        for (int i = 0; i < N; i++) {
            if (y[i] < 0)
                continue;
            for (int j = 0; j < K; j++)
                p[j] = out[i * K + j];
            int pred = 0;
            for (int j = 1; j < K; j++)
                pred = p[j] > p[pred] ? j : pred;
            s[n] = p[c], pos[n] = (int)y[i] == c, n++;
            tp += pred == c && (int)y[i] == c, fp += pred == c && (int)y[i] != c;
            fn += pred != c && (int)y[i] == c;
            if (c == 0) {
                int above = 0;
                for (int j = 0; j < K; j++)
                    above += p[j] > p[(int)y[i]];
                top += above < 2, labelled++;
            }
        }
        double a = auc_pairs(s, pos, n);
        if (!isnan(a))
            auc += a, used++;
        if (tp + fp + fn) {
            double P = tp + fp ? (double)tp / (tp + fp) : 0;
            double R = tp + fn ? (double)tp / (tp + fn) : 0;
            prec += P, rec += R, f1 += P + R > 0 ? 2 * P * R / (P + R) : 0, used_c++;
        }
    }
    print_message("auc %.12f want %.12f; top-2 %.6f; f1 %.6f\n", v.auc, auc / used,
                  v.top_k, v.f1);
    assert_int_equal(used, 3);
    assert_true(fabs(v.auc - auc / used) < 1e-12);
    assert_true(fabs(v.precision - prec / used_c) < 1e-12);
    assert_true(fabs(v.recall - rec / used_c) < 1e-12);
    assert_true(fabs(v.f1 - f1 / used_c) < 1e-12);
    assert_true(fabs(v.top_k - top / labelled) < 1e-12);
    assert_true(v.top_k < 1 && v.top_k > v.precision); /* not trivial */
    destroy(&t);
}

/* r2 per unit, averaged; mse and mae; copy and reset of the sums. */
static void test_r2_copy_reset(void **state)
{
    (void)state;
    bench t;
    make(&t, "inputs: {x: {shape: 2}}\n"
             "layers: {p: {type: activation, activation: linear, from: x}}\n"
             "outputs: {p: {loss: mse, metrics: [r2, mse, mae]}}\n");
    mimo_real x[N * 2], y[N * 2];
    double sum[2] = {0}, sq[2] = {0}, se[2] = {0};
    mimo_rng r;
    mimo_rng_seed(&r, 3);
    for (int i = 0; i < N * 2; i++) {
        y[i] = (mimo_real)(mimo_rng_normal(&r) * (i % 2 ? 3 : 1));
        x[i] = y[i] + (mimo_real)(0.5 * mimo_rng_normal(&r));
        sum[i % 2] += y[i], se[i % 2] += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
    }
    for (int i = 0; i < N * 2; i++)
        sq[i % 2] += (y[i] - sum[i % 2] / N) * (y[i] - sum[i % 2] / N);
    feed(&t, x, 2, y, 2);
    mimo_head_stats v, c;
    mimo_metrics_values(t.m, 0, &v);
    double want = (1 - se[0] / sq[0] + 1 - se[1] / sq[1]) / 2;
    print_message("r2 %.9f want %.9f\n", v.r2, want);
    assert_true(fabs(v.r2 - want) < 1e-9);
    assert_true(fabs(v.mse - (se[0] + se[1]) / (2 * N)) < 1e-9);
    mimo_metrics *copy = NULL;
    assert_int_equal(mimo_metrics_create(t.g, &copy), 0);
    assert_int_equal(mimo_metrics_copy(copy, t.m), 0);
    mimo_metrics_values(copy, 0, &c);
    assert_true(c.r2 == v.r2 && c.loss == v.loss && c.labelled == N);
    mimo_metrics_reset(t.m);
    mimo_metrics_values(t.m, 0, &v);
    assert_true(v.labelled == 0 && isnan(v.r2));
    mimo_metrics_free(&copy);
    destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auc_binary_ties),
        cmocka_unit_test(test_auc_single_class_nan),
        cmocka_unit_test(test_auc_nan_scores),
        cmocka_unit_test(test_categorical),
        cmocka_unit_test(test_r2_copy_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
