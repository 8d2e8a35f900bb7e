/* runstate.c — the run's own state in a checkpoint (see runstate.h). */
#include "train/runstate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    int rc = mimo_ckpt_set_array(s, "partial_sums", mimo_metrics_sums(mt),
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

static int unpack_sums(const mimo_ckpt_state *s, mimo_stats *part)
{
    mimo_metrics *mt = part->metrics;
    char nm[MIMO_CKPT_NAME_MAX];
    size_t n;
    const double *v = mimo_ckpt_get_array(s, "partial_sums", &n);
    if (!v || n == 0)
        return 0;
    if (n != mimo_metrics_n_sums(mt))
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

int mimo_run_state_check(const mimo_run_state *st, const mimo_spec *spec,
                         size_t train_rows, const char *path,
                         void (*note)(void *u, const char *msg), void *u)
{
    const mimo_ckpt_state *s = &st->ck;
    const mimo_train_spec *t = &spec->train;
    double was[4] = {mimo_ckpt_get(s, "batch_size", -1),
                     mimo_ckpt_get(s, "train_rows", -1), (double)s->seed,
                     mimo_ckpt_get(s, "shuffle", -1)};
    double now[4] = {(double)t->batch_size, (double)train_rows, (double)t->seed,
                     t->shuffle};
    static const char *const what[4] = {"batch_size", "training rows", "seed",
                                        "shuffle"};
    char msg[4400];
    for (int k = 0; k < 4; k++) {
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

void mimo_run_state_free(mimo_run_state *st) { mimo_ckpt_state_free(&st->ck); }
