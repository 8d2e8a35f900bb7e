/* hashing.c — Keras' Hashing: raw integer ids of any size (a model input
 * of dtype int64, read exactly, or int32) to bins in [0, num_bins), the
 * same per-sample shape, for an embedding or embedding_bag to read. The
 * hash is the import's (`hashed` columns, io/tabular.c): SipHash-2-4 of
 * the id's canonical decimal text under the key (salt, salt), mod
 * num_bins (mimo_siphash_decimal, base/hash.c), so a CSV column imported
 * as {kind: hashed, num_bins: B, seed: S} and the raw ids through
 * {type: hashing, num_bins: B, salt: S} give the same bins. With
 * mask_value, that id goes to bin 0 and the others to 1 + hash mod
 * (num_bins - 1), as Keras. No parameters, no gradient (ids have none).
 *
 * Its ONNX form is the same hash in int64 arithmetic of opset 13 (no
 * bitwise operators before opset 18): a 64-bit word as two 32-bit limbs
 * (.., 2) [low, high] in int64; addition with its carry by Div and Mod,
 * rotations by Mul, Div and a swap of the limbs, xor through the limbs'
 * 32 bits (Div and Mod by powers of 2); the decimal text of each id by
 * Div and Mod by powers of 10 and GatherElements, and the 1 to 3 message
 * words of its length (up to 20 bytes) chosen per id by Where. */
#include <limits.h>
#include <stdio.h>

#include "base/hash.h"
#include "core/kind.h"
#include "core/layers/ids.h"
#include "core/onnx.h"
#include "mimo/error.h"

/* mask_value's value when none is given */
#define NO_MASK INT_MIN

typedef struct {
    int num_bins, salt, mask_value;
} hashing_args;

static const mimo_arg hashing_keys[] = {
    {MIMO_ARG(hashing_args, num_bins), .type = MIMO_ARG_INT, .required = 1,
     .lo = 1, .hi = MIMO_IDS_MAX, .expect = "an integer in [1, 16777216]"},
    {MIMO_ARG(hashing_args, salt), .type = MIMO_ARG_INT, .lo = 0, .hi = INT_MAX,
     .expect = "an integer >= 0 (the import's seed)"},
    {MIMO_ARG(hashing_args, mask_value), .type = MIMO_ARG_INT, .lo = INT_MIN + 1,
     .hi = INT_MAX, .expect = "an integer"},
};

static void hashing_defaults(void *p)
{
    hashing_args *a = p;
    a->mask_value = NO_MASK;
}

static int hashing_finish(void *p, char *err, size_t len)
{
    const hashing_args *a = p;
    if (a->mask_value != NO_MASK && a->num_bins < 2) {
        snprintf(err, len, "num_bins %d with mask_value: bin 0 is the mask's, "
                 "so num_bins must be at least 2", a->num_bins);
        return -1;
    }
    return 0;
}

static int hashing_infer(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    if (mimo_check_inputs(n, 1, 1, "", err, len))
        return -1;
    const mimo_node *p = MIMO_PARENT(g, n, 0);
    if (p->kind || g->spec->inputs[p->spec_index].dtype == MIMO_DTYPE_FLOAT32) {
        snprintf(err, len, "hashing layer '%s' hashes integer ids: its input "
                 "'%s' must be a model input with dtype: int64 (or int32)",
                 n->name, p->name);
        return -1;
    }
    n->shape = p->shape;
    return 0;
}

/* The bin of id v. */
static mimo_real bin_of(const hashing_args *a, int64_t v)
{
    if (a->mask_value != NO_MASK)
        return v == a->mask_value
                   ? 0
                   : (mimo_real)(1 + mimo_siphash_decimal((uint64_t)a->salt, v) %
                                         (uint64_t)(a->num_bins - 1));
    return (mimo_real)(mimo_siphash_decimal((uint64_t)a->salt, v) %
                       (uint64_t)a->num_bins);
}

static void hashing_forward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                            int b)
{
    (void)params;
    const hashing_args *a = n->args;
    const mimo_node *p = MIMO_PARENT(g, n, 0);
    size_t count = (size_t)b * (size_t)n->width;
    if (mimo_node_wide(g, p)) {
        for (size_t i = 0; i < count; i++)
            n->y[i] = bin_of(a, mimo_node_i64(p, i));
        return;
    }
    for (size_t i = 0; i < count; i++) { /* an int32 input: floats */
        mimo_real v = p->y[i];
        if (!(v >= -MIMO_IDS_MAX && v <= MIMO_IDS_MAX && v == (int64_t)v)) {
            mimo_graph_fault(g, mimo_error(MIMO_EINVAL, "hashing layer '%s': "
                                           "value %g is not an integer id",
                                           n->name, (double)v));
            v = 0;
        }
        n->y[i] = bin_of(a, (int64_t)v);
    }
}

/* ids have no gradient: nothing to add */
static void hashing_backward(mimo_graph *g, mimo_node *n, const mimo_real *params,
                             mimo_real *grads, int b)
{
    (void)g, (void)n, (void)params, (void)grads, (void)b;
}

static long long hashing_id_bound(const mimo_node *n)
{
    (void)n;
    return 0; /* any integer */
}

static long long hashing_ids_out(const mimo_node *n)
{
    return ((const hashing_args *)n->args)->num_bins;
}

static void hashing_describe(const mimo_node *n, char *buf, size_t len)
{
    const hashing_args *a = n->args;
    snprintf(buf, len, "hashing(%d bins)", a->num_bins);
}

/* ---- ONNX: SipHash-2-4 in int64 arithmetic ------------------------------- */

#define TWO32 4294967296LL

/* The builder and the constants the hash uses many times. */
typedef struct {
    mimo_onnx *x;
    const char *two32, *two, *pow2, *swap, *low_twice, *zero_one, *last;
} sip;

/* op of n_in (1 or 2) inputs and one attribute (or none); NULL in (an
 * operator the builder failed to make, recorded), NULL out. */
static const char *op(sip *s, const char *name, int n_in, const char *a, const char *b,
                      const mimo_onnx_attr *at)
{
    const char *in[2] = {a, b};
    return a && (n_in < 2 || b) ? s->x->op(s->x, name, in, n_in, at, at ? 1 : 0) : NULL;
}

static const char *i64(sip *s, long long v)
{
    return s->x->constant_i64(s->x, "c", &v, 0);
}

static const char *gather(sip *s, const char *v, const char *idx)
{
    const mimo_onnx_attr ax = {.name = "axis", .type = MIMO_ONNX_INT, .i = -1};
    return idx ? op(s, "Gather", 2, v, idx, &ax) : NULL;
}

/* a + b mod 2^64: the limbs' sums, the low limb's carry into the high. */
static const char *add64(sip *s, const char *a, const char *b)
{
    const char *sum = mimo_onnx_op2(s->x, "Add", a, b);
    const char *carry = mimo_onnx_op2(s->x, "Div", sum, s->two32);
    const char *up = mimo_onnx_op2(s->x, "Mul", gather(s, carry, s->low_twice),
                                   s->zero_one);
    return mimo_onnx_op2(s->x, "Mod", mimo_onnx_op2(s->x, "Add", sum, up), s->two32);
}

/* v rotated left by r bits (0 < r < 64). */
static const char *rotl(sip *s, const char *v, int r)
{
    const char *sw = gather(s, v, s->swap);
    if (r >= 32) {
        v = sw, r -= 32;
        sw = gather(s, v, s->swap);
    }
    if (r == 0)
        return v;
    const char *hi = mimo_onnx_op2(s->x, "Mod",
                                   mimo_onnx_op2(s->x, "Mul", v, i64(s, 1LL << r)),
                                   s->two32);
    const char *lo = mimo_onnx_op2(s->x, "Div", sw, i64(s, 1LL << (32 - r)));
    return mimo_onnx_op2(s->x, "Add", hi, lo);
}

/* The 32 bits of each limb, (.., 2, 32). */
static const char *bits(sip *s, const char *v)
{
    const char *u = op(s, "Unsqueeze", 2, v, s->last, NULL);
    return mimo_onnx_op2(s->x, "Mod", mimo_onnx_op2(s->x, "Div", u, s->pow2), s->two);
}

static const char *xor64(sip *s, const char *a, const char *b)
{
    const mimo_onnx_attr keep = {.name = "keepdims", .type = MIMO_ONNX_INT, .i = 0};
    const char *x = mimo_onnx_op2(s->x, "Mod",
                                  mimo_onnx_op2(s->x, "Add", bits(s, a), bits(s, b)),
                                  s->two);
    const char *in[2] = {mimo_onnx_op2(s->x, "Mul", x, s->pow2), s->last};
    return in[0] && in[1] ? s->x->op(s->x, "ReduceSum", in, 2, &keep, 1) : NULL;
}

static void sipround(sip *s, const char *v[4])
{
    v[0] = add64(s, v[0], v[1]);
    v[1] = xor64(s, rotl(s, v[1], 13), v[0]);
    v[0] = rotl(s, v[0], 32);
    v[2] = add64(s, v[2], v[3]);
    v[3] = xor64(s, rotl(s, v[3], 16), v[2]);
    v[0] = add64(s, v[0], v[3]);
    v[3] = xor64(s, rotl(s, v[3], 21), v[0]);
    v[2] = add64(s, v[2], v[1]);
    v[1] = xor64(s, rotl(s, v[1], 17), v[2]);
    v[2] = rotl(s, v[2], 32);
}

/* A 64-bit constant as its limbs (2). */
static const char *word(sip *s, uint64_t w)
{
    const long long v[2] = {(long long)(w & 0xffffffffu), (long long)(w >> 32)};
    return s->x->constant_i64(s->x, "w", v, 2);
}

/* The id x's (.., 1) count of decimal digits and the digits (.., 19),
 * most significant last, of -|x| (x <= 0 always fits). */
static const char *digits(sip *s, const char *x, const char **count)
{
    long long p10[19];
    p10[0] = 1;
    for (int k = 1; k < 19; k++)
        p10[k] = p10[k - 1] * 10;
    const char *sel[3] = {mimo_onnx_op2(s->x, "Greater", x, i64(s, 0)),
                          mimo_onnx_op1(s->x, "Neg", x), x};
    const char *npos = sel[0] && sel[1] ? s->x->op(s->x, "Where", sel, 3, NULL, 0) : NULL;
    const char *q = mimo_onnx_op2(s->x, "Div", op(s, "Unsqueeze", 2, npos, s->last, NULL),
                                  s->x->constant_i64(s->x, "pow10", p10, 19));
    const char *ten = i64(s, 10);
    const char *d = mimo_onnx_op2(s->x, "Sub",
                                  mimo_onnx_op2(s->x, "Mul",
                                                mimo_onnx_op2(s->x, "Div", q, ten), ten),
                                  q);
    const mimo_onnx_attr to = {.name = "to", .type = MIMO_ONNX_INT, .i = 7}; /* int64 */
    const char *nz = op(s, "Cast", 1, mimo_onnx_op1(s->x, "Not",
                                                 mimo_onnx_op2(s->x, "Equal", q, i64(s, 0))),
                        NULL, &to);
    const char *in[2] = {nz, s->last};
    const char *n = nz && in[1] ? s->x->op(s->x, "ReduceSum", in, 2, NULL, 0) : NULL;
    *count = mimo_onnx_op2(s->x, "Max", n, i64(s, 1)); /* 0 has one digit */
    return d;
}

/* The 24 bytes (.., 24) SipHash reads for x's text of len bytes (.., 1):
 * the text, zeros, and in the last word's top byte the length. */
static const char *message(sip *s, const char *x, const char **len)
{
    const char *nd, *d = digits(s, x, &nd);
    const mimo_onnx_attr to = {.name = "to", .type = MIMO_ONNX_INT, .i = 7}; /* int64 */
    const char *neg = op(s, "Cast", 1, mimo_onnx_op2(s->x, "Less",
                                                  op(s, "Unsqueeze", 2, x, s->last, NULL),
                                                  i64(s, 0)), NULL, &to);
    *len = mimo_onnx_op2(s->x, "Add", nd, neg);
    long long pos[24];
    for (int j = 0; j < 24; j++)
        pos[j] = j;
    const char *j = s->x->constant_i64(s->x, "pos", pos, 24);
    const char *t = mimo_onnx_op2(s->x, "Sub", j, neg); /* the digit's place */
    const char *k = mimo_onnx_op2(s->x, "Sub", mimo_onnx_op2(s->x, "Sub", nd, i64(s, 1)), t);
    k = mimo_onnx_op2(s->x, "Max", mimo_onnx_op2(s->x, "Min", k, i64(s, 18)), i64(s, 0));
    const mimo_onnx_attr ax = {.name = "axis", .type = MIMO_ONNX_INT, .i = -1};
    const char *ch = mimo_onnx_op2(s->x, "Add", op(s, "GatherElements", 2, d, k, &ax),
                                   i64(s, '0'));
    const char *sign[3] = {mimo_onnx_op2(s->x, "Less", t, i64(s, 0)), i64(s, '-'), ch};
    const char *text = sign[0] && sign[2] ? s->x->op(s->x, "Where", sign, 3, NULL, 0) : NULL;
    const char *top = mimo_onnx_op2(s->x, "Add", mimo_onnx_op2(
                                        s->x, "Mul", mimo_onnx_op2(s->x, "Div", *len, i64(s, 8)),
                                        i64(s, 8)), i64(s, 7));
    const char *tail[3] = {mimo_onnx_op2(s->x, "Equal", j, top), *len, i64(s, 0)};
    const char *rest = tail[0] && tail[1] ? s->x->op(s->x, "Where", tail, 3, NULL, 0) : NULL;
    const char *all[3] = {mimo_onnx_op2(s->x, "Less", j, *len), text, rest};
    return all[0] && text && rest ? s->x->op(s->x, "Where", all, 3, NULL, 0) : NULL;
}

/* The message's 3 words as limbs, (.., 3, 2), from its bytes (.., 24). */
static const char *words(sip *s, const mimo_node *n, const char *bytes)
{
    long long shape[MIMO_MAX_RANK + 4], r = 0, scale[4] = {1, 256, 65536, 16777216};
    shape[r++] = 0; /* N, copied */
    for (int a = 0; a < n->shape.rank; a++)
        shape[r++] = n->shape.dim[a];
    shape[r++] = 3, shape[r++] = 2, shape[r++] = 4;
    const char *b4 = mimo_onnx_op2(s->x, "Reshape", bytes,
                                   s->x->constant_i64(s->x, "shape", shape, (int)r));
    const mimo_onnx_attr keep = {.name = "keepdims", .type = MIMO_ONNX_INT, .i = 0};
    const char *in[2] = {mimo_onnx_op2(s->x, "Mul", b4,
                                       s->x->constant_i64(s->x, "byte", scale, 4)),
                         s->last};
    return in[0] && in[1] ? s->x->op(s->x, "ReduceSum", in, 2, &keep, 1) : NULL;
}

/* Each id's SipHash as limbs (.., 2). */
static const char *siphash(sip *s, const mimo_node *n, const char *x, uint64_t key)
{
    const char *len, *m = words(s, n, message(s, x, &len));
    const char *v[4] = {word(s, key ^ 0x736f6d6570736575ULL),
                        word(s, key ^ 0x646f72616e646f6dULL),
                        word(s, key ^ 0x6c7967656e657261ULL),
                        word(s, key ^ 0x7465646279746573ULL)};
    const char *after[3][4];
    const mimo_onnx_attr ax = {.name = "axis", .type = MIMO_ONNX_INT, .i = -2};
    for (int b = 0; b < 3; b++) { /* every word; the length picks below */
        const char *w = op(s, "Gather", 2, m, i64(s, b), &ax);
        v[3] = xor64(s, v[3], w);
        sipround(s, v);
        sipround(s, v);
        v[0] = xor64(s, v[0], w);
        for (int i = 0; i < 4; i++)
            after[b][i] = v[i];
    }
    const char *last = mimo_onnx_op2(s->x, "Div", len, i64(s, 8)); /* the final word */
    const char *one = mimo_onnx_op2(s->x, "Equal", last, i64(s, 1));
    const char *none = mimo_onnx_op2(s->x, "Equal", last, i64(s, 0));
    for (int i = 0; i < 4; i++) {
        const char *w2[3] = {one, after[1][i], after[2][i]};
        const char *later = one && w2[1] && w2[2] ? s->x->op(s->x, "Where", w2, 3, NULL, 0)
                                                  : NULL;
        const char *w1[3] = {none, after[0][i], later};
        v[i] = none && w1[1] && later ? s->x->op(s->x, "Where", w1, 3, NULL, 0) : NULL;
    }
    v[2] = xor64(s, v[2], word(s, 0xff));
    for (int r = 0; r < 4; r++)
        sipround(s, v);
    return xor64(s, xor64(s, v[0], v[1]), xor64(s, v[2], v[3]));
}

static const char *hashing_onnx(mimo_onnx *x, const mimo_graph *g, const mimo_node *n,
                                const char *const *in, char *err, size_t len)
{
    (void)err, (void)len;
    const hashing_args *a = n->args;
    long long p2[32], last = -1, swap[2] = {1, 0}, low[2] = {0, 0}, z1[2] = {0, 1};
    for (int k = 0; k < 32; k++)
        p2[k] = 1LL << k;
    sip s = {x, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    s.two32 = i64(&s, TWO32);
    s.two = i64(&s, 2);
    s.pow2 = x->constant_i64(x, "pow2", p2, 32);
    s.swap = x->constant_i64(x, "swap", swap, 2);
    s.low_twice = x->constant_i64(x, "low", low, 2);
    s.zero_one = x->constant_i64(x, "zero_one", z1, 2);
    s.last = x->constant_i64(x, "last", &last, 1);
    const mimo_onnx_attr to = {.name = "to", .type = MIMO_ONNX_INT, .i = 7}; /* int64 */
    const char *id = mimo_node_wide(g, MIMO_PARENT(g, n, 0)) ? in[0]
                                                              : op(&s, "Cast", 1, in[0], NULL, &to);
    const char *h = siphash(&s, n, id, (uint64_t)a->salt);
    long long bins = a->mask_value != NO_MASK ? a->num_bins - 1 : a->num_bins;
    const char *B = i64(&s, bins);
    /* (high 2^32 + low) mod B, in int64: high mod B < 2^24, 2^32 mod B < 2^24 */
    const char *hi = gather(&s, h, i64(&s, 1)), *lo = gather(&s, h, i64(&s, 0));
    const char *bin = mimo_onnx_op2(x, "Mod", mimo_onnx_op2(x, "Add", mimo_onnx_op2(
        x, "Mul", mimo_onnx_op2(x, "Mod", hi, B), i64(&s, TWO32 % bins)), lo), B);
    if (a->mask_value == NO_MASK)
        return bin;
    const char *w[3] = {mimo_onnx_op2(x, "Equal", id, i64(&s, a->mask_value)), i64(&s, 0),
                        mimo_onnx_op2(x, "Add", bin, i64(&s, 1))};
    return w[0] && w[2] ? x->op(x, "Where", w, 3, NULL, 0) : NULL;
}

const mimo_kind mimo_kind_hashing = {
    .name = "hashing",
    .args = hashing_keys,
    .n_args = (int)(sizeof hashing_keys / sizeof *hashing_keys),
    .args_size = sizeof(hashing_args),
    .defaults = hashing_defaults,
    .finish = hashing_finish,
    .dot_shape = "box",
    .infer = hashing_infer,
    .forward = hashing_forward,
    .backward = hashing_backward,
    .id_bound = hashing_id_bound,
    .ids_out = hashing_ids_out,
    .describe = hashing_describe,
    .onnx = hashing_onnx,
};
