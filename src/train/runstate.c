/* runstate.c — the run's own state in a checkpoint (see runstate.h). */
#include "train/runstate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bf16.h"
#include "core/model.h"
#include "mimo/error.h"

static void part_name(char *buf, size_t len, int h, const char *what)
{
    snprintf(buf, len, "partial_%d_%s", h, what);
}

/* The epoch's sums as arrays: every head's sums, and the AUC scores of
 * the heads that keep them (scores and 0/1 labels). */
static int pack_sums(mimo_ckpt_state *s, const mimo_stats *part)
{
    mimo_metrics *mt = part->metrics;
    char nm[MIMO_CKPT_NAME_MAX];
    size_t nl = mimo_metrics_layout(mt, NULL);
    double *lay = malloc(sizeof *lay * (nl + 1));
    if (!lay)
        return mimo_error(MIMO_ENOMEM, "out of memory");
    mimo_metrics_layout(mt, lay);
    int rc = mimo_ckpt_set_array(s, "partial_layout", lay, nl);
    free(lay);
    if (!rc)
        rc = mimo_ckpt_set_array(s, "partial_sums", mimo_metrics_sums(mt),
                                 mimo_metrics_n_sums(mt));
    for (int h = 0; h < part->n_heads && !rc; h++) {
        const mimo_real *sc;
        const unsigned char *pos;
        size_t n = mimo_metrics_scores(mt, h, &sc, &pos);
        if (!mimo_metrics_has_scores(mt, h))
            continue;
        double *v = malloc(sizeof *v * (2 * n + 1));
        if (!v)
            return mimo_error(MIMO_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++)
            v[i] = sc[i], v[n + i] = pos[i];
        part_name(nm, sizeof nm, h, "auc");
        rc = mimo_ckpt_set_array(s, nm, v, 2 * n);
        free(v);
    }
    return rc;
}

/* Whether the saved layout is this config's (a copy of the run directory
 * with another config's metrics would otherwise misread the sums). */
static int layout_fits(const mimo_ckpt_state *s, const mimo_metrics *mt)
{
    size_t n, nl = mimo_metrics_layout(mt, NULL);
    const double *v = mimo_ckpt_get_array(s, "partial_layout", &n);
    double *lay = malloc(sizeof *lay * (nl + 1));
    int fits = v && lay && n == nl;
    if (fits) {
        mimo_metrics_layout(mt, lay);
        fits = memcmp(v, lay, sizeof *lay * nl) == 0;
    }
    free(lay);
    return fits;
}

/* The epoch's sums back on rank 0: none (an epoch boundary) is fine; sums
 * that are missing (an older mimo) or do not fit are MIMO_EINVAL. */
static int unpack_sums(const mimo_ckpt_state *s, mimo_stats *part)
{
    mimo_metrics *mt = part->metrics;
    char nm[MIMO_CKPT_NAME_MAX];
    size_t n;
    if (part->count == 0)
        return 0; /* an epoch boundary: nothing to carry on */
    const double *v = mimo_ckpt_get_array(s, "partial_sums", &n);
    if (!v || n == 0)
        return MIMO_EINVAL;
    if (n != mimo_metrics_n_sums(mt) || !layout_fits(s, mt))
        return MIMO_EINVAL;
    memcpy(mimo_metrics_sums(mt), v, sizeof *v * n);
    for (int h = 0; h < part->n_heads; h++) {
        mimo_real *sc;
        unsigned char *pos;
        part_name(nm, sizeof nm, h, "auc");
        v = mimo_ckpt_get_array(s, nm, &n);
        if (!mimo_metrics_has_scores(mt, h) || !v)
            continue;
        int rc = mimo_metrics_set_scores(mt, h, n / 2, &sc, &pos);
        if (rc)
            return rc;
        for (size_t i = 0; i < n / 2; i++)
            sc[i] = (mimo_real)v[i], pos[i] = v[n / 2 + i] != 0;
    }
    return 0;
}

int mimo_run_state_pack(mimo_run_state *st, const mimo_spec *spec,
                        size_t train_rows, int world, double lr,
                        const mimo_stats *part)
{
    mimo_ckpt_state *s = &st->ck;
    const struct { const char *k; double v; } v[] = {
        {"lr_scale", st->lr_scale},
        /* what fixes the position inside an epoch (checked on resume) */
        {"batch_size", (double)spec->train.batch_size},
        {"train_rows", (double)train_rows},
        {"shuffle", spec->train.shuffle},
        {"plateau_best", st->plateau.best},
        {"plateau_wait", (double)st->plateau.wait},
        {"plateau_cooldown", (double)st->plateau.cooldown_counter},
        {"plateau_initialized", st->plateau.initialized},
        {"early_best", st->early.best},
        {"early_wait", (double)st->early.wait},
        {"early_best_epoch", (double)st->early.best_epoch},
        {"early_initialized", st->early.initialized},
        {"checkpoint_best", st->ckpt_best},
        {"checkpoint_best_set", st->ckpt_best_set},
        {"partial_count", (double)part->count}};
    int rc = 0;
    s->seed = spec->train.seed;
    s->world_size = world;
    s->lr = lr;
    for (size_t i = 0; i < sizeof v / sizeof *v && !rc; i++)
        rc = mimo_ckpt_set(s, v[i].k, v[i].v);
    static const char *const fp[3] = {"data_size", "data_mtime", "data_digest"};
    for (int k = 0; k < 3 && !rc && st->have_data_fp; k++)
        rc = mimo_ckpt_set(s, fp[k], st->data_fp[k]);
    return rc ? rc : pack_sums(s, part);
}

int mimo_run_state_unpack(mimo_run_state *st, int rank, mimo_stats *part)
{
    const mimo_ckpt_state *s = &st->ck;
    st->lr_scale = mimo_ckpt_get(s, "lr_scale", 1);
    st->plateau.best = mimo_ckpt_get(s, "plateau_best", 0);
    st->plateau.wait = (long)mimo_ckpt_get(s, "plateau_wait", 0);
    st->plateau.cooldown_counter = (long)mimo_ckpt_get(s, "plateau_cooldown", 0);
    st->plateau.initialized = (int)mimo_ckpt_get(s, "plateau_initialized", 0);
    st->early.best = mimo_ckpt_get(s, "early_best", 0);
    st->early.wait = (long)mimo_ckpt_get(s, "early_wait", 0);
    st->early.best_epoch = (long)mimo_ckpt_get(s, "early_best_epoch", -1);
    st->early.initialized = (int)mimo_ckpt_get(s, "early_initialized", 0);
    st->ckpt_best = mimo_ckpt_get(s, "checkpoint_best", 0);
    st->ckpt_best_set = (int)mimo_ckpt_get(s, "checkpoint_best_set", 0);
    mimo_stats_reset(part);
    if (rank != 0) /* the sums over all ranks: rank 0 carries them */
        return 0;
    part->count = (long long)mimo_ckpt_get(s, "partial_count", 0);
    int rc = unpack_sums(s, part);
    if (rc) {
        mimo_stats_reset(part);
        part->count = 0;
    }
    return rc;
}

/* A named number of the state within [lo, hi] (an integer when asked):
 * anything else is damage, named; absent is fine (older files). */
static int in_range(const mimo_ckpt_state *s, const char *path, const char *name,
                    double lo, double hi, int integer)
{
    double v = mimo_ckpt_get(s, name, lo);
    if (v >= lo && v <= hi && (!integer || v == floor(v)))
        return 0;
    return mimo_error(MIMO_EINVAL, "%s: state '%s' = %g is out of range [%g, %g]%s: "
                      "the file is damaged", path, name, v, lo, hi,
                      integer ? " or not an integer" : "");
}

/* Every number of the state in its range, and the position inside the
 * epoch this run's batch size and rows define. */
static int check_ranges(const mimo_ckpt_state *s, const mimo_spec *spec,
                        size_t train_rows, const char *path)
{
    static const char *const counts[] = {"plateau_wait", "plateau_cooldown",
                                         "early_wait", "partial_count"};
    static const char *const flags[] = {"shuffle", "plateau_initialized",
                                        "early_initialized", "checkpoint_best_set"};
    const double big = 9007199254740992.0; /* 2^53 */
    int rc = in_range(s, path, "lr_scale", 1e-300, 1e6, 0);
    for (size_t i = 0; !rc && i < sizeof counts / sizeof *counts; i++)
        rc = in_range(s, path, counts[i], 0, big, 1);
    for (size_t i = 0; !rc && i < sizeof flags / sizeof *flags; i++)
        rc = in_range(s, path, flags[i], 0, 1, 1);
    if (!rc)
        rc = in_range(s, path, "early_best_epoch", -1, 2147483647.0, 1);
    if (!rc && mimo_ckpt_get(s, "batch_size", -1) != -1)
        rc = in_range(s, path, "batch_size", 1, big, 1);
    if (!rc && mimo_ckpt_get(s, "train_rows", -1) != -1)
        rc = in_range(s, path, "train_rows", 1, big, 1);
    for (int i = 0; !rc && i < s->n_extra; i++)
        if (isnan(s->extra[i].value))
            rc = mimo_error(MIMO_EINVAL, "%s: state '%s' is NaN: the file is "
                            "damaged", path, s->extra[i].name);
    size_t B = (size_t)spec->train.batch_size;
    int64_t steps = (int64_t)((train_rows + B - 1) / B);
    double was_b = mimo_ckpt_get(s, "batch_size", -1);
    double was_rows = mimo_ckpt_get(s, "train_rows", -1);
    /* step == steps: every step of the epoch done, stopped during its
     * validation (loop.c): a resume runs the epoch's end first */
    if (!rc && s->step > steps && (was_b < 0 || was_b == (double)B) &&
        (was_rows < 0 || was_rows == (double)train_rows)) /* else: see below */
        rc = mimo_error(MIMO_EINVAL, "%s: step %lld of an epoch, which has %lld "
                        "steps: the file is damaged", path, (long long)s->step,
                        (long long)steps);
    return rc;
}

int mimo_run_state_check(const mimo_run_state *st, const mimo_spec *spec,
                         size_t train_rows, const char *path,
                         void (*note)(void *u, const char *msg), void *u)
{
    const mimo_ckpt_state *s = &st->ck;
    const mimo_train_spec *t = &spec->train;
    int rc = check_ranges(s, spec, train_rows, path);
    if (rc)
        return rc;
    double was[4] = {mimo_ckpt_get(s, "batch_size", -1),
                     mimo_ckpt_get(s, "train_rows", -1), (double)s->seed,
                     mimo_ckpt_get(s, "shuffle", -1)};
    double now[4] = {(double)t->batch_size, (double)train_rows, (double)t->seed,
                     t->shuffle};
    static const char *const what[4] = {"batch_size", "training rows", "seed",
                                        "shuffle"};
    char msg[4400];
    for (int k = 0; k < 4; k++) {
        if (k == 2) { /* a 64-bit seed: compared and printed exactly */
            if (s->seed == t->seed)
                continue;
            if (s->step > 0)
                return mimo_error(MIMO_EINVAL, "%s: stopped in the middle of epoch "
                                  "%lld (step %lld) with seed %llu; this run has "
                                  "%llu, which would skip or repeat rows: resume "
                                  "with the same seed, or from a checkpoint at the "
                                  "end of an epoch", path, (long long)s->epoch + 1,
                                  (long long)s->step, (unsigned long long)s->seed,
                                  (unsigned long long)t->seed);
            snprintf(msg, sizeof msg, "%s: seed was %llu, now %llu (fine at an "
                     "epoch boundary)", path, (unsigned long long)s->seed,
                     (unsigned long long)t->seed);
            if (note)
                note(u, msg);
            continue;
        }
        if (was[k] < 0 || was[k] == now[k])
            continue;
        if (s->step > 0)
            return mimo_error(MIMO_EINVAL, "%s: stopped in the middle of epoch "
                              "%lld (step %lld) with %s %.0f; this run has %.0f, "
                              "which would skip or repeat rows: resume with the "
                              "same %s, or from a checkpoint at the end of an "
                              "epoch", path, (long long)s->epoch + 1,
                              (long long)s->step, what[k], was[k], now[k], what[k]);
        snprintf(msg, sizeof msg, "%s: %s was %.0f, now %.0f (fine at an epoch "
                 "boundary)", path, what[k], was[k], now[k]);
        if (note)
            note(u, msg);
    }
    return 0;
}

int mimo_run_state_check_data(const mimo_run_state *st, const double now[3],
                              const char *path, const char *data_path, int strict,
                              void (*note)(void *u, const char *msg), void *u)
{
    const mimo_ckpt_state *s = &st->ck;
    double size = mimo_ckpt_get(s, "data_size", -1);
    double mtime = mimo_ckpt_get(s, "data_mtime", -1);
    double digest = mimo_ckpt_get(s, "data_digest", -1);
    char msg[4400];
    if (size < 0 || digest < 0) /* an older checkpoint: nothing to compare */
        return 0;
    if (size != now[0] || digest != now[2]) {
        snprintf(msg, sizeof msg, "%s is not the data %s trained on (%s): the "
                 "resumed run trains on different data", data_path, path,
                 size != now[0] ? "its size changed" : "its shapes or sampled rows changed");
        if (strict)
            return mimo_error(MIMO_EINVAL, "%s (--strict-data: resume on the same "
                              "file, or start afresh)", msg);
        if (note) {
            char w[4500];
            snprintf(w, sizeof w, "warning: %s", msg);
            note(u, w);
        }
    } else if (mtime >= 0 && mtime != now[1] && note) {
        snprintf(msg, sizeof msg, "%s was modified since %s was written; its size, "
                 "shapes and sampled rows are the same", data_path, path);
        note(u, msg);
    }
    return 0;
}

void mimo_run_state_free(mimo_run_state *st) { mimo_ckpt_state_free(&st->ck); }

/* ---- what a resume changes -------------------------------------------- */

typedef struct {
    char *buf;
    size_t len, used;
    int n;
} change_list;

static void change(change_list *c, const char *key, const char *was, const char *now)
{
    if (strcmp(was, now) == 0)
        return;
    if (c->used < c->len)
        c->used += (size_t)snprintf(c->buf + c->used, c->len - c->used, "%s%s %s -> %s",
                                    c->n ? ", " : "", key, was, now);
    if (c->used >= c->len && c->len)
        c->used = c->len - 1;
    c->n++;
}

static void change_num(change_list *c, const char *key, double was, double now)
{
    char a[32], b[32];
    snprintf(a, sizeof a, "%.10g", was);
    snprintf(b, sizeof b, "%.10g", now);
    change(c, key, a, b);
}

int mimo_run_state_changes(const mimo_spec *was, const mimo_spec *now, char *buf,
                           size_t len)
{
    change_list c = {buf, len, 0, 0};
    const mimo_train_spec *a = &was->train, *b = &now->train;
    if (len)
        buf[0] = '\0';
    change(&c, "train.optimizer.type", mimo_opt_name(a->opt.kind), mimo_opt_name(b->opt.kind));
    change_num(&c, "train.optimizer.lr", a->opt.lr, b->opt.lr);
    change_num(&c, "train.optimizer.momentum", a->opt.momentum, b->opt.momentum);
    change_num(&c, "train.optimizer.weight_decay", a->opt.weight_decay, b->opt.weight_decay);
    change_num(&c, "train.optimizer.clipnorm", a->opt.clipnorm, b->opt.clipnorm);
    change_num(&c, "train.optimizer.clipvalue", a->opt.clipvalue, b->opt.clipvalue);
    change_num(&c, "train.optimizer.beta_1", a->opt.beta1, b->opt.beta1);
    change_num(&c, "train.optimizer.beta_2", a->opt.beta2, b->opt.beta2);
    change(&c, "train.lr_schedule", mimo_sched_name(a->schedule.kind),
           mimo_sched_name(b->schedule.kind));
    change_num(&c, "train.batch_size", (double)a->batch_size, (double)b->batch_size);
    change_num(&c, "train.epochs", (double)a->epochs, (double)b->epochs);
    change_num(&c, "train.seed", (double)a->seed, (double)b->seed);
    change_num(&c, "train.shuffle", a->shuffle, b->shuffle);
    change_num(&c, "train.validation_split", a->validation_split, b->validation_split);
    change(&c, "train.loss_weighting", mimo_weighting_name(a->loss_weighting),
           mimo_weighting_name(b->loss_weighting));
    change(&c, "train.precision", mimo_precision_name((int)a->precision),
           mimo_precision_name((int)b->precision));
    for (int h = 0; h < now->n_outputs; h++)
        for (int k = 0; k < was->n_outputs; k++)
            if (strcmp(now->outputs[h].name, was->outputs[k].name) == 0) {
                char key[300];
                snprintf(key, sizeof key, "outputs.%s.weight", now->outputs[h].name);
                change_num(&c, key, was->outputs[k].weight, now->outputs[h].weight);
                snprintf(key, sizeof key, "outputs.%s.loss", now->outputs[h].name);
                change(&c, key, mimo_loss_name(was->outputs[k].loss),
                       mimo_loss_name(now->outputs[h].loss));
            }
    return c.n;
}
