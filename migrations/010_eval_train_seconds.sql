-- Each evaluation's training time (evaluations excluded), what time to target counts: with it,
-- targets chosen after the runs (analysis: {targets: from_data}) get a train time to target too.
-- NULL for evaluations stored before it, and from workers older than it.
ALTER TABLE eval_points ADD COLUMN train_s REAL;
