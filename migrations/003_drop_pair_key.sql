-- Pairing for R_L(B) and Table 3 is decided by the analysis from each job's config (server/
-- analysis.cpp), so the key stored at submit time is gone: one definition, not two.
ALTER TABLE jobs DROP COLUMN pair_key;
