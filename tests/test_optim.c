/* test_optim.c — each optimizer's two steps against values worked out by
 * hand from the formulas in include/mimo/optim.h: w0 = (1, -2, 0.5), the
 * gradient (0.5, -1, 2) then (-0.5, 0.5, 1). E.g. momentum 0.9, lr 0.1:
 * v1 = (-0.05, 0.1, -0.2), w1 = (0.95, -1.9, 0.3); v2 = 0.9 v1 - 0.1 g2 =
 * (0.005, 0.04, -0.28), w2 = (0.955, -1.86, 0.02). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "core/model.h"
#include "mimo/mimo.h"

static mimo_opt_spec base(mimo_opt_kind kind, double lr)
{
    mimo_spec s;
    mimo_spec_defaults(&s);
    s.train.opt.kind = kind;
    s.train.opt.lr = lr;
    return s.train.opt;
}

/* Two steps from w0 with the two gradients; compares with want. The
 * gradients are const: decay and clipping go to a scratch buffer. */
static void run(mimo_opt_spec spec, const double want[3], const char *slot0)
{
    static const mimo_real g1[3] = {0.5f, -1.0f, 2.0f}, g2[3] = {-0.5f, 0.5f, 1.0f};
    mimo_real w[3] = {1.0f, -2.0f, 0.5f}, scratch[3];
    mimo_optim *o = NULL;
    assert_int_equal(mimo_optim_create(&spec, 3, &o), 0);
    mimo_optim_step(o, w, g1, scratch, spec.lr);
    mimo_optim_step(o, w, g2, scratch, spec.lr);
    for (int i = 0; i < 3; i++) {
        if (fabs(w[i] - want[i]) > 2e-6)
            fail_msg("w[%d] = %.9f, want %.9f", i, (double)w[i], want[i]);
    }
    assert_int_equal(mimo_optim_steps(o), 2);
    if (slot0)
        assert_string_equal(mimo_optim_slot_name(o, 0), slot0);
    else
        assert_int_equal(mimo_optim_n_slots(o), 0);
    mimo_optim_free(&o);
    assert_null(o);
}

static void test_sgd(void **s)
{
    (void)s;
    run(base(MIMO_OPT_SGD, 0.1), (double[]){1.0, -1.95, 0.2}, NULL);
}

static void test_sgd_momentum(void **s)
{
    (void)s;
    mimo_opt_spec o = base(MIMO_OPT_SGD, 0.1);
    o.momentum = 0.9;
    run(o, (double[]){0.955, -1.86, 0.02}, "velocity");
}

/* nesterov: w += m v - lr g: w1 = (0.905, -1.81, 0.12),
 * w2 = w1 + 0.9 (0.005, 0.04, -0.28) - 0.1 g2 */
static void test_sgd_nesterov(void **s)
{
    (void)s;
    mimo_opt_spec o = base(MIMO_OPT_SGD, 0.1);
    o.momentum = 0.9;
    o.nesterov = 1;
    run(o, (double[]){0.9595, -1.824, -0.232}, "velocity");
}

/* adam: step 1 moves each weight by lr * sign(g) = 0.1; step 2:
 * m = (-0.005, -0.04, 0.28), v = (4.9975e-4, 1.249e-3, 4.996e-3),
 * update = 0.1 (m / 0.19) / sqrt(v / 0.001999) = (-0.0052632, -0.0266337, 0.0932180) */
static void test_adam(void **s)
{
    (void)s;
    run(base(MIMO_OPT_ADAM, 0.1), (double[]){0.905263177, -1.873366309, 0.306782047}, "m");
}

/* adamw: each step first w *= 1 - lr wd = 0.99 */
static void test_adamw(void **s)
{
    (void)s;
    mimo_opt_spec o = base(MIMO_OPT_ADAMW, 0.1);
    o.weight_decay = 0.1;
    run(o, (double[]){0.886363177, -1.834566309, 0.297832047}, "m");
}

/* rmsprop: step 1 v = 0.1 g^2, d = 0.01 sign(g) / sqrt(0.1) = 0.0316228 */
static void test_rmsprop(void **s)
{
    (void)s;
    run(base(MIMO_OPT_RMSPROP, 0.01), (double[]){0.991318806, -1.983121425, 0.453633035}, "v");
}

static void test_rmsprop_momentum(void **s)
{
    (void)s;
    mimo_opt_spec o = base(MIMO_OPT_RMSPROP, 0.01);
    o.momentum = 0.5;
    run(o, (double[]){0.975507428, -1.967310041, 0.437821649}, "v");
}

/* adagrad: acc from 0.1, w -= lr g / (sqrt(acc) + 1e-7); the values are
 * torch.optim.Adagrad's (initial_accumulator_value 0.1, eps 1e-7) in
 * float64, as is the L2 case (weight_decay 0.1) */
static void test_adagrad(void **s)
{
    (void)s;
    run(base(MIMO_OPT_ADAGRAD, 0.1), (double[]){0.980034303, -1.947686895, 0.356946303},
        "accumulator");
    mimo_opt_spec o = base(MIMO_OPT_ADAGRAD, 0.1);
    o.weight_decay = 0.1;
    run(o, (double[]){0.963161334, -1.927512722, 0.356344420}, "accumulator");
}

/* adagrad is row-sparse exact: a zero gradient leaves the value and its
 * accumulator bitwise as they were */
static void test_adagrad_sparse(void **s)
{
    (void)s;
    mimo_opt_spec spec = base(MIMO_OPT_ADAGRAD, 0.1);
    mimo_real w[4] = {1, 2, 3, 4}, g1[4] = {1, -1, 0.5f, 2}, g2[4] = {0, 0.25f, 0, 0};
    mimo_optim *o = NULL;
    assert_int_equal(mimo_optim_create(&spec, 4, &o), 0);
    assert_true(mimo_optim_row_sparse(o));
    mimo_optim_step(o, w, g1, NULL, 0.1);
    mimo_real w1[4], a1[4];
    memcpy(w1, w, sizeof w1);
    memcpy(a1, mimo_optim_slot(o, 0), sizeof a1);
    mimo_optim_step(o, w, g2, NULL, 0.1);
    for (int i = 0; i < 4; i++) {
        int same = w[i] == w1[i] && mimo_optim_slot(o, 0)[i] == a1[i];
        assert_int_equal(same, g2[i] == 0);
    }
    mimo_optim_free(&o);
}

/* L2: g += 0.1 w: g1' = (0.6, -1.2, 2.05), w1 = (0.94, -1.88, 0.295) */
static void test_l2_decay(void **s)
{
    (void)s;
    mimo_opt_spec o = base(MIMO_OPT_SGD, 0.1);
    o.weight_decay = 0.1;
    run(o, (double[]){0.9806, -1.9112, 0.19205}, NULL);
}

/* clipnorm 1: |g1| = sqrt(5.25), g1 -> g1 / 2.2913; |g2| = sqrt(1.5) -> g2 / 1.2247 */
static void test_clipnorm(void **s)
{
    (void)s;
    mimo_opt_spec o = base(MIMO_OPT_SGD, 0.1);
    o.clipnorm = 1.0;
    run(o, (double[]){1.019003040, -1.997181251, 0.331063186}, NULL);
}

/* clipvalue 0.6: g1 -> (0.5, -0.6, 0.6), g2 -> (-0.5, 0.5, 0.6) */
static void test_clipvalue(void **s)
{
    (void)s;
    mimo_opt_spec o = base(MIMO_OPT_SGD, 0.1);
    o.clipvalue = 0.6;
    run(o, (double[]){1.0, -1.99, 0.38}, NULL);
}

/* ---- slices: what the ranks of a node do when they share parameters ---- */

#define NS 100000 /* both slices long enough to be threaded (MIMO_PAR_MIN) */

/* One rank's part of a step over its slice [lo, hi): the whole gradient g
 * is given, the rank reads its slice; sq receives the slice's sum of
 * squares after prepare. */
static void slice_prepare(mimo_optim *o, size_t lo, size_t hi, const mimo_real *w,
                          const mimo_real *g, mimo_real *buf, double *sq)
{
    mimo_optim_begin_step(o);
    memcpy(buf + lo, g + lo, sizeof *buf * (hi - lo));
    *sq = mimo_optim_prepares(o) ? mimo_optim_prepare(o, lo, hi, w, buf + lo, buf + lo)
                                 : 0;
}

/* One optimizer over all NS values, two over the slices [0, k) and
 * [k, NS) with their moments in one shared buffer, as the ranks of a node
 * do (the norm's squares added over the two): the same parameters. */
static void check_slices(mimo_opt_spec spec, int clip)
{
    static mimo_real w_all[NS], w_sh[NS], g[NS], sc[NS], buf[NS], m_sh[2][NS];
    mimo_optim *all = NULL, *a = NULL, *b = NULL;
    size_t k = 37901;
    if (clip)
        spec.clipnorm = 1.0, spec.weight_decay = 0.01;
    assert_int_equal(mimo_optim_create(&spec, NS, &all), 0);
    assert_int_equal(mimo_optim_create(&spec, NS, &a), 0);
    assert_int_equal(mimo_optim_create(&spec, NS, &b), 0);
    for (int j = 0; j < mimo_optim_n_slots(a); j++) {
        memcpy(m_sh[j], mimo_optim_slot(all, j), sizeof m_sh[j]); /* as shm.c */
        mimo_optim_lend_slot(a, j, m_sh[j]);
        mimo_optim_lend_slot(b, j, m_sh[j]);
    }
    for (int i = 0; i < NS; i++)
        w_all[i] = w_sh[i] = (mimo_real)sin(i);
    for (int step = 0; step < 3; step++) {
        for (int i = 0; i < NS; i++)
            g[i] = (mimo_real)cos(i * (step + 1)) * 0.1f;
        mimo_optim_step(all, w_all, g, sc, spec.lr);
        double sq_a, sq_b;
        slice_prepare(a, 0, k, w_sh, g, buf, &sq_a);
        slice_prepare(b, k, NS, w_sh, g, buf, &sq_b);
        double scale = mimo_optim_clip_scale(a, sq_a + sq_b);
        mimo_optim_apply(a, 0, k, w_sh, buf, scale, spec.lr);
        mimo_optim_apply(b, k, NS, w_sh, buf + k, scale, spec.lr);
    }
    for (int i = 0; i < NS; i++)
        if (!(fabs(w_all[i] - w_sh[i]) <= (clip ? 1e-6 : 0)))
            fail_msg("optimizer %d, clip %d: w[%d]: all %.9g, slices %.9g",
                     spec.kind, clip, i, (double)w_all[i], (double)w_sh[i]);
    assert_int_equal(mimo_optim_steps(a), 3);
    mimo_optim_free(&all), mimo_optim_free(&a), mimo_optim_free(&b);
}

static void test_slices(void **s)
{
    (void)s;
    mimo_opt_spec m = base(MIMO_OPT_SGD, 0.1);
    m.momentum = 0.9;
    mimo_opt_spec r = base(MIMO_OPT_RMSPROP, 0.01);
    r.momentum = 0.5;
    mimo_opt_spec specs[] = {base(MIMO_OPT_SGD, 0.1), m, base(MIMO_OPT_ADAM, 0.01),
                             base(MIMO_OPT_ADAMW, 0.01), r, base(MIMO_OPT_ADAGRAD, 0.1)};
    for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) {
        check_slices(specs[i], 0); /* bitwise */
        check_slices(specs[i], 1); /* L2 and clipnorm: the norm's sum order */
    }
}

/* lazy adam: inside the table ranges [2, 5) and [7, 8), a value whose
 * gradient is 0 keeps its value and moments, where adam decays the
 * moments and moves it; everywhere else (and where the gradient is not
 * 0) it is adam's update, bitwise. */
static void test_lazy(void **s)
{
    (void)s;
    mimo_opt_spec spec = base(MIMO_OPT_ADAM, 0.01);
    mimo_real g1[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    mimo_real g2[9] = {0.5f, 0, 0, 2, 0, 0, 0, 0, -1}, wl[9], wa[9], w1[9];
    for (int i = 0; i < 9; i++)
        wl[i] = wa[i] = 0.25f * (mimo_real)(i + 1);
    size_t lo[2] = {7, 2}, hi[2] = {8, 5};
    mimo_optim *lazy = NULL, *adam = NULL;
    assert_int_equal(mimo_optim_create(&spec, 9, &adam), 0);
    assert_int_equal(mimo_optim_set_lazy(adam, 2, lo, hi), 0); /* not lazy: no-op */
    assert_false(mimo_optim_row_sparse(adam));
    spec.lazy = 1;
    assert_int_equal(mimo_optim_create(&spec, 9, &lazy), 0);
    assert_int_equal(mimo_optim_set_lazy(lazy, 2, lo, hi), 0);
    assert_true(mimo_optim_row_sparse(lazy));
    mimo_optim_step(lazy, wl, g1, NULL, 0.01);
    mimo_optim_step(adam, wa, g1, NULL, 0.01);
    memcpy(w1, wl, sizeof w1);
    mimo_real m1 = mimo_optim_slot(lazy, 0)[2];
    for (int step = 0; step < 2; step++) {
        mimo_optim_step(lazy, wl, g2, NULL, 0.01);
        mimo_optim_step(adam, wa, g2, NULL, 0.01);
    }
    for (int i = 0; i < 9; i++) {
        int frozen = g2[i] == 0 && ((i >= 2 && i < 5) || i == 7);
        if (frozen) {
            assert_true(wl[i] == w1[i] && wa[i] != w1[i]);
            assert_true(mimo_optim_slot(lazy, 0)[i] == m1);
            assert_true(mimo_optim_slot(adam, 0)[i] != m1);
        } else {
            assert_true(wl[i] == wa[i]); /* outside the tables: adam */
        }
    }
    mimo_optim_free(&lazy), mimo_optim_free(&adam);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd),        cmocka_unit_test(test_sgd_momentum),
        cmocka_unit_test(test_sgd_nesterov), cmocka_unit_test(test_adam),
        cmocka_unit_test(test_adamw),      cmocka_unit_test(test_rmsprop),
        cmocka_unit_test(test_rmsprop_momentum), cmocka_unit_test(test_l2_decay),
        cmocka_unit_test(test_clipnorm),   cmocka_unit_test(test_clipvalue),
        cmocka_unit_test(test_slices),      cmocka_unit_test(test_lazy),
        cmocka_unit_test(test_adagrad),     cmocka_unit_test(test_adagrad_sparse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
