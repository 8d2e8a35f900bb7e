/* main.c — a program built against an installed libmimo with nothing but
 * its public headers (find_package(mimo)): compiles a two-input, two-head
 * config (131 parameters), checks that the headers and the library agree
 * on the version, and trains it with mimo_fit on arrays in memory; the
 * loss must fall. Exit 0 when all of that holds. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <mimo/mimo.h>

enum { N = 64 };

static int fail(const char *what)
{
    fprintf(stderr, "consumer: %s: %s\n", what, mimo_errmsg());
    return 1;
}

/* Each epoch's total validation-free loss, first and last. */
static double first_loss = NAN, last_loss = NAN;

static int on_epoch(void *user, long epoch, const mimo_stats *train,
                    const mimo_stats *val)
{
    (void)user, (void)val;
    if (epoch == 0)
        first_loss = train->loss;
    last_loss = train->loss;
    return 0;
}

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
        "outputs: {y1: {loss: binary_crossentropy}, y2: {loss: mae}}\n"
        "train: {epochs: 20, batch_size: 16, optimizer: {type: adam, lr: 0.01}}\n";
    if (mimo_version_number() != MIMO_VERSION_NUMBER) {
        fprintf(stderr, "consumer: headers say %d, the library %d\n",
                MIMO_VERSION_NUMBER, mimo_version_number());
        return 1;
    }
    mimo_spec spec;
    mimo_model *m = NULL;
    if (mimo_config_parse(yaml, strlen(yaml), "consumer", NULL, 0, &spec))
        return fail("config");
    if (mimo_model_create(&spec, &m))
        return fail("model");
    printf("mimo %s: %zu parameters\n", mimo_version(), mimo_model_param_count(m));
    int ok = mimo_model_param_count(m) == 131;

    /* y1 = the signs of x1, y2 = one-hot of the largest x2 */
    static mimo_real x1[N * 5], x2[N * 3], y1[N * 5], y2[N * 4];
    mimo_rng r;
    mimo_rng_seed(&r, 7);
    for (int i = 0; i < N; i++) {
        int best = 0;
        for (int j = 0; j < 5; j++) {
            x1[i * 5 + j] = (mimo_real)mimo_rng_normal(&r);
            y1[i * 5 + j] = x1[i * 5 + j] > 0;
        }
        for (int j = 0; j < 3; j++) {
            x2[i * 3 + j] = (mimo_real)mimo_rng_normal(&r);
            if (x2[i * 3 + j] > x2[i * 3 + best])
                best = j;
        }
        y2[i * 4 + best] = 1;
    }
    const mimo_array arrays[] = {{"x1", x1, N, 5}, {"x2", x2, N, 3},
                                 {"y1", y1, N, 5}, {"y2", y2, N, 4}};
    const mimo_dataset train = {arrays, 4};
    if (mimo_fit(m, &train, NULL, on_epoch, NULL))
        return fail("fit");
    printf("loss %.4f -> %.4f over %ld epochs\n", first_loss, last_loss,
           spec.train.epochs);
    ok = ok && last_loss < 0.8 * first_loss;
    mimo_model_free(&m);
    mimo_spec_free(&spec);
    return ok ? 0 : 1;
}
