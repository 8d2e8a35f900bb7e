/* rnn.c — the recurrent kinds gru and lstm (Keras' GRU with reset_after:
 * true, and LSTM) over (timesteps, features) sequences. They share one
 * file because they share everything but the cell: the order of the
 * steps (go_backwards), the mask, the input projection, the output.
 *
 * Layout: every buffer is time-major in the order the steps run (step k
 * reads timestep t = k, or T-1-k with go_backwards), so each step's rows
 * are one (b, .) block for the matrix products:
 *   xt  (T, b, d)     the input, reordered once
 *   pre (T, b, G)     G = 3u (gru) or 4u (lstm): x W + bias for all steps
 *                     in ONE sgemm, then each step adds its recurrent part
 *                     (one (b, u) x (u, G) sgemm per step)
 *   h   (T+1, b, u)   the states, h[0] = 0 (c likewise for lstm)
 * gru, gates [z, r, h] (kernel (d, 3u), recurrent_kernel (u, 3u), bias
 * (2, 3u): input bias, recurrent bias):
 *   hp = h U + b_r;  z = ra(xz + hpz);  r = ra(xr + hpr)
 *   hh = act(xh + r hph);  h' = z h + (1 - z) hh
 * lstm, gates [i, f, c, o] (kernel (d, 4u), recurrent_kernel (u, 4u),
 * bias (4u); unit_forget_bias: the forget gate's bias starts at 1):
 *   g = x W + h U + b;  i, f, o = ra(g);  cc = act(g_c)
 *   c' = f c + i cc;  h' = o act(c')
 * ra is recurrent_activation (sigmoid), act activation (tanh).
 * A masked step (mask 0) carries the state over: h' = h (and c' = c), so
 * with return_sequences its output repeats the previous output (zeros
 * before the first step), as Keras; with zero_output_for_mask its output
 * is zero instead (the state still carries over; Keras' Bidirectional
 * sets it). Output: the last step's (u), or every step's (T, u) in the
 * order run (go_backwards: reversed, as Keras).
 * Backward walks the steps in reverse: the gates' gradients of every step
 * are kept, and the kernels' gradients are then one sgemm each over all
 * steps (x^T dG, h^T dG), as is the input's (dG W^T). No allocation: all
 * buffers come from the graph's arena. The layer itself (mimo_rnn, rnn.h)
 * reads its input, mask and output gradient from pointers, so
 * bidirectional.c runs two of them in one node. */
#include <cblas.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <tgmath.h>

#include "core/kind.h"
#include "core/layers/rnn.h"
#include "core/onnx.h"

#define RNN_KEYS(EXTRA)                                                          \
    {MIMO_ARG(mimo_rnn_args, units), .type = MIMO_ARG_INT, .required = 1, .lo = 1,    \
     .hi = 1 << 20, .expect = "an integer > 0"},                                 \
    {MIMO_ARG(mimo_rnn_args, activation), .type = MIMO_ARG_ACT},                      \
    {MIMO_ARG(mimo_rnn_args, recurrent_activation), .type = MIMO_ARG_ACT},            \
    {MIMO_ARG(mimo_rnn_args, use_bias), .type = MIMO_ARG_BOOL},                       \
    {MIMO_ARG(mimo_rnn_args, return_sequences), .type = MIMO_ARG_BOOL},               \
    {MIMO_ARG(mimo_rnn_args, go_backwards), .type = MIMO_ARG_BOOL},                   \
    {MIMO_ARG(mimo_rnn_args, zero_output_for_mask), .type = MIMO_ARG_BOOL},           \
    {MIMO_ARG(mimo_rnn_args, kernel_initializer), .type = MIMO_ARG_INIT},             \
    {MIMO_ARG(mimo_rnn_args, recurrent_initializer), .type = MIMO_ARG_INIT},          \
    {MIMO_ARG(mimo_rnn_args, bias_initializer), .type = MIMO_ARG_INIT},               \
    {MIMO_ARG(mimo_rnn_args, EXTRA), .type = MIMO_ARG_BOOL}

static const mimo_arg gru_keys[] = {RNN_KEYS(reset_after)};
static const mimo_arg lstm_keys[] = {RNN_KEYS(unit_forget_bias)};

static void rnn_defaults(void *p)
{
    mimo_rnn_args *a = p;
    a->activation = MIMO_ACT_TANH;
    a->recurrent_activation = MIMO_ACT_SIGMOID;
    a->use_bias = 1;
    a->unit_forget_bias = 1;
    a->reset_after = 1;
    a->kernel_initializer = (mimo_init){MIMO_INIT_GLOROT_UNIFORM, 0, 0};
    a->recurrent_initializer = (mimo_init){MIMO_INIT_ORTHOGONAL, 0, 0};
    a->bias_initializer = (mimo_init){MIMO_INIT_ZEROS, 0, 0};
}

static int rnn_finish(void *p, char *err, size_t len)
{
    const mimo_rnn_args *a = p;
    if (a->activation == MIMO_ACT_SOFTMAX || a->recurrent_activation == MIMO_ACT_SOFTMAX) {
        snprintf(err, len, "softmax is no activation of a recurrent cell (it "
                 "normalizes over a whole axis); use tanh, sigmoid, relu, ...");
        return -1;
    }
    if (!a->reset_after) {
        snprintf(err, len, "reset_after: false (the GRU of Keras 1 and "
                 "CuDNN-less TF1) is not supported; mimo's gru is Keras' "
                 "default, reset_after: true");
        return -1;
    }
    return 0;
}

int mimo_rnn_infer(mimo_rnn *d, mimo_node *n, const mimo_rnn_args *a, int lstm,
                   const mimo_node *p, const char *const names[3], char *err,
                   size_t len)
{
    if (p->shape.rank != 2) {
        char sh[96];
        mimo_shape_format(&p->shape, sh, sizeof sh);
        snprintf(err, len, "%s layer '%s' needs a sequence input (timesteps, "
                 "features), but '%s' has shape %s; give the input a shape like "
                 "[24, 3], or return_sequences: true on a recurrent layer",
                 n->kind->name, n->name, p->name, sh);
        return -1;
    }
    d->lstm = lstm;
    d->t0 = n->n_tensors;
    d->T = p->shape.dim[0], d->d = p->shape.dim[1], d->u = a->units;
    d->G = (d->lstm ? 4 : 3) * a->units;
    d->seq = a->return_sequences, d->back = a->go_backwards;
    d->zero = a->zero_output_for_mask;
    d->use_bias = a->use_bias;
    d->act = a->activation, d->ract = a->recurrent_activation;
    d->alpha = (mimo_real)mimo_act_alpha_default(a->activation);
    d->ralpha = (mimo_real)mimo_act_alpha_default(a->recurrent_activation);
    if ((long long)d->G * (d->d + d->u + 2) > INT_MAX / 2) {
        snprintf(err, len, "%s layer '%s': %d units over %d features is too "
                 "large", n->kind->name, n->name, d->u, d->d);
        return -1;
    }
    mimo_shape ks = {2, {d->d, d->G}}, rs = {2, {d->u, d->G}};
    mimo_shape bs = d->lstm ? (mimo_shape){1, {d->G}} : (mimo_shape){2, {2, d->G}};
    if (mimo_node_add_tensor(n, names[0], &ks, a->kernel_initializer, d->d, d->G) < 0 ||
        mimo_node_add_tensor(n, names[1], &rs, a->recurrent_initializer,
                             d->u, d->G) < 0 ||
        (a->use_bias && mimo_node_add_tensor(n, names[2], &bs, a->bias_initializer,
                                             d->d, d->G) < 0))
        return -1; /* out of memory: no message */
    return 0;
}

static int rnn_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    static const char *const names[3] = {"kernel", "recurrent_kernel", "bias"};
    mimo_rnn *d = n->priv;
    if (mimo_check_inputs(n, 1, 1, "", err, len) ||
        mimo_rnn_infer(d, n, n->args, n->kind == &mimo_kind_lstm, MIMO_PARENT(g, n, 0),
                       names, err, len))
        return -1;
    n->shape = d->seq ? (mimo_shape){2, {d->T, d->u}} : (mimo_shape){1, {d->u}};
    return 0;
}

/* lstm's unit_forget_bias: the forget gate's bias [u, 2u) starts at 1 */
void mimo_rnn_init(const mimo_rnn *d, const mimo_node *n, const mimo_rnn_args *a,
                   mimo_real *params)
{
    if (!d->lstm || !a->use_bias || !a->unit_forget_bias)
        return;
    for (int j = 0; j < d->u; j++)
        params[n->tensors[d->t0 + 2].off + (size_t)(d->u + j)] = 1;
}

static void rnn_init(const mimo_node *n, mimo_real *params)
{
    mimo_rnn_init(n->priv, n, n->args, params);
}

void mimo_rnn_buffers(mimo_rnn *d, const mimo_graph *g, mimo_arena *a, int own_mask,
                      int train, int dx)
{
    size_t B = (size_t)g->max_batch, T = (size_t)d->T, u = (size_t)d->u;
    size_t G = (size_t)d->G;
    d->xt = mimo_arena_take(a, T * B * (size_t)d->d);
    d->pre = mimo_arena_take(a, T * B * G);
    d->gate = mimo_arena_take(a, T * B * G);
    d->hp = d->lstm ? NULL : mimo_arena_take(a, T * B * G);
    d->h = mimo_arena_take(a, (T + 1) * B * u);
    d->c = d->lstm ? mimo_arena_take(a, (T + 1) * B * u) : NULL;
    d->tc = d->lstm ? mimo_arena_take(a, T * B * u) : NULL;
    d->m = mimo_arena_take(a, T * B);
    d->mask_out = own_mask ? mimo_arena_take(a, B * T) : NULL;
    d->dx = dx;
    if (!train) /* inference only: no backward buffers */
        return;
    d->dgx = mimo_arena_take(a, T * B * G);
    d->dgh = d->lstm ? d->dgx : mimo_arena_take(a, T * B * G);
    d->raw = mimo_arena_take(a, B * G);
    d->dh = mimo_arena_take(a, B * u);
    d->dh2 = mimo_arena_take(a, B * u);
    d->dc = mimo_arena_take(a, B * u);
    d->tmp = mimo_arena_take(a, B * u);
    d->dxt = d->dx ? mimo_arena_take(a, T * B * (size_t)d->d) : NULL;
}

static void rnn_buffers(mimo_graph *g, mimo_node *n, mimo_arena *a)
{
    mimo_rnn *d = n->priv;
    n->y = mimo_arena_take(a, (size_t)g->max_batch * (size_t)n->width);
    mimo_rnn_buffers(d, g, a, n->mask_src == (int)(n - g->nodes), n->dy != NULL,
                     MIMO_PARENT(g, n, 0)->dy != NULL);
    n->mask = d->mask_out;
}

/* act over the columns [off, off + len) of b rows of width G */
static void seg_forward(mimo_act f, mimo_real alpha, mimo_real *z, mimo_real *y,
                        int b, int G, int off, int len)
{
    for (int s = 0; s < b; s++)
        mimo_act_forward(f, alpha, NULL, z + (size_t)s * G + off,
                         y + (size_t)s * G + off, 1, len);
}

/* dz = dy act'(z) over the same columns */
static void seg_backward(mimo_act f, mimo_real alpha, const mimo_real *z,
                         const mimo_real *y, const mimo_real *dy, mimo_real *dz,
                         int b, int G, int off, int len)
{
    for (int s = 0; s < b; s++) {
        size_t o = (size_t)s * G + off;
        mimo_act_backward(f, alpha, z + o, y + o, dy + o, dz + o, 1, len);
    }
}

static int step_time(const mimo_rnn *d, int k) { return d->back ? d->T - 1 - k : k; }

/* xt and the mask in step order; pre = xt W + input bias, every step */
static void project_inputs(mimo_rnn *d, const mimo_node *n, const mimo_real *params,
                           const mimo_real *x, const mimo_real *mask, int b)
{
    size_t D = (size_t)d->d, G = (size_t)d->G;
    for (int k = 0; k < d->T; k++) {
        int t = step_time(d, k);
        for (int s = 0; s < b; s++) {
            memcpy(d->xt + ((size_t)k * b + s) * D,
                   x + ((size_t)s * d->T + t) * D, sizeof(mimo_real) * D);
            d->m[(size_t)k * b + s] = mask ? mask[(size_t)s * d->T + t] : 1;
        }
    }
    int rows = d->T * b;
    MIMO_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, d->G, d->d, 1, d->xt,
              d->d, params + n->tensors[d->t0].off, d->G, 0, d->pre, d->G);
    if (d->use_bias) {
        const mimo_real *bias = params + n->tensors[d->t0 + 2].off; /* row 0 for gru */
        for (size_t r = 0; r < (size_t)rows; r++)
            for (size_t j = 0; j < G; j++)
                d->pre[r * G + j] += bias[j];
    }
}

static void gru_step(mimo_rnn *d, const mimo_real *U, const mimo_real *brec, int k,
                     int b)
{
    const int u = d->u, G = d->G;
    const size_t blk = (size_t)b * G;
    const mimo_real *h = d->h + (size_t)k * b * u, *m = d->m + (size_t)k * b;
    mimo_real *hn = d->h + (size_t)(k + 1) * b * u;
    mimo_real *P = d->pre + k * blk, *A = d->gate + k * blk, *HP = d->hp + k * blk;
    MIMO_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, b, G, u, 1, h, u, U, G, 0,
              HP, G);
    for (int s = 0; s < b; s++) {
        mimo_real *hps = HP + (size_t)s * G, *ps = P + (size_t)s * G;
        for (int j = 0; brec && j < G; j++)
            hps[j] += brec[j];
        for (int j = 0; j < 2 * u; j++)
            ps[j] += hps[j];
    }
    seg_forward(d->ract, d->ralpha, P, A, b, G, 0, 2 * u);
    for (int s = 0; s < b; s++) {
        mimo_real *ps = P + (size_t)s * G, *as = A + (size_t)s * G;
        const mimo_real *hps = HP + (size_t)s * G;
        for (int j = 0; j < u; j++)
            ps[2 * u + j] += as[u + j] * hps[2 * u + j];
    }
    seg_forward(d->act, d->alpha, P, A, b, G, 2 * u, u);
    for (int s = 0; s < b; s++) {
        const mimo_real *as = A + (size_t)s * G, *hs = h + (size_t)s * u;
        mimo_real *ho = hn + (size_t)s * u;
        if (m[s] == 0) {
            memcpy(ho, hs, sizeof(mimo_real) * (size_t)u);
            continue;
        }
        for (int j = 0; j < u; j++)
            ho[j] = as[j] * hs[j] + (1 - as[j]) * as[2 * u + j];
    }
}

static void lstm_step(mimo_rnn *d, const mimo_real *U, int k, int b)
{
    const int u = d->u, G = d->G;
    const size_t blk = (size_t)b * G, su = (size_t)b * u;
    const mimo_real *h = d->h + k * su, *c = d->c + k * su, *m = d->m + (size_t)k * b;
    mimo_real *hn = d->h + (k + 1) * su, *cn = d->c + (k + 1) * su, *tc = d->tc + k * su;
    mimo_real *P = d->pre + k * blk, *A = d->gate + k * blk;
    MIMO_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, b, G, u, 1, h, u, U, G, 1,
              P, G);
    seg_forward(d->ract, d->ralpha, P, A, b, G, 0, 2 * u);
    seg_forward(d->act, d->alpha, P, A, b, G, 2 * u, u);
    seg_forward(d->ract, d->ralpha, P, A, b, G, 3 * u, u);
    for (int s = 0; s < b; s++) {
        const mimo_real *as = A + (size_t)s * G, *cs = c + (size_t)s * u;
        mimo_real *co = cn + (size_t)s * u;
        for (int j = 0; j < u; j++)
            co[j] = m[s] == 0 ? cs[j] : as[u + j] * cs[j] + as[j] * as[2 * u + j];
    }
    mimo_act_forward(d->act, d->alpha, NULL, cn, tc, b, u);
    for (int s = 0; s < b; s++) {
        const mimo_real *as = A + (size_t)s * G, *ts = tc + (size_t)s * u;
        mimo_real *ho = hn + (size_t)s * u;
        for (int j = 0; j < u; j++)
            ho[j] = m[s] == 0 ? h[(size_t)s * u + j] : as[3 * u + j] * ts[j];
    }
}

/* Whether step k's output of row s is zero (zero_output_for_mask) */
static int zeroed(const mimo_rnn *d, int k, int s, int b)
{
    return d->zero && d->m[(size_t)k * b + s] == 0;
}

void mimo_rnn_forward(mimo_rnn *d, const mimo_node *n, const mimo_real *params,
                      const mimo_real *x, const mimo_real *mask, mimo_real *y, int b)
{
    const size_t u = (size_t)d->u, su = (size_t)b * u;
    const mimo_real *U = params + n->tensors[d->t0 + 1].off;
    const mimo_real *brec = !d->lstm && d->use_bias
                                ? params + n->tensors[d->t0 + 2].off + d->G : NULL;
    project_inputs(d, n, params, x, mask, b);
    memset(d->h, 0, sizeof(mimo_real) * su);
    if (d->lstm)
        memset(d->c, 0, sizeof(mimo_real) * su);
    for (int k = 0; k < d->T; k++) {
        if (d->lstm)
            lstm_step(d, U, k, b);
        else
            gru_step(d, U, brec, k, b);
    }
    for (int k = 0; d->mask_out && k < d->T; k++)
        for (int s = 0; s < b; s++)
            d->mask_out[(size_t)s * d->T + k] = d->m[(size_t)k * b + s];
    for (int s = 0; s < b; s++)
        for (int k = d->seq ? 0 : d->T - 1; k < d->T; k++) {
            mimo_real *ys = y + ((size_t)s * (d->seq ? d->T : 1) + (d->seq ? k : 0)) * u;
            if (zeroed(d, k, s, b))
                memset(ys, 0, sizeof(mimo_real) * u);
            else
                memcpy(ys, d->h + (k + 1) * su + s * u, sizeof(mimo_real) * u);
        }
}

static void rnn_forward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                        int b)
{
    const mimo_node *p = MIMO_PARENT(g, n, 0);
    mimo_rnn_forward(n->priv, n, params, p->y, p->mask, n->y, b);
}

/* dh += the output's gradient at step k */
static void add_output_grad(mimo_rnn *d, const mimo_real *dy, int k, int b)
{
    const size_t u = (size_t)d->u;
    if (!d->seq && k != d->T - 1)
        return;
    for (int s = 0; s < b; s++) {
        if (zeroed(d, k, s, b))
            continue;
        const mimo_real *dys = d->seq ? dy + ((size_t)s * d->T + k) * u
                                      : dy + (size_t)s * u;
        for (size_t j = 0; j < u; j++)
            d->dh[s * u + j] += dys[j];
    }
}

/* Step k of gru backward: the gates' gradients into dgx, dgh (zeros where
 * masked), dh2 = the gradient of h[k] (less its recurrent product). */
static void gru_back(mimo_rnn *d, int k, int b)
{
    const int u = d->u, G = d->G;
    const size_t blk = (size_t)b * G;
    const mimo_real *h = d->h + (size_t)k * b * u, *m = d->m + (size_t)k * b;
    const mimo_real *P = d->pre + k * blk, *A = d->gate + k * blk, *HP = d->hp + k * blk;
    mimo_real *DX = d->dgx + k * blk, *DH = d->dgh + k * blk, *R = d->raw;
    for (int s = 0; s < b; s++) { /* dz and dhh, before act' */
        const mimo_real *as = A + (size_t)s * G, *hs = h + (size_t)s * u;
        const mimo_real *dh = d->dh + (size_t)s * u;
        mimo_real *rs = R + (size_t)s * G;
        for (int j = 0; j < u; j++) {
            rs[j] = dh[j] * (hs[j] - as[2 * u + j]);
            rs[2 * u + j] = dh[j] * (1 - as[j]);
        }
    }
    seg_backward(d->act, d->alpha, P, A, R, DX, b, G, 2 * u, u);
    for (int s = 0; s < b; s++) { /* dr = d(pre_h) hph */
        mimo_real *rs = R + (size_t)s * G;
        const mimo_real *xs = DX + (size_t)s * G, *hps = HP + (size_t)s * G;
        for (int j = 0; j < u; j++)
            rs[u + j] = xs[2 * u + j] * hps[2 * u + j];
    }
    seg_backward(d->ract, d->ralpha, P, A, R, DX, b, G, 0, 2 * u);
    for (int s = 0; s < b; s++) {
        mimo_real *xs = DX + (size_t)s * G, *hs = DH + (size_t)s * G;
        const mimo_real *as = A + (size_t)s * G, *dh = d->dh + (size_t)s * u;
        mimo_real *o = d->dh2 + (size_t)s * u;
        if (m[s] == 0) {
            memset(xs, 0, sizeof(mimo_real) * (size_t)G);
            memset(hs, 0, sizeof(mimo_real) * (size_t)G);
            memcpy(o, dh, sizeof(mimo_real) * (size_t)u);
            continue;
        }
        for (int j = 0; j < 2 * u; j++)
            hs[j] = xs[j];
        for (int j = 0; j < u; j++) {
            hs[2 * u + j] = xs[2 * u + j] * as[u + j];
            o[j] = dh[j] * as[j];
        }
    }
}

/* Step k of lstm backward: the gates' gradients into dgx (zeros where
 * masked); dh2 (first the gradient of c' through h') becomes the gradient
 * of h[k] less its recurrent product; dc becomes the gradient of c[k]. */
static void lstm_back(mimo_rnn *d, int k, int b)
{
    const int u = d->u, G = d->G;
    const size_t blk = (size_t)b * G, su = (size_t)b * u;
    const mimo_real *c = d->c + k * su, *cn = d->c + (k + 1) * su, *tc = d->tc + k * su;
    const mimo_real *m = d->m + (size_t)k * b;
    const mimo_real *P = d->pre + k * blk, *A = d->gate + k * blk;
    mimo_real *DG = d->dgx + k * blk, *R = d->raw;
    for (int s = 0; s < b; s++) /* d act(c') = dh o */
        for (int j = 0; j < u; j++)
            d->tmp[s * u + j] = d->dh[s * u + j] * A[(size_t)s * G + 3 * u + j];
    mimo_act_backward(d->act, d->alpha, cn, tc, d->tmp, d->dh2, b, u);
    for (int s = 0; s < b; s++) {
        const mimo_real *as = A + (size_t)s * G, *cs = c + (size_t)s * u;
        const mimo_real *ts = tc + (size_t)s * u;
        mimo_real *rs = R + (size_t)s * G, *dc = d->dc + (size_t)s * u;
        const mimo_real *dh = d->dh + (size_t)s * u, *dt = d->dh2 + (size_t)s * u;
        for (int j = 0; j < u; j++) {
            mimo_real dcn = m[s] == 0 ? dc[j] : dc[j] + dt[j];
            rs[j] = dcn * as[2 * u + j];          /* di */
            rs[u + j] = dcn * cs[j];              /* df */
            rs[2 * u + j] = dcn * as[j];          /* dcc */
            rs[3 * u + j] = dh[j] * ts[j];        /* do */
            dc[j] = m[s] == 0 ? dcn : dcn * as[u + j];
        }
    }
    seg_backward(d->ract, d->ralpha, P, A, R, DG, b, G, 0, 2 * u);
    seg_backward(d->act, d->alpha, P, A, R, DG, b, G, 2 * u, u);
    seg_backward(d->ract, d->ralpha, P, A, R, DG, b, G, 3 * u, u);
    for (int s = 0; s < b; s++) {
        mimo_real *o = d->dh2 + (size_t)s * u;
        if (m[s] == 0) {
            memset(DG + (size_t)s * G, 0, sizeof(mimo_real) * (size_t)G);
            memcpy(o, d->dh + (size_t)s * u, sizeof(mimo_real) * (size_t)u);
        } else {
            memset(o, 0, sizeof(mimo_real) * (size_t)u);
        }
    }
}

/* db[j] += the column sums of the (rows, G) block D */
static void add_colsum(mimo_real *db, const mimo_real *D, size_t rows, int G)
{
    for (size_t r = 0; r < rows; r++)
        for (int j = 0; j < G; j++)
            db[j] += D[r * (size_t)G + j];
}

void mimo_rnn_backward(mimo_rnn *d, const mimo_node *n, const mimo_real *params,
                       mimo_real *grads, const mimo_real *dy, mimo_real *dx, int b)
{
    const mimo_tensor *tn = n->tensors + d->t0;
    const int u = d->u, G = d->G, rows = d->T * b;
    const size_t su = (size_t)b * u, blk = (size_t)b * G;
    const mimo_real *W = params + tn[0].off, *U = params + tn[1].off;
    memset(d->dh, 0, sizeof(mimo_real) * su);
    memset(d->dc, 0, sizeof(mimo_real) * su);
    for (int k = d->T - 1; k >= 0; k--) {
        add_output_grad(d, dy, k, b);
        if (d->lstm)
            lstm_back(d, k, b);
        else
            gru_back(d, k, b);
        /* dh of h[k] = dh2 + dG_k U^T */
        MIMO_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, b, u, G, 1,
                  d->dgh + k * blk, G, U, G, 1, d->dh2, u);
        mimo_real *t = d->dh;
        d->dh = d->dh2, d->dh2 = t;
    }
    if (tn[0].trained) /* dW += xt^T dGx over all steps */
        MIMO_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, d->d, G, rows, 1, d->xt,
                  d->d, d->dgx, G, 1, grads + tn[0].off, G);
    if (tn[1].trained) /* dU += h[0..T-1]^T dGh */
        MIMO_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, u, G, rows, 1, d->h, u,
                  d->dgh, G, 1, grads + tn[1].off, G);
    if (d->use_bias && tn[2].trained) {
        mimo_real *db = grads + tn[2].off;
        add_colsum(db, d->dgx, (size_t)rows, G);
        if (!d->lstm)
            add_colsum(db + G, d->dgh, (size_t)rows, G);
    }
    if (!d->dx || !dx)
        return;
    MIMO_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, rows, d->d, G, 1, d->dgx, G,
              W, G, 0, d->dxt, d->d);
    const size_t D = (size_t)d->d;
    for (int k = 0; k < d->T; k++) {
        int t = step_time(d, k);
        for (int s = 0; s < b; s++) {
            mimo_real *dxs = dx + ((size_t)s * d->T + t) * D;
            const mimo_real *src = d->dxt + ((size_t)k * b + s) * D;
            for (size_t j = 0; j < D; j++)
                dxs[j] += src[j];
        }
    }
}

static void rnn_backward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                         mimo_real *grads, int b)
{
    mimo_rnn_backward(n->priv, n, params, grads, n->dy, MIMO_PARENT(g, n, 0)->dy, b);
}

static void rnn_describe(const mimo_node *n, char *buf, size_t len)
{
    const mimo_rnn *d = n->priv;
    snprintf(buf, len, "%s(%d%s%s)", n->kind->name, d->u, d->seq ? ", seq" : "",
             d->back ? ", backwards" : "");
}

/* forward x W and h U per step; backward dG^T x, h^T dG, dG U^T, and
 * dG W^T when the input takes a gradient */
double mimo_rnn_flops(const mimo_rnn *d, int dx)
{
    double xw = 2.0 * d->T * d->d * d->G, hu = 2.0 * d->T * d->u * d->G;
    return 2 * xw + 3 * hu + (dx ? xw : 0);
}

static double rnn_flops(const mimo_graph *g, const mimo_node *n)
{
    return mimo_rnn_flops(n->priv, MIMO_PARENT(g, n, 0)->dy != NULL);
}

/* every buffer but y, as rnn_buffers takes them for training: the
 * steps' inputs, gates, states, mask and gradients */
size_t mimo_rnn_scratch(const mimo_rnn *d, size_t b, int own_mask, int dx)
{
    size_t T = (size_t)d->T, u = (size_t)d->u, G = (size_t)d->G, D = (size_t)d->d;
    size_t gates = d->lstm ? 3 : 5; /* pre, gate (+ hp), dgx (+ dgh) */
    size_t states = d->lstm ? 2 * (T + 1) + T : T + 1; /* h (+ c, tc) */
    size_t f = T * b * (D + gates * G + 1) + states * b * u + b * (G + 4 * u);
    if (own_mask)
        f += b * T; /* the reversed mask */
    if (dx)
        f += T * b * D;
    return f;
}

static size_t rnn_scratch(const mimo_graph *g, const mimo_node *n, size_t b)
{
    return mimo_rnn_scratch(n->priv, b, n->mask_src == (int)(n - g->nodes),
                            MIMO_PARENT(g, n, 0)->dy != NULL);
}

/* masks: read; every step's output keeps the time axis, in the order run:
 * forwards the input's mask, backwards a reversed one of its own */
static int rnn_masking(const mimo_graph *g, const mimo_node *n)
{
    (void)g;
    const mimo_rnn *d = n->priv;
    return MIMO_MASK_USE | (!d->seq ? 0 : d->back ? MIMO_MASK_OWN : MIMO_MASK_PASS);
}

/* ---- ONNX: the GRU and LSTM operators (no mask) ------------------------ */

/* (1, G, cols) from src (cols, G), transposed, ONNX's gate k taken from
 * mimo's gate order[k] (u rows each); a NULL src gives zeros. */
static const char *onnx_gates(mimo_onnx *x, const char *hint, const mimo_real *src,
                              int cols, int u, int gates, const int *order)
{
    size_t G = (size_t)gates * u;
    mimo_real *t = calloc(G * (size_t)(cols > 0 ? cols : 1), sizeof *t);
    if (!t)
        return NULL;
    for (int k = 0; src && k < gates; k++)
        for (int j = 0; j < u; j++)
            for (int i = 0; i < cols; i++)
                t[((size_t)k * u + j) * cols + i] = src[(size_t)i * G + (size_t)order[k] * u + j];
    const long long dims[3] = {1, (long long)G, cols};
    const char *c = x->constant(x, hint, t, dims, 3);
    free(t);
    return c;
}

/* B (1, 2 G): the input side's bias, then the recurrent side's (gru:
 * Keras' bias rows; lstm: its one bias, zeros after). */
static const char *onnx_bias(mimo_onnx *x, const mimo_node *n, const mimo_rnn *d,
                             const int *order, int gates)
{
    const mimo_real *b = x->params + n->tensors[d->t0 + 2].off;
    size_t G = (size_t)d->G;
    mimo_real *t = calloc(2 * G, sizeof *t);
    if (!t)
        return NULL;
    for (int side = 0; side < (d->lstm ? 1 : 2); side++)
        for (int k = 0; k < gates; k++)
            for (int j = 0; j < d->u; j++)
                t[side * G + (size_t)k * d->u + j] = b[side * G + (size_t)order[k] * d->u + j];
    const long long dims[2] = {1, 2 * (long long)G};
    const char *c = x->constant(x, "bias", t, dims, 2);
    free(t);
    return c;
}

/* ---- ONNX, unrolled: the recurrence written out over the T steps ---- */

/* The gate's columns [k u, (k + 1) u) of the (rows, G) matrix src as a
 * (rows, u) constant; rows 0: the (u) vector of a bias. */
static const char *gate_cols(mimo_onnx *x, const char *hint, const mimo_real *src,
                             int rows, int G, int k, int u)
{
    int r = rows ? rows : 1;
    mimo_real *t = malloc(sizeof *t * (size_t)r * (size_t)u);
    if (!t)
        return NULL;
    for (int i = 0; i < r; i++)
        memcpy(t + (size_t)i * u, src + (size_t)i * G + (size_t)k * u, sizeof *t * (size_t)u);
    const long long dims[2] = {rows, u};
    const char *c = rows ? x->constant(x, hint, t, dims, 2)
                         : x->constant(x, hint, t, dims + 1, 1);
    free(t);
    return c;
}

/* What every step reads: per gate k the input's projection xg[k] (N, T,
 * u) = x W_k (+ the input bias), the recurrent kernel U[k] (u, u) and gru's
 * recurrent bias br[k] (NULL: none); the mask (N, T, 1) (NULL: none). */
typedef struct {
    const char *xg[4], *U[4], *br[4], *mask;
} unrolled;

static int unrolled_setup(mimo_onnx *x, const mimo_node *n, const mimo_rnn *d,
                          const char *in, unrolled *r)
{
    const mimo_real *W = x->params + n->tensors[d->t0].off;
    const mimo_real *U = x->params + n->tensors[d->t0 + 1].off;
    const mimo_real *b = d->use_bias ? x->params + n->tensors[d->t0 + 2].off : NULL;
    const long long two = 2;
    for (int k = 0; k < d->G / d->u; k++) {
        r->xg[k] = mimo_onnx_op2(x, "MatMul", in, gate_cols(x, "W", W, d->d, d->G, k, d->u));
        if (b)
            r->xg[k] = mimo_onnx_op2(x, "Add", r->xg[k], gate_cols(x, "b", b, 0, d->G, k, d->u));
        r->U[k] = gate_cols(x, "U", U, d->u, d->G, k, d->u);
        r->br[k] = b && !d->lstm ? gate_cols(x, "b_rec", b + d->G, 0, d->G, k, d->u) : NULL;
        if (!r->xg[k] || !r->U[k] || (b && !d->lstm && !r->br[k]))
            return -1;
    }
    r->mask = x->mask ? mimo_onnx_op2(x, "Unsqueeze", x->mask,
                                      x->constant_i64(x, "axes", &two, 1)) : NULL;
    return x->mask && !r->mask ? -1 : 0;
}

/* v (N, T, .) at timestep t: (N, .). */
static const char *at_step(mimo_onnx *x, const char *v, int t)
{
    const long long tt = t;
    const mimo_onnx_attr axis1 = {.name = "axis", .type = MIMO_ONNX_INT, .i = 1};
    const char *in[2] = {v, x->constant_i64(x, "t", &tt, 0)};
    return v && in[1] ? x->op(x, "Gather", in, 2, &axis1, 1) : NULL;
}

/* h U_k (+ gru's recurrent bias) */
static const char *recurrent(mimo_onnx *x, const unrolled *r, const char *h, int k)
{
    const char *v = mimo_onnx_op2(x, "MatMul", h, r->U[k]);
    return r->br[k] ? mimo_onnx_op2(x, "Add", v, r->br[k]) : v;
}

/* A masked step keeps the state: where m, v, else old. */
static const char *keep_masked(mimo_onnx *x, const char *m, const char *v, const char *old)
{
    const char *in[3] = {m, v, old};
    return !m ? v : v && old ? x->op(x, "Where", in, 3, NULL, 0) : NULL;
}

/* gru_step: the next state from h at timestep t */
static const char *gru_unrolled(mimo_onnx *x, const mimo_rnn *d, const unrolled *r,
                                const char *h, int t, const char *m)
{
    const mimo_real one = 1;
    const char *hz = recurrent(x, r, h, 0), *hr = recurrent(x, r, h, 1);
    const char *hh = recurrent(x, r, h, 2);
    const char *z = mimo_onnx_act(x, d->ract, d->ralpha,
                                  mimo_onnx_op2(x, "Add", at_step(x, r->xg[0], t), hz));
    const char *rr = mimo_onnx_act(x, d->ract, d->ralpha,
                                   mimo_onnx_op2(x, "Add", at_step(x, r->xg[1], t), hr));
    const char *cand = mimo_onnx_act(x, d->act, d->alpha,
                                     mimo_onnx_op2(x, "Add", at_step(x, r->xg[2], t),
                                                   mimo_onnx_op2(x, "Mul", rr, hh)));
    const char *keep = mimo_onnx_op2(x, "Sub", x->constant(x, "one", &one, NULL, 0), z);
    const char *hn = mimo_onnx_op2(x, "Add", mimo_onnx_op2(x, "Mul", z, h),
                                   mimo_onnx_op2(x, "Mul", keep, cand));
    return keep_masked(x, m, hn, h);
}

/* lstm_step: the next state h (returned) and *c from h, *c at step t */
static const char *lstm_unrolled(mimo_onnx *x, const mimo_rnn *d, const unrolled *r,
                                 const char *h, const char **c, int t, const char *m)
{
    const char *g[4];
    for (int k = 0; k < 4; k++)
        g[k] = mimo_onnx_op2(x, "Add", at_step(x, r->xg[k], t), recurrent(x, r, h, k));
    const char *i = mimo_onnx_act(x, d->ract, d->ralpha, g[0]);
    const char *f = mimo_onnx_act(x, d->ract, d->ralpha, g[1]);
    const char *cc = mimo_onnx_act(x, d->act, d->alpha, g[2]);
    const char *o = mimo_onnx_act(x, d->ract, d->ralpha, g[3]);
    const char *cn = keep_masked(x, m, mimo_onnx_op2(x, "Add", mimo_onnx_op2(x, "Mul", f, *c),
                                                     mimo_onnx_op2(x, "Mul", i, cc)), *c);
    const char *hn = mimo_onnx_op2(x, "Mul", o, mimo_onnx_act(x, d->act, d->alpha, cn));
    *c = cn;
    return keep_masked(x, m, hn, h);
}

/* (N, u) zeros, N from v (N, ...): the first state */
static const char *zero_state(mimo_onnx *x, const char *v, int u)
{
    const long long zero = 0, uu = u;
    const char *n = mimo_onnx_op2(x, "Gather", mimo_onnx_op1(x, "Shape", v),
                                  x->constant_i64(x, "axis0", &zero, 1));
    const mimo_onnx_attr axis0 = {.name = "axis", .type = MIMO_ONNX_INT, .i = 0};
    const char *in[2] = {n, x->constant_i64(x, "units", &uu, 1)};
    const char *shape = n && in[1] ? x->op(x, "Concat", in, 2, &axis0, 1) : NULL;
    return mimo_onnx_op1(x, "ConstantOfShape", shape); /* float zeros */
}

/* v reversed along its time axis 1 */
const char *mimo_rnn_onnx_reversed(mimo_onnx *x, const char *v)
{
    const long long s = -1, e = -(1LL << 62), ax = 1, st = -1;
    const char *sl[5] = {v, x->constant_i64(x, "starts", &s, 1),
                         x->constant_i64(x, "ends", &e, 1),
                         x->constant_i64(x, "axes", &ax, 1),
                         x->constant_i64(x, "steps", &st, 1)};
    for (int k = 0; k < 5; k++)
        if (!sl[k])
            return NULL;
    return x->op(x, "Slice", sl, 5, NULL, 0);
}

/* The layer as rnn_forward runs it, step by step over the fixed T: the
 * states through Where where a mask (x->mask) says a step is masked, any
 * activation through mimo_onnx_act. Output: every step's state in the
 * order run, concatenated (N, T, u), or the last; go_backwards with
 * return_sequences also makes the output's mask, the input's reversed. */
static const char *rnn_onnx_unrolled(mimo_onnx *x, const mimo_node *n, const mimo_rnn *d,
                                     const char *in)
{
    const long long one = 1;
    const mimo_onnx_attr axis1 = {.name = "axis", .type = MIMO_ONNX_INT, .i = 1};
    unrolled r = {{0}, {0}, {0}, NULL};
    const char **outs = d->seq ? calloc((size_t)d->T, sizeof *outs) : NULL;
    if ((d->seq && !outs) || unrolled_setup(x, n, d, in, &r)) {
        free(outs);
        return NULL;
    }
    const char *h = zero_state(x, in, d->u), *c = h, *zero = h, *o = h;
    for (int k = 0; h && k < d->T; k++) {
        int t = step_time(d, k);
        const char *m = r.mask ? at_step(x, r.mask, t) : NULL; /* (N, 1) */
        if (r.mask && !m)
            h = NULL;
        else
            h = d->lstm ? lstm_unrolled(x, d, &r, h, &c, t, m) : gru_unrolled(x, d, &r, h, t, m);
        o = d->zero ? keep_masked(x, m, h, zero) : h; /* zero_output_for_mask */
        if (d->seq)
            outs[k] = mimo_onnx_op2(x, "Unsqueeze", o, x->constant_i64(x, "axes", &one, 1));
        if (!o || (d->seq && !outs[k]))
            h = NULL;
    }
    const char *y = h && d->seq ? x->op(x, "Concat", outs, d->T, &axis1, 1) : h ? o : NULL;
    free(outs);
    if (x->mask)
        x->mask_used = 1;
    return y;
}

/* The sequence (N, T, d) through ONNX's GRU (linear_before_reset: Keras'
 * reset_after) or LSTM (gates i, o, f, c: Keras' i, f, c, o reordered),
 * run over (T, N, d); then every step's output in the order run (go
 * backwards: the reverse direction's outputs reversed in time) or the
 * last one. These operators take no mask but a length per row, which
 * cannot say "masked" in the middle or at the start of a row, and have
 * only their own activations: a masked input or other activations go
 * through rnn_onnx_unrolled. */
const char *mimo_rnn_onnx(mimo_onnx *x, const mimo_node *n, const mimo_rnn *d,
                          const char *in)
{
    static const int gru_order[3] = {0, 1, 2}, lstm_order[4] = {0, 3, 1, 2};
    static const long long tnd[3] = {1, 0, 2};
    if (x->mask || d->ract != MIMO_ACT_SIGMOID || d->act != MIMO_ACT_TANH)
        return rnn_onnx_unrolled(x, n, d, in);
    const int *order = d->lstm ? lstm_order : gru_order, gates = d->lstm ? 4 : 3;
    const char *v[4] = {
        mimo_onnx_transpose(x, in, tnd, 3),
        onnx_gates(x, "W", x->params + n->tensors[d->t0].off, d->d, d->u, gates, order),
        onnx_gates(x, "R", x->params + n->tensors[d->t0 + 1].off, d->u, d->u, gates, order),
        d->use_bias ? onnx_bias(x, n, d, order, gates) : ""};
    const mimo_onnx_attr at[3] = {
        {.name = "hidden_size", .type = MIMO_ONNX_INT, .i = d->u},
        {.name = "direction", .type = MIMO_ONNX_STRING,
         .s = d->back ? "reverse" : "forward"},
        {.name = "linear_before_reset", .type = MIMO_ONNX_INT, .i = 1}};
    for (int k = 0; k < 4; k++)
        if (!v[k])
            return NULL;
    const char *y = x->op(x, d->lstm ? "LSTM" : "GRU", v, 4, at, d->lstm ? 2 : 3);
    const long long one = 1, last = d->back ? 0 : d->T - 1;
    y = mimo_onnx_op2(x, "Squeeze", y, x->constant_i64(x, "axes", &one, 1)); /* (T, N, u) */
    if (!d->seq) {
        const mimo_onnx_attr axis0 = {.name = "axis", .type = MIMO_ONNX_INT, .i = 0};
        const char *gi[2] = {y, x->constant_i64(x, "last", &last, 0)};
        return y && gi[1] ? x->op(x, "Gather", gi, 2, &axis0, 1) : NULL;
    }
    y = mimo_onnx_transpose(x, y, tnd, 3); /* (N, T, u) */
    return d->back ? mimo_rnn_onnx_reversed(x, y) : y;
}

/* go_backwards with return_sequences also makes the output's mask, the
 * input's reversed */
static const char *rnn_onnx(mimo_onnx *x, const mimo_graph *g, const mimo_node *n,
                            const char *const *in, char *err, size_t len)
{
    (void)g, (void)err, (void)len;
    const mimo_rnn *d = n->priv;
    const char *y = mimo_rnn_onnx(x, n, d, in[0]);
    if (y && x->mask && d->seq && d->back && !(x->mask_out = mimo_rnn_onnx_reversed(x, x->mask)))
        return NULL;
    return y;
}

#define RNN_KIND(NAME, KEYS)                                                  \
    {                                                                         \
        .name = NAME, .args = KEYS,                                           \
        .n_args = (int)(sizeof KEYS / sizeof *KEYS),                          \
        .args_size = sizeof(mimo_rnn_args), .defaults = rnn_defaults,         \
        .finish = rnn_finish, .node_size = sizeof(mimo_rnn),                  \
        .dot_shape = "box", .infer = rnn_infer, .buffers = rnn_buffers,       \
        .forward = rnn_forward, .backward = rnn_backward,                     \
        .describe = rnn_describe, .flops = rnn_flops,                         \
        .scratch = rnn_scratch, .init = rnn_init,                             \
        .masking = rnn_masking, .onnx = rnn_onnx,                             \
    }

const mimo_kind mimo_kind_gru = RNN_KIND("gru", gru_keys);
const mimo_kind mimo_kind_lstm = RNN_KIND("lstm", lstm_keys);
