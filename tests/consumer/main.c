/* main.c — compiles a two-input, two-head config with an installed libmimo
 * and prints its parameter count (131 for this network). */
#include <stdio.h>
#include <string.h>

#include <mimo/mimo.h>

int main(void)
{
    const char *yaml =
        "inputs: {x1: {shape: 5}, x2: {shape: 3}}\n"
        "layers:\n"
        "  h1: {type: dense, units: 4, activation: relu, from: x1}\n"
        "  h2: {type: dense, units: 3, activation: relu, from: x1}\n"
        "  cat: {type: concat, from: [x2, h1, h2]}\n"
        "  h3: {type: dense, units: 4, activation: relu, from: cat}\n"
        "  y1: {type: dense, units: 5, activation: sigmoid, from: h3}\n"
        "  y2: {type: dense, units: 4, activation: softmax, from: h3}\n"
        "outputs: {y1: {loss: binary_crossentropy}, y2: {loss: mae}}\n";
    mimo_spec spec;
    mimo_model *m = NULL;
    if (mimo_config_parse(yaml, strlen(yaml), "consumer", NULL, 0, &spec) ||
        mimo_model_create(&spec, &m)) {
        fprintf(stderr, "consumer: %s\n", mimo_errmsg());
        return 1;
    }
    printf("mimo %s: %zu parameters\n", mimo_version(), mimo_model_param_count(m));
    int ok = mimo_model_param_count(m) == 131;
    mimo_model_free(&m);
    mimo_spec_free(&spec);
    return ok ? 0 : 1;
}
