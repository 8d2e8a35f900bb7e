/* loss.c — per-head losses, their gradients and metrics.
 * Reduction as Keras: per-sample loss is the mean over units (mse, mae,
 * huber, binary CE) or the sum over classes (categorical CEs); the batch
 * value is the sum over rows, divided by the global batch by the caller.
 * A head whose layer ends in sigmoid (BCE) or softmax (CE) and feeds
 * nothing else is computed from the logits z: stable for any |z|. */
#include <tgmath.h>

#include "mimo/error.h"
#include "core/graph_impl.h"
#include "core/vmath.h"

#define CLIP_EPS ((mimo_real)1e-7) /* Keras' epsilon for probabilities */

int mimo_loss_fusable(mimo_loss l, mimo_act a)
{
    return (l == MIMO_LOSS_BCE && a == MIMO_ACT_SIGMOID) ||
           ((l == MIMO_LOSS_CCE || l == MIMO_LOSS_SPARSE_CCE) &&
            a == MIMO_ACT_SOFTMAX);
}

static mimo_real clip_p(mimo_real p, int *inside)
{
    *inside = p > CLIP_EPS && p < 1 - CLIP_EPS;
    return p < CLIP_EPS ? CLIP_EPS : p > 1 - CLIP_EPS ? 1 - CLIP_EPS : p;
}

static mimo_real sign(mimo_real e) { return (e > 0) - (e < 0); }

/* Elementwise losses on one row of n: return sum_j l(y_j, t_j) and set
 * g_j = dl/dy_j, or dl/dz_j for BCE from the logits z. One loop per loss,
 * each a branch-free expression, so they vectorize (exp and log1p through
 * vmath.h). */
MIMO_VEC_KERNEL static double row_mse(const mimo_real *restrict y,
                                      const mimo_real *restrict t,
                                      mimo_real *restrict g, int n)
{
    double s = 0;
    #pragma omp simd reduction(+ : s)
    for (int j = 0; j < n; j++) {
        mimo_real e = y[j] - t[j];
        s += e * e, g[j] = 2 * e;
    }
    return s;
}

MIMO_VEC_KERNEL static double row_mae(const mimo_real *restrict y,
                                      const mimo_real *restrict t,
                                      mimo_real *restrict g, int n)
{
    double s = 0;
    #pragma omp simd reduction(+ : s)
    for (int j = 0; j < n; j++) {
        mimo_real e = y[j] - t[j];
        s += fabs(e), g[j] = sign(e);
    }
    return s;
}

static double row_huber(const mimo_real *restrict y, const mimo_real *restrict t,
                        mimo_real *restrict g, int n, double delta)
{
    double s = 0;
    for (int j = 0; j < n; j++) {
        mimo_real e = y[j] - t[j];
        if (fabs(e) <= delta)
            s += 0.5 * e * e, g[j] = e;
        else
            s += delta * (fabs(e) - 0.5 * delta), g[j] = (mimo_real)delta * sign(e);
    }
    return s;
}

/* max(z,0) - z t + log(1 + exp(-|z|)); d/dz = sigmoid(z) - t = y - t */
MIMO_VEC_KERNEL static double row_bce_logits(const mimo_real *restrict y,
                                             const mimo_real *restrict z,
                                             const mimo_real *restrict t,
                                             mimo_real *restrict g, int n)
{
    double s = 0;
    #pragma omp simd reduction(+ : s)
    for (int j = 0; j < n; j++) {
        mimo_real x = z[j];
        s += (x > 0 ? x : 0) - x * t[j] + log1p(exp(-fabs(x)));
        g[j] = y[j] - t[j];
    }
    return s;
}

static double row_bce(const mimo_real *restrict y, const mimo_real *restrict t,
                      mimo_real *restrict g, int n)
{
    double s = 0;
    for (int j = 0; j < n; j++) {
        int in;
        mimo_real p = clip_p(y[j], &in);
        s += -(t[j] * log(p) + (1 - t[j]) * log(1 - p));
        g[j] = in ? (p - t[j]) / (p * (1 - p)) : 0;
    }
    return s;
}

static double row_elementwise(const mimo_head *h, const mimo_real *y,
                              const mimo_real *z, const mimo_real *t,
                              mimo_real *g, int fused)
{
    int n = h->units;
    switch (h->spec->loss) {
    case MIMO_LOSS_MSE: return row_mse(y, t, g, n);
    case MIMO_LOSS_MAE: return row_mae(y, t, g, n);
    case MIMO_LOSS_HUBER: return row_huber(y, t, g, n, h->spec->huber_delta);
    default: return fused ? row_bce_logits(y, z, t, g, n) : row_bce(y, t, g, n);
    }
}

/* log sum_j exp(z_j), max-shifted. */
MIMO_VEC_KERNEL static mimo_real log_sum_exp(const mimo_real *restrict z, int n)
{
    mimo_real m = z[0], s = 0;
    for (int j = 1; j < n; j++)
        m = z[j] > m ? z[j] : m;
    #pragma omp simd reduction(+ : s)
    for (int j = 0; j < n; j++)
        s += exp(z[j] - m);
    return m + log(s);
}

/* Categorical CE on one row, t one-hot (or the label in t[0] when sparse). */
static double row_categorical(const mimo_head *h, const mimo_real *y,
                              const mimo_real *z, const mimo_real *t,
                              mimo_real *g, int fused, int sparse)
{
    int n = h->units, label = sparse ? (int)t[0] : -1;
    double s = 0;
    if (fused) { /* -sum t_j log softmax(z)_j; d/dz_k = p_k sum_j t_j - t_k */
        mimo_real tsum = sparse ? 1 : 0, lse = log_sum_exp(z, n);
        for (int j = 0; j < n && !sparse; j++)
            tsum += t[j];
        for (int j = 0; j < n; j++) {
            mimo_real tj = sparse ? (j == label) : t[j];
            s -= tj * (z[j] - lse);
            g[j] = y[j] * tsum - tj;
        }
        return s;
    }
    for (int j = 0; j < n; j++) { /* -sum t_j log p_j; d/dp_j = -t_j / p_j */
        mimo_real tj = sparse ? (j == label) : t[j];
        int in;
        mimo_real p = clip_p(y[j], &in);
        s -= tj * log(p);
        g[j] = in ? -tj / p : 0;
    }
    return s;
}

static int argmax(const mimo_real *v, int n)
{
    int k = 0;
    for (int j = 1; j < n; j++)
        if (v[j] > v[k])
            k = j;
    return k;
}

/* Adds one row's metrics into st. */
static void row_metrics(const mimo_head *h, const mimo_real *y,
                        const mimo_real *t, mimo_head_stats *st)
{
    int n = h->units, sparse = h->spec->loss == MIMO_LOSS_SPARSE_CCE;
    unsigned m = h->spec->metrics;
    if (m & MIMO_METRIC_ACCURACY) {
        int categorical = sparse || h->spec->loss == MIMO_LOSS_CCE ||
                          (h->spec->loss != MIMO_LOSS_BCE && n > 1);
        if (categorical)
            st->acc += argmax(y, n) == (sparse ? (int)t[0] : argmax(t, n));
        else {
            int hits = 0;
            for (int j = 0; j < n; j++)
                hits += (y[j] > (mimo_real)0.5) == (t[j] > (mimo_real)0.5);
            st->acc += (double)hits / n;
        }
    }
    if (m & (MIMO_METRIC_MSE | MIMO_METRIC_MAE)) {
        double se = 0, ae = 0;
        for (int j = 0; j < n; j++) {
            double tj = sparse ? (j == (int)t[0]) : t[j], e = y[j] - tj;
            se += e * e, ae += fabs(e);
        }
        st->mse += se / n, st->mae += ae / n;
    }
}

/* from_logits: the head's output z is logits; p (one row) gets the
 * probabilities the loss and the metrics see. */
static void probabilities(const mimo_head *h, const mimo_real *z, mimo_real *p)
{
    mimo_act a = h->spec->loss == MIMO_LOSS_BCE ? MIMO_ACT_SIGMOID : MIMO_ACT_SOFTMAX;
    mimo_act_forward(a, 0, NULL, (mimo_real *)z, p, 1, h->units); /* z is read only */
}

int mimo_head_loss(const mimo_graph *g, const mimo_head *h, const mimo_real *t,
                   int b, double grad_scale, mimo_head_stats *st)
{
    const mimo_node *nd = &g->nodes[h->node];
    mimo_loss l = h->spec->loss;
    int sparse = l == MIMO_LOSS_SPARSE_CCE, tw = h->target_width, n = h->units;
    int categorical = sparse || l == MIMO_LOSS_CCE, logits = h->spec->from_logits;
    /* per-sample mean over units, except the categorical sums */
    double per_unit = categorical ? 1.0 : 1.0 / n;
    mimo_real gs = (mimo_real)(grad_scale * h->spec->weight * per_unit);
    double total = 0;
    if (sparse)
        for (int r = 0; r < b; r++) {
            mimo_real v = t[(size_t)r * tw];
            if (!(v >= 0 && v < n) || v != floor(v))
                return mimo_error(MIMO_EINVAL, "head '%s': class label %g in "
                                  "row %d is not an integer in [0, %d)",
                                  h->spec->name, (double)v, r, n);
        }
    for (int r = 0; r < b; r++) {
        size_t o = (size_t)r * n;
        const mimo_real *y = nd->y + o, *tr = t + (size_t)r * tw;
        const mimo_real *z = nd->fused ? nd->z + o : NULL;
        int from_z = nd->fused; /* the loss is computed from logits z */
        if (logits) { /* the output is z: y becomes its probabilities */
            probabilities(h, y, g->prob_scratch);
            z = y, y = g->prob_scratch, from_z = 1;
        }
        /* fused: the gradient is dz itself; else it is added into dy */
        /* no gradient wanted, or none needed: nothing upstream trains */
        mimo_real *dst = grad_scale == 0 || (!nd->fused && !nd->dy) ? NULL
                         : nd->fused ? nd->dz + o : nd->dy + o;
        mimo_real *gr = dst && nd->fused ? dst : g->loss_scratch;
        total += per_unit * (categorical
                                 ? row_categorical(h, y, z, tr, gr, from_z, sparse)
                                 : row_elementwise(h, y, z, tr, gr, from_z));
        if (dst && nd->fused)
            for (int j = 0; j < n; j++)
                dst[j] *= gs;
        else if (dst)
            for (int j = 0; j < n; j++)
                dst[j] += gs * gr[j];
        if (st)
            row_metrics(h, y, tr, st);
    }
    if (st)
        st->loss += total;
    return 0;
}
