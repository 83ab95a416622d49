DROP INDEX IF EXISTS ai_generations_task_idx;
ALTER TABLE ai_generations DROP CONSTRAINT IF EXISTS ai_generations_validation_check;
ALTER TABLE ai_generations DROP COLUMN IF EXISTS validation_notes;
ALTER TABLE ai_batches DROP COLUMN IF EXISTS selection;
ALTER TABLE ai_tasks DROP COLUMN IF EXISTS reason;
