/* schedule.c — learning-rate schedules, ReduceLROnPlateau and EarlyStopping
 * as pure functions of small plain-number states (formulas in schedule.h).
 * Not here: when the trainer calls them, how it logs or checkpoints them. */
#include "train/schedule.h"

#include <math.h>
#include <string.h>

static const double PI = 3.14159265358979323846;

/* ---- learning-rate schedule -------------------------------------------- */

/* lr = base * (g + 1) / (W * spe), g = epoch * spe + step (clamped) */
static double warmup_lr(double base, long w, long epoch, long step, long spe)
{
    double g;
    if (spe < 1)
        spe = 1;
    if (step < 0)
        step = 0;
    if (step > spe - 1)
        step = spe - 1;
    g = (double)epoch * (double)spe + (double)step;
    return base * (g + 1.0) / ((double)w * (double)spe);
}

/* min_lr + (base - min_lr) (1 + cos(pi e / E)) / 2; min_lr once e >= E */
static double cosine_lr(double base, double min_lr, long e, long n)
{
    if (e >= n)
        return min_lr;
    return min_lr + (base - min_lr)
        * (1.0 + cos(PI * (double)e / (double)n)) / 2.0;
}

/* The per-epoch schedule at epoch e of n (both counted after warmup). */
static double decay_lr(const mimo_sched_spec *s, double base, long e, long n)
{
    long size = s->step_size > 0 ? s->step_size : 1;
    switch (s->kind) {
    case MIMO_SCHED_STEP:
        return base * pow(s->gamma, (double)(e / size));
    case MIMO_SCHED_EXPONENTIAL:
        return base * pow(s->gamma, (double)e);
    case MIMO_SCHED_COSINE:
        return cosine_lr(base, s->min_lr, e, n);
    default:
        return base;
    }
}

double mimo_schedule_lr(const mimo_sched_spec *s, double base_lr, long epoch,
                        long epochs, long step_in_epoch, long steps_per_epoch)
{
    long w = s->warmup_epochs > 0 ? s->warmup_epochs : 0;
    if (epoch < 0)
        epoch = 0;
    if (epoch < w)
        return warmup_lr(base_lr, w, epoch, step_in_epoch, steps_per_epoch);
    return decay_lr(s, base_lr, epoch - w, epochs - w);
}

/* ---- monitors ---------------------------------------------------------- */

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

int mimo_monitor_is_max(mimo_mode mode, const char *monitor)
{
    const char *m = monitor ? monitor : "";
    if (mode == MIMO_MODE_MAX)
        return 1;
    if (mode == MIMO_MODE_MIN || ends_with(m, "loss"))
        return 0;
    /* Keras' rule (names with "acc"), and the other metrics where more is
     * better */
    static const char *const up[] = {"_auc", "_precision", "_recall", "_f1", "_r2"};
    for (size_t i = 0; i < sizeof up / sizeof *up; i++)
        if (ends_with(m, up[i]))
            return 1;
    return strstr(m, "acc") != NULL;
}

/* max: v > best + d; min: v < best - d (NaN compares false either way) */
int mimo_monitor_better(int is_max, double value, double best,
                        double min_delta)
{
    if (isnan(value))
        return 0;
    return is_max ? value > best + min_delta : value < best - min_delta;
}

/* ---- ReduceLROnPlateau ------------------------------------------------- */

void mimo_plateau_init(mimo_plateau_state *st, const mimo_plateau_spec *s,
                       const char *monitor)
{
    st->best = mimo_monitor_is_max(s->mode, monitor) ? -HUGE_VAL : HUGE_VAL;
    st->wait = 0;
    st->cooldown_counter = 0;
    st->initialized = 1;
}

/* lr = max(lr * factor, min_lr) once patience runs out, if above min_lr */
static double plateau_wait(mimo_plateau_state *st, const mimo_plateau_spec *s,
                           double lr, int *reduced)
{
    st->wait++;
    if (st->wait < s->patience || !(lr > s->min_lr))
        return lr;
    lr *= s->factor;
    if (lr < s->min_lr)
        lr = s->min_lr;
    st->cooldown_counter = s->cooldown;
    st->wait = 0;
    *reduced = 1;
    return lr;
}

double mimo_plateau_update(mimo_plateau_state *st, const mimo_plateau_spec *s,
                           const char *monitor, double value, double lr,
                           int *reduced)
{
    int is_max = mimo_monitor_is_max(s->mode, monitor), red = 0;
    if (!st->initialized)
        mimo_plateau_init(st, s, monitor);
    if (st->cooldown_counter > 0) {
        st->cooldown_counter--;
        st->wait = 0;
    }
    if (mimo_monitor_better(is_max, value, st->best, s->min_delta)) {
        st->best = value;
        st->wait = 0;
    } else if (st->cooldown_counter <= 0) {
        lr = plateau_wait(st, s, lr, &red);
    }
    if (reduced)
        *reduced = red;
    return lr;
}

/* ---- EarlyStopping ----------------------------------------------------- */

void mimo_early_init(mimo_early_state *st)
{
    st->best = 0.0;
    st->wait = 0;
    st->best_epoch = -1;
    st->stopped = 0;
    st->initialized = 0;
}

int mimo_early_update(mimo_early_state *st, const mimo_early_spec *s,
                      const char *monitor, long epoch, double value,
                      int *improved)
{
    int is_max = mimo_monitor_is_max(s->mode, monitor);
    int better = st->initialized
        ? mimo_monitor_better(is_max, value, st->best, s->min_delta)
        : !isnan(value);
    if (improved)
        *improved = better;
    st->wait++;
    if (better) {
        st->best = value;
        st->best_epoch = epoch;
        st->initialized = 1;
        st->wait = 0;
        return 0;
    }
    if (st->wait >= s->patience && epoch > 0) {
        st->stopped = 1;
        return 1;
    }
    return 0;
}
