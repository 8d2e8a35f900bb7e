/* act.c — activation functions, forward (fused with the bias add) and
 * backward, on row-major (b, n) blocks. Written for float and double alike
 * through <tgmath.h>. Softmax works row by row, max-shifted, so logits of
 * +-1000 stay finite. */
#include <string.h>
#include <tgmath.h>

#include "core/graph_impl.h"
#include "core/vmath.h"

/* sigmoid(x), stable for large |x|: with e = exp(-|x|) <= 1, 1 / (1 + e)
 * for x >= 0 and e / (1 + e) below; branch-free, so loops vectorize. */
static inline mimo_real sigmoid(mimo_real x)
{
    mimo_real e = exp(-fabs(x)), r = 1 / (1 + e);
    return x >= 0 ? r : e * r;
}

/* y = softmax(z) over one row of n. */
MIMO_VEC_KERNEL static void softmax_row(const mimo_real *restrict z,
                                        mimo_real *restrict y, int n)
{
    mimo_real m = z[0], s = 0;
    for (int j = 1; j < n; j++)
        m = z[j] > m ? z[j] : m;
    #pragma omp simd reduction(+ : s)
    for (int j = 0; j < n; j++) {
        y[j] = exp(z[j] - m);
        s += y[j];
    }
    mimo_real inv = 1 / s;
    for (int j = 0; j < n; j++)
        y[j] *= inv;
}

/* Row kernels, generated per activation so each loop is one branch-free
 * expression over restrict-qualified rows, which the compiler vectorizes.
 * FWD: x = z + bias (z keeps x unless y is z), y = f(x).
 * BWD: dz = dy * f'(x), x read from z (or from y where y replaced z: the
 * activations of mimo_act_derivative_from_y give the same test on y). */
#define ACT_KERNELS(NAME, F, DF)                                              \
    MIMO_VEC_KERNEL static void fwd_in_##NAME(                                \
        mimo_real *restrict z, const mimo_real *restrict bias,                \
        mimo_real alpha, int n)                                               \
    {                                                                         \
        (void)alpha;                                                          \
        if (bias)                                                             \
            for (int j = 0; j < n; j++) {                                     \
                mimo_real x = z[j] + bias[j];                                 \
                z[j] = (F);                                                   \
            }                                                                 \
        else                                                                  \
            for (int j = 0; j < n; j++) {                                     \
                mimo_real x = z[j];                                           \
                z[j] = (F);                                                   \
            }                                                                 \
    }                                                                         \
    MIMO_VEC_KERNEL static void fwd_sep_##NAME(                               \
        mimo_real *restrict z, mimo_real *restrict y,                         \
        const mimo_real *restrict bias, mimo_real alpha, int n)               \
    {                                                                         \
        (void)alpha;                                                          \
        if (bias)                                                             \
            for (int j = 0; j < n; j++)                                       \
                z[j] += bias[j];                                              \
        for (int j = 0; j < n; j++) {                                         \
            mimo_real x = z[j];                                               \
            y[j] = (F);                                                       \
        }                                                                     \
    }                                                                         \
    MIMO_VEC_KERNEL static void bwd_##NAME(                                   \
        const mimo_real *z, const mimo_real *y, const mimo_real *dy,          \
        mimo_real *restrict dz, mimo_real alpha, int n)                       \
    {                                                                         \
        (void)alpha;                                                          \
        for (int j = 0; j < n; j++) {                                         \
            mimo_real x = z[j], v = y[j];                                     \
            (void)x, (void)v;                                                 \
            dz[j] = dy[j] * (DF);                                             \
        }                                                                     \
    }

ACT_KERNELS(linear, x, 1)
/* derivatives with (mimo_real)(x > 0) masks, not ?:, so loops vectorize */
#define POS(x) ((mimo_real)((x) > 0))
ACT_KERNELS(relu, x * POS(x), POS(x))
ACT_KERNELS(leaky, x * (alpha + (1 - alpha) * POS(x)), alpha + (1 - alpha) * POS(x))
ACT_KERNELS(elu, x > 0 ? x : alpha * expm1(x), POS(x) + (1 - POS(x)) * (v + alpha))
ACT_KERNELS(sigmoid, sigmoid(x), v * (1 - v))
ACT_KERNELS(tanh, tanh(x), 1 - v * v)
ACT_KERNELS(softplus, (x > 0 ? x : 0) + log1p(exp(-fabs(x))), sigmoid(x))
ACT_KERNELS(quadratic, x * x, 2 * x)

typedef struct {
    void (*fwd_in)(mimo_real *restrict, const mimo_real *restrict, mimo_real, int);
    void (*fwd_sep)(mimo_real *restrict, mimo_real *restrict,
                    const mimo_real *restrict, mimo_real, int);
    void (*bwd)(const mimo_real *, const mimo_real *, const mimo_real *,
                mimo_real *restrict, mimo_real, int);
} act_kernels;

#define K(NAME) {fwd_in_##NAME, fwd_sep_##NAME, bwd_##NAME}
static const act_kernels kernels[MIMO_ACT_COUNT] = {
    [MIMO_ACT_LINEAR] = K(linear), [MIMO_ACT_RELU] = K(relu),
    [MIMO_ACT_LEAKY_RELU] = K(leaky), [MIMO_ACT_ELU] = K(elu),
    [MIMO_ACT_SIGMOID] = K(sigmoid), [MIMO_ACT_TANH] = K(tanh),
    [MIMO_ACT_SOFTMAX] = {NULL, NULL, NULL}, /* row-wise, below */
    [MIMO_ACT_SOFTPLUS] = K(softplus), [MIMO_ACT_QUADRATIC] = K(quadratic)};

static void row_forward(mimo_act a, mimo_real alpha, const mimo_real *bias,
                        mimo_real *z, mimo_real *y, int n)
{
    if (a == MIMO_ACT_SOFTMAX) {
        if (bias)
            for (int j = 0; j < n; j++)
                z[j] += bias[j];
        softmax_row(z, y, n);
    } else if (y == z)
        kernels[a].fwd_in(z, bias, alpha, n);
    else if (bias)
        kernels[a].fwd_sep(z, y, bias, alpha, n);
    else /* an activation layer: z is its parent's output, left as is */
        kernels[a].fwd_sep((mimo_real *)z, y, NULL, alpha, n);
}

/* z += bias; y = f(z); z, y are (b, n); y may be z (see row_forward). */
void mimo_act_forward(mimo_act a, mimo_real alpha, const mimo_real *bias,
                      mimo_real *z, mimo_real *y, int b, int n)
{
    #pragma omp parallel for schedule(static) if ((long)b * n >= MIMO_PAR_MIN)
    for (int r = 0; r < b; r++)
        row_forward(a, alpha, bias, z + (size_t)r * n, y + (size_t)r * n, n);
}

static void row_backward(mimo_act a, mimo_real alpha, const mimo_real *z,
                         const mimo_real *y, const mimo_real *dy, mimo_real *dz,
                         int n)
{
    if (a != MIMO_ACT_SOFTMAX) {
        kernels[a].bwd(z, y, dy, dz, alpha, n);
        return;
    }
    mimo_real s = 0; /* dz_i = y_i (dy_i - sum_j y_j dy_j) */
    #pragma omp simd reduction(+ : s)
    for (int j = 0; j < n; j++)
        s += y[j] * dy[j];
    for (int j = 0; j < n; j++)
        dz[j] = y[j] * (dy[j] - s);
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

double mimo_act_alpha_default(mimo_act a)
{
    return a == MIMO_ACT_LEAKY_RELU ? 0.3 : a == MIMO_ACT_ELU ? 1.0 : 0.0;
}
