/* test_schedule.c — lr schedules, ReduceLROnPlateau and EarlyStopping
 * (schedule.c) against values worked out by hand from the formulas in
 * include/mimo/schedule.h; each table's arithmetic is in its comments. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "train/schedule.h"
#include "core/model.h"
#include "mimo/spec.h"

static mimo_train_spec defaults(void)
{
    mimo_spec s;
    mimo_spec_defaults(&s);
    return s.train;
}

static void near(double got, double want, const char *what, long i)
{
    if (!(fabs(got - want) <= 1e-12 * (1.0 + fabs(want))))
        fail_msg("%s [%ld]: got %.15g, want %.15g", what, i, got, want);
}

static mimo_sched_spec sched(mimo_sched_kind kind, long step_size,
                             double gamma, double min_lr, long warmup)
{
    mimo_sched_spec s = defaults().schedule;
    s.kind = kind;
    s.step_size = step_size;
    s.gamma = gamma;
    s.min_lr = min_lr;
    s.warmup_epochs = warmup;
    return s;
}

/* ---- schedules --------------------------------------------------------- */

static void test_constant(void **state)
{
    mimo_sched_spec s = sched(MIMO_SCHED_CONSTANT, 10, 0.1, 0, 0);
    (void)state;
    for (long e = 0; e < 50; e += 7)
        near(mimo_schedule_lr(&s, 0.1, e, 50, 3, 10), 0.1, "constant", e);
}

static void test_step(void **state)
{
    /* base 0.1, step_size 10, gamma 0.5: 0.1 * 0.5^floor(e / 10) */
    static const long e[] = {0, 9, 10, 19, 20, 25, 30};
    static const double want[] = {
        0.1,     /* floor(0/10) = 0 */
        0.1,     /* floor(9/10) = 0 */
        0.05,    /* 0.1 * 0.5 */
        0.05,
        0.025,   /* 0.1 * 0.25 */
        0.025,   /* floor(25/10) = 2 */
        0.0125}; /* 0.1 * 0.125 */
    mimo_sched_spec s = sched(MIMO_SCHED_STEP, 10, 0.5, 0, 0);
    (void)state;
    for (int i = 0; i < 7; i++)
        near(mimo_schedule_lr(&s, 0.1, e[i], 40, 0, 5), want[i], "step", i);
}

static void test_exponential(void **state)
{
    /* base 0.1, gamma 0.96: 0.1 * 0.96^e */
    static const double want[] = {
        0.1,        /* e = 0 */
        0.096,      /* 0.1 * 0.96 */
        0.09216,    /* 0.096 * 0.96 */
        0.0884736}; /* 0.09216 * 0.96 */
    mimo_sched_spec s = sched(MIMO_SCHED_EXPONENTIAL, 10, 0.96, 0, 0);
    (void)state;
    for (long e = 0; e < 4; e++)
        near(mimo_schedule_lr(&s, 0.1, e, 10, 0, 1), want[e], "exp", e);
}

static void test_cosine(void **state)
{
    /* base 0.1, min_lr 0.01, 4 epochs:
     *   0.01 + 0.09 * (1 + cos(pi e / 4)) / 2
     * e=0: 0.01 + 0.09 * 2 / 2                        = 0.1
     * e=1: cos(pi/4) = 0.7071067811865476;
     *      0.09 * 1.7071067811865476 / 2 = 0.0768198051533946 -> 0.0868198...
     * e=2: cos(pi/2) = 0: 0.01 + 0.045                = 0.055
     * e=3: 0.09 * 0.2928932188134524 / 2 = 0.0131801948466054 -> 0.0231801...
     * e=4 (past the end): min_lr                      = 0.01 */
    static const double want[] = {0.1, 0.0868198051533946, 0.055,
                                  0.0231801948466054, 0.01, 0.01};
    mimo_sched_spec s = sched(MIMO_SCHED_COSINE, 10, 0.1, 0.01, 0);
    (void)state;
    for (long e = 0; e < 6; e++)
        near(mimo_schedule_lr(&s, 0.1, e, 4, 0, 3), want[e], "cosine", e);
}

static void test_warmup_ramp_and_handoff(void **state)
{
    /* warmup 2 epochs of 4 steps: lr = 0.1 * (g + 1) / 8, g = 4 e + k,
     * so 0.0125, 0.025, ..., 0.1 at the last warmup step (e=1, k=3).
     * Then step (size 1, gamma 0.5) restarts at e - 2 = 0:
     *   epoch 2 -> 0.1 * 0.5^0 = 0.1 at every step, epoch 3 -> 0.05,
     *   epoch 4 -> 0.025. */
    mimo_sched_spec s = sched(MIMO_SCHED_STEP, 1, 0.5, 0, 2);
    (void)state;
    for (long g = 0; g < 8; g++)
        near(mimo_schedule_lr(&s, 0.1, g / 4, 10, g % 4, 4),
             0.1 * (double)(g + 1) / 8.0, "warmup", g);
    for (long k = 0; k < 4; k++)
        near(mimo_schedule_lr(&s, 0.1, 2, 10, k, 4), 0.1, "handoff", k);
    near(mimo_schedule_lr(&s, 0.1, 3, 10, 0, 4), 0.05, "after", 3);
    near(mimo_schedule_lr(&s, 0.1, 4, 10, 2, 4), 0.025, "after", 4);
}

static void test_warmup_cosine_and_edges(void **state)
{
    /* warmup 2, epochs 6: cosine sees e - 2 of E = 4, so epoch 3 is the
     * e=1 value of test_cosine, 0.0868198051533946. */
    mimo_sched_spec s = sched(MIMO_SCHED_COSINE, 10, 0.1, 0.01, 2);
    mimo_sched_spec x = sched(MIMO_SCHED_EXPONENTIAL, 10, 0.96, 0, 1);
    (void)state;
    near(mimo_schedule_lr(&s, 0.1, 2, 6, 0, 5), 0.1, "cos handoff", 2);
    near(mimo_schedule_lr(&s, 0.1, 3, 6, 0, 5), 0.0868198051533946,
         "cos after warmup", 3);
    /* steps_per_epoch 0 counts as 1: warmup 1 epoch -> 0.1 * 1 / 1 */
    near(mimo_schedule_lr(&x, 0.1, 0, 5, 0, 0), 0.1, "spe 0", 0);
    /* a step past the epoch is clamped: 0.1 * (0 + 3 + 1) / 4 = 0.1 */
    near(mimo_schedule_lr(&x, 0.1, 0, 5, 99, 4), 0.1, "clamped", 0);
    /* epoch 1 after 1 warmup epoch: 0.1 * 0.96^0 */
    near(mimo_schedule_lr(&x, 0.1, 1, 5, 0, 4), 0.1, "exp handoff", 1);
    near(mimo_schedule_lr(&x, 0.1, 3, 5, 0, 4), 0.1 * 0.96 * 0.96,
         "exp after", 3);
}

/* ---- monitors ---------------------------------------------------------- */

static void test_monitor_direction(void **state)
{
    (void)state;
    assert_int_equal(mimo_monitor_is_max(MIMO_MODE_AUTO, "val_loss"), 0);
    assert_int_equal(mimo_monitor_is_max(MIMO_MODE_AUTO, "y1_loss"), 0);
    assert_int_equal(mimo_monitor_is_max(MIMO_MODE_AUTO, "acc_head_loss"), 0);
    assert_int_equal(mimo_monitor_is_max(MIMO_MODE_AUTO, "val_y1_accuracy"),
                     1);
    assert_int_equal(mimo_monitor_is_max(MIMO_MODE_AUTO, "y2_mae"), 0);
    assert_int_equal(mimo_monitor_is_max(MIMO_MODE_AUTO, NULL), 0);
    assert_int_equal(mimo_monitor_is_max(MIMO_MODE_MAX, "loss"), 1);
    assert_int_equal(mimo_monitor_is_max(MIMO_MODE_MIN, "accuracy"), 0);
}

static void test_monitor_better(void **state)
{
    (void)state;
    assert_true(mimo_monitor_better(0, 0.5, 1.0, 0.0));
    assert_false(mimo_monitor_better(0, 1.0, 1.0, 0.0));    /* equal */
    assert_false(mimo_monitor_better(0, 0.95, 1.0, 0.1));   /* 0.95 >= 0.9 */
    assert_true(mimo_monitor_better(0, 0.85, 1.0, 0.1));    /* 0.85 < 0.9 */
    assert_true(mimo_monitor_better(1, 0.8, 0.5, 0.2));     /* 0.8 > 0.7 */
    assert_false(mimo_monitor_better(1, 0.6, 0.5, 0.2));    /* 0.6 <= 0.7 */
    assert_true(mimo_monitor_better(0, 3.0, HUGE_VAL, 0.0));
    assert_true(mimo_monitor_better(1, -3.0, -HUGE_VAL, 0.0));
    assert_false(mimo_monitor_better(0, NAN, 1.0, 0.0));
    assert_false(mimo_monitor_better(1, NAN, 1.0, 0.0));
    assert_false(mimo_monitor_better(0, NAN, HUGE_VAL, 0.0));
}

/* ---- ReduceLROnPlateau ------------------------------------------------- */

static mimo_plateau_spec plateau(double factor, long patience, long cooldown,
                                 double min_lr, double min_delta,
                                 mimo_mode mode)
{
    mimo_plateau_spec p = defaults().plateau;
    p.enabled = 1;
    p.factor = factor;
    p.patience = patience;
    p.cooldown = cooldown;
    p.min_lr = min_lr;
    p.min_delta = min_delta;
    p.mode = mode;
    return p;
}

typedef struct {
    double value, lr;
    long wait, cooldown;
    int reduced;
} plateau_row;

static void run_plateau(const mimo_plateau_spec *p, const char *monitor,
                        double lr, const plateau_row *rows, int n)
{
    mimo_plateau_state st;
    memset(&st, 0, sizeof st);            /* uninitialized: update inits */
    for (int e = 0; e < n; e++) {
        int red = -1;
        lr = mimo_plateau_update(&st, p, monitor, rows[e].value, lr, &red);
        near(lr, rows[e].lr, "plateau lr", e);
        if (red != rows[e].reduced || st.wait != rows[e].wait
            || st.cooldown_counter != rows[e].cooldown)
            fail_msg("epoch %d: reduced %d wait %ld cooldown %ld, want "
                     "%d %ld %ld", e, red, st.wait, st.cooldown_counter,
                     rows[e].reduced, rows[e].wait, rows[e].cooldown);
    }
}

static void test_plateau_table(void **state)
{
    /* patience 2, factor 0.5, cooldown 1, min_lr 0.02, min_delta 0,
     * monitor val_loss (auto -> min), lr 0.1; best starts at +inf.
     * Keras decrements the cooldown before testing it, so cooldown 1 rests
     * no epoch: the epoch after a cut already counts toward patience.
     *  e  value  cooldown     better?         wait  lr
     *  0  1.0    -            1.0 < inf  yes  0     0.1
     *  1  0.9    -            0.9 < 1.0  yes  0     0.1
     *  2  0.95   -            no              1     0.1
     *  3  0.91   -            no              2>=2  0.1*0.5 = 0.05, cd = 1
     *  4  0.92   1->0, wait 0 no              1     0.05
     *  5  0.93   -            no              2>=2  0.05*0.5 = 0.025, cd = 1
     *  6  0.8    1->0, wait 0 0.8 < 0.9  yes  0     0.025
     *  7  0.85   -            no              1     0.025
     *  8  0.85   -            no              2>=2  max(0.0125, 0.02) = 0.02
     *  9  0.9    1->0, wait 0 no              1     0.02
     * 10  0.9    -            no              2     0.02 (not > min_lr)
     * 11  NaN    -            never           3     0.02 */
    static const plateau_row rows[] = {
        {1.0, 0.1, 0, 0, 0},    {0.9, 0.1, 0, 0, 0},
        {0.95, 0.1, 1, 0, 0},   {0.91, 0.05, 0, 1, 1},
        {0.92, 0.05, 1, 0, 0},  {0.93, 0.025, 0, 1, 1},
        {0.8, 0.025, 0, 0, 0},  {0.85, 0.025, 1, 0, 0},
        {0.85, 0.02, 0, 1, 1},  {0.9, 0.02, 1, 0, 0},
        {0.9, 0.02, 2, 0, 0},   {NAN, 0.02, 3, 0, 0}};
    mimo_plateau_spec p = plateau(0.5, 2, 1, 0.02, 0.0, MIMO_MODE_AUTO);
    (void)state;
    run_plateau(&p, "val_loss", 0.1, rows, 12);
}

static void test_plateau_cooldown(void **state)
{
    /* patience 1, factor 0.5, min_lr 0, lr 1, values 1, 2, 2, 2, 2.
     * cooldown 0: cut at every epoch after the first: 0.5, 0.25, 0.125, ...
     * cooldown 2: e1 cut (cd 2); e2 cd 2->1, still cooling: wait stays 0;
     *             e3 cd 1->0, wait 1 >= 1: cut again (cd 2); e4 cooling. */
    static const plateau_row cd0[] = {
        {1, 1, 0, 0, 0}, {2, 0.5, 0, 0, 1}, {2, 0.25, 0, 0, 1},
        {2, 0.125, 0, 0, 1}, {2, 0.0625, 0, 0, 1}};
    static const plateau_row cd2[] = {
        {1, 1, 0, 0, 0}, {2, 0.5, 0, 2, 1}, {2, 0.5, 0, 1, 0},
        {2, 0.25, 0, 2, 1}, {2, 0.25, 0, 1, 0}};
    mimo_plateau_spec p0 = plateau(0.5, 1, 0, 0.0, 0.0, MIMO_MODE_MIN);
    mimo_plateau_spec p2 = plateau(0.5, 1, 2, 0.0, 0.0, MIMO_MODE_MIN);
    (void)state;
    run_plateau(&p0, "loss", 1.0, cd0, 5);
    run_plateau(&p2, "loss", 1.0, cd2, 5);
}

static void test_plateau_max_and_delta(void **state)
{
    /* val_acc (auto -> max), patience 1, factor 0.1, min_delta 0.05, lr 1:
     * e0 0.5 > -inf: best 0.5; e1 0.53 <= 0.55: wait 1 -> cut to 0.1;
     * e2 0.6 > 0.55: best 0.6; e3 0.4: wait 1 -> cut to 0.01 */
    static const plateau_row rows[] = {
        {0.5, 1, 0, 0, 0}, {0.53, 0.1, 0, 0, 1},
        {0.6, 0.1, 0, 0, 0}, {0.4, 0.01, 0, 0, 1}};
    mimo_plateau_spec p = plateau(0.1, 1, 0, 0.0, 0.05, MIMO_MODE_AUTO);
    mimo_plateau_state st;
    int red = 7;
    (void)state;
    run_plateau(&p, "val_acc", 1.0, rows, 4);
    mimo_plateau_init(&st, &p, "val_acc");
    assert_true(st.best == -HUGE_VAL && st.initialized == 1);
    /* reduced may be NULL; a NULL monitor minimizes */
    mimo_plateau_init(&st, &p, NULL);
    assert_true(st.best == HUGE_VAL);
    near(mimo_plateau_update(&st, &p, NULL, 1.0, 1.0, NULL), 1.0, "null", 0);
    near(mimo_plateau_update(&st, &p, NULL, 2.0, 1.0, &red), 0.1, "null", 1);
    assert_int_equal(red, 1);
}

/* ---- EarlyStopping ----------------------------------------------------- */

static mimo_early_spec early(long patience, double min_delta, mimo_mode mode)
{
    mimo_early_spec s = defaults().early;
    s.enabled = 1;
    s.patience = patience;
    s.min_delta = min_delta;
    s.mode = mode;
    return s;
}

/* Runs values until a stop; returns the stop epoch (-1 if none) and checks
 * the improved flags against `improved` (a string of 0/1 per epoch). */
static long run_early(const mimo_early_spec *s, const char *monitor,
                      const double *v, int n, const char *improved,
                      mimo_early_state *st)
{
    mimo_early_init(st);
    for (int e = 0; e < n; e++) {
        int imp = -1, stop = mimo_early_update(st, s, monitor, e, v[e], &imp);
        if (imp != improved[e] - '0')
            fail_msg("epoch %d: improved %d, want %c", e, imp, improved[e]);
        if (stop) {
            assert_int_equal(st->stopped, 1);
            return e;
        }
        assert_int_equal(st->stopped, 0);
    }
    return -1;
}

static void test_early_min(void **state)
{
    /* patience 2, min: e0 1.0 first value -> best; e1 0.8 < 1.0 best;
     * e2 0.9 wait 1; e3 0.85 (not < 0.8) wait 2 >= 2 -> stop at 3,
     * best epoch 1, best 0.8. */
    static const double a[] = {1.0, 0.8, 0.9, 0.85, 0.7};
    /* recovery: e2 0.95 wait 1; e3 0.85 < 0.9 best (wait 0); e4 0.9 wait 1;
     * e5 0.9 wait 2 -> stop at 5, best epoch 3. */
    static const double b[] = {1.0, 0.9, 0.95, 0.85, 0.9, 0.9, 0.1};
    mimo_early_spec s = early(2, 0.0, MIMO_MODE_AUTO);
    mimo_early_state st;
    (void)state;
    assert_int_equal(run_early(&s, "val_loss", a, 5, "11000", &st), 3);
    assert_int_equal(st.best_epoch, 1);
    assert_true(st.best == 0.8);
    assert_int_equal(run_early(&s, "val_loss", b, 7, "1101000", &st), 5);
    assert_int_equal(st.best_epoch, 3);
    assert_int_equal(st.wait, 2);
}

static void test_early_min_delta(void **state)
{
    /* patience 2, min_delta 0.1: e1 0.95 is not < 1.0 - 0.1: wait 1;
     * e2 0.85 < 0.9: best; e3 0.8 not < 0.75: wait 1; e4 0.78: wait 2 ->
     * stop at 4 with best epoch 2 (best 0.85). */
    static const double v[] = {1.0, 0.95, 0.85, 0.8, 0.78};
    mimo_early_spec s = early(2, 0.1, MIMO_MODE_MIN);
    mimo_early_state st;
    (void)state;
    assert_int_equal(run_early(&s, "loss", v, 5, "10100", &st), 4);
    assert_int_equal(st.best_epoch, 2);
    assert_true(st.best == 0.85);
}

static void test_early_max_modes(void **state)
{
    /* val_y1_accuracy auto -> max, patience 3: e1 0.6 best; e2 0.55 wait 1;
     * e3 0.6 (not > 0.6) wait 2; e4 0.58 wait 3 -> stop at 4, best 1. */
    static const double v[] = {0.5, 0.6, 0.55, 0.6, 0.58};
    /* the same values with mode min: e0 best 0.5, nothing lower follows:
     * wait 1, 2, 3 -> stop at 3, best epoch 0. */
    mimo_early_spec s = early(3, 0.0, MIMO_MODE_AUTO);
    mimo_early_spec m = early(3, 0.0, MIMO_MODE_MIN);
    mimo_early_spec x = early(3, 0.0, MIMO_MODE_MAX);
    mimo_early_state st;
    (void)state;
    assert_int_equal(run_early(&s, "val_y1_accuracy", v, 5, "11000", &st), 4);
    assert_int_equal(st.best_epoch, 1);
    assert_int_equal(run_early(&m, "val_y1_accuracy", v, 5, "10000", &st), 3);
    assert_int_equal(st.best_epoch, 0);
    /* mode max on a loss name: larger is better, as told */
    assert_int_equal(run_early(&x, "loss", v, 5, "11000", &st), 4);
    assert_int_equal(st.best_epoch, 1);
}

static void test_early_nan(void **state)
{
    /* patience 2: e0 NaN no best yet, wait 1; e1 1.0 first real value ->
     * best epoch 1; e2 NaN wait 1; e3 NaN wait 2 -> stop at 3. */
    static const double v[] = {NAN, 1.0, NAN, NAN, 0.5};
    /* patience 0: e0 NaN (wait 1 >= 0 but epoch 0 never stops, as Keras);
     * e1 NaN -> stop at 1 with no best (best_epoch -1). */
    static const double w[] = {NAN, NAN, 1.0};
    mimo_early_spec s = early(2, 0.0, MIMO_MODE_AUTO);
    mimo_early_spec z = early(0, 0.0, MIMO_MODE_AUTO);
    mimo_early_state st;
    (void)state;
    assert_int_equal(run_early(&s, "val_loss", v, 5, "01000", &st), 3);
    assert_int_equal(st.best_epoch, 1);
    assert_true(st.best == 1.0);
    assert_int_equal(run_early(&z, "val_loss", w, 3, "00", &st), 1);
    assert_int_equal(st.best_epoch, -1);
    assert_int_equal(st.initialized, 0);
}

static void test_early_patience_zero(void **state)
{
    /* patience 0: the first epoch without improvement stops (epoch > 0) */
    static const double v[] = {1.0, 0.9, 0.9, 0.1};
    mimo_early_spec s = early(0, 0.0, MIMO_MODE_MIN);
    mimo_early_state st;
    (void)state;
    assert_int_equal(run_early(&s, "loss", v, 4, "110", &st), 2);
    assert_int_equal(st.best_epoch, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constant),
        cmocka_unit_test(test_step),
        cmocka_unit_test(test_exponential),
        cmocka_unit_test(test_cosine),
        cmocka_unit_test(test_warmup_ramp_and_handoff),
        cmocka_unit_test(test_warmup_cosine_and_edges),
        cmocka_unit_test(test_monitor_direction),
        cmocka_unit_test(test_monitor_better),
        cmocka_unit_test(test_plateau_table),
        cmocka_unit_test(test_plateau_cooldown),
        cmocka_unit_test(test_plateau_max_and_delta),
        cmocka_unit_test(test_early_min),
        cmocka_unit_test(test_early_min_delta),
        cmocka_unit_test(test_early_max_modes),
        cmocka_unit_test(test_early_nan),
        cmocka_unit_test(test_early_patience_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
