// onnxruntime in a worker thread: onnxruntime-node's session.run holds the event loop of the
// thread that calls it, so the worker runs models here and keeps its own thread free for the
// queue and the chain. One thread per loaded model; runs arrive one at a time.
"use strict";
const { parentPort, workerData } = require("node:worker_threads");
const ort = require("onnxruntime-node");

let session;

ort.InferenceSession.create(workerData.bytes, workerData.options).then(
  (s) => {
    session = s;
    parentPort.postMessage({ kind: "ready", inputNames: s.inputNames, outputNames: s.outputNames });
  },
  (err) =>
    parentPort.postMessage({ kind: "failed", message: err && err.message ? err.message : String(err) }),
);

parentPort.on("message", async ({ id, feeds }) => {
  try {
    const inputs = {};
    for (const f of feeds) inputs[f.name] = new ort.Tensor(f.type, f.data, f.dims);
    const out = await session.run(inputs);
    const outputs = {};
    for (const [name, t] of Object.entries(out))
      outputs[name] = { type: t.type, dims: [...t.dims], data: t.data };
    parentPort.postMessage({ kind: "result", id, outputs });
  } catch (err) {
    parentPort.postMessage({ kind: "error", id, message: err && err.message ? err.message : String(err) });
  }
});
