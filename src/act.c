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

/* y = f(x) for the elementwise activations. */
static inline mimo_real act_value(mimo_act a, mimo_real alpha, mimo_real x)
{
    switch (a) {
    case MIMO_ACT_RELU: return x > 0 ? x : 0;
    case MIMO_ACT_LEAKY_RELU: return x > 0 ? x : alpha * x;
    case MIMO_ACT_ELU: return x > 0 ? x : alpha * expm1(x);
    case MIMO_ACT_SIGMOID: return sigmoid(x);
    case MIMO_ACT_TANH: return tanh(x);
    case MIMO_ACT_SOFTPLUS: return (x > 0 ? x : 0) + log1p(exp(-fabs(x)));
    case MIMO_ACT_QUADRATIC: return x * x;
    default: return x;
    }
}

/* f'(x) given x and y = f(x). */
static inline mimo_real act_deriv(mimo_act a, mimo_real alpha, mimo_real x,
                                  mimo_real y)
{
    switch (a) {
    case MIMO_ACT_RELU: return x > 0 ? 1 : 0;
    case MIMO_ACT_LEAKY_RELU: return x > 0 ? 1 : alpha;
    case MIMO_ACT_ELU: return x > 0 ? 1 : y + alpha;
    case MIMO_ACT_SIGMOID: return y * (1 - y);
    case MIMO_ACT_TANH: return 1 - y * y;
    case MIMO_ACT_SOFTPLUS: return sigmoid(x);
    case MIMO_ACT_QUADRATIC: return 2 * x;
    default: return 1;
    }
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

/* z += bias; y = f(z); z, y are (b, n). */
void mimo_act_forward(mimo_act a, mimo_real alpha, const mimo_real *bias,
                      mimo_real *z, mimo_real *y, int b, int n)
{
    #pragma omp parallel for schedule(static) if ((long)b * n >= MIMO_PAR_MIN)
    for (int r = 0; r < b; r++) {
        mimo_real *zr = z + (size_t)r * n, *yr = y + (size_t)r * n;
        if (bias)
            for (int j = 0; j < n; j++)
                zr[j] += bias[j];
        if (a == MIMO_ACT_SOFTMAX)
            softmax_row(zr, yr, n);
        else if (a == MIMO_ACT_LINEAR) {
            if (yr != zr)
                memcpy(yr, zr, sizeof *yr * (size_t)n);
        } else
            for (int j = 0; j < n; j++)
                yr[j] = act_value(a, alpha, zr[j]);
    }
}

/* softmax: dz_i = y_i (dy_i - sum_j y_j dy_j); others: dz = dy * f'(z). */
void mimo_act_backward(mimo_act a, mimo_real alpha, const mimo_real *z,
                       const mimo_real *y, const mimo_real *dy,
                       mimo_real *dz, int b, int n)
{
    #pragma omp parallel for schedule(static) if ((long)b * n >= MIMO_PAR_MIN)
    for (int r = 0; r < b; r++) {
        size_t o = (size_t)r * n;
        if (a == MIMO_ACT_SOFTMAX) {
            mimo_real s = 0;
            for (int j = 0; j < n; j++)
                s += y[o + j] * dy[o + j];
            for (int j = 0; j < n; j++)
                dz[o + j] = y[o + j] * (dy[o + j] - s);
        } else
            for (int j = 0; j < n; j++)
                dz[o + j] = dy[o + j] * act_deriv(a, alpha, z[o + j], y[o + j]);
    }
}
