/* init.c — parameter initializers (Keras' names and formulas), drawn from
 * mimo's own seeded PRNG so a seed gives the same network everywhere. The
 * graph calls them tensor by tensor in topological order of the layers. */
#include <stdlib.h>
#include <tgmath.h>

#include "core/graph_impl.h"

/* Normal truncated at 2 sd, rescaled to keep the variance (as Keras). */
static double trunc_normal(mimo_rng *r, double sd)
{
    double x;
    do
        x = mimo_rng_normal(r);
    while (fabs(x) > 2.0);
    return x * sd / 0.87962566103423978;
}

/* Keras' orthogonal: the (rows, cols) = (fan_in, len / fan_in) matrix of
 * a normal draw, its tall form (n, k), n >= k, orthonormalized column by
 * column (modified Gram-Schmidt in double: the Q of its QR, up to signs,
 * which a random draw does not mind), transposed back when wide. */
static void orthogonal(mimo_rng *r, mimo_real *p, size_t len, size_t rows)
{
    size_t cols = rows ? len / rows : 0;
    size_t n = rows > cols ? rows : cols, k = rows > cols ? cols : rows;
    double *a = malloc(sizeof *a * (len ? len : 1));
    if (!a || rows * cols != len) { /* no memory: the draw unorthogonalized */
        for (size_t i = 0; i < len; i++)
            p[i] = (mimo_real)(mimo_rng_normal(r) / sqrt((double)(n ? n : 1)));
        free(a);
        return;
    }
    for (size_t i = 0; i < len; i++) /* a (k, n): row j is column j of Q */
        a[i] = mimo_rng_normal(r);
    for (size_t j = 0; j < k; j++) {
        double *q = a + j * n;
        for (size_t i = 0; i < j; i++) {
            const double *e = a + i * n;
            double d = 0;
            for (size_t t = 0; t < n; t++)
                d += q[t] * e[t];
            for (size_t t = 0; t < n; t++)
                q[t] -= d * e[t];
        }
        double s = 0;
        for (size_t t = 0; t < n; t++)
            s += q[t] * q[t];
        s = s > 0 ? 1 / sqrt(s) : 0;
        for (size_t t = 0; t < n; t++)
            q[t] *= s;
    }
    for (size_t i = 0; i < rows; i++) /* W[i][c]: Q (n, k) or its transpose */
        for (size_t c = 0; c < cols; c++)
            p[i * cols + c] = (mimo_real)(rows >= cols ? a[c * n + i] : a[i * n + c]);
    free(a);
}

void mimo_init_fill(mimo_rng *r, mimo_init in, mimo_real *p, size_t len,
                    double fan_in, double fan_out)
{
    if (in.kind == MIMO_INIT_ORTHOGONAL) {
        orthogonal(r, p, len, (size_t)fan_in);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        double v;
        switch (in.kind) {
        case MIMO_INIT_GLOROT_NORMAL: v = trunc_normal(r, sqrt(2 / (fan_in + fan_out))); break;
        case MIMO_INIT_HE_UNIFORM: v = (2 * mimo_rng_uniform(r) - 1) * sqrt(6 / fan_in); break;
        case MIMO_INIT_HE_NORMAL: v = trunc_normal(r, sqrt(2 / fan_in)); break;
        case MIMO_INIT_LECUN_NORMAL: v = trunc_normal(r, sqrt(1 / fan_in)); break;
        case MIMO_INIT_ZEROS: v = 0; break;
        case MIMO_INIT_CONSTANT: v = in.a; break;
        case MIMO_INIT_UNIFORM: v = in.a + (in.b - in.a) * mimo_rng_uniform(r); break;
        default: v = (2 * mimo_rng_uniform(r) - 1) * sqrt(6 / (fan_in + fan_out));
        }
        p[i] = (mimo_real)v;
    }
}
