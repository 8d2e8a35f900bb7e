/* window.h — what conv2d.c and pool2d.c share: a 2-D window sliding over
 * a channels-last (height, width, channels) sample, its output size and
 * padding by Keras' (TensorFlow's) arithmetic, and the checks of infer
 * with their messages. */
#ifndef MIMO_CORE_LAYERS_WINDOW_H
#define MIMO_CORE_LAYERS_WINDOW_H

#include "core/kind.h"

/* Keras' names for padding (MIMO_ARG_CHOICE): index 0 valid, 1 same. */
extern const char *const mimo_window_paddings[];

/* The geometry of a window over an (in_h, in_w, c) sample:
 *   valid: out = floor((in - k) / s) + 1, no padding (in >= k);
 *   same:  out = ceil(in / s), total = max((out - 1) s + k - in, 0) zeros
 *          (or, for max pooling, nothing) around the input, total / 2
 *          before it and the rest after (the extra one at the bottom or
 *          right, as TensorFlow: asymmetric when total is odd).
 * Output (oy, ox) reads input rows oy sh - pad_top + i, i in [0, kh),
 * and columns ox sw - pad_left + j, j in [0, kw); those outside the input
 * are padding. */
typedef struct {
    int in_h, in_w, c;
    int kh, kw, sh, sw;
    int out_h, out_w;
    int pad_top, pad_left;
} mimo_window;

/* The (kh, kw) or (sh, sw) pair of a kind's int-or-pair setting (Keras:
 * 3 means (3, 3)); v->n 0 gives dflt. -1 and a message naming the key if
 * it has more than two values. */
int mimo_window_pair(const mimo_ints *v, const mimo_ints *dflt, const char *key,
                     int pair[2], char *err, size_t len);

/* For infer: n's one input must be a (height, width, channels) sample and
 * the window (kh, kw) must fit it (with padding 0: valid, 1: same); fills
 * w. what names the window in messages ("kernel", "pool_size"). On an
 * error writes a message naming the layer and its input and returns -1. */
int mimo_window_infer(mimo_graph *g, mimo_node *n, const int k[2],
                      const int s[2], int same, const char *what,
                      mimo_window *w, char *err, size_t len);

/* The ONNX operator op (Conv, MaxPool, AveragePool) of window w on the
 * channels-last value x: transposed to channels first and back around
 * it, with w's kernel, strides and Keras' padding as explicit pads;
 * more[0, n_more) are its inputs after x (Conv's weight and bias). */
const char *mimo_window_onnx(mimo_onnx *o, const mimo_window *w, const char *op,
                             const char *x, const char *const *more, int n_more);

#endif
