/* window.h — what conv.c and pool.c share: a window sliding over a
 * channels-last (height, width, channels) sample — or a (timesteps,
 * features) sequence, which is one row of width timesteps — its output
 * size and padding by Keras' (TensorFlow's) arithmetic, and the checks of
 * infer with their messages. */
#ifndef MIMO_CORE_LAYERS_WINDOW_H
#define MIMO_CORE_LAYERS_WINDOW_H

#include "core/kind.h"

/* Keras' names for padding (MIMO_ARG_CHOICE): index 0 valid, 1 same; the
 * 1-D kinds also take 2 causal. */
enum { MIMO_PAD_VALID, MIMO_PAD_SAME, MIMO_PAD_CAUSAL };
extern const char *const mimo_window_paddings[];
extern const char *const mimo_window_paddings1d[];

/* The geometry of a window over an (in_h, in_w, c) sample, its taps dil
 * apart along the width (dilation: a window of kw taps spans
 * (kw - 1) dil + 1 columns; 1 in 2-D):
 *   valid:  out = floor((in - span) / s) + 1, no padding (in >= span);
 *   same:   out = ceil(in / s), total = max((out - 1) s + span - in, 0)
 *           zeros (or, for max pooling, nothing) around the input,
 *           total / 2 before it and the rest after (the extra one at the
 *           bottom or right, as TensorFlow: asymmetric when total is odd);
 *   causal: (1-D) span - 1 zeros before the input, none after: output t
 *           sees inputs up to t s only; out = ceil(in / s).
 * Output (oy, ox) reads input rows oy sh - pad_top + i, i in [0, kh),
 * and columns ox sw - pad_left + j dil, j in [0, kw); those outside the
 * input are padding. A sequence (T, C) is the image (1, T, C). */
typedef struct {
    int in_h, in_w, c;
    int kh, kw, sh, sw;
    int out_h, out_w;
    int pad_top, pad_left;
    int dil;
} mimo_window;

/* The (kh, kw) or (sh, sw) pair of a kind's int-or-pair setting (Keras:
 * 3 means (3, 3)); v->n 0 gives dflt. -1 and a message naming the key if
 * it has more than two values. */
int mimo_window_pair(const mimo_ints *v, const mimo_ints *dflt, const char *key,
                     int pair[2], char *err, size_t len);
/* The one value of a 1-D kind's setting (Keras: 3 or [3]); v->n 0: dflt.
 * -1 and a message naming the key if it has more. */
int mimo_window_one(const mimo_ints *v, const mimo_ints *dflt, const char *key,
                    int *out, char *err, size_t len);

/* For infer: n's one input must be a (height, width, channels) sample and
 * the window (kh, kw) must fit it (with padding 0: valid, 1: same); fills
 * w. what names the window in messages ("kernel", "pool_size"). On an
 * error writes a message naming the layer and its input and returns -1. */
int mimo_window_infer(mimo_graph *g, mimo_node *n, const int k[2],
                      const int s[2], int same, const char *what,
                      mimo_window *w, char *err, size_t len);
/* The same for a 1-D kind: n's one input must be a (timesteps, features)
 * sequence; window k taps dil apart, stride s, padding MIMO_PAD_*. */
int mimo_window_infer1d(mimo_graph *g, mimo_node *n, int k, int s, int dil,
                        int pad, const char *what, mimo_window *w, char *err,
                        size_t len);

/* The ONNX operator op (Conv, MaxPool, AveragePool) of window w on the
 * channels-last value x (N, h, w, c): transposed to channels first and
 * back around it, with w's kernel, strides, dilation and padding (valid,
 * same, causal) as explicit pads; more[0, n_more) are its inputs after x
 * (Conv's weight and bias). A 1-D window's x is the sequence as the image
 * (N, 1, T, C): mimo_window_onnx_seq. */
const char *mimo_window_onnx(mimo_onnx *o, const mimo_window *w, const char *op,
                             const char *x, const char *const *more, int n_more);
/* The same for node n's window over its input x, an image or a sequence
 * (T, C) seen as (1, T, C); the result has n's shape. */
const char *mimo_window_onnx_node(mimo_onnx *o, const mimo_graph *g, const mimo_node *n,
                                  const mimo_window *w, const char *op, const char *x,
                                  const char *const *more, int n_more);

#endif
