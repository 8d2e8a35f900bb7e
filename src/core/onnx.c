/* onnx.c — helpers the kinds' ONNX exports share over the builder of
 * core/onnx.h: one- and two-input operators, activations as act.c
 * computes them, parameter tensors as constants, reshapes that keep the
 * batch axis, transposes. */
#include "core/onnx.h"

#include <stdlib.h>
#include <tgmath.h>

const char *mimo_onnx_op1(mimo_onnx *x, const char *op, const char *a)
{
    return a ? x->op(x, op, &a, 1, NULL, 0) : NULL;
}

const char *mimo_onnx_op2(mimo_onnx *x, const char *op, const char *a,
                          const char *b)
{
    const char *in[2] = {a, b};
    return a && b ? x->op(x, op, in, 2, NULL, 0) : NULL;
}

/* c v, c a scalar constant. */
static const char *scaled(mimo_onnx *x, const char *v, double c)
{
    mimo_real k = (mimo_real)c;
    return mimo_onnx_op2(x, "Mul", v, x->constant(x, "c", &k, NULL, 0));
}

/* v + c. */
static const char *shifted(mimo_onnx *x, const char *v, double c)
{
    mimo_real k = (mimo_real)c;
    return mimo_onnx_op2(x, "Add", v, x->constant(x, "c", &k, NULL, 0));
}

/* gelu: x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); its tanh form
 * 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))), as act.c. */
static const char *gelu(mimo_onnx *x, const char *v, int approximate)
{
    const char *inner;
    if (approximate) {
        const char *cube = mimo_onnx_op2(x, "Mul", mimo_onnx_op2(x, "Mul", v, v), v);
        inner = mimo_onnx_op1(x, "Tanh", scaled(x, mimo_onnx_op2(x, "Add", v,
                              scaled(x, cube, 0.044715)), 0.7978845608028654));
    } else {
        inner = mimo_onnx_op1(x, "Erf", scaled(x, v, 0.7071067811865476));
    }
    return scaled(x, mimo_onnx_op2(x, "Mul", v, shifted(x, inner, 1)), 0.5);
}

const char *mimo_onnx_act(mimo_onnx *x, mimo_act a, double alpha, const char *v)
{
    /* Keras' selu constants, as act.c rounds them */
    const mimo_onnx_attr selu[2] = {
        {.name = "alpha", .type = MIMO_ONNX_FLOAT, .f = (mimo_real)1.6732632423543772},
        {.name = "gamma", .type = MIMO_ONNX_FLOAT, .f = (mimo_real)1.0507009873554805}};
    /* relu6(x + 3) / 6 = clip(x / 6 + 1/2, 0, 1) */
    const mimo_onnx_attr hard[2] = {
        {.name = "alpha", .type = MIMO_ONNX_FLOAT, .f = 1.0 / 6},
        {.name = "beta", .type = MIMO_ONNX_FLOAT, .f = 0.5}};
    const mimo_onnx_attr slope = {.name = "alpha", .type = MIMO_ONNX_FLOAT, .f = alpha};
    const mimo_onnx_attr last = {.name = "axis", .type = MIMO_ONNX_INT, .i = -1};
    if (!v)
        return NULL;
    switch (a) {
    case MIMO_ACT_LINEAR: return v;
    case MIMO_ACT_RELU: return mimo_onnx_op1(x, "Relu", v);
    case MIMO_ACT_LEAKY_RELU: return x->op(x, "LeakyRelu", &v, 1, &slope, 1);
    case MIMO_ACT_ELU: return x->op(x, "Elu", &v, 1, &slope, 1);
    case MIMO_ACT_SIGMOID: return mimo_onnx_op1(x, "Sigmoid", v);
    case MIMO_ACT_TANH: return mimo_onnx_op1(x, "Tanh", v);
    case MIMO_ACT_SOFTMAX: return x->op(x, "Softmax", &v, 1, &last, 1);
    case MIMO_ACT_SOFTPLUS: return mimo_onnx_op1(x, "Softplus", v);
    case MIMO_ACT_QUADRATIC: return mimo_onnx_op2(x, "Mul", v, v);
    case MIMO_ACT_GELU: return gelu(x, v, 0);
    case MIMO_ACT_GELU_APPROXIMATE: return gelu(x, v, 1);
    case MIMO_ACT_SWISH: return mimo_onnx_op2(x, "Mul", v, mimo_onnx_op1(x, "Sigmoid", v));
    case MIMO_ACT_SELU: return x->op(x, "Selu", &v, 1, selu, 2);
    case MIMO_ACT_MISH:
        return mimo_onnx_op2(x, "Mul", v,
                             mimo_onnx_op1(x, "Tanh", mimo_onnx_op1(x, "Softplus", v)));
    case MIMO_ACT_HARD_SIGMOID: return x->op(x, "HardSigmoid", &v, 1, hard, 2);
    case MIMO_ACT_COUNT: break;
    }
    return NULL;
}

const char *mimo_onnx_tensor(mimo_onnx *x, const mimo_node *n, int k)
{
    const mimo_tensor *t = &n->tensors[k];
    long long dims[MIMO_MAX_RANK];
    for (int a = 0; a < t->shape.rank; a++)
        dims[a] = t->shape.dim[a];
    return x->constant(x, t->name, x->params + t->off, dims, t->shape.rank);
}

const char *mimo_onnx_reshape(mimo_onnx *x, const char *v, const mimo_shape *shape)
{
    long long dims[MIMO_MAX_RANK + 1] = {0}; /* 0: Reshape keeps that axis */
    for (int a = 0; a < shape->rank; a++)
        dims[a + 1] = shape->dim[a];
    const char *s = x->constant_i64(x, "shape", dims, shape->rank + 1);
    return mimo_onnx_op2(x, "Reshape", v, s);
}

const char *mimo_onnx_transpose(mimo_onnx *x, const char *v, const long long *perm,
                                int rank)
{
    const mimo_onnx_attr p = {.name = "perm", .type = MIMO_ONNX_INTS, .ints = perm,
                              .n = rank};
    return v ? x->op(x, "Transpose", &v, 1, &p, 1) : NULL;
}

const char *mimo_onnx_standardize(mimo_onnx *x, const mimo_node *n, const char *v,
                                  int mean, int var, double eps)
{
    const mimo_tensor *t = &n->tensors[var];
    mimo_real *inv = malloc(sizeof *inv * t->size);
    if (!inv)
        return NULL;
    for (size_t j = 0; j < t->size; j++)
        inv[j] = (mimo_real)(1 / sqrt((double)x->params[t->off + j] + eps));
    long long dims = (long long)t->size;
    const char *s = x->constant(x, "inv_std", inv, &dims, 1);
    free(inv);
    return mimo_onnx_op2(x, "Mul", mimo_onnx_op2(x, "Sub", v, mimo_onnx_tensor(x, n, mean)),
                         s);
}
