/* conv_dnnl.c — conv2d's and conv1d's products by oneDNN (see
 * conv_dnnl.h for the contract). Per layer: one CPU engine and stream
 * (core/dnnl_ctx.c); per batch size b a plan, made at its first use:
 *   fwd   x (b, h, w, c) nhwc, W in the kernel's own blocked format
 *         (reordered from Keras' (kh, kw, c_in, filters) = oneDNN's hwio
 *         each call: the weights change every step) -> z (b, oh, ow, f)
 *   bwd_d dz nhwc, W reordered for it -> dxs (b, h, w, c), then dx += dxs
 *   bwd_w x, dz -> dW in its own format, reordered into the caller's
 *         hwio gradient with a sum post-op (dW += without a pass of ours);
 *         db += dz summed over positions, by a loop here
 * Every primitive runs with a user scratchpad (one buffer per plan, the
 * largest any of its primitives asks for), so oneDNN allocates nothing of
 * its own at run time for scratch. The direct algorithm: Winograd would
 * change the rounding with the batch size's kernel choice. Padding: the
 * window's top/left; bottom/right is what makes oneDNN's output size
 * mimo's (never negative: a valid window's unread last columns are
 * dropped by oneDNN's floor as by Keras').
 * In bf16 (train.precision, core/bf16.h) the primitives read bf16 x, W
 * and dz and write float32 z, dx and dW (accumulating in float32): x and
 * dz are reordered into bf16 buffers of the plan first (dz once for both
 * backward products), W's reorders convert as they block. */
#define _POSIX_C_SOURCE 200112L /* posix_memalign */
#include "core/layers/conv_dnnl.h"

#ifdef MIMO_CONV_DNNL
#include <dnnl.h>
#include <stdlib.h>
#include <string.h>

#include "core/dnnl_ctx.h"

_Static_assert(sizeof(mimo_real) == sizeof(float), "MIMO_DNNL needs float32 mimo_real");

enum { MAX_PLANS = 4 };

/* The primitives of one batch size; NULL until the first call needs it. */
typedef struct {
    int b;
    dnnl_primitive_desc_t fwd_pd;          /* the hint of the backward ones */
    dnnl_primitive_t fwd, bwd_d, bwd_w;
    dnnl_primitive_t w_to_fwd, w_to_bwd;   /* hwio -> each one's kernel */
    dnnl_primitive_t dw_add;               /* bwd_w's kernel += into hwio */
    dnnl_memory_t x, y, dxs;               /* nhwc: x, z or dz, dx's buffer */
    dnnl_memory_t w;                       /* hwio: W or dW, the caller's */
    dnnl_memory_t w_fwd, w_bwd, dw;        /* owned, in the primitives' formats */
    dnnl_memory_t xb, yb;                  /* bf16: owned nhwc copies of x, dz */
    dnnl_primitive_t x_to_b, y_to_b;       /* bf16: x -> xb, dz -> yb */
    const void *yb_of;                     /* bf16: the dz yb holds (NULL:
                                            * none since the forward) */
    dnnl_memory_t pad;                     /* scratchpad, grown as made */
    void *pad_buf;
    size_t pad_bytes;
} plan;

struct mimo_conv_dnnl {
    mimo_window w;
    int filters, bias;
    dnnl_data_type_t dt;  /* of x, W, dz inside: f32, or bf16 */
    dnnl_engine_t eng;
    dnnl_stream_t st;
    plan plans[MAX_PLANS];
    int n_plans, next; /* slots used; the one replaced when all are */
};

#define OK(call) ((call) == dnnl_success)

/* ---- descriptors ------------------------------------------------------- */

static void md_nhwc(dnnl_memory_desc_t *md, int b, int c, int h, int w,
                    dnnl_data_type_t t)
{
    dnnl_dims_t d = {b, c, h, w};
    dnnl_memory_desc_init_by_tag(md, 4, d, t, dnnl_nhwc);
}

static void md_kernel(const mimo_conv_dnnl *c, dnnl_memory_desc_t *md,
                      dnnl_format_tag_t tag, dnnl_data_type_t t)
{
    dnnl_dims_t d = {c->filters, c->w.c, c->w.kh, c->w.kw};
    dnnl_memory_desc_init_by_tag(md, 4, d, t, tag);
}

/* strides, dilations (oneDNN counts the gaps: dil - 1), padding */
static void geometry(const mimo_window *w, dnnl_dims_t s, dnnl_dims_t dil,
                     dnnl_dims_t pl, dnnl_dims_t pr)
{
    int span_h = w->kh, span_w = (w->kw - 1) * w->dil + 1;
    s[0] = w->sh, s[1] = w->sw;
    dil[0] = 0, dil[1] = w->dil - 1;
    pl[0] = w->pad_top, pl[1] = w->pad_left;
    pr[0] = (w->out_h - 1) * w->sh + span_h - w->in_h - w->pad_top;
    pr[1] = (w->out_w - 1) * w->sw + span_w - w->in_w - w->pad_left;
    pr[0] = pr[0] < 0 ? 0 : pr[0], pr[1] = pr[1] < 0 ? 0 : pr[1];
}

static dnnl_primitive_attr_t user_pad_attr(void)
{
    dnnl_primitive_attr_t a = NULL;
    if (!OK(dnnl_primitive_attr_create(&a)) ||
        !OK(dnnl_primitive_attr_set_scratchpad_mode(a, dnnl_scratchpad_mode_user))) {
        dnnl_primitive_attr_destroy(a);
        return NULL;
    }
    return a;
}

/* oneDNN's name of pd's implementation ("jit:avx512_core") */
static const char *impl_of(const_dnnl_primitive_desc_t pd)
{
    const char *name = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name);
    return name ? name : "";
}

/* The primitive descriptor of desc (with a user scratchpad; hint: the
 * forward's, for the backward ones): oneDNN's first implementation, but
 * for a layer of fewer than 4 input channels its first direct JIT kernel
 * ("jit:...") when the first is a brgemm one ("brg..."), whose reduction
 * — c_in kw values — is then too short (conv 3x3 over one channel, AMD
 * Zen 4, 1 thread: brgconv:avx512_core forward 30-66 GFLOP/s,
 * jit:avx512_core 80-98; noisy). A rule of the shape and of the CPU's
 * list, never of a timing: the same kernels, so the same rounding, in
 * every run. NULL if oneDNN has none but its reference kernels (a
 * hundred times slower than im2col: the layer keeps im2col). */
static dnnl_primitive_desc_t choose(const mimo_conv_dnnl *c, const_dnnl_op_desc_t desc,
                                    const_dnnl_primitive_desc_t hint)
{
    dnnl_primitive_attr_t a = user_pad_attr();
    if (!a)
        return NULL;
    dnnl_primitive_desc_iterator_t it = NULL;
    dnnl_primitive_desc_t pd = NULL;
    if (OK(dnnl_primitive_desc_iterator_create(&it, desc, a, c->eng, hint))) {
        pd = dnnl_primitive_desc_iterator_fetch(it);
        while (pd && c->w.c < 4 && strncmp(impl_of(pd), "brg", 3) == 0 &&
               dnnl_primitive_desc_iterator_next(it) == dnnl_success) {
            dnnl_primitive_desc_t next = dnnl_primitive_desc_iterator_fetch(it);
            if (next && strncmp(impl_of(next), "jit", 3) == 0) {
                dnnl_primitive_desc_destroy(pd);
                pd = next;
            } else {
                dnnl_primitive_desc_destroy(next);
            }
        }
    }
    dnnl_primitive_desc_iterator_destroy(it);
    dnnl_primitive_attr_destroy(a);
    if (pd && strncmp(impl_of(pd), "ref", 3) == 0) { /* ~0.1 GFLOP/s: im2col's */
        dnnl_primitive_desc_destroy(pd);
        pd = NULL;
    }
    return pd;
}

/* The scratchpad of pd fits the plan's buffer (grown now if not: only
 * while primitives are made). */
static int fit_pad(dnnl_engine_t eng, plan *p, const dnnl_primitive_desc_t pd)
{
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t need = md ? dnnl_memory_desc_get_size(md) : 0;
    if (need <= p->pad_bytes)
        return 0;
    void *buf = NULL;
    if (posix_memalign(&buf, 64, need))
        return -1;
    dnnl_memory_destroy(p->pad);
    free(p->pad_buf);
    p->pad = NULL, p->pad_buf = buf, p->pad_bytes = need;
    dnnl_memory_desc_t flat;
    dnnl_dims_t d = {(dnnl_dim_t)need};
    dnnl_memory_desc_init_by_tag(&flat, 1, d, dnnl_u8, dnnl_a);
    return OK(dnnl_memory_create(&p->pad, &flat, eng, buf)) ? 0 : -1;
}

/* A primitive from pd (destroyed here), its scratchpad fitted. */
static int make(dnnl_engine_t eng, plan *p, dnnl_primitive_desc_t pd,
                dnnl_primitive_t *out)
{
    int rc = fit_pad(eng, p, pd) || !OK(dnnl_primitive_create(out, pd)) ? -1 : 0;
    dnnl_primitive_desc_destroy(pd);
    return rc;
}

/* A reorder from src to dst's formats; sum: it adds into dst. */
static int make_reorder(mimo_conv_dnnl *c, plan *p, const dnnl_memory_desc_t *src,
                        const dnnl_memory_desc_t *dst, int sum, dnnl_primitive_t *out)
{
    dnnl_primitive_attr_t a = user_pad_attr();
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    int rc = a ? 0 : -1;
    if (!rc && sum)
        rc = OK(dnnl_post_ops_create(&po)) && OK(dnnl_post_ops_append_sum(po, 1.0f)) &&
                     OK(dnnl_primitive_attr_set_post_ops(a, po)) ? 0 : -1;
    if (!rc)
        rc = OK(dnnl_reorder_primitive_desc_create(&pd, src, c->eng, dst, c->eng, a))
                 ? make(c->eng, p, pd, out) : -1;
    dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(a);
    return rc;
}

/* An owned buffer of md's format; its descriptor for the reorders. */
static int owned(mimo_conv_dnnl *c, const dnnl_primitive_desc_t pd, dnnl_query_t q,
                 dnnl_memory_t *m)
{
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, q, 0);
    return md && OK(dnnl_memory_create(m, md, c->eng, DNNL_MEMORY_ALLOCATE)) ? 0 : -1;
}

static const dnnl_memory_desc_t *md_of(dnnl_memory_t m)
{
    const dnnl_memory_desc_t *md = NULL;
    dnnl_memory_get_memory_desc(m, &md);
    return md;
}

/* ---- plans ------------------------------------------------------------- */

static void plan_free(plan *p)
{
    dnnl_primitive_t prims[] = {p->fwd,      p->bwd_d,    p->bwd_w,  p->w_to_fwd,
                                p->w_to_bwd, p->dw_add,   p->x_to_b, p->y_to_b};
    dnnl_memory_t mems[] = {p->x,     p->y,  p->dxs, p->w, p->w_fwd,
                            p->w_bwd, p->dw, p->pad, p->xb, p->yb};
    for (size_t i = 0; i < sizeof prims / sizeof *prims; i++)
        dnnl_primitive_destroy(prims[i]);
    for (size_t i = 0; i < sizeof mems / sizeof *mems; i++)
        dnnl_memory_destroy(mems[i]);
    dnnl_primitive_desc_destroy(p->fwd_pd);
    free(p->pad_buf);
    memset(p, 0, sizeof *p);
}

/* The forward's descriptor and the user-side memories of batch b (x's
 * inside: c->dt). */
static int plan_init(mimo_conv_dnnl *c, plan *p, int b)
{
    const mimo_window *w = &c->w;
    dnnl_memory_desc_t x, xi, y, k, kh;
    dnnl_dims_t s, dil, pl, pr;
    dnnl_convolution_desc_t cd;
    md_nhwc(&x, b, w->c, w->in_h, w->in_w, dnnl_f32);
    md_nhwc(&xi, b, w->c, w->in_h, w->in_w, c->dt);
    md_nhwc(&y, b, c->filters, w->out_h, w->out_w, dnnl_f32);
    md_kernel(c, &k, dnnl_format_tag_any, c->dt);
    md_kernel(c, &kh, dnnl_hwio, dnnl_f32);
    geometry(w, s, dil, pl, pr);
    p->b = b;
    return OK(dnnl_dilated_convolution_forward_desc_init(
                   &cd, dnnl_forward_training, dnnl_convolution_direct, &xi, &k, NULL,
                   &y, s, dil, pl, pr)) &&
                   (p->fwd_pd = choose(c, &cd, NULL)) &&
                   OK(dnnl_memory_create(&p->x, &x, c->eng, DNNL_MEMORY_NONE)) &&
                   OK(dnnl_memory_create(&p->y, &y, c->eng, DNNL_MEMORY_NONE)) &&
                   OK(dnnl_memory_create(&p->w, &kh, c->eng, DNNL_MEMORY_NONE))
               ? 0 : -1;
}

/* The plan of batch b, made now if new (replacing the oldest when all
 * slots are taken); NULL if oneDNN refuses. */
static plan *plan_for(mimo_conv_dnnl *c, int b)
{
    for (int i = 0; i < c->n_plans; i++)
        if (c->plans[i].b == b)
            return &c->plans[i];
    int i = c->n_plans < MAX_PLANS ? c->n_plans++ : c->next++ % MAX_PLANS;
    plan *p = &c->plans[i];
    plan_free(p);
    if (plan_init(c, p, b)) {
        plan_free(p); /* b 0: never found */
        return NULL;
    }
    return p;
}

/* bf16: the plan's copy of x (or dz: y) and its reorder, made once */
static int make_copy(mimo_conv_dnnl *c, plan *p, dnnl_memory_t user, dnnl_memory_t *copy,
                     dnnl_primitive_t *to)
{
    if (c->dt == dnnl_f32 || *copy)
        return 0;
    dnnl_memory_desc_t md = *md_of(user);
    md.data_type = dnnl_bf16; /* nhwc as the user's, dense: the same strides */
    return OK(dnnl_memory_create(copy, &md, c->eng, DNNL_MEMORY_ALLOCATE)) &&
                   !make_reorder(c, p, md_of(user), &md, 0, to)
               ? 0 : -1;
}

static int make_fwd(mimo_conv_dnnl *c, plan *p)
{
    dnnl_primitive_desc_t pd = NULL;
    if (make_copy(c, p, p->x, &p->xb, &p->x_to_b) ||
        !OK(dnnl_primitive_desc_clone(&pd, p->fwd_pd)) ||
        owned(c, p->fwd_pd, dnnl_query_weights_md, &p->w_fwd) ||
        make_reorder(c, p, md_of(p->w), md_of(p->w_fwd), 0, &p->w_to_fwd))
        return dnnl_primitive_desc_destroy(pd), -1;
    return make(c->eng, p, pd, &p->fwd);
}

static int make_bwd_d(mimo_conv_dnnl *c, plan *p)
{
    const mimo_window *w = &c->w;
    dnnl_memory_desc_t dx, k;
    dnnl_dims_t s, dil, pl, pr;
    dnnl_convolution_desc_t cd;
    dnnl_primitive_desc_t pd = NULL;
    md_nhwc(&dx, p->b, w->c, w->in_h, w->in_w, dnnl_f32);
    md_kernel(c, &k, dnnl_format_tag_any, c->dt);
    geometry(w, s, dil, pl, pr);
    if (make_copy(c, p, p->y, &p->yb, &p->y_to_b))
        return -1;
    int rc = OK(dnnl_dilated_convolution_backward_data_desc_init(
                 &cd, dnnl_convolution_direct, &dx, &k, md_of(p->yb ? p->yb : p->y), s,
                 dil, pl, pr)) &&
                     (pd = choose(c, &cd, p->fwd_pd))
                 ? 0 : -1;
    if (rc || !OK(dnnl_memory_create(&p->dxs, &dx, c->eng, DNNL_MEMORY_ALLOCATE)) ||
        owned(c, pd, dnnl_query_weights_md, &p->w_bwd) ||
        make_reorder(c, p, md_of(p->w), md_of(p->w_bwd), 0, &p->w_to_bwd))
        return dnnl_primitive_desc_destroy(pd), -1;
    return make(c->eng, p, pd, &p->bwd_d);
}

/* without the bias: oneDNN's bias reduction over channels-last dz halves
 * the rate of the whole (conv 3x3 over one channel: 49 GFLOP/s against
 * 87 without); db_sum does it in one pass of its own */
static int make_bwd_w(mimo_conv_dnnl *c, plan *p)
{
    dnnl_memory_desc_t k;
    dnnl_dims_t s, dil, pl, pr;
    dnnl_convolution_desc_t cd;
    dnnl_primitive_desc_t pd = NULL;
    md_kernel(c, &k, dnnl_format_tag_any, dnnl_f32); /* dW: float32 */
    geometry(&c->w, s, dil, pl, pr);
    if (make_copy(c, p, p->x, &p->xb, &p->x_to_b) ||
        make_copy(c, p, p->y, &p->yb, &p->y_to_b))
        return -1;
    int rc = OK(dnnl_dilated_convolution_backward_weights_desc_init(
                 &cd, dnnl_convolution_direct, md_of(p->xb ? p->xb : p->x), &k, NULL,
                 md_of(p->yb ? p->yb : p->y), s, dil, pl, pr)) &&
                     (pd = choose(c, &cd, p->fwd_pd))
                 ? 0 : -1;
    if (rc || owned(c, pd, dnnl_query_diff_weights_md, &p->dw) ||
        make_reorder(c, p, md_of(p->dw), md_of(p->w), 1, &p->dw_add))
        return dnnl_primitive_desc_destroy(pd), -1;
    return make(c->eng, p, pd, &p->bwd_w);
}

/* ---- the calls ----------------------------------------------------------- */

/* prim on args[0, n) and the scratchpad (args has room for it) */
static int run(mimo_conv_dnnl *c, plan *p, dnnl_primitive_t prim, int n,
               dnnl_exec_arg_t *args)
{
    args[n] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, p->pad};
    return mimo_dnnl_run(c->st, prim, p->pad ? n + 1 : n, args);
}

/* W (hwio, the caller's) into the kernel memory k by reorder r */
static int kernel_in(mimo_conv_dnnl *c, plan *p, const mimo_real *W,
                     dnnl_primitive_t r, dnnl_memory_t k)
{
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, p->w}, {DNNL_ARG_TO, k}};
    return OK(dnnl_memory_set_data_handle(p->w, (void *)W)) ? run(c, p, r, 2, args) : -1;
}

mimo_conv_dnnl *mimo_conv_dnnl_new(const mimo_window *w, int filters, int bias,
                                   int bf16)
{
    mimo_conv_dnnl *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->w = *w, c->filters = filters, c->bias = bias;
    c->dt = bf16 ? dnnl_bf16 : dnnl_f32;
    if (mimo_dnnl_open(&c->eng, &c->st) || !plan_for(c, 1) || make_fwd(c, c->plans) ||
        make_bwd_d(c, c->plans) || make_bwd_w(c, c->plans)) { /* oneDNN has kernels
                                                                * for the geometry */
        mimo_conv_dnnl_free(c);
        return NULL;
    }
    return c;
}

void mimo_conv_dnnl_free(mimo_conv_dnnl *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n_plans; i++)
        plan_free(&c->plans[i]);
    mimo_dnnl_close(c->eng, c->st);
    free(c);
}

/* bf16: user's into copy by reorder r (nothing in float32) */
static int to_copy(mimo_conv_dnnl *c, plan *p, dnnl_primitive_t r, dnnl_memory_t user,
                   dnnl_memory_t copy)
{
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, copy}};
    return copy ? run(c, p, r, 2, args) : 0;
}

/* bf16: dz (in p->y's handle) into yb, unless it holds this dz already:
 * the backward's weights product converts it (yb_of cleared first), its
 * data product, which runs last, reuses it and clears yb_of — another
 * backward over the same forward (task balancing's per-head passes)
 * writes another dz at the same address */
static int dz_copy(mimo_conv_dnnl *c, plan *p, const mimo_real *dz)
{
    if (!p->yb || p->yb_of == dz)
        return 0;
    p->yb_of = NULL;
    if (to_copy(c, p, p->y_to_b, p->y, p->yb))
        return -1;
    p->yb_of = dz;
    return 0;
}

int mimo_conv_dnnl_forward(mimo_conv_dnnl *c, int b, const mimo_real *x,
                           const mimo_real *W, mimo_real *z)
{
    plan *p = plan_for(c, b);
    if (!p || (!p->fwd && make_fwd(c, p)) ||
        kernel_in(c, p, W, p->w_to_fwd, p->w_fwd))
        return -1;
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, p->xb ? p->xb : p->x},
                               {DNNL_ARG_WEIGHTS, p->w_fwd},
                               {DNNL_ARG_DST, p->y}};
    p->yb_of = NULL; /* a new step: dz not converted yet */
    if (!OK(dnnl_memory_set_data_handle(p->x, (void *)x)) ||
        !OK(dnnl_memory_set_data_handle(p->y, z)) || to_copy(c, p, p->x_to_b, p->x, p->xb))
        return -1;
    return run(c, p, p->fwd, 3, args);
}

int mimo_conv_dnnl_backward_data(mimo_conv_dnnl *c, int b, const mimo_real *dz,
                                 const mimo_real *W, mimo_real *dx)
{
    plan *p = plan_for(c, b);
    if (!p || (!p->bwd_d && make_bwd_d(c, p)) ||
        kernel_in(c, p, W, p->w_to_bwd, p->w_bwd))
        return -1;
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_DIFF_DST, p->yb ? p->yb : p->y},
                               {DNNL_ARG_WEIGHTS, p->w_bwd},
                               {DNNL_ARG_DIFF_SRC, p->dxs}};
    void *buf = NULL;
    int rc = !OK(dnnl_memory_set_data_handle(p->y, (void *)dz)) || dz_copy(c, p, dz) ||
             run(c, p, p->bwd_d, 3, args) || !OK(dnnl_memory_get_data_handle(p->dxs, &buf));
    p->yb_of = NULL; /* the backward's last use of this dz */
    if (rc)
        return -1;
    /* dx += dxs: another consumer of x may have added into dx first */
    const mimo_real *src = buf;
    size_t n = (size_t)b * (size_t)c->w.in_h * (size_t)c->w.in_w * (size_t)c->w.c;
    for (size_t i = 0; i < n; i++)
        dx[i] += src[i];
    return 0;
}

/* The sums over rows [0, m) of dz's columns [f0, f0 + w), w <= 16,
 * added into tot: float sums of blocks of 256 rows, four rows at a time
 * into four accumulators (vectorized over the columns, independent
 * chains), their total in double; a fixed order, whatever the machine. */
static void col_sums(const mimo_real *dz, size_t m, int F, int f0, int w, double *tot)
{
    for (size_t r0 = 0; r0 < m; r0 += 256) {
        size_t r1 = m - r0 < 256 ? m : r0 + 256, r = r0;
        float a[4][16] = {{0}};
        if (w == 16) /* a constant width: registers, not memory */
            for (; r + 4 <= r1; r += 4)
                for (int k = 0; k < 4; k++) {
                    const mimo_real *row = dz + (r + (size_t)k) * (size_t)F + f0;
                    for (int j = 0; j < 16; j++)
                        a[k][j] += row[j];
                }
        for (; r < r1; r++)
            for (int j = 0; j < w; j++)
                a[r % 4][j] += dz[r * (size_t)F + (size_t)f0 + (size_t)j];
        for (int j = 0; j < w; j++)
            tot[j] += (double)((a[0][j] + a[1][j]) + (a[2][j] + a[3][j]));
    }
}

/* db += the sum of dz (m, filters) over its m rows, 16 filters at a time
 * (oneDNN's own bias reduction over channels-last dz halved the rate of
 * the backward weights) */
static void db_sum(mimo_conv_dnnl *c, const mimo_real *dz, size_t m, mimo_real *db)
{
    const int F = c->filters;
    for (int f0 = 0; f0 < F; f0 += 16) {
        int w = F - f0 < 16 ? F - f0 : 16;
        double tot[16] = {0};
        col_sums(dz, m, F, f0, w, tot);
        for (int j = 0; j < w; j++)
            db[f0 + j] += (mimo_real)tot[j];
    }
}

int mimo_conv_dnnl_backward_weights(mimo_conv_dnnl *c, int b, const mimo_real *x,
                                    const mimo_real *dz, mimo_real *dW, mimo_real *db)
{
    if (dW) {
        plan *p = plan_for(c, b);
        if (!p || (!p->bwd_w && make_bwd_w(c, p)))
            return -1;
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, p->xb ? p->xb : p->x},
                                   {DNNL_ARG_DIFF_DST, p->yb ? p->yb : p->y},
                                   {DNNL_ARG_DIFF_WEIGHTS, p->dw}};
        dnnl_exec_arg_t r[3] = {{DNNL_ARG_FROM, p->dw}, {DNNL_ARG_TO, p->w}};
        /* x again into xb (another batch of this size may have been
         * through the forward since); then dW += it: the reorder's sum
         * post-op */
        if (!OK(dnnl_memory_set_data_handle(p->x, (void *)x)) ||
            !OK(dnnl_memory_set_data_handle(p->y, (void *)dz)) ||
            to_copy(c, p, p->x_to_b, p->x, p->xb) || (p->yb_of = NULL, dz_copy(c, p, dz)) ||
            run(c, p, p->bwd_w, 3, args) ||
            !OK(dnnl_memory_set_data_handle(p->w, dW)) || run(c, p, p->dw_add, 2, r))
            return -1;
    }
    if (db && c->bias)
        db_sum(c, dz, (size_t)b * (size_t)c->w.out_h * (size_t)c->w.out_w, db);
    return 0;
}

const char *mimo_conv_dnnl_impl(mimo_conv_dnnl *c, int b)
{
    plan *p = plan_for(c, b);
    const char *s = NULL;
    if (!p || !OK(dnnl_primitive_desc_query(p->fwd_pd, dnnl_query_impl_info_str, 0, &s)))
        return "";
    return s ? s : "";
}
#endif /* MIMO_CONV_DNNL */
