-- Workers on demand (server/provisioning/provisioner.h). Every allocation the coordinator asks a
-- cluster engine (Slurm, Kubernetes) for is a row, written before the engine is asked, under a
-- name unique to this database (sweep-<tag>-<id>): after a crash between the row and the
-- engine's answer, a restart finds the allocation in the engine's queue by its name instead of
-- asking twice, and any allocation of this tag the engine has but no open row names is cancelled.
CREATE TABLE allocations (
  id               INTEGER PRIMARY KEY,
  engine           TEXT    NOT NULL,              -- slurm | kubernetes
  name             TEXT    NOT NULL UNIQUE,
  engine_id        TEXT    NOT NULL DEFAULT '',   -- Slurm's job id, the Kubernetes Job's name; '' until asked
  state            TEXT    NOT NULL,              -- requested | queued | running | ended | failed
  backend          TEXT    NOT NULL,              -- cpu | cuda: the workers it starts
  nodes            INTEGER NOT NULL,
  slots_per_node   INTEGER NOT NULL,
  gpus_per_node    INTEGER NOT NULL,
  reason           TEXT    NOT NULL,              -- why the coordinator asked for it
  engine_reason    TEXT    NOT NULL DEFAULT '',   -- the engine's latest word: queue reason, failure
  cancel_requested INTEGER NOT NULL DEFAULT 0,    -- the coordinator withdrew it (no demand left)
  requested_ms     INTEGER NOT NULL,
  updated_ms       INTEGER NOT NULL,
  ended_ms         INTEGER
);
CREATE INDEX allocations_open ON allocations(state) WHERE state IN ('requested', 'queued', 'running');
-- The allocation a worker was started by ('' for a worker started by hand). workers.state gains
-- 'left': a worker that said it leaves and holds no job (an idle provisioned worker's exit).
ALTER TABLE workers ADD COLUMN allocation TEXT NOT NULL DEFAULT '';
-- This database's tag in allocation names, so that two coordinators on one cluster never take
-- each other's allocations for orphans.
CREATE TABLE coordinator_identity (tag TEXT NOT NULL);
INSERT INTO coordinator_identity SELECT lower(hex(randomblob(4)));
