/* test_datagen.c — `mimo gen` generators (names, shapes, the tutorials'
 * values, determinism by seed), CSV import of tests/data/iris-tiny.csv
 * (header, quoting, ranges, labels) and each CSV error, IDX import of tiny
 * MNIST-style files written here (gzip, made by hand with a stored deflate
 * block, and plain) and each IDX error.
 * Files go to a fresh directory under /tmp, removed at the end. */
#define _XOPEN_SOURCE 700
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/datagen.h"
#include "core/model.h"
#include "mimo/error.h"

static char tmpdir[] = "/tmp/mimo-test-datagen-XXXXXX";

/* tmpdir/name in a rotating static buffer (several live at once). */
static const char *tmp(const char *name)
{
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

/* Whether a temporary file of an atomic write to tmpdir/name is left
 * (they are named NAME.tmp.<pid>.<random>). */
static int tmp_left(const char *name)
{
    char prefix[512];
    int left = 0;
    snprintf(prefix, sizeof prefix, "%s.tmp", name);
    DIR *d = opendir(tmpdir);
    for (struct dirent *e; d && (e = readdir(d));)
        left |= strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (d)
        closedir(d);
    return left;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* A read-back dataset. */
typedef struct {
    size_t rows, cols;
    int is_int;
    double *v;
} ds;

static ds rd(const char *path, const char *name)
{
    ds d = {0, 0, 0, NULL};
    if (mimo_dsfile_read(path, name, &d.rows, &d.cols, &d.is_int, &d.v))
        fail_msg("reading %s:%s: %s", path, name, mimo_errmsg());
    return d;
}

static void expect_shape(const ds *d, size_t rows, size_t cols, int is_int)
{
    assert_int_equal(d->rows, rows);
    assert_int_equal(d->cols, cols);
    assert_int_equal(d->is_int, is_int);
}

static void expect_err(int rc, int code, const char *phrase)
{
    if (rc != code)
        fail_msg("rc %d, want %d (message: %s)", rc, code, mimo_errmsg());
    if (!strstr(mimo_errmsg(), phrase))
        fail_msg("message '%s' lacks '%s'", mimo_errmsg(), phrase);
}

static void near(double got, double want, double tol)
{
    if (fabs(got - want) > tol)
        fail_msg("got %.9g, want %.9g", got, want);
}

static int gen(const char *name, const char *file, long n, uint64_t seed,
               int random_x)
{
    mimo_gen_opts o = {.name = name, .path = tmp(file), .n = n, .seed = seed,
                      .random_x = random_x};
    return mimo_gen(&o);
}

/* Whether dataset `name` is identical in two files. */
static int same(const char *a, const char *b, const char *name)
{
    ds x = rd(a, name), y = rd(b, name);
    int eq = x.rows == y.rows && x.cols == y.cols &&
             memcmp(x.v, y.v, x.rows * (x.cols ? x.cols : 1) * sizeof *x.v) == 0;
    free(x.v);
    free(y.v);
    return eq;
}

/* ---- generators ------------------------------------------------------ */

static void test_names(void **state)
{
    (void)state;
    static const char *want[] = {"seed-mimo", "xor", "sine-window", "sinexp",
                                 "sin12", "multitask", "masked", "tokens",
                                 "tabular", "ctr", "correlated"};
    const char *const *n = mimo_gen_names();
    size_t k = 0;
    for (; n[k]; k++) {
        mimo_gen_info info;
        assert_true(k < 11);
        assert_string_equal(n[k], want[k]);
        assert_int_equal(mimo_gen_lookup(n[k], &info), 0);
        assert_string_equal(info.name, n[k]);
        assert_true(info.default_n >= 1);
    }
    assert_int_equal(k, 11);
    mimo_gen_info info;
    expect_err(mimo_gen_lookup("xorr", &info), MIMO_EINVAL,
               "unknown dataset 'xorr' (expected one of: seed-mimo, xor, "
               "sine-window, sinexp, sin12, multitask, masked, tokens, tabular, ctr, correlated)");
}

static void test_seed_mimo(void **state)
{
    (void)state;
    static const double x1[5] = {0.52, 0.93, 0.15, 0.72, 0.61};
    static const double x2[3] = {0.21, 0.83, 0.87};
    static const double y1[5] = {1, 1, 0, 0, 1}, y2[4] = {0, 1, 0, 0};
    assert_int_equal(gen("seed-mimo", "sm.h5", 0, 42, 0), 0);
    ds a = rd(tmp("sm.h5"), "x1"), b = rd(tmp("sm.h5"), "x2"),
       c = rd(tmp("sm.h5"), "y1"), d = rd(tmp("sm.h5"), "y2");
    expect_shape(&a, 1, 5, 0);
    expect_shape(&b, 1, 3, 0);
    expect_shape(&c, 1, 5, 0);
    expect_shape(&d, 1, 4, 0);
    for (int j = 0; j < 5; j++) {
        near(a.v[j], x1[j], 1e-6);
        near(c.v[j], y1[j], 0);
    }
    for (int j = 0; j < 3; j++)
        near(b.v[j], x2[j], 1e-6);
    for (int j = 0; j < 4; j++)
        near(d.v[j], y2[j], 0);
    free(a.v), free(b.v), free(c.v), free(d.v);
    assert_false(tmp_left("sm.h5")); /* renamed away */
}

/* Rows >= 1 follow the rule: y1 = x1 > 0.5, y2 = onehot argmax(x1_k + x2_k%3). */
static void test_seed_mimo_rows(void **state)
{
    (void)state;
    assert_int_equal(gen("seed-mimo", "sm50.h5", 50, 7, 0), 0);
    ds a = rd(tmp("sm50.h5"), "x1"), b = rd(tmp("sm50.h5"), "x2"),
       c = rd(tmp("sm50.h5"), "y1"), d = rd(tmp("sm50.h5"), "y2");
    expect_shape(&a, 50, 5, 0);
    expect_shape(&d, 50, 4, 0);
    near(a.v[1], 0.93, 1e-6); /* row 0 is still the tutorial's */
    int seen[4] = {0};
    for (size_t i = 1; i < 50; i++) {
        size_t best = 0;
        double s[4], ones = 0;
        for (int k = 0; k < 4; k++)
            s[k] = a.v[5 * i + k] + b.v[3 * i + k % 3];
        for (size_t k = 1; k < 4; k++)
            best = s[k] > s[best] ? k : best;
        for (int j = 0; j < 5; j++) {
            assert_true(a.v[5 * i + j] >= 0.0099 && a.v[5 * i + j] <= 0.9901);
            near(c.v[5 * i + j], a.v[5 * i + j] > 0.5, 0);
        }
        for (size_t k = 0; k < 4; k++) {
            near(d.v[4 * i + k], k == best, 0);
            ones += d.v[4 * i + k];
        }
        near(ones, 1, 0);
        seen[best] = 1;
    }
    assert_true(seen[0] + seen[1] + seen[2] + seen[3] >= 3);
    free(a.v), free(b.v), free(c.v), free(d.v);
}

static void test_xor(void **state)
{
    (void)state;
    static const double x[4][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}}, y[4] = {0, 1, 1, 0};
    assert_int_equal(gen("xor", "xor.h5", 0, 1, 0), 0);
    assert_int_equal(gen("xor", "xor10.h5", 10, 1, 0), 0);
    ds a = rd(tmp("xor.h5"), "x"), b = rd(tmp("xor.h5"), "y");
    ds c = rd(tmp("xor10.h5"), "x"), d = rd(tmp("xor10.h5"), "y");
    expect_shape(&a, 4, 2, 0);
    expect_shape(&b, 4, 1, 0);
    expect_shape(&c, 10, 2, 0);
    for (size_t i = 0; i < 10; i++) {
        near(c.v[2 * i], x[i % 4][0], 0);
        near(c.v[2 * i + 1], x[i % 4][1], 0);
        near(d.v[i], y[i % 4], 0);
        if (i < 4)
            near(b.v[i], y[i], 0), near(a.v[2 * i + 1], x[i][1], 0);
    }
    free(a.v), free(b.v), free(c.v), free(d.v);
}

static void test_sinexp(void **state)
{
    (void)state;
    assert_int_equal(gen("sinexp", "se.h5", 5, 1, 0), 0);
    const char *f = tmp("se.h5");
    ds a = rd(f, "x1"), b = rd(f, "x2"), s = rd(f, "sin"), e = rd(f, "exp");
    expect_shape(&a, 5, 1, 0);
    expect_shape(&s, 5, 1, 0);
    near(a.v[1], 0.25, 0);
    near(b.v[1], 0.0625, 0);
    near(s.v[1], 1.0, 1e-6);  /* sin 2 pi 0.25 */
    near(s.v[3], -1.0, 1e-6);
    near(e.v[4], exp(1.0), 1e-6);
    free(a.v), free(b.v), free(s.v), free(e.v);
    assert_int_equal(gen("sinexp", "ser1.h5", 100, 1, 1), 0);
    assert_int_equal(gen("sinexp", "ser1b.h5", 100, 1, 1), 0);
    assert_int_equal(gen("sinexp", "ser2.h5", 100, 2, 1), 0);
    ds r = rd(tmp("ser1.h5"), "x1"), q = rd(tmp("ser1.h5"), "x2");
    for (size_t i = 0; i < 100; i++) {
        assert_true(r.v[i] >= 0 && r.v[i] < 1);
        assert_true(i == 0 || r.v[i] >= r.v[i - 1]);
        near(q.v[i], r.v[i] * r.v[i], 1e-6);
    }
    free(r.v), free(q.v);
    assert_true(same(tmp("ser1.h5"), tmp("ser1b.h5"), "sin"));
    assert_false(same(tmp("ser1.h5"), tmp("ser2.h5"), "x1"));
}

static void test_sin12(void **state)
{
    (void)state;
    assert_int_equal(gen("sin12", "s12.h5", 25, 1, 0), 0);
    ds x = rd(tmp("s12.h5"), "x"), y = rd(tmp("s12.h5"), "y");
    expect_shape(&y, 25, 1, 0);
    near(x.v[1], 1.0 / 24, 1e-7);
    near(y.v[1], 1.0, 1e-6);  /* sin(12 pi / 24) */
    near(y.v[3], -1.0, 1e-6);
    free(x.v), free(y.v);
    assert_int_equal(gen("sin12", "s12d.h5", 0, 1, 0), 0);
    ds d = rd(tmp("s12d.h5"), "y");
    expect_shape(&d, 1000, 1, 0);
    free(d.v);
}

static void test_sine_window(void **state)
{
    (void)state;
    assert_int_equal(gen("sine-window", "sw.h5", 0, 5, 0), 0);
    assert_int_equal(gen("sine-window", "swb.h5", 0, 5, 0), 0);
    assert_int_equal(gen("sine-window", "swc.h5", 0, 6, 0), 0);
    ds x = rd(tmp("sw.h5"), "x"), y = rd(tmp("sw.h5"), "y");
    expect_shape(&x, 1000, 5, 0);
    expect_shape(&y, 1000, 1, 0);
    double sum = 0, sq = 0;
    for (size_t i = 0; i + 1 < 1000; i++) {
        for (int j = 0; j < 4; j++) /* windows slide by one */
            near(x.v[5 * (i + 1) + j], x.v[5 * i + j + 1], 0);
        near(y.v[i], x.v[5 * (i + 1) + 4], 0); /* y is the next value */
        sum += x.v[5 * i];
        sq += x.v[5 * i] * x.v[5 * i];
    }
    near(sum / 999, 0, 0.1); /* standardized */
    near(sqrt(sq / 999), 1, 0.1);
    free(x.v), free(y.v);
    assert_true(same(tmp("sw.h5"), tmp("swb.h5"), "x"));
    assert_false(same(tmp("sw.h5"), tmp("swc.h5"), "y"));
}

static void test_multitask(void **state)
{
    (void)state;
    assert_int_equal(gen("multitask", "mt.h5", 300, 3, 0), 0);
    assert_int_equal(gen("multitask", "mtb.h5", 300, 3, 0), 0);
    assert_int_equal(gen("multitask", "mtc.h5", 300, 4, 0), 0);
    const char *f = tmp("mt.h5");
    ds a = rd(f, "a"), b = rd(f, "b"), r = rd(f, "reg"), c = rd(f, "cls");
    expect_shape(&a, 300, 32, 0);
    expect_shape(&b, 300, 16, 0);
    expect_shape(&r, 300, 4, 0);
    expect_shape(&c, 300, 0, 1);
    int seen[10] = {0}, classes = 0;
    for (size_t i = 0; i < 300; i++) {
        assert_true(c.v[i] >= 0 && c.v[i] <= 9);
        seen[(int)c.v[i]] = 1;
        for (int k = 0; k < 4; k++)
            assert_true(fabs(r.v[4 * i + k]) < 1.5);
    }
    for (int k = 0; k < 10; k++)
        classes += seen[k];
    assert_true(classes >= 5);
    free(a.v), free(b.v), free(r.v), free(c.v);
    const char *names[] = {"a", "b", "reg", "cls"};
    for (int k = 0; k < 4; k++) {
        assert_true(same(tmp("mt.h5"), tmp("mtb.h5"), names[k]));
        if (k != 3)
            assert_false(same(tmp("mt.h5"), tmp("mtc.h5"), names[k]));
    }
}

/* ctr: ids in [1, V) with the power law's skew, history bags of 1..8 ids
 * then 0s, conversion NaN exactly where there is no click; --vocab. */
static void test_ctr(void **state)
{
    (void)state;
    mimo_gen_opts o = {.name = "ctr", .path = tmp("ctr.h5"), .n = 4000, .seed = 2,
                       .vocab = 500};
    assert_int_equal(mimo_gen(&o), 0);
    const char *f = tmp("ctr.h5");
    ds u = rd(f, "user"), h = rd(f, "history"), c = rd(f, "click"), v = rd(f, "conversion");
    expect_shape(&u, 4000, 0, 1);
    expect_shape(&h, 4000, 8, 1);
    expect_shape(&c, 4000, 1, 0);
    int low = 0, clicks = 0;
    for (size_t i = 0; i < 4000; i++) {
        assert_true(u.v[i] >= 1 && u.v[i] < 500);
        low += u.v[i] <= 10; /* 2% of the ids */
        int len = 0;
        while (len < 8 && h.v[8 * i + len] != 0)
            len++;
        assert_true(len >= 1);
        for (int j = len; j < 8; j++)
            assert_true(h.v[8 * i + j] == 0);
        assert_true(c.v[i] == 0 || c.v[i] == 1);
        assert_true(isnan(v.v[i]) == (c.v[i] == 0));
        clicks += c.v[i] == 1;
    }
    assert_true(low > 4000 / 4); /* Zipf: the smallest ids are most rows */
    assert_true(clicks > 400 && clicks < 3600);
    free(u.v), free(h.v), free(c.v), free(v.v);
    o.vocab = 1;
    expect_err(mimo_gen(&o), MIMO_EINVAL, "gen ctr: --vocab must be in [2, 10000000], got 1");
}

/* correlated: the two tasks' linear parts w1.x, w2.x recovered by least
 * squares over the rows have the cosine asked for; the labels are those
 * parts plus the sines (|y - w.x| <= 10 + noise). */
static void test_correlated(void **state)
{
    (void)state;
    const double ps[3] = {1.0, 0.5, 0.0};
    for (int k = 0; k < 3; k++) {
        mimo_gen_opts o = {.name = "correlated", .path = tmp("co.h5"), .n = 3000,
                           .seed = 5, .correlation = ps[k]};
        assert_int_equal(mimo_gen(&o), 0);
        ds x = rd(tmp("co.h5"), "x"), y1 = rd(tmp("co.h5"), "y1"), y2 = rd(tmp("co.h5"), "y2");
        expect_shape(&x, 3000, 100, 0);
        expect_shape(&y1, 3000, 1, 0);
        /* with x ~ N(0, I) and the sines' small share, E[x y] ~ w: the
         * cosine of the two sample covariances */
        double c1[100] = {0}, c2[100] = {0}, d = 0, n1 = 0, n2 = 0;
        for (size_t i = 0; i < 3000; i++)
            for (int j = 0; j < 100; j++)
                c1[j] += x.v[100 * i + (size_t)j] * y1.v[i],
                c2[j] += x.v[100 * i + (size_t)j] * y2.v[i];
        for (int j = 0; j < 100; j++)
            d += c1[j] * c2[j], n1 += c1[j] * c1[j], n2 += c2[j] * c2[j];
        double cosine = d / sqrt(n1 * n2);
        if (fabs(cosine - ps[k]) > 0.15)
            fail_msg("correlation %g: the linear parts' cosine is %g", ps[k], cosine);
        if (ps[k] == 1.0)
            for (size_t i = 0; i < 3000; i++)
                assert_true(fabs(y1.v[i] - y2.v[i]) < 0.1); /* the noise apart */
        free(x.v), free(y1.v), free(y2.v);
    }
    mimo_gen_opts bad = {.name = "correlated", .path = tmp("co.h5"), .n = 10,
                         .correlation = 1.5};
    expect_err(mimo_gen(&bad), MIMO_EINVAL,
               "gen correlated: --correlation must be in [-1, 1], got 1.5");
}

static void test_gen_errors(void **state)
{
    (void)state;
    expect_err(gen("nope", "e.h5", 0, 1, 0), MIMO_EINVAL,
               "unknown dataset 'nope' (expected one of: seed-mimo");
    expect_err(gen("xor", "e.h5", -3, 1, 0), MIMO_EINVAL, "N must be >= 1");
    expect_err(gen("xor", "e.h5", 0, 1, 1), MIMO_EINVAL,
               "random x applies only to sinexp and sin12");
    FILE *plain = fopen(tmp("plain"), "w"); /* a file where a directory goes */
    assert_non_null(plain);
    fclose(plain);
    mimo_gen_opts o = {.name = "xor", .path = tmp("plain/e.h5"), .seed = 1};
    expect_err(mimo_gen(&o), MIMO_EIO, "cannot create: Not a directory");
    assert_int_equal(access(tmp("e.h5"), F_OK), -1);
    mimo_gen_opts made = {.name = "xor", .path = tmp("new-dir/sub/e.h5"), .seed = 1};
    assert_int_equal(mimo_gen(&made), 0); /* missing directories are made */
    assert_int_equal(access(tmp("new-dir/sub/e.h5"), F_OK), 0);
    mimo_gen_opts p = {.name = "xor", .seed = 1};
    expect_err(mimo_gen(&p), MIMO_EINVAL, "no output file");
}

/* ---- CSV ------------------------------------------------------------- */

static int csv(const char *in, const char *out, const mimo_csv_column *cols,
               size_t n, const char *label, char delim, int no_header)
{
    const char *labels[1] = {label};
    mimo_csv_opts o = {in, tmp(out), cols, n, labels, label ? 1 : 0, delim,
                       no_header};
    return mimo_import_csv(&o);
}

static void test_csv(void **state)
{
    (void)state;
    const mimo_csv_column cols[] = {{"x", "0-3"}, {"y", "label"},
                                    {"w", "petal_width, sepal_length"},
                                    {"z", "1,4-4"}};
    const char *in = MIMO_TEST_DIR "/data/iris-tiny.csv";
    /* column 4 (species) is text: only the 3 numeric datasets */
    assert_int_equal(csv(in, "iris.h5", cols, 3, "y", 0, 0), 0);
    ds x = rd(tmp("iris.h5"), "x"), y = rd(tmp("iris.h5"), "y"),
       w = rd(tmp("iris.h5"), "w");
    expect_shape(&x, 4, 4, 0);
    expect_shape(&y, 4, 0, 1);
    expect_shape(&w, 4, 2, 0);
    static const double x0[4] = {5.1, 3.5, 1.4, 0.2}, x1[4] = {4.9, 3.0, 1.4, 0.2};
    for (int j = 0; j < 4; j++) {
        near(x.v[j], x0[j], 1e-6);
        near(x.v[4 + j], x1[j], 1e-6); /* "4.9" quoted, " 3.0 " padded */
    }
    near(x.v[15], 2.5, 1e-6);
    near(y.v[0], 0, 0), near(y.v[2], 1, 0), near(y.v[3], 2, 0);
    near(w.v[0], 0.2, 1e-6), near(w.v[1], 5.1, 1e-6), near(w.v[7], 6.3, 1e-6);
    free(x.v), free(y.v), free(w.v);
    /* the quoted species "setosa, ""wild""" held a delimiter: a text column */
    expect_err(csv(in, "iris2.h5", cols + 3, 1, NULL, 0, 0), MIMO_EINVAL,
               "iris-tiny.csv:2: column 'species': non-numeric value "
               "'setosa, \"wild\"'");
}

static void test_csv_no_header(void **state)
{
    (void)state;
    write_text(tmp("nh.csv"), "1;2;3\r\n4;\"5\";6\r\n\r\n");
    const mimo_csv_column cols[] = {{"x", "0,2"}, {"y", "1"}};
    assert_int_equal(csv(tmp("nh.csv"), "nh.h5", cols, 2, NULL, ';', 1), 0);
    ds x = rd(tmp("nh.h5"), "x"), y = rd(tmp("nh.h5"), "y");
    expect_shape(&x, 2, 2, 0);
    expect_shape(&y, 2, 1, 0);
    near(x.v[0], 1, 0), near(x.v[1], 3, 0), near(x.v[3], 6, 0), near(y.v[1], 5, 0);
    free(x.v), free(y.v);
    const mimo_csv_column bad[] = {{"x", "a"}};
    expect_err(csv(tmp("nh.csv"), "nh2.h5", bad, 1, NULL, ';', 1), MIMO_EINVAL,
               "unknown column 'a' in 'x=a' (with no header, use 0-based indices");
}

/* Writes text to bad.csv and imports cols; checks the error. */
static void csv_err(const char *text, const char *spec, const char *label,
                    int code, const char *phrase)
{
    write_text(tmp("bad.csv"), text);
    const mimo_csv_column cols[] = {{"x", "a"}, {"y", spec}};
    expect_err(csv(tmp("bad.csv"), "bad.h5", cols, 2, label, 0, 0), code, phrase);
    assert_int_equal(access(tmp("bad.h5"), F_OK), -1);
    assert_false(tmp_left("bad.h5"));
}

static void test_csv_errors(void **state)
{
    (void)state;
    csv_err("a,b\n1,2\n3\n", "b", NULL, MIMO_EINVAL,
            "bad.csv:3: expected 2 fields, found 1");
    csv_err("a,b,c\n1,\"x\ny\",2\n3,4\n", "c", NULL, MIMO_EINVAL,
            "bad.csv:4: expected 3 fields, found 2");
    csv_err("a,b\n1,2\n1,two\n", "b", NULL, MIMO_EINVAL,
            "bad.csv:3: column 'b': non-numeric value 'two'");
    csv_err("a,b\n1,\n", "b", NULL, MIMO_EINVAL, "bad.csv:2: column 'b': empty value");
    csv_err("a,b\n1,inf\n", "b", NULL, MIMO_EINVAL, "is not finite");
    csv_err("", "b", NULL, MIMO_EINVAL, "bad.csv: empty file");
    csv_err("\n\n", "b", NULL, MIMO_EINVAL, "bad.csv: empty file");
    csv_err("a,b\n", "b", NULL, MIMO_EINVAL, "bad.csv: no data rows");
    csv_err("a,b\n1,2\n", "zz", NULL, MIMO_EINVAL,
            "bad.csv: unknown column 'zz' in 'y=zz' (columns: a, b)");
    csv_err("a,b\n1,2\n", "5", NULL, MIMO_EINVAL, "column 5 in 'y=5' is out of range");
    csv_err("a,b\n1,2\n", "1-0", NULL, MIMO_EINVAL, "backwards range '1-0'");
    csv_err("a,b\n1,2.5\n", "b", "y", MIMO_EINVAL,
            "bad.csv:2: column 'b': label 'y' needs integer values, got 2.5");
    csv_err("a,b\n1,2\n", "0,1", "y", MIMO_EINVAL, "labels 'y' must be one column");
    csv_err("a,b\n1,2\n", "b", "q", MIMO_EINVAL, "labels 'q' is not one of");
    csv_err("a,b\n1,\"2\n", "b", NULL, MIMO_EINVAL, "bad.csv:2: unterminated quoted");
    csv_err("a,b\n1,\"2\"x\n", "b", NULL, MIMO_EINVAL, "unexpected 'x' after a "
            "closing quote");
    const mimo_csv_column cols[] = {{"x", "a"}};
    expect_err(csv(tmp("missing.csv"), "m.h5", cols, 1, NULL, 0, 0), MIMO_EIO,
               "missing.csv: cannot open");
    expect_err(csv(tmp("bad.csv"), "m.h5", cols, 0, NULL, 0, 0), MIMO_EINVAL,
               "no column datasets");
    const mimo_csv_column twice[] = {{"x", "a"}, {"x", "b"}};
    write_text(tmp("ok.csv"), "a,b\n1,2\n");
    expect_err(csv(tmp("ok.csv"), "m.h5", twice, 2, NULL, 0, 0), MIMO_EINVAL,
               "dataset 'x' is given twice");
}

/* ---- IDX ------------------------------------------------------------- */

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* CRC-32 (IEEE, as gzip uses), bit by bit. */
static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16), p[3] = (unsigned char)(v >> 24);
}

/* Writes bytes as a gzip member holding one stored (uncompressed) deflate
 * block (RFC 1951/1952), so the test needs no zlib of its own. n < 65536. */
static void write_gzip(FILE *f, const unsigned char *b, size_t n)
{
    static const unsigned char head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    unsigned char blk[5] = {1, (unsigned char)n, (unsigned char)(n >> 8),
                            (unsigned char)~n, (unsigned char)(~n >> 8)};
    unsigned char tail[8];
    put_le32(tail, crc32_of(b, n));
    put_le32(tail + 4, (uint32_t)n);
    fwrite(head, 1, sizeof head, f);
    fwrite(blk, 1, sizeof blk, f);
    fwrite(b, 1, n, f);
    fwrite(tail, 1, sizeof tail, f);
}

/* Writes an IDX file: magic, dims, then `len` data bytes; gzip or plain. */
static void write_idx(const char *path, int gz, uint32_t magic, const uint32_t *dims,
                      int nd, const unsigned char *data, size_t len)
{
    unsigned char b[64];
    size_t n = 4 + 4 * (size_t)nd;
    assert_true(n + len <= sizeof b);
    put32(b, magic);
    for (int d = 0; d < nd; d++)
        put32(b + 4 + 4 * d, dims[d]);
    if (len)
        memcpy(b + n, data, len);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (gz)
        write_gzip(f, b, n + len);
    else
        fwrite(b, 1, n + len, f);
    assert_int_equal(fclose(f), 0);
}

static const unsigned char pixels[12] = {0, 255, 51, 102, 1, 2, 3, 4, 10, 20, 30, 40};
static const unsigned char digits[3] = {7, 0, 9};

/* The good pair: 3 images of 2x2, labels 7 0 9. */
static void write_pair(int gz)
{
    const uint32_t di[3] = {3, 2, 2}, dl[1] = {3};
    write_idx(tmp(gz ? "img.gz" : "img.idx"), gz, 0x803, di, 3, pixels, 12);
    write_idx(tmp(gz ? "lab.gz" : "lab.idx"), gz, 0x801, dl, 1, digits, 3);
}

static int idx(const char *images, const char *labels, const char *out, int scale)
{
    mimo_idx_opts o = {.images = tmp(images), .labels = tmp(labels), .out = tmp(out),
                      .scale = scale};
    return mimo_import_idx(&o);
}

static void test_idx(void **state)
{
    (void)state;
    write_pair(1);
    write_pair(0);
    assert_int_equal(idx("img.gz", "lab.gz", "mn.h5", 1), 0);
    ds x = rd(tmp("mn.h5"), "image"), y = rd(tmp("mn.h5"), "label");
    expect_shape(&x, 3, 4, 0);
    expect_shape(&y, 3, 0, 1);
    near(x.v[1], 1.0, 1e-7), near(x.v[2], 0.2, 1e-7), near(x.v[11], 40 / 255.0, 1e-7);
    near(y.v[0], 7, 0), near(y.v[2], 9, 0);
    free(x.v), free(y.v);
    mimo_idx_opts o = {.images = tmp("img.idx"), .labels = tmp("lab.idx"),
                      .out = tmp("mnp.h5"), .image_name = "pix", .label_name = "digit"};
    assert_int_equal(mimo_import_idx(&o), 0);
    ds p = rd(tmp("mnp.h5"), "pix"), d = rd(tmp("mnp.h5"), "digit");
    expect_shape(&p, 3, 4, 0);
    near(p.v[1], 255, 0), near(p.v[8], 10, 0), near(d.v[0], 7, 0);
    free(p.v), free(d.v);
}

static void test_idx_errors(void **state)
{
    (void)state;
    write_pair(1);
    expect_err(idx("lab.gz", "lab.gz", "e.h5", 1), MIMO_EINVAL,
               "lab.gz: bad magic 0x00000801, expected 0x00000803 for IDX images "
               "(this is an IDX labels file)");
    expect_err(idx("img.gz", "img.gz", "e.h5", 1), MIMO_EINVAL,
               "img.gz: bad magic 0x00000803, expected 0x00000801 for IDX labels");
    const uint32_t di[3] = {3, 2, 2}, dl2[1] = {2}, huge[3] = {0xFFFFFFFFu, 0xFFFFu, 1};
    write_idx(tmp("short.gz"), 1, 0x803, di, 3, pixels, 11);
    expect_err(idx("short.gz", "lab.gz", "e.h5", 1), MIMO_EINVAL,
               "short.gz: truncated: the header promises 12 bytes of data, the "
               "file has 11");
    write_idx(tmp("hdr.idx"), 0, 0x803, di, 1, NULL, 0);
    expect_err(idx("hdr.idx", "lab.gz", "e.h5", 1), MIMO_EINVAL,
               "hdr.idx: truncated: 8 bytes, shorter than an IDX images header");
    write_idx(tmp("huge.idx"), 0, 0x803, huge, 3, pixels, 12);
    const uint32_t dlh[1] = {0xFFFFFFFFu};
    write_idx(tmp("labh.idx"), 0, 0x801, dlh, 1, digits, 3);
    expect_err(idx("huge.idx", "labh.idx", "e.h5", 1), MIMO_EINVAL,
               "huge.idx: truncated: the header promises 281470681677825 bytes");
    const uint32_t over[3] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
    write_idx(tmp("over.idx"), 0, 0x803, over, 3, pixels, 12);
    expect_err(idx("over.idx", "labh.idx", "e.h5", 1), MIMO_EINVAL,
               "over.idx: header dimensions overflow");
    write_idx(tmp("lab2.gz"), 1, 0x801, dl2, 1, digits, 2);
    expect_err(idx("img.gz", "lab2.gz", "e.h5", 1), MIMO_EINVAL,
               "img.gz has 3 images but");
    expect_err(idx("img.gz", "lab2.gz", "e.h5", 1), MIMO_EINVAL,
               "lab2.gz has 2 labels");
    expect_err(idx("none.gz", "lab.gz", "e.h5", 1), MIMO_EIO,
               "none.gz: cannot open");
    expect_err(idx("img.gz", "none.gz", "e.h5", 1), MIMO_EIO,
               "none.gz: cannot open");
    assert_int_equal(access(tmp("e.h5"), F_OK), -1);
}

/* ---- setup ----------------------------------------------------------- */

static int make_dir(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static int remove_dir(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),       cmocka_unit_test(test_seed_mimo),
        cmocka_unit_test(test_seed_mimo_rows), cmocka_unit_test(test_xor),
        cmocka_unit_test(test_sinexp),      cmocka_unit_test(test_sin12),
        cmocka_unit_test(test_sine_window), cmocka_unit_test(test_multitask),
        cmocka_unit_test(test_ctr),
        cmocka_unit_test(test_correlated),
        cmocka_unit_test(test_gen_errors),  cmocka_unit_test(test_csv),
        cmocka_unit_test(test_csv_no_header), cmocka_unit_test(test_csv_errors),
        cmocka_unit_test(test_idx),         cmocka_unit_test(test_idx_errors),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
