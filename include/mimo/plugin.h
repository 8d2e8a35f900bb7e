/* plugin.h — custom layer kinds without rebuilding mimo: the plug-in ABI.
 *
 * A plug-in is a shared object that defines one data symbol, `mimo_plugin`
 * (a mimo_plugin_info), listing its layer kinds. A config names it at the
 * top level, `plugins: [path/to/libmykind.so]` (relative to the config's
 * folder), and its kinds become `type:`s of layers like the built-in ones:
 * their keys are checked with file:line:col, they train on every rank,
 * their parameters are saved in checkpoints as /params/<layer>/<name>.
 *
 *   #include <mimo/plugin.h>
 *   static const mimo_plugin_kind kinds[] = {{.name = "swish", ...}};
 *   MIMO_PLUGIN_EXPORT const mimo_plugin_info mimo_plugin = {
 *       MIMO_PLUGIN_INFO_INIT, .name = "swish", .kinds = kinds, .n_kinds = 1};
 *
 * The plug-in calls nothing of mimo (it needs this header, not libmimo):
 * mimo calls its functions on plain arrays of mimo_real, row-major, b rows
 * of a batch each `width` values wide (the sample's axes flattened).
 * Everything here is the ABI: its number, MIMO_PLUGIN_ABI, changes when a
 * field moves or a signature changes, and mimo loads only plug-ins built
 * for its own number. Fields added later take the reserved slots at the
 * ends, where 0/NULL means absent: a plug-in built before they existed
 * keeps working without a new number. See ARCHITECTURE.md, "Plug-ins".
 *
 * The loading side (the library's users): mimo_plugin_load, below. */
#ifndef MIMO_PLUGIN_H
#define MIMO_PLUGIN_H

#include <stddef.h>

#include "mimo/api.h"
#include "mimo/real.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes. */
#define MIMO_PLUGIN_ABI 1

/* Limits of one kind (fixed by the ABI). */
#define MIMO_PLUGIN_MAX_RANK 4    /* axes of a shape */
#define MIMO_PLUGIN_MAX_ARGS 16   /* config keys */
#define MIMO_PLUGIN_MAX_INPUTS 16 /* inputs of a layer */
#define MIMO_PLUGIN_MAX_PARAMS 8  /* parameter tensors of a layer */
#define MIMO_PLUGIN_NAME_MAX 32   /* names, with their terminating 0 */

/* Makes the symbol visible from a shared object built with hidden
 * visibility (-fvisibility=hidden). */
#if defined(__GNUC__)
#define MIMO_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define MIMO_PLUGIN_EXPORT
#endif

/* The type of a config key's value. Every value reaches the plug-in as a
 * double (args[i], in the order of the kind's `args`): an INT as a whole
 * number, a BOOL as 0 or 1. */
typedef enum {
    MIMO_PLUGIN_INT = 1,
    MIMO_PLUGIN_REAL = 2,
    MIMO_PLUGIN_BOOL = 3
} mimo_plugin_arg_type;

/* One config key of a kind. */
typedef struct {
    const char *key;   /* "beta": lower case, digits, '_'; not type, from,
                        * shares or trainable (every layer's keys) */
    int type;          /* mimo_plugin_arg_type */
    int required;      /* 1: a layer must give it */
    double def;        /* the value when not given (ignored if required) */
    double lo, hi;     /* INT, REAL: the bounds, inclusive (a value outside
                        * is a config error at file:line:col); use
                        * -HUGE_VAL, HUGE_VAL for none. BOOL: ignored */
} mimo_plugin_arg;

/* The shape of one sample (inputs and output: 1 to 3 axes, channels last
 * as in Keras), or of a parameter tensor (1 to 4 axes). */
typedef struct {
    int rank;
    int dim[MIMO_PLUGIN_MAX_RANK];
} mimo_plugin_shape;

/* A parameter tensor a layer declares in infer. mimo owns its values: it
 * initializes them, sums their gradients over the ranks, applies the
 * optimizer and saves them in checkpoints. */
typedef struct {
    char name[MIMO_PLUGIN_NAME_MAX]; /* "beta": its name in checkpoints */
    mimo_plugin_shape shape;
    const char *init;   /* an initializer of `mimo list initializers`:
                         * "glorot_uniform", "zeros", "constant", ... */
    double init_a;      /* constant: the value; uniform: the minimum */
    double init_b;      /* uniform: the maximum */
    double fan_in;      /* glorot, he, lecun: the fans; 0: Keras' (rank */
    double fan_out;     /* 1: the axis both; else the receptive field (the
                         * axes before the last two) times the second-last
                         * axis in, times the last axis out) */
} mimo_plugin_param;

/* One layer kind. `args` below is always the layer's values of the kind's
 * keys, in declaration order (MIMO_PLUGIN_MAX_ARGS at most). */
typedef struct {
    const char *name;   /* its `type:` in configs: "swish" (lower case,
                         * digits, '_'; must not name an existing kind) */
    const char *const *aliases; /* other names (NULL-terminated, or NULL) */
    const mimo_plugin_arg *args;
    int n_args;
    int min_inputs;     /* >= 1 */
    int max_inputs;     /* >= min_inputs, <= MIMO_PLUGIN_MAX_INPUTS */

    /* Compile time: the output's shape from the n_in inputs' shapes, and
     * the parameter tensors (params[0, *n_params), room for
     * MIMO_PLUGIN_MAX_PARAMS; *n_params is 0 on entry, params zeroed).
     * Returns 0, or -1 with a message in err[0, len) ("needs 2 axes"):
     * mimo adds the layer's name and where the config defines it. */
    int (*infer)(const double *args, int n_in, const mimo_plugin_shape *in,
                 mimo_plugin_shape *out, mimo_plugin_param *params,
                 int *n_params, char *err, size_t len);
    /* y[b][out_width] = f(x[i][b][in_width[i]], params[j]). Writes every
     * value of y. x, params: read only. */
    void (*forward)(const double *args, int b, int n_in,
                    const mimo_real *const *x, const int *in_width,
                    const mimo_real *const *params, mimo_real *y,
                    int out_width);
    /* The gradients, given dy (the loss's gradient of y; y is forward's
     * output for these x): ADDS into dx[i] (b x in_width[i]; NULL for an
     * input whose gradient nobody needs) and into dparams[j] (the shape
     * of params[j]; NULL when the tensor is not trained: trainable:
     * false). Never writes x, y, dy or params. */
    void (*backward)(const double *args, int b, int n_in,
                     const mimo_real *const *x, const int *in_width,
                     const mimo_real *const *params, const mimo_real *y,
                     const mimo_real *dy, int out_width,
                     mimo_real *const *dx, mimo_real *const *dparams);

    /* Optional (NULL): floating-point operations of one sample's forward
     * and backward (`mimo bench`, `mimo summary`). */
    double (*flops)(const double *args, int n_in, const mimo_plugin_shape *in,
                    const mimo_plugin_shape *out);
    /* Optional (NULL): the layer's text in summaries ("swish(beta=1)"). */
    void (*describe)(const double *args, char *buf, size_t len);

    void *reserved[8];  /* 0: room for later fields (same ABI) */
} mimo_plugin_kind;

/* What a plug-in exports as `mimo_plugin`. */
typedef struct {
    int abi;            /* MIMO_PLUGIN_ABI: the first field, never moves */
    int size;           /* sizeof(mimo_plugin_info) */
    int kind_size;      /* sizeof(mimo_plugin_kind) */
    int real_size;      /* sizeof(mimo_real): float, 4 */
    const char *name;   /* the plug-in's name, for messages */
    const mimo_plugin_kind *kinds;
    int n_kinds;        /* >= 1 */
    void *reserved[8];  /* 0: room for later fields (same ABI) */
} mimo_plugin_info;

/* The fields mimo checks before it reads the others. */
#define MIMO_PLUGIN_INFO_INIT                                              \
    .abi = MIMO_PLUGIN_ABI, .size = (int)sizeof(mimo_plugin_info),         \
    .kind_size = (int)sizeof(mimo_plugin_kind),                            \
    .real_size = (int)sizeof(mimo_real)

/* The symbol mimo looks up, defined by the plug-in. */
#define MIMO_PLUGIN_SYMBOL "mimo_plugin"
MIMO_PLUGIN_EXPORT extern const mimo_plugin_info mimo_plugin;

/* ---- loading (the library's side) --------------------------------------- */

/* Loads the plug-in at path (dlopen; a path without '/' is taken in the
 * current directory, never searched for) and registers its kinds after
 * the built-in ones: configs may name them from then on, and `mimo list
 * layers` lists them. Loading the same file again does nothing. Returns 0,
 * or MIMO_EIO (missing, unreadable, not a shared object) or MIMO_EINVAL
 * (no `mimo_plugin` symbol, another ABI, a malformed kind, a kind name
 * that exists) with a message naming the file. Plug-ins stay loaded until
 * the process ends. Not thread-safe against configs parsed meanwhile. */
MIMO_API int mimo_plugin_load(const char *path);

#ifdef __cplusplus
}
#endif
#endif
