/* test_alloc.c — a training step allocates no memory once the run is set
 * up: the test defines malloc, calloc, realloc, free and the aligned
 * allocators (forwarding to glibc's __libc_* functions), so every
 * allocation of the process — mimo's, libgomp's, libc's — goes through
 * them and is counted while steps run. OpenBLAS's own are counted apart
 * (its small-matrix sgemm kernels of 0.3.21 malloc a buffer per call:
 * not mimo's to change; the test says how many), and so are oneDNN's
 * (conv2d and conv1d in a MIMO_DNNL build: 2.6's dnnl_primitive_execute
 * allocates its argument map and context on every call, primitives and
 * scratchpads made once notwithstanding; told apart by conv_dnnl.h's
 * hook around its calls; the same number in every epoch — per call, not
 * a growth). The network has a layer
 * of each common kind (embedding, conv2d, pooling, batch_norm, dropout,
 * dense, concat, gru, lstm, multi_head_attention with dropout) and heads
 * with sample weights, missing labels, class weights and metrics
 * (accuracy and AUC, whose scores grow over an epoch: counted
 * from the second epoch on, when their buffers have their size). Batches
 * are gathered from arrays in memory (the gather of files held whole);
 * a streamed file reads through HDF5, which allocates, and is not covered.
 * The same with train.precision: bf16 where the CPU has it (the bf16
 * copies are the graph's buffers, the primitives made once per shape).
 * Skipped in sanitizer builds, whose runtime owns malloc. */
#define _GNU_SOURCE /* dladdr */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cblas.h>
#include <dlfcn.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/bf16.h"
#include "core/layers/conv_dnnl.h"
#include "core/model.h"
#include "mimo/mimo.h"
#include "nets.h"

#if defined(__SANITIZE_ADDRESS__)
#define MIMO_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MIMO_TEST_SANITIZED 1
#endif
#endif

#ifndef MIMO_TEST_SANITIZED
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t k, size_t n);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);
extern void __libc_free(void *p);

static atomic_int counting;
static atomic_long allocations, openblas_allocations, dnnl_allocations;
static atomic_int in_dnnl; /* inside a oneDNN call (conv_dnnl.h's hook) */
static void *openblas_base; /* where libopenblas is loaded */

#ifdef MIMO_CONV_DNNL
static void dnnl_hook(int entering) { atomic_store(&in_dnnl, entering); }
#endif

/* apart, so a debugger can stop at a counted allocation: break counted */
__attribute__((noinline)) void counted(void *caller);
__attribute__((noinline)) void counted(void *caller)
{
    Dl_info in;
    if (atomic_load(&in_dnnl))
        atomic_fetch_add(&dnnl_allocations, 1);
    else if (openblas_base && dladdr(caller, &in) && in.dli_fbase == openblas_base)
        atomic_fetch_add(&openblas_allocations, 1);
    else
        atomic_fetch_add(&allocations, 1);
}

#define COUNT()                                                               \
    do {                                                                      \
        if (atomic_load(&counting))                                           \
            counted(__builtin_return_address(0));                             \
    } while (0)

void *malloc(size_t n) { COUNT(); return __libc_malloc(n); }
void *calloc(size_t k, size_t n) { COUNT(); return __libc_calloc(k, n); }
void *realloc(void *p, size_t n) { COUNT(); return __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }
void *aligned_alloc(size_t align, size_t n) { COUNT(); return __libc_memalign(align, n); }
void *memalign(size_t align, size_t n) { COUNT(); return __libc_memalign(align, n); }
int posix_memalign(void **p, size_t align, size_t n)
{
    COUNT();
    *p = __libc_memalign(align, n);
    return *p ? 0 : 12; /* ENOMEM */
}
#endif

#ifndef MIMO_TEST_SANITIZED
static const char *yaml =
    MIMO_TEST_EVERY_KIND_NET
    "outputs:\n"
    "  y: {loss: binary_crossentropy, missing: nan, sample_weight: w, "
    "metrics: [accuracy, auc]}\n"
    "  k: {loss: sparse_categorical_crossentropy, class_weight: {0: 1, 1: 2, 2: 0.5}, "
    "metrics: [accuracy]}\n"
    "train: {optimizer: adam, batch_size: 16, seed: 3}\n";

#define ROWS 100 /* 7 steps an epoch, the last of 4 rows */
#endif

static void steps_allocate_nothing(mimo_precision precision, int balancing)
{
#ifdef MIMO_TEST_SANITIZED
    (void)precision, (void)balancing;
    skip();
#else
    static mimo_real im[ROWS * 60], v[ROWS * 3], id[ROWS], y[ROWS], w[ROWS], k[ROWS];
    for (int i = 0; i < ROWS * 60; i++)
        im[i] = (mimo_real)sin(0.37 * i);
    for (int r = 0; r < ROWS; r++) {
        v[3 * r] = (mimo_real)(r % 7), v[3 * r + 1] = (mimo_real)cos(r), v[3 * r + 2] = 1;
        id[r] = (mimo_real)(r % 10);
        y[r] = r % 9 == 0 ? (mimo_real)NAN : (mimo_real)(r % 2);
        w[r] = (mimo_real)(0.5 + r % 3);
        k[r] = (mimo_real)(r % 3);
    }
    Dl_info in;
    if (dladdr((void *)cblas_sgemm, &in))
        openblas_base = in.dli_fbase;
#ifdef MIMO_CONV_DNNL
    mimo_conv_dnnl_hook = dnnl_hook;
#endif
    mimo_spec spec;
    mimo_model *m = NULL;
    if (mimo_config_parse(yaml, strlen(yaml), "alloc.yaml", NULL, 0, &spec))
        fail_msg("%s", mimo_errmsg());
    spec.train.precision = precision;
    spec.train.task_balancing = balancing;
    if (mimo_model_create(&spec, &m))
        fail_msg("%s", mimo_errmsg());
    /* bf16's copies are the graph's: taken once, like its other buffers */
    assert_int_equal(mimo_graph_bf16(mimo_model_graph(m)),
                     precision == MIMO_PRECISION_BF16);
    mimo_array a[] = {{"im", im, ROWS, 60}, {"v", v, ROWS, 3}, {"id", id, ROWS, 1},
                      {"y", y, ROWS, 1},    {"w", w, ROWS, 1}, {"k", k, ROWS, 1}};
    mimo_source src;
    mimo_stats st = {0};
    assert_int_equal(mimo_arrays_source(m, &(mimo_dataset){a, 6}, 1, &src), 0);
    assert_int_equal(mimo_stats_init(&st, spec.n_outputs), 0);
    size_t B = 16;
    long per_epoch = mimo_model_steps_per_epoch(m, ROWS);
    long during[3] = {0}, blas[3] = {0}, dnnl[3] = {0};
    for (long e = 0; e < 3; e++) {
        const uint64_t *order = mimo_model_order(m, ROWS, e);
        assert_non_null(order);
        mimo_stats_reset(&st);
        atomic_store(&allocations, 0);
        atomic_store(&openblas_allocations, 0);
        atomic_store(&dnnl_allocations, 0);
        atomic_store(&counting, 1);
        for (long step = 0; step < per_epoch; step++) {
            size_t start = (size_t)step * B, gb = ROWS - start < B ? ROWS - start : B;
            if (mimo_train_step(m, &src, order + start, gb, e, step, &st))
                fail_msg("%s", mimo_errmsg());
        }
        atomic_store(&counting, 0);
        during[e] = atomic_load(&allocations);
        blas[e] = atomic_load(&openblas_allocations);
        dnnl[e] = atomic_load(&dnnl_allocations);
    }
    print_message("steps of epochs 1-3 allocated %ld, %ld, %ld times (and OpenBLAS "
                  "%ld, %ld, %ld times, oneDNN's execute %ld, %ld, %ld times)\n",
                  during[0], during[1], during[2], blas[0], blas[1], blas[2], dnnl[0],
                  dnnl[1], dnnl[2]);
    if (dnnl[1] != dnnl[2])
        fail_msg("oneDNN's allocations grew: %ld in epoch 2, %ld in epoch 3", dnnl[1],
                 dnnl[2]);
    if (during[1] || during[2])
        fail_msg("training steps allocated: %ld times in epoch 2, %ld in epoch 3 "
                 "(%ld in epoch 1)", during[1], during[2], during[0]);
    /* the counter counts: a step's metrics sums were made in epoch 1 */
    atomic_store(&allocations, 0);
    atomic_store(&counting, 1);
    void *p = malloc(16);
    atomic_store(&counting, 0);
    free(p);
    assert_int_equal(atomic_load(&allocations), 1);
    mimo_stats_free(&st);
    mimo_model_free(&m);
    mimo_spec_free(&spec);
#endif
}

static void test_steps_allocate_nothing(void **s)
{
    (void)s;
    steps_allocate_nothing(MIMO_PRECISION_FLOAT32, MIMO_BALANCING_NONE);
}

/* task_balancing: pcgrad (the heads' stacked backward, the projection) */
static void test_pcgrad_steps_allocate_nothing(void **s)
{
    (void)s;
    steps_allocate_nothing(MIMO_PRECISION_FLOAT32, MIMO_BALANCING_PCGRAD);
}

/* train.precision: bf16 (dense and conv products through oneDNN in bf16,
 * their copies in the graph's buffers; oneDNN's execute counted apart as
 * for conv2d) */
static void test_bf16_steps_allocate_nothing(void **s)
{
    (void)s;
    const char *why = NULL;
    if (!mimo_bf16_native(&why)) {
        print_message("SKIP: no native bf16 here (%s)\n", why);
        skip();
    }
    steps_allocate_nothing(MIMO_PRECISION_BF16, MIMO_BALANCING_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steps_allocate_nothing),
        cmocka_unit_test(test_bf16_steps_allocate_nothing),
        cmocka_unit_test(test_pcgrad_steps_allocate_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
