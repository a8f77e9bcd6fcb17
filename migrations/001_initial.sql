-- Sweeps, their jobs, workers, and every run's curves and summary.
CREATE TABLE sweeps (
  id               INTEGER PRIMARY KEY,
  name             TEXT    NOT NULL,
  spec             TEXT    NOT NULL,          -- the submitted file, verbatim
  priority         INTEGER NOT NULL,
  max_concurrency  INTEGER NOT NULL,          -- 0: unlimited
  targets          TEXT    NOT NULL,          -- JSON list of target losses
  baseline         TEXT    NOT NULL,          -- label of the baseline row
  submitted_ms     INTEGER NOT NULL
);

CREATE TABLE jobs (
  id               INTEGER PRIMARY KEY,
  sweep_id         INTEGER NOT NULL REFERENCES sweeps(id),
  idx              INTEGER NOT NULL,          -- position in the expansion (submit order)
  label            TEXT    NOT NULL,          -- ablation and grid values, seeds share it
  ablation         TEXT    NOT NULL,
  seed             INTEGER NOT NULL,
  optimizer        TEXT    NOT NULL,
  batch_tokens     INTEGER NOT NULL,
  pair_key         TEXT    NOT NULL,          -- equal for runs that differ only by optimizer
  config_hash      TEXT    NOT NULL,
  config           TEXT    NOT NULL,          -- TrainConfig JSON
  backend          TEXT    NOT NULL,          -- cpu | cuda
  gpus             INTEGER NOT NULL,
  state            TEXT    NOT NULL,          -- PENDING ASSIGNED RUNNING SUCCEEDED FAILED DIVERGED CANCELLED
  attempt          INTEGER NOT NULL DEFAULT 0,
  failures         INTEGER NOT NULL DEFAULT 0, -- lost leases and crashes; hand-backs do not count
  max_attempts     INTEGER NOT NULL,
  worker_id        TEXT,
  lease_expiry_ms  INTEGER,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  step             INTEGER NOT NULL DEFAULT 0,
  max_steps        INTEGER NOT NULL,
  last_train_loss  REAL,
  last_val_loss    REAL,
  spikes           INTEGER NOT NULL DEFAULT 0,
  message          TEXT    NOT NULL DEFAULT '',
  updated_ms       INTEGER NOT NULL
);
CREATE INDEX jobs_by_sweep ON jobs(sweep_id, idx);
CREATE INDEX jobs_by_state ON jobs(state);

CREATE TABLE workers (
  id                TEXT PRIMARY KEY,
  hostname          TEXT    NOT NULL,
  backend           TEXT    NOT NULL,
  gpus              INTEGER NOT NULL,
  slots             INTEGER NOT NULL,
  devices           TEXT    NOT NULL,         -- JSON
  state             TEXT    NOT NULL,         -- active | draining | lost
  last_heartbeat_ms INTEGER NOT NULL
);

-- Curves: one row per (job, step); a repeated or resumed write replaces, never duplicates.
CREATE TABLE metric_points (
  job_id     INTEGER NOT NULL,
  step       INTEGER NOT NULL,
  train_loss REAL,
  lr         REAL,
  grad_norm  REAL,
  tokens     REAL,
  elapsed_s  REAL,
  spike      INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (job_id, step)
) WITHOUT ROWID;

CREATE TABLE eval_points (
  job_id    INTEGER NOT NULL,
  step      INTEGER NOT NULL,
  val_loss  REAL,
  tokens    REAL,
  elapsed_s REAL,
  PRIMARY KEY (job_id, step)
) WITHOUT ROWID;

CREATE TABLE run_summaries (
  job_id  INTEGER PRIMARY KEY,
  attempt INTEGER NOT NULL,
  summary TEXT    NOT NULL                    -- the trainer's RunSummary JSON
);
