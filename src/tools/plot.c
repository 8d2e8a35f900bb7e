/* plot.c — `mimo plot`: a run's history.csv as a PNG drawn by gnuplot.
 * The CSV is parsed here and every value checked to be a number, so the
 * script handed to gnuplot holds only numbers and quoted labels; gnuplot
 * gets it on its stdin and writes the PNG to its stdout, which is the
 * output's temporary file: no path or title ever becomes gnuplot code. */
#define _POSIX_C_SOURCE 200809L
#include "tools/plot.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/fsutil.h"
#include "mimo/error.h"
#include "base/strutil.h"

extern char **environ;

/* ---- the history ------------------------------------------------------ */

typedef struct {
    char **names;   /* ncols header names */
    size_t ncols;
    double *v;      /* nrows x ncols, NaN where a field is empty */
    size_t nrows;
    char *buf;      /* the file's text; names point into it */
} history;

static void history_free(history *h)
{
    free(h->names);
    free(h->v);
    free(h->buf);
    memset(h, 0, sizeof *h);
}

static int slurp(const char *path, char **out)
{
    int fd, rc = mimo_open_regular(path, NULL, &fd);
    if (rc)
        return rc;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return mimo_error(MIMO_EIO, "%s: cannot open: %s", path, strerror(errno));
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 4097) {
            size_t ncap = cap ? 2 * cap : 65536;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                fclose(f);
                return mimo_error(MIMO_ENOMEM, "%s: out of memory", path);
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0)
            break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return mimo_error(MIMO_EIO, "%s: read error (a directory?)", path);
    }
    buf[len] = '\0';
    if (strlen(buf) != len) {
        free(buf);
        return mimo_error(MIMO_EINVAL, "%s: not a mimo history (binary data)",
                          path);
    }
    *out = buf;
    return 0;
}

/* Splits line s (modified in place) at commas into at most max fields. */
static size_t split(char *s, char **f, size_t max)
{
    size_t n = 0;
    for (;;) {
        char *c = strchr(s, ',');
        if (n < max)
            f[n] = s;
        n++;
        if (!c)
            break;
        *c = '\0';
        s = c + 1;
    }
    return n;
}

static char *next_line(char **p)
{
    char *s = *p;
    if (!*s)
        return NULL;
    char *nl = strchr(s, '\n');
    if (nl) {
        *nl = '\0';
        *p = nl + 1;
    } else {
        *p = s + strlen(s);
    }
    size_t n = strlen(s);
    if (n && s[n - 1] == '\r')
        s[n - 1] = '\0';
    return s;
}

static int parse_history(const char *path, history *h)
{
    memset(h, 0, sizeof *h);
    int rc = slurp(path, &h->buf);
    if (rc)
        return rc;
    char *p = h->buf, *line = next_line(&p);
    if (!line || strncmp(line, "epoch,", 6) != 0)
        return mimo_error(MIMO_EINVAL, "%s: not a mimo history (its header "
                          "must start with an 'epoch' column)", path);
    size_t nc = 1;
    for (const char *q = line; *q; q++)
        nc += *q == ',';
    h->names = malloc(nc * sizeof *h->names);
    if (!h->names)
        return mimo_error(MIMO_ENOMEM, "out of memory");
    h->ncols = split(line, h->names, nc);
    size_t cap = 0;
    long lineno = 1;
    char **fields = malloc(nc * sizeof *fields);
    if (!fields)
        return mimo_error(MIMO_ENOMEM, "out of memory");
    while (!rc && (line = next_line(&p)) != NULL) {
        lineno++;
        if (!*line)
            continue;
        size_t n = split(line, fields, nc);
        if (n != nc) {
            rc = mimo_error(MIMO_EINVAL, "%s:%ld: %zu fields, the header has %zu",
                            path, lineno, n, nc);
            break;
        }
        if (h->nrows == cap) {
            cap = cap ? 2 * cap : 64;
            double *nv = realloc(h->v, cap * nc * sizeof *nv);
            if (!nv) {
                rc = mimo_error(MIMO_ENOMEM, "out of memory");
                break;
            }
            h->v = nv;
        }
        for (size_t c = 0; c < nc; c++) {
            char *end;
            double x = NAN;
            if (*fields[c]) {
                x = strtod(fields[c], &end);
                if (end == fields[c] || *end) {
                    rc = mimo_error(MIMO_EINVAL, "%s:%ld: column '%s': '%s' is "
                                    "not a number", path, lineno, h->names[c],
                                    fields[c]);
                    break;
                }
            }
            h->v[h->nrows * nc + c] = x;
        }
        h->nrows++;
    }
    free(fields);
    if (!rc && h->nrows == 0)
        rc = mimo_error(MIMO_EINVAL, "%s: no epochs yet (only the header)", path);
    return rc;
}

static int find_col(const history *h, const char *name)
{
    for (size_t c = 0; c < h->ncols; c++)
        if (strcmp(h->names[c], name) == 0)
            return (int)c;
    return -1;
}

/* ---- the script ------------------------------------------------------- */

/* A gnuplot single-quoted string: ' doubled; control characters and
 * backquotes (command substitution elsewhere in gnuplot) become spaces. */
static void put_quoted(FILE *s, const char *t)
{
    fputc('\'', s);
    for (; *t; t++) {
        unsigned char ch = (unsigned char)*t;
        if (ch == '\'')
            fputs("''", s);
        else if (ch < 0x20 || ch == 0x7f || ch == '`')
            fputc(' ', s);
        else
            fputc(ch, s);
    }
    fputc('\'', s);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Columns never drawn as a panel of their own (the labelled rows of a
 * head with missing labels are a count of the data, not of training). */
static int skipped(const char *name)
{
    return strcmp(name, "epoch") == 0 || strcmp(name, "seconds") == 0 ||
           strcmp(name, "samples_per_s") == 0 || strncmp(name, "val_", 4) == 0 ||
           ends_with(name, "_labelled");
}

/* Log scale for a positive quantity spanning more than 30x (losses over
 * many epochs, decaying learning rates). */
static int wants_log(const history *h, int c, int v)
{
    double lo = INFINITY, hi = 0;
    for (size_t r = 0; r < h->nrows; r++)
        for (int k = 0; k < 2; k++) {
            int col = k ? v : c;
            if (col < 0)
                continue;
            double x = h->v[r * h->ncols + (size_t)col];
            if (isnan(x))
                continue;
            if (!(x > 0) || isinf(x))
                return 0;
            lo = x < lo ? x : lo;
            hi = x > hi ? x : hi;
        }
    return hi > 0 && lo < INFINITY && hi / lo > 30;
}

/* The finite values' range of columns c and v (v < 0: none); 0 if none. */
static int range(const history *h, int c, int v, double *lo, double *hi)
{
    int any = 0;
    for (size_t r = 0; r < h->nrows; r++)
        for (int k = 0; k < 2; k++) {
            int col = k ? v : c;
            double x = col < 0 ? NAN : h->v[r * h->ncols + (size_t)col];
            if (!isfinite(x))
                continue;
            if (!any || x < *lo)
                *lo = x;
            if (!any || x > *hi)
                *hi = x;
            any = 1;
        }
    return any;
}

/* The axis label of a quantity: what it measures, by its name's end. */
static const char *y_label(const char *name)
{
    static const char *const by_end[][2] = {
        {"accuracy", "accuracy"}, {"mse", "mean squared error"},
        {"mae", "mean absolute error"}, {"_auc", "ROC AUC"},
        {"_precision", "precision"}, {"_recall", "recall"}, {"_f1", "F1"},
        {"_r2", "R^2"}, {"_weight", "weight exp(-s)"},
        {"_grad_norm", "gradient norm at the shared tensors"}};
    if (!strcmp(name, "lr"))
        return "learning rate";
    if (!strncmp(name, "cos_", 4)) /* grad_diagnostics: two heads' gradients */
        return "cosine of the heads' gradients";
    for (size_t i = 0; i < sizeof by_end / sizeof *by_end; i++)
        if (ends_with(name, by_end[i][0]))
            return by_end[i][1];
    return "loss";
}

/* The epoch of the best (lowest) val_loss, else loss; 0 if none. */
static double best_epoch(const history *h, const char **by)
{
    int c = find_col(h, "val_loss"), e = find_col(h, "epoch");
    *by = "val_loss";
    if (c < 0)
        c = find_col(h, "loss"), *by = "loss";
    double best = INFINITY, at = 0;
    for (size_t r = 0; c >= 0 && e >= 0 && r < h->nrows; r++) {
        double x = h->v[r * h->ncols + (size_t)c];
        if (isfinite(x) && x < best)
            best = x, at = h->v[r * h->ncols + (size_t)e];
    }
    return at;
}

/* An accuracy climbs fast and then creeps: its axis spans the later half
 * of training (earlier, lower points run off the bottom), so 0.995 and
 * 0.999 stay apart. 0 when there is nothing to zoom to. */
static int zoom_accuracy(const history *h, int c, int v, double *lo, double *hi)
{
    int any = 0;
    for (size_t r = h->nrows / 2; r < h->nrows; r++)
        for (int k = 0; k < 2; k++) {
            int col = k ? v : c;
            double x = col < 0 ? NAN : h->v[r * h->ncols + (size_t)col];
            if (!isfinite(x))
                continue;
            *lo = !any || x < *lo ? x : *lo;
            *hi = !any || x > *hi ? x : *hi;
            any = 1;
        }
    if (!any || h->nrows < 4)
        return 0;
    double pad = (*hi - *lo) * 0.15 + 1e-4;
    *lo -= pad, *hi += pad;
    if (*hi > 1 && *lo < 1)
        *hi = 1 + pad / 4;
    return 1;
}

static void write_script(FILE *s, const history *h, const char *title)
{
    size_t panels = 0;
    for (size_t c = 0; c < h->ncols; c++)
        panels += !skipped(h->names[c]);
    size_t cols = panels <= 1 ? 1 : panels <= 4 ? 2 : 3;
    size_t rows = (panels + cols - 1) / cols;
    int dense = h->nrows > 40;
    fprintf(s, "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
               "  set terminal pngcairo noenhanced size %zu,%zu font 'Sans,10'\n"
               "} else {\n"
               "  set terminal png noenhanced size %zu,%zu\n"
               "}\n"
               "set output\n"
               "set datafile missing NaN\n",
            480 * cols, 320 * rows + 40, 480 * cols, 320 * rows + 40);
    fputs("$d << EOD\n", s);
    for (size_t r = 0; r < h->nrows; r++) {
        for (size_t c = 0; c < h->ncols; c++) {
            double x = h->v[r * h->ncols + c];
            if (isfinite(x))
                fprintf(s, "%s%.9g", c ? " " : "", x);
            else
                fprintf(s, "%sNaN", c ? " " : "");
        }
        fputc('\n', s);
    }
    fputs("EOD\n", s);
    fputs("set key top right box opaque samplen 2\n"
          "set grid lc rgb '#dddddd'\n"
          "set xlabel 'epoch' offset 0,0.5\n"
          "set format y '%g'\n"
          "set mxtics\n"
          "set style line 1 lc rgb '#1f77b4' lw 2 pt 7 ps 0.6\n"
          "set style line 2 lc rgb '#d62728' lw 2 pt 5 ps 0.6\n", s);
    if (h->nrows == 1)
        fputs("set xrange [0:2]\n", s);
    else /* the epochs' range, a little room for the end points */
        fputs("set autoscale xfix\nset offsets graph 0.02, graph 0.02, 0, 0\n", s);
    const char *by;
    double best = best_epoch(h, &by);
    char full[4400];
    if (best > 0 && h->nrows > 1) { /* a dashed line at the best epoch */
        fprintf(s, "set arrow 1 from %.9g, graph 0 to %.9g, graph 1 nohead dt 2 "
                   "lc rgb '#555555'\n", best, best);
        snprintf(full, sizeof full, "%s   (dashed: the best %s, epoch %.0f)", title,
                 by, best);
    } else
        snprintf(full, sizeof full, "%s", title);
    fprintf(s, "set multiplot layout %zu,%zu title ", rows, cols);
    put_quoted(s, full);
    fputs(" font ',12'\n", s);
    for (size_t c = 0; c < h->ncols; c++) {
        if (skipped(h->names[c]))
            continue;
        char val[512];
        snprintf(val, sizeof val, "val_%s", h->names[c]);
        int v = find_col(h, val);
        fputs("set title ", s);
        put_quoted(s, h->names[c]);
        fputs(" font ',11'\nset ylabel ", s);
        put_quoted(s, y_label(h->names[c]));
        fputs(" offset 1,0\n", s);
        fputs(wants_log(h, (int)c, v) ? "set logscale y\n" : "unset logscale y\n",
              s);
        double lo = 0, hi = 0;
        if (range(h, (int)c, v, &lo, &hi) && lo == hi) /* a constant: centred */
            fprintf(s, "set yrange [%.9g:%.9g]\n", lo - (lo ? fabs(lo) / 2 : 1),
                    hi + (hi ? fabs(hi) / 2 : 1));
        else if (!strcmp(y_label(h->names[c]), "accuracy") &&
                 zoom_accuracy(h, (int)c, v, &lo, &hi))
            fprintf(s, "set yrange [%.9g:%.9g]\n", lo, hi);
        else
            fputs("set autoscale y\n", s);
        /* accuracies climb: their key goes to the bottom */
        fputs(v < 0 ? "unset key\n"
              : strstr(h->names[c], "accuracy") ? "set key bottom right\n"
                                                : "set key top right\n", s);
        const char *style = dense ? "lines" : "linespoints";
        fprintf(s, "plot $d using 1:%zu with %s ls 1 %s", c + 1, style,
                v >= 0 ? "title 'train'" : "notitle");
        if (v >= 0)
            fprintf(s, ", $d using 1:%d with %s ls 2 title 'validation'", v + 1,
                    style);
        fputc('\n', s);
    }
    fputs("unset multiplot\n", s);
}

/* ---- running gnuplot -------------------------------------------------- */

/* Runs gnuplot with the script on stdin and stdout into fd out. */
static int run_gnuplot(const char *prog, const char *script, size_t len, int out)
{
    int pipefd[2];
    if (pipe(pipefd))
        return mimo_error(MIMO_EIO, "pipe: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out, 1);
    posix_spawn_file_actions_addclose(&fa, pipefd[0]);
    posix_spawn_file_actions_addclose(&fa, pipefd[1]);
    posix_spawn_file_actions_addclose(&fa, out);
    char *argv[] = {(char *)prog, NULL};
    pid_t pid;
    int e = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[0]);
    if (e) {
        close(pipefd[1]);
        if (e == ENOENT)
            return mimo_error(MIMO_EIO, "%s not found: mimo plot needs gnuplot "
                              "(Debian: apt-get install gnuplot-nox)", prog);
        return mimo_error(MIMO_EIO, "cannot run %s: %s", prog, strerror(e));
    }
    /* a gnuplot that dies early must not kill us with SIGPIPE */
    struct sigaction ign, old;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, &old);
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(pipefd[1], script + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break; /* EPIPE: gnuplot's exit status tells why */
        done += (size_t)w;
    }
    close(pipefd[1]);
    sigaction(SIGPIPE, &old, NULL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return mimo_error(MIMO_EIO, "waiting for %s: %s", prog, strerror(errno));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        return mimo_error(MIMO_EIO, "%s could not be run (exit 127): mimo plot "
                          "needs gnuplot (Debian: apt-get install gnuplot-nox)",
                          prog);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return mimo_error(MIMO_EIO, "%s failed (%s %d; its messages are above)",
                          prog, WIFEXITED(status) ? "exit status" : "signal",
                          WIFEXITED(status) ? WEXITSTATUS(status)
                                            : WTERMSIG(status));
    return 0;
}

/* The file at path starts with the PNG signature. */
static int is_png(const char *path)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char b[8];
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t n = fread(b, 1, 8, f);
    fclose(f);
    return n == 8 && memcmp(b, sig, 8) == 0;
}

int mimo_plot_history(const mimo_plot_opts *o)
{
    if (!o->history || !o->out)
        return mimo_error(MIMO_EINVAL, "plot: a history and an output file are "
                          "required");
    struct stat st;
    char *hpath = NULL;
    if (stat(o->history, &st) == 0 && S_ISDIR(st.st_mode))
        hpath = mimo_strcat2(o->history, "/history.csv");
    else
        hpath = mimo_strcat2(o->history, "");
    mimo_atomic a;
    if (!hpath)
        return mimo_error(MIMO_ENOMEM, "out of memory");
    history h;
    char *script = NULL;
    size_t len = 0;
    int rc = parse_history(hpath, &h);
    if (!rc) {
        FILE *s = open_memstream(&script, &len);
        if (!s)
            rc = mimo_error(MIMO_ENOMEM, "out of memory");
        else {
            char deft[4200];
            snprintf(deft, sizeof deft, "mimo: %s", hpath);
            write_script(s, &h, o->title ? o->title : deft);
            if (fclose(s))
                rc = mimo_error(MIMO_ENOMEM, "out of memory");
        }
    }
    int begun = 0;
    if (!rc && !(rc = mimo_check_not_input(o->out, (const char *const[]){hpath}, 1)) &&
        !(rc = mimo_mkdirs_for(o->out)) && !(rc = mimo_atomic_begin(&a, o->out)))
        begun = 1;
    if (!rc) /* gnuplot writes the temporary mimo created, through its descriptor */
        rc = run_gnuplot(o->gnuplot ? o->gnuplot : "gnuplot", script, len, a.fd);
    if (!rc && !is_png(a.tmp))
        rc = mimo_error(MIMO_EIO, "gnuplot wrote no PNG (does it have the "
                        "pngcairo or png terminal?)");
    if (!rc)
        rc = mimo_atomic_commit(&a, NULL);
    if (rc && begun)
        mimo_atomic_abort(&a);
    free(script);
    history_free(&h);
    free(hpath);
    return rc;
}
