/* attention.c — multi_head_attention, Keras' MultiHeadAttention: from
 * [query, value] or [query, value, key] (key defaults to value), each a
 * (T, d) sequence per sample; H heads of key_dim Dk and value_dim Dv.
 * Keras' weight layout (EinsumDense kernels):
 *   query_kernel (dq, H, Dk), query_bias (H, Dk), key_kernel (dk, H, Dk),
 *   key_bias (H, Dk), value_kernel (dv, H, Dv), value_bias (H, Dv),
 *   output_kernel (H, Dv, do), output_bias (do); do = output_shape or dq.
 * Per sample (Tq query steps, Tv value/key steps), per head h:
 *   q = xq Wq + bq  (Tq, H, Dk);  k = xk Wk + bk  (Tv, H, Dk);
 *   v = xv Wv + bv  (Tv, H, Dv)
 *   s_h = q_h k_h^T / sqrt(Dk)                        (Tq, Tv)
 *   p_h = softmax over the keys allowed: key j is allowed for query i
 *         when neither the value's nor the key's mask masks it and, with
 *         use_causal_mask, j <= i; a disallowed key gets exactly 0, and a
 *         query with no key allowed gets all zeros (its output is the
 *         output bias; Keras' -1e9 trick gives a uniform average there)
 *   a_h = p_h m_h  (dropout on the attention weights in training: m the
 *         scaled mask drawn as dropout.c draws, drop.h)
 *   c = [a_h v_h]_h  (Tq, H, Dv);  y = c Wo + bo  (Tq, do)
 * The query's mask passes on to the output (Keras); a masked query step
 * is computed as any other (its output is masked downstream).
 * The four projections are one sgemm each over the batch's b T rows; the
 * scores and the weighted sums one small sgemm per (sample, head) on
 * strided views (a head's columns of q, k, v, c). Backward:
 *   dc = dy Wo^T;  dWo += c^T dy;  da_h = dc_h v_h^T;  dv_h += a_h^T dc_h
 *   dp = da m;  ds = p (dp - rowsum(p dp));  dq_h = ds k_h / sqrt(Dk);
 *   dk_h = ds^T q_h / sqrt(Dk); then each projection's dW, db and dx.
 * No allocation: every buffer comes from the graph's arena. Keras' name
 * MultiHeadAttention finds it as any name does (case and underscores
 * never matter). */
#include <cblas.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tgmath.h>

#include "core/kind.h"
#include "core/onnx.h"
#include "core/layers/drop.h"

typedef struct {
    int num_heads, key_dim, value_dim, output_shape;
    int use_bias, use_causal_mask;
    double dropout;
    mimo_init kernel_initializer, bias_initializer;
} att_args;

static const mimo_arg att_keys[] = {
    {MIMO_ARG(att_args, num_heads), .type = MIMO_ARG_INT, .required = 1, .lo = 1,
     .hi = 1 << 16, .expect = "an integer > 0"},
    {MIMO_ARG(att_args, key_dim), .type = MIMO_ARG_INT, .required = 1, .lo = 1,
     .hi = 1 << 20, .expect = "an integer > 0"},
    {MIMO_ARG(att_args, value_dim), .type = MIMO_ARG_INT, .lo = 1, .hi = 1 << 20,
     .expect = "an integer > 0"},
    {MIMO_ARG(att_args, output_shape), .type = MIMO_ARG_INT, .lo = 1, .hi = 1 << 20,
     .expect = "an integer > 0 (the output's last axis)"},
    {MIMO_ARG(att_args, use_bias), .type = MIMO_ARG_BOOL},
    {MIMO_ARG(att_args, use_causal_mask), .type = MIMO_ARG_BOOL},
    {MIMO_ARG(att_args, dropout), .type = MIMO_ARG_REAL, .lo = 0, .hi = 1, .excl = 2,
     .expect = "a number in [0, 1)"},
    {MIMO_ARG(att_args, kernel_initializer), .type = MIMO_ARG_INIT},
    {MIMO_ARG(att_args, bias_initializer), .type = MIMO_ARG_INIT},
};

/* value_dim and output_shape 0: not given (value_dim becomes key_dim in
 * finish; output_shape the query's last axis in infer) */
static void att_defaults(void *p)
{
    att_args *a = p;
    a->use_bias = 1;
    a->kernel_initializer = (mimo_init){MIMO_INIT_GLOROT_UNIFORM, 0, 0};
    a->bias_initializer = (mimo_init){MIMO_INIT_ZEROS, 0, 0};
}

static int att_finish(void *p, char *err, size_t len)
{
    att_args *a = p;
    (void)err, (void)len;
    if (!a->value_dim)
        a->value_dim = a->key_dim;
    return 0;
}

/* The projections, in Keras' weight order: query, key, value, output. */
enum { P_Q, P_K, P_V, P_O };

typedef struct {
    int H, Dk, Dv, Tq, Tv, dq, dk, dv, dout, causal, use_bias;
    int kernel[4], bias[4];      /* tensor indices; bias -1 without */
    uint64_t layer;              /* dropout's key (drop.h) */
    double rate;
    mimo_real *q, *k, *v;        /* (B, Tq|Tv, H, Dk|Dv) projections */
    mimo_real *p;                /* (B, H, Tq, Tv) softmax weights */
    mimo_real *m;                /* (B, H, Tq, Tv) dropout's scaled mask */
    mimo_real *a;                /* (B, H, Tq, Tv) weights after dropout
                                  * (p itself without dropout) */
    mimo_real *c;                /* (B, Tq, H, Dv) the heads' outputs */
    mimo_real *keys;             /* (B, Tv) 1: a key not masked */
    mimo_real *gc, *gq, *gk, *gv; /* gradients of c, q, k, v */
    mimo_real *ds;               /* (Tq, Tv) one (sample, head) at a time */
} att_node;

static int need_sequence(const mimo_graph *g, const mimo_node *n, int j,
                         const char *role, char *err, size_t len)
{
    const mimo_node *p = MIMO_PARENT(g, n, j);
    if (p->shape.rank == 2)
        return 0;
    char sh[96];
    mimo_shape_format(&p->shape, sh, sizeof sh);
    snprintf(err, len, "multi_head_attention layer '%s': its %s '%s' has shape %s, "
             "not a sequence (timesteps, features); give the input a shape like "
             "[24, 3], or return_sequences: true on a recurrent layer", n->name,
             role, p->name, sh);
    return -1;
}

static int add(mimo_node *n, const char *name, int rank, int d0, int d1, int d2,
               mimo_init init, double fan_in, double fan_out)
{
    mimo_shape s = {rank, {d0, d1, d2}};
    return mimo_node_add_tensor(n, name, &s, init, fan_in, fan_out);
}

/* Keras' fans of a kernel of more than two axes: the last two axes times
 * the product of the others (glorot over (d, H, Dk): d H and d Dk) */
static int declare_tensors(mimo_node *n, att_node *d, const att_args *a)
{
    static const char *const kn[4] = {"query_kernel", "key_kernel", "value_kernel",
                                      "output_kernel"};
    static const char *const bn[4] = {"query_bias", "key_bias", "value_bias",
                                      "output_bias"};
    const int in[3] = {d->dq, d->dk, d->dv}, dh[3] = {d->Dk, d->Dk, d->Dv};
    for (int t = 0; t < 4; t++) {
        if (t < P_O)
            d->kernel[t] = add(n, kn[t], 3, in[t], d->H, dh[t], a->kernel_initializer,
                               (double)in[t] * d->H, (double)in[t] * dh[t]);
        else
            d->kernel[t] = add(n, kn[t], 3, d->H, d->Dv, d->dout, a->kernel_initializer,
                               (double)d->H * d->Dv, (double)d->H * d->dout);
        d->bias[t] = -1;
        if (d->kernel[t] < 0)
            return -1;
        if (!a->use_bias)
            continue;
        d->bias[t] = t < P_O ? add(n, bn[t], 2, d->H, dh[t], 0, a->bias_initializer,
                                   in[t], (double)d->H * dh[t])
                             : add(n, bn[t], 1, d->dout, 0, 0, a->bias_initializer,
                                   (double)d->H * d->Dv, d->dout);
        if (d->bias[t] < 0)
            return -1;
    }
    return 0;
}

static int att_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    const att_args *a = n->args;
    att_node *d = n->priv;
    if (mimo_check_inputs(n, 2, 3, " ([query, value] or [query, value, key])", err,
                          len))
        return -1;
    if (need_sequence(g, n, 0, "query", err, len) ||
        need_sequence(g, n, 1, "value", err, len) ||
        (n->n_in == 3 && need_sequence(g, n, 2, "key", err, len)))
        return -1;
    const mimo_node *q = MIMO_PARENT(g, n, 0), *v = MIMO_PARENT(g, n, 1);
    const mimo_node *k = MIMO_PARENT(g, n, n->n_in - 1);
    if (k->shape.dim[0] != v->shape.dim[0]) {
        snprintf(err, len, "multi_head_attention layer '%s': its key '%s' has %d "
                 "timesteps but its value '%s' has %d: each key goes with a value",
                 n->name, k->name, k->shape.dim[0], v->name, v->shape.dim[0]);
        return -1;
    }
    d->H = a->num_heads, d->Dk = a->key_dim, d->Dv = a->value_dim;
    d->Tq = q->shape.dim[0], d->Tv = v->shape.dim[0];
    d->dq = q->shape.dim[1], d->dv = v->shape.dim[1], d->dk = k->shape.dim[1];
    d->dout = a->output_shape ? a->output_shape : d->dq;
    d->causal = a->use_causal_mask, d->use_bias = a->use_bias;
    d->rate = a->dropout;
    d->layer = mimo_drop_layer_key(n->name);
    long long hd = (long long)d->H * (d->Dk > d->Dv ? d->Dk : d->Dv);
    long long big = d->dq > d->dk ? d->dq : d->dk;
    big = big > d->dv ? big : d->dv;
    big = big > d->dout ? big : d->dout;
    if (hd * big > INT_MAX / 4 ||
        (long long)d->H * d->Tq * d->Tv > INT_MAX / 4) {
        snprintf(err, len, "multi_head_attention layer '%s': %d heads of %d over "
                 "%d x %d steps is too large", n->name, d->H, a->key_dim, d->Tq,
                 d->Tv);
        return -1;
    }
    n->shape = (mimo_shape){2, {d->Tq, d->dout}};
    return declare_tensors(n, d, a);
}

static void att_buffers(mimo_graph *g, mimo_node *n, mimo_arena *ar)
{
    att_node *d = n->priv;
    size_t B = (size_t)g->max_batch, H = (size_t)d->H, Tq = (size_t)d->Tq,
           Tv = (size_t)d->Tv, w = H * Tq * Tv;
    int train = n->dy != NULL;
    n->y = mimo_arena_take(ar, B * (size_t)n->width);
    d->q = mimo_arena_take(ar, B * Tq * H * (size_t)d->Dk);
    d->k = mimo_arena_take(ar, B * Tv * H * (size_t)d->Dk);
    d->v = mimo_arena_take(ar, B * Tv * H * (size_t)d->Dv);
    d->p = mimo_arena_take(ar, B * w);
    d->m = d->rate > 0 && train ? mimo_arena_take(ar, B * w) : NULL;
    d->a = d->rate > 0 && train ? mimo_arena_take(ar, B * w) : d->p;
    d->c = mimo_arena_take(ar, B * Tq * H * (size_t)d->Dv);
    d->keys = mimo_arena_take(ar, B * Tv);
    if (!train)
        return;
    d->gc = mimo_arena_take(ar, B * Tq * H * (size_t)d->Dv);
    d->gq = mimo_arena_take(ar, B * Tq * H * (size_t)d->Dk);
    d->gk = mimo_arena_take(ar, B * Tv * H * (size_t)d->Dk);
    d->gv = mimo_arena_take(ar, B * Tv * H * (size_t)d->Dv);
    d->ds = mimo_arena_take(ar, Tq * Tv);
}

/* out (rows, H c) = x (rows, in) W (in, H c) + bias: one sgemm */
static void project(const mimo_real *x, int rows, int in, const mimo_real *W,
                    const mimo_real *bias, int cols, mimo_real *out)
{
    MIMO_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, cols, in, 1, x, in, W,
              cols, 0, out, cols);
    for (size_t r = 0; bias && r < (size_t)rows; r++)
        for (size_t j = 0; j < (size_t)cols; j++)
            out[r * cols + j] += bias[j];
}

static const mimo_real *tensor(const mimo_node *n, const mimo_real *params, int t)
{
    return t < 0 ? NULL : params + n->tensors[t].off;
}

/* keys[b, j]: 1 unless the value's or the key's mask masks step j */
static void key_mask(mimo_graph *g, mimo_node *n, att_node *d, int b)
{
    const mimo_real *mv = MIMO_PARENT(g, n, 1)->mask;
    const mimo_real *mk = n->n_in == 3 ? MIMO_PARENT(g, n, 2)->mask : NULL;
    size_t len = (size_t)b * d->Tv;
    for (size_t i = 0; i < len; i++)
        d->keys[i] = (!mv || mv[i] != 0) && (!mk || mk[i] != 0);
}

/* The softmax of each query's row of scores s (Tq, Tv) in place over the
 * keys allowed (keys[j], and j <= i when causal); zeros elsewhere. */
static void masked_softmax_rows(const att_node *d, const mimo_real *keys, mimo_real *s)
{
    for (int i = 0; i < d->Tq; i++) {
        mimo_real *r = s + (size_t)i * d->Tv, mx = 0, sum = 0;
        int end = d->causal && i + 1 < d->Tv ? i + 1 : d->Tv, any = 0;
        for (int j = 0; j < end; j++)
            if (keys[j] != 0 && (!any || r[j] > mx))
                mx = r[j], any = 1;
        for (int j = 0; j < d->Tv; j++) {
            r[j] = any && j < end && keys[j] != 0 ? exp(r[j] - mx) : 0;
            sum += r[j];
        }
        for (int j = 0; any && j < end; j++)
            r[j] /= sum;
    }
}

/* Sample r, head h: the weights into p (and, dropping, a), its output
 * into c. */
static void attend(att_node *d, int r, int h, int drop)
{
    const int H = d->H, Dk = d->Dk, Dv = d->Dv, Tq = d->Tq, Tv = d->Tv;
    const size_t w = (size_t)Tq * Tv, off = ((size_t)r * H + h) * w;
    const mimo_real *q = d->q + (size_t)r * Tq * H * Dk + (size_t)h * Dk;
    const mimo_real *k = d->k + (size_t)r * Tv * H * Dk + (size_t)h * Dk;
    const mimo_real *v = d->v + (size_t)r * Tv * H * Dv + (size_t)h * Dv;
    mimo_real *p = d->p + off, *a = drop ? d->a + off : p;
    /* s (Tq, Tv) = q_h k_h^T / sqrt(Dk): rows of q_h are H Dk apart */
    MIMO_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, Tq, Tv, Dk,
              (mimo_real)(1 / sqrt((double)Dk)), q, H * Dk, k, H * Dk, 0, p, Tv);
    masked_softmax_rows(d, d->keys + (size_t)r * Tv, p);
    for (size_t i = 0; drop && i < w; i++)
        a[i] = p[i] * d->m[off + i];
    /* c_h (Tq, Dv) = a_h v_h, into the head's columns of c */
    MIMO_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, Tq, Dv, Tv, 1, a, Tv, v,
              H * Dv, 0, d->c + (size_t)r * Tq * H * Dv + (size_t)h * Dv, H * Dv);
}

/* whether this pass drops attention weights: training, with a rate (the
 * mask's buffer is taken only then) */
static int dropping(const mimo_graph *g, const att_node *d)
{
    return g->training && d->m != NULL;
}

static void att_forward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                        int b)
{
    att_node *d = n->priv;
    const mimo_node *pq = MIMO_PARENT(g, n, 0), *pv = MIMO_PARENT(g, n, 1);
    const mimo_node *pk = MIMO_PARENT(g, n, n->n_in - 1);
    const int H = d->H, rq = b * d->Tq, rv = b * d->Tv, drop = dropping(g, d);
    const int w = H * d->Tq * d->Tv;
    project(pq->y, rq, d->dq, tensor(n, params, d->kernel[P_Q]),
            tensor(n, params, d->bias[P_Q]), H * d->Dk, d->q);
    project(pk->y, rv, d->dk, tensor(n, params, d->kernel[P_K]),
            tensor(n, params, d->bias[P_K]), H * d->Dk, d->k);
    project(pv->y, rv, d->dv, tensor(n, params, d->kernel[P_V]),
            tensor(n, params, d->bias[P_V]), H * d->Dv, d->v);
    key_mask(g, n, d, b);
    for (int r = 0; r < b; r++) {
        if (drop)
            mimo_drop_mask(g, d->layer, g->rows[r], d->rate, d->m + (size_t)r * w, w);
        for (int h = 0; h < H; h++)
            attend(d, r, h, drop);
    }
    project(d->c, rq, H * d->Dv, tensor(n, params, d->kernel[P_O]),
            tensor(n, params, d->bias[P_O]), d->dout, n->y);
}

/* Sample r, head h backward: from dc_h into dq_h, dk_h, dv_h (each
 * (sample, head) block written once: no accumulation needed). */
static void attend_back(att_node *d, int r, int h, int drop)
{
    const int H = d->H, Dk = d->Dk, Dv = d->Dv, Tq = d->Tq, Tv = d->Tv;
    const size_t w = (size_t)Tq * Tv, off = ((size_t)r * H + h) * w;
    const size_t oq = (size_t)r * Tq * H * Dk + (size_t)h * Dk;
    const size_t ok = (size_t)r * Tv * H * Dk + (size_t)h * Dk;
    const size_t ov = (size_t)r * Tv * H * Dv + (size_t)h * Dv;
    const size_t oc = (size_t)r * Tq * H * Dv + (size_t)h * Dv;
    const mimo_real *p = d->p + off, *a = drop ? d->a + off : p;
    const mimo_real scale = (mimo_real)(1 / sqrt((double)Dk));
    mimo_real *ds = d->ds;
    /* da (Tq, Tv) = dc_h v_h^T;  dv_h = a^T dc_h */
    MIMO_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, Tq, Tv, Dv, 1, d->gc + oc,
              H * Dv, d->v + ov, H * Dv, 0, ds, Tv);
    MIMO_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, Tv, Dv, Tq, 1, a, Tv,
              d->gc + oc, H * Dv, 0, d->gv + ov, H * Dv);
    for (int i = 0; i < Tq; i++) { /* dp = da m; ds = p (dp - sum p dp) */
        mimo_real *dr = ds + (size_t)i * Tv, dot = 0;
        const mimo_real *pr = p + (size_t)i * Tv;
        for (int j = 0; drop && j < Tv; j++)
            dr[j] *= d->m[off + (size_t)i * Tv + j];
        for (int j = 0; j < Tv; j++)
            dot += pr[j] * dr[j];
        for (int j = 0; j < Tv; j++)
            dr[j] = pr[j] * (dr[j] - dot);
    }
    /* dq_h = ds k_h / sqrt(Dk);  dk_h = ds^T q_h / sqrt(Dk) */
    MIMO_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, Tq, Dk, Tv, scale, ds, Tv,
              d->k + ok, H * Dk, 0, d->gq + oq, H * Dk);
    MIMO_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, Tv, Dk, Tq, scale, ds, Tv,
              d->q + oq, H * Dk, 0, d->gk + ok, H * Dk);
}

/* A projection out = x W + bias backward from dout (rows, cols): dW +=
 * x^T dout, db += colsum(dout) (the tensors that are trained), dx +=
 * dout W^T (when x takes a gradient; beta 1: it adds). */
static void project_back(const mimo_node *n, int kt, int bt, const mimo_real *x,
                         mimo_real *dx, int rows, int in, int cols,
                         const mimo_real *dout, const mimo_real *params,
                         mimo_real *grads, mimo_real dx_beta)
{
    const mimo_tensor *K = &n->tensors[kt];
    if (K->trained)
        MIMO_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, in, cols, rows, 1, x, in,
                  dout, cols, 1, grads + K->off, cols);
    if (bt >= 0 && n->tensors[bt].trained) {
        mimo_real *db = grads + n->tensors[bt].off;
        for (size_t r = 0; r < (size_t)rows; r++)
            for (size_t j = 0; j < (size_t)cols; j++)
                db[j] += dout[r * cols + j];
    }
    if (dx)
        MIMO_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, rows, in, cols, 1, dout,
                  cols, params + K->off, cols, dx_beta, dx, in);
}

static void att_backward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                         mimo_real *grads, int b)
{
    att_node *d = n->priv;
    mimo_node *pq = MIMO_PARENT(g, n, 0), *pv = MIMO_PARENT(g, n, 1);
    mimo_node *pk = MIMO_PARENT(g, n, n->n_in - 1);
    const int H = d->H, rq = b * d->Tq, rv = b * d->Tv, drop = dropping(g, d);
    /* y = c Wo + bo: dc = dy Wo^T (written, beta 0) */
    project_back(n, d->kernel[P_O], d->bias[P_O], d->c, d->gc, rq, H * d->Dv,
                 d->dout, n->dy, params, grads, 0);
    for (int r = 0; r < b; r++)
        for (int h = 0; h < H; h++)
            attend_back(d, r, h, drop);
    project_back(n, d->kernel[P_Q], d->bias[P_Q], pq->y, pq->dy, rq, d->dq, H * d->Dk,
                 d->gq, params, grads, 1);
    /* key_bias: no gradient added. It adds q_i . b_k to every score of
     * query i's row, which the softmax cancels: its gradient is exactly
     * zero (the column sums of ds are 0), and the float sum's rounding
     * noise, which Adam would scale up to steps of lr, would make it
     * drift differently on every rank count. */
    project_back(n, d->kernel[P_K], -1, pk->y, pk->dy, rv, d->dk, H * d->Dk, d->gk,
                 params, grads, 1);
    project_back(n, d->kernel[P_V], d->bias[P_V], pv->y, pv->dy, rv, d->dv, H * d->Dv,
                 d->gv, params, grads, 1);
}

static void att_describe(const mimo_node *n, char *buf, size_t len)
{
    const att_node *d = n->priv;
    snprintf(buf, len, "multi_head_attention(%dx%d%s)", d->H, d->Dk,
             d->causal ? ", causal" : "");
}

/* forward: the four projections, the scores and the weighted sums;
 * backward twice those (the weights' and the inputs' gradients) */
static double att_flops(const mimo_graph *g, const mimo_node *n)
{
    (void)g;
    const att_node *d = n->priv;
    double H = d->H, Tq = d->Tq, Tv = d->Tv;
    double proj = 2 * (Tq * d->dq * H * d->Dk + Tv * d->dk * H * d->Dk +
                       Tv * d->dv * H * d->Dv + Tq * H * d->Dv * d->dout);
    double att = 2 * H * Tq * Tv * (d->Dk + d->Dv);
    return 3 * (proj + att);
}

/* every buffer but y, as att_buffers takes them for training */
static size_t att_scratch(const mimo_graph *g, const mimo_node *n, size_t b)
{
    (void)g;
    const att_node *d = n->priv;
    size_t H = (size_t)d->H, Tq = (size_t)d->Tq, Tv = (size_t)d->Tv;
    size_t qkvc = Tq * H * d->Dk + Tv * H * d->Dk + Tv * H * d->Dv + Tq * H * d->Dv;
    size_t w = H * Tq * Tv * (d->rate > 0 ? 3 : 1);
    return b * (2 * qkvc + w + Tv) + Tq * Tv;
}

/* masks: read (a masked value or key step gets no weight); the output
 * keeps the query's time axis and so its mask (Keras) */
static int att_masking(const mimo_graph *g, const mimo_node *n)
{
    (void)g, (void)n;
    return MIMO_MASK_USE | MIMO_MASK_PASS;
}

/* ---- ONNX: MatMul, Reshape, Transpose, Softmax ---------------------------- */

/* x (N, T, d) projected by kernel t (d, H, c) seen as (d, H c), plus its
 * bias, as (N, H, T, c), or (N, H, c, T) with keys_last (for the scores). */
static const char *onnx_project(mimo_onnx *x, const mimo_node *n, const att_node *d,
                                int t, const char *in, int T, int c, int keys_last)
{
    const mimo_tensor *K = &n->tensors[d->kernel[t]];
    const long long kd[2] = {K->shape.dim[0], (long long)d->H * c};
    const long long bd[1] = {(long long)d->H * c};
    const char *v = mimo_onnx_op2(x, "MatMul", in,
                                  x->constant(x, K->name, x->params + K->off, kd, 2));
    if (d->bias[t] >= 0)
        v = mimo_onnx_op2(x, "Add", v, x->constant(x, n->tensors[d->bias[t]].name,
                                                   x->params + n->tensors[d->bias[t]].off,
                                                   bd, 1));
    const mimo_shape s = {3, {T, d->H, c}};
    static const long long nhtc[4] = {0, 2, 1, 3}, nhct[4] = {0, 2, 3, 1};
    return mimo_onnx_transpose(x, mimo_onnx_reshape(x, v, &s), keys_last ? nhct : nhtc, 4);
}

/* (Tq, Tv): 0 where key j may be seen from query i (j <= i), -1e30
 * elsewhere, added to the scores before the softmax (exp gives 0). */
static const char *onnx_causal(mimo_onnx *x, const att_node *d)
{
    mimo_real *t = calloc((size_t)d->Tq * d->Tv, sizeof *t);
    if (!t)
        return NULL;
    for (int i = 0; i < d->Tq; i++)
        for (int j = i + 1; j < d->Tv; j++)
            t[(size_t)i * d->Tv + j] = (mimo_real)-1e30;
    const long long dims[2] = {d->Tq, d->Tv};
    const char *c = x->constant(x, "causal", t, dims, 2);
    free(t);
    return c;
}

/* Where(c, a, b) */
static const char *onnx_where(mimo_onnx *x, const char *c, const char *a, const char *b)
{
    const char *in[3] = {c, a, b};
    return c && a && b ? x->op(x, "Where", in, 3, NULL, 0) : NULL;
}

/* The keys seen, (N, 1, 1, Tv) bool: the value's mask and the key's (the
 * masks of inputs 1 and 2, and'ed); NULL when neither has one. */
static const char *onnx_keys_seen(mimo_onnx *x, const mimo_node *n, const att_node *d)
{
    const char *mv = x->masks_in ? x->masks_in[1] : NULL;
    const char *mk = x->masks_in && n->n_in == 3 ? x->masks_in[2] : NULL;
    const char *m = mv && mk ? mimo_onnx_op2(x, "And", mv, mk) : mv ? mv : mk;
    const mimo_shape s = {3, {1, 1, d->Tv}};
    return m ? mimo_onnx_reshape(x, m, &s) : NULL;
}

/* The layer in inference (no dropout): q k^T / sqrt(Dk) per head by
 * MatMul on (N, H, Tq, Dk) x (N, H, Dk, Tv), Softmax over the keys,
 * times (N, H, Tv, Dv), the heads back to (N, Tq, H Dv), the output
 * kernel seen as (H Dv, do). Masked keys (the value's and the key's
 * masks, masks_in) are set to -1e30 before the Softmax and its output
 * multiplied by the keys seen, so a query with no key left gets zeros. */
static const char *att_onnx(mimo_onnx *x, const mimo_graph *g, const mimo_node *n,
                            const char *const *in, char *err, size_t len)
{
    (void)g, (void)err, (void)len;
    const att_node *d = n->priv;
    const mimo_real scale = (mimo_real)(1 / sqrt((double)d->Dk));
    const char *q = onnx_project(x, n, d, P_Q, in[0], d->Tq, d->Dk, 0);
    const char *k = onnx_project(x, n, d, P_K, in[n->n_in - 1], d->Tv, d->Dk, 1);
    const char *v = onnx_project(x, n, d, P_V, in[1], d->Tv, d->Dv, 0);
    const char *s = mimo_onnx_op2(x, "MatMul", q, k);
    s = mimo_onnx_op2(x, "Mul", s, x->constant(x, "scale", &scale, NULL, 0));
    if (d->causal)
        s = mimo_onnx_op2(x, "Add", s, onnx_causal(x, d));
    const char *seen = onnx_keys_seen(x, n, d);
    if (seen) /* a masked key: -1e30 before the softmax */
        s = onnx_where(x, seen, s, x->constant(x, "masked", &(mimo_real){(mimo_real)-1e30},
                                               NULL, 0));
    const mimo_onnx_attr last = {.name = "axis", .type = MIMO_ONNX_INT, .i = -1};
    const char *p = s ? x->op(x, "Softmax", &s, 1, &last, 1) : NULL;
    if (seen) { /* a query with no key left: zeros, not the softmax's uniform */
        const mimo_onnx_attr to = {.name = "to", .type = MIMO_ONNX_INT, .i = 1};
        p = mimo_onnx_op2(x, "Mul", p, x->op(x, "Cast", &seen, 1, &to, 1));
    }
    x->mask_used = 1; /* the query's mask is not read: it passes on */
    static const long long nthc[4] = {0, 2, 1, 3};
    const mimo_shape cs = {2, {d->Tq, d->H * d->Dv}};
    const char *c = mimo_onnx_reshape(
        x, mimo_onnx_transpose(x, mimo_onnx_op2(x, "MatMul", p, v), nthc, 4), &cs);
    const mimo_tensor *O = &n->tensors[d->kernel[P_O]];
    const long long od[2] = {(long long)d->H * d->Dv, d->dout};
    const char *y = mimo_onnx_op2(x, "MatMul", c,
                                  x->constant(x, O->name, x->params + O->off, od, 2));
    if (d->bias[P_O] >= 0)
        y = mimo_onnx_op2(x, "Add", y, mimo_onnx_tensor(x, n, d->bias[P_O]));
    return y;
}

const mimo_kind mimo_kind_multi_head_attention = {
    .name = "multi_head_attention",
    .args = att_keys,
    .n_args = (int)(sizeof att_keys / sizeof *att_keys),
    .args_size = sizeof(att_args),
    .defaults = att_defaults,
    .finish = att_finish,
    .node_size = sizeof(att_node),
    .dot_shape = "box",
    .infer = att_infer,
    .masking = att_masking,
    .buffers = att_buffers,
    .forward = att_forward,
    .backward = att_backward,
    .describe = att_describe,
    .flops = att_flops,
    .scratch = att_scratch,
    .onnx = att_onnx,
};
