-- Forks (a budget ladder's cooldown rungs, docs/sweeps.md): a job that starts from its parent's
-- checkpoint kept at branch_step and goes on with its own settings. Its curve up to branch_step is
-- the parent's, stored once under the parent and read through; the fork stores only its own steps
-- after it. The parent keeps a checkpoint at every branch_step of its forks: the coordinator adds
-- them to its config at lease time (server/scheduling/job_config.h).
CREATE TABLE job_forks (
  job_id        INTEGER PRIMARY KEY REFERENCES jobs(id),
  parent_job_id INTEGER NOT NULL REFERENCES jobs(id),
  branch_step   INTEGER NOT NULL,
  branch_tokens INTEGER NOT NULL,
  changes       TEXT    NOT NULL   -- JSON {dotted config path: the fork's value}
);
CREATE INDEX job_forks_by_parent ON job_forks(parent_job_id);

-- A sweep's budget ladder (sweep_file/budget_ladder.h) as JSON {tokens, via}; '' for none. The
-- results read each ladder's tokens to target from its rungs' annealed losses.
ALTER TABLE sweeps ADD COLUMN budgets TEXT NOT NULL DEFAULT '';
