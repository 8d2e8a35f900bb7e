/* history.c — the history columns and history.csv (see history.h). */
#define _DEFAULT_SOURCE /* getline, O_NOFOLLOW */
#include "base/fsutil.h"
#include "train/history.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/metrics.h"
#include "core/model.h"
#include "mimo/error.h"

static int add_col(mimo_history *h, const char *prefix, const char *name)
{
    char **nn = realloc(h->names, sizeof *nn * (size_t)(h->n_cols + 1));
    if (!nn)
        return mimo_error(MIMO_ENOMEM, "out of memory");
    h->names = nn;
    size_t n = strlen(prefix) + strlen(name) + 1;
    if (!(h->names[h->n_cols] = malloc(n)))
        return mimo_error(MIMO_ENOMEM, "out of memory");
    snprintf(h->names[h->n_cols++], n, "%s%s", prefix, name);
    return 0;
}

/* What a head logs after its loss: its metrics, its labelled rows (with
 * `missing`) and its weight in the total (learned, or mgda_ub's epoch
 * mean: training only). */
static int head_cols(mimo_history *h, const char *pre, const mimo_output_spec *o,
                     int learned)
{
    char buf[512];
    int rc = 0;
    for (int j = 0; j < MIMO_METRIC_COUNT && !rc; j++)
        if (o->metrics & (1u << j)) {
            snprintf(buf, sizeof buf, "%s_%s", o->name, mimo_metric_name(j));
            rc = add_col(h, pre, buf);
        }
    if (!rc && o->missing)
        snprintf(buf, sizeof buf, "%s_labelled", o->name), rc = add_col(h, pre, buf);
    if (!rc && learned && !*pre)
        snprintf(buf, sizeof buf, "%s_weight", o->name), rc = add_col(h, pre, buf);
    return rc;
}

/* <head>_weight: learned (uncertainty, gradnorm) or chosen per step
 * (mgda_ub: the epoch's mean) */
static int weights_logged(const mimo_graph *g)
{
    return mimo_graph_log_vars(g) > 0 || mimo_graph_gradnorm(g, NULL) > 0 ||
           mimo_graph_spec(g)->train.task_balancing == MIMO_BALANCING_MGDA_UB;
}

static int diag_logged(const mimo_graph *g)
{
    return mimo_graph_diag_on(g) && mimo_graph_spec(g)->train.grad_diagnostics;
}

/* grad_diagnostics (training only): <head>_grad_norm for each head with a
 * gradient at the shared representation, cos_<a>_<b> for each pair. */
static int diag_cols(mimo_history *h, const mimo_graph *g)
{
    char buf[1024];
    int T = mimo_graph_n_heads(g), rc = 0;
    for (int a = 0; a < T && !rc && diag_logged(g); a++)
        if (mimo_graph_diag_covers(g, a)) {
            snprintf(buf, sizeof buf, "%s_grad_norm", mimo_graph_head_spec(g, a)->name);
            rc = add_col(h, "", buf);
        }
    for (int a = 0; a < T && !rc && diag_logged(g); a++)
        for (int b = a + 1; b < T && !rc; b++)
            if (mimo_graph_diag_covers(g, a) && mimo_graph_diag_covers(g, b)) {
                snprintf(buf, sizeof buf, "cos_%s_%s", mimo_graph_head_spec(g, a)->name,
                         mimo_graph_head_spec(g, b)->name);
                rc = add_col(h, "", buf);
            }
    return rc;
}

static int diag_fill(const mimo_history *h, const mimo_stats *train, int c)
{
    const mimo_graph *g = h->g;
    int T = mimo_graph_n_heads(g);
    for (int a = 0; a < T && diag_logged(g); a++)
        if (mimo_graph_diag_covers(g, a))
            h->values[c++] = train->metrics ? mimo_metrics_grad_norm(train->metrics, a)
                                            : NAN;
    for (int a = 0; a < T && diag_logged(g); a++)
        for (int b = a + 1; b < T; b++)
            if (mimo_graph_diag_covers(g, a) && mimo_graph_diag_covers(g, b))
                h->values[c++] = train->metrics
                                     ? mimo_metrics_grad_cos(train->metrics, a, b)
                                     : NAN;
    return c;
}

/* The layers that log their output's means (softmax's log_mean; training
 * only): <layer>_mean_<j> for each value j. */
static int mean_cols(mimo_history *h, const mimo_graph *g)
{
    char buf[512];
    const char *name;
    int w, rc = 0;
    for (int i = 0; !rc && mimo_metrics_mean_node(g, i, &name, &w); i++)
        for (int j = 0; j < w && !rc; j++) {
            snprintf(buf, sizeof buf, "%s_mean_%d", name, j);
            rc = add_col(h, "", buf);
        }
    return rc;
}

static int mean_fill(const mimo_history *h, const mimo_stats *train, int c)
{
    const char *name;
    int w;
    for (int i = 0; mimo_metrics_mean_node(h->g, i, &name, &w); i++)
        for (int j = 0; j < w; j++)
            h->values[c++] = train->metrics ? mimo_metrics_mean(train->metrics, i, j)
                                            : NAN;
    return c;
}

/* epoch, loss, <head>_loss, <head>_<metric>, <head>_labelled, <head>_weight,
 * [<head>_grad_norm, cos_<a>_<b>], [<layer>_mean_<j>], val_..., lr,
 * seconds, samples_per_s */
int mimo_history_init(mimo_history *h, const mimo_graph *g, int have_val)
{
    char buf[512];
    memset(h, 0, sizeof *h);
    h->g = g, h->have_val = have_val;
    int rc = add_col(h, "", "epoch"), learned = weights_logged(g);
    for (int v = 0; v < 1 + have_val && !rc; v++) {
        const char *pre = v ? "val_" : "";
        rc = add_col(h, pre, "loss");
        for (int k = 0; k < mimo_graph_n_heads(g) && !rc; k++) {
            const mimo_output_spec *o = mimo_graph_head_spec(g, k);
            snprintf(buf, sizeof buf, "%s_loss", o->name);
            if (!(rc = add_col(h, pre, buf)))
                rc = head_cols(h, pre, o, learned);
        }
        if (!v && !rc)
            rc = diag_cols(h, g);
        if (!v && !rc)
            rc = mean_cols(h, g);
    }
    for (int j = 0; j < 3 && !rc; j++)
        rc = add_col(h, "", (const char *[]){"lr", "seconds", "samples_per_s"}[j]);
    if (!rc && !(h->values = calloc((size_t)h->n_cols, sizeof *h->values)))
        rc = mimo_error(MIMO_ENOMEM, "out of memory");
    return rc;
}

void mimo_history_free(mimo_history *h)
{
    for (int i = 0; i < h->n_cols; i++)
        free(h->names[i]);
    free(h->names);
    free(h->values);
    memset(h, 0, sizeof *h);
}

int mimo_history_col(const mimo_history *h, const char *name)
{
    for (int i = 0; i < h->n_cols; i++)
        if (strcmp(h->names[i], name) == 0)
            return i;
    return -1;
}

double mimo_history_value(const mimo_history *h, const char *name)
{
    int c = mimo_history_col(h, name);
    return c >= 0 ? h->values[c] : NAN;
}

int mimo_history_monitor(const mimo_history *h, const char *given,
                         const char *what, const char *file, char *out,
                         size_t len)
{
    snprintf(out, len, "%s", given ? given : h->have_val ? "val_loss" : "loss");
    if (mimo_history_col(h, out) >= 0 && strcmp(out, "epoch") && strcmp(out, "seconds"))
        return 0;
    size_t cap = 1, used = 0;
    for (int i = 1; i < h->n_cols - 2; i++)
        cap += strlen(h->names[i]) + 2;
    char *list = malloc(cap);
    if (!list)
        return mimo_error(MIMO_ENOMEM, "out of memory");
    list[0] = '\0';
    for (int i = 1; i < h->n_cols - 2; i++)
        used += (size_t)snprintf(list + used, cap - used, "%s%s", used ? ", " : "",
                                 h->names[i]);
    int rc = mimo_error(MIMO_EINVAL, "%s: %s monitor '%s' is not a logged "
                        "quantity (one of: %s)", file, what, out, list);
    free(list);
    return rc;
}

void mimo_history_fill(mimo_history *h, long epoch, const mimo_stats *train,
                       const mimo_stats *val, double lr, double secs,
                       double samples_per_s)
{
    int c = 0;
    h->values[c++] = (double)(epoch + 1);
    for (int v = 0; v < 1 + h->have_val; v++) {
        const mimo_stats *s = v ? val : train;
        h->values[c++] = s->loss;
        for (int k = 0; k < mimo_graph_n_heads(h->g); k++) {
            const mimo_output_spec *o = mimo_graph_head_spec(h->g, k);
            h->values[c++] = s->head[k].loss;
            for (int j = 0; j < MIMO_METRIC_COUNT; j++)
                if (o->metrics & (1u << j))
                    h->values[c++] = mimo_head_metric(&s->head[k], j);
            if (o->missing)
                h->values[c++] = s->head[k].labelled;
            if (weights_logged(h->g) && !v)
                h->values[c++] = s->head[k].task_weight;
        }
        if (!v)
            c = mean_fill(h, train, diag_fill(h, train, c));
    }
    h->values[c++] = lr;
    h->values[c++] = secs;
    h->values[c++] = samples_per_s;
}

int mimo_stats_check_finite(const mimo_stats *st, const mimo_graph *g,
                            const char *what, const char *data)
{
    for (int h = 0; h < st->n_heads; h++) {
        const mimo_head_stats *s = &st->head[h];
        if (s->weight > 0 && !isfinite(s->loss))
            return mimo_error(MIMO_ENUM, "%s on %s: the loss of head '%s' is not finite "
                       "(%s over %.0f labelled rows): the model's outputs overflow "
                       "or are NaN on this data (inputs far outside the training "
                       "data's range, or parameters that diverged)", what, data,
                       mimo_graph_head_spec(g, h)->name,
                       isnan(s->loss) ? "NaN" : s->loss > 0 ? "+inf" : "-inf",
                       s->labelled);
    }
    return 0;
}

/* The header line, malloc'd (NULL: out of memory). */
static char *header(const mimo_history *h)
{
    size_t cap = 2, used = 0;
    for (int i = 0; i < h->n_cols; i++)
        cap += strlen(h->names[i]) + 1;
    char *s = malloc(cap);
    if (s) {
        s[0] = '\0';
        for (int i = 0; i < h->n_cols; i++)
            used += (size_t)snprintf(s + used, cap - used, "%s%s", i ? "," : "",
                                     h->names[i]);
    }
    return s;
}

/* The rows of epochs 1..keep of an existing file with the same header. */
static int kept_rows(FILE *f, const char *head, long keep, char **kept)
{
    char *line = NULL;
    size_t lcap = 0, len = 0, cap = 0;
    int first = 1, same = 0;
    ssize_t n;
    *kept = NULL;
    while ((n = getline(&line, &lcap, f)) > 0) {
        if (first) {
            same = strncmp(line, head, strlen(head)) == 0;
            first = 0;
            continue;
        }
        if (!same || atol(line) > keep || atol(line) < 1)
            continue;
        if (len + (size_t)n + 1 > cap) {
            char *p = realloc(*kept, cap = 2 * (len + (size_t)n + 1));
            if (!p) {
                free(line);
                return mimo_error(MIMO_ENOMEM, "out of memory");
            }
            *kept = p;
        }
        memcpy(*kept + len, line, (size_t)n + 1);
        len += (size_t)n;
    }
    free(line);
    return 0;
}

int mimo_history_prepare(const mimo_history *h, const char *path, long keep)
{
    char *head = header(h), *kept = NULL;
    if (!head)
        return mimo_error(MIMO_ENOMEM, "out of memory");
    /* the run directory's history: absent, or a regular file (a FIFO
     * planted there would block) */
    int fd = -1, rc = access(path, F_OK) ? 0 : mimo_open_regular(path, NULL, &fd);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (fd >= 0 && !f)
        close(fd);
    if (!rc && f)
        rc = kept_rows(f, head, keep, &kept);
    if (f)
        fclose(f);
    /* replaced atomically: a full disk leaves the old history whole */
    size_t len = strlen(head) + 1 + (kept ? strlen(kept) : 0);
    char *text = rc ? NULL : malloc(len + 1);
    mimo_atomic a;
    if (!rc && !text)
        rc = mimo_error(MIMO_ENOMEM, "out of memory");
    if (!rc)
        snprintf(text, len + 1, "%s\n%s", head, kept ? kept : "");
    if (!rc && !(rc = mimo_atomic_begin(&a, path))) {
        if (!(rc = mimo_atomic_write(&a, text, len)))
            rc = mimo_atomic_commit(&a, NULL);
        if (rc)
            mimo_atomic_abort(&a);
    }
    free(text);
    free(head);
    free(kept);
    return rc;
}

int mimo_history_append(const mimo_history *h, const char *path)
{
    /* O_NOFOLLOW: the file prepare wrote, never a link put in its place */
    int fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
    FILE *f = fd >= 0 ? fdopen(fd, "a") : NULL;
    if (fd >= 0 && !f)
        close(fd);
    if (!f)
        return mimo_error(MIMO_EIO, "%s: cannot append: %s", path, strerror(errno));
    for (int i = 0; i < h->n_cols; i++)
        fprintf(f, i == 0 ? "%.0f" : ",%.9g", h->values[i]);
    fputc('\n', f);
    int bad = fflush(f) ? errno : 0;
    if (fclose(f) && !bad)
        bad = errno;
    return bad ? mimo_error(MIMO_EIO, "%s: cannot append: %s", path, strerror(bad)) : 0;
}
