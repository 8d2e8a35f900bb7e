/* schedule.h — learning-rate schedules and the monitor-driven callbacks
 * (ReduceLROnPlateau, EarlyStopping, best-checkpoint choice) as pure logic.
 * No I/O, no MPI, no allocation: the trainer calls these on every rank with
 * the same (allreduced) numbers, so every rank decides the same. State lives
 * in small structs of plain numbers, so a checkpoint can save and restore it
 * field by field. */
#ifndef MIMO_TRAIN_SCHEDULE_H
#define MIMO_TRAIN_SCHEDULE_H


#include "mimo/spec.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- learning-rate schedule ---------------------------------------------
 * The lr of one step. epoch is 0-based; epochs is the run's total;
 * step_in_epoch is 0-based within the epoch, steps_per_epoch > 0 (a value
 * < 1 counts as 1; step_in_epoch is clamped into the epoch).
 *
 * Warmup (any kind), for epoch < W = warmup_epochs, per step:
 *     lr = base * (g + 1) / (W * steps_per_epoch),
 *     g  = epoch * steps_per_epoch + step_in_epoch       (the global step)
 * so the last warmup step reaches base exactly.
 * After warmup the schedule starts afresh: it sees e = epoch - W and
 * E = epochs - W, so its first epoch is base (no jump at the hand-off) and
 * cosine ends its half-period at the run's end. Per epoch (Keras), with e:
 *     constant:     base
 *     step:         base * gamma^floor(e / step_size)
 *     exponential:  base * gamma^e
 *     cosine:       min_lr + (base - min_lr) * (1 + cos(pi * e / E)) / 2,
 *                   and min_lr once e >= E (also when E <= 0). */
double mimo_schedule_lr(const mimo_sched_spec *s, double base_lr, long epoch,
                        long epochs, long step_in_epoch,
                        long steps_per_epoch);

/* ---- monitors -----------------------------------------------------------
 * A monitor names a logged quantity: loss, <head>_loss, <head>_<metric>,
 * and the val_ versions. */

/* 1 when larger is better. mode max -> 1, min -> 0; auto -> 0 for a name
 * ending in "loss" (so a head named "acc..." still minimizes its loss),
 * else 1 when the name contains "acc" (Keras), else 0. NULL counts as "". */
int mimo_monitor_is_max(mimo_mode mode, const char *monitor);

/* 1 when value improves on best by more than min_delta:
 *     max: value > best + min_delta;   min: value < best - min_delta.
 * A NaN value is never better. Used by plateau, early stopping and the
 * best checkpoint alike. */
int mimo_monitor_better(int is_max, double value, double best,
                        double min_delta);

/* ---- ReduceLROnPlateau (keras.callbacks.ReduceLROnPlateau) --------------
 * Per epoch end, with v the monitored value:
 *     if cooldown_counter > 0:  cooldown_counter -= 1; wait = 0
 *     if better(v, best):       best = v; wait = 0
 *     elif cooldown_counter == 0:
 *         wait += 1
 *         if wait >= patience and lr > min_lr:
 *             lr = max(lr * factor, min_lr)
 *             cooldown_counter = cooldown; wait = 0
 * As in Keras the counter is decremented before the test, so `cooldown` c
 * rests c - 1 epochs (cooldown 1 behaves as 0). NaN never improves, so it
 * counts toward patience. */
typedef struct {
    double best;           /* +inf (min) or -inf (max) before any value */
    long wait;             /* epochs since the last improvement */
    long cooldown_counter; /* epochs of cooldown left */
    int initialized;       /* 0: the next update calls mimo_plateau_init */
} mimo_plateau_state;

/* Resets st for spec s watching `monitor` (the resolved name, e.g.
 * "val_loss"; the direction comes from s->mode and this name). */
void mimo_plateau_init(mimo_plateau_state *st, const mimo_plateau_spec *s,
                       const char *monitor);

/* One epoch end: returns the lr to use from now on (never below s->min_lr
 * by a reduction; an lr already <= min_lr is left as it is) and sets
 * *reduced (may be NULL) to 1 when it was reduced. */
double mimo_plateau_update(mimo_plateau_state *st, const mimo_plateau_spec *s,
                           const char *monitor, double value, double lr,
                           int *reduced);

/* ---- EarlyStopping (keras.callbacks.EarlyStopping) ----------------------
 * Per epoch end, with v the monitored value:
 *     wait += 1
 *     if no best yet (and v is not NaN) or better(v, best):
 *         best = v; best_epoch = epoch; wait = 0; improved
 *     elif wait >= patience and epoch > 0: stop
 * ("epoch > 0": as Keras, never stop on the first epoch.) */
typedef struct {
    double best;           /* valid when initialized */
    long wait;             /* epochs since the last improvement */
    long best_epoch;       /* epoch of best; -1 before any */
    int stopped;           /* 1 once an update asked to stop */
    int initialized;       /* 1 once best holds a value */
} mimo_early_state;

/* Resets st: no best yet, best_epoch -1. (An all-zero state also works,
 * except that best_epoch reads 0.) */
void mimo_early_init(mimo_early_state *st);

/* One epoch end (epoch 0-based): returns 1 when training should stop now,
 * and sets *improved (may be NULL) to 1 when this epoch is the new best, so
 * the trainer keeps a copy of the parameters for restore_best. */
int mimo_early_update(mimo_early_state *st, const mimo_early_spec *s,
                      const char *monitor, long epoch, double value,
                      int *improved);

#ifdef __cplusplus
}
#endif
#endif
