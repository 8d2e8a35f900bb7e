#!/usr/bin/env bash
# config_errors.sh — bad configs and bad flags at the command line: one
# "mimo: error:" line naming the file (and line:col), exit code 1; usage
# errors exit 2. The parser's cases in detail: tests/test_config.c.
source "$(dirname "$0")/lib.bash"

config empty ''
expect 1 "empty.yaml: empty config, expected a mapping with inputs, layers, outputs" summary "$TMP/empty.yaml"
config notyaml 'inputs: [a'
expect 1 "notyaml.yaml:2:1: not valid YAML" summary "$TMP/notyaml.yaml"
config typo 'inputs: {x: {shape: 2}}
layers:
  h: {type: dense, unit: 3, from: x}
outputs: {h: {loss: mse}}'
expect 1 "typo.yaml:3:20: unknown key 'unit' in layer 'h'" summary "$TMP/typo.yaml"
expect 1 "did you mean 'units'?" summary "$TMP/typo.yaml"
config wrongtype 'inputs: {x: {shape: 2}}
layers:
  h: {type: dense, units: abc, from: x}
outputs: {h: {loss: mse}}'
expect 1 "wrongtype.yaml:3:27: expected an integer > 0 for 'units' in layer 'h', got 'abc'" summary "$TMP/wrongtype.yaml"
config noloss 'inputs: {x: {shape: 2}}
layers:
  h: {type: dense, units: 3, from: x}
outputs: {h: {weight: 2}}'
expect 1 "noloss.yaml:4:11: output 'h' has no 'loss'" summary "$TMP/noloss.yaml"
config badact 'inputs: {x: {shape: 2}}
layers:
  h: {type: dense, units: 3, activation: rleu, from: x}
outputs: {h: {loss: mse}}'
expect 1 "badact.yaml:3:42: unknown activation 'rleu'" summary "$TMP/badact.yaml"
cfg=$SRC/configs/seed-mimo.yaml
expect 1 "seed-mimo.yaml: --set train.optimizer.lrr: unknown key 'lrr'" summary "$cfg" --set train.optimizer.lrr=3
expect 1 "--set 'junk': expected KEY.PATH=VALUE" dot "$cfg" --set junk
expect 2 "--set needs KEY.PATH=VALUE" summary "$cfg" --set
expect 1 "missing.yaml" dot "$TMP/missing.yaml"
finish
