/* bf16.c — bf16 products by oneDNN's matmul primitive, the conversion
 * into bf16, and the run-time test for native bf16 (see bf16.h).
 * Per layer one CPU engine and stream (dnnl_ctx.c) and up to MM_PLANS
 * primitives, one per shape; each runs with a user scratchpad of its own
 * (oneDNN allocates no scratch at run time), as conv_dnnl.c's. */
#define _POSIX_C_SOURCE 200112L /* posix_memalign, getenv */
#include "core/bf16.h"

#include <stdlib.h>
#include <string.h>

#include "core/graph_impl.h" /* MIMO_PAR_MIN */
#include "core/dnnl_ctx.h" /* MIMO_CONV_DNNL; the engine, stream and runs */
#include "core/par.h"
#include "mimo/spec.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

static const char *const precision_names[MIMO_PRECISION_COUNT] = {"float32", "bf16"};

const char *mimo_precision_name(int p)
{
    return p >= 0 && p < MIMO_PRECISION_COUNT ? precision_names[p] : "?";
}

int mimo_precision_parse(const char *s)
{
    for (int i = 0; i < MIMO_PRECISION_COUNT; i++)
        if (strcmp(s, precision_names[i]) == 0)
            return i;
    return -1;
}

/* ---- conversion ---------------------------------------------------------- */

/* One value: to nearest, ties to even; NaN stays NaN (quiet); a
 * subnormal becomes a zero of its sign — as the CPUs' own conversion
 * (VCVTNEPS2BF16 treats subnormal inputs as zeros), so both give the
 * same bits. */
static inline mimo_bf16 bf16_of(float f)
{
    union {
        float f;
        uint32_t u;
    } c = {f};
    if ((c.u & 0x7fffffffu) > 0x7f800000u) /* NaN */
        return (mimo_bf16)((c.u >> 16) | 0x40u);
    if ((c.u & 0x7f800000u) == 0) /* zero or subnormal */
        return (mimo_bf16)((c.u >> 16) & 0x8000u);
    c.u += 0x7fffu + ((c.u >> 16) & 1u);
    return (mimo_bf16)(c.u >> 16);
}

#ifndef MIMO_REAL_DOUBLE /* the double build converts value by value */
static void from_c(mimo_bf16 *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = bf16_of(src[i]);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10 && \
    !defined(MIMO_REAL_DOUBLE)
#include <immintrin.h>
#define HAVE_CVTNE 1
/* 16 values an instruction where the CPU converts natively (the bf16
 * path's CPUs: AVX512_BF16); the tail as from_c, the same bits */
__attribute__((target("avx512f,avx512bf16"))) static void from_cvtne(mimo_bf16 *dst,
                                                                     const float *src,
                                                                     size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256bh b = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + i));
        memcpy(dst + i, &b, sizeof b);
    }
    from_c(dst + i, src + i, n - i);
}
#endif

static int cpu_has_bf16(void);

/* the conversion of this CPU, chosen once */
static void (*pick_from(void))(mimo_bf16 *, const float *, size_t)
{
#ifdef HAVE_CVTNE
    static int has = -1;
    if (has < 0) {
        __builtin_cpu_init();
        has = cpu_has_bf16() == 2 && __builtin_cpu_supports("avx512f");
    }
    if (has)
        return from_cvtne;
#endif
    return from_c;
}
#endif

void mimo_bf16_from(mimo_bf16 *dst, const mimo_real *src, size_t n)
{
#ifdef MIMO_REAL_DOUBLE
    for (size_t i = 0; i < n; i++)
        dst[i] = bf16_of((float)src[i]);
#else
    void (*conv)(mimo_bf16 *, const float *, size_t) = pick_from();
    /* in blocks of 4096 values, so threads split it evenly */
    size_t blocks = (n + 4095) / 4096;
    MIMO_PAR_FOR(n >= MIMO_PAR_MIN, size_t k = 0, k < blocks, k++, {
        size_t lo = k * 4096, hi = lo + 4096 < n ? lo + 4096 : n;
        conv(dst + lo, src + lo, hi - lo);
    });
#endif
}

void mimo_bf16_from_rows(mimo_bf16 *dst, const mimo_real *src, size_t rows, size_t cols,
                         size_t ld)
{
    if (ld == cols) {
        mimo_bf16_from(dst, src, rows * cols);
        return;
    }
    for (size_t r = 0; r < rows; r++)
        mimo_bf16_from(dst + r * cols, src + r * ld, cols);
}

/* ---- detection ----------------------------------------------------------- */

/* The CPU's own flags (what oneDNN's cap may hide): 2 with AVX512_BF16
 * (CPUID.(7,1):EAX[5]), 1 with AMX-BF16 alone (CPUID.(7,0):EDX[22]), 0. */
static int cpu_has_bf16(void)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    int amx = (d >> 22) & 1;
    __cpuid_count(7, 1, a, b, c, d);
    return (a >> 5) & 1 ? 2 : amx;
#else
    return 0;
#endif
}

#ifdef MIMO_CONV_DNNL
#include <dnnl.h>

static int detect(const char **what)
{
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    if ((isa & dnnl_cpu_isa_avx512_core_amx) == dnnl_cpu_isa_avx512_core_amx) {
        *what = "amx_bf16";
        return 1;
    }
    if ((isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16) {
        *what = "avx512_bf16";
        return 1;
    }
    *what = cpu_has_bf16() ? "oneDNN's ISA is capped below avx512_core_bf16 "
                             "(ONEDNN_MAX_CPU_ISA)"
                           : "this CPU has neither AVX512_BF16 nor AMX-BF16";
    return 0;
}
#else
static int detect(const char **what)
{
    (void)cpu_has_bf16;
#ifdef MIMO_REAL_DOUBLE
    *what = "the double build has no bf16";
#else
    *what = "this mimo was built without oneDNN (MIMO_DNNL=OFF)";
#endif
    return 0;
}
#endif

/* MIMO_NO_BF16 (not empty, not 0): the tests' way to the fallback, in
 * any build on any machine */
static int forced_off(void)
{
    const char *env = getenv("MIMO_NO_BF16");
    return env && *env && strcmp(env, "0") != 0;
}

int mimo_bf16_native(const char **what)
{
    static int known, native;
    static const char *why;
    if (!known) {
        native = forced_off() ? (why = "MIMO_NO_BF16 is set", 0) : detect(&why);
        known = 1;
    }
    if (what)
        *what = why;
    return native;
}

/* ---- products ------------------------------------------------------------ */

#ifdef MIMO_CONV_DNNL

enum { MM_PLANS = 12 }; /* three products of a dense layer, four batch sizes */

typedef struct {
    int ta, tb, M, N, K, lda, ldb, ldc, acc; /* the shape: the key */
    dnnl_primitive_t prim;
    dnnl_memory_t a, b, c, pad;
    void *pad_buf;
} mm_plan;

struct mimo_bf16_mm {
    dnnl_engine_t eng;
    dnnl_stream_t st;
    mm_plan plans[MM_PLANS];
    int n_plans, next; /* slots used; the one replaced when all are */
    const char *impl;  /* of the last plan made */
};

#define OK(call) ((call) == dnnl_success)

static void plan_free(mm_plan *p)
{
    dnnl_primitive_destroy(p->prim);
    dnnl_memory_destroy(p->a);
    dnnl_memory_destroy(p->b);
    dnnl_memory_destroy(p->c);
    dnnl_memory_destroy(p->pad);
    free(p->pad_buf);
    memset(p, 0, sizeof *p);
}

/* rows x cols of type t, row-major with leading dimension ld, or its
 * transpose (stored cols x rows) */
static void md_matrix(dnnl_memory_desc_t *md, int rows, int cols, int ld, int trans,
                      dnnl_data_type_t t)
{
    dnnl_dims_t d = {rows, cols}, s = {trans ? 1 : ld, trans ? ld : 1};
    dnnl_memory_desc_init_by_strides(md, 2, d, t, s);
}

static const char *impl_of(const_dnnl_primitive_desc_t pd)
{
    const char *name = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name);
    return name ? name : "";
}

/* the attributes: a user scratchpad; acc: C += (a sum post-op) */
static dnnl_primitive_attr_t make_attr(int acc)
{
    dnnl_primitive_attr_t a = NULL;
    dnnl_post_ops_t po = NULL;
    int ok = OK(dnnl_primitive_attr_create(&a)) &&
             OK(dnnl_primitive_attr_set_scratchpad_mode(a, dnnl_scratchpad_mode_user));
    if (ok && acc)
        ok = OK(dnnl_post_ops_create(&po)) && OK(dnnl_post_ops_append_sum(po, 1.0f)) &&
             OK(dnnl_primitive_attr_set_post_ops(a, po));
    dnnl_post_ops_destroy(po);
    if (!ok) {
        dnnl_primitive_attr_destroy(a);
        return NULL;
    }
    return a;
}

/* p's primitive and memories for its shape (already in p) */
static int plan_make(mimo_bf16_mm *c, mm_plan *p)
{
    dnnl_memory_desc_t a, b, d;
    md_matrix(&a, p->M, p->K, p->lda, p->ta, dnnl_bf16);
    md_matrix(&b, p->K, p->N, p->ldb, p->tb, dnnl_bf16);
    md_matrix(&d, p->M, p->N, p->ldc, 0, dnnl_f32);
    dnnl_matmul_desc_t md;
    dnnl_primitive_attr_t attr = make_attr(p->acc);
    dnnl_primitive_desc_t pd = NULL;
    int rc = attr && OK(dnnl_matmul_desc_init(&md, &a, &b, NULL, &d)) &&
                     OK(dnnl_primitive_desc_create(&pd, &md, attr, c->eng, NULL))
                 ? 0 : -1;
    dnnl_primitive_attr_destroy(attr);
    /* oneDNN's reference kernel is an emulation far slower than sgemm */
    if (rc || strncmp(impl_of(pd), "ref", 3) == 0) {
        dnnl_primitive_desc_destroy(pd);
        return -1;
    }
    c->impl = impl_of(pd); /* a static string of oneDNN's */
    const dnnl_memory_desc_t *sp = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t need = sp ? dnnl_memory_desc_get_size(sp) : 0;
    if (need && posix_memalign(&p->pad_buf, 64, need))
        rc = -1;
    if (!rc && need) {
        dnnl_memory_desc_t flat;
        dnnl_dims_t n = {(dnnl_dim_t)need};
        dnnl_memory_desc_init_by_tag(&flat, 1, n, dnnl_u8, dnnl_a);
        rc = OK(dnnl_memory_create(&p->pad, &flat, c->eng, p->pad_buf)) ? 0 : -1;
    }
    if (!rc)
        rc = OK(dnnl_memory_create(&p->a, &a, c->eng, DNNL_MEMORY_NONE)) &&
                     OK(dnnl_memory_create(&p->b, &b, c->eng, DNNL_MEMORY_NONE)) &&
                     OK(dnnl_memory_create(&p->c, &d, c->eng, DNNL_MEMORY_NONE)) &&
                     OK(dnnl_primitive_create(&p->prim, pd))
                 ? 0 : -1;
    dnnl_primitive_desc_destroy(pd);
    return rc;
}

/* the plan of this shape, made now if new (replacing the oldest when all
 * slots are taken); NULL if oneDNN has none */
static mm_plan *plan_for(mimo_bf16_mm *c, const mm_plan *key)
{
    for (int i = 0; i < c->n_plans; i++) {
        const mm_plan *p = &c->plans[i];
        if (p->ta == key->ta && p->tb == key->tb && p->M == key->M && p->N == key->N &&
            p->K == key->K && p->lda == key->lda && p->ldb == key->ldb &&
            p->ldc == key->ldc && p->acc == key->acc)
            return &c->plans[i];
    }
    int i = c->n_plans < MM_PLANS ? c->n_plans++ : c->next++ % MM_PLANS;
    mm_plan *p = &c->plans[i];
    plan_free(p);
    *p = *key;
    if (plan_make(c, p)) {
        plan_free(p); /* M 0: never found */
        return NULL;
    }
    return p;
}

mimo_bf16_mm *mimo_bf16_mm_new(void)
{
    if (!mimo_bf16_native(NULL))
        return NULL;
    mimo_bf16_mm *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (mimo_dnnl_open(&c->eng, &c->st)) {
        mimo_bf16_mm_free(c);
        return NULL;
    }
    return c;
}

void mimo_bf16_mm_free(mimo_bf16_mm *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n_plans; i++)
        plan_free(&c->plans[i]);
    mimo_dnnl_close(c->eng, c->st);
    free(c);
}

int mimo_bf16_gemm(mimo_bf16_mm *c, int ta, int tb, int M, int N, int K,
                   const mimo_bf16 *A, int lda, const mimo_bf16 *B, int ldb, int acc,
                   mimo_real *C, int ldc)
{
    if (M <= 0 || N <= 0) /* nothing to write (oneDNN 2.6 faults on it) */
        return 0;
    if (K <= 0) { /* an empty sum: C stays, or becomes 0 */
        for (int i = 0; !acc && i < M; i++)
            memset(C + (size_t)i * (size_t)ldc, 0, sizeof *C * (size_t)N);
        return 0;
    }
    mm_plan key = {.ta = !!ta, .tb = !!tb, .M = M, .N = N, .K = K, .lda = lda,
                   .ldb = ldb, .ldc = ldc, .acc = !!acc};
    mm_plan *p = plan_for(c, &key);
    if (!p || !OK(dnnl_memory_set_data_handle(p->a, (void *)A)) ||
        !OK(dnnl_memory_set_data_handle(p->b, (void *)B)) ||
        !OK(dnnl_memory_set_data_handle(p->c, C)))
        return -1;
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, p->a},
                               {DNNL_ARG_WEIGHTS, p->b},
                               {DNNL_ARG_DST, p->c},
                               {DNNL_ARG_SCRATCHPAD, p->pad}};
    return mimo_dnnl_run(c->st, p->prim, p->pad ? 4 : 3, args);
}

const char *mimo_bf16_mm_impl(const mimo_bf16_mm *c)
{
    return c && c->impl ? c->impl : "";
}

#else /* no oneDNN: no bf16 products (mimo_bf16_native says 0) */

struct mimo_bf16_mm {
    int unused;
};

mimo_bf16_mm *mimo_bf16_mm_new(void) { return NULL; }
void mimo_bf16_mm_free(mimo_bf16_mm *c) { (void)c; }
int mimo_bf16_gemm(mimo_bf16_mm *c, int ta, int tb, int M, int N, int K,
                   const mimo_bf16 *A, int lda, const mimo_bf16 *B, int ldb, int acc,
                   mimo_real *C, int ldc)
{
    (void)c, (void)ta, (void)tb, (void)M, (void)N, (void)K, (void)A, (void)lda;
    (void)B, (void)ldb, (void)acc, (void)C, (void)ldc;
    return -1;
}
const char *mimo_bf16_mm_impl(const mimo_bf16_mm *c)
{
    (void)c;
    return "";
}
#endif
