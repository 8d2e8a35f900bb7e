/* act.c — activation functions, forward (fused with the bias add) and
 * backward, on row-major (b, n) blocks. Written for float and double alike
 * through <tgmath.h>. Softmax works row by row, max-shifted, so logits of
 * +-1000 stay finite. */
#include <string.h>
#include <tgmath.h>

#include "core/graph_impl.h"
#include "core/vmath.h"
#include "core/par.h"

/* sigmoid(x), stable for large |x|: with e = exp(-|x|) <= 1, 1 / (1 + e)
 * for x >= 0 and e / (1 + e) below; branch-free, so loops vectorize. */
static inline mimo_real sigmoid(mimo_real x)
{
    mimo_real e = exp(-fabs(x)), r = 1 / (1 + e);
    return x >= 0 ? r : e * r;
}

/* y = softmax(z) over one row of n (vmath.h: max-shifted, chunked). */
static void softmax_row(const mimo_real *restrict z, mimo_real *restrict y, int n)
{
    mimo_real m, inv = 1 / mimo_exp_shifted(z, y, n, &m);
    for (int j = 0; j < n; j++)
        y[j] *= inv;
}

/* Kernels, generated per activation so each chunk is one branch-free
 * expression over MIMO_LANES values, which the compiler vectorizes (exp,
 * log1p, tanh through vmath.h). Every value goes through the same vector
 * code wherever it lies (the last chunk padded), so a sample's result does
 * not depend on its row in the batch, the batch size or the ranks.
 * FWD: x = z + bias (z keeps x unless y is z), y = f(x); y may be z.
 * BWD: dz = dy * f'(x), x read from z (or from y where y replaced z: the
 * activations of mimo_act_derivative_from_y give the same test on y). */
#define ACT_KERNELS(NAME, F, DF)                                              \
    static inline void f_##NAME(const mimo_real *restrict xs,                 \
                                mimo_real *restrict out, mimo_real alpha)     \
    {                                                                         \
        (void)alpha;                                                          \
        _Pragma("omp simd") for (int j = 0; j < MIMO_LANES; j++)              \
        {                                                                     \
            mimo_real x = xs[j];                                              \
            out[j] = (F);                                                     \
        }                                                                     \
    }                                                                         \
    static inline void df_##NAME(const mimo_real *restrict xs,                \
                                 const mimo_real *restrict vs,                \
                                 const mimo_real *restrict dys,               \
                                 mimo_real *restrict out, mimo_real alpha)    \
    {                                                                         \
        (void)alpha;                                                          \
        _Pragma("omp simd") for (int j = 0; j < MIMO_LANES; j++)              \
        {                                                                     \
            mimo_real x = xs[j], v = vs[j];                                   \
            (void)x, (void)v;                                                 \
            out[j] = dys[j] * (DF);                                           \
        }                                                                     \
    }                                                                         \
    MIMO_VEC_KERNEL static void fwd_##NAME(mimo_real *z, mimo_real *y,        \
                                           const mimo_real *bias,             \
                                           mimo_real alpha, size_t n)         \
    {                                                                         \
        mimo_real x[MIMO_LANES], out[MIMO_LANES];                             \
        size_t i = 0;                                                         \
        for (; i + MIMO_LANES <= n; i += MIMO_LANES) {                        \
            if (bias) {                                                       \
                for (int j = 0; j < MIMO_LANES; j++)                          \
                    x[j] = z[i + j] + bias[i + j];                            \
                if (y != z) /* z keeps x */                                   \
                    memcpy(z + i, x, sizeof x);                               \
            } else {                                                          \
                memcpy(x, z + i, sizeof x);                                   \
            }                                                                 \
            f_##NAME(x, y + i, alpha);                                        \
        }                                                                     \
        if (i < n) { /* the tail, padded */                                   \
            size_t c = n - i;                                                 \
            for (size_t j = 0; j < MIMO_LANES; j++)                           \
                x[j] = j >= c ? 0 : bias ? z[i + j] + bias[i + j] : z[i + j]; \
            if (bias && y != z)                                               \
                memcpy(z + i, x, sizeof *x * c);                              \
            f_##NAME(x, out, alpha);                                          \
            memcpy(y + i, out, sizeof *out * c);                              \
        }                                                                     \
    }                                                                         \
    MIMO_VEC_KERNEL static void bwd_##NAME(const mimo_real *z,                \
                                           const mimo_real *y,                \
                                           const mimo_real *dy,               \
                                           mimo_real *restrict dz,            \
                                           mimo_real alpha, size_t n)         \
    {                                                                         \
        size_t i = 0;                                                         \
        for (; i + MIMO_LANES <= n; i += MIMO_LANES)                          \
            df_##NAME(z + i, y + i, dy + i, dz + i, alpha);                   \
        if (i < n) { /* the tail, padded */                                   \
            mimo_real x[MIMO_LANES] = {0}, v[MIMO_LANES] = {0},               \
                      d[MIMO_LANES] = {0}, out[MIMO_LANES];                   \
            memcpy(x, z + i, sizeof *x * (n - i));                            \
            memcpy(v, y + i, sizeof *v * (n - i));                            \
            memcpy(d, dy + i, sizeof *d * (n - i));                           \
            df_##NAME(x, v, d, out, alpha);                                   \
            memcpy(dz + i, out, sizeof *out * (n - i));                       \
        }                                                                     \
    }

ACT_KERNELS(linear, x, 1)
/* derivatives with (mimo_real)(x > 0) masks, not ?:, so loops vectorize */
#define POS(x) ((mimo_real)((x) > 0))
/* relu: a select, which GCC vectorizes in the kernels (x * POS(x) became
 * a scalar branch per value there: 16% of a small network's step); NaN
 * stays NaN (a non-finite value must not vanish), below 0 gives +0 */
ACT_KERNELS(relu, (x > 0 || x != x) ? x : 0, POS(x))
ACT_KERNELS(leaky, x * (alpha + (1 - alpha) * POS(x)), alpha + (1 - alpha) * POS(x))
ACT_KERNELS(elu, x > 0 ? x : alpha * expm1(x), POS(x) + (1 - POS(x)) * (v + alpha))
ACT_KERNELS(sigmoid, sigmoid(x), v * (1 - v))
ACT_KERNELS(tanh, tanh(x), 1 - v * v)
ACT_KERNELS(softplus, (x > 0 ? x : 0) + log1p(exp(-fabs(x))), sigmoid(x))
ACT_KERNELS(quadratic, x * x, 2 * x)
/* gelu: x Phi(x), Phi'(x) = exp(-x^2 / 2) / sqrt(2 pi) */
#define PHI(x) ((mimo_real)0.5 * (1 + erf((x) * (mimo_real)0.70710678118654752)))
ACT_KERNELS(gelu, x * PHI(x),
            PHI(x) + x * exp((mimo_real)-0.5 * x * x) * (mimo_real)0.39894228040143268)
/* 0.5 x (1 + tanh(k (x + 0.044715 x^3))), k = sqrt(2 / pi) */
#define GK(x) (tanh((mimo_real)0.79788456080286536 * ((x) + (mimo_real)0.044715 * (x) * (x) * (x))))
ACT_KERNELS(gelu_tanh, (mimo_real)0.5 * x * (1 + GK(x)),
            (mimo_real)0.5 * (1 + GK(x)) +
                (mimo_real)0.5 * x * (1 - GK(x) * GK(x)) * (mimo_real)0.79788456080286536 *
                    (1 + (mimo_real)0.134145 * x * x))
ACT_KERNELS(swish, x * sigmoid(x), sigmoid(x) * (1 + x * (1 - sigmoid(x))))
#define SELU_L ((mimo_real)1.0507009873554805)
#define SELU_A ((mimo_real)1.6732632423543772)
ACT_KERNELS(selu, SELU_L * (x > 0 ? x : SELU_A * expm1(x)),
            SELU_L * (POS(x) + (1 - POS(x)) * SELU_A * exp(x)))
/* softplus as above; tanh(sp)' = (1 - tanh^2) sigmoid */
#define SP(x) (((x) > 0 ? (x) : 0) + log1p(exp(-fabs(x))))
ACT_KERNELS(mish, x * tanh(SP(x)),
            tanh(SP(x)) + x * (1 - tanh(SP(x)) * tanh(SP(x))) * sigmoid(x))
#define INSIDE(x) ((mimo_real)((x) > -3) * (mimo_real)((x) < 3))
ACT_KERNELS(hard_sigmoid, fmin(fmax(x / 6 + (mimo_real)0.5, (mimo_real)0), (mimo_real)1),
            INSIDE(x) / 6)

typedef struct {
    void (*fwd)(mimo_real *, mimo_real *, const mimo_real *, mimo_real, size_t);
    void (*bwd)(const mimo_real *, const mimo_real *, const mimo_real *,
                mimo_real *restrict, mimo_real, size_t);
} act_kernels;

#define K(NAME) {fwd_##NAME, bwd_##NAME}
static const act_kernels kernels[MIMO_ACT_COUNT] = {
    [MIMO_ACT_LINEAR] = K(linear), [MIMO_ACT_RELU] = K(relu),
    [MIMO_ACT_LEAKY_RELU] = K(leaky), [MIMO_ACT_ELU] = K(elu),
    [MIMO_ACT_SIGMOID] = K(sigmoid), [MIMO_ACT_TANH] = K(tanh),
    [MIMO_ACT_SOFTMAX] = {NULL, NULL}, /* row-wise, below */
    [MIMO_ACT_SOFTPLUS] = K(softplus), [MIMO_ACT_QUADRATIC] = K(quadratic),
    [MIMO_ACT_GELU] = K(gelu), [MIMO_ACT_GELU_APPROXIMATE] = K(gelu_tanh),
    [MIMO_ACT_SWISH] = K(swish), [MIMO_ACT_SELU] = K(selu),
    [MIMO_ACT_MISH] = K(mish), [MIMO_ACT_HARD_SIGMOID] = K(hard_sigmoid)};

/* Rows [r0, r1) of (b, n) blocks; softmax row by row, the others on the
 * rows as one run of values (narrow rows: whole vector chunks). */
static void rows_forward(mimo_act a, mimo_real alpha, const mimo_real *bias,
                         mimo_real *z, mimo_real *y, int r0, int r1, int n)
{
    size_t o = (size_t)r0 * n;
    if (a == MIMO_ACT_SOFTMAX) {
        for (int r = r0; r < r1; r++, o += (size_t)n) {
            for (int j = 0; bias && j < n; j++)
                z[o + j] += bias[j];
            softmax_row(z + o, y + o, n);
        }
    } else if (!bias) { /* e.g. an activation layer: z, its parent's output, kept */
        kernels[a].fwd(z + o, y + o, NULL, alpha, (size_t)(r1 - r0) * n);
    } else if (n >= 2 * MIMO_LANES) { /* the bias add fused, row by row */
        for (int r = r0; r < r1; r++, o += (size_t)n)
            kernels[a].fwd(z + o, y + o, bias, alpha, (size_t)n);
    } else { /* z keeps x = z + bias either way (y may be z) */
        for (int r = r0; r < r1; r++)
            for (int j = 0; j < n; j++)
                z[(size_t)r * n + j] += bias[j];
        kernels[a].fwd(z + o, y + o, NULL, alpha, (size_t)(r1 - r0) * n);
    }
}

/* Splits b rows into one part per thread when the block is large. */
#define ACT_PARTS(b, n) ((long)(b) * (n) >= MIMO_PAR_MIN ? mimo_par_threads() : 1)

/* z += bias; y = f(z); z, y are (b, n); y may be z (see rows_forward). */
void mimo_act_forward(mimo_act a, mimo_real alpha, const mimo_real *bias,
                      mimo_real *z, mimo_real *y, int b, int n)
{
    int parts = ACT_PARTS(b, n);
    MIMO_PAR_FOR(parts > 1, int p = 0, p < parts, p++, {
        rows_forward(a, alpha, bias, z, y, (int)((long)b * p / parts),
                     (int)((long)b * (p + 1) / parts), n);
    });
}

static void rows_backward(mimo_act a, mimo_real alpha, const mimo_real *z,
                          const mimo_real *y, const mimo_real *dy, mimo_real *dz,
                          int r0, int r1, int n)
{
    size_t o = (size_t)r0 * n;
    if (a != MIMO_ACT_SOFTMAX) {
        kernels[a].bwd(z + o, y + o, dy + o, dz + o, alpha, (size_t)(r1 - r0) * n);
        return;
    }
    for (int r = r0; r < r1; r++, o += (size_t)n) {
        mimo_real s = 0; /* dz_i = y_i (dy_i - sum_j y_j dy_j) */
        #pragma omp simd reduction(+ : s)
        for (int j = 0; j < n; j++)
            s += y[o + j] * dy[o + j];
        for (int j = 0; j < n; j++)
            dz[o + j] = y[o + j] * (dy[o + j] - s);
    }
}

void mimo_act_backward(mimo_act a, mimo_real alpha, const mimo_real *z,
                       const mimo_real *y, const mimo_real *dy,
                       mimo_real *dz, int b, int n)
{
    if (!z)
        z = y; /* masked softmax passes no z */
    int parts = ACT_PARTS(b, n);
    MIMO_PAR_FOR(parts > 1, int p = 0, p < parts, p++, {
        rows_backward(a, alpha, z, y, dy, dz, (int)((long)b * p / parts),
                      (int)((long)b * (p + 1) / parts), n);
    });
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
