"""compare.py — an exported ONNX model against mimo predict on the same rows.

    compare.py MODEL.onnx DATA.h5 PRED.h5 ROWS ORT_RUN.js [TOL]

Checks the model with ONNX's checker (full_check: types and shapes
inferred), feeds the first ROWS rows of DATA.h5's datasets named as the
model's inputs to onnxruntime (ort_run.js, node), and compares each head's
output with PRED.h5's (mimo predict's): the largest difference relative to
the largest magnitude of mimo's output must be at most TOL (1e-5).
Prints one line per head. Exit 1 on any failure."""
import json, os, subprocess, sys, tempfile

import h5py
import numpy as np
import onnx

model, data, pred, rows, runner = sys.argv[1:6]
tol = float(sys.argv[6]) if len(sys.argv) > 6 else 1e-5
rows = int(rows)

m = onnx.load(model)
onnx.checker.check_model(m, full_check=True)
types = {onnx.TensorProto.FLOAT: ('float32', 'f4'), onnx.TensorProto.INT32: ('int32', 'i4'),
         onnx.TensorProto.INT64: ('int64', 'i8')}
work = tempfile.mkdtemp()
spec = []
with h5py.File(data, 'r') as f:
    for i in m.graph.input:
        t = i.type.tensor_type
        dtype, np_type = types[t.elem_type]
        dims = [d.dim_value for d in t.shape.dim[1:]]
        assert t.shape.dim[0].dim_param, f'{i.name}: the batch axis is not dynamic'
        x = f[i.name][:rows].astype(np_type).reshape([-1] + dims)
        x.tofile(os.path.join(work, i.name + '.in'))
        spec.append({'name': i.name, 'dtype': dtype, 'dims': list(x.shape),
                     'file': i.name + '.in'})
json.dump(spec, open(os.path.join(work, 'inputs.json'), 'w'))
r = subprocess.run(['node', runner, model, work], capture_output=True, text=True)
if r.returncode:
    sys.exit('onnxruntime failed: ' + r.stderr.strip())
dims = json.load(open(os.path.join(work, 'outputs.json')))
bad = 0
with h5py.File(pred, 'r') as p:
    for o in m.graph.output:
        want = p[o.name][:rows].astype('f8').reshape(len(x), -1)
        got = np.fromfile(os.path.join(work, o.name + '.bin'), 'f4').reshape(dims[o.name])
        got = got.astype('f8').reshape(len(x), -1)
        scale = np.max(np.abs(want))
        rel = np.max(np.abs(got - want)) / scale if scale > 0 else np.inf
        varied = np.ptp(want) > 0
        ok = got.shape == want.shape and np.isfinite(got).all() and rel <= tol and varied
        print(f'  {o.name}: {got.shape[0]} rows x {got.shape[1]}, max relative '
              f'difference {rel:.2e}{"" if ok else "  FAIL"}')
        bad += not ok
sys.exit(1 if bad else 0)
