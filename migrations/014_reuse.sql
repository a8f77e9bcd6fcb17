-- Reuse of finished runs (docs/sweeps.md, "Reusing finished runs"): a job of a sweep submitted
-- with `reuse: true` whose config, lineage, dataset and trainer identity match a SUCCEEDED run
-- of any sweep is not trained again. The trainer that would have run it checks the dataset and
-- its own identity against the finished run's summary; on a match the job ends SUCCEEDED with
-- that run's summary, and its curve is read through that run's (stored once).
CREATE TABLE job_reuse (
  job_id        INTEGER PRIMARY KEY REFERENCES jobs(id),
  source_job_id INTEGER NOT NULL REFERENCES jobs(id)  -- never itself a reused job
);
CREATE INDEX job_reuse_by_source ON job_reuse(source_job_id);

-- Whether the sweep asked for reuse (1) or trains every job (0, the default).
ALTER TABLE sweeps ADD COLUMN reuse INTEGER NOT NULL DEFAULT 0;

-- Candidates are found by config hash.
CREATE INDEX jobs_by_config_hash ON jobs(config_hash);
