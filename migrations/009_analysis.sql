-- How the results choose each row's lr for R_L(B) (sweep_file/analysis_spec.h), fixed with the
-- sweep: its analysis section as JSON. '' (sweeps stored before it existed): the defaults.
ALTER TABLE sweeps ADD COLUMN analysis TEXT NOT NULL DEFAULT '';
