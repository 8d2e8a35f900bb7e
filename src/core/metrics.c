/* metrics.c — the heads' metrics over an epoch (metrics.h): per labelled
 * row, unweighted (sample and class weights shape the loss only):
 *   accuracy        binary: outputs > 0.5 agreeing with targets > 0.5,
 *                   averaged over units; categorical: argmax = label
 *   mse, mae        over units (a sparse label as its one-hot row)
 *   top_k_accuracy  the label is among the k highest outputs (ties count
 *                   in, as tf.math.in_top_k)
 *   precision, recall, f1
 *                   binary: of "output > 0.5" against "target > 0.5",
 *                   pooled over units (Keras); categorical: of the argmax,
 *                   per class, averaged over the classes that occur as
 *                   label or prediction (scikit-learn's macro average); 0
 *                   where a ratio has nothing to count
 *   auc             ROC AUC, exact: binary pools every unit's (output,
 *                   target > 0.5); categorical averages one-vs-rest over
 *                   the classes with positives and negatives (macro);
 *                   NaN when no class has both, and NaN when any
 *                   score is NaN (a NaN has no rank: the head's outputs
 *                   overflowed; the loss is then non-finite too, and
 *                   the other metrics count a NaN output as no hit);
 *                   infinite scores rank as any other
 *   r2              1 - SSE / SST per unit with SST > 0, averaged
 *                   (SST below 1e-10 of the sum of squared targets counts
 *                   as 0: constant targets, up to rounding)
 * A head without a labelled row has NaN for every metric and its loss.
 * All of it is sums that add over ranks, except the AUC, which keeps
 * every labelled row's scores and is exact on any number of ranks (the
 * scores go to rank 0, which computes it for all: mimo_metrics_fix_auc). */
#include "core/metrics.h"

#include <stdlib.h>
#include <string.h>
#include <tgmath.h>

#include "core/model.h"
#include "mimo/error.h"
#include "core/graph_impl.h"
#include "core/kind.h"

/* The sums of a head, from its offset: these, then per class true
 * positives, false positives and false negatives, then per unit the sum
 * of targets, of squared targets and of squared errors. */
enum { S_LOSS, S_WEIGHT, S_LABELLED, S_ACC, S_MSE, S_MAE, S_TOP_K, S_FIXED };

/* An AUC entry while sorting. */
typedef struct {
    mimo_real s;
    unsigned char p;
} scored;

typedef struct {
    unsigned bits;
    int binary, categorical, sparse;
    int units, tw, classes; /* classes: counted for precision/recall/f1 */
    int lists;              /* AUC: 1 (binary) or units (one-vs-rest), 0 */
    int r2_units;
    size_t off;             /* of its sums */
    size_t n, cap;          /* AUC entries */
    mimo_real *score;
    unsigned char *pos;
    scored *work;           /* one list's entries, sorted: cap / lists + 1 */
    int auc_fixed;          /* auc set by mimo_metrics_fix_auc since the */
    double auc;             /* last change of the entries */
} head_sums;

struct mimo_metrics {
    const mimo_graph *g;
    int n_heads;
    head_sums *h;
    size_t n_sums;
    double *sums;
    mimo_real *prob;        /* one row of a from_logits head's probabilities */
    int diag_T;             /* grad_diagnostics: n_heads (else 0); the sums */
    size_t diag_off;        /* from diag_off: the Gram matrix (T x T), then
                             * the steps it sums */
    int bal_T;              /* task_balancing: mgda_ub: n_heads (else 0) */
    size_t bal_off;         /* from bal_off: each head's sum of its weight
                             * alpha_h over the steps, then the steps */
    int n_mean;             /* the layers whose output means are logged */
    int *mean_node;         /* (kind's log_mean): their nodes; the sums */
    size_t mean_off;        /* from mean_off: each one's width of sums of
                             * its values over the rows, then the rows */
    int mean_w;             /* the widths' total */
};

/* Whether node n's output means are logged (its kind's log_mean). */
static int logs_mean(const mimo_node *n)
{
    return n->kind && n->kind->log_mean && n->kind->log_mean(n);
}

int mimo_metrics_mean_node(const mimo_graph *g, int i, const char **name, int *width)
{
    for (int k = 0; k < g->n_nodes; k++)
        if (logs_mean(&g->nodes[k]) && i-- == 0) {
            *name = g->nodes[k].name, *width = g->nodes[k].width;
            return 1;
        }
    return 0;
}

static void describe(const mimo_graph *g, int h, head_sums *s)
{
    const mimo_output_spec *o = g->heads[h].spec;
    unsigned b = o->metrics;
    s->bits = b;
    s->units = g->heads[h].units;
    s->tw = g->heads[h].target_width;
    s->binary = o->loss == MIMO_LOSS_BCE;
    s->sparse = o->loss == MIMO_LOSS_SPARSE_CCE;
    s->categorical = s->sparse || o->loss == MIMO_LOSS_CCE;
    if (b & (MIMO_METRIC_PRECISION | MIMO_METRIC_RECALL | MIMO_METRIC_F1))
        s->classes = s->categorical ? s->units : s->binary ? 1 : 0;
    if (b & MIMO_METRIC_AUC)
        s->lists = s->categorical ? s->units : s->binary ? 1 : 0;
    s->r2_units = b & MIMO_METRIC_R2 ? s->units : 0;
}

int mimo_metrics_create(const mimo_graph *g, mimo_metrics **out)
{
    mimo_metrics *m = calloc(1, sizeof *m);
    *out = NULL;
    if (!m)
        return mimo_error(MIMO_ENOMEM, "out of memory for the metrics");
    m->g = g;
    m->n_heads = g->n_heads;
    m->h = calloc((size_t)g->n_heads, sizeof *m->h);
    int maxu = 1;
    for (int h = 0; m->h && h < g->n_heads; h++) {
        head_sums *s = &m->h[h];
        describe(g, h, s);
        s->off = m->n_sums;
        m->n_sums += S_FIXED + 3 * (size_t)s->classes + 3 * (size_t)s->r2_units;
        maxu = s->units > maxu ? s->units : maxu;
    }
    if (mimo_graph_diag_on(g) && g->spec->train.grad_diagnostics) {
        m->diag_T = g->n_heads;
        m->diag_off = m->n_sums;
        m->n_sums += (size_t)g->n_heads * (size_t)g->n_heads + 1;
    }
    if (g->spec->train.task_balancing == MIMO_BALANCING_MGDA_UB) {
        m->bal_T = g->n_heads;
        m->bal_off = m->n_sums;
        m->n_sums += (size_t)g->n_heads + 1;
    }
    m->mean_off = m->n_sums;
    for (int k = 0; k < g->n_nodes; k++)
        if (logs_mean(&g->nodes[k]))
            m->n_mean++, m->mean_w += g->nodes[k].width;
    m->n_sums += m->mean_w + (m->n_mean > 0);
    m->mean_node = malloc(sizeof(int) * (size_t)(m->n_mean + 1));
    for (int k = 0, i = 0; m->mean_node && k < g->n_nodes; k++)
        if (logs_mean(&g->nodes[k]))
            m->mean_node[i++] = k;
    m->sums = calloc(m->n_sums + 1, sizeof *m->sums);
    m->prob = malloc(sizeof(mimo_real) * (size_t)maxu);
    if (!m->h || !m->sums || !m->prob || !m->mean_node) {
        mimo_metrics_free(&m);
        return mimo_error(MIMO_ENOMEM, "out of memory for the metrics");
    }
    *out = m;
    return 0;
}

void mimo_metrics_free(mimo_metrics **mp)
{
    mimo_metrics *m = mp ? *mp : NULL;
    if (!m)
        return;
    for (int h = 0; m->h && h < m->n_heads; h++) {
        free(m->h[h].score);
        free(m->h[h].pos);
        free(m->h[h].work);
    }
    free(m->h);
    free(m->sums);
    free(m->prob);
    free(m->mean_node);
    free(m);
    *mp = NULL;
}

void mimo_metrics_reset(mimo_metrics *m)
{
    memset(m->sums, 0, sizeof *m->sums * m->n_sums);
    for (int h = 0; h < m->n_heads; h++)
        m->h[h].n = 0, m->h[h].auc_fixed = 0;
}

size_t mimo_metrics_n_sums(const mimo_metrics *m) { return m->n_sums; }
double *mimo_metrics_sums(mimo_metrics *m) { return m->sums; }

size_t mimo_metrics_scores(const mimo_metrics *m, int h, const mimo_real **score,
                           const unsigned char **positive)
{
    *score = m->h[h].score, *positive = m->h[h].pos;
    return m->h[h].n;
}

size_t mimo_metrics_layout(const mimo_metrics *m, double *out)
{
    enum { PER_HEAD = 5 };
    for (int h = 0; out && h < m->n_heads; h++) {
        const head_sums *s = &m->h[h];
        double *o = out + (size_t)h * PER_HEAD;
        o[0] = s->bits, o[1] = s->units, o[2] = s->classes, o[3] = s->lists;
        o[4] = s->r2_units;
    }
    size_t n = (size_t)m->n_heads * PER_HEAD;
    if (out && m->diag_T) /* the Gram matrix's sums (only when they exist) */
        out[n] = m->diag_T;
    n += m->diag_T > 0;
    if (out && m->bal_T) /* the balancing weights' sums (likewise) */
        out[n] = m->bal_T;
    n += m->bal_T > 0;
    if (out && m->n_mean) /* the logged means' sums (likewise) */
        out[n] = m->mean_w;
    return n + (m->n_mean > 0);
}

void mimo_metrics_add_means(mimo_metrics *m, int b)
{
    double *s = m->sums + m->mean_off;
    for (int i = 0; i < m->n_mean; i++) {
        const mimo_node *n = &m->g->nodes[m->mean_node[i]];
        size_t w = (size_t)n->width;
        for (size_t r = 0; r < (size_t)b; r++)
            for (size_t j = 0; j < w; j++)
                s[j] += n->y[r * w + j];
        s += w;
    }
    if (m->n_mean)
        *s += b;
}

double mimo_metrics_mean(const mimo_metrics *m, int i, int j)
{
    const double *s = m->sums + m->mean_off;
    if (i < 0 || i >= m->n_mean)
        return NAN;
    for (int k = 0; k < i; k++)
        s += m->g->nodes[m->mean_node[k]].width;
    double rows = m->sums[m->mean_off + (size_t)m->mean_w];
    return rows > 0 ? s[j] / rows : NAN;
}

void mimo_metrics_add_gram(mimo_metrics *m, const double *gram, double steps)
{
    size_t n = (size_t)m->diag_T * (size_t)m->diag_T;
    for (size_t i = 0; i < n; i++)
        m->sums[m->diag_off + i] += gram[i];
    if (n)
        m->sums[m->diag_off + n] += steps;
}

void mimo_metrics_add_balance(mimo_metrics *m, const double *alpha, double steps)
{
    for (int h = 0; h < m->bal_T; h++)
        m->sums[m->bal_off + (size_t)h] += alpha[h] * steps;
    if (m->bal_T)
        m->sums[m->bal_off + (size_t)m->bal_T] += steps;
}

double mimo_metrics_balance_weight(const mimo_metrics *m, int h)
{
    double steps = m->bal_T ? m->sums[m->bal_off + (size_t)m->bal_T] : 0;
    return steps > 0 && h >= 0 && h < m->bal_T ? m->sums[m->bal_off + (size_t)h] / steps
                                                : NAN;
}

double mimo_metrics_grad_norm(const mimo_metrics *m, int h)
{
    int T = m->diag_T;
    const double *G = m->sums + m->diag_off;
    double steps = T ? G[(size_t)T * (size_t)T] : 0;
    return steps > 0 ? sqrt(G[h * T + h] / steps) : NAN;
}

double mimo_metrics_grad_cos(const mimo_metrics *m, int a, int b)
{
    int T = m->diag_T;
    const double *G = m->sums + m->diag_off;
    double d = T ? sqrt(G[a * T + a] * G[b * T + b]) : 0;
    return d > 0 ? G[a * T + b] / d : NAN;
}

int mimo_metrics_has_scores(const mimo_metrics *m, int h) { return m->h[h].lists > 0; }

static int reserve(head_sums *s, size_t n)
{
    if (n <= s->cap)
        return 0;
    size_t cap = s->cap ? s->cap : 1024;
    while (cap < n)
        cap *= 2;
    mimo_real *sc = realloc(s->score, sizeof *sc * cap);
    if (sc)
        s->score = sc;
    unsigned char *p = sc ? realloc(s->pos, cap) : NULL;
    if (p)
        s->pos = p;
    /* the sort's buffer now, so that the values never allocate */
    scored *w = p ? realloc(s->work, sizeof *w * (cap / (size_t)s->lists + 1)) : NULL;
    if (!w)
        return mimo_error(MIMO_ENOMEM, "out of memory for %zu AUC scores", n);
    s->work = w, s->cap = cap;
    return 0;
}

int mimo_metrics_set_scores(mimo_metrics *m, int h, size_t n, mimo_real **score,
                            unsigned char **positive)
{
    head_sums *s = &m->h[h];
    int rc = reserve(s, n);
    if (rc)
        return rc;
    s->n = n, s->auc_fixed = 0;
    *score = s->score, *positive = s->pos;
    return 0;
}

int mimo_metrics_copy(mimo_metrics *dst, const mimo_metrics *src)
{
    memcpy(dst->sums, src->sums, sizeof *dst->sums * src->n_sums);
    for (int h = 0; h < src->n_heads; h++) {
        const head_sums *s = &src->h[h];
        mimo_real *sc;
        unsigned char *p;
        int rc = mimo_metrics_set_scores(dst, h, s->n, &sc, &p);
        if (rc)
            return rc;
        if (s->n) {
            memcpy(sc, s->score, sizeof *sc * s->n);
            memcpy(p, s->pos, s->n);
        }
        dst->h[h].auc_fixed = s->auc_fixed, dst->h[h].auc = s->auc;
    }
    return 0;
}

/* ---- one row ------------------------------------------------------------ */

static int argmax(const mimo_real *v, int n)
{
    int k = 0;
    for (int j = 1; j < n; j++)
        if (v[j] > v[k])
            k = j;
    return k;
}

/* Target of unit j: the one-hot of a sparse label, else t[j]. */
static double target(const head_sums *s, const mimo_real *t, int j)
{
    return s->sparse ? (double)(j == (int)t[0]) : (double)t[j];
}

static void add_errors(const head_sums *s, const mimo_real *y, const mimo_real *t,
                       double *d)
{
    int n = s->units;
    if (s->bits & (MIMO_METRIC_MSE | MIMO_METRIC_MAE)) {
        double se = 0, ae = 0;
        for (int j = 0; j < n; j++) {
            double e = y[j] - target(s, t, j);
            se += e * e, ae += fabs(e);
        }
        d[S_MSE] += se / n, d[S_MAE] += ae / n;
    }
    if (s->r2_units) {
        double *st = d + S_FIXED + 3 * s->classes, *stt = st + n, *sse = stt + n;
        for (int j = 0; j < n; j++) {
            double tj = target(s, t, j), e = y[j] - tj;
            st[j] += tj, stt[j] += tj * tj, sse[j] += e * e;
        }
    }
}

/* accuracy, top_k, and the class counts. */
static void add_classes(const head_sums *s, int top_k, const mimo_real *y,
                        const mimo_real *t, double *d)
{
    int n = s->units, C = s->classes;
    double *tp = d + S_FIXED, *fp = tp + C, *fn = fp + C;
    if (s->categorical || (!s->binary && n > 1)) { /* argmax against the label */
        int label = s->sparse ? (int)t[0] : argmax(t, n), pred = argmax(y, n);
        d[S_ACC] += pred == label;
        if (s->bits & MIMO_METRIC_TOP_K) {
            int above = 0;
            for (int j = 0; j < n; j++)
                above += y[j] > y[label];
            d[S_TOP_K] += above < top_k;
        }
        if (C && pred == label)
            tp[label]++;
        else if (C)
            fp[pred]++, fn[label]++;
        return;
    }
    int hits = 0;
    for (int j = 0; j < n; j++) {
        int p = y[j] > (mimo_real)0.5, a = t[j] > (mimo_real)0.5;
        hits += p == a;
        if (C)
            tp[0] += p && a, fp[0] += p && !a, fn[0] += !p && a;
    }
    d[S_ACC] += (double)hits / n;
}

static void add_scores(head_sums *s, const mimo_real *y, const mimo_real *t)
{
    int n = s->units;
    size_t k = s->n;
    if (s->binary)
        for (int j = 0; j < n; j++, k++)
            s->score[k] = y[j], s->pos[k] = t[j] > (mimo_real)0.5;
    else {
        int label = s->sparse ? (int)t[0] : argmax(t, n);
        for (int j = 0; j < n; j++, k++)
            s->score[k] = y[j], s->pos[k] = j == label;
    }
    s->n = k;
}

int mimo_metrics_add(mimo_metrics *m, int h, const mimo_head_stats *batch,
                     const mimo_real *t, const mimo_real *w, int b)
{
    const mimo_head *hd = &m->g->heads[h];
    head_sums *s = &m->h[h];
    double *d = m->sums + s->off;
    int rc;
    d[S_LOSS] += batch->loss;
    d[S_WEIGHT] += batch->weight;
    d[S_LABELLED] += batch->labelled;
    if (!s->bits)
        return 0; /* only the loss: no probabilities, no counts */
    if (s->lists && (rc = reserve(s, s->n + (size_t)b * (size_t)s->units)))
        return rc;
    s->auc_fixed = 0;
    const mimo_real *out = m->g->nodes[hd->node].y;
    for (int r = 0; r < b; r++) {
        if (w && w[r] < 0)
            continue;
        const mimo_real *y = out + (size_t)r * s->units, *tr = t + (size_t)r * s->tw;
        if (hd->spec->from_logits) {
            mimo_head_probabilities(hd, y, m->prob);
            y = m->prob;
        }
        if (s->bits & (MIMO_METRIC_ACCURACY | MIMO_METRIC_TOP_K) || s->classes)
            add_classes(s, hd->spec->top_k, y, tr, d);
        add_errors(s, y, tr, d);
        if (s->lists)
            add_scores(s, y, tr);
    }
    return 0;
}

/* ---- the values --------------------------------------------------------- */

static int by_score(const void *a, const void *b)
{
    mimo_real x = ((const scored *)a)->s, y = ((const scored *)b)->s;
    return (x > y) - (x < y);
}

static int any_nan(const mimo_real *x, size_t n, size_t stride)
{
    for (size_t i = 0; i < n; i++)
        if (isnan(x[i * stride]))
            return 1;
    return 0;
}

/* Mann-Whitney: the positives' rank sum in score order, ties sharing the
 * mean of their ranks (sums of halves: exact in double); v: n entries of
 * scratch. NaN when a score is NaN: it has no rank, and sorting needs an
 * order (each tie group starts with j = i + 1 so the loop ends even if a
 * NaN got there). */
static double auc_in(scored *v, const mimo_real *score, const unsigned char *positive,
                     size_t n, size_t stride)
{
    double npos = 0, rank_sum = 0;
    if (any_nan(score, n, stride))
        return NAN;
    for (size_t i = 0; i < n; i++) {
        v[i] = (scored){score[i * stride], positive[i * stride]};
        npos += v[i].p;
    }
    qsort(v, n, sizeof *v, by_score);
    for (size_t i = 0, j; i < n; i = j) {
        double pos = v[i].p;
        for (j = i + 1; j < n && v[j].s == v[i].s; j++)
            pos += v[j].p;
        rank_sum += pos * ((double)i + 1 + (double)j) / 2; /* ranks i+1..j */
    }
    double nneg = (double)n - npos;
    if (npos == 0 || nneg == 0)
        return NAN;
    return (rank_sum - npos * (npos + 1) / 2) / (npos * nneg);
}

double mimo_auc(const mimo_real *score, const unsigned char *positive, size_t n,
                size_t stride)
{
    scored *v = malloc(sizeof *v * (n ? n : 1));
    double a = v ? auc_in(v, score, positive, n, stride) : NAN;
    free(v);
    return a;
}

static double ratio(double a, double b) { return b > 0 ? a / b : 0; }

/* precision, recall, f1 from the class counts: one class (binary), or the
 * mean over the classes that occur. */
static void class_values(const head_sums *s, const double *d, mimo_head_stats *st)
{
    int C = s->classes, used = 0;
    const double *tp = d + S_FIXED, *fp = tp + C, *fn = fp + C;
    double p = 0, r = 0, f = 0;
    for (int c = 0; c < C; c++) {
        if (s->categorical && tp[c] + fp[c] + fn[c] == 0)
            continue;
        double pc = ratio(tp[c], tp[c] + fp[c]), rc = ratio(tp[c], tp[c] + fn[c]);
        p += pc, r += rc, f += ratio(2 * pc * rc, pc + rc);
        used++;
    }
    st->precision = used ? p / used : NAN;
    st->recall = used ? r / used : NAN;
    st->f1 = used ? f / used : NAN;
}

static double r2_value(const head_sums *s, const double *d, double n)
{
    const double *st = d + S_FIXED + 3 * s->classes, *stt = st + s->units,
                 *sse = stt + s->units;
    double sum = 0;
    int used = 0;
    for (int j = 0; j < s->units; j++) {
        /* SST by the one-pass formula: for (near) constant targets the
         * difference is rounding, not spread; such a unit is skipped */
        double sst = stt[j] - st[j] * st[j] / n;
        if (sst > 1e-10 * stt[j])
            sum += 1 - sse[j] / sst, used++;
    }
    return used ? sum / used : NAN;
}

static double auc_value(const head_sums *s)
{
    double sum = 0;
    int used = 0;
    size_t rows = s->n / (size_t)s->lists;
    if (s->auc_fixed)
        return s->auc;
    if (!rows || any_nan(s->score, s->n, 1))
        return NAN; /* not only the lists with a NaN skipped */
    for (int l = 0; l < s->lists; l++) {
        double a = auc_in(s->work, s->score + l, s->pos + l, rows, (size_t)s->lists);
        if (!isnan(a))
            sum += a, used++;
    }
    return used ? sum / used : NAN;
}

double mimo_metrics_auc(const mimo_metrics *m, int h)
{
    return m->h[h].lists ? auc_value(&m->h[h]) : NAN;
}

void mimo_metrics_fix_auc(mimo_metrics *m, int h, double auc)
{
    m->h[h].auc = auc, m->h[h].auc_fixed = 1;
}

double mimo_head_metric(const mimo_head_stats *s, int i)
{
    switch (1u << i) {
    case MIMO_METRIC_ACCURACY: return s->acc;
    case MIMO_METRIC_MSE: return s->mse;
    case MIMO_METRIC_MAE: return s->mae;
    case MIMO_METRIC_AUC: return s->auc;
    case MIMO_METRIC_PRECISION: return s->precision;
    case MIMO_METRIC_RECALL: return s->recall;
    case MIMO_METRIC_F1: return s->f1;
    case MIMO_METRIC_TOP_K: return s->top_k;
    case MIMO_METRIC_R2: return s->r2;
    default: return NAN;
    }
}

double mimo_metrics_loss(const mimo_metrics *m, int h)
{
    const double *d = m->sums + m->h[h].off;
    return d[S_WEIGHT] > 0 ? d[S_LOSS] / d[S_WEIGHT] : NAN;
}

void mimo_metrics_values(const mimo_metrics *m, int h, mimo_head_stats *st)
{
    const head_sums *s = &m->h[h];
    const double *d = m->sums + s->off;
    double n = d[S_LABELLED], nan = NAN;
    *st = (mimo_head_stats){.loss = mimo_metrics_loss(m, h), .weight = d[S_WEIGHT],
                            .labelled = n, .acc = nan, .mse = nan, .mae = nan,
                            .auc = nan, .precision = nan, .recall = nan,
                            .f1 = nan, .top_k = nan, .r2 = nan};
    if (n <= 0)
        return;
    st->acc = d[S_ACC] / n, st->mse = d[S_MSE] / n, st->mae = d[S_MAE] / n;
    st->top_k = d[S_TOP_K] / n;
    if (s->classes)
        class_values(s, d, st);
    if (s->r2_units)
        st->r2 = r2_value(s, d, n);
    if (s->lists)
        st->auc = auc_value(s);
}
