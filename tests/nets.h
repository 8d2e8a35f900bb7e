/* nets.h — networks several unit tests train. */
#ifndef MIMO_TESTS_NETS_H
#define MIMO_TESTS_NETS_H

/* Inputs and layers of a network with a layer of nearly every kind in
 * its trunk (convolutions, pooling, embedding, batch_norm, gru, lstm,
 * bidirectional, attention with dropout, position_embedding, views,
 * concat, dropout) and two heads on it, y (sigmoid, 1 unit) and k
 * (softmax, 3 units); the test appends its own layers and outputs. */
#define MIMO_TEST_EVERY_KIND_NET                                                   \
    "inputs: {im: {shape: [6, 5, 2]}, v: {shape: 3}, id: {shape: 1, dtype: int32}}\n" \
    "layers:\n"                                                                    \
    "  c: {type: conv2d, filters: 4, kernel_size: 3, padding: same, from: im}\n"  \
    "  p: {type: max_pool2d, pool_size: 2, from: c}\n"                             \
    "  f: {type: flatten, from: p}\n"                                              \
    "  e: {type: embedding, input_dim: 10, output_dim: 3, from: id}\n"             \
    "  ef: {type: flatten, from: e}\n"                                             \
    "  h: {type: dense, units: 8, activation: tanh, from: v}\n"                    \
    "  b: {type: batch_norm, from: h}\n"                                           \
    "  sq: {type: reshape, target_shape: [30, 2], from: im}\n"                     \
    "  c1: {type: conv1d, filters: 3, kernel_size: 3, padding: causal, from: sq}\n" \
    "  r: {type: gru, units: 4, return_sequences: true, from: c1}\n"               \
    "  at: {type: multi_head_attention, num_heads: 2, key_dim: 3, dropout: 0.2, "  \
    "use_causal_mask: true, from: [r, c1]}\n"                                      \
    "  l: {type: lstm, units: 3, go_backwards: true, from: at}\n"                  \
    "  pe: {type: position_embedding, sequence_length: 32, from: c1}\n"            \
    "  bi: {type: bidirectional, layer: {type: gru, units: 2, return_sequences: true}, " \
    "from: pe}\n"                                                                  \
    "  bl: {type: bidirectional, layer: {type: lstm, units: 2}, merge_mode: mul, from: bi}\n" \
    "  cat: {type: concat, from: [f, ef, b, l, bl]}\n"                             \
    "  d: {type: dropout, rate: 0.25, from: cat}\n"                                \
    "  y: {type: dense, units: 1, activation: sigmoid, from: d}\n"                 \
    "  k: {type: dense, units: 3, activation: softmax, from: d}\n"

#endif
