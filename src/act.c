/* act.c — activation functions, forward (fused with the bias add) and
 * backward, on row-major (b, n) blocks. Written for float and double alike
 * through <tgmath.h>. Softmax works row by row, max-shifted, so logits of
 * +-1000 stay finite. */
#include <string.h>
#include <tgmath.h>

#include "graph_impl.h"

/* sigmoid(x), stable for large |x|. */
static inline mimo_real sigmoid(mimo_real x)
{
    if (x >= 0)
        return 1 / (1 + exp(-x));
    mimo_real e = exp(x);
    return e / (1 + e);
}

/* y = softmax(z) over one row of n. */
static void softmax_row(const mimo_real *z, mimo_real *y, int n)
{
    mimo_real m = z[0], s = 0;
    for (int j = 1; j < n; j++)
        m = z[j] > m ? z[j] : m;
    for (int j = 0; j < n; j++) {
        y[j] = exp(z[j] - m);
        s += y[j];
    }
    for (int j = 0; j < n; j++)
        y[j] /= s;
}

/* One row: x = z + bias; y = f(x), with z keeping x unless y is z (then
 * x is not kept: the derivative is taken from y). A loop per activation
 * and per case keeps each one simple enough to vectorize. */
#define ROW_FORWARD(EXPR)                                                    \
    do {                                                                     \
        if (y == z && bias)                                                  \
            for (int j = 0; j < n; j++) {                                    \
                mimo_real x = z[j] + bias[j];                                \
                y[j] = (EXPR);                                               \
            }                                                                \
        else if (bias)                                                       \
            for (int j = 0; j < n; j++) {                                    \
                mimo_real x = z[j] + bias[j];                                \
                z[j] = x;                                                    \
                y[j] = (EXPR);                                               \
            }                                                                \
        else                                                                 \
            for (int j = 0; j < n; j++) {                                    \
                mimo_real x = z[j];                                          \
                y[j] = (EXPR);                                               \
            }                                                                \
    } while (0)

static void row_forward(mimo_act a, mimo_real alpha, const mimo_real *bias,
                        mimo_real *z, mimo_real *y, int n)
{
    switch (a) {
    case MIMO_ACT_RELU: ROW_FORWARD(x > 0 ? x : 0); break;
    case MIMO_ACT_LEAKY_RELU: ROW_FORWARD(x > 0 ? x : alpha * x); break;
    case MIMO_ACT_ELU: ROW_FORWARD(x > 0 ? x : alpha * expm1(x)); break;
    case MIMO_ACT_SIGMOID: ROW_FORWARD(sigmoid(x)); break;
    case MIMO_ACT_TANH: ROW_FORWARD(tanh(x)); break;
    case MIMO_ACT_SOFTPLUS: ROW_FORWARD((x > 0 ? x : 0) + log1p(exp(-fabs(x)))); break;
    case MIMO_ACT_QUADRATIC: ROW_FORWARD(x * x); break;
    case MIMO_ACT_SOFTMAX:
        if (bias)
            for (int j = 0; j < n; j++)
                z[j] += bias[j];
        softmax_row(z, y, n);
        break;
    default: ROW_FORWARD(x); break;
    }
}

/* z += bias; y = f(z); z, y are (b, n); y may be z (see row_forward). */
void mimo_act_forward(mimo_act a, mimo_real alpha, const mimo_real *bias,
                      mimo_real *z, mimo_real *y, int b, int n)
{
    #pragma omp parallel for schedule(static) if ((long)b * n >= MIMO_PAR_MIN)
    for (int r = 0; r < b; r++)
        row_forward(a, alpha, bias, z + (size_t)r * n, y + (size_t)r * n, n);
}

/* dz = dy * f'(x) for one row; x is z (or y where y replaced z: the
 * activations that allow it give the same test on y). */
#define ROW_BACKWARD(EXPR)                                                   \
    for (int j = 0; j < n; j++) {                                            \
        mimo_real x = z[j], v = y[j];                                        \
        (void)x, (void)v;                                                    \
        dz[j] = dy[j] * (EXPR);                                              \
    }

static void row_backward(mimo_act a, mimo_real alpha, const mimo_real *z,
                         const mimo_real *y, const mimo_real *dy, mimo_real *dz,
                         int n)
{
    mimo_real s = 0;
    switch (a) {
    case MIMO_ACT_RELU: ROW_BACKWARD(x > 0 ? 1 : 0); break;
    case MIMO_ACT_LEAKY_RELU: ROW_BACKWARD(x > 0 ? 1 : alpha); break;
    case MIMO_ACT_ELU: ROW_BACKWARD(x > 0 ? 1 : v + alpha); break;
    case MIMO_ACT_SIGMOID: ROW_BACKWARD(v * (1 - v)); break;
    case MIMO_ACT_TANH: ROW_BACKWARD(1 - v * v); break;
    case MIMO_ACT_SOFTPLUS: ROW_BACKWARD(sigmoid(x)); break;
    case MIMO_ACT_QUADRATIC: ROW_BACKWARD(2 * x); break;
    case MIMO_ACT_SOFTMAX: /* dz_i = y_i (dy_i - sum_j y_j dy_j) */
        for (int j = 0; j < n; j++)
            s += y[j] * dy[j];
        for (int j = 0; j < n; j++)
            dz[j] = y[j] * (dy[j] - s);
        break;
    default: ROW_BACKWARD(1); break;
    }
}

void mimo_act_backward(mimo_act a, mimo_real alpha, const mimo_real *z,
                       const mimo_real *y, const mimo_real *dy,
                       mimo_real *dz, int b, int n)
{
    if (!z)
        z = y; /* masked softmax passes no z */
    #pragma omp parallel for schedule(static) if ((long)b * n >= MIMO_PAR_MIN)
    for (int r = 0; r < b; r++) {
        size_t o = (size_t)r * n;
        row_backward(a, alpha, z + o, y + o, dy + o, dz + o, n);
    }
}

/* Whether f'(x) can be read off y = f(x) with the tests above (so a dense
 * layer may overwrite its pre-activation with its output). */
int mimo_act_derivative_from_y(mimo_act a, mimo_real alpha)
{
    switch (a) {
    case MIMO_ACT_LINEAR: case MIMO_ACT_RELU: case MIMO_ACT_SIGMOID:
    case MIMO_ACT_TANH: case MIMO_ACT_SOFTMAX:
        return 1;
    case MIMO_ACT_LEAKY_RELU: case MIMO_ACT_ELU:
        return alpha > 0; /* then y > 0 exactly when x > 0 */
    default:
        return 0;
    }
}
