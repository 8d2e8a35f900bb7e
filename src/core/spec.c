/* spec.c — defaults, freeing and enum names of the model specification.
 * Parsing the YAML lives in io/config.c; compiling the spec in graph.c;
 * each layer kind's settings in its own file (core/layers/). */
#include "mimo/spec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kind.h"

static const char *const act_names[MIMO_ACT_COUNT] = {
    "linear", "relu", "leaky_relu", "elu", "sigmoid",
    "tanh", "softmax", "softplus", "quadratic", "gelu", "gelu_approximate",
    "swish", "selu", "mish", "hard_sigmoid"};
static const char *const init_names[MIMO_INIT_COUNT] = {
    "glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
    "lecun_normal", "zeros", "constant", "uniform", "orthogonal"};
static const char *const loss_names[MIMO_LOSS_COUNT] = {
    "none", "mse", "mae", "huber", "binary_crossentropy",
    "categorical_crossentropy", "sparse_categorical_crossentropy"};
static const char *const opt_names[MIMO_OPT_COUNT] = {
    "sgd", "adam", "adamw", "rmsprop", "adagrad"};
static const char *const sched_names[MIMO_SCHED_COUNT] = {
    "constant", "step", "exponential", "cosine"};
static const char *const mode_names[3] = {"auto", "min", "max"};
static const char *const metric_names[MIMO_METRIC_COUNT] = {
    "accuracy", "mse", "mae", "auc", "precision", "recall", "f1",
    "top_k_accuracy", "r2"};
static const char *const weighting_names[2] = {"fixed", "uncertainty"};

static int find_name(const char *const *names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (s && strcmp(names[i], s) == 0)
            return i;
    return -1;
}

static const char *get_name(const char *const *names, int n, int i)
{
    return (i >= 0 && i < n) ? names[i] : "?";
}

const char *mimo_act_name(mimo_act a) { return get_name(act_names, MIMO_ACT_COUNT, (int)a); }
int mimo_act_parse(const char *s) { return find_name(act_names, MIMO_ACT_COUNT, s); }
const char *mimo_init_name(mimo_init_kind k) { return get_name(init_names, MIMO_INIT_COUNT, (int)k); }
int mimo_init_parse(const char *s) { return find_name(init_names, MIMO_INIT_COUNT, s); }
const char *mimo_loss_name(mimo_loss l) { return get_name(loss_names, MIMO_LOSS_COUNT, (int)l); }
/* "none" is not a loss a config may name. */
int mimo_loss_parse(const char *s)
{
    int i = find_name(loss_names, MIMO_LOSS_COUNT, s);
    return i == MIMO_LOSS_NONE ? -1 : i;
}
const char *mimo_opt_name(mimo_opt_kind k) { return get_name(opt_names, MIMO_OPT_COUNT, (int)k); }
int mimo_opt_parse(const char *s) { return find_name(opt_names, MIMO_OPT_COUNT, s); }
const char *mimo_sched_name(mimo_sched_kind k) { return get_name(sched_names, MIMO_SCHED_COUNT, (int)k); }
int mimo_sched_parse(const char *s) { return find_name(sched_names, MIMO_SCHED_COUNT, s); }
const char *mimo_mode_name(mimo_mode m) { return get_name(mode_names, 3, (int)m); }
int mimo_mode_parse(const char *s) { return find_name(mode_names, 3, s); }
const char *mimo_metric_name(int i) { return get_name(metric_names, MIMO_METRIC_COUNT, i); }
int mimo_metric_parse(const char *s) { return find_name(metric_names, MIMO_METRIC_COUNT, s); }
const char *mimo_weighting_name(mimo_loss_weighting w) { return get_name(weighting_names, 2, (int)w); }
int mimo_weighting_parse(const char *s) { return find_name(weighting_names, 2, s); }

long long mimo_shape_size(const mimo_shape *s)
{
    long long n = 1;
    for (int k = 0; k < s->rank; k++)
        n *= s->dim[k];
    return n;
}

void mimo_shape_format(const mimo_shape *s, char *buf, size_t len)
{
    size_t used = (size_t)snprintf(buf, len, "(None");
    for (int k = 0; k < s->rank && used < len; k++)
        used += (size_t)snprintf(buf + used, len - used, ", %d", s->dim[k]);
    if (used < len)
        snprintf(buf + used, len - used, ")");
}

void mimo_spec_defaults(mimo_spec *s)
{
    memset(s, 0, sizeof *s);
    s->train.opt.kind = MIMO_OPT_SGD;
    s->train.opt.lr = 0.01;
    s->train.opt.beta1 = 0.9;
    s->train.opt.beta2 = 0.999;
    s->train.opt.eps = 1e-7;
    s->train.opt.rho = 0.9;
    s->train.opt.initial_accumulator = 0.1;
    s->train.schedule.step_size = 10;
    s->train.schedule.gamma = 0.1;
    s->train.plateau.factor = 0.1;
    s->train.plateau.patience = 10;
    s->train.plateau.min_delta = 1e-4;
    s->train.early.patience = 10;
    s->train.early.restore_best = 1;
    s->train.checkpoint.every_epochs = 1;
    s->train.checkpoint.keep = 3;
    s->train.checkpoint.save_best = 1;
    s->data.memory_limit_mb = 1024;
    s->data.prefetch = 2;
    s->train.batch_size = 32;
    s->train.accumulate = 1;
    s->train.gradnorm_alpha = 1.5;
    s->train.precision = MIMO_PRECISION_FLOAT32;
    s->train.epochs = 1;
    s->train.seed = 42;
    s->train.shuffle = 1;
}

void mimo_spec_free(mimo_spec *s)
{
    if (!s)
        return;
    free(s->file);
    free(s->text);
    for (int i = 0; i < s->n_inputs; i++)
        free(s->inputs[i].name);
    free(s->inputs);
    for (int i = 0; i < s->n_layers; i++) {
        mimo_layer_spec *l = &s->layers[i];
        free(l->name);
        mimo_kind_args_free(l->kind, l->args);
        free(l->shares);
        for (int j = 0; j < l->n_from; j++)
            free(l->from[j]);
        free(l->from);
        free(l->from_pos);
    }
    free(s->layers);
    for (int i = 0; i < s->n_outputs; i++) {
        free(s->outputs[i].name);
        free(s->outputs[i].target);
        free(s->outputs[i].sample_weight);
        free(s->outputs[i].class_weight);
    }
    free(s->outputs);
    free(s->data.train);
    free(s->data.val);
    free(s->train.plateau.monitor);
    free(s->train.early.monitor);
    free(s->train.checkpoint.monitor);
    memset(s, 0, sizeof *s);
}
