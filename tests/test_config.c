/* test_config.c — YAML config parsing (config.c) into a mimo_spec.
 * Good configs give the right spec and defaults; every bad one gives a
 * negative code and a one-line message with file:line:col and the reason;
 * --set overrides change the document and the re-emitted text re-parses.
 * Also the train extras: lr_schedule, reduce_lr_on_plateau, early_stopping,
 * checkpoint, and data.memory_limit_mb / prefetch. */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train/schedule.h"
#include "core/model.h"
#include "mimo/config.h"
#include "mimo/error.h"

#define EXAMPLE \
    "inputs:\n" \
    "  x1: {shape: 5}\n" \
    "  x2: {shape: 3}\n" \
    "layers:\n" \
    "  h1:  {type: dense, units: 4, activation: relu, from: x1}\n" \
    "  h2:  {type: dense, units: 3, activation: relu, from: x1}\n" \
    "  cat: {type: concat, from: [x2, h1, h2]}\n" \
    "  h3:  {type: dense, units: 4, activation: relu, from: cat}\n" \
    "  y1:  {type: dense, units: 5, activation: sigmoid, from: h3}\n" \
    "  y2:  {type: dense, units: 4, activation: softmax, from: h3}\n" \
    "outputs:\n" \
    "  y1: {loss: binary_crossentropy, weight: 1.0, metrics: [accuracy]}\n" \
    "  y2: {loss: mae, weight: 1.0}\n" \
    "train:\n" \
    "  optimizer: {type: sgd, lr: 0.01}\n" \
    "  batch_size: 1\n" \
    "  epochs: 1000\n" \
    "  seed: 42\n" \
    "data: {train: data/seed-mimo.h5}\n"

/* A small valid head for configs that vary only the layers or train. */
#define HEAD "inputs:\n  x1: {shape: 5}\n"
#define TAIL "outputs:\n  h1: {loss: mse}\n"

static int parse(const char *text, const char *const *sets, int n,
                 mimo_spec *s)
{
    return mimo_config_parse(text, strlen(text), "m.yaml", sets, n, s);
}

/* A layer's setting by its config key, through the public accessor. */
static mimo_arg_value arg(const mimo_layer_spec *l, const char *key)
{
    mimo_arg_value v;
    if (mimo_layer_arg(l, key, &v))
        fail_msg("layer '%s' has no setting '%s'", l->name, key);
    return v;
}
static long long arg_i(const mimo_layer_spec *l, const char *key) { return arg(l, key).i; }
static double arg_d(const mimo_layer_spec *l, const char *key) { return arg(l, key).d; }
static mimo_init arg_init(const mimo_layer_spec *l, const char *key) { return arg(l, key).init; }

/* Both layers have setting key with the same value, or neither has it. */
static void same_arg(const mimo_layer_spec *x, const mimo_layer_spec *y,
                     const char *key)
{
    mimo_arg_value a, b;
    int ra = mimo_layer_arg(x, key, &a), rb = mimo_layer_arg(y, key, &b);
    assert_int_equal(ra, rb);
    assert_true(a.i == b.i && (a.d == b.d || (a.d != a.d && b.d != b.d)));
    assert_true(a.init.kind == b.init.kind && a.init.a == b.init.a &&
                a.init.b == b.init.b);
}

/* Parsing fails with code, and the message holds each given fragment. */
static void expect_err_sets(const char *text, const char *const *sets, int n,
                            int code, const char *frag1, const char *frag2)
{
    mimo_spec s;
    int rc = parse(text, sets, n, &s);
    const char *msg = mimo_errmsg();
    if (rc != code || !strstr(msg, frag1) || (frag2 && !strstr(msg, frag2))
        || strchr(msg, '\n'))
        print_error("rc %d (want %d), message: %s\nwanted: '%s' and '%s'\n",
                    rc, code, msg, frag1, frag2 ? frag2 : "");
    assert_int_equal(rc, code);
    assert_non_null(strstr(msg, frag1));
    if (frag2)
        assert_non_null(strstr(msg, frag2));
    assert_null(strchr(msg, '\n'));
    assert_null(s.layers);
    assert_null(s.file);
    assert_int_equal(s.n_inputs, 0);
}

static void expect_err(const char *text, const char *frag1, const char *frag2)
{
    expect_err_sets(text, NULL, 0, MIMO_EINVAL, frag1, frag2);
}

static void parse_ok(const char *text, const char *const *sets, int n,
                     mimo_spec *s)
{
    int rc = parse(text, sets, n, s);
    if (rc)
        print_error("unexpected error: %s\n", mimo_errmsg());
    assert_int_equal(rc, 0);
}

/* ---- good configs ------------------------------------------------------ */

static void test_example(void **state)
{
    mimo_spec s;
    (void)state;
    parse_ok(EXAMPLE, NULL, 0, &s);
    assert_string_equal(s.file, "m.yaml");
    assert_string_equal(s.text, EXAMPLE);
    assert_int_equal(s.n_inputs, 2);
    assert_string_equal(s.inputs[1].name, "x2");
    assert_int_equal(mimo_shape_size(&s.inputs[1].shape), 3);
    assert_int_equal(s.inputs[1].pos.line, 3);
    assert_int_equal(s.inputs[1].pos.col, 3);
    assert_int_equal(s.n_layers, 6);
    const char *order[] = {"h1", "h2", "cat", "h3", "y1", "y2"};
    for (int i = 0; i < 6; i++)
        assert_string_equal(s.layers[i].name, order[i]);
    mimo_layer_spec *h1 = &s.layers[0], *cat = &s.layers[2];
    assert_string_equal(mimo_layer_kind_name(h1), "dense");
    assert_int_equal(arg_i(h1, "units"), 4);
    assert_int_equal(arg_i(h1, "activation"), MIMO_ACT_RELU);
    assert_int_equal(arg_i(h1, "use_bias"), 1);
    assert_int_equal(arg_init(h1, "kernel_initializer").kind, MIMO_INIT_GLOROT_UNIFORM);
    assert_int_equal(arg_init(h1, "bias_initializer").kind, MIMO_INIT_ZEROS);
    assert_true(arg_d(h1, "alpha") == 0.0);
    assert_int_equal(h1->n_from, 1);
    assert_string_equal(h1->from[0], "x1");
    assert_int_equal(h1->pos.line, 5);
    assert_int_equal(h1->pos.col, 3);
    assert_string_equal(mimo_layer_kind_name(cat), "concat");
    assert_int_equal(cat->n_from, 3);
    assert_string_equal(cat->from[0], "x2");
    assert_string_equal(cat->from[2], "h2");
    assert_int_equal(cat->from_pos[1].line, 7);
    assert_int_equal(cat->from_pos[1].col, 34);
    assert_int_equal(arg_i(&s.layers[4], "activation"), MIMO_ACT_SIGMOID);
    assert_int_equal(s.n_outputs, 2);
    assert_string_equal(s.outputs[0].name, "y1");
    assert_string_equal(s.outputs[0].target, "y1");
    assert_int_equal(s.outputs[0].loss, MIMO_LOSS_BCE);
    assert_int_equal(s.outputs[0].metrics, MIMO_METRIC_ACCURACY);
    assert_true(s.outputs[0].huber_delta == 1.0);
    assert_int_equal(s.outputs[1].loss, MIMO_LOSS_MAE);
    assert_int_equal(s.outputs[1].metrics, 0);
    assert_true(s.outputs[1].weight == 1.0);
    assert_int_equal(s.train.opt.kind, MIMO_OPT_SGD);
    assert_true(s.train.opt.lr == 0.01);
    assert_int_equal(s.train.batch_size, 1);
    assert_int_equal(s.train.epochs, 1000);
    assert_true(s.train.seed == 42);
    assert_int_equal(s.train.shuffle, 1);
    assert_string_equal(s.data.train, "data/seed-mimo.h5");
    assert_null(s.data.val);
    mimo_spec_free(&s);
    assert_null(s.layers);
}

/* Keras' spellings: names in any case, with or without underscores, and
 * Keras' aliases of names and keys; the document keeps mimo's keys. */
static void test_keras_spellings(void **state)
{
    const char *text =
        "inputs: {x: {shape: 4}}\n"
        "layers:\n"
        "  h: {type: Dense, units: 8, activation: LeakyReLU, kernel_initializer: GlorotUniform, from: x}\n"
        "  b: {type: BatchNormalization, from: h}\n"
        "  n: {type: layer_normalization, from: b}\n"
        "  c: {type: Concatenate, from: [n, x]}\n"
        "  y: {type: Dense, units: 3, activation: Softmax, from: c}\n"
        "  z: {type: dense, units: 1, from: c}\n"
        "outputs:\n"
        "  y: {loss: SparseCategoricalCrossentropy, metrics: [acc]}\n"
        "  z: {loss: mean_squared_error, metrics: [mean_absolute_error]}\n"
        "train:\n"
        "  optimizer: {type: AdamW, learning_rate: 0.02, beta_1: 0.8, beta_2: 0.9}\n"
        "  early_stopping: {restore_best_weights: false}\n";
    const char *sets[] = {"train.optimizer.learning_rate=0.03"};
    mimo_spec s;
    (void)state;
    parse_ok(text, sets, 1, &s);
    assert_string_equal(mimo_layer_kind_name(&s.layers[0]), "dense");
    assert_int_equal(arg_i(&s.layers[0], "activation"), MIMO_ACT_LEAKY_RELU);
    assert_int_equal(arg_init(&s.layers[0], "kernel_initializer").kind,
                     MIMO_INIT_GLOROT_UNIFORM);
    assert_string_equal(mimo_layer_kind_name(&s.layers[1]), "batch_norm");
    assert_string_equal(mimo_layer_kind_name(&s.layers[2]), "layer_norm");
    assert_string_equal(mimo_layer_kind_name(&s.layers[3]), "concat");
    assert_int_equal(s.outputs[0].loss, MIMO_LOSS_SPARSE_CCE);
    assert_int_equal(s.outputs[0].metrics, MIMO_METRIC_ACCURACY);
    assert_int_equal(s.outputs[1].loss, MIMO_LOSS_MSE);
    assert_int_equal(s.outputs[1].metrics, MIMO_METRIC_MAE);
    assert_int_equal(s.train.opt.kind, MIMO_OPT_ADAMW);
    assert_true(s.train.opt.lr == 0.03); /* --set with Keras' name overrides */
    assert_true(s.train.opt.beta1 == 0.8 && s.train.opt.beta2 == 0.9);
    assert_int_equal(s.train.early.restore_best, 0);
    assert_non_null(strstr(s.text, "lr: 0.03"));
    assert_null(strstr(s.text, "learning_rate"));
    mimo_spec_free(&s);
    expect_err(HEAD "layers: {h1: {type: dense, units: 1, from: x1, "
               "activation: ReLu6}}\n" TAIL, "unknown activation 'ReLu6'",
               "did you mean 'relu'?");
}

static void test_all_options(void **state)
{
    const char *text =
        "data:\n  train: a.h5\n  val: b.h5\n"
        "inputs:\n  img: {shape: [2, 3, 4]}\n"
        "layers:\n"
        "  h1:\n"
        "    type: dense\n"
        "    from: [img]\n"
        "    units: 7\n"
        "    activation: leaky_relu\n"
        "    use_bias: No\n"
        "    kernel_initializer: {type: uniform, min: -0.5, max: 0.25}\n"
        "    bias_initializer: {type: constant, value: 0.5}\n"
        "  h2: {type: dense, from: h1, units: 2, activation: elu, alpha: 0.5,"
        " kernel_initializer: he_normal}\n"
        "  e: {type: activation, from: h2, activation: elu}\n"
        "  m: {type: masked_softmax, from: [h1, h2]}\n"
        "outputs:\n"
        "  e: {loss: huber, delta: 2.5, weight: 0, metrics: mae, target: t}\n"
        "train:\n"
        "  optimizer: {type: adam, beta1: 0.8, epsilon: 1e-8, clipnorm: 1}\n"
        "  shuffle: OFF\n  validation_split: 0.25\n  epochs: 0\n"
        "  seed: 18446744073709551615\n";
    mimo_spec s;
    (void)state;
    parse_ok(text, NULL, 0, &s);
    assert_int_equal(mimo_shape_size(&s.inputs[0].shape), 24);
    mimo_layer_spec *h1 = &s.layers[0], *h2 = &s.layers[1];
    assert_int_equal(arg_i(h1, "units"), 7);
    assert_int_equal(arg_i(h1, "activation"), MIMO_ACT_LEAKY_RELU);
    assert_true(arg_d(h1, "alpha") == 0.3);
    assert_int_equal(arg_i(h1, "use_bias"), 0);
    assert_int_equal(arg_init(h1, "kernel_initializer").kind, MIMO_INIT_UNIFORM);
    assert_true(arg_init(h1, "kernel_initializer").a == -0.5 && arg_init(h1, "kernel_initializer").b == 0.25);
    assert_int_equal(arg_init(h1, "bias_initializer").kind, MIMO_INIT_CONSTANT);
    assert_true(arg_init(h1, "bias_initializer").a == 0.5);
    assert_true(arg_d(h2, "alpha") == 0.5);
    assert_int_equal(arg_init(h2, "kernel_initializer").kind, MIMO_INIT_HE_NORMAL);
    assert_string_equal(mimo_layer_kind_name(&s.layers[2]), "activation");
    assert_true(arg_d(&s.layers[2], "alpha") == 1.0);
    assert_string_equal(mimo_layer_kind_name(&s.layers[3]), "masked_softmax");
    assert_int_equal(s.layers[3].n_from, 2);
    mimo_output_spec *o = &s.outputs[0];
    assert_int_equal(o->loss, MIMO_LOSS_HUBER);
    assert_true(o->huber_delta == 2.5 && o->weight == 0.0);
    assert_int_equal(o->metrics, MIMO_METRIC_MAE);
    assert_string_equal(o->target, "t");
    assert_int_equal(s.train.opt.kind, MIMO_OPT_ADAM);
    assert_true(s.train.opt.lr == 0.001);
    assert_true(s.train.opt.beta1 == 0.8 && s.train.opt.beta2 == 0.999);
    assert_true(s.train.opt.eps == 1e-8 && s.train.opt.clipnorm == 1.0);
    assert_int_equal(s.train.shuffle, 0);
    assert_true(s.train.validation_split == 0.25);
    assert_int_equal(s.train.epochs, 0);
    assert_int_equal(s.train.batch_size, 32);
    assert_true(s.train.seed == 18446744073709551615ULL);
    assert_string_equal(s.data.val, "b.h5");
    mimo_spec_free(&s);
}

static void test_optimizer_name(void **state)
{
    mimo_spec s;
    (void)state;
    parse_ok(HEAD "layers: {h1: {type: dense, units: 1, from: x1}}\n" TAIL
             "train: {optimizer: rmsprop}\n", NULL, 0, &s);
    assert_int_equal(s.train.opt.kind, MIMO_OPT_RMSPROP);
    assert_true(s.train.opt.lr == 0.001);
    assert_true(s.train.opt.rho == 0.9);
    assert_int_equal(s.train.batch_size, 32);
    mimo_spec_free(&s);
}

/* ---- errors ------------------------------------------------------------ */

static void test_unknown_key_suggests(void **state)
{
    (void)state;
    expect_err(HEAD "layers:\n  h1:\n    type: dense\n    from: x1\n"
               "    unit: 4\n" TAIL,
               "m.yaml:7:5: unknown key 'unit' in layer 'h1' (expected one "
               "of: type, from, shares, trainable, units, activation, alpha, "
               "use_bias, kernel_initializer, bias_initializer; did you mean "
               "'units'?)",
               NULL);
    expect_err(HEAD "layer: {}\n" TAIL, "m.yaml:3:1: unknown key 'layer'",
               "did you mean 'layers'?");
    expect_err(HEAD "layers: {h1: {type: dense, units: 1, from: x1}}\n"
               "outputs:\n  h1: {loss: mse, metrix: [mae]}\n",
               "m.yaml:5:19: unknown key 'metrix'", "did you mean 'metrics'");
}

static void test_unknown_key_no_suggestion(void **state)
{
    mimo_spec s;
    (void)state;
    assert_int_equal(parse(HEAD "layers: {h1: {type: dense, units: 1, "
                           "from: x1}}\n" TAIL "train: {colour: red}\n",
                           NULL, 0, &s), MIMO_EINVAL);
    assert_non_null(strstr(mimo_errmsg(), "m.yaml:6:9: unknown key "
                           "'colour' in train"));
    assert_null(strstr(mimo_errmsg(), "did you mean"));
}

static void test_wrong_types(void **state)
{
    (void)state;
    expect_err(HEAD "layers: {h1: {type: dense, units: abc, from: x1}}\n" TAIL,
               "m.yaml:3:35:", "expected an integer > 0 for 'units' in "
               "layer 'h1', got 'abc'");
    expect_err(HEAD "layers: {h1: {type: dense, units: 3.5, from: x1}}\n" TAIL,
               "m.yaml:3:35:", "got '3.5'");
    expect_err(HEAD "layers: {h1: {type: dense, units: 0, from: x1}}\n" TAIL,
               "m.yaml:3:35:", "an integer > 0");
    expect_err(HEAD "layers: {h1: {type: {a: 1}, units: 2, from: x1}}\n" TAIL,
               "m.yaml:3:21:", "got a mapping");
    expect_err(HEAD "layers: {h1: {type: dense, units: 2, from: {a: b}}}\n"
               TAIL, "m.yaml:3:44:", "a name or a non-empty list of names");
    expect_err(HEAD "layers: {h1: {type: dense, units: 2, from: []}}\n" TAIL,
               "m.yaml:3:44:", "a name or a non-empty list");
    expect_err("inputs: {x1: {shape: [2, x]}}\n"
               "layers: {h1: {type: dense, units: 2, from: x1}}\n" TAIL,
               "m.yaml:1:26:", "'shape' of input 'x1'");
    expect_err("inputs: [x1]\nlayers: {}\n" TAIL, "m.yaml:1:9:",
               "expected a mapping like");
}

static void test_bad_enum(void **state)
{
    (void)state;
    expect_err(HEAD "layers: {h1: {type: dense, units: 2, from: x1, "
               "activation: rleu}}\n" TAIL,
               "m.yaml:3:60: unknown activation 'rleu' in layer 'h1' "
               "(expected one of: linear, relu, leaky_relu,",
               "did you mean 'relu'?");
    /* the list names every kind of the table, in its order */
    char kinds[1024] = "";
    for (int i = 0; mimo_layer_kind_at(i); i++)
        snprintf(kinds + strlen(kinds), sizeof kinds - strlen(kinds), "%s%s",
                 i ? ", " : "(expected one of: ", mimo_layer_kind_at(i));
    assert_true(strlen(kinds) + 1 < sizeof kinds && mimo_layer_kind_at(18));
    strcat(kinds, ")");
    expect_err(HEAD "layers: {h1: {type: convolution, from: x1}}\n" TAIL,
               "m.yaml:3:21: unknown layer type 'convolution'", kinds);
    expect_err(HEAD "layers: {h1: {type: dense, units: 1, from: x1}}\n"
               "outputs: {h1: {loss: mse, metrics: [acuracy]}}\n",
               "m.yaml:4:37: unknown metric 'acuracy'", "accuracy, mse, mae");
    expect_err(HEAD "layers: {h1: {type: dense, units: 1, from: x1}}\n" TAIL
               "train: {optimizer: adadelta}\n",
               "unknown optimizer 'adadelta'", "sgd, adam, adamw, rmsprop, adagrad");
    expect_err(HEAD "layers: {h1: {type: dense, units: 1, from: x1, "
               "kernel_initializer: {type: xavier}}}\n" TAIL,
               "unknown initializer 'xavier'", "glorot_uniform");
}

static void test_missing_loss(void **state)
{
    (void)state;
    expect_err(HEAD "layers: {h1: {type: dense, units: 1, from: x1}}\n"
               "outputs:\n  h1: {weight: 2}\n",
               "m.yaml:5:3: output 'h1' has no 'loss'", "mse, mae, huber");
    expect_err(HEAD "layers: {h1: {type: dense, units: 1, from: x1}}\n"
               "outputs:\n  h1:\n", "m.yaml:5:3: output 'h1' has no 'loss'",
               NULL);
}

static void test_missing_keys(void **state)
{
    (void)state;
    expect_err(HEAD "layers:\n  h1: {type: dense, units: 1}\n" TAIL,
               "m.yaml:4:3: layer 'h1' has no 'from'", NULL);
    expect_err(HEAD "layers:\n  h1: {type: dense, from: x1}\n" TAIL,
               "m.yaml:4:3: layer 'h1' has no 'units'", NULL);
    expect_err(HEAD "layers:\n  h1: {units: 1, from: x1}\n" TAIL,
               "m.yaml:4:3: layer 'h1' has no 'type'", "dense, activation");
    expect_err(HEAD "layers:\n  a: {type: activation, from: x1}\n" TAIL,
               "m.yaml:4:3: layer 'a' has no 'activation'", NULL);
    expect_err("inputs:\n  x1: {}\nlayers: {}\n" TAIL,
               "m.yaml:2:3: input 'x1' has no 'shape'", NULL);
    expect_err(HEAD "layers: {h1: {type: dense, units: 1, from: x1}}\n",
               "m.yaml:1:1: missing section 'outputs'", NULL);
}

static void test_empty_sections(void **state)
{
    (void)state;
    expect_err("inputs: {}\nlayers: {}\n" TAIL, "m.yaml:1:9: empty inputs",
               NULL);
    expect_err(HEAD "layers:\n" TAIL, "empty layers", NULL);
    expect_err(HEAD "layers: {h1: {type: dense, units: 1, from: x1}}\n"
               "outputs: {}\n", "m.yaml:4:10: empty outputs", NULL);
}

static void test_duplicate_key(void **state)
{
    (void)state;
    expect_err(HEAD "layers:\n  h1:\n    type: dense\n    units: 2\n"
               "    from: x1\n    units: 3\n" TAIL,
               "m.yaml:8:5: duplicate key 'units' in layer 'h1' (first "
               "given at line 6, column 5)", NULL);
    expect_err(HEAD "layers:\n  h1: {type: dense, units: 1, from: x1}\n"
               "  h1: {type: dense, units: 1, from: x1}\n" TAIL,
               "m.yaml:5:3: duplicate key 'h1' in layers", NULL);
    expect_err(EXAMPLE "inputs: {}\n", "m.yaml:20:1: duplicate key 'inputs'",
               NULL);
}

static void test_duplicate_name(void **state)
{
    (void)state;
    expect_err(HEAD "layers:\n  h1: {type: dense, units: 1, from: x1}\n"
               "  x1: {type: dense, units: 1, from: h1}\n" TAIL,
               "m.yaml:5:3: name 'x1' is used by both an input and a layer",
               "line 2, column 3");
}

static void test_empty(void **state)
{
    (void)state;
    expect_err("", "m.yaml: empty config, expected a mapping with inputs, "
               "layers, outputs", NULL);
    expect_err("# only a comment\n\n", "m.yaml: empty config", NULL);
    expect_err("---\n", "m.yaml: empty config", NULL);
}

static void test_not_yaml(void **state)
{
    (void)state;
    expect_err("inputs: {x1: {shape: 5}\nlayers: [\n", "m.yaml:2:1: not "
               "valid YAML", NULL);
    expect_err("inputs:\n  x1: {shape: 5}\n   bad: : :\n", "m.yaml:3:",
               "not valid YAML");
    expect_err("inputs: \"\xff\xfe\"\n", "m.yaml:1:10: not valid YAML",
               "UTF-8");
    expect_err(EXAMPLE "---\nmore: 1\n", "m.yaml:21:1: a second YAML "
               "document", NULL);
}

static void test_root_not_mapping(void **state)
{
    (void)state;
    expect_err("- inputs\n- layers\n", "m.yaml:1:1: expected a mapping with "
               "inputs, layers, outputs", "got a list");
    expect_err("hello\n", "m.yaml:1:1:", "got 'hello'");
}

static void test_key_for_wrong_layer_type(void **state)
{
    (void)state;
    expect_err(HEAD "layers:\n  h1: {type: dense, units: 1, from: x1}\n"
               "  c: {type: concat, from: [x1, h1], units: 3}\n" TAIL,
               "m.yaml:5:37: key 'units' is not valid for a concat layer",
               NULL);
    expect_err(HEAD "layers:\n  h1: {type: dense, units: 1, from: x1}\n"
               "  a: {type: activation, from: h1, activation: relu, "
               "use_bias: true}\n" TAIL,
               "key 'use_bias' is not valid for an activation layer", NULL);
    expect_err(HEAD "layers: {h1: {type: dense, units: 1, from: x1, "
               "bias_initializer: {type: zeros, value: 1}}}\n" TAIL,
               "key 'value' is not valid for a zeros initializer", NULL);
    expect_err(HEAD "layers: {h1: {type: dense, units: 1, from: x1}}\n" TAIL
               "train: {optimizer: {type: sgd, beta1: 0.5}}\n",
               "m.yaml:6:32: key 'beta1' is not valid for the sgd optimizer",
               NULL);
    expect_err(HEAD "layers: {h1: {type: dense, units: 1, from: x1}}\n"
               "outputs: {h1: {loss: mse, delta: 2}}\n",
               "key 'delta' is only valid with the huber loss", NULL);
}

static void test_bad_bool(void **state)
{
    (void)state;
    expect_err(HEAD "layers: {h1: {type: dense, units: 1, from: x1, "
               "use_bias: maybe}}\n" TAIL,
               "m.yaml:3:58: expected true or false for 'use_bias' in layer"
               " 'h1', got 'maybe'", NULL);
    expect_err(HEAD "layers: {h1: {type: dense, units: 1, from: x1}}\n" TAIL
               "train: {shuffle: 1}\n", "m.yaml:6:18:", "true or false");
}

static void test_int_overflow(void **state)
{
    (void)state;
    expect_err(HEAD "layers: {h1: {type: dense, units: 99999999999999999999,"
               " from: x1}}\n" TAIL, "m.yaml:3:35: 99999999999999999999 is "
               "too large for 'units' in layer 'h1'", NULL);
    expect_err(HEAD "layers: {h1: {type: dense, units: 3000000000, from: x1}}"
               "\n" TAIL, "m.yaml:3:35: 3000000000 is too large", NULL);
    expect_err("inputs: {x1: {shape: [65536, 65536]}}\n"
               "layers: {h1: {type: dense, units: 2, from: x1}}\n" TAIL,
               "m.yaml:1:22: shape of 'shape' of input 'x1' is too large",
               NULL);
    expect_err(HEAD "layers: {h1: {type: dense, units: 1, from: x1}}\n" TAIL
               "train: {seed: 18446744073709551616}\n", "m.yaml:6:15:",
               "too large for 'seed'");
    expect_err(HEAD "layers: {h1: {type: dense, units: 1, from: x1}}\n" TAIL
               "train: {seed: -1}\n", "m.yaml:6:15:",
               "a non-negative integer");
}

static void test_nan_inf_numbers(void **state)
{
    (void)state;
    expect_err(HEAD "layers: {h1: {type: dense, units: 1, from: x1}}\n" TAIL
               "train: {optimizer: {type: sgd, lr: nan}}\n", "m.yaml:6:36:",
               "NaN and Inf are not allowed");
    expect_err(HEAD "layers: {h1: {type: dense, units: 1, from: x1}}\n" TAIL
               "train: {optimizer: {type: sgd, lr: 1e999}}\n", "m.yaml:6:36:",
               "NaN and Inf");
    expect_err(HEAD "layers: {h1: {type: dense, units: 1, from: x1}}\n" TAIL
               "train: {optimizer: {type: sgd, lr: 0.1x}}\n", "m.yaml:6:36:",
               "expected a number > 0");
    expect_err(HEAD "layers: {h1: {type: dense, units: 1, from: x1}}\n" TAIL
               "train: {optimizer: {type: sgd, momentum: 1}}\n",
               "m.yaml:6:42:", "in [0, 1)");
    expect_err(HEAD "layers: {h1: {type: dense, units: 1, from: x1}}\n" TAIL
               "train: {validation_split: 1.0}\n", "m.yaml:6:27:",
               "in [0, 1)");
    expect_err(HEAD "layers: {h1: {type: dense, units: 1, from: x1}}\n"
               "outputs: {h1: {loss: mse, weight: -1}}\n", "m.yaml:4:35:",
               "a number >= 0");
}

/* ---- --set ------------------------------------------------------------- */

static void expect_same_monitor(const char *a, const char *b)
{
    if (a || b) {
        assert_non_null(a);
        assert_non_null(b);
        assert_string_equal(a, b);
    }
}

/* Same train settings: monitor strings by value, everything else by bytes. */
static void expect_same_train(const mimo_train_spec *a,
                              const mimo_train_spec *b)
{
    mimo_train_spec x, y;
    expect_same_monitor(a->plateau.monitor, b->plateau.monitor);
    expect_same_monitor(a->early.monitor, b->early.monitor);
    expect_same_monitor(a->checkpoint.monitor, b->checkpoint.monitor);
    memcpy(&x, a, sizeof x);
    memcpy(&y, b, sizeof y);
    x.plateau.monitor = y.plateau.monitor = NULL;
    x.early.monitor = y.early.monitor = NULL;
    x.checkpoint.monitor = y.checkpoint.monitor = NULL;
    assert_memory_equal(&x, &y, sizeof x);
}

static void expect_same_spec(const mimo_spec *a, const mimo_spec *b)
{
    assert_int_equal(a->n_inputs, b->n_inputs);
    for (int i = 0; i < a->n_inputs; i++) {
        assert_string_equal(a->inputs[i].name, b->inputs[i].name);
        assert_int_equal(a->inputs[i].shape.rank, b->inputs[i].shape.rank);
        assert_memory_equal(a->inputs[i].shape.dim, b->inputs[i].shape.dim,
                            sizeof a->inputs[i].shape.dim);
    }
    assert_int_equal(a->n_layers, b->n_layers);
    for (int i = 0; i < a->n_layers; i++) {
        const mimo_layer_spec *x = &a->layers[i], *y = &b->layers[i];
        assert_string_equal(x->name, y->name);
        assert_string_equal(mimo_layer_kind_name(x), mimo_layer_kind_name(y));
        static const char *const keys[] = {"units", "activation", "alpha",
                                           "use_bias", "kernel_initializer",
                                           "bias_initializer"};
        for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
            same_arg(x, y, keys[k]);
        assert_int_equal(x->n_from, y->n_from);
        for (int j = 0; j < x->n_from; j++)
            assert_string_equal(x->from[j], y->from[j]);
    }
    assert_int_equal(a->n_outputs, b->n_outputs);
    for (int i = 0; i < a->n_outputs; i++) {
        assert_string_equal(a->outputs[i].name, b->outputs[i].name);
        assert_string_equal(a->outputs[i].target, b->outputs[i].target);
        assert_int_equal(a->outputs[i].loss, b->outputs[i].loss);
        assert_int_equal(a->outputs[i].metrics, b->outputs[i].metrics);
        assert_true(a->outputs[i].weight == b->outputs[i].weight);
    }
    expect_same_train(&a->train, &b->train);
    assert_true(a->data.memory_limit_mb == b->data.memory_limit_mb);
    assert_int_equal(a->data.prefetch, b->data.prefetch);
}

/* The re-emitted text parses (without sets) to the same spec. */
static void expect_text_reparses(const mimo_spec *s)
{
    mimo_spec again;
    assert_non_null(s->text);
    parse_ok(s->text, NULL, 0, &again);
    expect_same_spec(s, &again);
    mimo_spec_free(&again);
}

static void test_set_scalar_to_mapping(void **state)
{
    const char *sets[] = {"train.optimizer.lr=0.1", "train.epochs = 7"};
    const char *text = HEAD "layers: {h1: {type: dense, units: 1, from: x1}}\n"
                       TAIL "train:\n  optimizer: adam\n  epochs: 3\n";
    mimo_spec s;
    (void)state;
    parse_ok(text, sets, 2, &s);
    assert_int_equal(s.train.opt.kind, MIMO_OPT_ADAM);
    assert_true(s.train.opt.lr == 0.1);
    assert_int_equal(s.train.epochs, 7);
    assert_non_null(strstr(s.text, "lr: 0.1"));
    expect_text_reparses(&s);
    mimo_spec_free(&s);
}

static void test_set_list_and_positions(void **state)
{
    const char *sets[] = {"layers.h1.from=[x1, x2]", "layers.h1.units=8",
                          "layers.h1.activation=relu"};
    mimo_spec s;
    (void)state;
    parse_ok(EXAMPLE, sets, 3, &s);
    mimo_layer_spec *h1 = &s.layers[0];
    assert_int_equal(arg_i(h1, "units"), 8);
    assert_int_equal(h1->n_from, 2);
    assert_string_equal(h1->from[1], "x2");
    assert_int_equal(h1->from_pos[0].line, 0);
    assert_int_equal(h1->from_pos[1].col, 0);
    assert_int_equal(h1->pos.line, 5); /* the name still comes from the file */
    assert_int_equal(s.n_layers, 6);
    expect_text_reparses(&s);
    mimo_spec_free(&s);
}

static void test_set_creates_nested(void **state)
{
    const char *sets[] = {"train.optimizer.type=adamw",
                          "train.optimizer.weight_decay=0.01",
                          "layers.h9={type: dense, units: 2, from: h1}",
                          "data.val=v.h5"};
    const char *text = HEAD "layers:\n  h1: {type: dense, units: 1, from: x1}\n"
                       TAIL;
    mimo_spec s;
    (void)state;
    parse_ok(text, sets, 4, &s);
    assert_int_equal(s.train.opt.kind, MIMO_OPT_ADAMW);
    assert_true(s.train.opt.lr == 0.001);
    assert_true(s.train.opt.weight_decay == 0.01);
    assert_int_equal(s.n_layers, 2);
    assert_string_equal(s.layers[1].name, "h9");
    assert_int_equal(s.layers[1].pos.line, 0);
    assert_string_equal(s.data.val, "v.h5");
    expect_text_reparses(&s);
    mimo_spec_free(&s);
}

static void test_set_replaces_mapping(void **state)
{
    const char *sets[] = {"train.optimizer={type: rmsprop, momentum: 0.5}",
                          "outputs.y2.metrics=mse"};
    mimo_spec s;
    (void)state;
    parse_ok(EXAMPLE, sets, 2, &s);
    assert_int_equal(s.train.opt.kind, MIMO_OPT_RMSPROP);
    assert_true(s.train.opt.lr == 0.001);
    assert_true(s.train.opt.momentum == 0.5);
    assert_int_equal(s.outputs[1].metrics, MIMO_METRIC_MSE);
    expect_text_reparses(&s);
    mimo_spec_free(&s);
}

static void test_set_malformed(void **state)
{
    const char *bad[] = {"xyz", "=3", "a..b=1", ".a=1", "a.=1"};
    (void)state;
    for (int i = 0; i < 5; i++) {
        char want[64];
        snprintf(want, sizeof want, "m.yaml: --set '%s': expected "
                 "KEY.PATH=VALUE", bad[i]);
        expect_err_sets(EXAMPLE, &bad[i], 1, MIMO_EINVAL, want, NULL);
    }
}

static void test_set_errors_name_set(void **state)
{
    const char *s1[] = {"layers.h1.unit=8"};
    const char *s2[] = {"layers.h1.units=abc"};
    const char *s3[] = {"layers.cat.from.x=1"};
    const char *s4[] = {"layers.h1.from=[x1"};
    const char *s5[] = {"trian.epochs=3"};
    const char *s6[] = {"layers.h1.units=8", "layers.h1.units=3.5"};
    (void)state;
    expect_err_sets(EXAMPLE, s1, 1, MIMO_EINVAL, "m.yaml: --set "
                    "layers.h1.unit: unknown key 'unit' in layer 'h1'",
                    "did you mean 'units'?");
    expect_err_sets(EXAMPLE, s2, 1, MIMO_EINVAL, "m.yaml: --set "
                    "layers.h1.units: expected an integer > 0", "got 'abc'");
    expect_err_sets(EXAMPLE, s3, 1, MIMO_EINVAL, "m.yaml: --set "
                    "layers.cat.from.x: 'from' is a list", NULL);
    expect_err_sets(EXAMPLE, s4, 1, MIMO_EINVAL, "m.yaml: --set "
                    "layers.h1.from: value is not valid YAML", NULL);
    expect_err_sets(EXAMPLE, s5, 1, MIMO_EINVAL, "m.yaml: --set "
                    "trian.epochs: unknown key 'trian'",
                    "did you mean 'train'");
    expect_err_sets(EXAMPLE, s6, 2, MIMO_EINVAL, "m.yaml: --set "
                    "layers.h1.units: ", "got '3.5'");
}

static void test_set_deep_value_rejected(void **state)
{
    char value[400] = "layers.h1.from=";
    const char *sets[] = {value};
    (void)state;
    for (int i = 0; i < 100; i++)
        strcat(value, "[");
    for (int i = 0; i < 100; i++)
        strcat(value, "]");
    expect_err_sets(EXAMPLE, sets, 1, MIMO_EINVAL, "m.yaml: --set "
                    "layers.h1.from: value is too large or too deeply nested",
                    NULL);
}

/* ---- schedules, callbacks, checkpoints, data options ------------------- */

/* A valid config up to line 5; the tested train/data section is line 6. */
#define BASE HEAD "layers: {h1: {type: dense, units: 1, from: x1}}\n" TAIL

static void test_train_extras_defaults(void **state)
{
    mimo_spec s;
    (void)state;
    parse_ok(BASE, NULL, 0, &s);
    assert_int_equal(s.train.schedule.kind, MIMO_SCHED_CONSTANT);
    assert_int_equal(s.train.schedule.warmup_epochs, 0);
    assert_int_equal(s.train.plateau.enabled, 0);
    assert_null(s.train.plateau.monitor);
    assert_int_equal(s.train.early.enabled, 0);
    assert_null(s.train.early.monitor);
    assert_int_equal(s.train.checkpoint.every_epochs, 1);
    assert_int_equal(s.train.checkpoint.keep, 3);
    assert_int_equal(s.train.checkpoint.save_best, 1);
    assert_null(s.train.checkpoint.monitor);
    assert_true(s.data.memory_limit_mb == 1024);
    assert_int_equal(s.data.prefetch, 2);
    mimo_spec_free(&s);
}

static void test_train_extras_all(void **state)
{
    const char *text = BASE
        "train:\n"
        "  lr_schedule: {type: step, step_size: 10, gamma: 0.5, "
        "warmup_epochs: 2}\n"
        "  reduce_lr_on_plateau: {monitor: val_loss, mode: auto, factor: 0.5,"
        " patience: 5, min_delta: 0.001, cooldown: 2, min_lr: 1e-5}\n"
        "  early_stopping:\n"
        "    monitor: val_y1_accuracy\n"
        "    mode: max\n"
        "    patience: 0\n"
        "    min_delta: 0.01\n"
        "    restore_best: false\n"
        "  checkpoint: {every_epochs: 0, every_steps: 100, every_seconds: 1.5,"
        " keep: 1, save_best: no, monitor: loss, mode: min}\n"
        "data:\n  train: a.h5\n  val: b.h5\n  memory_limit_mb: 0.5\n"
        "  prefetch: 0\n";
    mimo_spec s;
    (void)state;
    parse_ok(text, NULL, 0, &s);
    const mimo_sched_spec *sc = &s.train.schedule;
    assert_int_equal(sc->kind, MIMO_SCHED_STEP);
    assert_int_equal(sc->step_size, 10);
    assert_true(sc->gamma == 0.5);
    assert_int_equal(sc->warmup_epochs, 2);
    const mimo_plateau_spec *p = &s.train.plateau;
    assert_int_equal(p->enabled, 1);
    assert_string_equal(p->monitor, "val_loss");
    assert_int_equal(p->mode, MIMO_MODE_AUTO);
    assert_true(p->factor == 0.5 && p->min_delta == 0.001);
    assert_int_equal(p->patience, 5);
    assert_int_equal(p->cooldown, 2);
    assert_true(p->min_lr == 1e-5);
    const mimo_early_spec *e = &s.train.early;
    assert_int_equal(e->enabled, 1);
    assert_string_equal(e->monitor, "val_y1_accuracy");
    assert_int_equal(e->mode, MIMO_MODE_MAX);
    assert_int_equal(e->patience, 0);
    assert_true(e->min_delta == 0.01);
    assert_int_equal(e->restore_best, 0);
    const mimo_ckpt_spec *k = &s.train.checkpoint;
    assert_int_equal(k->every_epochs, 0);
    assert_int_equal(k->every_steps, 100);
    assert_true(k->every_seconds == 1.5);
    assert_int_equal(k->keep, 1);
    assert_int_equal(k->save_best, 0);
    assert_string_equal(k->monitor, "loss");
    assert_int_equal(k->mode, MIMO_MODE_MIN);
    assert_string_equal(s.data.train, "a.h5");
    assert_true(s.data.memory_limit_mb == 0.5);
    assert_int_equal(s.data.prefetch, 0);
    mimo_spec_free(&s);
}

/* Parses BASE + line and returns the spec (caller frees). */
static void parse_line(const char *line, mimo_spec *s)
{
    char text[1024];
    snprintf(text, sizeof text, "%s%s\n", BASE, line);
    parse_ok(text, NULL, 0, s);
}

static void test_schedule_forms(void **state)
{
    mimo_spec s;
    (void)state;
    parse_line("train: {lr_schedule: cosine}", &s);
    assert_int_equal(s.train.schedule.kind, MIMO_SCHED_COSINE);
    assert_true(s.train.schedule.min_lr == 0.0);
    mimo_spec_free(&s);
    /* gamma defaults: 0.96 for exponential, 0.1 for step */
    parse_line("train: {lr_schedule: exponential}", &s);
    assert_true(s.train.schedule.gamma == 0.96);
    mimo_spec_free(&s);
    parse_line("train: {lr_schedule: {type: exponential, warmup_epochs: 0}}",
               &s);
    assert_true(s.train.schedule.gamma == 0.96);
    mimo_spec_free(&s);
    parse_line("train: {lr_schedule: {type: step, gamma: 1}}", &s);
    assert_int_equal(s.train.schedule.step_size, 10);
    assert_true(s.train.schedule.gamma == 1.0);
    mimo_spec_free(&s);
    parse_line("train: {lr_schedule: {type: step}}", &s);
    assert_true(s.train.schedule.gamma == 0.1);
    mimo_spec_free(&s);
    parse_line("train: {lr_schedule: {type: cosine, min_lr: 0.001}}", &s);
    assert_true(s.train.schedule.min_lr == 0.001);
    mimo_spec_free(&s);
    /* no type: constant, with warmup */
    parse_line("train: {lr_schedule: {warmup_epochs: 3}}", &s);
    assert_int_equal(s.train.schedule.kind, MIMO_SCHED_CONSTANT);
    assert_int_equal(s.train.schedule.warmup_epochs, 3);
    mimo_spec_free(&s);
}

static void test_callback_forms(void **state)
{
    mimo_spec s;
    (void)state;
    parse_line("train: {reduce_lr_on_plateau: true, early_stopping: {}}", &s);
    assert_int_equal(s.train.plateau.enabled, 1);
    assert_true(s.train.plateau.factor == 0.1);
    assert_int_equal(s.train.plateau.patience, 10);
    assert_true(s.train.plateau.min_delta == 1e-4);
    assert_null(s.train.plateau.monitor);
    assert_int_equal(s.train.early.enabled, 1);
    assert_int_equal(s.train.early.patience, 10);
    assert_int_equal(s.train.early.restore_best, 1);
    mimo_spec_free(&s);
    parse_line("train: {reduce_lr_on_plateau: False, early_stopping: yes,"
               " checkpoint: }", &s);
    assert_int_equal(s.train.plateau.enabled, 0);
    assert_int_equal(s.train.early.enabled, 1);
    assert_int_equal(s.train.checkpoint.keep, 3);
    mimo_spec_free(&s);
}

static void test_schedule_errors(void **state)
{
    (void)state;
    expect_err(BASE "train: {lr_schedule: {type: step, stepsize: 3}}\n",
               "m.yaml:6:35: unknown key 'stepsize' in train.lr_schedule "
               "(expected one of: type, step_size, gamma, min_lr, "
               "warmup_epochs; did you mean 'step_size'?)", NULL);
    expect_err(BASE "train: {lr_schedule: cosin}\n",
               "m.yaml:6:22: unknown schedule 'cosin' in train.lr_schedule "
               "(expected one of: constant, step, exponential, cosine; did "
               "you mean 'cosine'?)", NULL);
    expect_err(BASE "train: {lr_schedule: [step]}\n", "m.yaml:6:22: expected"
               " one of: constant, step, exponential, cosine for "
               "train.lr_schedule, got a list", NULL);
    expect_err(BASE "train: {lr_schedule: {type: cosine, gamma: 0.5}}\n",
               "m.yaml:6:37: key 'gamma' is not valid for the cosine "
               "schedule", NULL);
    expect_err(BASE "train: {lr_schedule: {type: exponential, step_size: 2}}"
               "\n", "key 'step_size' is not valid for the exponential", NULL);
    expect_err(BASE "train: {lr_schedule: {min_lr: 0.1}}\n",
               "m.yaml:6:23: key 'min_lr' is not valid for the constant "
               "schedule", NULL);
    expect_err(BASE "train: {lr_schedule: {type: step, step_size: 0}}\n",
               "m.yaml:6:46: expected an integer > 0 for 'step_size' in "
               "train.lr_schedule, got '0'", NULL);
    expect_err(BASE "train: {lr_schedule: {type: exponential, gamma: 1.5}}\n",
               "m.yaml:6:49: expected a number in (0, 1] for 'gamma' in "
               "train.lr_schedule, got '1.5'", NULL);
    expect_err(BASE "train: {lr_schedule: {type: step, gamma: 0}}\n",
               "m.yaml:6:42:", "a number in (0, 1]");
    expect_err(BASE "train: {lr_schedule: {type: cosine, min_lr: -1}}\n",
               "m.yaml:6:45:", "a number >= 0 for 'min_lr'");
    expect_err(BASE "train:\n  lr_schedule:\n    warmup_epochs: 2.5\n",
               "m.yaml:8:20: expected an integer >= 0 for 'warmup_epochs' in"
               " train.lr_schedule, got '2.5'", NULL);
    expect_err(BASE "train: {lr_schedule: {warmup_epochs: -1}}\n",
               "m.yaml:6:38:", "an integer >= 0");
}

static void test_callback_errors(void **state)
{
    (void)state;
    expect_err(BASE "train: {reduce_lr_on_plateau: {factor: 1}}\n",
               "m.yaml:6:40: expected a number in (0, 1) for 'factor' in "
               "train.reduce_lr_on_plateau, got '1'", NULL);
    expect_err(BASE "train: {reduce_lr_on_plateau: {factor: 0}}\n",
               "m.yaml:6:40:", "in (0, 1)");
    expect_err(BASE "train: {reduce_lr_on_plateau: {mode: mx}}\n",
               "m.yaml:6:38: unknown mode 'mx' in train.reduce_lr_on_plateau"
               " (expected one of: auto, min, max; did you mean 'max'?)",
               NULL);
    expect_err(BASE "train: {reduce_lr_on_plateau: {cooldown: abc}}\n",
               "m.yaml:6:42: expected an integer >= 0 for 'cooldown' in "
               "train.reduce_lr_on_plateau, got 'abc'", NULL);
    expect_err(BASE "train: {reduce_lr_on_plateau: {patience: -1}}\n",
               "m.yaml:6:42:", "an integer >= 0 for 'patience'");
    expect_err(BASE "train: {reduce_lr_on_plateau: {min_lr: -0.1}}\n",
               "m.yaml:6:40:", "a number >= 0 for 'min_lr'");
    expect_err(BASE "train: {reduce_lr_on_plateau: {min_delta: nan}}\n",
               "m.yaml:6:43:", "NaN and Inf are not allowed");
    expect_err(BASE "train: {early_stopping: {monitor: ''}}\n",
               "m.yaml:6:35: expected a monitored quantity like loss, "
               "val_loss or val_<head>_<metric> for 'monitor' in "
               "train.early_stopping, got ''", NULL);
    expect_err(BASE "train: {early_stopping: {monitor: [a]}}\n",
               "m.yaml:6:35:", "got a list");
    expect_err(BASE "train: {early_stopping: 5}\n",
               "m.yaml:6:25: expected true, false or a mapping of settings "
               "for train.early_stopping, got '5'", NULL);
    expect_err(BASE "train:\n  early_stopping:\n  epochs: 3\n",
               "m.yaml:7:18: expected true, false or a mapping",
               "got nothing");
    expect_err(BASE "train: {early_stopping: {patiance: 3}}\n",
               "m.yaml:6:26: unknown key 'patiance' in train.early_stopping "
               "(expected one of: monitor, mode, patience, min_delta, "
               "restore_best; did you mean 'patience'?)", NULL);
    expect_err(BASE "train: {early_stopping: {restore_best: maybe}}\n",
               "m.yaml:6:40: expected true or false for 'restore_best' in "
               "train.early_stopping, got 'maybe'", NULL);
    expect_err(BASE "train:\n  early_stopping:\n    patience: 1\n"
               "    patience: 2\n", "m.yaml:9:5: duplicate key 'patience' in "
               "train.early_stopping (first given at line 8, column 5)",
               NULL);
}

static void test_checkpoint_data_errors(void **state)
{
    (void)state;
    expect_err(BASE "train: {checkpoint: {keep: 0}}\n",
               "m.yaml:6:28: expected an integer > 0 for 'keep' in "
               "train.checkpoint, got '0'", NULL);
    expect_err(BASE "train: {checkpoint: {keep: 3000000000}}\n",
               "m.yaml:6:28: 3000000000 is too large for 'keep' in "
               "train.checkpoint", NULL);
    expect_err(BASE "train: {checkpoint: {every_seconds: -1}}\n",
               "m.yaml:6:37:", "a number >= 0 for 'every_seconds'");
    expect_err(BASE "train: {checkpoint: {every_epochs: 1.5}}\n",
               "m.yaml:6:36:", "an integer >= 0 for 'every_epochs'");
    expect_err(BASE "train: {checkpoint: {every_steps: -2}}\n",
               "m.yaml:6:35:", "an integer >= 0 for 'every_steps'");
    expect_err(BASE "train: {checkpoint: {every_epoch: 2}}\n",
               "m.yaml:6:22: unknown key 'every_epoch' in train.checkpoint",
               "did you mean 'every_epochs'?");
    expect_err(BASE "train: {checkpoint: {save_best: 2}}\n",
               "m.yaml:6:33:", "true or false for 'save_best'");
    expect_err(BASE "train: {checkpoint: {mode: maximum}}\n",
               "m.yaml:6:28: unknown mode 'maximum' in train.checkpoint",
               NULL);
    expect_err(BASE "train: {checkpoint: 5}\n", "m.yaml:6:21: expected a "
               "mapping for train.checkpoint, got '5'", NULL);
    expect_err(BASE "data: {train: a.h5, memory_limit_mb: 0}\n",
               "m.yaml:6:38: expected a number > 0 for 'memory_limit_mb' in "
               "data, got '0'", NULL);
    expect_err(BASE "data: {prefetch: -1}\n", "m.yaml:6:18: expected an "
               "integer >= 0 for 'prefetch' in data, got '-1'", NULL);
    expect_err(BASE "data: {prefetch: 1e3}\n", "m.yaml:6:18:",
               "got '1e3'");
    expect_err(BASE "data: {prefech: 2}\n", "m.yaml:6:8: unknown key "
               "'prefech' in data (expected one of: train, val, "
               "memory_limit_mb, prefetch; did you mean 'prefetch'?)", NULL);
}

static void test_set_train_extras(void **state)
{
    const char *sets[] = {"train.lr_schedule.warmup_epochs=3",
                          "train.early_stopping.patience=4",
                          "train.reduce_lr_on_plateau.factor=0.2",
                          "train.checkpoint.monitor=val_y1_loss",
                          "data.prefetch=5", "data.memory_limit_mb=64"};
    const char *text = BASE "train:\n  lr_schedule: cosine\n"
                       "  reduce_lr_on_plateau: false\n";
    mimo_spec s;
    (void)state;
    parse_ok(text, sets, 6, &s);
    assert_int_equal(s.train.schedule.kind, MIMO_SCHED_COSINE);
    assert_int_equal(s.train.schedule.warmup_epochs, 3);
    assert_int_equal(s.train.early.enabled, 1);
    assert_int_equal(s.train.early.patience, 4);
    /* setting a key below a callback enables it, even from false */
    assert_int_equal(s.train.plateau.enabled, 1);
    assert_true(s.train.plateau.factor == 0.2);
    assert_string_equal(s.train.checkpoint.monitor, "val_y1_loss");
    assert_int_equal(s.data.prefetch, 5);
    assert_true(s.data.memory_limit_mb == 64);
    expect_text_reparses(&s);
    mimo_spec_free(&s);
}

static void test_set_replaces_schedule(void **state)
{
    const char *sets[] = {"train.lr_schedule=exponential",
                          "train.early_stopping=true"};
    const char *text = BASE "train:\n  lr_schedule: {type: step, "
                       "step_size: 3}\n  early_stopping: {patience: 2}\n";
    mimo_spec s;
    (void)state;
    parse_ok(text, sets, 2, &s);
    assert_int_equal(s.train.schedule.kind, MIMO_SCHED_EXPONENTIAL);
    assert_true(s.train.schedule.gamma == 0.96);
    assert_int_equal(s.train.schedule.step_size, 10);
    assert_int_equal(s.train.early.enabled, 1);
    assert_int_equal(s.train.early.patience, 10);
    expect_text_reparses(&s);
    mimo_spec_free(&s);
}

static void test_set_train_extras_errors(void **state)
{
    const char *s1[] = {"train.early_stopping.patience=-1"};
    const char *s2[] = {"train.lr_schedule.gama=0.5"};
    const char *s3[] = {"train.lr_schedule.gamma=0.5"};
    const char *s4[] = {"data.prefetch=two"};
    const char *s5[] = {"train.optimizer.lr=0.5"};
    const char *text = BASE "train: {lr_schedule: cosine}\n";
    const char *text5 = BASE "train: {optimizer: true}\n";
    (void)state;
    expect_err_sets(text, s1, 1, MIMO_EINVAL, "m.yaml: --set "
                    "train.early_stopping.patience: expected an integer >= 0"
                    " for 'patience' in train.early_stopping, got '-1'", NULL);
    expect_err_sets(text, s2, 1, MIMO_EINVAL, "m.yaml: --set "
                    "train.lr_schedule.gama: unknown key 'gama' in "
                    "train.lr_schedule", "did you mean 'gamma'?");
    expect_err_sets(text, s3, 1, MIMO_EINVAL, "m.yaml: --set "
                    "train.lr_schedule.gamma: key 'gamma' is not valid for "
                    "the cosine schedule", NULL);
    expect_err_sets(text, s4, 1, MIMO_EINVAL, "m.yaml: --set data.prefetch: "
                    "expected an integer >= 0", "got 'two'");
    /* only callbacks turn true into {}: optimizer: true stays a bad name */
    expect_err_sets(text5, s5, 1, MIMO_EINVAL, "unknown optimizer 'true'",
                    NULL);
}

/* ---- files ------------------------------------------------------------- */

static void test_load_missing_file(void **state)
{
    mimo_spec s;
    (void)state;
    assert_int_equal(mimo_config_load("/nonexistent/dir/model.yaml", NULL, 0,
                                      &s), MIMO_EIO);
    assert_non_null(strstr(mimo_errmsg(), "/nonexistent/dir/model.yaml"));
    assert_null(s.file);
}

static void test_load_file(void **state)
{
    char path[] = "/tmp/mimo_test_config_XXXXXX";
    const char *sets[] = {"train.batch_size=64"};
    int fd = mkstemp(path);
    FILE *f;
    mimo_spec s;
    (void)state;
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(EXAMPLE, f);
    fclose(f);
    assert_int_equal(mimo_config_load(path, sets, 1, &s), 0);
    assert_string_equal(s.file, path);
    assert_int_equal(s.train.batch_size, 64);
    assert_int_equal(s.n_layers, 6);
    mimo_spec_free(&s);
    remove(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example),
        cmocka_unit_test(test_all_options),
        cmocka_unit_test(test_keras_spellings),
        cmocka_unit_test(test_optimizer_name),
        cmocka_unit_test(test_unknown_key_suggests),
        cmocka_unit_test(test_unknown_key_no_suggestion),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_bad_enum),
        cmocka_unit_test(test_missing_loss),
        cmocka_unit_test(test_missing_keys),
        cmocka_unit_test(test_empty_sections),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_duplicate_name),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_not_yaml),
        cmocka_unit_test(test_root_not_mapping),
        cmocka_unit_test(test_key_for_wrong_layer_type),
        cmocka_unit_test(test_bad_bool),
        cmocka_unit_test(test_int_overflow),
        cmocka_unit_test(test_nan_inf_numbers),
        cmocka_unit_test(test_set_scalar_to_mapping),
        cmocka_unit_test(test_set_list_and_positions),
        cmocka_unit_test(test_set_creates_nested),
        cmocka_unit_test(test_set_replaces_mapping),
        cmocka_unit_test(test_set_malformed),
        cmocka_unit_test(test_set_errors_name_set),
        cmocka_unit_test(test_set_deep_value_rejected),
        cmocka_unit_test(test_train_extras_defaults),
        cmocka_unit_test(test_train_extras_all),
        cmocka_unit_test(test_schedule_forms),
        cmocka_unit_test(test_callback_forms),
        cmocka_unit_test(test_schedule_errors),
        cmocka_unit_test(test_callback_errors),
        cmocka_unit_test(test_checkpoint_data_errors),
        cmocka_unit_test(test_set_train_extras),
        cmocka_unit_test(test_set_replaces_schedule),
        cmocka_unit_test(test_set_train_extras_errors),
        cmocka_unit_test(test_load_missing_file),
        cmocka_unit_test(test_load_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
