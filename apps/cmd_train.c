/* cmd_train.c — `mimo train`, `mimo predict`, `mimo eval`: parse flags,
 * call the trainer, show progress. Flags that set config values (--epochs,
 * --lr, ...) become --set overrides, so the run's saved config says what
 * was really used. */
#define _POSIX_C_SOURCE 200809L /* isatty, fileno, sigaction */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "cli.h"
#include "mimo/mimo.h"
#include "mimo/trainer.h"


static const char *train_usage =
    "usage: mimo train [CONFIG] [options]\n"
    "  --epochs N          total epochs (train.epochs)\n"
    "  --batch-size N      global batch (train.batch_size)\n"
    "  --lr X              learning rate (train.optimizer.lr)\n"
    "  --seed N            seed of init and shuffling (train.seed)\n"
    "  --set KEY.PATH=V    override any config key (repeatable)\n"
    "  --data F            training dataset file (data.train)\n"
    "  --val F             validation dataset file (data.val)\n"
    "  --out DIR           run directory (default runs/<config name>)\n"
    "  --resume PATH|DIR   continue from a checkpoint or a run directory's\n"
    "                      newest; CONFIG defaults to the checkpoint's\n"
    "  --resume auto       the run directory's newest checkpoint, if any\n"
    "  --time-limit T      checkpoint and stop before T (seconds or [H:]MM:SS)\n"
    "SIGTERM or SIGUSR1 (to any rank): finish the step, checkpoint, exit 75\n"
    "(requeue me); 'mimo train CONFIG --resume auto' then continues.\n"
    "  --init F            start from /params/<layer>/kernel|bias of F\n"
    "  --quiet             only errors\n"
    "under mpirun/srun (data parallel):\n"
    MIMO_CLI_DIST_HELP
    "  --check-every N     compare replica checksums every N steps (default 100)\n"
    "  --trace FILE        write a Chrome trace (Perfetto, chrome://tracing)\n";

typedef struct {
    mimo_cli_config cfg;  /* CONFIG and --set overrides */
    const char *data, *val, *out, *resume, *init, *trace;
    double time_limit;
    char owned[8][64];
    int n_owned, quiet;
    mimo_dist_opts dist;
    long check_every;
} train_args;

#define HELP_SHOWN (-1)
#define EXIT_REQUEUE 75 /* EX_TEMPFAIL: checkpointed, please requeue */

/* Seconds, MM:SS or H:MM:SS (SLURM's forms). */
static int parse_duration(const char *flag, const char *v, double *out)
{
    double parts[3] = {0};
    int n = 0;
    char *end;
    for (const char *p = v; p && n < 3; n++) {
        parts[n] = strtod(p, &end);
        if (end == p || parts[n] < 0)
            break;
        p = *end == ':' ? end + 1 : NULL;
        if (!p && *end)
            n = 99;
    }
    if (!v || n < 1 || n > 3)
        return mimo_cli_usage_error("%s expects seconds, MM:SS or H:MM:SS, got '%s'",
                                    flag, v ? v : "");
    *out = n == 1 ? parts[0] : n == 2 ? parts[0] * 60 + parts[1]
                                      : parts[0] * 3600 + parts[1] * 60 + parts[2];
    return *out > 0 ? 0 : mimo_cli_usage_error("%s must be positive", flag);
}

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* SIGTERM and SIGUSR1 ask training to checkpoint and stop. */
static void catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

/* The data-parallel flags; *done = 1 when s was one of them. */
static int parse_parallel(int argc, char **argv, int *i, train_args *a, int *done)
{
    const char *s = argv[*i];
    int rc = mimo_cli_dist_arg(argc, argv, i, &a->dist, done);
    if (rc || *done)
        return rc;
    *done = 1;
    if (mimo_cli_is(s, "--time-limit"))
        return parse_duration(s, mimo_cli_value(argc, argv, i), &a->time_limit);
    if (mimo_cli_is(s, "--check-every"))
        return mimo_cli_long(s, mimo_cli_value(argc, argv, i), 1, &a->check_every);
    if (mimo_cli_is(s, "--trace")) {
        if (!(a->trace = mimo_cli_value(argc, argv, i)) || !*a->trace)
            return mimo_cli_usage_error("--trace needs a file");
        return 0;
    }
    *done = 0;
    return 0;
}

/* Adds "key=value" built from a flag. */
static int flag_set(train_args *a, const char *key, const char *value)
{
    if (a->n_owned == 8)
        return mimo_cli_usage_error("too many options");
    snprintf(a->owned[a->n_owned], sizeof a->owned[0], "%s=%s", key, value);
    return mimo_cli_add_set(&a->cfg, a->owned[a->n_owned++]);
}

static int parse_train(int argc, char **argv, train_args *a)
{
    static const struct { const char *flag, *key; int integer; } numeric[] = {
        {"--epochs", "train.epochs", 1}, {"--batch-size", "train.batch_size", 1},
        {"--lr", "train.optimizer.lr", 0}, {"--seed", "train.seed", 1}};
    memset(a, 0, sizeof *a);
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i], *v;
        int done = 0, rc = 0;
        (void)v;
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            if (mimo_cli_rank() == 0)
                fputs(train_usage, stdout);
            return HELP_SHOWN;
        }
        if ((rc = parse_parallel(argc, argv, &i, a, &done)) || done) {
            if (rc)
                return rc;
            continue;
        }
        for (size_t k = 0; k < sizeof numeric / sizeof *numeric && !done; k++)
            if (mimo_cli_is(s, numeric[k].flag)) {
                long l;
                double d;
                done = 1;
                v = mimo_cli_value(argc, argv, &i);
                rc = numeric[k].integer ? mimo_cli_long(numeric[k].flag, v, 0, &l)
                                        : mimo_cli_double(numeric[k].flag, v, &d);
                if (!rc)
                    rc = flag_set(a, numeric[k].key, v);
            }
        if (done) {
            if (rc)
                return rc;
            continue;
        }
        const char **dst = mimo_cli_is(s, "--data") ? &a->data
                           : mimo_cli_is(s, "--val") ? &a->val
                           : mimo_cli_is(s, "--out") ? &a->out
                           : mimo_cli_is(s, "--resume") ? &a->resume
                           : mimo_cli_is(s, "--init") ? &a->init : NULL;
        if (dst) {
            if (!(v = mimo_cli_value(argc, argv, &i)) || !*v)
                return mimo_cli_usage_error("%s needs a value", s);
            *dst = v;
        } else if (!strcmp(s, "--quiet") || !strcmp(s, "-q"))
            a->quiet = 1;
        else if ((rc = mimo_cli_config_arg(argc, argv, &i, &a->cfg)))
            return rc;
    }
    if (!a->cfg.config && !a->resume)
        return mimo_cli_usage_error("missing CONFIG file");
    if (!a->cfg.config && !strcmp(a->resume, "auto"))
        return mimo_cli_usage_error("--resume auto needs CONFIG");
    return 0;
}

/* runs/<config file name without directory and extension> */
static void default_out(const char *config, char *out, size_t len)
{
    const char *base = strrchr(config, '/') ? strrchr(config, '/') + 1 : config;
    size_t n = strcspn(base, ".");
    snprintf(out, len, "runs/%.*s", (int)(n ? n : strlen(base)), base);
}

/* ---- progress display ------------------------------------------------------ */

typedef struct {
    int quiet, tty;
    double last;
} display;

static void show_step(void *user, const mimo_progress *p)
{
    display *d = user;
    double t = mimo_clock();
    if (d->quiet || !d->tty || (t - d->last < 0.1 && p->step < p->steps))
        return;
    d->last = t;
    int width = 24, fill = (int)((double)width * (double)p->step / (double)p->steps);
    fprintf(stderr, "\r\033[Kepoch %ld/%ld [", p->epoch + 1, p->epochs);
    for (int i = 0; i < width; i++)
        fputc(i < fill ? '=' : i == fill ? '>' : ' ', stderr);
    fprintf(stderr, "] %ld/%ld", p->step, p->steps);
    for (int h = 0; h < p->n_heads; h++)
        fprintf(stderr, " %s_loss %.4g", p->head_names[h], p->head_loss[h]);
    fprintf(stderr, " | %.0f samples/s ETA %.0fs", p->samples_per_s, p->eta_s);
    fflush(stderr);
}

static void show_epoch(void *user, const mimo_epoch_log *log)
{
    display *d = user;
    if (d->quiet)
        return;
    if (d->tty)
        fprintf(stderr, "\r\033[K");
    printf("epoch %.0f", log->values[0]);
    for (int i = 1; i < log->n; i++)
        printf(" - %s %.5g", log->names[i], log->values[i]);
    printf("\n");
    fflush(stdout);
}

static void show_message(void *user, const char *msg)
{
    display *d = user;
    if (!d->quiet)
        fprintf(stderr, "mimo: %s\n", msg);
}

int mimo_cmd_train(int argc, char **argv)
{
    train_args a;
    int rc = parse_train(argc, argv, &a);
    if (rc)
        return rc == HELP_SHOWN ? 0 : rc;
    mimo_spec spec;
    char ckpt[4096], out[1024];
    if (a.cfg.config)
        rc = mimo_config_load(a.cfg.config, a.cfg.sets, a.cfg.n_sets, &spec);
    else if (!(rc = mimo_find_checkpoint(a.resume, ckpt, sizeof ckpt)))
        rc = mimo_checkpoint_spec(ckpt, a.cfg.sets, a.cfg.n_sets, &spec);
    else
        mimo_spec_defaults(&spec);
    if ((rc = mimo_cli_agree(rc))) {
        mimo_spec_free(&spec);
        return mimo_cli_fail_rc(rc);
    }
    if (a.out)
        snprintf(out, sizeof out, "%s", a.out);
    else if (a.resume && !a.cfg.config)
        snprintf(out, sizeof out, "%s", a.resume);
    else
        default_out(a.cfg.config, out, sizeof out);
    display d = {a.quiet || mimo_cli_rank() != 0, isatty(fileno(stderr)), 0};
    mimo_train_opts o = {out, a.resume, a.init, a.data, a.val, show_step,
                         show_epoch, show_message, &d, mimo_cli_comm(),
                         a.dist,
                         a.check_every, a.trace, &stop_requested, a.time_limit};
    catch_stop_signals();
    rc = mimo_train(&spec, &o);
    mimo_spec_free(&spec);
    if (rc == MIMO_TRAIN_STOPPED) {
        if (!d.quiet)
            fprintf(stderr, "mimo: checkpointed in %s; resume with --resume auto "
                    "(exit %d: requeue)\n", out, EXIT_REQUEUE);
        return EXIT_REQUEUE;
    }
    if (rc)
        return mimo_cli_fail_rc(rc);
    if (!d.quiet)
        fprintf(stderr, "mimo: run directory %s\n", out);
    return 0;
}

/* ---- predict and eval ---------------------------------------------------------- */

/* Parses CHECKPOINT --data F [--out F]; out may be NULL when not wanted. */
static int parse_infer(const char *cmd, int argc, char **argv, const char **ckpt,
                       const char **data, const char **out)
{
    *ckpt = *data = NULL;
    if (out)
        *out = NULL;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            if (mimo_cli_rank() == 0)
                printf("usage: mimo %s CHECKPOINT|RUN_DIR --data F%s\n", cmd,
                       out ? " --out F" : "");
            return HELP_SHOWN;
        }
        const char **dst = mimo_cli_is(s, "--data") ? data
                           : out && mimo_cli_is(s, "--out") ? out : NULL;
        if (dst) {
            if (!(*dst = mimo_cli_value(argc, argv, &i)) || !**dst)
                return mimo_cli_usage_error("%s needs a file", s);
        } else if (s[0] == '-' && s[1])
            return mimo_cli_usage_error("unknown option '%s'", s);
        else if (*ckpt)
            return mimo_cli_usage_error("unexpected argument '%s'", s);
        else
            *ckpt = s;
    }
    if (!*ckpt)
        return mimo_cli_usage_error("missing CHECKPOINT");
    if (!*data)
        return mimo_cli_usage_error("missing --data F");
    if (out && !*out)
        return mimo_cli_usage_error("missing --out F");
    return 0;
}

int mimo_cmd_predict(int argc, char **argv)
{
    const char *ckpt, *data, *out;
    char path[4096];
    int rc = parse_infer("predict", argc, argv, &ckpt, &data, &out);
    if (rc)
        return rc == HELP_SHOWN ? 0 : rc;
    if ((rc = mimo_cli_agree(mimo_find_checkpoint(ckpt, path, sizeof path))) ||
        (rc = mimo_predict_file(path, data, mimo_cli_comm(), out)))
        return mimo_cli_fail_rc(rc);
    return 0;
}

int mimo_cmd_eval(int argc, char **argv)
{
    const char *ckpt, *data;
    char path[4096];
    mimo_spec spec;
    mimo_stats st;
    int rc = parse_infer("eval", argc, argv, &ckpt, &data, NULL);
    if (rc)
        return rc == HELP_SHOWN ? 0 : rc;
    if ((rc = mimo_cli_agree(mimo_find_checkpoint(ckpt, path, sizeof path))))
        return mimo_cli_fail_rc(rc);
    rc = mimo_eval_file(path, data, mimo_cli_comm(), &spec, &st);
    if (!rc && mimo_cli_rank() == 0) {
        printf("loss %.6g\n", st.loss);
        for (int h = 0; h < st.n_heads; h++) {
            const mimo_output_spec *o = &spec.outputs[h];
            printf("%s_loss %.6g\n", o->name, st.head[h].loss);
            if (o->metrics & MIMO_METRIC_ACCURACY)
                printf("%s_accuracy %.6g\n", o->name, st.head[h].acc);
            if (o->metrics & MIMO_METRIC_MSE)
                printf("%s_mse %.6g\n", o->name, st.head[h].mse);
            if (o->metrics & MIMO_METRIC_MAE)
                printf("%s_mae %.6g\n", o->name, st.head[h].mae);
        }
        printf("samples %lld\n", st.count);
    }
    mimo_stats_free(&st);
    mimo_spec_free(&spec);
    return rc ? mimo_cli_fail_rc(rc) : 0;
}
