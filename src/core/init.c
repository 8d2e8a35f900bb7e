/* init.c — parameter initializers (Keras' names and formulas), drawn from
 * mimo's own seeded PRNG so a seed gives the same network everywhere. The
 * graph calls them tensor by tensor in topological order of the layers. */
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

void mimo_init_fill(mimo_rng *r, mimo_init in, mimo_real *p, size_t len,
                    double fan_in, double fan_out)
{
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
