//! Diesel's view of the tables in `migrations/` (kept by hand; the
//! migrations are the source of truth and the tests run against them).

diesel::table! {
    naf_codes (code) {
        code -> Text,
        libelle -> Text,
        libelle_65 -> Nullable<Text>,
        libelle_40 -> Nullable<Text>,
        classe_code -> Text,
        classe_libelle -> Text,
        groupe_code -> Text,
        groupe_libelle -> Text,
        division_code -> Text,
        division_libelle -> Text,
        section_code -> Text,
        section_libelle -> Text,
    }
}

diesel::table! {
    entreprises (id) {
        id -> Int8,
        siren -> Bpchar,
        siret -> Nullable<Bpchar>,
        nom -> Varchar,
        nom_commercial -> Nullable<Varchar>,
        adresse -> Nullable<Varchar>,
        code_postal -> Nullable<Bpchar>,
        ville_nom -> Nullable<Varchar>,
        naf_code -> Nullable<Text>,
        naf_libelle -> Nullable<Text>,
        telephone -> Nullable<Varchar>,
        email_contact -> Nullable<Varchar>,
        site_web -> Nullable<Varchar>,
        is_active -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        name -> Text,
        role -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Uuid,
        user_id -> Uuid,
        token_hash -> Bytea,
        created_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    stored_files (id) {
        id -> Uuid,
        size_bytes -> Int8,
        sha256 -> Bytea,
        created_at -> Timestamptz,
        purged_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    file_chunks (file_id, seq) {
        file_id -> Uuid,
        seq -> Int4,
        data -> Bytea,
    }
}

diesel::table! {
    import_jobs (id) {
        id -> Uuid,
        import_type -> Text,
        status -> Text,
        file_id -> Nullable<Uuid>,
        file_name -> Text,
        file_size -> Int8,
        file_sha256 -> Text,
        file_purged_at -> Nullable<Timestamptz>,
        dry_run -> Bool,
        generate_ai -> Bool,
        owner_id -> Nullable<Uuid>,
        idempotency_key -> Nullable<Text>,
        total_rows -> Int8,
        processed_rows -> Int8,
        created_rows -> Int8,
        updated_rows -> Int8,
        unchanged_rows -> Int8,
        error_rows -> Int8,
        normalized_values -> Int8,
        unknown_columns -> Array<Text>,
        attempts -> Int4,
        last_error -> Nullable<Text>,
        checkpoint_row -> Int8,
        lease_owner -> Nullable<Text>,
        lease_expires_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        completed_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
        lost_workers -> Int4,
        run_ms -> Int8,
        cancel_requested_by -> Nullable<Text>,
        warning_rows -> Int8,
        last_error_en -> Nullable<Text>,
        reverts_job_id -> Nullable<Uuid>,
        deleted_rows -> Int8,
    }
}

diesel::table! {
    import_changes (id) {
        id -> Int8,
        job_id -> Uuid,
        preview -> Bool,
        entity -> Text,
        pk -> Nullable<Text>,
        pks -> Nullable<Array<Text>>,
        key -> Nullable<Text>,
        action -> Text,
        before -> Nullable<Jsonb>,
        after -> Nullable<Jsonb>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    import_errors (id) {
        id -> Int8,
        job_id -> Uuid,
        row -> Int8,
        column -> Nullable<Text>,
        value -> Nullable<Text>,
        code -> Text,
        message -> Text,
        raw -> Nullable<Json>,
        severity -> Text,
        message_en -> Nullable<Text>,
    }
}

diesel::table! {
    outbox (id) {
        id -> Int8,
        routing_key -> Text,
        message_id -> Uuid,
        payload -> Jsonb,
        traceparent -> Nullable<Text>,
        created_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
        attempts -> Int4,
        last_error -> Nullable<Text>,
        failed_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(api_tokens -> users (user_id));
diesel::joinable!(import_errors -> import_jobs (job_id));
diesel::allow_tables_to_appear_in_same_query!(users, api_tokens, import_jobs, import_errors);

// AI generation (docs/spec.md §8; migrations 000001 and 000020).

diesel::table! {
    ai_batches (id) {
        id -> Uuid,
        target_type -> Text,
        kinds -> Array<Text>,
        force -> Bool,
        import_id -> Nullable<Uuid>,
        owner_id -> Nullable<Uuid>,
        total -> Int4,
        created_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
        selection -> Nullable<Jsonb>,
    }
}

diesel::table! {
    ai_tasks (id) {
        id -> Uuid,
        batch_id -> Uuid,
        target_type -> Text,
        target_id -> Int8,
        kind -> Text,
        status -> Text,
        attempts -> Int4,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        completed_at -> Nullable<Timestamptz>,
        reason -> Nullable<Text>,
        lease_owner -> Nullable<Text>,
        lease_expires_at -> Nullable<Timestamptz>,
        lost_workers -> Int4,
    }
}

diesel::table! {
    ai_generations (id) {
        id -> Int8,
        task_id -> Nullable<Uuid>,
        target_type -> Text,
        target_id -> Int8,
        kind -> Text,
        content -> Text,
        provider -> Text,
        model -> Text,
        prompt_version -> Text,
        tokens_in -> Nullable<Int4>,
        tokens_out -> Nullable<Int4>,
        latency_ms -> Int4,
        validation -> Text,
        created_at -> Timestamptz,
        validation_notes -> Nullable<Text>,
    }
}

diesel::joinable!(ai_tasks -> ai_batches (batch_id));
diesel::allow_tables_to_appear_in_same_query!(ai_batches, ai_tasks, ai_generations);

// Webhooks (migration 000030).

diesel::table! {
    webhooks (id) {
        id -> Uuid,
        url -> Text,
        events -> Array<Text>,
        secret -> Text,
        owner_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Uuid,
        webhook_id -> Uuid,
        event -> Text,
        payload -> Jsonb,
        status -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_status_code -> Nullable<Int4>,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        delivered_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(webhook_deliveries -> webhooks (webhook_id));
diesel::allow_tables_to_appear_in_same_query!(webhooks, webhook_deliveries);
