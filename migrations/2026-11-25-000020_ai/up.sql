-- AI generation (docs/spec.md §8): what the worker records beyond the init schema.

-- Why a task was generated (missing, forced, stale, low quality) or skipped.
ALTER TABLE ai_tasks ADD COLUMN reason text;
-- Which selection built the batch ({"ids": …}, {"import_id": …}, {"filter": …}), for operators.
ALTER TABLE ai_batches ADD COLUMN selection jsonb;
-- The validator's findings: the rules a repair fixed, or why the text was rejected.
ALTER TABLE ai_generations ADD COLUMN validation_notes text;
ALTER TABLE ai_generations ADD CONSTRAINT ai_generations_validation_check
    CHECK (validation IN ('valid', 'repaired', 'rejected'));
-- The regeneration policy asks "when was this kind last generated for this target?".
CREATE INDEX ai_generations_task_idx ON ai_generations (task_id);
