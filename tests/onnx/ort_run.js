// ort_run.js — runs an ONNX model in onnxruntime (npm's onnxruntime-node,
// the CPU runtime; nobody here wrote it) on inputs prepared by the tests:
//   node ort_run.js MODEL.onnx DIR
// DIR/inputs.json lists {name, dtype: "float32"|"int32"|"int64", dims, file}; each
// file holds the values, little-endian. Writes DIR/<output>.bin (float32)
// and DIR/outputs.json ({name: dims}). The module is found through
// NODE_PATH (the tests install it with npm --ignore-scripts).
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

async function main() {
  const [model, dir] = process.argv.slice(2);
  const spec = JSON.parse(fs.readFileSync(path.join(dir, 'inputs.json'), 'utf8'));
  const feeds = {};
  for (const t of spec) {
    const buf = fs.readFileSync(path.join(dir, t.file));
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
    const data = t.dtype === 'int32' ? new Int32Array(ab)
               : t.dtype === 'int64' ? new BigInt64Array(ab) : new Float32Array(ab);
    feeds[t.name] = new ort.Tensor(t.dtype, data, t.dims);
  }
  const s = await ort.InferenceSession.create(model, {intraOpNumThreads: 1,
                                                     interOpNumThreads: 1});
  const out = await s.run(feeds);
  const dims = {};
  for (const [name, t] of Object.entries(out)) {
    fs.writeFileSync(path.join(dir, name + '.bin'), Buffer.from(t.data.buffer,
                     t.data.byteOffset, t.data.byteLength));
    dims[name] = t.dims;
  }
  fs.writeFileSync(path.join(dir, 'outputs.json'), JSON.stringify(dims));
}

main().catch((e) => { console.error('ort_run: ' + (e && e.message || e)); process.exit(1); });
