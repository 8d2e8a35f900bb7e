#!/usr/bin/env bash
# graph_errors.sh — config errors found when compiling the graph: each
# gives one "mimo: error:" line naming file:line:col, and exit code 1.
source "$(dirname "$0")/lib.bash"

config unknown_from 'inputs: {x: {shape: 2}}
layers:
  h: {type: dense, units: 3, from: xx}
outputs: {h: {loss: mse}}'
expect 1 "unknown_from.yaml:3:36: layer 'h' takes input from 'xx', which is neither an input nor a layer" summary "$TMP/unknown_from.yaml"

config cycle 'inputs: {x: {shape: 2}}
layers:
  a: {type: dense, units: 3, from: [b]}
  b: {type: dense, units: 3, from: a}
  o: {type: dense, units: 1, from: b}
outputs: {o: {loss: mse}}'
expect 1 "cycle.yaml:3:3: cycle: layers 'a', 'b', 'o' depend on each other" summary "$TMP/cycle.yaml"

config merge_shape 'inputs: {x: {shape: 2}, z: {shape: 3}}
layers:
  h: {type: dense, units: 4, from: x}
  s: {type: add, from: [h, z]}
outputs: {s: {loss: mse}}'
expect 1 "merge_shape.yaml:4:3: add layer 's': input 'z' has 3 features but 'h' has 4" summary "$TMP/merge_shape.yaml"

config mask_shape 'inputs: {x: {shape: 2}, mask: {shape: 3}}
layers:
  h: {type: dense, units: 4, from: x}
  p: {type: masked_softmax, from: [h, mask]}
outputs: {p: {loss: mse}}'
expect 1 "mask_shape.yaml:4:3: masked_softmax layer 'p': logits 'h' have 4 features but mask 'mask' has 3" summary "$TMP/mask_shape.yaml"

config head_shape 'inputs: {x: {shape: 2}}
layers:
  h: {type: dense, units: 1, activation: softmax, from: x}
outputs: {h: {loss: categorical_crossentropy}}'
expect 1 "head_shape.yaml:4:11: head 'h': categorical_crossentropy needs at least 2 classes" summary "$TMP/head_shape.yaml"

config unused 'inputs: {x: {shape: 2}}
layers:
  h: {type: dense, units: 4, from: x}
  dead: {type: dense, units: 4, from: x}
outputs: {h: {loss: mse}}'
expect 1 "unused.yaml:4:3: layer 'dead' is not used: no output depends on it" summary "$TMP/unused.yaml"

config unused_input 'inputs: {x: {shape: 2}, y: {shape: 1}}
layers:
  h: {type: dense, units: 4, from: x}
outputs: {h: {loss: mse}}'
expect 1 "unused_input.yaml:1:25: input 'y' is not used" summary "$TMP/unused_input.yaml"

config unknown_head 'inputs: {x: {shape: 2}}
layers:
  h: {type: dense, units: 4, from: x}
outputs: {h: {loss: mse}, hh: {loss: mse}}'
expect 1 "unknown_head.yaml:4:27: output 'hh' is not a layer of the network" summary "$TMP/unknown_head.yaml"

config dense_two 'inputs: {x: {shape: 2}, z: {shape: 2}}
layers:
  h: {type: dense, units: 4, from: [x, z]}
outputs: {h: {loss: mse}}'
expect 1 "dense_two.yaml:3:3: dense layer 'h' takes one input, got 2" summary "$TMP/dense_two.yaml"

expect 1 "(--set) layer 'h' takes input from 'q'" summary "$TMP/dense_two.yaml" --set 'layers.h.from=q'

# cross-entropy takes probabilities, or logits with from_logits (Keras'
# from_logits=True); a relu or linear head is an error that says so
config logits 'inputs: {x: {shape: 2}}
layers:
  h: {type: dense, units: 3, activation: relu, from: x}
  f: {type: flatten, from: h}
outputs: {f: {loss: sparse_categorical_crossentropy}}'
expect 1 "logits.yaml:5:11: head 'f': sparse_categorical_crossentropy needs probabilities, but layer 'h' ends in relu: set from_logits: true on the head (the loss then applies the softmax itself), or end the layer in softmax" summary "$TMP/logits.yaml"
expect 0 "f: sparse_categorical_crossentropy" summary "$TMP/logits.yaml" --set outputs.f.from_logits=true
expect 1 "head 'f': from_logits: true, but layer 'h' ends in sigmoid, which gives probabilities already" summary "$TMP/logits.yaml" --set outputs.f.from_logits=true --set layers.h.activation=sigmoid
expect 1 "key 'from_logits' is only valid with the cross-entropy losses in output 'f'" summary "$TMP/logits.yaml" --set outputs.f.from_logits=true --set outputs.f.loss=mse
finish
