-- Run logs (storage/log_store.h, docs/sweeps.md "Run logs"): what each attempt of a job wrote
-- to stdout and stderr, shipped by its worker in chunks. Bounded per attempt: the first
-- 64 KiB (head) and the last 192 KiB (tail) are kept; the middle of a longer log is counted,
-- not kept. tail holds bytes [total_bytes - length(tail), total_bytes).
CREATE TABLE job_logs (
  job_id      INTEGER NOT NULL,
  attempt     INTEGER NOT NULL,
  head        BLOB    NOT NULL,
  tail        BLOB    NOT NULL,
  total_bytes INTEGER NOT NULL,
  PRIMARY KEY (job_id, attempt)
);
