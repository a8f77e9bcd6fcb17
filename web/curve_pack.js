// Decodes the packed curves of GET /api/sweeps/ID/curves?format=packed (the layout is written
// once, in server/api/curve_pack.h) into the SweepCurvesResponse shape the JSON answer has:
// {jobs: [{job_id, train: {step, min, max, mean, spike_steps}, val: {step, val_loss}}]}. Values were
// float32 on the wire; NaN becomes null, as in the JSON (a gap in a chart).
"use strict";

function decodePackedCurves(buffer) {
  const view = new DataView(buffer);
  const bytes = new Uint8Array(buffer);
  let at = 0;
  const magic = String.fromCharCode(...bytes.subarray(0, 4));
  if (magic !== "SWC1") throw new Error("packed curves: unknown format " + JSON.stringify(magic));
  at = 4;
  const u32 = () => { const v = view.getUint32(at, true); at += 4; return v; };
  // n 4-byte words stored as 4 byte planes, back into little-endian words.
  const planes = (n) => {
    const words = new Uint8Array(4 * n);
    for (let b = 0; b < 4; b++) {
      const plane = bytes.subarray(at + b * n, at + (b + 1) * n);
      for (let i = 0; i < n; i++) words[4 * i + b] = plane[i];
    }
    at += 4 * n;
    return new DataView(words.buffer);
  };
  const steps = () => {
    const n = u32();
    const kind = view.getUint8(at);
    at += 1;
    const out = new Array(n);
    if (kind === 1) {
      for (let i = 0; i < n; i++, at += 8) out[i] = view.getFloat64(at, true);
      return out;
    }
    const words = planes(n);
    let step = 0;
    for (let i = 0; i < n; i++) out[i] = step += words.getUint32(4 * i, true);
    return out;
  };
  const floats = (n) => {
    const words = planes(n);
    const out = new Array(n);
    for (let i = 0; i < n; i++) {
      const v = words.getFloat32(4 * i, true);
      out[i] = Number.isNaN(v) ? null : v;
    }
    return out;
  };
  const jobs = [];
  for (let runs = u32(), r = 0; r < runs; r++) {
    const job_id = view.getFloat64(at, true);
    at += 8;
    const step = steps();
    const train = { step, min: floats(step.length), max: floats(step.length), mean: floats(step.length) };
    train.spike_steps = steps();
    const valStep = steps();
    jobs.push({ job_id, train, val: { step: valStep, val_loss: floats(valStep.length) } });
  }
  if (at !== buffer.byteLength) throw new Error(`packed curves: ${buffer.byteLength - at} bytes left over`);
  return { jobs };
}
