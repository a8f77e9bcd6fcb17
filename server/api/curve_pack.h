// The dashboard's curves in a packed binary form (GET /api/sweeps/ID/curves?format=packed): the
// same SweepCurvesResponse as the JSON answer, 2-3x smaller on the wire after gzip, decoded by
// web/curve_pack.js. Values travel as float32 (7 significant digits: what a chart draws; tables
// and exports keep the stored doubles), steps as exact integers.
//
// Layout, little-endian:
//   "SWC1"                    magic
//   u32 runs                  then per run:
//     f64 job_id
//     steps  train.step       (n: the bucket count)
//     f32s   train.min, train.max, train.mean   (n each)
//     steps  train.spike_steps
//     steps  val.step         (m)
//     f32s   val.val_loss     (m)
//   steps: u32 count, u8 kind, then kind 0: the differences from the previous step (the first
//          from 0) as u32 byte planes; kind 1 (a difference past 2^32-1): f64 steps.
//   f32s / u32 byte planes: all first bytes of the n values, then all second bytes, ... (gzip
//          finds the repeated sign/exponent bytes of a curve's values next to each other).
#pragma once

#include <string>

#include "orchestrator.pb.h"

namespace server {

std::string pack_curves(const orchestrator::v1::SweepCurvesResponse& curves);

}  // namespace server
