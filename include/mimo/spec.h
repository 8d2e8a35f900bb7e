/* spec.h — the model specification: what a config file says, as plain data.
 * The config parser (config.h) fills a mimo_spec; the graph compiler
 * (graph.h) turns it into a runnable graph. Every item keeps the file
 * position it came from, so later errors can name file:line:column. */
#ifndef MIMO_SPEC_H
#define MIMO_SPEC_H

#include "mimo/api.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Position in the config file (1-based; line 0 means "from --set"). */
typedef struct {
    int line, col;
} mimo_pos;

typedef enum {
    MIMO_ACT_LINEAR = 0,
    MIMO_ACT_RELU,
    MIMO_ACT_LEAKY_RELU, /* alpha = negative slope, default 0.3 (Keras) */
    MIMO_ACT_ELU,        /* alpha, default 1.0 */
    MIMO_ACT_SIGMOID,
    MIMO_ACT_TANH,
    MIMO_ACT_SOFTMAX,    /* over the feature axis */
    MIMO_ACT_SOFTPLUS,
    MIMO_ACT_QUADRATIC,  /* y = x^2 */
    MIMO_ACT_GELU,       /* x Phi(x), the exact erf form */
    MIMO_ACT_GELU_APPROXIMATE, /* its tanh approximation */
    MIMO_ACT_SWISH,      /* x sigmoid(x), also named silu */
    MIMO_ACT_SELU,       /* Klambauer et al.'s constants, as Keras */
    MIMO_ACT_MISH,       /* x tanh(softplus(x)) */
    MIMO_ACT_HARD_SIGMOID, /* clip(x / 6 + 1/2, 0, 1), as Keras 3 */
    MIMO_ACT_COUNT
} mimo_act;

typedef enum {
    MIMO_INIT_GLOROT_UNIFORM = 0,
    MIMO_INIT_GLOROT_NORMAL,
    MIMO_INIT_HE_UNIFORM,
    MIMO_INIT_HE_NORMAL,
    MIMO_INIT_LECUN_NORMAL,
    MIMO_INIT_ZEROS,
    MIMO_INIT_CONSTANT,        /* a = value */
    MIMO_INIT_UNIFORM,         /* a = min, b = max */
    MIMO_INIT_ORTHOGONAL,      /* (fan_in, size / fan_in) with orthonormal
                                * rows or columns (Keras': gain 1) */
    MIMO_INIT_COUNT
} mimo_init_kind;

typedef struct {
    mimo_init_kind kind;
    double a, b;
} mimo_init;

typedef enum {
    MIMO_LOSS_NONE = 0,
    MIMO_LOSS_MSE,
    MIMO_LOSS_MAE,
    MIMO_LOSS_HUBER,           /* delta = huber_delta, default 1.0 */
    MIMO_LOSS_BCE,             /* binary_crossentropy */
    MIMO_LOSS_CCE,             /* categorical_crossentropy, one-hot targets */
    MIMO_LOSS_SPARSE_CCE,      /* sparse_categorical_crossentropy, int labels */
    MIMO_LOSS_COUNT
} mimo_loss;

/* Metric bits for mimo_output_spec.metrics, in the order history columns
 * list them; names by mimo_metric_name(bit index). What each computes is
 * in core/metrics.c and the README. */
enum {
    MIMO_METRIC_ACCURACY = 1 << 0,  /* binary or categorical, by the loss */
    MIMO_METRIC_MSE = 1 << 1,
    MIMO_METRIC_MAE = 1 << 2,
    MIMO_METRIC_AUC = 1 << 3,       /* ROC AUC, exact over the epoch */
    MIMO_METRIC_PRECISION = 1 << 4,
    MIMO_METRIC_RECALL = 1 << 5,
    MIMO_METRIC_F1 = 1 << 6,
    MIMO_METRIC_TOP_K = 1 << 7,     /* top_k_accuracy (categorical) */
    MIMO_METRIC_R2 = 1 << 8
};
#define MIMO_METRIC_COUNT 9
/* The metrics that need class labels (a cross-entropy head). */
#define MIMO_METRICS_CLASSIFY (MIMO_METRIC_AUC | MIMO_METRIC_PRECISION | \
                               MIMO_METRIC_RECALL | MIMO_METRIC_F1 | MIMO_METRIC_TOP_K)

/* Which rows of a head's target carry no label (`missing:`). */
typedef enum {
    MIMO_MISSING_NONE = 0,  /* every row is labelled; NaN is an error */
    MIMO_MISSING_NAN,       /* a row whose target is NaN in every unit */
    MIMO_MISSING_VALUE      /* a row whose target equals missing_value in
                             * every unit (an integer, e.g. -1) */
} mimo_missing;

/* One entry of a head's class_weight: class index -> weight. */
typedef struct {
    long long cls;
    double weight;
    mimo_pos pos;         /* of the class key */
} mimo_class_weight;

/* How the heads' losses add up to the total (train.loss_weighting). */
typedef enum {
    MIMO_WEIGHTING_FIXED = 0,    /* sum_h weight_h * loss_h */
    MIMO_WEIGHTING_UNCERTAINTY   /* sum_h exp(-s_h) * loss_h + s_h, with a
                                  * learned s_h per head (Kendall et al.) */
} mimo_loss_weighting;

/* The products' precision (train.precision): float32, or bf16 inputs
 * with float32 accumulation (Keras' mixed_bfloat16) where the CPU has
 * native bf16; parameters, moments, gradients and losses stay float32. */
typedef enum {
    MIMO_PRECISION_FLOAT32 = 0,
    MIMO_PRECISION_BF16,
    MIMO_PRECISION_COUNT
} mimo_precision;

/* How the heads' gradients combine on the shared parameters
 * (train.task_balancing). */
typedef enum {
    MIMO_BALANCING_NONE = 0,     /* their sum */
    MIMO_BALANCING_PCGRAD,       /* conflicting parts projected away (Yu et
                                  * al. 2020) */
    MIMO_BALANCING_MGDA_UB,      /* the min-norm combination of the heads'
                                  * gradients at the shared representation
                                  * (Sener & Koltun 2018) */
    MIMO_BALANCING_GRADNORM,     /* learned head weights that balance the
                                  * heads' gradient norms at the shared
                                  * representation (Chen et al. 2018) */
    MIMO_BALANCING_COUNT
} mimo_task_balancing;

typedef enum {
    MIMO_OPT_SGD = 0,
    MIMO_OPT_ADAM,
    MIMO_OPT_ADAMW,
    MIMO_OPT_RMSPROP,
    MIMO_OPT_ADAGRAD,
    MIMO_OPT_COUNT
} mimo_opt_kind;

/* Axes of a per-sample tensor: 1 to MIMO_SAMPLE_RANK, channels last as in
 * Keras: (features), (positions, features), (height, width, channels).
 * Parameter tensors have up to MIMO_MAX_RANK axes (a conv2d kernel 4). */
#define MIMO_SAMPLE_RANK 3
#define MIMO_MAX_RANK 4

typedef struct {
    int rank;
    int dim[MIMO_MAX_RANK];
} mimo_shape;

/* The type of an input's values. */
typedef enum {
    MIMO_DTYPE_FLOAT32 = 0, /* features (any numeric dataset, converted) */
    MIMO_DTYPE_INT32,       /* integer ids (an integer dataset; embeddings),
                             * carried as floats: exact up to 2^24 */
    MIMO_DTYPE_INT64        /* 64-bit ids (an integer dataset), carried
                             * exactly: each value's 8 bytes in the row's
                             * float slots (mimo_graph_input_width); read
                             * only by the kinds that read ids */
} mimo_dtype;

typedef struct {
    char *name;
    mimo_shape shape;     /* per sample; a dataset stores it flat or whole */
    mimo_dtype dtype;     /* default float32 */
    mimo_pos pos;
} mimo_input_spec;

/* A layer kind ("dense", "concat", ...): its settings, shapes, parameters
 * and math live in one file of the library (src/core/layers/). */
typedef struct mimo_kind mimo_kind;

typedef struct {
    char *name;
    const mimo_kind *kind;
    void *args;           /* the kind's settings, parsed from its config
                           * keys (read them with mimo_layer_arg); a
                           * sharing layer has a copy of its owner's */
    char **from;          /* names of inputs or layers, n_from of them */
    mimo_pos *from_pos;
    int n_from;
    char *shares;         /* `shares: LAYER`: the layer whose parameters
                           * (and settings) this one uses, or NULL */
    int trainable;        /* `trainable: false`: its parameters are not
                           * updated (gradients still pass); default 1 */
    mimo_pos pos;         /* position of the layer's name */
    mimo_pos shares_pos;    /* of the `shares` value */
    mimo_pos trainable_pos; /* of the `trainable` value; line -1: not given */
} mimo_layer_spec;

/* The value of one of a layer's settings, by config key: integers,
 * booleans and names of enums (activation) in i, reals in d, initializers
 * in init, integer lists in list/n, names in s. */
typedef struct {
    long long i;
    double d;
    mimo_init init;
    int list[MIMO_MAX_RANK], n;
    const char *s;
} mimo_arg_value;

typedef struct {
    char *name;           /* a layer name: this layer's output is the head */
    mimo_loss loss;
    double weight;        /* default 1.0 */
    double huber_delta;   /* default 1.0 */
    unsigned metrics;     /* MIMO_METRIC_* bits */
    char *target;         /* dataset name of the target; default = name */
    int from_logits;      /* cross-entropy on logits: the loss applies the
                           * sigmoid (binary) or softmax itself */
    mimo_missing missing; /* rows without a label (default: none) */
    double missing_value; /* MIMO_MISSING_VALUE: the value, an integer */
    char *sample_weight;  /* dataset of per-row weights (N,) or (N, 1), or NULL */
    mimo_class_weight *class_weight; /* n_class_weight entries */
    int n_class_weight;
    int top_k;            /* top_k_accuracy's k, default 5 */
    mimo_pos pos;
    mimo_pos sample_weight_pos; /* of the `sample_weight` value */
} mimo_output_spec;

typedef struct {
    mimo_opt_kind kind;
    double lr;            /* default: sgd 0.01, others 0.001 */
    double momentum;      /* sgd; rmsprop */
    int nesterov;         /* sgd */
    double beta1, beta2;  /* adam(w): 0.9, 0.999 */
    double eps;           /* adam(w), rmsprop, adagrad: 1e-7 */
    double rho;           /* rmsprop: 0.9 */
    double weight_decay;  /* adamw: decoupled; others: L2 (g += wd * w) */
    double clipnorm;      /* clip by global norm when > 0 */
    double clipvalue;     /* clip each component to [-c, c] when > 0 */
    int lazy;             /* adam(w): values of embedding tables whose
                           * gradient is 0 this step keep their value and
                           * moments (TF's LazyAdam; another optimizer) */
    double initial_accumulator; /* adagrad's accumulator at the start: 0.1 */
} mimo_opt_spec;

/* Learning-rate schedules (per epoch, Keras semantics), with an optional
 * linear warmup over the first warmup_epochs (per step, from lr/steps). */
typedef enum {
    MIMO_SCHED_CONSTANT = 0,
    MIMO_SCHED_STEP,         /* lr * gamma^floor(epoch / step_size) */
    MIMO_SCHED_EXPONENTIAL,  /* lr * gamma^epoch */
    MIMO_SCHED_COSINE,       /* min_lr + (lr - min_lr)(1 + cos(pi e / E)) / 2 */
    MIMO_SCHED_COUNT
} mimo_sched_kind;

typedef struct {
    mimo_sched_kind kind;
    long step_size;       /* step: epochs per decay, default 10 */
    double gamma;         /* step: 0.1; exponential: 0.96 */
    double min_lr;        /* cosine floor, default 0 */
    long warmup_epochs;   /* default 0 */
} mimo_sched_spec;

/* Which way a monitored quantity improves. */
typedef enum { MIMO_MODE_AUTO = 0, MIMO_MODE_MIN, MIMO_MODE_MAX } mimo_mode;

/* ReduceLROnPlateau (Keras): lr *= factor after `patience` epochs without
 * an improvement larger than min_delta; then `cooldown` epochs of rest. */
typedef struct {
    int enabled;
    char *monitor;        /* default "val_loss" ("loss" without validation) */
    mimo_mode mode;
    double factor;        /* 0.1 */
    long patience;        /* 10 */
    double min_delta;     /* 1e-4 */
    long cooldown;        /* 0 */
    double min_lr;        /* 0 */
} mimo_plateau_spec;

/* EarlyStopping (Keras): stop after `patience` epochs without improvement;
 * restore_best puts back the best epoch's parameters. */
typedef struct {
    int enabled;
    char *monitor;        /* default "val_loss" */
    mimo_mode mode;
    double min_delta;     /* 0 */
    long patience;        /* 10 */
    int restore_best;     /* default 1 */
} mimo_early_spec;

/* When checkpoints are written into the run directory. */
typedef struct {
    long every_epochs;    /* default 1; 0 = off */
    long every_steps;     /* 0 = off */
    double every_seconds; /* 0 = off */
    int keep;             /* newest periodic checkpoints kept, default 3 */
    int save_best;        /* best.h5 by monitor, default 1 */
    char *monitor;        /* default "val_loss" */
    mimo_mode mode;
} mimo_ckpt_spec;

typedef struct {
    mimo_opt_spec opt;
    mimo_sched_spec schedule;
    mimo_plateau_spec plateau;
    mimo_early_spec early;
    mimo_ckpt_spec checkpoint;
    long batch_size;      /* GLOBAL batch, default 32 */
    long epochs;          /* default 1 */
    unsigned long long seed; /* default 42 */
    int shuffle;          /* default 1 */
    double validation_split; /* Keras semantics: last fraction, default 0 */
    mimo_loss_weighting loss_weighting; /* default fixed */
    long accumulate;      /* micro-steps per update: batch_size is the
                           * update's global batch, each micro-step takes
                           * batch_size / accumulate of it; default 1 */
    int grad_diagnostics; /* per-head gradient norms and cosines at the
                           * shared representation in the history;
                           * default 0 */
    mimo_task_balancing task_balancing; /* default none */
    double gradnorm_alpha; /* gradnorm's asymmetry alpha, default 1.5 */
    mimo_precision precision; /* default float32 */
} mimo_train_spec;

typedef struct {
    char *train;          /* dataset file paths, may be NULL */
    char *val;
    double memory_limit_mb; /* load whole when under this, default 1024 */
    int prefetch;         /* batches read ahead when streaming, default 2 */
} mimo_data_spec;

typedef struct {
    char *file;           /* config file name, for messages */
    char *text;           /* the full config text (after --set), or NULL */
    mimo_input_spec *inputs;
    int n_inputs;
    mimo_layer_spec *layers;
    int n_layers;
    mimo_output_spec *outputs;
    int n_outputs;
    mimo_train_spec train;
    mimo_data_spec data;
} mimo_spec;

/* Elements of a shape (1 for rank 0); "(None, 28, 28)" into buf. */
MIMO_API long long mimo_shape_size(const mimo_shape *s);
MIMO_API void mimo_shape_format(const mimo_shape *s, char *buf, size_t len);

/* A layer's kind name ("dense"), and its setting `key` into *v: 0, or -1
 * when the kind has no such key. */
MIMO_API const char *mimo_layer_kind_name(const mimo_layer_spec *l);
/* The name of layer kind i (0, 1, ... in the table's order), NULL past the
 * last: what a config's `type` may be (Keras' names aside). */
MIMO_API const char *mimo_layer_kind_at(int i);
MIMO_API int mimo_layer_arg(const mimo_layer_spec *l, const char *key,
                            mimo_arg_value *v);

/* Sets every field to its documented default (no inputs, layers, outputs). */
MIMO_API void mimo_spec_defaults(mimo_spec *s);

/* Frees everything the spec owns and zeroes it. */
MIMO_API void mimo_spec_free(mimo_spec *s);

/* Names for enums, as written in configs ("relu", "dense", "mse", ...).
 * Parsing returns -1 for an unknown name. */
MIMO_API const char *mimo_act_name(mimo_act a);
MIMO_API int mimo_act_parse(const char *s);
MIMO_API const char *mimo_init_name(mimo_init_kind k);
MIMO_API int mimo_init_parse(const char *s);
MIMO_API const char *mimo_loss_name(mimo_loss l);
MIMO_API int mimo_loss_parse(const char *s);
MIMO_API const char *mimo_opt_name(mimo_opt_kind k);
MIMO_API int mimo_opt_parse(const char *s);
MIMO_API const char *mimo_sched_name(mimo_sched_kind k);
MIMO_API int mimo_sched_parse(const char *s);
MIMO_API const char *mimo_mode_name(mimo_mode m);
MIMO_API int mimo_mode_parse(const char *s);
/* Metric i is bit 1 << i ("accuracy", "mse", ..., "top_k_accuracy", "r2"). */
MIMO_API const char *mimo_metric_name(int i);
MIMO_API int mimo_metric_parse(const char *s);
MIMO_API const char *mimo_weighting_name(mimo_loss_weighting w);
MIMO_API int mimo_weighting_parse(const char *s);

#ifdef __cplusplus
}
#endif
#endif
