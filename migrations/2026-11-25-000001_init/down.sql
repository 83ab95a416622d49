DROP TABLE IF EXISTS webhooks, rate_limits, ai_generations, ai_tasks, ai_batches, outbox, import_touched,
    import_errors, import_jobs, file_chunks, stored_files, api_tokens, users, prolocalisations,
    entreprises, villes, naf_sous_categories, sous_categories, categories, naf_codes CASCADE;
