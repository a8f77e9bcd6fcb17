-- Training curves pre-aggregated in blocks of 10 steps, maintained with every metrics write, so
-- that a downsampled read of long curves touches a tenth of the rows.
CREATE TABLE curve_blocks (
  job_id     INTEGER NOT NULL,
  block      INTEGER NOT NULL,    -- (step - 1) / 10: block 0 holds steps 1..10
  first_step INTEGER NOT NULL,
  last_step  INTEGER NOT NULL,
  min_loss   REAL,
  max_loss   REAL,
  sum_loss   REAL,
  n          INTEGER NOT NULL,    -- finite losses in the block
  spike      INTEGER NOT NULL,    -- a flagged spike or a non-finite loss
  PRIMARY KEY (job_id, block)
) WITHOUT ROWID;

INSERT INTO curve_blocks
SELECT job_id, (step - 1) / 10, MIN(step), MAX(step), MIN(train_loss), MAX(train_loss), SUM(train_loss),
       COUNT(train_loss), MAX(spike OR train_loss IS NULL)
FROM metric_points WHERE step >= 1 GROUP BY job_id, (step - 1) / 10;
