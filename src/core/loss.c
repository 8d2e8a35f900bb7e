/* loss.c — per-head losses and their gradients, and the weights of a
 * head's rows (missing labels, sample and class weights).
 * Reduction as Keras: per-sample loss is the mean over units (mse, mae,
 * huber, binary CE) or the sum over classes (categorical CEs); the batch
 * value is the sum over labelled rows of v x the row's loss, divided by
 * the global batch's sum of v by the caller (model.c).
 * A head whose layer ends in sigmoid (BCE) or softmax (CE) and feeds
 * nothing else is computed from the logits z: stable for any |z|. */
#include <string.h>
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

/* max(z,0) - z t + log(1 + exp(-|z|)); d/dz = sigmoid(z) - t = y - t.
 * The log1p and exp in chunks of MIMO_LANES, the last padded (vmath.h):
 * the same vector code for every value, however narrow the head. */
MIMO_VEC_KERNEL static double row_bce_logits(const mimo_real *restrict y,
                                             const mimo_real *restrict z,
                                             const mimo_real *restrict t,
                                             mimo_real *restrict g, int n)
{
    double s = 0;
    mimo_real x[MIMO_LANES], sp[MIMO_LANES];
    for (int i = 0; i < n; i += MIMO_LANES) {
        int c = n - i < MIMO_LANES ? n - i : MIMO_LANES;
        for (int j = 0; j < MIMO_LANES; j++)
            x[j] = j < c ? z[i + j] : 0;
        #pragma omp simd
        for (int j = 0; j < MIMO_LANES; j++)
            sp[j] = log1p(exp(-fabs(x[j])));
        for (int j = 0; j < c; j++)
            s += (x[j] > 0 ? x[j] : 0) - x[j] * t[i + j] + sp[j];
    }
    for (int j = 0; j < n; j++)
        g[j] = y[j] - t[j];
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

/* log sum_j exp(z_j), max-shifted (vmath.h). */
static mimo_real log_sum_exp(const mimo_real *restrict z, int n)
{
    mimo_real m, s = mimo_exp_shifted(z, NULL, n, &m);
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

void mimo_head_probabilities(const mimo_head *h, const mimo_real *z, mimo_real *p)
{
    mimo_act a = h->spec->loss == MIMO_LOSS_BCE ? MIMO_ACT_SIGMOID : MIMO_ACT_SOFTMAX;
    mimo_act_forward(a, 0, NULL, (mimo_real *)z, p, 1, h->units); /* z is read only */
}

static int bad_label(const mimo_head *h, mimo_real v, int r)
{
    return mimo_error(MIMO_EINVAL, "head '%s': class label %g in row %d is not "
                      "an integer in [0, %d)", h->spec->name, (double)v, r,
                      h->units);
}

/* Whether row t (n values) has no label: 1; a label: 0; part of one: -1. */
static int row_missing(const mimo_output_spec *o, const mimo_real *t, int n)
{
    int k = 0;
    for (int j = 0; j < n; j++)
        k += o->missing == MIMO_MISSING_NAN ? isnan(t[j])
                                            : t[j] == (mimo_real)o->missing_value;
    return k == 0 ? 0 : k == n ? 1 : -1;
}

/* The class of a labelled row, for class_weight: the label (sparse), the
 * largest target (one-hot), or t > 0.5 (binary, one unit); -1 if invalid. */
static int row_class(const mimo_head *h, const mimo_real *t)
{
    mimo_loss l = h->spec->loss;
    if (l == MIMO_LOSS_SPARSE_CCE)
        return t[0] >= 0 && t[0] < h->units && t[0] == floor(t[0]) ? (int)t[0] : -1;
    if (l == MIMO_LOSS_CCE)
        return argmax(t, h->units);
    return t[0] > (mimo_real)0.5;
}

int mimo_head_weigh(const mimo_head *h, const mimo_real *t, const mimo_real *sw,
                    int b, mimo_real *w, double *sum)
{
    const mimo_output_spec *o = h->spec;
    int tw = h->target_width;
    double s = 0;
    for (int r = 0; r < b; r++) {
        const mimo_real *tr = t + (size_t)r * tw;
        int miss = o->missing ? row_missing(o, tr, tw) : 0;
        if (miss < 0)
            return mimo_error(MIMO_EINVAL, "head '%s': the target in row %d of "
                              "the batch has some but not all of its %d values "
                              "missing; a row without a label is missing in "
                              "every unit", o->name, r, tw);
        if (miss) {
            w[r] = MIMO_UNLABELLED;
            continue;
        }
        mimo_real v = sw ? sw[r] : 1;
        if (!(v >= 0) || !isfinite(v))
            return mimo_error(MIMO_EINVAL, "head '%s': sample weight %g in row "
                              "%d of the batch is not a finite number >= 0", o->name,
                              (double)v, r);
        if (h->class_w) {
            int c = row_class(h, tr);
            if (c < 0)
                return bad_label(h, tr[0], r);
            v *= h->class_w[c];
        }
        w[r] = v;
        s += v;
    }
    *sum = s;
    return 0;
}

int mimo_head_loss(const mimo_graph *g, const mimo_head *h, const mimo_real *t,
                   const mimo_real *w, int b, int want_grad, double scale,
                   mimo_head_stats *st)
{
    const mimo_node *nd = &g->nodes[h->node];
    mimo_loss l = h->spec->loss;
    int sparse = l == MIMO_LOSS_SPARSE_CCE, tw = h->target_width, n = h->units;
    int categorical = sparse || l == MIMO_LOSS_CCE, logits = h->spec->from_logits;
    /* per-sample mean over units, except the categorical sums */
    double per_unit = categorical ? 1.0 : 1.0 / n;
    mimo_real gs = (mimo_real)(scale * per_unit);
    double total = 0, weight = 0, labelled = 0;
    for (int r = 0; sparse && r < b; r++) {
        mimo_real v = t[(size_t)r * tw];
        if ((!w || w[r] >= 0) && (!(v >= 0 && v < n) || v != floor(v)))
            return bad_label(h, v, r);
    }
    /* no gradient for this head: nothing upstream trains, or its scale is
     * 0 (no label in the global batch); a fused head's dz still needs
     * zeros then */
    int grad = want_grad && (nd->fused || nd->dy) && gs != 0;
    if (want_grad && nd->fused && !grad)
        memset(nd->dz, 0, sizeof(mimo_real) * (size_t)b * (size_t)n);
    for (int r = 0; r < b; r++) {
        size_t o = (size_t)r * n;
        if (w && w[r] < 0) { /* no label: no loss, no gradient */
            if (grad && nd->fused)
                memset(nd->dz + o, 0, sizeof(mimo_real) * (size_t)n);
            continue;
        }
        const mimo_real *y = nd->y + o, *tr = t + (size_t)r * tw;
        const mimo_real *z = nd->fused ? nd->z + o : NULL;
        int from_z = nd->fused; /* the loss is computed from logits z */
        if (logits) { /* the output is z: y becomes its probabilities */
            mimo_head_probabilities(h, y, g->prob_scratch);
            z = y, y = g->prob_scratch, from_z = 1;
        }
        /* fused: the gradient is dz itself; else it is added into dy */
        mimo_real *dst = !grad ? NULL : nd->fused ? nd->dz + o : nd->dy + o;
        mimo_real *gr = dst && nd->fused ? dst : g->loss_scratch;
        double row = per_unit * (categorical
                                     ? row_categorical(h, y, z, tr, gr, from_z, sparse)
                                     : row_elementwise(h, y, z, tr, gr, from_z));
        mimo_real gv = w ? gs * w[r] : gs;
        total += w ? w[r] * row : row;
        weight += w ? w[r] : 1;
        labelled++;
        if (dst && nd->fused)
            for (int j = 0; j < n; j++)
                dst[j] *= gv;
        else if (dst)
            for (int j = 0; j < n; j++)
                dst[j] += gv * gr[j];
    }
    if (st)
        st->loss += total, st->weight += weight, st->labelled += labelled;
    return 0;
}
