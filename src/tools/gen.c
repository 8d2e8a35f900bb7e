/* gen.c — the built-in datasets of the seed tutorials (`mimo gen`) and the
 * dataset-file writer (atomic: base/fsutil.h) that gen and import.c
 * share. All randomness comes from mimo_rng(seed): the same seed
 * gives the same data everywhere. CSV and IDX conversion live in import.c.
 *
 * Part tools (src/tools/, libmimo_tools, not in libmimo): gen, import,
 * plot, bench — what only the command line needs; uses the library.
 */
#include "tools/datagen.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/error.h"
#include "mimo/rng.h"

#define TWO_PI 6.283185307179586

/* *count = max(rows * cols, 1) when count items of `size` bytes fit in an
 * object (PTRDIFF_MAX bytes); else 0. */
static int array_count(size_t rows, size_t cols, size_t size, size_t *count)
{
    size_t limit = (size_t)PTRDIFF_MAX / size;
    if (cols && rows > limit / cols)
        return 0;
    *count = rows * cols > 0 ? rows * cols : 1;
    return 1;
}

/* ---- generator helpers ----------------------------------------------- */

/* n items of `size` bytes (at least one), or NULL (overflow or no memory). */
static void *alloc_array(size_t n, size_t size)
{
    size_t count = 0;
    return array_count(n, 1, size, &count) ? malloc(count * size) : NULL;
}

/* A zeroed (rows, cols) mimo_real array, or NULL (size overflow or no
 * memory). */
static mimo_real *alloc_real(size_t rows, size_t cols)
{
    size_t count = 0;
    return array_count(rows, cols, sizeof(mimo_real), &count)
               ? calloc(count, sizeof(mimo_real)) : NULL;
}

static int oom(const char *what)
{
    return mimo_error(MIMO_ENOMEM, "gen %s: out of memory (or N too large)", what);
}

/* One dataset to write: name, data (rows, cols). */
typedef struct {
    const char *name;
    mimo_real *data;
    size_t cols;
} gen_out;

/* Writes the k arrays (each (n, cols)), then frees them all. A NULL data
 * (a failed allocation) becomes MIMO_ENOMEM. */
static int write_all(mimo_dsfile *f, const char *gen, gen_out *o, int k,
                     size_t n)
{
    int rc = 0;
    for (int i = 0; i < k && !rc; i++)
        rc = o[i].data ? mimo_dsfile_write_real(f, o[i].name, o[i].data, n,
                                                o[i].cols)
                       : oom(gen);
    for (int i = 0; i < k; i++)
        free(o[i].data);
    return rc;
}

/* Frees the arrays after a failed helper allocation; write_all then
 * reports MIMO_ENOMEM. */
static void drop_all(gen_out *o, int k)
{
    for (int i = 0; i < k; i++) {
        free(o[i].data);
        o[i].data = NULL;
    }
}

static int all_allocated(const gen_out *o, int k)
{
    for (int i = 0; i < k; i++)
        if (!o[i].data)
            return 0;
    return 1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* x[0..n): linspace(0, 1, n), or sorted uniform [0, 1) when random. */
static double *make_x(size_t n, mimo_rng *r, int random)
{
    double *x = alloc_array(n, sizeof *x);
    if (!x)
        return NULL;
    for (size_t i = 0; i < n; i++)
        x[i] = random ? mimo_rng_uniform(r)
                      : (n > 1 ? (double)i / (double)(n - 1) : 0.0);
    if (random)
        qsort(x, n, sizeof *x, cmp_double);
    return x;
}

/* Index of the largest of v[0..k) (the first on ties). */
static size_t argmax(const double *v, size_t k)
{
    size_t best = 0;
    for (size_t j = 1; j < k; j++)
        if (v[j] > v[best])
            best = j;
    return best;
}

/* ---- seed-mimo (seed 000) -------------------------------------------- */

/* Row 0 is the tutorial's sample. Rows i >= 1: x1, x2 drawn as the
 * tutorial did (randint(1, 100) / 100); y1_j = x1_j > 0.5; y2 is one-hot
 * of argmax_k (x1_k + x2_{k mod 3}), a rule the tutorial's row obeys. */
static void seed_mimo_row(size_t i, mimo_rng *r, mimo_real *x1, mimo_real *x2,
                          mimo_real *y1, mimo_real *y2)
{
    static const double x1_0[5] = {0.52, 0.93, 0.15, 0.72, 0.61};
    static const double x2_0[3] = {0.21, 0.83, 0.87};
    static const double y1_0[5] = {1, 1, 0, 0, 1};
    double a[5], b[3], s[4];
    for (int j = 0; j < 5; j++)
        a[j] = i ? (double)(1 + mimo_rng_below(r, 99)) / 100.0 : x1_0[j];
    for (int j = 0; j < 3; j++)
        b[j] = i ? (double)(1 + mimo_rng_below(r, 99)) / 100.0 : x2_0[j];
    for (int k = 0; k < 4; k++)
        s[k] = a[k] + b[k % 3];
    size_t cls = argmax(s, 4);
    for (int j = 0; j < 5; j++) {
        x1[j] = (mimo_real)a[j];
        y1[j] = (mimo_real)(i ? a[j] > 0.5 : y1_0[j]);
    }
    for (int j = 0; j < 3; j++)
        x2[j] = (mimo_real)b[j];
    for (size_t k = 0; k < 4; k++)
        y2[k] = (mimo_real)(k == cls);
}

static int gen_seed_mimo(mimo_dsfile *f, size_t n, mimo_rng *r, const mimo_gen_opts *opts)
{
    (void)opts;
    gen_out o[4] = {{"x1", alloc_real(n, 5), 5}, {"x2", alloc_real(n, 3), 3},
                    {"y1", alloc_real(n, 5), 5}, {"y2", alloc_real(n, 4), 4}};
    if (all_allocated(o, 4))
        for (size_t i = 0; i < n; i++)
            seed_mimo_row(i, r, o[0].data + 5 * i, o[1].data + 3 * i,
                          o[2].data + 5 * i, o[3].data + 4 * i);
    return write_all(f, "seed-mimo", o, 4, n);
}

/* ---- xor (seed 002) -------------------------------------------------- */

/* x (n, 2), y (n, 1): the four XOR rows, repeated in order. */
static int gen_xor(mimo_dsfile *f, size_t n, mimo_rng *r, const mimo_gen_opts *opts)
{
    (void)r, (void)opts;
    static const mimo_real in[4][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};
    static const mimo_real out[4] = {0, 1, 1, 0};
    gen_out o[2] = {{"x", alloc_real(n, 2), 2}, {"y", alloc_real(n, 1), 1}};
    if (all_allocated(o, 2))
        for (size_t i = 0; i < n; i++) {
            o[0].data[2 * i] = in[i % 4][0];
            o[0].data[2 * i + 1] = in[i % 4][1];
            o[1].data[i] = out[i % 4];
        }
    return write_all(f, "xor", o, 2, n);
}

/* ---- sine-window (seed 003) ------------------------------------------ */

#define SW_WINDOW 5
#define SW_STEP 0.05  /* t_i = 0.05 i: 1000 windows span t in 0..~50 */
#define SW_NOISE 0.05

/* s_i = sin(t_i) + 6 + N(0, 0.05^2), i < len; then standardized with the
 * series' mean and (population) sd, which go to *mean and *sd. */
static double *sine_series(size_t len, mimo_rng *r, double *mean, double *sd)
{
    double *s = alloc_array(len, sizeof *s);
    if (!s)
        return NULL;
    double sum = 0, sq = 0;
    for (size_t i = 0; i < len; i++) {
        s[i] = sin(SW_STEP * (double)i) + 6.0 + SW_NOISE * mimo_rng_normal(r);
        sum += s[i];
    }
    *mean = sum / (double)len;
    for (size_t i = 0; i < len; i++)
        sq += (s[i] - *mean) * (s[i] - *mean);
    *sd = sqrt(sq / (double)len);
    for (size_t i = 0; i < len; i++)
        s[i] = *sd > 0 ? (s[i] - *mean) / *sd : 0.0;
    return s;
}

/* x (n, 5): window i is s[i..i+5); y (n, 1): s[i+5]. */
static int gen_sine_window(mimo_dsfile *f, size_t n, mimo_rng *r, const mimo_gen_opts *opts)
{
    (void)opts;
    double mean = 0, sd = 0;
    double *s = n <= SIZE_MAX - SW_WINDOW ? sine_series(n + SW_WINDOW, r, &mean, &sd)
                                          : NULL;
    gen_out o[2] = {{"x", alloc_real(n, SW_WINDOW), SW_WINDOW},
                    {"y", alloc_real(n, 1), 1}};
    if (s && all_allocated(o, 2))
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < SW_WINDOW; j++)
                o[0].data[SW_WINDOW * i + j] = (mimo_real)s[i + j];
            o[1].data[i] = (mimo_real)s[i + SW_WINDOW];
        }
    if (!s)
        drop_all(o, 2);
    free(s);
    char buf[64];
    snprintf(buf, sizeof buf, "%.17g", mean);
    int rc = write_all(f, "sine-window", o, 2, n);
    if (!rc)
        rc = mimo_dsfile_attr_str(f, "series_mean", buf);
    snprintf(buf, sizeof buf, "%.17g", sd);
    if (!rc)
        rc = mimo_dsfile_attr_str(f, "series_std", buf);
    return rc;
}

/* ---- sinexp and sin12 (seed 004) ------------------------------------- */

/* x1 = x, x2 = x^2, sin = sin 2 pi x, exp = exp x; each (n, 1). */
static int gen_sinexp(mimo_dsfile *f, size_t n, mimo_rng *r, const mimo_gen_opts *opts)
{
    double *x = make_x(n, r, opts->random_x);
    gen_out o[4] = {{"x1", alloc_real(n, 1), 1}, {"x2", alloc_real(n, 1), 1},
                    {"sin", alloc_real(n, 1), 1}, {"exp", alloc_real(n, 1), 1}};
    if (x && all_allocated(o, 4))
        for (size_t i = 0; i < n; i++) {
            o[0].data[i] = (mimo_real)x[i];
            o[1].data[i] = (mimo_real)(x[i] * x[i]);
            o[2].data[i] = (mimo_real)sin(TWO_PI * x[i]);
            o[3].data[i] = (mimo_real)exp(x[i]);
        }
    if (!x)
        drop_all(o, 4);
    free(x);
    return write_all(f, "sinexp", o, 4, n);
}

/* x (n, 1), y = sin 12 pi x (n, 1). */
static int gen_sin12(mimo_dsfile *f, size_t n, mimo_rng *r, const mimo_gen_opts *opts)
{
    double *x = make_x(n, r, opts->random_x);
    gen_out o[2] = {{"x", alloc_real(n, 1), 1}, {"y", alloc_real(n, 1), 1}};
    if (x && all_allocated(o, 2))
        for (size_t i = 0; i < n; i++) {
            o[0].data[i] = (mimo_real)x[i];
            o[1].data[i] = (mimo_real)sin(6.0 * TWO_PI * x[i]);
        }
    if (!x)
        drop_all(o, 2);
    free(x);
    return write_all(f, "sin12", o, 2, n);
}

/* ---- multitask (benchmarks) ------------------------------------------ */

#define MT_A 32
#define MT_B 16
#define MT_IN (MT_A + MT_B)
#define MT_REG 4
#define MT_CLS 10
#define MT_NOISE 0.05

/* The fixed maps, drawn first so they depend on the seed only (not on n):
 * wreg (48, 4) ~ N(0, 1/48) keeps tanh's argument near unit scale; wcls
 * (48, 10) ~ N(0, 1). */
typedef struct {
    double wreg[MT_IN][MT_REG];
    double wcls[MT_IN][MT_CLS];
} mt_maps;

static void mt_draw_maps(mt_maps *m, mimo_rng *r)
{
    for (int i = 0; i < MT_IN; i++)
        for (int k = 0; k < MT_REG; k++)
            m->wreg[i][k] = mimo_rng_normal(r) / sqrt((double)MT_IN);
    for (int i = 0; i < MT_IN; i++)
        for (int k = 0; k < MT_CLS; k++)
            m->wcls[i][k] = mimo_rng_normal(r);
}

/* One row: z = [a, b] ~ N(0, I); reg = tanh(z wreg) + noise; cls =
 * argmax(z wcls). */
static void mt_row(const mt_maps *m, mimo_rng *r, mimo_real *a, mimo_real *b,
                   mimo_real *reg, int32_t *cls)
{
    double z[MT_IN], sr[MT_REG] = {0}, sc[MT_CLS] = {0};
    for (int i = 0; i < MT_IN; i++) {
        z[i] = mimo_rng_normal(r);
        if (i < MT_A)
            a[i] = (mimo_real)z[i];
        else
            b[i - MT_A] = (mimo_real)z[i];
    }
    for (int i = 0; i < MT_IN; i++) {
        for (int k = 0; k < MT_REG; k++)
            sr[k] += z[i] * m->wreg[i][k];
        for (int k = 0; k < MT_CLS; k++)
            sc[k] += z[i] * m->wcls[i][k];
    }
    for (int k = 0; k < MT_REG; k++)
        reg[k] = (mimo_real)(tanh(sr[k]) + MT_NOISE * mimo_rng_normal(r));
    *cls = (int32_t)argmax(sc, MT_CLS);
}

static int gen_multitask(mimo_dsfile *f, size_t n, mimo_rng *r, const mimo_gen_opts *opts)
{
    (void)opts;
    mt_maps *m = malloc(sizeof *m);
    int32_t *cls = alloc_array(n, sizeof *cls);
    gen_out o[3] = {{"a", alloc_real(n, MT_A), MT_A}, {"b", alloc_real(n, MT_B), MT_B},
                    {"reg", alloc_real(n, MT_REG), MT_REG}};
    int ok = m && cls && all_allocated(o, 3);
    if (ok) {
        mt_draw_maps(m, r);
        for (size_t i = 0; i < n; i++)
            mt_row(m, r, o[0].data + MT_A * i, o[1].data + MT_B * i,
                   o[2].data + MT_REG * i, cls + i);
    }
    free(m);
    if (!ok)
        drop_all(o, 3);
    int rc = write_all(f, "multitask", o, 3, n);
    if (!rc)
        rc = mimo_dsfile_write_int(f, "cls", cls, n);
    free(cls);
    return rc;
}

/* ---- masked: seed 002's masked softmax --------------------------------- */

#define MK_X 8
#define MK_K 10

/* x (N, 8) ~ N(0, I); mask (N, 10) of 0/1, each 1 with probability 1/2
 * and at least one 1 per row; y = the argmax of x W (W (8, 10) ~ N(0, 1),
 * drawn first) over the positions the mask keeps. */
static int gen_masked(mimo_dsfile *f, size_t n, mimo_rng *r, const mimo_gen_opts *opts)
{
    (void)opts;
    double w[MK_X][MK_K];
    int32_t *y = alloc_array(n, sizeof *y);
    gen_out o[2] = {{"x", alloc_real(n, MK_X), MK_X},
                    {"mask", alloc_real(n, MK_K), MK_K}};
    int ok = y && all_allocated(o, 2);
    for (int i = 0; i < MK_X; i++)
        for (int k = 0; k < MK_K; k++)
            w[i][k] = mimo_rng_normal(r);
    for (size_t j = 0; ok && j < n; j++) {
        mimo_real *x = o[0].data + MK_X * j, *m = o[1].data + MK_K * j;
        double sc[MK_K] = {0};
        for (int i = 0; i < MK_X; i++)
            x[i] = (mimo_real)mimo_rng_normal(r);
        int ones = 0;
        for (int k = 0; k < MK_K; k++) {
            m[k] = mimo_rng_uniform(r) < 0.5 ? 1 : 0;
            ones += m[k] != 0;
        }
        if (!ones)
            m[(int)(mimo_rng_uniform(r) * MK_K) % MK_K] = 1;
        for (int i = 0; i < MK_X; i++)
            for (int k = 0; k < MK_K; k++)
                sc[k] += x[i] * w[i][k];
        int best = -1;
        for (int k = 0; k < MK_K; k++)
            if (m[k] != 0 && (best < 0 || sc[k] > sc[best]))
                best = k;
        y[j] = best;
    }
    if (!ok)
        drop_all(o, 2);
    int rc = write_all(f, "masked", o, 2, n);
    if (!rc)
        rc = y ? mimo_dsfile_write_int(f, "y", y, n) : oom("masked");
    free(y);
    return rc;
}

/* ---- tokens: padded id sequences whose answer needs the mask ----------- */

#define TK_LEN 20  /* time steps, right-padded with id 0 */
#define TK_VOCAB 50 /* ids 0 (padding) .. 49 */

/* tok (N, 20) int32: a length n uniform in 1..20, n ids uniform in 1..49,
 * then 0s; y (N, 1) = the mean over the n real ids of value[id] (value
 * (50,) uniform in [0, 1), drawn first). A mean over the real steps is
 * what a masked average pool gives; without the mask the pool divides by
 * 20 and counts the padding, and no linear head can undo that (the
 * answer is a ratio to n). */
static int gen_tokens(mimo_dsfile *f, size_t n, mimo_rng *r, const mimo_gen_opts *opts)
{
    (void)opts;
    double value[TK_VOCAB];
    int32_t *tok = alloc_array(n, TK_LEN * sizeof *tok);
    gen_out o[1] = {{"y", alloc_real(n, 1), 1}};
    int ok = tok && all_allocated(o, 1);
    for (int v = 0; v < TK_VOCAB; v++)
        value[v] = mimo_rng_uniform(r);
    for (size_t j = 0; ok && j < n; j++) {
        int len = 1 + (int)(mimo_rng_uniform(r) * TK_LEN) % TK_LEN;
        double sum = 0;
        for (int t = 0; t < TK_LEN; t++) {
            int32_t id = 0;
            if (t < len)
                id = 1 + (int32_t)(mimo_rng_uniform(r) * (TK_VOCAB - 1)) % (TK_VOCAB - 1);
            tok[(size_t)TK_LEN * j + (size_t)t] = id;
            sum += t < len ? value[id] : 0;
        }
        o[0].data[j] = (mimo_real)(sum / len);
    }
    int rc = ok ? mimo_dsfile_write_ints(f, "tok", tok, n, TK_LEN) : oom("tokens");
    if (rc)
        drop_all(o, 1);
    free(tok);
    return rc ? rc : write_all(f, "tokens", o, 1, n);
}

/* ---- tabular: a wide-and-deep click / dwell-time set -------------------- */

#define TB_NUM 8       /* numeric features */
#define TB_USERS 200   /* categorical: user ids */
#define TB_ITEMS 100   /* categorical: item ids */
#define TB_K 4         /* latent factors of the user x item affinity */

/* The hidden model, drawn first (it depends on the seed only): a linear
 * map of the numeric features, a bias and K factors per user and item. */
typedef struct {
    double w_click[TB_NUM], w_dwell[TB_NUM];
    double ub[TB_USERS], uf[TB_USERS][TB_K];
    double ib[TB_ITEMS], itf[TB_ITEMS][TB_K];
} tb_model;

static void tb_draw(tb_model *m, mimo_rng *r)
{
    for (int j = 0; j < TB_NUM; j++)
        m->w_click[j] = mimo_rng_normal(r) / sqrt((double)TB_NUM),
        m->w_dwell[j] = mimo_rng_normal(r) / sqrt((double)TB_NUM);
    for (int u = 0; u < TB_USERS; u++) {
        m->ub[u] = 0.7 * mimo_rng_normal(r);
        for (int k = 0; k < TB_K; k++)
            m->uf[u][k] = mimo_rng_normal(r);
    }
    for (int i = 0; i < TB_ITEMS; i++) {
        m->ib[i] = 0.7 * mimo_rng_normal(r);
        for (int k = 0; k < TB_K; k++)
            m->itf[i][k] = mimo_rng_normal(r);
    }
}

/* One row: num ~ N(0, I), a user and an item uniformly; click ~
 * Bernoulli(sigmoid(num w + b_u + b_i + 0.7 <f_u, f_i>)), dwell =
 * softplus(num w' + 0.5 b_u + 0.5 <f_u, f_i> / 2) + N(0, 0.1^2). */
static void tb_row(const tb_model *m, mimo_rng *r, mimo_real *num, int32_t *user,
                   int32_t *item, mimo_real *click, mimo_real *dwell)
{
    double lc = 0, ld = 0, aff = 0;
    int u = (int)mimo_rng_below(r, TB_USERS), i = (int)mimo_rng_below(r, TB_ITEMS);
    for (int j = 0; j < TB_NUM; j++) {
        double x = mimo_rng_normal(r);
        num[j] = (mimo_real)x;
        lc += x * m->w_click[j], ld += x * m->w_dwell[j];
    }
    for (int k = 0; k < TB_K; k++)
        aff += m->uf[u][k] * m->itf[i][k] / sqrt((double)TB_K);
    lc += m->ub[u] + m->ib[i] + 0.7 * aff;
    ld += 0.5 * m->ub[u] + 0.25 * aff;
    *user = u, *item = i;
    *click = mimo_rng_uniform(r) < 1 / (1 + exp(-lc)) ? 1 : 0;
    *dwell = (mimo_real)(log1p(exp(ld)) + 0.1 * mimo_rng_normal(r));
}

static int gen_tabular(mimo_dsfile *f, size_t n, mimo_rng *r, const mimo_gen_opts *opts)
{
    (void)opts;
    tb_model *m = malloc(sizeof *m);
    int32_t *user = alloc_array(n, sizeof *user), *item = alloc_array(n, sizeof *item);
    gen_out o[3] = {{"num", alloc_real(n, TB_NUM), TB_NUM},
                    {"click", alloc_real(n, 1), 1}, {"dwell", alloc_real(n, 1), 1}};
    int ok = m && user && item && all_allocated(o, 3);
    if (ok) {
        tb_draw(m, r);
        for (size_t j = 0; j < n; j++)
            tb_row(m, r, o[0].data + TB_NUM * j, user + j, item + j, o[1].data + j,
                   o[2].data + j);
    }
    free(m);
    if (!ok)
        drop_all(o, 3);
    int rc = write_all(f, "tabular", o, 3, n);
    if (!rc)
        rc = user && item ? mimo_dsfile_write_int(f, "user", user, n) : oom("tabular");
    if (!rc)
        rc = mimo_dsfile_write_int(f, "item", item, n);
    free(user);
    free(item);
    return rc;
}

/* ---- ctr: recommendation multi-task data --------------------------------- */

#define CTR_NUM 4      /* numeric features */
#define CTR_BAG 8      /* history bag length (0-padded) */
#define CTR_K 4        /* latent factors */
#define CTR_ZIPF 1.1   /* exponent of the ids' power law */

/* Factor k of id v of a table: the same for every row that names it, from
 * the seed, without a stored table (vocabularies up to 10^7). */
static double ctr_factor(uint64_t seed, uint64_t table, uint64_t v, int k)
{
    uint64_t z = seed ^ (table << 56) ^ (v * 4 + (uint64_t)k) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return ((double)(z >> 11) * 0x1p-53 - 0.5) * 2 * sqrt(3.0); /* mean 0, var 1 */
}

/* An id in [1, vocab): a discretized power law P(v) ~ v^-1.1 (Zipf-like:
 * a few ids are most of the rows); 0 is left for padding. */
static int32_t ctr_id(mimo_rng *r, long vocab)
{
    double a = 1 - CTR_ZIPF, top = pow((double)vocab, a);
    double v = pow(1 + (top - 1) * mimo_rng_uniform(r), 1 / a);
    long id = (long)v;
    return (int32_t)(id < 1 ? 1 : id >= vocab ? vocab - 1 : id);
}

static double ctr_dot(uint64_t seed, int ta, int32_t a, int tb, int32_t b)
{
    double s = 0;
    for (int k = 0; k < CTR_K; k++)
        s += ctr_factor(seed, (uint64_t)ta, (uint64_t)a, k) *
             ctr_factor(seed, (uint64_t)tb, (uint64_t)b, k);
    return s / CTR_K;
}

/* One row. A user, an item and a history of 1..CTR_BAG items (Zipf ids),
 * num ~ N(0, I). The known model: affinity = <f_user, f_item> + 0.5 x the
 * mean over the history of <f_hist, f_item>; click ~ Bernoulli(sigmoid(
 * 2 affinity + 0.5 num_0 - 0.5)); conversion, only where clicked (NaN
 * elsewhere: a head with missing: nan), ~ Bernoulli(sigmoid(2 affinity +
 * num_1 - 1)); dwell = tanh(affinity) + 0.3 num_2 + N(0, 0.1^2). */
static void ctr_row(uint64_t seed, long vocab, mimo_rng *r, mimo_real *num,
                    int32_t *user, int32_t *item, int32_t *hist, mimo_real *y)
{
    int32_t u = ctr_id(r, vocab), i = ctr_id(r, vocab);
    int len = 1 + (int)mimo_rng_below(r, CTR_BAG);
    double h = 0;
    for (int j = 0; j < CTR_BAG; j++) {
        hist[j] = j < len ? ctr_id(r, vocab) : 0;
        if (j < len)
            h += ctr_dot(seed, 2, hist[j], 1, i) / len;
    }
    for (int j = 0; j < CTR_NUM; j++)
        num[j] = (mimo_real)mimo_rng_normal(r);
    double aff = ctr_dot(seed, 0, u, 1, i) + 0.5 * h;
    int click = mimo_rng_uniform(r) < 1 / (1 + exp(-(2 * aff + 0.5 * num[0] - 0.5)));
    double pc = 1 / (1 + exp(-(2 * aff + num[1] - 1)));
    double conv = mimo_rng_uniform(r) < pc;
    *user = u, *item = i;
    y[0] = (mimo_real)click;
    y[1] = click ? (mimo_real)conv : (mimo_real)NAN;
    y[2] = (mimo_real)(tanh(aff) + 0.3 * num[2] + 0.1 * mimo_rng_normal(r));
}

static int gen_ctr(mimo_dsfile *f, size_t n, mimo_rng *r, const mimo_gen_opts *opts)
{
    long vocab = opts->vocab ? opts->vocab : MIMO_GEN_VOCAB_DEFAULT;
    if (vocab < 2 || vocab > 10000000)
        return mimo_error(MIMO_EINVAL, "gen ctr: --vocab must be in [2, 10000000], "
                          "got %ld", vocab);
    int32_t *user = alloc_array(n, sizeof *user), *item = alloc_array(n, sizeof *item);
    int32_t *hist = alloc_array(n * CTR_BAG, sizeof *hist);
    mimo_real *y = alloc_real(n, 3);
    gen_out o[4] = {{"num", alloc_real(n, CTR_NUM), CTR_NUM}, {"click", NULL, 1},
                      {"conversion", NULL, 1}, {"dwell", NULL, 1}};
    for (int k = 1; k < 4; k++)
        o[k].data = alloc_real(n, 1);
    int ok = user && item && hist && y && all_allocated(o, 4);
    for (size_t j = 0; ok && j < n; j++) {
        ctr_row(opts->seed, vocab, r, o[0].data + CTR_NUM * j, user + j, item + j,
                hist + CTR_BAG * j, y + 3 * j);
        for (int k = 0; k < 3; k++)
            o[k + 1].data[j] = y[3 * j + k];
    }
    if (!ok)
        drop_all(o, 4);
    int rc = write_all(f, "ctr", o, 4, n);
    if (!rc)
        rc = user && item && hist ? mimo_dsfile_write_int(f, "user", user, n) : oom("ctr");
    if (!rc)
        rc = mimo_dsfile_write_int(f, "item", item, n);
    if (!rc)
        rc = mimo_dsfile_write_ints(f, "history", hist, n, CTR_BAG);
    free(user), free(item), free(hist), free(y);
    return rc;
}

/* ---- correlated: two regression tasks of a chosen correlation ----------- */

/* MMoE's synthetic tasks (Ma et al., KDD 2018, Section 4.1): orthogonal
 * unit vectors u1, u2 in R^d; w1 = c u1, w2 = c (p u1 + sqrt(1 - p^2) u2),
 * so that cos(w1, w2) = p; x ~ N(0, I_d); y_t = w_t.x + sum_i sin(a_i
 * w_t.x + b_i) + N(0, 0.01^2), with c = 1, d = 100, m = 10. The paper
 * leaves a_i, b_i unstated; here they are drawn N(0, 1) from the seed
 * (the same for both tasks and every p). Google Research's generator of
 * this data takes a_i = i, b_i = (i - 1)^2: up to 10 oscillations per
 * unit of w.x, which 10,000 rows do not learn (validation MSE stays at
 * the labels' variance for either network). */
#define CO_DIM 100
#define CO_TERMS 10

/* u1, u2: two N(0, I) draws made orthonormal (Gram-Schmidt). */
static void co_basis(mimo_rng *r, double *u1, double *u2)
{
    double n1 = 0, d = 0, n2 = 0;
    for (int j = 0; j < CO_DIM; j++)
        u1[j] = mimo_rng_normal(r), u2[j] = mimo_rng_normal(r);
    for (int j = 0; j < CO_DIM; j++)
        n1 += u1[j] * u1[j];
    for (int j = 0; j < CO_DIM; j++)
        u1[j] /= sqrt(n1), d += u1[j] * u2[j];
    for (int j = 0; j < CO_DIM; j++)
        u2[j] -= d * u1[j], n2 += u2[j] * u2[j];
    for (int j = 0; j < CO_DIM; j++)
        u2[j] /= sqrt(n2);
}

static double co_label(double dot, const double *a, const double *b, mimo_rng *r)
{
    double y = dot;
    for (int i = 0; i < CO_TERMS; i++)
        y += sin(a[i] * dot + b[i]);
    return y + 0.01 * mimo_rng_normal(r);
}

static int gen_correlated(mimo_dsfile *f, size_t n, mimo_rng *r, const mimo_gen_opts *opts)
{
    double p = opts->correlation, u1[CO_DIM], u2[CO_DIM], w1[CO_DIM], w2[CO_DIM];
    double a[CO_TERMS], b[CO_TERMS];
    if (!(p >= -1 && p <= 1))
        return mimo_error(MIMO_EINVAL, "gen correlated: --correlation must be in "
                          "[-1, 1], got %g", p);
    co_basis(r, u1, u2);
    for (int i = 0; i < CO_TERMS; i++)
        a[i] = mimo_rng_normal(r), b[i] = mimo_rng_normal(r);
    for (int j = 0; j < CO_DIM; j++)
        w1[j] = u1[j], w2[j] = p * u1[j] + sqrt(1 - p * p) * u2[j];
    gen_out o[3] = {{"x", alloc_real(n, CO_DIM), CO_DIM}, {"y1", alloc_real(n, 1), 1},
                    {"y2", alloc_real(n, 1), 1}};
    int ok = all_allocated(o, 3);
    for (size_t i = 0; ok && i < n; i++) {
        double d1 = 0, d2 = 0;
        for (int j = 0; j < CO_DIM; j++) {
            double x = mimo_rng_normal(r);
            o[0].data[CO_DIM * i + (size_t)j] = (mimo_real)x;
            d1 += w1[j] * x, d2 += w2[j] * x;
        }
        o[1].data[i] = (mimo_real)co_label(d1, a, b, r);
        o[2].data[i] = (mimo_real)co_label(d2, a, b, r);
    }
    if (!ok)
        drop_all(o, 3);
    return write_all(f, "correlated", o, 3, n);
}

/* ---- the table ------------------------------------------------------- */

typedef int (*gen_fn)(mimo_dsfile *f, size_t n, mimo_rng *r, const mimo_gen_opts *opts);

static const struct {
    mimo_gen_info info;
    gen_fn run;
} generators[] = {
    {{"seed-mimo", "x1 (N,5), x2 (N,3) -> y1 (N,5) 0/1, y2 (N,4) one-hot; "
      "row 0 is seed 000's sample", 1, 0}, gen_seed_mimo},
    {{"xor", "x (N,2) -> y (N,1): the four XOR rows, repeated", 4, 0}, gen_xor},
    {{"sine-window", "x (N,5) windows of sin(t)+6+noise, standardized -> "
      "y (N,1) the next value", 1000, 0}, gen_sine_window},
    {{"sinexp", "x1 = x, x2 = x^2 (N,1) -> sin = sin 2 pi x, exp = exp x "
      "(N,1)", 1000, 1}, gen_sinexp},
    {{"sin12", "x (N,1) -> y = sin 12 pi x (N,1)", 1000, 1}, gen_sin12},
    {{"multitask", "a (N,32), b (N,16) -> reg (N,4) tanh of a linear map, "
      "cls (N,) int32 in 0..9", 10000, 0}, gen_multitask},
    {{"masked", "x (N,8), mask (N,10) 0/1 -> y (N,) int32 in 0..9, the "
      "argmax of a linear map of x over the mask's 1s", 5000, 0},
     gen_masked},
    {{"tokens", "tok (N,20) int32 ids 1..49 then 0-padding (lengths 1..20) -> "
      "y (N,1) the mean of a value per id over the real steps", 5000, 0},
     gen_tokens},
    {{"tabular", "num (N,8), user (N,) int32 in 0..199, item (N,) int32 in "
      "0..99 -> click (N,1) 0/1, dwell (N,1): wide-and-deep data", 40000, 0},
     gen_tabular},
    {{"ctr", "num (N,4), user, item (N,) int32 Zipf ids in 1..V-1, history (N,8) "
      "int32 bags, 0-padded -> click (N,1) 0/1, conversion (N,1) 0/1, NaN where "
      "not clicked, dwell (N,1): recommendation data (--vocab V, default "
      MIMO_GEN_STR(MIMO_GEN_VOCAB_DEFAULT) ")", 100000, 0}, gen_ctr},
    {{"correlated", "x (N,100) -> y1, y2 (N,1): MMoE's two synthetic regression "
      "tasks of correlation p (--correlation P, default 0)", 12000, 0}, gen_correlated},
};
#define N_GEN (sizeof generators / sizeof *generators)

/* The same names, in the same order, as generators[] (test_datagen checks). */
static const char *const gen_names[] = {"seed-mimo", "xor", "sine-window",
                                        "sinexp", "sin12", "multitask", "masked",
                                        "tokens", "tabular", "ctr", "correlated", NULL};

const char *const *mimo_gen_names(void) { return gen_names; }

static int find_gen(const char *name)
{
    for (size_t i = 0; i < N_GEN; i++)
        if (name && strcmp(name, generators[i].info.name) == 0)
            return (int)i;
    return -1;
}

static int unknown_gen(const char *name)
{
    char list[256] = "";
    for (size_t i = 0; i < N_GEN; i++) {
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                 generators[i].info.name);
    }
    return mimo_error(MIMO_EINVAL, "unknown dataset '%s' (expected one of: %s)",
                      name ? name : "", list);
}

int mimo_gen_lookup(const char *name, mimo_gen_info *info)
{
    int k = find_gen(name);
    if (k < 0)
        return unknown_gen(name);
    *info = generators[k].info;
    return 0;
}

/* Root attributes saying how the file was made. */
static int provenance(mimo_dsfile *f, const mimo_gen_opts *o, size_t n)
{
    char buf[128];
    int rc = mimo_dsfile_attr_str(f, "generator", o->name);
    snprintf(buf, sizeof buf, "%" PRIu64, o->seed);
    if (!rc)
        rc = mimo_dsfile_attr_str(f, "seed", buf);
    snprintf(buf, sizeof buf, "%zu", n);
    if (!rc)
        rc = mimo_dsfile_attr_str(f, "n", buf);
    snprintf(buf, sizeof buf, "%g", o->correlation);
    if (!rc && strcmp(o->name, "correlated") == 0)
        rc = mimo_dsfile_attr_str(f, "correlation", buf);
    if (!rc && generators[find_gen(o->name)].info.has_random_x)
        rc = mimo_dsfile_attr_str(f, "x", o->random_x ? "uniform" : "linspace");
    return rc;
}

int mimo_gen(const mimo_gen_opts *o)
{
    int k = find_gen(o->name);
    if (k < 0)
        return unknown_gen(o->name);
    if (o->n < 0)
        return mimo_error(MIMO_EINVAL, "gen %s: N must be >= 1, got %ld", o->name,
                          o->n);
    if (o->random_x && !generators[k].info.has_random_x)
        return mimo_error(MIMO_EINVAL, "gen %s: random x applies only to sinexp "
                          "and sin12", o->name);
    size_t n = o->n ? (size_t)o->n : (size_t)generators[k].info.default_n;
    mimo_rng r;
    mimo_rng_seed(&r, o->seed);
    mimo_dsfile *f = NULL;
    int rc = mimo_dsfile_create(o->path, &f);
    if (rc)
        return rc;
    rc = generators[k].run(f, n, &r, o);
    if (!rc)
        rc = provenance(f, o, n);
    if (rc) {
        mimo_dsfile_abort(&f);
        return rc;
    }
    return mimo_dsfile_commit(&f);
}
