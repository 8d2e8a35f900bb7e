/* test_checkpoint.c — checkpoints round-trip exactly (parameters, every
 * optimizer moment, step count, trainer state), and a save killed midway
 * (fault injected between writing and renaming, in a child process)
 * leaves the previous checkpoint intact, loadable and chosen as newest. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/model.h"
#include "mimo/mimo.h"
#include "mimo/checkpoint.h"
#include "io/checkpoint_impl.h" /* the test-only fault hook */
#include "mimo/trainer.h"

static const char *yaml =
    "inputs: {x: {shape: 3}, y: {shape: 2}}\n"
    "layers:\n"
    "  h: {type: dense, units: 5, activation: tanh, from: x}\n"
    "  c: {type: concat, from: [h, y]}\n"
    "  o: {type: dense, units: 2, from: c}\n"
    "  p: {type: dense, units: 3, activation: softmax, use_bias: false, from: c}\n"
    "outputs: {o: {loss: mse}, p: {loss: categorical_crossentropy}}\n"
    "train: {optimizer: {type: adam, lr: 0.01}, batch_size: 4, seed: 5}\n";

static char dir[256];

static int setup(void **s)
{
    (void)s;
    snprintf(dir, sizeof dir, "/tmp/mimo-test-ckpt-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **s)
{
    (void)s;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A model trained a few steps, so moments and step count are nonzero. */
static mimo_model *trained(mimo_spec *spec, int steps)
{
    mimo_model *m = NULL;
    if (mimo_config_parse(yaml, strlen(yaml), "ckpt.yaml", NULL, 0, spec) ||
        mimo_model_create(spec, &m))
        fail_msg("%s", mimo_errmsg());
    static mimo_real x[8 * 3], y[8 * 2], o[8 * 2], p[8 * 3];
    for (int i = 0; i < 8 * 3; i++)
        x[i] = (mimo_real)(i % 7) / 7, p[i] = i % 3 == 0;
    for (int i = 0; i < 8 * 2; i++)
        y[i] = (mimo_real)(i % 5) / 5, o[i] = (mimo_real)(i % 3);
    mimo_array a[] = {{"x", x, 8, 3}, {"y", y, 8, 2}, {"o", o, 8, 2}, {"p", p, 8, 3}};
    mimo_dataset d = {a, 4};
    mimo_source src;
    assert_int_equal(mimo_arrays_source(m, &d, 1, &src), 0);
    for (int e = 0; e < steps; e++)
        assert_int_equal(mimo_model_train_epoch(m, &src, e, 0, NULL), 0);
    return m;
}

static void path_in(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

static void test_round_trip(void **s)
{
    (void)s;
    mimo_spec spec, spec2;
    mimo_model *m = trained(&spec, 3), *m2 = NULL;
    mimo_ckpt_state st = {.epoch = 3, .step = 1, .global_step = 7,
                          .samples_seen = 28, .world_size = 1, .seed = 5, .lr = 0.005};
    mimo_ckpt_set(&st, "plateau_wait", 2);
    char path[512];
    path_in(path, sizeof path, "a.h5");
    size_t n = mimo_model_param_count(m);
    mimo_real *best = calloc(n, sizeof *best), *best2 = calloc(n, sizeof *best2);
    for (size_t i = 0; i < n; i++)
        best[i] = (mimo_real)i;
    assert_int_equal(mimo_checkpoint_save(path, m, &st, best), 0);

    /* the spec comes back from the file alone */
    assert_int_equal(mimo_checkpoint_spec(path, NULL, 0, &spec2), 0);
    assert_int_equal(mimo_model_create(&spec2, &m2), 0);
    mimo_ckpt_state back = {0};
    mimo_ckpt_set(&back, "plateau_wait", -1);
    mimo_ckpt_set(&back, "absent", 42);
    int has_best = 0;
    assert_int_equal(mimo_checkpoint_load(path, m2, &back, best2, &has_best), 0);
    assert_memory_equal(mimo_model_params(m), mimo_model_params(m2), n * sizeof(mimo_real));
    assert_memory_equal(best, best2, n * sizeof(mimo_real));
    assert_true(has_best);
    mimo_optim *o1 = mimo_model_optim(m), *o2 = mimo_model_optim(m2);
    assert_int_equal(mimo_optim_n_slots(o2), 2);
    for (int k = 0; k < 2; k++)
        assert_memory_equal(mimo_optim_slot(o1, k), mimo_optim_slot(o2, k),
                            n * sizeof(mimo_real));
    assert_int_equal(mimo_optim_steps(o2), 3 * 2);
    assert_int_equal(back.epoch, 3);
    assert_int_equal(back.step, 1);
    assert_int_equal(back.global_step, 7);
    assert_int_equal(back.samples_seen, 28);
    assert_int_equal(back.seed, 5);
    assert_true(back.lr == 0.005);
    assert_true(mimo_ckpt_get(&back, "plateau_wait", 0) == 2);
    assert_true(mimo_ckpt_get(&back, "absent", 0) == 42); /* untouched */
    remove(path); /* the next test looks for the newest checkpoint in dir */
    mimo_ckpt_state_free(&st);
    mimo_ckpt_state_free(&back);
    free(best);
    free(best2);
    mimo_model_free(&m);
    mimo_model_free(&m2);
    mimo_spec_free(&spec);
    mimo_spec_free(&spec2);
}

#ifdef MIMO_TEST_HOOKS
static void die_midway(void) { _exit(3); }
#endif

static void test_interrupted_save(void **s)
{
    (void)s;
#ifndef MIMO_TEST_HOOKS
    skip(); /* a build without the library's test hooks (MIMO_TEST_HOOKS) */
#else
    mimo_spec spec;
    mimo_model *m = trained(&spec, 1);
    size_t n = mimo_model_param_count(m);
    mimo_ckpt_state st = {.epoch = 1, .global_step = 2, .samples_seen = 8, .world_size = 1};
    char path[512], found[1024];
    path_in(path, sizeof path, "ckpt-000000000002.h5");
    assert_int_equal(mimo_checkpoint_save(path, m, &st, NULL), 0);
    mimo_real *old = malloc(n * sizeof *old);
    memcpy(old, mimo_model_params(m), n * sizeof *old);

    /* train on, then die in the middle of saving over the same name and
     * of saving a newer one */
    mimo_model_free(&m);
    mimo_spec_free(&spec);
    m = trained(&spec, 4);
    pid_t pid = fork();
    if (pid == 0) {
        mimo_checkpoint_fault_hook = die_midway;
        mimo_ckpt_state st2 = {.epoch = 4, .global_step = 8, .samples_seen = 32,
                               .world_size = 1};
        char newer[512];
        path_in(newer, sizeof newer, "ckpt-000000000008.h5");
        mimo_checkpoint_save(newer, m, &st2, NULL);
        mimo_checkpoint_save(path, m, &st2, NULL);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 3);

    /* the old checkpoint is whole and is the newest valid one */
    assert_int_equal(mimo_find_checkpoint(dir, found, sizeof found), 0);
    assert_string_equal(found, path);
    mimo_ckpt_state back = {0};
    assert_int_equal(mimo_checkpoint_load(path, m, &back, NULL, NULL), 0);
    assert_memory_equal(mimo_model_params(m), old, n * sizeof *old);
    assert_int_equal(back.global_step, 2);
    free(old);
    mimo_model_free(&m);
    mimo_spec_free(&spec);
#endif
}

static void test_bad_files(void **s)
{
    (void)s;
    mimo_spec spec;
    mimo_model *m = trained(&spec, 1);
    char path[512];
    path_in(path, sizeof path, "junk.h5");
    FILE *f = fopen(path, "w");
    fputs("junk", f);
    fclose(f);
    assert_true(mimo_checkpoint_load(path, m, NULL, NULL, NULL) < 0);
    assert_non_null(strstr(mimo_errmsg(), "not an HDF5 file"));
    path_in(path, sizeof path, "nope.h5");
    assert_true(mimo_checkpoint_load(path, m, NULL, NULL, NULL) < 0);
    assert_non_null(strstr(mimo_errmsg(), "nope.h5: cannot open"));
    char sub[512];
    path_in(sub, sizeof sub, "no/such/dir/c.h5");
    mimo_ckpt_state st = {0};
    assert_true(mimo_checkpoint_save(sub, m, &st, NULL) < 0);
    assert_non_null(strstr(mimo_errmsg(), "c.h5: cannot create: No such file or directory"));
    mimo_model_free(&m);
    mimo_spec_free(&spec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_interrupted_save),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
