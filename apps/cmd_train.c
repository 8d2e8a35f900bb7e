/* cmd_train.c — `mimo train`, `mimo predict`, `mimo eval`: parse flags,
 * call the trainer, show progress. Flags that set config values (--epochs,
 * --lr, ...) become --set overrides, so the run's saved config says what
 * was really used. */
#define _DEFAULT_SOURCE /* isatty, sigaction, TIOCGWINSZ */
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
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
    "  --strict-data       refuse to resume on a training file other than the\n"
    "                      one the checkpoint trained on (default: a warning)\n"
    "  --resume auto       the run directory's newest checkpoint, if any\n"
    "  --overwrite         train into a run directory that holds an earlier\n"
    "                      run, deleting its checkpoints and history\n"
    "  --time-limit T      checkpoint and stop before T (seconds or [H:]MM:SS)\n"
    "  --force             start even when the model needs more memory than\n"
    "                      the machine has available\n"
    "  --strict-precision  refuse train.precision: bf16 on a CPU without native\n"
    "                      bf16 (default: a note, and float32)\n"
    "SIGTERM or SIGUSR1 (to any rank): finish the step, checkpoint, exit 75\n"
    "(requeue me); Ctrl-C (SIGINT) on one process: the same, exit 130, and a\n"
    "second Ctrl-C stops at once; under mpirun, Ctrl-C reaches mpirun, which\n"
    "sends its ranks SIGTERM (exit 75; mpirun exits 1, DIR/status says\n"
    "stopped). 'mimo train CONFIG --resume auto' then continues.\n"
    "  --init F            start from the tensors of F's /params/<layer>/<tensor>\n"
    "                      that match a layer and tensor by name and shape (the\n"
    "                      others keep their initial values); prints a table\n"
    "  --init-strict       every tensor from F, or an error\n"
    "  --init-map OLD=NEW  read F's layer OLD for the layer NEW (repeatable)\n"
    "  --progress WHEN     a progress bar on rank 0's standard output:\n"
    "                      auto (when it is a terminal), always, never\n"
    "  --verbose           every history column in the epoch lines\n"
    "  --quiet             only errors\n"
    "under mpirun/srun (data parallel):\n"
    MIMO_CLI_DIST_HELP
    "  --check-every N     compare replica checksums every N steps (default "
    MIMO_CLI_STR(MIMO_CHECK_EVERY_DEFAULT) ")\n"
    "  --stall-warn S      when a rank has waited S seconds in a collective,\n"
    "                      rank 0 names the ranks that have not arrived\n"
    "                      (default " MIMO_CLI_STR(MIMO_STALL_WARN_DEFAULT) "; 0: off)\n"
    "  --stall-abort S     after S seconds of such a wait, end the job\n"
    "                      (default 0: never)\n"
    "  --trace FILE        write a Chrome trace (Perfetto, chrome://tracing)\n";

typedef struct {
    mimo_cli_config cfg;  /* CONFIG and --set overrides */
    const char *data, *val, *out, *resume, *init, *trace;
    const char *init_map[MIMO_CLI_MAX_SETS];
    int n_init_map, init_strict;
    double time_limit, stall_warn, stall_abort;
    char owned[8][64];
    int n_owned, quiet, verbose, overwrite, force, strict_data, strict_precision;
    int progress;         /* -1 auto, 0 never, 1 always */
    mimo_dist_opts dist;
    long check_every;
} train_args;

#define HELP_SHOWN (-1)
#define EXIT_REQUEUE 75 /* EX_TEMPFAIL: checkpointed, please requeue */
#define EXIT_INTERRUPTED 130 /* 128 + SIGINT: checkpointed after Ctrl-C */

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

/* 0: train on; 1: stop (SIGTERM, SIGUSR1); 2: stop (Ctrl-C) */
static volatile sig_atomic_t stop_requested;

static void say(const char *msg) /* async-signal-safe */
{
    ssize_t ignored = write(STDERR_FILENO, msg, strlen(msg));
    (void)ignored;
}

/* A second Ctrl-C stops at once: every file mimo writes whole is renamed
 * into place only when complete, so what is on disk stays intact. */
static void on_signal(int sig)
{
    if (sig == SIGINT && stop_requested == 2) {
        say("\nmimo: stopped at once (second Ctrl-C); the files on disk are intact\n");
        _exit(EXIT_INTERRUPTED);
    }
    if (sig == SIGINT) {
        stop_requested = 2;
        say("\nmimo: Ctrl-C: finishing this step and writing a checkpoint "
            "(Ctrl-C again to stop at once)\n");
    } else if (!stop_requested)
        stop_requested = 1;
}

/* The thread that takes the stop signals: it only waits for them. */
static void *signal_thread(void *arg)
{
    sigset_t *stops = arg;
    pthread_sigmask(SIG_UNBLOCK, stops, NULL);
    for (;;)
        pause();
    return NULL;
}

/* SIGTERM, SIGUSR1 and SIGINT ask training to checkpoint and stop. They
 * are handled on a thread of their own and blocked in every other: a
 * handler runs on the stack of the thread the signal lands on, and
 * oneDNN 2.6's f32 gemm kernels (dnnl_sgemm, and the gemm inside its
 * primitives) point rsp at a malloc'd workspace while they run, so a
 * signal frame pushed there overwrote the heap (glibc aborted in 1 of ~8
 * runs stopped during validation; oneDNN issue 4845, fixed in 3.11).
 * Called first from .preinit_array (start_thread 0: before libc may start
 * threads): the signals are blocked there, so every thread started later
 * (OpenBLAS's, OpenMP's, Open MPI's) inherits the mask, and a signal that
 * comes before main waits, pending; main (start_thread 1) starts the
 * thread, which unblocks them for itself and so takes a pending one at
 * once. A launcher may start us with them blocked (the mask survives
 * exec): the same, a stop is never held back. If no thread can be
 * started, the calling thread takes them as before. */
static void catch_stop_signals(int start_thread)
{
    static sigset_t stops;
    static int started;
    struct sigaction sa;
    pthread_t t;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigemptyset(&stops);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGUSR1);
    sigaddset(&stops, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stops, NULL);
    if (!start_thread || started)
        return;
    if (pthread_create(&t, NULL, signal_thread, &stops) == 0) {
        pthread_detach(t);
        started = 1;
    } else {
        pthread_sigmask(SIG_UNBLOCK, &stops, NULL);
    }
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
    if (mimo_cli_is(s, "--stall-warn") || mimo_cli_is(s, "--stall-abort")) {
        double *dst = mimo_cli_is(s, "--stall-warn") ? &a->stall_warn : &a->stall_abort;
        int bad = mimo_cli_double(s, mimo_cli_value(argc, argv, i), dst);
        if (!bad && (*dst < 0 || *dst > 1e9))
            bad = mimo_cli_usage_error("%s expects seconds in [0, 1e9] (0: off)", s);
        return bad;
    }
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
    a->progress = -1;
    a->stall_warn = MIMO_STALL_WARN_DEFAULT;
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
        else if (!strcmp(s, "--verbose") || !strcmp(s, "-v"))
            a->verbose = 1;
        else if (!strcmp(s, "--overwrite"))
            a->overwrite = 1;
        else if (!strcmp(s, "--force"))
            a->force = 1;
        else if (!strcmp(s, "--strict-data"))
            a->strict_data = 1;
        else if (!strcmp(s, "--strict-precision"))
            a->strict_precision = 1;
        else if (!strcmp(s, "--init-strict"))
            a->init_strict = 1;
        else if (mimo_cli_is(s, "--init-map")) {
            if (!(v = mimo_cli_value(argc, argv, &i)) || !strchr(v, '='))
                return mimo_cli_usage_error("--init-map expects OLD=NEW (a layer of "
                                            "the --init file, a layer of this network)");
            if (a->n_init_map == MIMO_CLI_MAX_SETS)
                return mimo_cli_usage_error("more than %d --init-map", MIMO_CLI_MAX_SETS);
            a->init_map[a->n_init_map++] = v;
        }
        else if (mimo_cli_is(s, "--progress")) {
            v = mimo_cli_value(argc, argv, &i);
            a->progress = !v ? -2 : !strcmp(v, "auto") ? -1 : !strcmp(v, "always") ? 1
                          : !strcmp(v, "never") ? 0 : -2;
            if (a->progress == -2)
                return mimo_cli_usage_error("--progress expects auto, always or "
                                            "never, got '%s'", v ? v : "");
        }
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
    int quiet, verbose;
    int bar;        /* draw a progress bar on standard output */
    int columns;    /* the width a line must fit in */
    int drawn;      /* a bar is on the current line */
    double last;
} display;

/* Appends " - name value" (or any token) to line if it fits in the width;
 * returns 0 (and marks the line cut) when it does not. */
static int add_token(char *line, size_t cap, int width, int *cut, const char *tok)
{
    size_t used = strlen(line), n = strlen(tok);
    if (*cut || (int)(used + n) > width - 6) { /* room for " - ..." */
        *cut = 1;
        return 0;
    }
    snprintf(line + used, cap - used, "%s", tok);
    return 1;
}

static void clear_bar(display *d)
{
    if (d->drawn)
        fputs("\r\033[K", stdout);
    d->drawn = 0;
}

/* epoch 3/15 [=========>       ] 180/469 loss 0.3171 label_loss ... | 31250 samples/s ETA 6s */
static void show_step(void *user, const mimo_progress *p)
{
    display *d = user;
    double t = mimo_clock();
    if (d->quiet || !d->bar || (t - d->last < 0.1 && p->step < p->steps))
        return;
    d->last = t;
    char line[512], tok[160], tail[96];
    int width = 20, fill = (int)((double)width * (double)p->step / (double)p->steps), cut = 0;
    int n = snprintf(line, sizeof line, "epoch %ld/%ld [", p->epoch + 1, p->epochs);
    for (int i = 0; i < width && n < (int)sizeof line - 1; i++)
        line[n++] = i < fill ? '=' : i == fill ? '>' : ' ';
    snprintf(line + n, sizeof line - (size_t)n, "] %ld/%ld", p->step, p->steps);
    snprintf(tail, sizeof tail, " | %.0f samples/s ETA %.0fs", p->samples_per_s, p->eta_s);
    snprintf(tok, sizeof tok, " loss %.4g", p->loss);
    add_token(line, sizeof line, d->columns - (int)strlen(tail), &cut, tok);
    for (int h = 0; h < p->n_heads && p->n_heads > 1; h++) {
        snprintf(tok, sizeof tok, " %s_loss %.4g", p->head_names[h], p->head_loss[h]);
        add_token(line, sizeof line, d->columns - (int)strlen(tail), &cut, tok);
    }
    printf("\r\033[K%s%s", line, tail);
    fflush(stdout);
    d->drawn = 1;
}

/* Whether a history column is a metric of a head (not a loss, not lr,
 * seconds or samples_per_s). */
static int is_metric(const char *name)
{
    size_t n = strlen(name);
    return strcmp(name, "epoch") && strcmp(name, "lr") && strcmp(name, "seconds") &&
           strcmp(name, "samples_per_s") && !(n >= 4 && !strcmp(name + n - 4, "loss"));
}

/* One line per epoch, short enough for the terminal: the losses and the
 * (validation) metrics that fit, then the time; --verbose: every column
 * (history.csv has them all in any case). */
static void show_epoch(void *user, const mimo_epoch_log *log)
{
    display *d = user;
    char line[4096], tok[256];
    int cut = 0, val = 0;
    if (d->quiet)
        return;
    clear_bar(d);
    snprintf(line, sizeof line, "epoch %.0f", log->values[0]);
    for (int i = 1; i < log->n; i++)
        val |= strncmp(log->names[i], "val_", 4) == 0;
    int width = d->verbose ? (int)sizeof line : d->columns;
    for (int pass = 0; pass < 3; pass++) /* losses, metrics, the rest */
        for (int i = 1; i < log->n; i++) {
            const char *nm = log->names[i];
            int is_val = strncmp(nm, "val_", 4) == 0;
            int want = d->verbose ? pass == 0
                     : pass == 0 ? !strcmp(nm, "loss") || !strcmp(nm, "val_loss")
                     : pass == 1 ? is_metric(nm) && is_val == val
                     : !strcmp(nm, "seconds");
            if (!want)
                continue;
            if (!strcmp(nm, "seconds") && !d->verbose)
                snprintf(tok, sizeof tok, " - %.1fs", log->values[i]);
            else
                snprintf(tok, sizeof tok, " - %s %.5g", nm, log->values[i]);
            add_token(line, sizeof line, width, &cut, tok);
        }
    printf("%s%s\n", line, cut ? " - ..." : "");
    fflush(stdout);
}

static void show_message(void *user, const char *msg)
{
    display *d = user;
    if (d->quiet)
        return;
    clear_bar(d);
    fflush(stdout);
    fprintf(stderr, "mimo: %s\n", msg);
}

/* The width an epoch line must fit: the terminal's (72 to 160), else 100. */
static int line_width(void)
{
    struct winsize w;
    if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &w) == 0 && w.ws_col)
        return w.ws_col < 72 ? 72 : w.ws_col > 160 ? 160 : w.ws_col;
    return 100;
}

/* Whether a person is looking at this process's standard output: it is a
 * terminal — and, under Open MPI, which gives every rank a pseudo-terminal
 * whatever mpirun writes to, when mpirun's own output (the parent's, on
 * the node where it runs) is one too. Elsewhere (orted's children, no
 * /proc) no bar: logs stay clean. */
static int person_watching(void)
{
    if (!isatty(STDOUT_FILENO))
        return 0;
    if (!getenv("OMPI_COMM_WORLD_SIZE"))
        return 1;
    char link[64], target[256];
    snprintf(link, sizeof link, "/proc/%ld/fd/1", (long)getppid());
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0)
        return 0;
    target[n] = '\0';
    return strncmp(target, "/dev/pts/", 9) == 0 || strncmp(target, "/dev/tty", 8) == 0;
}

void mimo_cmd_train_signals(int start_thread) { catch_stop_signals(start_thread); }

/* --stall-abort: the stall detector's thread ends the job. */
static void stall_fatal(void *user, const char *msg)
{
    display *d = user;
    clear_bar(d);
    fflush(stdout);
    fprintf(stderr, "mimo: error: %s\n", msg);
    fflush(stderr);
    if (mimo_cli_size() > 1)
        MPI_Abort(MPI_COMM_WORLD, 1);
    _exit(1);
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
    /* the bar goes where a person looks: rank 0's standard output when
     * that reaches a terminal (under mpirun stderr is a pipe) */
    display d = {a.quiet || mimo_cli_rank() != 0, a.verbose,
                 a.progress == 1 || (a.progress == -1 && person_watching()),
                 line_width(), 0, 0};
    mimo_train_opts o = {.out_dir = out, .resume = a.resume, .init = a.init,
                         .init_strict = a.init_strict, .init_map = a.init_map,
                         .n_init_map = a.n_init_map,
                         .train_path = a.data, .val_path = a.val,
                         .on_step = show_step, .on_epoch = show_epoch,
                         .on_message = show_message, .user = &d,
                         .comm = mimo_cli_comm(), .dist = a.dist,
                         .check_every = a.check_every, .trace_path = a.trace,
                         .stop = &stop_requested, .time_limit = a.time_limit,
                         .overwrite = a.overwrite, .stall_warn = a.stall_warn,
                         .stall_abort = a.stall_abort, .on_fatal = stall_fatal,
                         .force = a.force, .strict_data = a.strict_data,
                         .strict_precision = a.strict_precision};
    rc = mimo_train(&spec, &o);
    mimo_spec_free(&spec);
    clear_bar(&d);
    if (rc == MIMO_TRAIN_STOPPED) {
        int code = stop_requested == 2 ? EXIT_INTERRUPTED : EXIT_REQUEUE;
        /* a stop before the first step leaves no checkpoint to name */
        int saved = mimo_find_checkpoint(out, ckpt, sizeof ckpt) == 0;
        mimo_error_clear();
        if (!d.quiet)
            fprintf(stderr, "mimo: %s %s; %s with --resume auto (exit %d: %s)\n",
                    saved ? "checkpointed in" : "stopped before a checkpoint in", out,
                    saved ? "resume" : "the same command starts afresh",
                    code, code == EXIT_REQUEUE ? "requeue" : "interrupted");
        return code;
    }
    if (rc)
        return mimo_cli_fail_rc(rc);
    if (!d.quiet)
        fprintf(stderr, "mimo: run directory %s\n", out);
    return 0;
}

/* ---- predict and eval ---------------------------------------------------------- */

/* Parses CHECKPOINT --data F [--out F] [--quiet]; out may be NULL when
 * not wanted. */
static int parse_infer(const char *cmd, int argc, char **argv, const char **ckpt,
                       const char **data, const char **out, int *quiet)
{
    *ckpt = *data = NULL;
    *quiet = 0;
    if (out)
        *out = NULL;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            if (mimo_cli_rank() == 0)
                printf("usage: mimo %s CHECKPOINT|RUN_DIR --data F%s [--quiet]\n"
                       "  (a run directory: its newest checkpoint)\n"
                       "  --data F  an HDF5 dataset file, or a raw CSV (F ending in "
                       ".csv or .tsv)\n"
                       "            converted as `mimo import csv --schema` "
                       "converted the training\n"
                       "            data, by the vocabularies and statistics "
                       "the checkpoint carries\n", cmd,
                       out ? " --out F" : "");
            return HELP_SHOWN;
        }
        const char **dst = mimo_cli_is(s, "--data") ? data
                           : out && mimo_cli_is(s, "--out") ? out : NULL;
        if (dst) {
            if (!(*dst = mimo_cli_value(argc, argv, &i)) || !**dst)
                return mimo_cli_usage_error("%s needs a file", s);
        } else if (!strcmp(s, "--quiet") || !strcmp(s, "-q"))
            *quiet = 1;
        else if (s[0] == '-' && s[1])
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

/* "runs/x/checkpoints/last.h5 (after epoch 15)" or "(epoch 3, step 40)" */
static void ckpt_text(const char *path, char *buf, size_t len)
{
    int64_t epoch = 0, step = 0, gs = 0;
    if (mimo_checkpoint_position(path, &epoch, &step, &gs))
        snprintf(buf, len, "%s", path);
    else if (step == 0)
        snprintf(buf, len, "%s (after epoch %lld)", path, (long long)epoch);
    else
        snprintf(buf, len, "%s (epoch %lld, step %lld)", path, (long long)epoch + 1,
                 (long long)step);
}

int mimo_cmd_predict(int argc, char **argv)
{
    const char *ckpt, *data, *out;
    char path[4096], what[4300];
    int quiet;
    int rc = parse_infer("predict", argc, argv, &ckpt, &data, &out, &quiet);
    if (rc)
        return rc == HELP_SHOWN ? 0 : rc;
    if ((rc = mimo_cli_agree(mimo_find_checkpoint(ckpt, path, sizeof path))) ||
        (rc = mimo_predict_file(path, data, mimo_cli_comm(), out)))
        return mimo_cli_fail_rc(rc);
    if (!quiet && mimo_cli_rank() == 0) {
        ckpt_text(path, what, sizeof what);
        fprintf(stderr, "mimo: wrote %s: every head's outputs for %s, by %s\n", out,
                data, what);
    }
    return 0;
}

int mimo_cmd_eval(int argc, char **argv)
{
    const char *ckpt, *data;
    char path[4096], what[4300];
    mimo_spec spec;
    mimo_stats st;
    int quiet;
    int rc = parse_infer("eval", argc, argv, &ckpt, &data, NULL, &quiet);
    if (rc)
        return rc == HELP_SHOWN ? 0 : rc;
    if ((rc = mimo_cli_agree(mimo_find_checkpoint(ckpt, path, sizeof path))))
        return mimo_cli_fail_rc(rc);
    rc = mimo_eval_file(path, data, mimo_cli_comm(), &spec, &st);
    if (!rc && mimo_cli_rank() == 0) {
        if (!quiet) {
            ckpt_text(path, what, sizeof what);
            fprintf(stderr, "mimo: evaluating %s on %s\n", what, data);
        }
        printf("loss %.6g\n", st.loss);
        for (int h = 0; h < st.n_heads; h++) {
            const mimo_output_spec *o = &spec.outputs[h];
            printf("%s_loss %.6g\n", o->name, st.head[h].loss);
            for (int j = 0; j < MIMO_METRIC_COUNT; j++)
                if (o->metrics & (1u << j))
                    printf("%s_%s %.6g\n", o->name, mimo_metric_name(j),
                           mimo_head_metric(&st.head[h], j));
            if (o->missing)
                printf("%s_labelled %.0f\n", o->name, st.head[h].labelled);
        }
        printf("samples %lld\n", st.count);
    }
    mimo_stats_free(&st);
    mimo_spec_free(&spec);
    return rc ? mimo_cli_fail_rc(rc) : 0;
}
