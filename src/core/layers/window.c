/* window.c — the window geometry conv.c and pool.c share (window.h). */
#include "core/layers/window.h"

#include "core/onnx.h"

#include <stdio.h>

const char *const mimo_window_paddings[] = {"valid", "same", NULL};
const char *const mimo_window_paddings1d[] = {"valid", "same", "causal", NULL};

int mimo_window_pair(const mimo_ints *v, const mimo_ints *dflt, const char *key,
                     int pair[2], char *err, size_t len)
{
    const mimo_ints *x = v->n ? v : dflt;
    if (x->n < 1 || x->n > 2) {
        snprintf(err, len, "%s takes one integer or a pair [height, width], got "
                 "%d values", key, x->n);
        return -1;
    }
    pair[0] = x->v[0];
    pair[1] = x->v[x->n - 1];
    return 0;
}

int mimo_window_one(const mimo_ints *v, const mimo_ints *dflt, const char *key,
                    int *out, char *err, size_t len)
{
    const mimo_ints *x = v->n ? v : dflt;
    if (x->n != 1) {
        snprintf(err, len, "%s takes one integer (the window along time), got "
                 "%d values", key, x->n);
        return -1;
    }
    *out = x->v[0];
    return 0;
}

/* out and the padding before, along one axis; span = (k - 1) dil + 1 */
static void axis(int in, int span, int s, int pad, int *out, int *before)
{
    if (pad == MIMO_PAD_VALID) {
        *out = (in - span) / s + 1;
        *before = 0;
        return;
    }
    *out = (in + s - 1) / s;
    if (pad == MIMO_PAD_CAUSAL) {
        *before = span - 1;
        return;
    }
    long long total = (long long)(*out - 1) * s + span - in;
    *before = total > 0 ? (int)(total / 2) : 0;
}

int mimo_window_infer(mimo_graph *g, mimo_node *n, const int k[2],
                      const int s[2], int same, const char *what,
                      mimo_window *w, char *err, size_t len)
{
    if (mimo_check_inputs(n, 1, 1, "", err, len))
        return -1;
    const mimo_node *p = MIMO_PARENT(g, n, 0);
    char sh[96];
    mimo_shape_format(&p->shape, sh, sizeof sh);
    if (p->shape.rank != 3) {
        snprintf(err, len, "%s layer '%s' needs an image input (height, width, "
                 "channels), but '%s' has shape %s; give the input a shape like "
                 "[28, 28, 1] or reshape it first (type: reshape, target_shape: "
                 "[h, w, c])", n->kind->name, n->name, p->name, sh);
        return -1;
    }
    *w = (mimo_window){p->shape.dim[0], p->shape.dim[1], p->shape.dim[2],
                       k[0], k[1], s[0], s[1], 0, 0, 0, 0, 1};
    if (!same && (k[0] > w->in_h || k[1] > w->in_w)) {
        snprintf(err, len, "%s layer '%s': %s %dx%d is larger than its input "
                 "'%s' of %dx%d (height x width, shape %s) with padding: valid; "
                 "use a smaller %s or padding: same", n->kind->name, n->name,
                 what, k[0], k[1], p->name, w->in_h, w->in_w, sh, what);
        return -1;
    }
    if ((long long)k[0] * k[1] * w->c > (1LL << 30)) {
        snprintf(err, len, "%s layer '%s': %s %dx%d over %d channels is too "
                 "large", n->kind->name, n->name, what, k[0], k[1], w->c);
        return -1;
    }
    axis(w->in_h, k[0], s[0], same, &w->out_h, &w->pad_top);
    axis(w->in_w, k[1], s[1], same, &w->out_w, &w->pad_left);
    return 0;
}

const char *mimo_window_onnx(mimo_onnx *o, const mimo_window *w, const char *op,
                             const char *x, const char *const *more, int n_more)
{
    static const long long to_nchw[4] = {0, 3, 1, 2}, to_nhwc[4] = {0, 2, 3, 1};
    int dil = w->dil > 1 ? w->dil : 1; /* along the width (a 1-D window's time) */
    int bottom = (w->out_h - 1) * w->sh + w->kh - w->in_h - w->pad_top;
    int right = (w->out_w - 1) * w->sw + (w->kw - 1) * dil + 1 - w->in_w - w->pad_left;
    const long long k[2] = {w->kh, w->kw}, s[2] = {w->sh, w->sw}, d[2] = {1, dil};
    const long long pads[4] = {w->pad_top, w->pad_left, bottom > 0 ? bottom : 0,
                               right > 0 ? right : 0};
    const mimo_onnx_attr at[4] = {
        {.name = "kernel_shape", .type = MIMO_ONNX_INTS, .ints = k, .n = 2},
        {.name = "strides", .type = MIMO_ONNX_INTS, .ints = s, .n = 2},
        {.name = "pads", .type = MIMO_ONNX_INTS, .ints = pads, .n = 4},
        {.name = "dilations", .type = MIMO_ONNX_INTS, .ints = d, .n = 2}};
    const char *in[3] = {mimo_onnx_transpose(o, x, to_nchw, 4), NULL, NULL};
    for (int i = 0; i < n_more && i < 2; i++)
        in[i + 1] = more[i];
    for (int i = 0; i <= n_more && i < 3; i++)
        if (!in[i])
            return NULL;
    /* pooling in opset 13 takes no dilations unless dilated (MaxPool) */
    return mimo_onnx_transpose(o, o->op(o, op, in, 1 + n_more, at, dil > 1 ? 4 : 3),
                               to_nhwc, 4);
}

int mimo_window_infer1d(mimo_graph *g, mimo_node *n, int k, int s, int dil,
                        int pad, const char *what, mimo_window *w, char *err,
                        size_t len)
{
    if (mimo_check_inputs(n, 1, 1, "", err, len))
        return -1;
    const mimo_node *p = MIMO_PARENT(g, n, 0);
    char sh[96];
    mimo_shape_format(&p->shape, sh, sizeof sh);
    if (p->shape.rank != 2) {
        snprintf(err, len, "%s layer '%s' needs a sequence input (timesteps, "
                 "features), but '%s' has shape %s; give the input a shape like "
                 "[24, 3], or return_sequences: true on a recurrent layer",
                 n->kind->name, n->name, p->name, sh);
        return -1;
    }
    long long span = (long long)(k - 1) * dil + 1;
    *w = (mimo_window){1, p->shape.dim[0], p->shape.dim[1], 1, k, 1, s,
                       1, 0, 0, 0, dil};
    if (pad == MIMO_PAD_VALID && span > w->in_w) {
        snprintf(err, len, "%s layer '%s': its input '%s' has %d timesteps "
                 "(shape %s), shorter than the %s of %d%s with padding: valid; "
                 "use a smaller %s or padding: same", n->kind->name, n->name,
                 p->name, w->in_w, sh, what, (int)span,
                 dil > 1 ? " (dilated)" : "", what);
        return -1;
    }
    if (span > (1 << 30) || (long long)k * w->c > (1LL << 30)) {
        snprintf(err, len, "%s layer '%s': %s %d over %d features is too "
                 "large", n->kind->name, n->name, what, k, w->c);
        return -1;
    }
    axis(w->in_w, (int)span, s, pad, &w->out_w, &w->pad_left);
    return 0;
}

const char *mimo_window_onnx_node(mimo_onnx *o, const mimo_graph *g, const mimo_node *n,
                                  const mimo_window *w, const char *op, const char *x,
                                  const char *const *more, int n_more)
{
    const mimo_node *p = MIMO_PARENT(g, n, 0);
    if (p->shape.rank == 2) {
        const mimo_shape image = {3, {1, p->shape.dim[0], p->shape.dim[1]}};
        x = mimo_onnx_reshape(o, x, &image);
    }
    return mimo_onnx_reshape(o, mimo_window_onnx(o, w, op, x, more, n_more), &n->shape);
}
