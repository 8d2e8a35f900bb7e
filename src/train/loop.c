/* loop.c — a training run as `mimo train` does it (trainer.h): open the
 * data, resume or initialize, then the loop — epochs of steps, each step
 * mimo_train_step (data, forward, loss, backward, update) followed by the
 * run's bookkeeping (counters, learning rate, progress, replica checks,
 * the stop/save vote, checkpoints) — and after each epoch validation,
 * history, callbacks and checkpoints. The history lives in history.c, the
 * run directory and its checkpoints in rundir.c, the state a resumed run
 * needs in runstate.c, eval and predict in evaluate.c. Never prints.
 *
 * Part train (src/train/): a training run — the step, the loop, history,
 * run directory, resume state, eval/predict, fit; uses every part above.
 */
#define _POSIX_C_SOURCE 200809L /* sysconf */
#include "core/model.h"
#include "mimo/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "base/clock.h"
#include "base/error_impl.h"
#include "base/fsutil.h"
#include "core/bf16.h"
#include "comm/stall.h"
#include "io/dataset_impl.h"
#include "io/prep.h"
#include "mimo/dataset.h"
#include "mimo/error.h"
#include "mimo/fit.h"
#include "train/schedule.h"
#include "mimo/summary.h"
#include "train/fit_impl.h"
#include "train/history.h"
#include "train/rundir.h"
#include "train/runstate.h"
#include "train/teardown.h"

typedef struct {
    mimo_spec *spec;
    const mimo_train_opts *o;
    /* the model and its data */
    mimo_model *m;
    mimo_graph *g;
    int n_heads;
    mimo_data *train_d, *val_d, *val_view;
    mimo_source ts, vs;
    int have_val;
    /* data parallelism: a duplicate of o->comm, or MPI_COMM_NULL */
    MPI_Comm comm;
    int rank, size;
    mimo_dist *dist;
    mimo_trace *trace;
    /* the run's files and the state a resume needs */
    int lock_fd;                /* rank 0: the run directory's lock */
    mimo_rundir dir;
    mimo_history hist;
    mimo_run_state state;
    char monitor_plateau[128], monitor_early[128], monitor_ckpt[128];
    mimo_real *best_params;  /* early stopping's restore_best */
    int has_best;
    /* the epoch in progress */
    long epochs, steps;
    double base_lr;
    const uint64_t *order;
    const char **head_names;    /* for progress reports */
    double *head_loss;
    mimo_stats tr, va;          /* the epoch's sums (this rank's) */
    long long count_at_start;   /* tr.count when this process began the epoch */
    long first_step;            /* the step this process began the epoch at */
    int save_pending;           /* a step checkpoint fell on an epoch's last step */
    int stop_pending;           /* so did a stop: after the epoch's end */
    int scan_stopped;           /* a stop cut the data's scan short */
    int warned_sum;             /* the gradient sum's cost was judged */
    /* clocks: run start, epoch start, step start, last checkpoint */
    double t_start, t_epoch, t_step, t_ckpt, step_s;
} run;

enum { FLAG_STOP = 1, FLAG_SAVE = 2 };

static void note(const run *r, const char *msg)
{
    if (r->o->on_message)
        r->o->on_message(r->o->user, msg);
}

static void note_cb(void *u, const char *msg) { note(u, msg); }

/* Errors are agreed across ranks where all of them can meet, so no rank is
 * left waiting in a collective: the failing rank keeps its code, the
 * others get MIMO_EPEER. */
static int agree(const run *r, int rc)
{
    return r->size > 1 ? mimo_agree(r->comm, rc) : rc;
}

static double lr_at(const run *r, long epoch, long step)
{
    return r->state.lr_scale * mimo_schedule_lr(&r->spec->train.schedule, r->base_lr,
                                                epoch, r->epochs, step, r->steps);
}

/* ---- checkpoints ------------------------------------------------------------ */

/* Collective: the epoch's sums so far over all ranks go into the state,
 * rank 0 builds the checkpoint (the periodic one, with best.h5 as its
 * second name when also_best; else checkpoints/name) and hands it to the
 * background writer, and its success is agreed. */
static int save(run *r, const char *name, int periodic, int also_best)
{
    mimo_stats part = {0};
    int rc = mimo_stats_init(&part, r->n_heads);
    if (r->train_d)
        mimo_data_wait(r->train_d); /* the reader thread must be out of HDF5 */
    if (!rc && !(rc = mimo_stats_bind(&part, r->g)) &&
        !(rc = mimo_stats_copy(&part, &r->tr)) && r->dist)
        rc = mimo_dist_sum_stats(r->dist, &part);
    if (!rc)
        rc = mimo_run_state_pack(&r->state, r->spec, r->ts.rows, r->size,
                                 mimo_model_lr(r->m), &part);
    mimo_stats_free(&part);
    if ((rc = agree(r, rc)))
        return rc;
    r->t_ckpt = mimo_clock();
    const mimo_real *best = r->has_best ? r->best_params : NULL;
    double t0 = r->trace ? mimo_trace_now(r->trace) : 0;
    mimo_stall_at(r->state.ck.global_step, MIMO_BUSY_CHECKPOINT);
    rc = periodic ? mimo_rundir_save_periodic(&r->dir, r->m, &r->state.ck, best, also_best)
                  : mimo_rundir_save(&r->dir, name, r->m, &r->state.ck, best);
    mimo_stall_at(r->state.ck.global_step, MIMO_BUSY_STEP);
    /* the training thread's part: waiting for the save before, the copy */
    mimo_trace_span(r->trace, "train", "checkpoint", t0,
                    r->trace ? mimo_trace_now(r->trace) : 0);
    return rc;
}

/* ---- one step and its bookkeeping ------------------------------------------ */

/* Counters, the next step's lr. */
static void count_step(run *r, long epoch, long step, size_t gb)
{
    r->state.ck.global_step++;
    r->state.ck.samples_seen += (int64_t)gb;
    r->state.ck.step = step + 1;
    mimo_model_set_lr(r->m, lr_at(r, epoch, step + 1));
}

/* The running means of this epoch, for a progress display. */
static void report(run *r, long epoch, long step)
{
    if (!r->o->on_step)
        return;
    double el = mimo_clock() - r->t_epoch;
    for (int h = 0; h < r->n_heads; h++)
        r->head_loss[h] = mimo_metrics_loss(r->tr.metrics, h);
    double tot = mimo_model_total_loss(r->m, r->head_loss);
    double done = (double)(r->tr.count - r->count_at_start) * r->size;
    double per_step = el / (double)(step + 1 - r->first_step);
    mimo_progress p = {epoch, r->epochs, step + 1, r->steps, r->n_heads,
                       r->head_names, r->head_loss, tot, el > 0 ? done / el : 0,
                       per_step * (double)(r->steps - step - 1),
                       mimo_model_lr(r->m)};
    r->o->on_step(r->o->user, &p);
}

/* What every rank does after this step: stop (a signal or the time limit
 * on any rank) and/or save (rank 0's every_seconds clock), agreed one step
 * late without waiting (mimo_dist_vote). */
static int vote(run *r, int *verdict)
{
    const mimo_train_opts *o = r->o;
    double t = mimo_clock(), step_t = t - r->t_step;
    int flags = 0;
    if (step_t > r->step_s)
        r->step_s = step_t;
    if ((o->stop && *o->stop) ||
        (o->time_limit > 0 && t - r->t_start + 3 * r->step_s + 1 > o->time_limit))
        flags |= FLAG_STOP;
    if (r->rank == 0 && r->spec->train.checkpoint.every_seconds > 0 &&
        t - r->t_ckpt >= r->spec->train.checkpoint.every_seconds)
        flags |= FLAG_SAVE;
    int rc = mimo_dist_vote(r->dist, flags, verdict);
    if (!rc && (*verdict & FLAG_SAVE))
        r->t_ckpt = t; /* rank 0 must not ask again while this one is due */
    return rc;
}

/* One step of the run: the step itself, then the run's bookkeeping.
 * Returns 0, MIMO_TRAIN_STOPPED after the stop checkpoint, or an error. */
static int run_step(run *r, long epoch, long step)
{
    const mimo_ckpt_spec *c = &r->spec->train.checkpoint;
    size_t B = (size_t)r->spec->train.batch_size, start = (size_t)step * B;
    size_t gb = r->ts.rows - start < B ? r->ts.rows - start : B;
    int rc, verdict;
    mimo_stall_at(r->state.ck.global_step, MIMO_BUSY_STEP);
    if ((rc = mimo_train_step(r->m, &r->ts, r->order + start, gb, epoch, step,
                              &r->tr)))
        return rc;
    mimo_train_prefetch(r->m, &r->ts, r->order, start + B, B); /* the next step's */
    count_step(r, epoch, step, gb);
    report(r, epoch, step);
    long every = r->o->check_every > 0 ? r->o->check_every : MIMO_CHECK_EVERY_DEFAULT;
    if (r->dist && r->state.ck.global_step % every == 0 &&
        (rc = mimo_exchange_checksum(mimo_model_exchange(r->m), r->m,
                                     r->state.ck.global_step)))
        return rc;
    if ((rc = vote(r, &verdict)))
        return rc;
    if ((verdict & FLAG_STOP) && step + 1 == r->steps) {
        /* the position (e, steps) is not one to resume from: the epoch
         * ends first (history, checkpoint as (e + 1, 0)), then the run */
        r->stop_pending = r->save_pending = 1;
        return 0;
    }
    if (verdict & FLAG_STOP) {
        char msg[160];
        snprintf(msg, sizeof msg, "stopping at epoch %ld, step %ld: writing a "
                 "checkpoint to resume from", epoch + 1, step + 1);
        note(r, msg);
        return (rc = save(r, NULL, 1, 0)) ? rc : MIMO_TRAIN_STOPPED;
    }
    int due = (c->every_steps > 0 && r->state.ck.global_step % c->every_steps == 0) ||
              (verdict & FLAG_SAVE);
    if (due && step + 1 == r->steps)
        r->save_pending = 1; /* saved after the epoch's end, as (e + 1, 0) */
    else if (due && (rc = save(r, NULL, 1, 0)))
        return rc;
    r->t_step = mimo_clock();
    return 0;
}

/* ---- the end of an epoch ---------------------------------------------------- */

/* What the validation rows are, for messages (buf: 4200 bytes). */
static const char *val_name(const run *r, char *buf)
{
    const char *vp = r->o->val_path ? r->o->val_path : r->spec->data.val;
    if (vp)
        return vp;
    snprintf(buf, 4200, "the last %zu rows of %s (validation_split)",
             r->vs.rows, r->o->train_path ? r->o->train_path : r->spec->data.train);
    return buf;
}

/* The validation rows read through this: a stop asked for ends the sweep
 * at the next batch (MIMO_TRAIN_STOPPED), so a SIGTERM is honoured within
 * a batch however long the validation. A stop on one rank only reaches
 * the others as a message (STOP_TAG, no data) each of them probes for
 * between batches, so they end their sweeps too instead of finishing
 * them; validate() collects the messages afterwards. */
enum { STOP_TAG = 7275 }; /* no other point-to-point message uses it */

typedef struct {
    const mimo_source *in;
    volatile sig_atomic_t *stop;
    MPI_Comm comm;
    int rank, size;
    int told; /* this rank sent its stop to the others */
} stoppable;

static int read_or_stop(void *ctx, const uint64_t *rows, int b, mimo_real *const *in,
                        mimo_real *const *tgt)
{
    stoppable *s = ctx;
    int peer = 0;
    if (s->stop && *s->stop) {
        for (int k = 0; k < s->size && !s->told; k++)
            if (k != s->rank) /* 0 bytes: sent at once (eager) */
                MPI_Send(NULL, 0, MPI_BYTE, k, STOP_TAG, s->comm);
        s->told = 1;
        return MIMO_TRAIN_STOPPED;
    }
    if (s->size > 1 &&
        MPI_Iprobe(MPI_ANY_SOURCE, STOP_TAG, s->comm, &peer, MPI_STATUS_IGNORE) ==
            MPI_SUCCESS && peer)
        return MIMO_TRAIN_STOPPED;
    return s->in->read(s->in->ctx, rows, b, in, tgt);
}

/* Collective: this rank's validation sums, or MIMO_TRAIN_STOPPED when a
 * stop came (on any rank: agreed, each rank having swept all or part of
 * its rows) — then nothing is summed or logged and the epoch is saved as
 * (e, steps), from which a resume validates again. */
static int validate(run *r)
{
    stoppable st = {&r->vs, r->o->stop, r->comm, r->rank, r->size, 0};
    mimo_source src = r->vs;
    int v[2], rc;
    src.ctx = &st, src.read = read_or_stop;
    mimo_stall_at(r->state.ck.global_step, MIMO_BUSY_VALIDATION);
    mimo_stats_reset(&r->va);
    rc = mimo_model_evaluate(r->m, &src, &r->va);
    if (rc && rc != MIMO_TRAIN_STOPPED)
        return rc; /* this rank's alone: the app ends the job */
    v[0] = rc == MIMO_TRAIN_STOPPED || (r->o->stop && *r->o->stop);
    v[1] = st.told; /* the stop messages sent: each rank takes the others' */
    mimo_stall_enter(MIMO_STALL_AGREE);
    int err = r->size > 1 ? MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_INT, MPI_SUM, r->comm)
                          : MPI_SUCCESS;
    mimo_stall_leave();
    if (err != MPI_SUCCESS)
        return mimo_error(MIMO_EMPI, "MPI_Allreduce failed agreeing on a stop "
                          "during validation");
    for (int k = 0; k < v[1] - st.told; k++)
        if (MPI_Recv(NULL, 0, MPI_BYTE, MPI_ANY_SOURCE, STOP_TAG, r->comm,
                     MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return mimo_error(MIMO_EMPI, "MPI_Recv failed taking a stop message");
    return v[0] ? MIMO_TRAIN_STOPPED : 0;
}

/* The logged sums over all ranks, validation, and the history row (or
 * MIMO_TRAIN_STOPPED from validation). */
static int log_epoch(run *r, long e)
{
    double secs = mimo_clock() - r->t_epoch;
    long long here = r->tr.count - r->count_at_start; /* this process's part */
    double done = (double)here;
    int rc = 0;
    if (r->have_val && (rc = validate(r))) /* before the sums: a stop leaves */
        return rc;                         /* this rank's part of the epoch */
    if (r->dist && ((rc = mimo_dist_sum_stats(r->dist, &r->tr)) ||
                    (rc = mimo_dist_sum(r->dist, &done, 1))))
        return rc;
    mimo_stats_finish(r->m, &r->tr);
    if (r->have_val) {
        if (r->dist && (rc = mimo_dist_sum_stats(r->dist, &r->va)))
            return rc;
        mimo_stats_finish(r->m, &r->va);
        char name[4200];
        if ((rc = agree(r, mimo_stats_check_finite(&r->va, r->g, "validation",
                                                   val_name(r, name)))))
            return rc;
    }
    mimo_history_fill(&r->hist, e, &r->tr, &r->va, mimo_model_lr(r->m), secs,
                      secs > 0 ? done / secs : 0);
    if ((rc = agree(r, r->rank == 0 ? mimo_history_append(&r->hist, r->dir.history) : 0)))
        return rc;
    if (r->o->on_epoch) {
        mimo_epoch_log log = {r->hist.n_cols, (const char *const *)r->hist.names,
                              r->hist.values};
        r->o->on_epoch(r->o->user, &log);
    }
    return 0;
}

/* ReduceLROnPlateau and EarlyStopping on the logged values; sets *stop. */
static void callbacks(run *r, long e, int *stop)
{
    const mimo_train_spec *t = &r->spec->train;
    int improved = 0;
    if (t->plateau.enabled) {
        int reduced = 0;
        double cur = lr_at(r, e + 1, 0);
        double nl = mimo_plateau_update(&r->state.plateau, &t->plateau,
                                        r->monitor_plateau,
                                        mimo_history_value(&r->hist, r->monitor_plateau),
                                        cur, &reduced);
        if (reduced && cur > 0)
            r->state.lr_scale *= nl / cur;
    }
    if (t->early.enabled) {
        *stop = mimo_early_update(&r->state.early, &t->early, r->monitor_early, e,
                                  mimo_history_value(&r->hist, r->monitor_early),
                                  &improved);
        if (improved && t->early.restore_best) {
            memcpy(r->best_params, mimo_model_params(r->m),
                   sizeof(mimo_real) * mimo_model_param_count(r->m));
            r->has_best = 1;
        }
    }
}

/* The periodic checkpoint, and best.h5 when the monitored value improved:
 * the same file (written once, best.h5 its second name) when both are
 * due. */
static int epoch_checkpoints(run *r, long e)
{
    const mimo_ckpt_spec *c = &r->spec->train.checkpoint;
    int rc = 0, best = 0;
    if (c->save_best) {
        double v = mimo_history_value(&r->hist, r->monitor_ckpt);
        int is_max = mimo_monitor_is_max(c->mode, r->monitor_ckpt);
        if (isfinite(v) && (!r->state.ckpt_best_set ||
                            mimo_monitor_better(is_max, v, r->state.ckpt_best, 0)))
            r->state.ckpt_best = v, r->state.ckpt_best_set = best = 1;
    }
    int periodic = c->every_epochs > 0 && (e + 1) % c->every_epochs == 0;
    if (periodic || r->save_pending) /* incl. a step save due at the last step */
        rc = save(r, NULL, 1, best);
    else if (best)
        rc = save(r, "best.h5", 0, 0);
    r->save_pending = 0;
    return rc;
}

/* Once, after the first epoch on several ranks: when summing the
 * gradients took longer than computing them, more ranks do not pay. */
static void warn_sum_cost(run *r)
{
    double t[MIMO_N_PHASES];
    if (!r->dist || r->size == 1 || r->warned_sum)
        return;
    r->warned_sum = 1;
    mimo_dist_times(r->dist, t, 0);
    double compute = t[MIMO_PHASE_FORWARD] + t[MIMO_PHASE_BACKWARD];
    if (t[MIMO_PHASE_EXCHANGE] <= compute)
        return;
    char msg[512];
    snprintf(msg, sizeof msg, "warning: summing the gradients over the %d ranks "
             "took %.2f s of this epoch, more than the %.2f s of forward and "
             "backward: for a model this small, fewer ranks (or a larger batch) "
             "may train faster", r->size, t[MIMO_PHASE_EXCHANGE], compute);
    note(r, msg);
}

/* Validation, history, callbacks and checkpoints after an epoch. Sets
 * *stop when early stopping ends the run. */
static int end_epoch(run *r, long e, int *stop)
{
    int rc = log_epoch(r, e);
    if (rc == MIMO_TRAIN_STOPPED) {
        char msg[200];
        snprintf(msg, sizeof msg, "stopping at epoch %ld, during its validation: "
                 "writing a checkpoint to resume from (the validation runs again)",
                 e + 1);
        note(r, msg);
        return (rc = save(r, NULL, 1, 0)) ? rc : MIMO_TRAIN_STOPPED;
    }
    if (rc)
        return rc;
    if (r->rank == 0)
        warn_sum_cost(r);
    callbacks(r, e, stop);
    r->state.ck.epoch = e + 1;
    r->state.ck.step = 0;
    mimo_stats_reset(&r->tr);
    mimo_model_set_lr(r->m, lr_at(r, e + 1, 0));
    return epoch_checkpoints(r, e);
}

/* ---- the loop ------------------------------------------------------------------ */

static int train_loop(run *r)
{
    int rc = 0, stop = 0, restored = 0;
    mimo_model_set_lr(r->m, lr_at(r, r->state.ck.epoch, r->state.ck.step));
    for (long e = r->state.ck.epoch; e < r->epochs && !stop && !rc; e++) {
        if (!(r->order = mimo_model_order(r->m, r->ts.rows, e)))
            return MIMO_ENOMEM;
        r->t_epoch = r->t_step = mimo_clock();
        r->count_at_start = r->tr.count;
        r->first_step = r->state.ck.step;
        size_t B = (size_t)r->spec->train.batch_size; /* the first step's rows */
        mimo_train_prefetch(r->m, &r->ts, r->order, (size_t)r->state.ck.step * B, B);
        for (long step = r->state.ck.step; step < r->steps && !rc; step++)
            rc = run_step(r, e, step);
        int stopping = r->stop_pending && e + 1 < r->epochs; /* else: done */
        if (!rc && stopping) {
            char msg[160];
            snprintf(msg, sizeof msg, "stopping at epoch %ld, after its last step: "
                     "writing a checkpoint to resume from", e + 1);
            note(r, msg);
        }
        if (!rc)
            rc = end_epoch(r, e, &stop);
        if (!rc && stopping)
            return MIMO_TRAIN_STOPPED;
    }
    if (rc)
        return rc;
    if (r->dist && r->size > 1 && /* replicas must end bitwise identical */
        (rc = mimo_exchange_checksum(mimo_model_exchange(r->m), r->m,
                                     r->state.ck.global_step)))
        return rc;
    if (stop && r->has_best && r->spec->train.early.restore_best) {
        char msg[256];
        snprintf(msg, sizeof msg, "early stopping after epoch %lld; restoring the "
                 "parameters of epoch %ld", (long long)r->state.ck.epoch,
                 r->state.early.best_epoch + 1);
        note(r, msg);
        if ((rc = mimo_dist_write_params(r->dist, r->m, r->best_params)))
            return rc;
        restored = 1;
    } else if (stop) {
        note(r, "early stopping");
    }
    /* unchanged since the epoch's checkpoint: last.h5 is another name of it */
    if (!restored && r->dir.last_gs == r->state.ck.global_step)
        return mimo_rundir_link(&r->dir, "last.h5");
    return save(r, "last.h5", 0, 0);
}

/* ---- setting up ------------------------------------------------------------------ */

static const char *train_path(const run *r)
{
    return r->o->train_path ? r->o->train_path : r->spec->data.train;
}

static int open_data(run *r)
{
    const char *tp = train_path(r);
    const char *vp = r->o->val_path ? r->o->val_path : r->spec->data.val;
    int rc;
    if (!tp)
        return mimo_error(MIMO_EINVAL, "%s: no training data (set data.train or "
                          "pass --data)", r->spec->file);
    if ((rc = mimo_data_open(tp, r->g, MIMO_DATA_TRAIN, r->comm, &r->train_d)))
        return rc;
    mimo_data_fingerprint(r->train_d, r->state.data_fp); /* kept in checkpoints */
    r->state.have_data_fp = 1;
    r->ts = mimo_data_source(r->train_d);
    if (vp) {
        if ((rc = mimo_data_open(vp, r->g, MIMO_DATA_TARGETS, r->comm, &r->val_d)))
            return rc;
        r->vs = mimo_data_source(r->val_d);
        r->have_val = 1;
    } else if (r->spec->train.validation_split > 0) {
        size_t n = r->ts.rows, nv;
        if ((rc = mimo_validation_rows(r->spec->train.validation_split, n,
                                       r->spec->file, &nv)))
            return rc;
        /* Keras: the last rows, before shuffling; training keeps the rest
         * (the same source with fewer rows, so prefetching still works) */
        r->vs = mimo_data_range(r->train_d, n - nv, nv, &r->val_view);
        if (!r->val_view)
            return mimo_error(MIMO_ENOMEM, "out of memory");
        r->ts.rows = n - nv;
        r->have_val = 1;
    }
    return 0;
}

static int setup_monitors(run *r)
{
    const mimo_train_spec *t = &r->spec->train;
    const char *f = r->spec->file;
    int rc = 0;
    if (t->plateau.enabled)
        rc = mimo_history_monitor(&r->hist, t->plateau.monitor, "reduce_lr_on_plateau",
                                  f, r->monitor_plateau, sizeof r->monitor_plateau);
    if (!rc && t->early.enabled)
        rc = mimo_history_monitor(&r->hist, t->early.monitor, "early_stopping", f,
                                  r->monitor_early, sizeof r->monitor_early);
    if (!rc && t->checkpoint.save_best)
        rc = mimo_history_monitor(&r->hist, t->checkpoint.monitor, "checkpoint", f,
                                  r->monitor_ckpt, sizeof r->monitor_ckpt);
    if (!rc) {
        mimo_plateau_init(&r->state.plateau, &t->plateau, r->monitor_plateau);
        mimo_early_init(&r->state.early);
    }
    return rc;
}

/* Loads a checkpoint into the model and the state (every name the state
 * packs is asked for, so the load fills them; packed again before each
 * try, so a failed one leaves nothing behind in the state). */
static int load_checkpoint(run *r, const char *path)
{
    int rc = mimo_run_state_pack(&r->state, r->spec, r->ts.rows, r->size, 0, &r->tr);
    return rc ? rc : mimo_checkpoint_load(path, r->m, &r->state.ck, r->best_params,
                                          &r->has_best);
}

/* Says that c[i] (and its other names) did not load, and why. */
static void note_skipped(run *r, const mimo_resume_entry *c, size_t n, size_t i)
{
    char names[1024] = "", msg[2600];
    for (size_t j = i + 1; j < n; j++)
        if (c[j].file == i) {
            size_t u = strlen(names);
            const char *base = strrchr(c[j].path, '/');
            snprintf(names + u, sizeof names - u, "%s%s", u ? ", " : " (also named ",
                     base ? base + 1 : c[j].path);
        }
    if (names[0])
        strncat(names, ")", sizeof names - strlen(names) - 1);
    snprintf(msg, sizeof msg, "warning: skipping %s%s, which does not load (%s); "
             "trying the previous checkpoint", c[i].path, names, mimo_errmsg());
    note(r, msg);
}

/* --resume auto: the newest checkpoint of the run directory that loads
 * (loaded), into path; each newer one that does not is named with why —
 * a damaged newest file must not fail every requeue until someone
 * deletes it. "" when there is none yet; an error when none loads. Every
 * rank tries the same files in the same order (sync_replicas checks
 * they agree). */
static int resume_auto(run *r, char *path, size_t len)
{
    mimo_resume_entry *c;
    size_t n, tried = 0;
    char first[1024] = "";
    int rc = mimo_resume_list(r->o->out_dir, &c, &n);
    path[0] = '\0';
    for (size_t i = 0; i < n && !rc && !path[0]; i++) {
        if (c[i].file != i)
            continue; /* another name of a file that did not load */
        int lr = load_checkpoint(r, c[i].path);
        if (!lr)
            snprintf(path, len, "%s", c[i].path);
        else if (lr == MIMO_ENOMEM)
            rc = lr;
        else {
            if (!tried++)
                snprintf(first, sizeof first, "%s", mimo_errmsg());
            note_skipped(r, c, n, i);
            mimo_error_clear();
        }
    }
    mimo_resume_list_free(&c, n);
    if (!rc && tried && !path[0])
        return mimo_error(MIMO_EINVAL, "%s: none of its %zu checkpoint file(s) loads "
                          "(the newest: %s): start again with --overwrite, or resume "
                          "from a copy with --resume FILE", r->o->out_dir, tried, first);
    if (!rc && !path[0])
        note(r, "no checkpoint to resume from yet: starting fresh");
    return rc;
}

/* The checkpoint to resume from, loaded, into path ("" for a fresh
 * start). */
static int resume_from(run *r, char *path, size_t len)
{
    path[0] = '\0';
    if (!r->o->resume)
        return 0;
    if (strcmp(r->o->resume, "auto") == 0)
        return resume_auto(r, path, len);
    int rc = mimo_find_checkpoint(r->o->resume, path, len);
    return rc ? rc : load_checkpoint(r, path);
}

/* A new run's id: 16 hex digits from the kernel's random source (else
 * the clock and the pid). */
static void new_run_id(char *id, size_t len)
{
    uint64_t v = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(&v, sizeof v, 1, f) != 1)
        v = (uint64_t)(mimo_clock() * 1e9) ^ ((uint64_t)getpid() << 32);
    if (f)
        fclose(f);
    snprintf(id, len, "%016llx", (unsigned long long)v);
}

/* This run's lineage (mimo_ckpt_state): its own id after the resumed
 * checkpoint's lineage and step; the oldest entries dropped when long. */
static void set_lineage(run *r, int resumed)
{
    char id[24], *lin = r->state.ck.lineage;
    size_t cap = sizeof r->state.ck.lineage;
    new_run_id(id, sizeof id);
    if (!resumed || !lin[0]) {
        snprintf(lin, cap, "%s", id);
        return;
    }
    char tail[64];
    snprintf(tail, sizeof tail, "@%lld/%s", (long long)r->state.ck.global_step, id);
    while (strlen(lin) + strlen(tail) >= cap && strchr(lin, '/'))
        memmove(lin, strchr(lin, '/') + 1, strlen(strchr(lin, '/') + 1) + 1);
    if (strlen(lin) + strlen(tail) < cap)
        strcat(lin, tail);
    else
        snprintf(lin, cap, "%s", id);
}

/* The table --init prints (rank 0): a line per tensor, as it goes, after a
 * header; the counts at the end. */
typedef struct {
    run *r;
    int n[4];
    int strict;     /* --init-strict: no table; the first tensor not loaded */
    char bad[400];  /* is kept here */
} init_table;

static void init_line(void *u, const char *tensor, mimo_init_status st,
                      const char *shape, const char *file_shape)
{
    static const char *const what[] = {"loaded", "new (initialized)",
                                       "shape mismatch (initialized)",
                                       "in the file, unused"};
    init_table *t = u;
    char msg[700], why[160] = "";
    t->n[st]++;
    if (t->strict) {
        if (!t->bad[0] && st == MIMO_INIT_NEW)
            snprintf(t->bad, sizeof t->bad, "no tensor for '%s' %s", tensor, shape);
        else if (!t->bad[0] && st == MIMO_INIT_MISMATCH)
            snprintf(t->bad, sizeof t->bad, "the tensor for '%s' has shape %s, the "
                     "layer needs %s", tensor, file_shape, shape);
        return;
    }
    if (t->r->rank != 0)
        return;
    if (st == MIMO_INIT_MISMATCH)
        snprintf(why, sizeof why, ": the file's is %s", file_shape);
    snprintf(msg, sizeof msg, "  %-32s %-14s %s%s", tensor, shape, what[st], why);
    note(t->r, msg);
}

/* --init: by name (a table of what was loaded), or --init-strict: every
 * tensor (renamed by --init-map, if any), and a warning naming the file's
 * entries no layer reads. */
static int init_from(run *r)
{
    char names[600], msg[800];
    if (r->o->init_strict && r->o->n_init_map) {
        init_table t = {.r = r, .strict = 1};
        int rc = mimo_checkpoint_init_by_name(r->o->init, r->m, r->o->init_map,
                                              r->o->n_init_map, init_line, &t);
        if (!rc && t.bad[0])
            rc = mimo_error(MIMO_EINVAL, "%s: %s (--init-strict: every tensor from the "
                            "file)", r->o->init, t.bad);
        return rc;
    }
    if (!r->o->init_strict) {
        init_table t = {r, {0}, 0, ""};
        if (r->rank == 0) {
            snprintf(msg, sizeof msg, "--init %s, by layer and tensor name:", r->o->init);
            note(r, msg);
        }
        int rc = mimo_checkpoint_init_by_name(r->o->init, r->m, r->o->init_map,
                                              r->o->n_init_map, init_line, &t);
        if (!rc && r->rank == 0) {
            snprintf(msg, sizeof msg, "--init: %d tensor%s loaded, %d new, %d shape "
                     "mismatch%s, %d unused in the file", t.n[0], t.n[0] == 1 ? "" : "s",
                     t.n[1], t.n[2], t.n[2] == 1 ? "" : "es", t.n[3]);
            note(r, msg);
        }
        return rc;
    }
    int rc = mimo_checkpoint_init_params(r->o->init, r->m);
    int n = rc || r->rank != 0 ? 0 : mimo_checkpoint_unused_params(r->o->init, r->g,
                                                                   names, sizeof names);
    if (n) {
        snprintf(msg, sizeof msg, "warning: %s: %d entr%s of /params match%s no layer "
                 "of this network and %s not used: %s", r->o->init, n,
                 n == 1 ? "y" : "ies", n == 1 ? "es" : "", n == 1 ? "is" : "are",
                 names);
        note(r, msg);
    }
    return rc;
}

/* adapt: from_data at a fresh start (after --init: the data's statistics
 * win): the layers' mean and variance from the training file's
 * /preprocessing, or computed over its training rows; discretization's
 * bin_boundaries, the quantiles of its training rows. A resumed run keeps
 * its checkpoint's. */
static int adapt_from_data(run *r)
{
    int n = 0, computed = 0, rc = mimo_data_adapt(train_path(r), r->m, &r->ts, &n,
                                                  &computed);
    if (!rc && n) {
        char msg[4400];
        char how[64] = "";
        if (computed == n)
            snprintf(how, sizeof how, " (computed over its training rows)");
        else if (computed)
            snprintf(how, sizeof how, " (%d of them computed over its training rows)",
                     computed);
        snprintf(msg, sizeof msg, "%d layer%s adapted to the statistics of %s%s", n,
                 n == 1 ? "" : "s", train_path(r), how);
        note(r, msg);
    }
    return rc;
}

/* Fresh start, --init, or --resume. */
static int starting_point(run *r)
{
    char path[4096], msg[4300];
    r->state.lr_scale = 1;
    int rc = resume_from(r, path, sizeof path);
    if (rc)
        return rc;
    if (!path[0]) {
        set_lineage(r, 0);
        rc = r->o->init ? init_from(r) : 0;
        return rc ? rc : adapt_from_data(r);
    }
    if ((rc = mimo_run_state_check(&r->state, r->spec, r->ts.rows, path, note_cb,
                                   r)) ||
        (rc = mimo_run_state_check_data(&r->state, r->state.data_fp, path, train_path(r),
                                        r->o->strict_data, note_cb, r)))
        return rc;
    if ((rc = mimo_run_state_unpack(&r->state, r->rank, &r->tr)) == MIMO_ENOMEM)
        return rc;
    if (rc) {
        mimo_error_clear();
        snprintf(msg, sizeof msg, "%s: its sums of epoch %lld so far do not fit "
                 "this config's metrics (or come from an older mimo): that epoch's "
                 "logged values cover only the steps from here", path, (long long)r->state.ck.epoch + 1);
        note(r, msg);
    }
    set_lineage(r, 1);
    snprintf(msg, sizeof msg, "resuming from %s (epoch %lld, step %lld)", path,
             (long long)r->state.ck.epoch + 1, (long long)r->state.ck.step);
    note(r, msg);
    mimo_spec was;
    if (r->rank == 0 && !mimo_checkpoint_spec(path, NULL, 0, &was)) {
        char changes[1200];
        int n = mimo_run_state_changes(&was, r->spec, changes, sizeof changes);
        if (n) {
            snprintf(msg, sizeof msg, "resuming with %d setting%s changed from the "
                     "checkpoint's config: %s", n, n == 1 ? "" : "s", changes);
            note(r, msg);
        }
        mimo_spec_free(&was);
    } else if (r->rank == 0) {
        mimo_error_clear(); /* read just before by the load: only a note is lost */
    }
    if (r->state.ck.world_size > 0 && r->state.ck.world_size != r->size) {
        snprintf(msg, sizeof msg, "resuming a %lld-rank checkpoint on %d rank%s",
                 (long long)r->state.ck.world_size, r->size, r->size == 1 ? "" : "s");
        note(r, msg);
    }
    return 0;
}

/* Warns when the ranks on this node times their threads exceed its cores. */
static int check_threads(run *r)
{
    int local = 1, local_rank = 0, threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    int rc = mimo_comm_node(r->comm, &local, &local_rank);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (!rc && local_rank == 0 && cores > 0 && (long)local * threads > cores) {
        char msg[256];
        snprintf(msg, sizeof msg, "warning: %d rank(s) x %d thread(s) on this node "
                 "exceed its %ld cores; set OMP_NUM_THREADS so ranks x threads <= "
                 "cores", local, threads, cores);
        note(r, msg);
    }
    return rc;
}

/* train.precision: bf16 runs where every rank's CPU multiplies bf16
 * natively (core/bf16.h). Elsewhere a note and float32 — the spec says
 * float32 from here on, for the graph and the summary — or, with
 * --strict-precision, an error. Never an emulation: slower than float32. */
static int check_precision(run *r)
{
    if (r->spec->train.precision != MIMO_PRECISION_BF16)
        return 0;
    const char *what = NULL, *file = r->spec->file ? r->spec->file : "<config>";
    int native = mimo_bf16_native(&what), all = native;
    if (r->size > 1 &&
        MPI_Allreduce(&native, &all, 1, MPI_INT, MPI_MIN, r->comm) != MPI_SUCCESS)
        return mimo_error(MIMO_EMPI, "the ranks could not agree on train.precision");
    const char *why = native ? "a rank's CPU has no native bf16" : what;
    char msg[400];
    if (all) {
        snprintf(msg, sizeof msg, "precision: bf16 (%s)", what);
    } else if (r->o->strict_precision) {
        return mimo_error(MIMO_EINVAL, "%s: train.precision: bf16 refused "
                          "(--strict-precision): %s", file, why);
    } else {
        snprintf(msg, sizeof msg, "precision: bf16 asked for, but %s: training in "
                 "float32 (--strict-precision: an error instead)", why);
        r->spec->train.precision = MIMO_PRECISION_FLOAT32;
    }
    if (r->rank == 0)
        note(r, msg);
    return 0;
}

static int create_model(run *r)
{
    int rc = mimo_model_create(r->spec, &r->m);
    if (rc)
        return rc;
    r->g = mimo_model_graph(r->m);
    r->n_heads = mimo_graph_n_heads(r->g);
    r->best_params = calloc(mimo_model_param_count(r->m) + 1, sizeof(mimo_real));
    r->head_names = calloc((size_t)r->n_heads, sizeof *r->head_names);
    r->head_loss = calloc((size_t)r->n_heads, sizeof *r->head_loss);
    if (!r->best_params || !r->head_names || !r->head_loss)
        return mimo_error(MIMO_ENOMEM, "out of memory");
    for (int h = 0; h < r->n_heads; h++)
        r->head_names[h] = r->spec->outputs[h].name;
    if ((rc = mimo_stats_init(&r->tr, r->n_heads)) ||
        (rc = mimo_stats_init(&r->va, r->n_heads)) ||
        (rc = mimo_stats_bind(&r->tr, r->g)))
        return rc;
    return mimo_stats_bind(&r->va, r->g);
}

static int setup_parallel(run *r)
{
    const mimo_train_opts *o = r->o;
    int rc = 0;
    if (o->dist.dense_embeddings) /* one process too (local, not local_rows) */
        mimo_model_dense_tables(r->m);
    if (o->trace_path)
        rc = mimo_trace_create(r->rank, 1u << 20, &r->trace);
    if (!rc && (r->size > 1 || r->trace))
        rc = mimo_dist_create(r->comm, mimo_model_trained_count(r->m), &o->dist,
                              r->trace, &r->dist);
    if ((rc = agree(r, rc)) || !r->dist)
        return rc;
    return agree(r, mimo_dist_attach(r->dist, r->m)); /* collective */
}

/* Every rank starts from rank 0's parameters (and checks it), at the same
 * position: a resume on every rank picked the same checkpoint (each tries
 * the same files; one that loaded only on some ranks would split them). */
static int sync_replicas(run *r)
{
    if (!r->dist || r->size == 1)
        return 0;
    long long gs[2] = {r->state.ck.global_step, -r->state.ck.global_step};
    mimo_stall_enter(MIMO_STALL_AGREE);
    int err = MPI_Allreduce(MPI_IN_PLACE, gs, 2, MPI_LONG_LONG, MPI_MAX, r->comm);
    mimo_stall_leave();
    if (err != MPI_SUCCESS)
        return mimo_error(MIMO_EMPI, "MPI_Allreduce failed comparing the ranks' "
                          "starting points");
    if (gs[0] != -gs[1])
        return agree(r, mimo_error(MIMO_EINVAL, "the ranks start from different "
                                   "checkpoints (global steps %lld to %lld): a "
                                   "checkpoint that loads on some ranks only",
                                   -gs[1], gs[0]));
    size_t n = mimo_model_param_count(r->m);
    int rc = mimo_dist_bcast(r->dist, mimo_model_params(r->m), n);
    return rc ? rc : mimo_exchange_checksum(mimo_model_exchange(r->m), r->m,
                                            r->state.ck.global_step);
}

/* Rank 0: the run directory's lock before anything in it is read or
 * removed, then the leftovers of dead processes, then whether it holds an
 * earlier run. */
static int claim_dir(run *r)
{
    int rc = mimo_rundir_lock(r->o->out_dir, &r->lock_fd), n;
    double bytes;
    if (rc)
        return rc;
    mimo_rundir_clean_tmp(r->o->out_dir, &n, &bytes);
    if (n) {
        char msg[256];
        snprintf(msg, sizeof msg, "removed %d temporary file(s) (%.1f MB) left in "
                 "%s by processes that ended mid-write", n, bytes / 1e6,
                 r->o->out_dir);
        note(r, msg);
    }
    return mimo_rundir_check(r->o->out_dir, r->o->resume != NULL, r->o->overwrite);
}

/* Before the model is made: its memory, said at start, against what the
 * node has (all its ranks together); more is an error unless --force. */
static int check_memory(run *r)
{
    mimo_graph *g = NULL;
    int local = 1, local_rank = 0;
    int rc = mimo_graph_compile(r->spec, (int)mimo_micro_batch(r->spec), 0, &g);
    if (rc)
        return 0; /* create_model reports it */
    double need = mimo_graph_train_bytes(g), avail = mimo_available_bytes();
    mimo_graph_free(&g);
    if ((rc = mimo_comm_node(r->comm, &local, &local_rank)))
        return rc;
    char msg[512], node[96] = "";
    if (local > 1)
        snprintf(node, sizeof node, "; %d ranks on this node: %.1f MB", local,
                 need * local / 1e6);
    if (avail > 0 && need * local > avail) {
        snprintf(msg, sizeof msg, "the model needs about %.1f MB per rank to train "
                 "(parameters, gradients, optimizer moments, activations at batch "
                 "%ld%s) but this machine has %.1f MB available", need / 1e6,
                 mimo_micro_batch(r->spec), node, avail / 1e6);
        if (!r->o->force)
            return mimo_error(MIMO_ENOMEM, "%s: %s: use a smaller model or batch, "
                              "fewer ranks per node, or --force", r->spec->file, msg);
        if (r->rank == 0) {
            char w[600];
            snprintf(w, sizeof w, "warning: %s (--force: starting anyway)", msg);
            note(r, w);
        }
    } else if (r->rank == 0 && need > 64e6) {
        snprintf(msg, sizeof msg, "memory: about %.1f MB per rank to train%s (%.1f MB "
                 "available)", need / 1e6, node, avail / 1e6);
        note(r, msg);
    }
    return 0;
}

static int stopped_early(run *r);

/* The model, the data, the run directory, where to start: every rank
 * agrees on the outcome before the collectives that follow. */
static int set_up(run *r)
{
    int rc = agree(r, check_precision(r)); /* first: the fallback changes the spec */
    if (!rc)
        rc = agree(r, check_memory(r));
    if (!rc)
        rc = agree(r, create_model(r));
    if (!rc) { /* opening is agreed inside; the split checks are not */
        mimo_data_stop_flag(r->o->stop);
        rc = open_data(r);
        mimo_data_stop_flag(NULL);
        if (!(rc && mimo_error_agreed()))
            rc = agree(r, rc);
        if (rc && stopped_early(r)) { /* a scan cut short by the stop: */
            mimo_error_clear();           /* the directory says "stopped" */
            r->scan_stopped = 1;
            rc = 0;
        }
    }
    if (!rc) /* rank 0 alone writes the directory: agree before collectives */
        rc = agree(r, (rc = mimo_history_init(&r->hist, r->g, r->have_val)) ||
                      (rc = setup_monitors(r)) ||
                      (rc = r->rank == 0 ? claim_dir(r) : 0) ||
                      (rc = mimo_rundir_open(&r->dir, r->o->out_dir,
                                             r->spec->train.checkpoint.keep,
                                             r->spec->text, r->comm, r->rank,
                                             r->size)) ||
                      (rc = r->rank == 0 ? mimo_prep_take_file(train_path(r), &r->dir.pre,
                                                               &r->dir.pre_len) : 0) ||
                      (rc = r->scan_stopped ? 0 : starting_point(r)) ? rc : 0);
    if (!rc && r->scan_stopped)
        return MIMO_TRAIN_STOPPED;
    if (!rc)
        rc = setup_parallel(r);
    if (!rc)
        rc = sync_replicas(r);
    if (!rc)
        rc = check_threads(r);
    if (!rc) {
        r->steps = mimo_model_steps_per_epoch(r->m, r->ts.rows);
        rc = agree(r, r->rank == 0 ? mimo_history_prepare(&r->hist, r->dir.history,
                                                          (long)r->state.ck.epoch)
                                   : 0);
    }
    return rc;
}

/* A stop asked for while setting up (on any rank): nothing new to save —
 * the run starts from its seed, --init or the checkpoint it resumed. */
static int stopped_early(run *r)
{
    int flag = r->o->stop && *r->o->stop, err = MPI_SUCCESS;
    if (r->size > 1) {
        mimo_stall_enter(MIMO_STALL_AGREE);
        err = MPI_Allreduce(MPI_IN_PLACE, &flag, 1, MPI_INT, MPI_MAX, r->comm);
        mimo_stall_leave();
    }
    if (err != MPI_SUCCESS)
        return 0; /* the first step's vote will see it */
    if (flag)
        note(r, "stop requested before the first step: nothing to checkpoint yet "
                "(the run starts again where it would have begun)");
    return flag;
}

/* The save still being written, waited for: agreed at an end every rank
 * reaches (finished, stopped); after an error, rank 0 waits alone and the
 * run's error stays the one reported. */
static int end_saves(run *r, int rc)
{
    if (!rc || rc == MIMO_TRAIN_STOPPED) {
        int w = mimo_rundir_finish(&r->dir);
        return w ? w : rc;
    }
    mimo_error_saved keep;
    mimo_error_save(&keep);
    mimo_rundir_wait(&r->dir);
    return mimo_error_restore(&keep, rc);
}

/* DIR/status after the run: what scripts read instead of the launcher's
 * exit status. */
static void final_status(run *r, int rc)
{
    char detail[1100];
    if (rc == MIMO_TRAIN_STOPPED) {
        snprintf(detail, sizeof detail, "checkpoint: %s\nepoch: %lld\nstep: %lld\n"
                 "resume: mimo train CONFIG --out DIR --resume auto\n",
                 r->dir.last[0] ? r->dir.last : "none (stopped before the first step)",
                 (long long)r->state.ck.epoch + 1, (long long)r->state.ck.step);
        mimo_rundir_status(&r->dir, "stopped", detail);
    } else if (!rc) {
        snprintf(detail, sizeof detail, "checkpoint: %s\nepochs: %lld\n",
                 r->dir.last, (long long)r->state.ck.epoch);
        mimo_rundir_status(&r->dir, "finished", detail);
    } else if (r->rank == 0 || (r->size > 1 && !mimo_error_agreed())) {
        /* rank 0 writes the status; a rank that failed alone too: the app
         * ends the job with MPI_Abort and rank 0 never learns why. Keep
         * the message (and whether agreed). */
        mimo_error_saved keep;
        mimo_error_save(&keep);
        if (r->rank == 0) {
            snprintf(detail, sizeof detail, "error: %s\n",
                     rc == MIMO_EPEER ? "on another rank (see its message)" : keep.msg);
            mimo_rundir_status(&r->dir, "failed", detail);
        } else {
            snprintf(detail, sizeof detail, "error: rank %d of %d: %s\n", r->rank,
                     r->size, keep.msg);
            mimo_rundir_status_alone(&r->dir, detail);
        }
        mimo_error_restore(&keep, rc);
    }
}

/* By the lone-failure rule (teardown.h): after an error on this rank
 * alone the other ranks may be waiting in a collective, so no collective
 * close then; the caller ends the job with MPI_Abort. */
static void clean_up(run *r, int rc)
{
    int alone = mimo_failed_alone(r->comm, rc);
    if (r->train_d)
        mimo_data_wait(r->train_d); /* the reader thread out of HDF5 first */
    mimo_data_close(&r->val_view); /* a view: frees memory only */
    mimo_release(&(mimo_held){.data = {&r->val_d, &r->train_d}, .dist = &r->dist,
                                     .comm = &r->comm}, alone);
    mimo_stats_free(&r->tr);
    mimo_stats_free(&r->va);
    free((void *)r->head_names);
    free(r->head_loss);
    free(r->best_params);
    mimo_trace_free(&r->trace);
    mimo_model_free(&r->m);
    mimo_history_free(&r->hist);
    mimo_rundir_close(&r->dir);
    mimo_rundir_unlock(&r->lock_fd);
    mimo_stall_stop();
    mimo_run_state_free(&r->state);
}

/* --stall-abort, on the stall detector's thread: DIR/status says why
 * before the app ends the job (its ranks never reach the run's end). The
 * main thread waits in a collective meanwhile: it does not touch r->dir. */
static void stall_fatal(void *u, const char *msg)
{
    run *r = u;
    char detail[1100];
    snprintf(detail, sizeof detail, "error: rank %d of %d: %s\n", r->rank, r->size, msg);
    mimo_rundir_status_alone(&r->dir, detail);
    r->o->on_fatal(r->o->user, msg);
}

int mimo_train(mimo_spec *spec, const mimo_train_opts *o)
{
    run *r = calloc(1, sizeof *r);
    if (!r)
        return mimo_error(MIMO_ENOMEM, "out of memory");
    r->spec = spec;
    r->o = o;
    r->epochs = spec->train.epochs;
    r->base_lr = spec->train.opt.lr;
    r->t_start = r->t_ckpt = mimo_clock();
    r->size = 1;
    r->lock_fd = -1;
    int rc = mimo_comm_dup(o->comm, &r->comm);
    if (!rc && r->comm != MPI_COMM_NULL &&
        (MPI_Comm_rank(r->comm, &r->rank) != MPI_SUCCESS ||
         MPI_Comm_size(r->comm, &r->size) != MPI_SUCCESS))
        rc = mimo_error(MIMO_EMPI, "cannot query the communicator");
    if (!rc) {
        mimo_stall_opts so = {.warn_s = o->stall_warn, .abort_s = o->stall_abort,
                              .note = note_cb,
                              .fatal = o->on_fatal ? stall_fatal : NULL,
                              .user = r};
        if (!o->on_fatal)
            so.abort_s = 0; /* nobody to end the job */
        rc = mimo_stall_start(r->comm, &so);
    }
    if (!rc && (rc = set_up(r)) == MIMO_TRAIN_STOPPED) { /* while scanning */
        rc = end_saves(r, rc);
        final_status(r, rc);
    } else if (!rc) {
        mimo_rundir_status(&r->dir, "running", NULL);
        rc = end_saves(r, stopped_early(r) ? MIMO_TRAIN_STOPPED : train_loop(r));
        if (!rc && r->trace)
            rc = mimo_trace_write(r->trace, r->comm, o->trace_path);
        final_status(r, rc);
    }
    clean_up(r, rc);
    free(r);
    return rc;
}
