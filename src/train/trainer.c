/* trainer.c — a training run: open the data, resume or initialize, loop
 * over epochs with the schedule and callbacks, log history, checkpoint.
 * The state a resumed run needs beyond parameters and optimizer moments
 * (lr scale, callback states, the partial sums of an interrupted epoch)
 * travels as named numbers in the checkpoint. Never prints. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, mkdir, opendir */
#include "mimo/trainer.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "base/fsutil.h"
#include "io/h5_impl.h"
#include "mimo/dataset.h"
#include "mimo/dist.h"
#include "mimo/error.h"
#include "mimo/schedule.h"
#include "mimo/trace.h"
#include "base/strutil.h"

#define MAX_COLS 512

typedef struct {
    mimo_spec *spec;
    const mimo_train_opts *o;
    mimo_model *m;
    mimo_graph *g;
    mimo_data *train_d, *val_d, *val_view;
    mimo_source ts, vs;
    int have_val, n_heads;
    /* history columns */
    int n_cols;
    char *names[MAX_COLS];
    double values[MAX_COLS];
    const char *head_names[64];
    double head_loss[64];
    char run_dir[1024], ckpt_dir[1100], history[1100];
    /* position and callback state */
    mimo_ckpt_state st;
    long epochs, steps;
    double base_lr, lr_scale;
    char monitor_plateau[128], monitor_early[128], monitor_ckpt[128];
    mimo_plateau_state plateau;
    mimo_early_state early;
    double ckpt_best;
    int ckpt_best_set;
    mimo_real *best_params;
    int has_best;
    mimo_stats tr, va;
    double t_epoch, t_ckpt, t_start;
    long long epoch_samples;
    /* data parallelism */
    MPI_Comm comm;       /* MPI_COMM_NULL on one process */
    int rank, size;
    mimo_dist *dist;
    mimo_trace *trace;
    long check_every;
    int step_rc;         /* why on_step stopped the epoch */
    /* stopping together: each step's local flag is summed over ranks with
     * an MPI_Iallreduce that the next step collects (no waiting) */
    int stop_local, stop_send, stop_sum, stop_pending;
    MPI_Request stop_req;
    int save_pending;    /* a step checkpoint fell on an epoch's last step */
    mimo_stats part;     /* partial sums of the epoch over all ranks */
    double step_s;       /* the longest step seen, for the time limit */
    double t_step;       /* when the current step began */
} run;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Errors are agreed across ranks where all of them can meet, so no rank is
 * left waiting in a collective: the failing rank keeps its code, the
 * others get MIMO_EPEER. */
static int agree(const run *r, int rc)
{
    return r->size > 1 ? mimo_agree(r->comm, rc) : rc;
}

static void note(const run *r, const char *msg)
{
    if (r->o->on_message)
        r->o->on_message(r->o->user, msg);
}

/* ---- files and directories --------------------------------------------- */

static int write_text_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return mimo_error(MIMO_EIO, "%s: cannot write: %s", path, strerror(errno));
    fputs(text ? text : "", f);
    int bad = ferror(f);
    if (fclose(f) || bad)
        return mimo_error(MIMO_EIO, "%s: write failed", path);
    return 0;
}

/* ---- history columns ------------------------------------------------------ */

static int add_col(run *r, const char *prefix, const char *name)
{
    if (r->n_cols == MAX_COLS)
        return mimo_error(MIMO_EINVAL, "too many history columns");
    size_t n = strlen(prefix) + strlen(name) + 1;
    if (!(r->names[r->n_cols] = malloc(n)))
        return mimo_error(MIMO_ENOMEM, "out of memory");
    snprintf(r->names[r->n_cols++], n, "%s%s", prefix, name);
    return 0;
}

/* epoch, loss, <head>_loss, <head>_<metric>, val_..., lr, seconds, samples_per_s */
static int build_columns(run *r)
{
    static const char *const metric[3] = {"accuracy", "mse", "mae"};
    char buf[256];
    int rc = add_col(r, "", "epoch");
    for (int v = 0; v < 1 + r->have_val && !rc; v++) {
        const char *pre = v ? "val_" : "";
        rc = add_col(r, pre, "loss");
        for (int h = 0; h < r->n_heads && !rc; h++) {
            const mimo_output_spec *o = mimo_graph_head_spec(r->g, h);
            snprintf(buf, sizeof buf, "%s_loss", o->name);
            rc = add_col(r, pre, buf);
            for (int k = 0; k < 3 && !rc; k++)
                if (o->metrics & (1u << k)) {
                    snprintf(buf, sizeof buf, "%s_%s", o->name, metric[k]);
                    rc = add_col(r, pre, buf);
                }
        }
    }
    if (!rc)
        rc = add_col(r, "", "lr");
    if (!rc)
        rc = add_col(r, "", "seconds");
    if (!rc)
        rc = add_col(r, "", "samples_per_s");
    return rc;
}

static int find_col(const run *r, const char *name)
{
    for (int i = 0; i < r->n_cols; i++)
        if (strcmp(r->names[i], name) == 0)
            return i;
    return -1;
}

/* Resolves a monitor: the spec's name, or val_loss / loss by default. */
static int resolve_monitor(run *r, const char *given, const char *what, char *out,
                           size_t len)
{
    snprintf(out, len, "%s", given ? given : r->have_val ? "val_loss" : "loss");
    if (find_col(r, out) >= 0 && strcmp(out, "epoch") && strcmp(out, "seconds"))
        return 0;
    char list[2048] = "";
    for (int i = 1; i < r->n_cols - 2; i++) {
        size_t n = strlen(list);
        snprintf(list + n, sizeof list - n, "%s%s", n ? ", " : "", r->names[i]);
    }
    return mimo_error(MIMO_EINVAL, "%s: %s monitor '%s' is not a logged quantity "
                      "(one of: %s)", r->spec->file, what, out, list);
}

/* Fills values[] for the finished epoch from the train and val stats. */
static void fill_values(run *r, long epoch, double lr, double secs, double sps)
{
    int c = 0;
    r->values[c++] = (double)(epoch + 1);
    for (int v = 0; v < 1 + r->have_val; v++) {
        const mimo_stats *s = v ? &r->va : &r->tr;
        r->values[c++] = s->loss;
        for (int h = 0; h < r->n_heads; h++) {
            const mimo_output_spec *o = mimo_graph_head_spec(r->g, h);
            r->values[c++] = s->head[h].loss;
            if (o->metrics & MIMO_METRIC_ACCURACY)
                r->values[c++] = s->head[h].acc;
            if (o->metrics & MIMO_METRIC_MSE)
                r->values[c++] = s->head[h].mse;
            if (o->metrics & MIMO_METRIC_MAE)
                r->values[c++] = s->head[h].mae;
        }
    }
    r->values[c++] = lr;
    r->values[c++] = secs;
    r->values[c++] = sps;
}

/* Keeps the header and the rows of epochs <= keep; writes a header if the
 * file is new or its header differs. */
static int prepare_history(run *r, long keep)
{
    if (r->rank != 0)
        return 0;
    FILE *f = fopen(r->history, "r");
    char *kept = NULL, line[16384];
    size_t len = 0, cap = 0;
    char header[16384] = "";
    for (int i = 0; i < r->n_cols; i++) {
        size_t n = strlen(header);
        snprintf(header + n, sizeof header - n, "%s%s", i ? "," : "", r->names[i]);
    }
    if (f) {
        int first = 1, same = 0;
        while (fgets(line, sizeof line, f)) {
            if (first) {
                same = strncmp(line, header, strlen(header)) == 0;
                first = 0;
                continue;
            }
            if (!same || atol(line) > keep || atol(line) < 1)
                continue;
            size_t n = strlen(line);
            if (len + n + 1 > cap) {
                char *p = realloc(kept, cap = 2 * (len + n + 1));
                if (!p) {
                    free(kept), fclose(f);
                    return mimo_error(MIMO_ENOMEM, "out of memory");
                }
                kept = p;
            }
            memcpy(kept + len, line, n + 1);
            len += n;
        }
        fclose(f);
    }
    f = fopen(r->history, "w");
    if (!f) {
        free(kept);
        return mimo_error(MIMO_EIO, "%s: cannot write: %s", r->history, strerror(errno));
    }
    fprintf(f, "%s\n%s", header, kept ? kept : "");
    free(kept);
    return fclose(f) ? mimo_error(MIMO_EIO, "%s: write failed", r->history) : 0;
}

static int append_history(run *r)
{
    if (r->rank != 0)
        return 0;
    FILE *f = fopen(r->history, "a");
    if (!f)
        return mimo_error(MIMO_EIO, "%s: cannot append: %s", r->history, strerror(errno));
    for (int i = 0; i < r->n_cols; i++)
        fprintf(f, i == 0 ? "%.0f" : ",%.9g", r->values[i]);
    fputc('\n', f);
    return fclose(f) ? mimo_error(MIMO_EIO, "%s: write failed", r->history) : 0;
}

/* ---- checkpoint state ------------------------------------------------------ */

static void part_name(char *buf, size_t len, int h, const char *what)
{
    snprintf(buf, len, "partial_%d_%s", h, what);
}

/* The trainer's own state as named numbers (for exact resume); part
 * holds the interrupted epoch's sums over all ranks. */
static void pack_state(run *r, const mimo_stats *part)
{
    mimo_ckpt_state *s = &r->st;
    char nm[40];
    s->n_extra = 0;
    s->seed = r->spec->train.seed;
    s->world_size = r->size;
    s->lr = mimo_model_lr(r->m);
    mimo_ckpt_set(s, "lr_scale", r->lr_scale);
    /* what fixes the position inside an epoch (checked on resume) */
    mimo_ckpt_set(s, "batch_size", (double)r->spec->train.batch_size);
    mimo_ckpt_set(s, "train_rows", (double)r->ts.rows);
    mimo_ckpt_set(s, "shuffle", r->spec->train.shuffle);
    mimo_ckpt_set(s, "plateau_best", r->plateau.best);
    mimo_ckpt_set(s, "plateau_wait", (double)r->plateau.wait);
    mimo_ckpt_set(s, "plateau_cooldown", (double)r->plateau.cooldown_counter);
    mimo_ckpt_set(s, "plateau_initialized", r->plateau.initialized);
    mimo_ckpt_set(s, "early_best", r->early.best);
    mimo_ckpt_set(s, "early_wait", (double)r->early.wait);
    mimo_ckpt_set(s, "early_best_epoch", (double)r->early.best_epoch);
    mimo_ckpt_set(s, "early_initialized", r->early.initialized);
    mimo_ckpt_set(s, "checkpoint_best", r->ckpt_best);
    mimo_ckpt_set(s, "checkpoint_best_set", r->ckpt_best_set);
    mimo_ckpt_set(s, "partial_count", (double)part->count);
    mimo_ckpt_set(s, "partial_samples", part->loss); /* samples, see save() */
    for (int h = 0; h < r->n_heads; h++) {
        part_name(nm, sizeof nm, h, "loss"), mimo_ckpt_set(s, nm, part->head[h].loss);
        part_name(nm, sizeof nm, h, "acc"), mimo_ckpt_set(s, nm, part->head[h].acc);
        part_name(nm, sizeof nm, h, "mse"), mimo_ckpt_set(s, nm, part->head[h].mse);
        part_name(nm, sizeof nm, h, "mae"), mimo_ckpt_set(s, nm, part->head[h].mae);
    }
}

static void unpack_state(run *r)
{
    const mimo_ckpt_state *s = &r->st;
    char nm[40];
    r->lr_scale = mimo_ckpt_get(s, "lr_scale", 1);
    r->plateau.best = mimo_ckpt_get(s, "plateau_best", 0);
    r->plateau.wait = (long)mimo_ckpt_get(s, "plateau_wait", 0);
    r->plateau.cooldown_counter = (long)mimo_ckpt_get(s, "plateau_cooldown", 0);
    r->plateau.initialized = (int)mimo_ckpt_get(s, "plateau_initialized", 0);
    r->early.best = mimo_ckpt_get(s, "early_best", 0);
    r->early.wait = (long)mimo_ckpt_get(s, "early_wait", 0);
    r->early.best_epoch = (long)mimo_ckpt_get(s, "early_best_epoch", -1);
    r->early.initialized = (int)mimo_ckpt_get(s, "early_initialized", 0);
    r->ckpt_best = mimo_ckpt_get(s, "checkpoint_best", 0);
    r->ckpt_best_set = (int)mimo_ckpt_get(s, "checkpoint_best_set", 0);
    r->tr.count = (long long)mimo_ckpt_get(s, "partial_count", 0);
    r->epoch_samples = (long long)mimo_ckpt_get(s, "partial_samples", 0);
    if (r->rank != 0) { /* the sums over all ranks: rank 0 carries them */
        mimo_stats_reset(&r->tr);
        r->epoch_samples = 0;
        return;
    }
    for (int h = 0; h < r->n_heads; h++) {
        part_name(nm, sizeof nm, h, "loss"), r->tr.head[h].loss = mimo_ckpt_get(s, nm, 0);
        part_name(nm, sizeof nm, h, "acc"), r->tr.head[h].acc = mimo_ckpt_get(s, nm, 0);
        part_name(nm, sizeof nm, h, "mse"), r->tr.head[h].mse = mimo_ckpt_get(s, nm, 0);
        part_name(nm, sizeof nm, h, "mae"), r->tr.head[h].mae = mimo_ckpt_get(s, nm, 0);
    }
}

/* Asks for every extra name pack_state writes, so load fills them. */
static void request_state(run *r)
{
    pack_state(r, &r->tr);
}

/* Collective: the epoch's partial sums are summed over the ranks, rank 0
 * writes the checkpoint, and its success or failure is agreed. */
static int save(run *r, const char *name)
{
    char path[4096];
    int rc = 0;
    if (r->train_d)
        mimo_data_wait(r->train_d); /* the reader thread must be out of HDF5 */
    r->part.count = r->tr.count;
    r->part.loss = (double)r->epoch_samples; /* carried in the unused total */
    memcpy(r->part.head, r->tr.head, sizeof *r->part.head * (size_t)r->n_heads);
    if (r->dist && ((rc = mimo_dist_sum_stats(r->dist, &r->part)) ||
                    (rc = mimo_dist_sum(r->dist, &r->part.loss, 1))))
        return rc;
    r->t_ckpt = now_s();
    if (r->rank == 0) {
        pack_state(r, &r->part);
        snprintf(path, sizeof path, "%s/%s", r->ckpt_dir, name);
        rc = mimo_checkpoint_save(path, r->m, &r->st,
                                  r->has_best ? r->best_params : NULL);
    }
    return agree(r, rc);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Writes ckpt-<global step>.h5 and deletes all but the newest `keep`. */
static int save_periodic(run *r)
{
    char name[64];
    snprintf(name, sizeof name, "ckpt-%012lld.h5", (long long)r->st.global_step);
    int rc = save(r, name);
    if (rc || r->rank != 0)
        return rc;
    DIR *d = opendir(r->ckpt_dir);
    char *list[4096];
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d)) && n < 4096;) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "ckpt-", 5) == 0 && len > 3 &&
            strcmp(e->d_name + len - 3, ".h5") == 0 &&
            (list[n] = mimo_strdup(e->d_name)))
            n++; /* out of memory: that file is just not pruned */
    }
    if (d)
        closedir(d);
    qsort(list, (size_t)n, sizeof *list, cmp_str);
    for (int i = 0; i < n; i++) {
        char path[4096];
        if (i < n - r->spec->train.checkpoint.keep) {
            snprintf(path, sizeof path, "%s/%s", r->ckpt_dir, list[i]);
            remove(path);
        }
        free(list[i]);
    }
    return 0;
}

/* ---- finding checkpoints ----------------------------------------------------- */

int mimo_find_checkpoint(const char *dir_or_file, char *path, size_t len)
{
    struct stat sb;
    if (stat(dir_or_file, &sb))
        return mimo_error(MIMO_EIO, "%s: %s", dir_or_file, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) {
        snprintf(path, len, "%s", dir_or_file);
        return 0;
    }
    char dir[2048];
    snprintf(dir, sizeof dir, "%s/checkpoints", dir_or_file);
    if (stat(dir, &sb) || !S_ISDIR(sb.st_mode))
        snprintf(dir, sizeof dir, "%s", dir_or_file);
    DIR *d = opendir(dir);
    if (!d)
        return mimo_error(MIMO_EIO, "%s: cannot list: %s", dir, strerror(errno));
    int64_t best = -1, gs;
    char cand[4096];
    path[0] = '\0';
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 3, ".h5") != 0 ||
            strcmp(e->d_name, "best.h5") == 0)
            continue; /* best.h5 is the best, not the newest */
        snprintf(cand, sizeof cand, "%s/%s", dir, e->d_name);
        if (mimo_checkpoint_probe(cand, &gs) && gs > best) {
            best = gs;
            snprintf(path, len, "%s", cand);
        }
    }
    closedir(d);
    if (best < 0)
        return mimo_error(MIMO_EINVAL, "%s: no valid checkpoint to resume from",
                          dir_or_file);
    return 0;
}

/* ---- setting up ---------------------------------------------------------------- */

static int open_data(run *r)
{
    const char *tp = r->o->train_path ? r->o->train_path : r->spec->data.train;
    const char *vp = r->o->val_path ? r->o->val_path : r->spec->data.val;
    int rc;
    if (!tp)
        return mimo_error(MIMO_EINVAL, "%s: no training data (set data.train or "
                          "pass --data)", r->spec->file);
    if ((rc = mimo_data_open(tp, r->g, 1, r->comm, &r->train_d)))
        return rc;
    r->ts = mimo_data_source(r->train_d);
    if (vp) {
        if ((rc = mimo_data_open(vp, r->g, 1, r->comm, &r->val_d)))
            return rc;
        r->vs = mimo_data_source(r->val_d);
        r->have_val = 1;
    } else if (r->spec->train.validation_split > 0) {
        size_t n = r->ts.rows;
        size_t nv = (size_t)((double)n * r->spec->train.validation_split);
        if (nv == 0 || nv >= n)
            return mimo_error(MIMO_EINVAL, "%s: validation_split %g of %zu rows "
                              "leaves an empty set", r->spec->file,
                              r->spec->train.validation_split, n);
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

static int setup_dirs(run *r)
{
    if (strlen(r->o->out_dir) >= sizeof r->run_dir)
        return mimo_error(MIMO_EINVAL, "run directory path too long: %s",
                          r->o->out_dir);
    snprintf(r->run_dir, sizeof r->run_dir, "%s", r->o->out_dir);
    snprintf(r->ckpt_dir, sizeof r->ckpt_dir, "%s/checkpoints", r->run_dir);
    snprintf(r->history, sizeof r->history, "%s/history.csv", r->run_dir);
    char cfg[2100];
    snprintf(cfg, sizeof cfg, "%s/config.yaml", r->run_dir);
    if (r->rank != 0) /* rank 0 alone writes the run directory */
        return 0;
    int rc = mimo_mkdirs(r->ckpt_dir);
    return rc ? rc : write_text_file(cfg, r->spec->text);
}

static int setup_monitors(run *r)
{
    const mimo_train_spec *t = &r->spec->train;
    int rc = 0;
    if (t->plateau.enabled)
        rc = resolve_monitor(r, t->plateau.monitor, "reduce_lr_on_plateau",
                             r->monitor_plateau, sizeof r->monitor_plateau);
    if (!rc && t->early.enabled)
        rc = resolve_monitor(r, t->early.monitor, "early_stopping",
                             r->monitor_early, sizeof r->monitor_early);
    if (!rc && t->checkpoint.save_best)
        rc = resolve_monitor(r, t->checkpoint.monitor, "checkpoint",
                             r->monitor_ckpt, sizeof r->monitor_ckpt);
    if (!rc) {
        mimo_plateau_init(&r->plateau, &t->plateau, r->monitor_plateau);
        mimo_early_init(&r->early);
    }
    return rc;
}

/* Fresh start, --init, or --resume. */
/* The checkpoint to resume from, into path ("" for a fresh start).
 * "auto": the run directory's newest, if it has one yet. */
static int resume_path(run *r, char *path, size_t len)
{
    path[0] = '\0';
    if (!r->o->resume)
        return 0;
    if (strcmp(r->o->resume, "auto") != 0)
        return mimo_find_checkpoint(r->o->resume, path, len);
    if (mimo_find_checkpoint(r->o->out_dir, path, len)) {
        path[0] = '\0';
        mimo_error_clear();
        note(r, "no checkpoint to resume from yet: starting fresh");
    }
    return 0;
}

/* A checkpoint taken mid-epoch holds a position in that epoch's sample
 * order, which the batch size, the row count, the seed and shuffling
 * define: with any of them changed the rest of the epoch would skip or
 * repeat rows, so that is an error. At an epoch boundary a change is
 * allowed and noted. Checkpoints without these numbers are not checked. */
static int check_position(run *r, const char *path)
{
    const mimo_ckpt_state *s = &r->st;
    const mimo_train_spec *t = &r->spec->train;
    double was[4] = {mimo_ckpt_get(s, "batch_size", -1),
                     mimo_ckpt_get(s, "train_rows", -1), (double)s->seed,
                     mimo_ckpt_get(s, "shuffle", -1)};
    double now[4] = {(double)t->batch_size, (double)r->ts.rows, (double)t->seed,
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
        note(r, msg);
    }
    return 0;
}

/* Fresh start, --init, or --resume. */
static int starting_point(run *r)
{
    char path[4096], msg[4200];
    int rc = resume_path(r, path, sizeof path);
    r->lr_scale = 1;
    if (rc)
        return rc;
    if (!path[0])
        return r->o->init ? mimo_checkpoint_init_params(r->o->init, r->m) : 0;
    request_state(r);
    if ((rc = mimo_checkpoint_load(path, r->m, &r->st, r->best_params,
                                   &r->has_best)))
        return rc;
    unpack_state(r);
    if ((rc = check_position(r, path)))
        return rc;
    snprintf(msg, sizeof msg, "resuming from %s (epoch %lld, step %lld)", path,
             (long long)r->st.epoch + 1, (long long)r->st.step);
    note(r, msg);
    return 0;
}

/* ---- the loop -------------------------------------------------------------------- */

static double lr_at(const run *r, long epoch, long step)
{
    return r->lr_scale * mimo_schedule_lr(&r->spec->train.schedule, r->base_lr,
                                          epoch, r->epochs, step, r->steps);
}

enum { FLAG_STOP = 1, FLAG_SAVE = 2 };

/* What every rank does after this step: stop (a signal or the time limit
 * on any rank) and/or save (rank 0's every_seconds clock). With several
 * ranks it is the verdict of the previous step's reduction, so all agree
 * on the same step without waiting; this step's flags go into the next. */
static int step_flags(run *r, double step_t)
{
    const mimo_train_opts *o = r->o;
    const mimo_ckpt_spec *c = &r->spec->train.checkpoint;
    double t = now_s();
    int flags = 0;
    if (step_t > r->step_s)
        r->step_s = step_t;
    if ((o->stop && *o->stop) ||
        (o->time_limit > 0 && t - r->t_start + 3 * r->step_s + 1 > o->time_limit))
        r->stop_local = 1;
    if (r->stop_local)
        flags |= FLAG_STOP;
    if (r->rank == 0 && c->every_seconds > 0 && t - r->t_ckpt >= c->every_seconds)
        flags |= FLAG_SAVE;
    if (r->size == 1)
        return flags;
    int verdict = 0;
    if (r->stop_pending) {
        MPI_Wait(&r->stop_req, MPI_STATUS_IGNORE);
        verdict = r->stop_sum;
        r->stop_pending = 0;
    }
    if (!(verdict & FLAG_STOP)) {
        r->stop_send = flags; /* a buffer of its own while in flight */
        MPI_Iallreduce(&r->stop_send, &r->stop_sum, 1, MPI_INT, MPI_BOR, r->comm,
                       &r->stop_req);
        r->stop_pending = 1;
    }
    if (verdict & FLAG_SAVE)
        r->t_ckpt = t; /* rank 0 must not ask again while this one is due */
    return verdict;
}

static int on_step(void *user, long epoch, long step, long steps,
                   const mimo_head_stats *s, int b)
{
    run *r = user;
    (void)s;
    const mimo_ckpt_spec *c = &r->spec->train.checkpoint;
    size_t B = (size_t)r->spec->train.batch_size, start = (size_t)step * B;
    r->st.global_step++;
    r->st.samples_seen += (int64_t)(r->ts.rows - start < B ? r->ts.rows - start : B);
    r->st.step = step + 1;
    r->epoch_samples += b;
    mimo_model_set_lr(r->m, lr_at(r, epoch, step + 1));
    if (r->o->on_step) {
        double el = now_s() - r->t_epoch, cnt = r->tr.count > 0 ? (double)r->tr.count : 1;
        double tot = 0;
        for (int h = 0; h < r->n_heads; h++) {
            r->head_loss[h] = r->tr.head[h].loss / cnt;
            tot += r->spec->outputs[h].weight * r->head_loss[h];
        }
        mimo_progress p = {epoch, r->epochs, step + 1, steps, r->n_heads,
                           r->head_names, r->head_loss, tot,
                           el > 0 ? (double)r->epoch_samples * r->size / el : 0,
                           step + 1 < steps ? el / (double)(step + 1) * (double)(steps - step - 1) : 0,
                           mimo_model_lr(r->m)};
        r->o->on_step(r->o->user, &p);
    }
    if (r->dist && r->st.global_step % r->check_every == 0 &&
        (r->step_rc = mimo_dist_check_replicas(r->dist, mimo_model_params(r->m),
                                               mimo_model_param_count(r->m),
                                               r->st.global_step)))
        return 1;
    double t = now_s();
    int flags = step_flags(r, t - r->t_step);
    if (flags & FLAG_STOP) {
        char msg[160];
        snprintf(msg, sizeof msg, "stopping at epoch %ld, step %ld: writing a "
                 "checkpoint to resume from", epoch + 1, step + 1);
        note(r, msg);
        r->step_rc = save_periodic(r);
        if (!r->step_rc)
            r->step_rc = MIMO_TRAIN_STOPPED;
        return 1;
    }
    int due = (c->every_steps > 0 && r->st.global_step % c->every_steps == 0) ||
              (flags & FLAG_SAVE);
    if (due && step + 1 == steps)
        r->save_pending = 1; /* saved after the epoch's end, as (e + 1, 0) */
    else if (due && (r->step_rc = save_periodic(r)))
        return 1;
    r->t_step = now_s();
    return 0;
}

/* Monitor value from this epoch's log (NaN if absent). */
static double monitor(const run *r, const char *name)
{
    int c = find_col(r, name);
    return c >= 0 ? r->values[c] : NAN;
}

/* Validation, history, callbacks and checkpoints after an epoch. Sets
 * *stop when early stopping ends the run. */
static int end_epoch(run *r, long e, int *stop)
{
    const mimo_train_spec *t = &r->spec->train;
    double secs = now_s() - r->t_epoch, lr = mimo_model_lr(r->m);
    int rc = 0, improved = 0;
    long long local = r->epoch_samples;
    double sum_samples = (double)local;
    /* logged sums: reduced once per epoch */
    if (r->dist && ((rc = mimo_dist_sum_stats(r->dist, &r->tr)) ||
                    (rc = mimo_dist_sum(r->dist, &sum_samples, 1))))
        return rc;
    r->epoch_samples = (long long)sum_samples;
    mimo_stats_finish(r->m, &r->tr);
    if (r->have_val) {
        mimo_stats_reset(&r->va);
        if ((rc = mimo_model_evaluate(r->m, &r->vs, &r->va)) ||
            (r->dist && (rc = mimo_dist_sum_stats(r->dist, &r->va))))
            return rc;
        mimo_stats_finish(r->m, &r->va);
    }
    fill_values(r, e, lr, secs, secs > 0 ? (double)r->epoch_samples / secs : 0);
    if ((rc = agree(r, append_history(r))))
        return rc;
    if (r->o->on_epoch) {
        mimo_epoch_log log = {r->n_cols, (const char *const *)r->names, r->values};
        r->o->on_epoch(r->o->user, &log);
    }
    if (t->plateau.enabled) {
        int reduced = 0;
        double cur = lr_at(r, e + 1, 0);
        double nl = mimo_plateau_update(&r->plateau, &t->plateau, r->monitor_plateau,
                                        monitor(r, r->monitor_plateau), cur, &reduced);
        if (reduced && cur > 0)
            r->lr_scale *= nl / cur;
    }
    if (t->early.enabled) {
        *stop = mimo_early_update(&r->early, &t->early, r->monitor_early, e,
                                  monitor(r, r->monitor_early), &improved);
        if (improved && t->early.restore_best) {
            memcpy(r->best_params, mimo_model_params(r->m),
                   sizeof(mimo_real) * mimo_model_param_count(r->m));
            r->has_best = 1;
        }
    }
    r->st.epoch = e + 1;
    r->st.step = 0;
    mimo_stats_reset(&r->tr);
    r->epoch_samples = 0;
    mimo_model_set_lr(r->m, lr_at(r, e + 1, 0));
    if (t->checkpoint.save_best) {
        double v = monitor(r, r->monitor_ckpt);
        int is_max = mimo_monitor_is_max(t->checkpoint.mode, r->monitor_ckpt);
        if (!r->ckpt_best_set || mimo_monitor_better(is_max, v, r->ckpt_best, 0)) {
            if (isfinite(v)) {
                r->ckpt_best = v, r->ckpt_best_set = 1;
                if ((rc = save(r, "best.h5")))
                    return rc;
            }
        }
    }
    int periodic = t->checkpoint.every_epochs > 0 &&
                   (e + 1) % t->checkpoint.every_epochs == 0;
    if (periodic || r->save_pending) /* incl. a step save due at the last step */
        rc = save_periodic(r);
    r->save_pending = 0;
    return rc;
}

static int train_loop(run *r)
{
    int rc = 0, stop = 0;
    mimo_model_set_lr(r->m, lr_at(r, r->st.epoch, r->st.step));
    for (long e = r->st.epoch; e < r->epochs && !stop && !rc; e++) {
        r->t_epoch = r->t_step = now_s();
        rc = mimo_model_train_epoch(r->m, &r->ts, e, r->st.step, &r->tr, on_step, r);
        if (rc == 1) /* on_step stopped the epoch; its error message is kept */
            return r->step_rc ? r->step_rc : MIMO_EINVAL;
        if (!rc)
            rc = end_epoch(r, e, &stop);
    }
    if (rc)
        return rc;
    if (r->dist && r->size > 1 && /* replicas must end bitwise identical */
        (rc = mimo_dist_check_replicas(r->dist, mimo_model_params(r->m),
                                       mimo_model_param_count(r->m),
                                       r->st.global_step)))
        return rc;
    if (stop && r->has_best && r->spec->train.early.restore_best) {
        char msg[256];
        snprintf(msg, sizeof msg, "early stopping after epoch %lld; restoring the "
                 "parameters of epoch %ld", (long long)r->st.epoch,
                 r->early.best_epoch + 1);
        note(r, msg);
        if ((rc = mimo_dist_write_params(r->dist, r->m, r->best_params)))
            return rc;
    } else if (stop) {
        note(r, "early stopping");
    }
    return save(r, "last.h5");
}

/* After an error on this rank alone (not agreed) the other ranks may be
 * waiting in a collective: no MPI call and no collective file close then,
 * the caller ends the job with MPI_Abort. */
static void cleanup(run *r, int rc)
{
    int alone = rc < 0 && r->size > 1 && !mimo_error_agreed(); /* not a stop */
    void (*done)(mimo_data **) = alone ? mimo_data_abandon : mimo_data_close;
    if (r->train_d)
        mimo_data_wait(r->train_d); /* the reader thread out of HDF5 first */
    if (r->stop_pending && !alone) /* the other ranks posted it as well */
        MPI_Wait(&r->stop_req, MPI_STATUS_IGNORE);
    for (int i = 0; i < r->n_cols; i++)
        free(r->names[i]);
    mimo_data_close(&r->val_view); /* a view: frees memory only */
    done(&r->val_d);
    done(&r->train_d);
    mimo_stats_free(&r->tr);
    mimo_stats_free(&r->va);
    mimo_stats_free(&r->part);
    free(r->best_params);
    (alone ? mimo_dist_abandon : mimo_dist_free)(&r->dist);
    mimo_trace_free(&r->trace);
    mimo_model_free(&r->m);
}

/* Warns when the ranks on this node times their threads exceed its cores. */
static void check_threads(run *r)
{
    int local = 1, local_rank = 0, threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    if (r->size > 1) {
        MPI_Comm node;
        MPI_Comm_split_type(r->comm, MPI_COMM_TYPE_SHARED, r->rank, MPI_INFO_NULL, &node);
        MPI_Comm_size(node, &local);
        MPI_Comm_rank(node, &local_rank);
        MPI_Comm_free(&node);
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (local_rank == 0 && cores > 0 && (long)local * threads > cores) {
        char msg[256];
        snprintf(msg, sizeof msg, "warning: %d rank(s) x %d thread(s) on this node "
                 "exceed its %ld cores; set OMP_NUM_THREADS so ranks x threads <= "
                 "cores", local, threads, cores);
        note(r, msg);
    }
}

static int create_model(run *r)
{
    int rc = mimo_model_create(r->spec, &r->m);
    if (rc)
        return rc;
    r->g = mimo_model_graph(r->m);
    r->n_heads = mimo_graph_n_heads(r->g);
    if (r->n_heads > 64)
        return mimo_error(MIMO_EINVAL, "more than 64 heads");
    for (int h = 0; h < r->n_heads; h++)
        r->head_names[h] = r->spec->outputs[h].name;
    r->best_params = calloc(mimo_model_param_count(r->m) + 1, sizeof(mimo_real));
    if (!r->best_params)
        return mimo_error(MIMO_ENOMEM, "out of memory");
    if ((rc = mimo_stats_init(&r->tr, r->n_heads)) ||
        (rc = mimo_stats_init(&r->part, r->n_heads)))
        return rc;
    return mimo_stats_init(&r->va, r->n_heads);
}

static int setup_parallel(run *r)
{
    const mimo_train_opts *o = r->o;
    int rc = 0;
    if (o->trace_path)
        rc = mimo_trace_create(r->rank, 1u << 20, &r->trace);
    if (!rc && (r->size > 1 || r->trace))
        rc = mimo_dist_create(r->comm, mimo_model_param_count(r->m), &o->dist,
                              r->trace, &r->dist);
    if ((rc = agree(r, rc)) || !r->dist)
        return rc;
    return agree(r, mimo_dist_attach(r->dist, r->m)); /* collective */
}

/* Every rank starts from rank 0's parameters (and checks it). */
static int sync_replicas(run *r)
{
    if (!r->dist || r->size == 1)
        return 0;
    size_t n = mimo_model_param_count(r->m);
    int rc = mimo_dist_bcast(r->dist, mimo_model_params(r->m), n);
    return rc ? rc : mimo_dist_check_replicas(r->dist, mimo_model_params(r->m), n,
                                              r->st.global_step);
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
    r->t_start = r->t_ckpt = now_s();
    r->comm = o->comm;
    r->size = 1;
    r->check_every = o->check_every > 0 ? o->check_every : 100;
    if (r->comm != MPI_COMM_NULL) {
        MPI_Comm_rank(r->comm, &r->rank);
        MPI_Comm_size(r->comm, &r->size);
    }
    int rc = agree(r, create_model(r));
    if (!rc) { /* opening is agreed inside; the split checks are not */
        rc = open_data(r);
        if (!(rc && mimo_error_agreed()))
            rc = agree(r, rc);
    }
    if (!rc) /* rank 0 alone sets up the directory: agree before collectives */
        rc = agree(r, (rc = build_columns(r)) || (rc = setup_monitors(r)) ||
                      (rc = setup_dirs(r)) || (rc = starting_point(r)) ? rc : 0);
    if (!rc)
        rc = setup_parallel(r);
    if (!rc && !(rc = sync_replicas(r))) {
        check_threads(r);
        r->steps = mimo_model_steps_per_epoch(r->m, r->ts.rows);
        if (!(rc = agree(r, prepare_history(r, (long)r->st.epoch))))
            rc = train_loop(r);
        if (!rc && r->trace)
            rc = mimo_trace_write(r->trace, r->comm, o->trace_path);
    }
    cleanup(r, rc);
    free(r);
    return rc;
}

/* ---- eval and predict from a checkpoint -------------------------------------- */

/* Loads a checkpoint's spec and parameters into a model, partitioned
 * over comm's ranks (each rank sweeps its contiguous share of the rows). */
static int load_for_inference(const char *ckpt, MPI_Comm comm, mimo_spec *spec,
                              mimo_model **m)
{
    int rc = mimo_checkpoint_spec(ckpt, NULL, 0, spec);
    if (rc)
        return rc;
    if (spec->train.batch_size < 256)
        spec->train.batch_size = 256; /* inference batch: any size works */
    if ((rc = mimo_model_create(spec, m)))
        return rc;
    if (comm != MPI_COMM_NULL) {
        int rank, size;
        MPI_Comm_rank(comm, &rank);
        MPI_Comm_size(comm, &size);
        mimo_model_set_partition(*m, rank, size, NULL);
    }
    return mimo_checkpoint_load(ckpt, *m, NULL, NULL, NULL);
}

/* Closes d, or abandons it after an error this rank met alone. */
static void close_data(mimo_data **d, MPI_Comm comm, int rc)
{
    int size = 1;
    if (comm != MPI_COMM_NULL)
        MPI_Comm_size(comm, &size);
    if (rc && size > 1 && !mimo_error_agreed())
        mimo_data_abandon(d);
    else
        mimo_data_close(d);
}

static int agree_on(MPI_Comm comm, int rc)
{
    int size = 1;
    if (comm != MPI_COMM_NULL)
        MPI_Comm_size(comm, &size);
    return size > 1 ? mimo_agree(comm, rc) : rc;
}

int mimo_eval_file(const char *ckpt, const char *data, MPI_Comm comm,
                   mimo_spec *spec, mimo_stats *st)
{
    mimo_model *m = NULL;
    mimo_data *d = NULL;
    memset(st, 0, sizeof *st);
    int rc = load_for_inference(ckpt, comm, spec, &m);
    if (!rc)
        rc = mimo_stats_init(st, mimo_graph_n_heads(mimo_model_graph(m)));
    if (!(rc = agree_on(comm, rc)) &&
        !(rc = mimo_data_open(data, mimo_model_graph(m), 1, comm, &d))) {
        mimo_source s = mimo_data_source(d);
        rc = mimo_model_evaluate(m, &s, st);
        if (!rc && comm != MPI_COMM_NULL) {
            mimo_dist *dist = NULL;
            if (!(rc = mimo_dist_create(comm, 1, NULL, NULL, &dist)))
                rc = mimo_dist_sum_stats(dist, st);
            mimo_dist_free(&dist);
        }
        if (!rc)
            mimo_stats_finish(m, st);
    }
    close_data(&d, comm, rc);
    mimo_model_free(&m);
    return rc;
}

static int write_predictions(const char *out, const mimo_graph *g,
                             mimo_real *const *outs, size_t n)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    int rc = mimo_mkdirs_for(out);
    if (rc)
        return rc;
    mimo_h5_quiet();
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0)
        return mimo_error(MIMO_EIO, "%s: cannot create the predictions file", out);
    for (int h = 0; h < mimo_graph_n_heads(g) && !rc; h++)
        rc = mimo_h5_write_real(f, out, mimo_graph_head_spec(g, h)->name, outs[h], n,
                                (size_t)mimo_graph_head_units(g, h));
    if (H5Fclose(f) < 0 && !rc)
        rc = mimo_error(MIMO_EIO, "%s: close failed", out);
    if (!rc && rename(tmp, out))
        rc = mimo_error(MIMO_EIO, "%s: cannot rename into place: %s", out,
                        strerror(errno));
    if (rc)
        remove(tmp);
    return rc;
}

/* Each rank filled its own rows (zeros elsewhere): summing onto rank 0
 * assembles the whole array exactly. */
static int collect(MPI_Comm comm, mimo_real *buf, size_t len)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    for (size_t s = 0; s < len; s += INT_MAX) {
        int c = (int)(len - s < INT_MAX ? len - s : INT_MAX);
        int err = MPI_Reduce(rank == 0 ? MPI_IN_PLACE : buf + s, buf + s, c,
                             MIMO_MPI_REAL, MPI_SUM, 0, comm);
        if (err != MPI_SUCCESS)
            return mimo_error(MIMO_EMPI, "MPI_Reduce of the predictions failed");
    }
    return 0;
}

int mimo_predict_file(const char *ckpt, const char *data, MPI_Comm comm,
                      const char *out)
{
    mimo_spec spec;
    mimo_model *m = NULL;
    mimo_data *d = NULL;
    mimo_real *outs[64] = {0};
    int rank = 0, rc = load_for_inference(ckpt, comm, &spec, &m);
    if (comm != MPI_COMM_NULL)
        MPI_Comm_rank(comm, &rank);
    if (!(rc = agree_on(comm, rc)))
        rc = mimo_data_open(data, mimo_model_graph(m), 0, comm, &d);
    const mimo_graph *g = m ? mimo_model_graph(m) : NULL;
    int nh = g ? mimo_graph_n_heads(g) : 0;
    size_t rows = d ? mimo_data_rows(d) : 0;
    if (!rc && nh > 64) /* every rank sees the same count */
        rc = agree_on(comm, mimo_error(MIMO_EINVAL, "%s: %d heads, predict "
                                       "handles at most 64", ckpt, nh));
    for (int h = 0; h < nh && h < 64 && !rc; h++)
        if (!(outs[h] = calloc(rows * (size_t)mimo_graph_head_units(g, h) + 1,
                               sizeof(mimo_real))))
            rc = mimo_error(MIMO_ENOMEM, "out of memory for predictions");
    if (!rc) {
        mimo_source s = mimo_data_source(d);
        rc = mimo_model_predict(m, &s, outs);
    }
    for (int h = 0; h < nh && !rc && comm != MPI_COMM_NULL; h++)
        rc = collect(comm, outs[h], rows * (size_t)mimo_graph_head_units(g, h));
    if (!rc && rank == 0)
        rc = write_predictions(out, g, outs, rows);
    for (int h = 0; h < 64; h++)
        free(outs[h]);
    close_data(&d, comm, rc);
    mimo_model_free(&m);
    mimo_spec_free(&spec);
    return rc;
}
