/* activation.c — an activation as a layer of its own: y = act(x), on the
 * last axis (softmax normalizes each position's last axis). No tensors. */
#include <stdio.h>
#include <tgmath.h>

#include "core/kind.h"
#include "core/onnx.h"

typedef struct {
    mimo_act activation;
    double alpha;        /* leaky_relu 0.3, elu 1.0 unless given */
} activation_args;

static const mimo_arg activation_keys[] = {
    {MIMO_ARG(activation_args, activation), .type = MIMO_ARG_ACT, .required = 1},
    {MIMO_ARG(activation_args, alpha), .type = MIMO_ARG_REAL, .lo = -HUGE_VAL,
     .hi = HUGE_VAL, .expect = "a number"},
};

static void activation_defaults(void *p)
{
    activation_args *a = p;
    a->activation = MIMO_ACT_LINEAR;
    a->alpha = NAN;
}

static int activation_finish(void *p, char *err, size_t len)
{
    activation_args *a = p;
    (void)err, (void)len;
    if (isnan(a->alpha))
        a->alpha = mimo_act_alpha_default(a->activation);
    return 0;
}

static int activation_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    const activation_args *a = n->args;
    if (mimo_check_inputs(n, 1, 1, "", err, len))
        return -1;
    n->shape = MIMO_PARENT(g, n, 0)->shape;
    n->act = a->activation;
    n->alpha = (mimo_real)a->alpha;
    return 0;
}

/* y and dz (B, width); z is the parent's output, set in forward. */
static void activation_buffers(mimo_graph *g, mimo_node *n, mimo_arena *a)
{
    size_t len = (size_t)g->max_batch * (size_t)n->width;
    n->y = mimo_arena_take(a, len);
    n->dz = mimo_arena_take(a, len);
}

static void activation_forward(mimo_graph *g, mimo_node *n,
                               const mimo_real *params, int b)
{
    (void)params;
    int last = mimo_shape_last(&n->shape);
    n->z = MIMO_PARENT(g, n, 0)->y;
    mimo_act_forward(n->act, n->alpha, NULL, n->z, n->y, b * (n->width / last),
                     last);
}

/* dx += act'(x) dy (or the dz a fused loss wrote) */
static void activation_backward(mimo_graph *g, mimo_node *n,
                                const mimo_real *params, mimo_real *grads, int b)
{
    (void)params, (void)grads;
    mimo_node *p = MIMO_PARENT(g, n, 0);
    int last = mimo_shape_last(&n->shape);
    if (!p->dy)
        return;
    if (!n->fused)
        mimo_act_backward(n->act, n->alpha, n->z, n->y, n->dy, n->dz,
                          b * (n->width / last), last);
    size_t len = (size_t)b * n->width;
    for (size_t i = 0; i < len; i++)
        p->dy[i] += n->dz[i];
}

static void activation_describe(const mimo_node *n, char *buf, size_t len)
{
    snprintf(buf, len, "activation(%s)", mimo_act_name(n->act));
}

static const char *activation_onnx(mimo_onnx *x, const mimo_graph *g,
                                   const mimo_node *n, const char *const *in,
                                   char *err, size_t len)
{
    (void)g, (void)err, (void)len;
    const char *y = mimo_onnx_act(x, n->act, n->alpha, in[0]);
    /* linear: a value of its own, so the node's name can be given to it */
    return y == in[0] ? mimo_onnx_op1(x, "Identity", y) : y;
}

/* masks: the output keeps the input's time axis (ARCHITECTURE.md, Masks) */
static int activation_masking(const mimo_graph *g, const mimo_node *n)
{
    (void)g, (void)n;
    return MIMO_MASK_PASS;
}

const mimo_kind mimo_kind_activation = {
    .name = "activation",
    .args = activation_keys,
    .n_args = (int)(sizeof activation_keys / sizeof *activation_keys),
    .args_size = sizeof(activation_args),
    .defaults = activation_defaults,
    .finish = activation_finish,
    .dot_shape = "box",
    .flags = MIMO_KIND_LOGITS,
    .infer = activation_infer,
    .masking = activation_masking,
    .buffers = activation_buffers,
    .forward = activation_forward,
    .backward = activation_backward,
    .describe = activation_describe,
    .onnx = activation_onnx,
};
