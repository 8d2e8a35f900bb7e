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
# issue 18's smaller cases: deep nesting is rejected before libyaml (which
# took 35-74 s on it), a --set into a scalar section, ranges with line:col,
# 64-bit seeds printed exactly, the memory a model needs
/usr/bin/python3 -c "print('a: ' + '[' * 100000 + ']' * 100000)" >"$TMP/deep.yaml"
/usr/bin/python3 -c "print(''.join('- ' for _ in range(100000)) + 'x')" >"$TMP/dash.yaml"
/usr/bin/python3 -c "print('\n'.join(' ' * i + 'a:' for i in range(2000)))" >"$TMP/indent.yaml"
start=$SECONDS
expect 1 "deep.yaml:1: nested more than 64 levels deep" train "$TMP/deep.yaml"
expect 1 "dash.yaml:1: nested more than 64 levels deep" train "$TMP/dash.yaml"
expect 1 "indent.yaml:65: nested more than 64 levels deep" train "$TMP/indent.yaml"
check "deep YAML rejected at once ($((SECONDS - start)) s)" test $((SECONDS - start)) -le 60
config scalar_train 'inputs: {x: {shape: 2}}
layers:
  h: {type: dense, units: 3, from: x}
outputs: {h: {loss: mse}}
train: abc'
expect 1 "scalar_train.yaml:5:8: --set train.epochs: 'train' is 'abc', not a mapping" \
    train "$TMP/scalar_train.yaml" --epochs 1
config bigbatch 'inputs: {x: {shape: 2}}
layers:
  h: {type: dense, units: 3, from: x}
outputs: {h: {loss: mse}}
train: {batch_size: 2147483648}'
expect 1 "bigbatch.yaml:5:21: 2147483648 is too large for 'batch_size' in train (expected an integer from 1 to 1073741824)" \
    train "$TMP/bigbatch.yaml"
config units 'inputs: {x: {shape: 2}}
layers:
  h: {type: dense, units: 2147483652, from: x}
outputs: {h: {loss: mse}}'
expect 1 "units.yaml:3:27: 2147483652 is too large for 'units' in layer 'h'" summary "$TMP/units.yaml"
config huge 'inputs: {x: {shape: 20}}
layers:
  h1: {type: dense, units: 60000, activation: relu, from: x}
  h2: {type: dense, units: 60000, activation: relu, from: h1}
  y: {type: dense, units: 1, from: h2}
outputs: {y: {loss: mse}}
train: {optimizer: adam, batch_size: 32, epochs: 0}'
expect 0 "Memory to train: about 57" summary "$TMP/huge.yaml"
expect 1 "huge.yaml: the model needs about 57" train "$TMP/huge.yaml" --out "$TMP/huge"
expect 1 "MB available: use a smaller model or batch, fewer ranks per node, or --force" \
    train "$TMP/huge.yaml" --out "$TMP/huge"
finish
