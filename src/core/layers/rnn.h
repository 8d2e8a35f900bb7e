/* rnn.h — one recurrent layer (gru or lstm) as rnn.c runs it, for the
 * kinds that hold one: gru and lstm themselves (one each) and
 * bidirectional (two, a forward and a backward copy of the layer it
 * wraps, whose tensors sit side by side in its node). A mimo_rnn reads
 * its input, mask and output gradient from pointers given per call and
 * its parameters as the tensors [t0, t0 + 3) of the node holding it, so
 * the holder decides where its data lives. */
#ifndef MIMO_CORE_LAYERS_RNN_H
#define MIMO_CORE_LAYERS_RNN_H

#include "core/kind.h"

/* gru's and lstm's settings (Keras' keys; rnn.c's arg tables) */
typedef struct {
    int units;
    mimo_act activation, recurrent_activation;
    int use_bias, return_sequences, go_backwards, unit_forget_bias, reset_after;
    int zero_output_for_mask;
    mimo_init kernel_initializer, recurrent_initializer, bias_initializer;
} mimo_rnn_args;

/* One layer's shape, settings and buffers (rnn.c explains the layout). */
typedef struct {
    int lstm, T, d, u, G, seq, back, use_bias;
    int zero;              /* zero_output_for_mask */
    int t0;                /* its first tensor in the node's tensors */
    mimo_act act, ract;
    mimo_real alpha, ralpha;
    mimo_real *xt, *pre, *gate, *hp, *h, *c, *tc; /* forward, see rnn.c */
    mimo_real *dgx, *dgh;  /* (T, b, G) the gates' gradients: input side,
                            * recurrent side (lstm: the same buffer) */
    mimo_real *raw;        /* (b, G) a step's gradients before act' */
    mimo_real *dh, *dh2, *dc, *tmp; /* (b, u) */
    mimo_real *dxt;        /* (T, b, d) the input's gradient, reordered */
    mimo_real *m;          /* (T, b) the mask in step order */
    mimo_real *mask_out;   /* (b, T) go_backwards with return_sequences: the
                            * mask of the output, in step order (NULL: not
                            * made) */
    int dx;                /* the input takes a gradient */
} mimo_rnn;

/* The layer of settings a (lstm: 0 gru, 1 lstm) over the input p: checks
 * p is a sequence, sets d and declares its three tensors on n under
 * names[0..2] (kernel, recurrent_kernel, bias; no bias without use_bias).
 * On an error a message naming n into err, -1. */
int mimo_rnn_infer(mimo_rnn *d, mimo_node *n, const mimo_rnn_args *a, int lstm,
                   const mimo_node *p, const char *const names[3], char *err,
                   size_t len);
/* lstm's unit_forget_bias: the forget gate's bias starts at 1. */
void mimo_rnn_init(const mimo_rnn *d, const mimo_node *n, const mimo_rnn_args *a,
                   mimo_real *params);
/* Its work buffers; own_mask: it makes the reversed mask (mask_out);
 * train: backward's buffers too; dx: the input takes a gradient. */
void mimo_rnn_buffers(mimo_rnn *d, const mimo_graph *g, mimo_arena *a, int own_mask,
                      int train, int dx);
/* y (b, T, u) or (b, u) from x (b, T, d) and its mask (b, T) or NULL. */
void mimo_rnn_forward(mimo_rnn *d, const mimo_node *n, const mimo_real *params,
                      const mimo_real *x, const mimo_real *mask, mimo_real *y, int b);
/* From dy (y's shape): adds into grads and into dx (x's shape; NULL when
 * the input takes no gradient). */
void mimo_rnn_backward(mimo_rnn *d, const mimo_node *n, const mimo_real *params,
                       mimo_real *grads, const mimo_real *dy, mimo_real *dx, int b);
/* Matrix-product flops of one sample; the extra buffers' values (rnn.c). */
double mimo_rnn_flops(const mimo_rnn *d, int dx);
size_t mimo_rnn_scratch(const mimo_rnn *d, size_t b, int own_mask, int dx);
/* The layer on the value in as ONNX operators (the builder's mask, when
 * set, is read: x->mask_used); never sets x->mask_out. */
const char *mimo_rnn_onnx(mimo_onnx *x, const mimo_node *n, const mimo_rnn *d,
                          const char *in);
/* v (N, T, ...) reversed along time, as an ONNX Slice. */
const char *mimo_rnn_onnx_reversed(mimo_onnx *x, const char *v);

#endif
