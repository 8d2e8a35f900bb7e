/* swish.c — a mimo plug-in: the layer kind `swish`, y = x sigmoid(beta x)
 * elementwise, with beta either fixed (the config's `beta`) or learned per
 * feature (`learn_beta: true`: a parameter tensor "beta" of one value per
 * element of a sample, starting at the config's beta). Built against the
 * installed <mimo/plugin.h> only (CMakeLists.txt next to this file); see
 * README.md. */
#include <math.h>
#include <stdio.h>

#include <mimo/plugin.h>

#include "swish_math.h"

/* The config keys; args[] holds their values in this order. */
enum { ARG_BETA, ARG_LEARN_BETA };
static const mimo_plugin_arg swish_args[] = {
    [ARG_BETA] = {.key = "beta", .type = MIMO_PLUGIN_REAL, .def = 1.0,
                  .lo = 0, .hi = 100},
    [ARG_LEARN_BETA] = {.key = "learn_beta", .type = MIMO_PLUGIN_BOOL, .def = 0},
};

/* One input; the output has its shape. A learned beta: one per element. */
static int swish_infer(const double *args, int n_in, const mimo_plugin_shape *in,
                       mimo_plugin_shape *out, mimo_plugin_param *params,
                       int *n_params, char *err, size_t len)
{
    (void)n_in, (void)err, (void)len;
    *out = in[0];
    if (args[ARG_LEARN_BETA]) {
        int w = 1;
        for (int k = 0; k < in[0].rank; k++)
            w *= in[0].dim[k];
        params[0] = (mimo_plugin_param){.name = "beta", .shape = {1, {w}},
                                        .init = "constant",
                                        .init_a = args[ARG_BETA]};
        *n_params = 1;
    }
    return 0;
}

/* The beta of element j: the learned one, or the config's. */
static double beta_of(const double *args, const mimo_real *const *params, int j)
{
    return args[ARG_LEARN_BETA] ? params[0][j] : args[ARG_BETA];
}

static void swish_forward(const double *args, int b, int n_in,
                          const mimo_real *const *x, const int *in_width,
                          const mimo_real *const *params, mimo_real *y,
                          int out_width)
{
    (void)n_in, (void)in_width;
    for (int r = 0; r < b; r++)
        for (int j = 0; j < out_width; j++) {
            size_t i = (size_t)r * out_width + j;
            y[i] = (mimo_real)swish(x[0][i], beta_of(args, params, j));
        }
}

/* dx += dy dy/dx; dbeta[j] += sum over rows of dy dy/dbeta (adds: mimo
 * zeroes the buffers once per step and sums over the ranks). */
static void swish_backward(const double *args, int b, int n_in,
                           const mimo_real *const *x, const int *in_width,
                           const mimo_real *const *params, const mimo_real *y,
                           const mimo_real *dy, int out_width,
                           mimo_real *const *dx, mimo_real *const *dparams)
{
    (void)n_in, (void)in_width, (void)y;
    mimo_real *dbeta = args[ARG_LEARN_BETA] ? dparams[0] : NULL;
    for (int r = 0; r < b; r++)
        for (int j = 0; j < out_width; j++) {
            size_t i = (size_t)r * out_width + j;
            double beta = beta_of(args, params, j);
            if (dx[0])
                dx[0][i] += (mimo_real)(dy[i] * swish_dx(x[0][i], beta));
            if (dbeta)
                dbeta[j] += (mimo_real)(dy[i] * swish_dbeta(x[0][i], beta));
        }
}

/* about 10 operations an element forward, 20 backward */
static double swish_flops(const double *args, int n_in, const mimo_plugin_shape *in,
                          const mimo_plugin_shape *out)
{
    (void)args, (void)n_in, (void)in;
    double w = 1;
    for (int k = 0; k < out->rank; k++)
        w *= out->dim[k];
    return 30 * w;
}

static void swish_describe(const double *args, char *buf, size_t len)
{
    snprintf(buf, len, "swish(beta=%g%s)", args[ARG_BETA],
             args[ARG_LEARN_BETA] ? ", learned" : "");
}

static const char *const swish_aliases[] = {"silu_beta", NULL};

static const mimo_plugin_kind kinds[] = {{
    .name = "swish",
    .aliases = swish_aliases,
    .args = swish_args,
    .n_args = 2,
    .min_inputs = 1,
    .max_inputs = 1,
    .infer = swish_infer,
    .forward = swish_forward,
    .backward = swish_backward,
    .flops = swish_flops,
    .describe = swish_describe,
}};

MIMO_PLUGIN_EXPORT const mimo_plugin_info mimo_plugin = {
    MIMO_PLUGIN_INFO_INIT,
    .name = "swish",
    .kinds = kinds,
    .n_kinds = 1,
};
