// Training steps as a worker reports them (proto MetricPoint), for tests that feed the store:
// step_point's arguments follow the kept step fields' order (trainer_core/train/
// record_fields.h), and server::step_series turns points into the series the store takes.
#pragma once

#include <cstdint>

#include "orchestrator.pb.h"
#include "server/api/step_series.h"

inline orchestrator::v1::MetricPoint step_point(int64_t step, double train_loss, double lr = 0,
                                                double grad_norm = 0, double tokens = 0,
                                                double elapsed_s = 0, bool loss_spike = false) {
  orchestrator::v1::MetricPoint p;
  p.set_step(step);
  p.set_train_loss(train_loss);
  p.set_lr(lr);
  p.set_grad_norm(grad_norm);
  p.set_tokens(tokens);
  p.set_elapsed_s(elapsed_s);
  p.set_loss_spike(loss_spike);
  return p;
}
