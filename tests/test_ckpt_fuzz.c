/* test_ckpt_fuzz.c — hostile checkpoints never crash, hang or load silently
 * wrong. From one real mid-epoch checkpoint, each case mutates a copy —
 * every attribute of / and /optimizer set to extremes (INT64 limits, -1,
 * NaN, Inf, 1e300), to another datatype or shape, or deleted; every tensor
 * reshaped, retyped, filled with NaN/Inf or deleted; /config replaced; the
 * file truncated; single bits flipped — and resumes training from it in a
 * forked child (alarm: a hang), as `mimo train --resume` does, config read
 * from the file. Attribute and tensor mutations run twice: as damage (the
 * state checksum left as it was) and as a crafted file (resealed with a
 * valid checksum), so the range checks behind the checksum are exercised
 * too. A flipped file that loads must hold exactly the original tensors.
 * Prints the tally (tried / clean / crash / hang / loss); crash, hang and
 * loss must be 0. Under ASan+UBSan (-fno-sanitize-recover) any memory or
 * undefined-behaviour error ends the child with a code counted as a crash. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <hdf5.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/h5_impl.h"
#include "core/model.h"
#include "mimo/mimo.h"
#include "mimo/trainer.h"
#include "tools/datagen.h"

#include "fuzz.h"

static const char *yaml =
    "inputs: {x: {shape: 3}}\n"
    "layers:\n"
    "  h: {type: dense, units: 4, activation: tanh, from: x}\n"
    "  o: {type: dense, units: 2, from: h}\n"
    "outputs: {o: {loss: mse}}\n"
    "train: {optimizer: adam, batch_size: 4, epochs: 1, seed: 3,\n"
    "        reduce_lr_on_plateau: {monitor: loss},\n"
    "        checkpoint: {every_steps: 3, keep: 100}}\n";

static char dir[256], data[300], base[600], work[400];
static mimo_real *base_params, *base_m, *base_v;
static size_t n_params;

static fuzz_tally tally;

static void child(void *arg)
{
    int compare = *(const int *)arg;
    fuzz_child_begin(60);
    mimo_spec spec;
    mimo_model *m = NULL;
    char out[512];
    snprintf(out, sizeof out, "%s/run-%d", dir, (int)getpid());
    int rc = mimo_checkpoint_spec(work, NULL, 0, &spec);
    if (!rc && compare && !(rc = mimo_model_create(&spec, &m))) {
        mimo_ckpt_state st = {0};
        rc = mimo_checkpoint_load(work, m, &st, NULL, NULL);
        mimo_optim *o = mimo_model_optim(m);
        if (!rc && (memcmp(mimo_model_params(m), base_params, n_params * sizeof(mimo_real)) ||
                    memcmp(mimo_optim_slot(o, 0), base_m, n_params * sizeof(mimo_real)) ||
                    memcmp(mimo_optim_slot(o, 1), base_v, n_params * sizeof(mimo_real))))
            _exit(FUZZ_WRONG);
        mimo_ckpt_state_free(&st);
        mimo_model_free(&m);
    }
    if (!rc) {
        mimo_train_opts o = {0};
        o.out_dir = out;
        o.resume = work;
        o.train_path = data;
        o.comm = MPI_COMM_NULL;
        rc = mimo_train(&spec, &o);
    }
    mimo_spec_free(&spec);
    if (rc < 0 && !mimo_errmsg()[0])
        _exit(FUZZ_MUTE); /* an error must say what */
    _exit(rc == 0 ? FUZZ_ACCEPTED : FUZZ_REJECTED);
}

static void run_case(const char *what, int compare)
{
    fuzz_run(&tally, child, &compare, what);
}

/* ---- mutations -------------------------------------------------------------- */

typedef void (*mutator)(hid_t f, const void *arg);

static void attr_replace(hid_t loc, const char *name, hid_t type, int rank,
                         const hsize_t *dims, const void *v)
{
    if (H5Aexists(loc, name) > 0)
        H5Adelete(loc, name);
    hid_t s = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, type, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, type, v);
    H5Aclose(a);
    H5Sclose(s);
}

/* Opens work, applies fn at the object (root or /optimizer), reseals if
 * asked, closes. */
static void mutate(const char *obj, void (*fn)(hid_t, const void *), const void *arg,
                   int reseal)
{
    fuzz_copy_file(base, work);
    hid_t f = H5Fopen(work, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t loc = obj ? H5Oopen(f, obj, H5P_DEFAULT) : f;
    fn(loc, arg);
    if (obj)
        H5Oclose(loc);
    if (reseal)
        mimo_checkpoint_seal(f, work);
    H5Fclose(f);
}

typedef struct {
    const char *name;
    int kind; /* 0 int64, 1 double, 2 string, 3 int array, 4 delete */
    int64_t i;
    double d;
} attr_mut;

static void do_attr(hid_t loc, const void *arg)
{
    const attr_mut *a = arg;
    hsize_t three = 3;
    int64_t arr[3] = {1, 2, 3};
    const char *str = "x";
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, H5T_VARIABLE);
    switch (a->kind) {
    case 0: attr_replace(loc, a->name, H5T_NATIVE_INT64, 0, NULL, &a->i); break;
    case 1: attr_replace(loc, a->name, H5T_NATIVE_DOUBLE, 0, NULL, &a->d); break;
    case 2: attr_replace(loc, a->name, st, 0, NULL, &str); break;
    case 3: attr_replace(loc, a->name, H5T_NATIVE_INT64, 1, &three, arr); break;
    default: H5Adelete(loc, a->name);
    }
    H5Tclose(st);
}

typedef struct {
    const char *name;
    int kind; /* 0 reshape, 1 rank 3, 2 empty, 3 int32, 4 float64 NaN, 5 Inf, 6 string, 7 delete */
} ds_mut;

static void do_dataset(hid_t f, const void *arg)
{
    const ds_mut *m = arg;
    hid_t d = H5Dopen2(f, m->name, H5P_DEFAULT);
    hid_t s = H5Dget_space(d);
    hsize_t dims[8] = {0};
    int r = H5Sget_simple_extent_dims(s, dims, NULL);
    hssize_t n = H5Sget_simple_extent_npoints(s);
    H5Sclose(s);
    H5Dclose(d);
    H5Ldelete(f, m->name, H5P_DEFAULT);
    if (m->kind == 7)
        return;
    double *v = calloc((size_t)n + 8, sizeof *v);
    hsize_t nd[3] = {dims[0], r > 1 ? dims[1] : 1, 1};
    int nr = r;
    if (m->kind == 0 && r == 2)
        nd[0] = dims[1], nd[1] = dims[0];
    else if (m->kind == 0)
        nd[0] = dims[0] + 1;
    if (m->kind == 1)
        nr = 3;
    if (m->kind == 2)
        nd[0] = 0;
    for (hssize_t i = 0; i < n; i++)
        v[i] = m->kind == 4 ? NAN : m->kind == 5 ? INFINITY : 0.25;
    hid_t type = m->kind == 3 ? H5T_NATIVE_INT32 : H5T_NATIVE_DOUBLE;
    if (m->kind == 6) {
        hid_t st = H5Tcopy(H5T_C_S1);
        const char *str = "x";
        H5Tset_size(st, H5T_VARIABLE);
        s = H5Screate(H5S_SCALAR);
        d = H5Dcreate2(f, m->name, st, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Dwrite(d, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, &str);
        H5Tclose(st);
    } else {
        s = H5Screate_simple(nr, nd, NULL);
        d = H5Dcreate2(f, m->name, type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (m->kind == 3) {
            int32_t *iv = calloc((size_t)n + 8, sizeof *iv);
            H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, iv);
            free(iv);
        } else
            H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    }
    H5Dclose(d);
    H5Sclose(s);
    free(v);
}

static void do_config(hid_t f, const void *arg)
{
    const char *text = arg;
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, H5T_VARIABLE);
    H5Ldelete(f, "config", H5P_DEFAULT);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t d = H5Dcreate2(f, "config", st, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, &text);
    H5Dclose(d);
    H5Sclose(s);
    H5Tclose(st);
}

/* ---- the test ----------------------------------------------------------------- */

static int setup(void **s)
{
    (void)s;
    struct stat sb; /* tmpfs when there is one: ~1000 runs' fsyncs cost nothing */
    snprintf(dir, sizeof dir, "%s/mimo-test-fuzz-XXXXXX",
             stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) ? "/dev/shm" : "/tmp");
    if (!mkdtemp(dir))
        return -1;
    snprintf(data, sizeof data, "%s/data.h5", dir);
    snprintf(work, sizeof work, "%s/work.h5", dir);
    mimo_real x[40 * 3], y[40 * 2];
    for (int i = 0; i < 40 * 3; i++)
        x[i] = (mimo_real)sin(i * 0.7);
    for (int i = 0; i < 40 * 2; i++)
        y[i] = (mimo_real)cos(i * 0.3);
    mimo_dsfile *df;
    if (mimo_dsfile_create(data, &df) || mimo_dsfile_write_real(df, "x", x, 40, 3) ||
        mimo_dsfile_write_real(df, "o", y, 40, 2) || mimo_dsfile_commit(&df))
        return -1;
    return 0;
}

static int teardown(void **s)
{
    (void)s;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_fuzz(void **s)
{
    (void)s;
    char run[400], text[512];
    mimo_spec spec;
    mimo_model *m = NULL;
    snprintf(run, sizeof run, "%s/base", dir);
    assert_int_equal(mimo_config_parse(yaml, strlen(yaml), "fuzz.yaml", NULL, 0, &spec), 0);
    mimo_train_opts o = {0};
    o.out_dir = run, o.train_path = data, o.comm = MPI_COMM_NULL;
    assert_int_equal(mimo_train(&spec, &o), 0);
    snprintf(base, sizeof base, "%s/checkpoints/ckpt-000000000006.h5", run);
    /* the original tensors, for the flipped files */
    assert_int_equal(mimo_model_create(&spec, &m), 0);
    mimo_ckpt_state st = {0};
    assert_int_equal(mimo_checkpoint_load(base, m, &st, NULL, NULL), 0);
    assert_int_equal(st.step, 6);
    n_params = mimo_model_param_count(m);
    base_params = malloc(n_params * sizeof *base_params);
    base_m = malloc(n_params * sizeof *base_m);
    base_v = malloc(n_params * sizeof *base_v);
    memcpy(base_params, mimo_model_params(m), n_params * sizeof *base_params);
    memcpy(base_m, mimo_optim_slot(mimo_model_optim(m), 0), n_params * sizeof *base_m);
    memcpy(base_v, mimo_optim_slot(mimo_model_optim(m), 1), n_params * sizeof *base_v);
    mimo_ckpt_state_free(&st);
    mimo_model_free(&m);
    mimo_spec_free(&spec);
    mimo_h5_quiet();

    /* the unchanged file resumes */
    fuzz_copy_file(base, work);
    run_case("unchanged", 1);
    assert_int_equal(tally.accepted, 1);

    static const char *const ints[] = {"epoch", "step", "global_step", "samples_seen",
                                       "world_size", "rng_seed", "format_version"};
    static const int64_t ivals[] = {INT64_MIN, INT64_MIN + 1, -2, -1, 0, 1, 9,
                                    (int64_t)1 << 31, (int64_t)1 << 53, INT64_MAX};
    static const char *const reals[] = {
        "lr", "lr_scale", "batch_size", "train_rows", "shuffle", "plateau_best",
        "plateau_wait", "plateau_cooldown", "plateau_initialized", "early_best",
        "early_wait", "early_best_epoch", "early_initialized", "checkpoint_best",
        "checkpoint_best_set", "partial_count", "partial_0_loss", "partial_0_acc"};
    static const double dvals[] = {NAN, INFINITY, -INFINITY, -1, 0, 0.5, 1e300,
                                   -1e300, 9.3e18};
    static const char *const tensors[] = {"params/h/kernel", "params/h/bias",
                                          "params/o/kernel", "optimizer/m/h/kernel",
                                          "optimizer/v/o/bias"};
    for (int reseal = 0; reseal < 2; reseal++) {
        for (size_t a = 0; a < sizeof ints / sizeof *ints; a++)
            for (size_t k = 0; k < sizeof ivals / sizeof *ivals; k++) {
                attr_mut mu = {ints[a], 0, ivals[k], 0};
                mutate(NULL, do_attr, &mu, reseal);
                snprintf(text, sizeof text, "%s = %lld%s", ints[a],
                         (long long)ivals[k], reseal ? " (resealed)" : "");
                run_case(text, 0);
            }
        for (size_t k = 0; k < sizeof ivals / sizeof *ivals; k++) {
            attr_mut mu = {"steps", 0, ivals[k], 0};
            mutate("optimizer", do_attr, &mu, reseal);
            snprintf(text, sizeof text, "optimizer steps = %lld%s", (long long)ivals[k],
                     reseal ? " (resealed)" : "");
            run_case(text, 0);
        }
        for (size_t a = 0; a < sizeof reals / sizeof *reals; a++)
            for (size_t k = 0; k < sizeof dvals / sizeof *dvals; k++) {
                attr_mut mu = {reals[a], 1, 0, dvals[k]};
                mutate(NULL, do_attr, &mu, reseal);
                snprintf(text, sizeof text, "%s = %g%s", reals[a], dvals[k],
                         reseal ? " (resealed)" : "");
                run_case(text, 0);
            }
        /* other datatypes, arrays, deleted */
        for (size_t a = 0; a < sizeof ints / sizeof *ints + sizeof reals / sizeof *reals; a++)
            for (int kind = 1; kind <= 4; kind++) {
                const char *nm = a < sizeof ints / sizeof *ints
                                     ? ints[a] : reals[a - sizeof ints / sizeof *ints];
                attr_mut mu = {nm, kind == 1 ? 2 : kind, 0, 1.5};
                if (kind == 1 && a >= sizeof ints / sizeof *ints)
                    continue;
                mutate(NULL, do_attr, &mu, reseal);
                snprintf(text, sizeof text, "%s as kind %d%s", nm, kind,
                         reseal ? " (resealed)" : "");
                run_case(text, 0);
            }
        for (size_t t = 0; t < sizeof tensors / sizeof *tensors; t++)
            for (int kind = 0; kind <= 7; kind++) {
                ds_mut mu = {tensors[t], kind};
                mutate(NULL, do_dataset, &mu, reseal);
                snprintf(text, sizeof text, "%s mutation %d%s", tensors[t], kind,
                         reseal ? " (resealed)" : "");
                run_case(text, 0);
            }
        static const char *const configs[] = {"", "junk: [", "inputs: 5",
                                              "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
                                              "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]"};
        for (size_t k = 0; k < sizeof configs / sizeof *configs; k++) {
            mutate(NULL, do_config, configs[k], reseal);
            snprintf(text, sizeof text, "config '%s'%s", configs[k],
                     reseal ? " (resealed)" : "");
            run_case(text, 0);
        }
    }
    /* truncations, and single flipped bits anywhere in the file */
    struct stat sb;
    assert_int_equal(stat(base, &sb), 0);
    FILE *f = fopen(base, "rb");
    unsigned char *img = malloc((size_t)sb.st_size);
    assert_int_equal(fread(img, 1, (size_t)sb.st_size, f), (size_t)sb.st_size);
    fclose(f);
    for (int k = 1; k <= 24; k++) {
        size_t len = (size_t)sb.st_size * (size_t)k / 25;
        f = fopen(work, "wb");
        fwrite(img, 1, len, f);
        fclose(f);
        snprintf(text, sizeof text, "truncated to %zu of %lld bytes", len,
                 (long long)sb.st_size);
        run_case(text, 1);
    }
    uint64_t r = 0x9e3779b97f4a7c15ULL;
    for (int k = 0; k < 200; k++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        size_t at = (size_t)(r % (uint64_t)sb.st_size);
        int bit = (int)((r >> 40) % 8);
        img[at] ^= (unsigned char)(1u << bit);
        f = fopen(work, "wb");
        fwrite(img, 1, (size_t)sb.st_size, f);
        fclose(f);
        img[at] ^= (unsigned char)(1u << bit);
        snprintf(text, sizeof text, "bit %d of byte %zu flipped", bit, at);
        run_case(text, 1);
    }
    free(img);
    printf("checkpoint fuzz: tried %d, clean %d (%d accepted, %d a clear error), "
           "crash %d, hang %d, loss %d, error without a message %d\n", tally.tried,
           tally.accepted + tally.rejected, tally.accepted, tally.rejected, tally.crash,
           tally.hang, tally.wrong, tally.mute);
    free(base_params);
    free(base_m);
    free(base_v);
    assert_int_equal(tally.crash, 0);
    assert_int_equal(tally.hang, 0);
    assert_int_equal(tally.wrong, 0);
    assert_int_equal(tally.mute, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_fuzz)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
