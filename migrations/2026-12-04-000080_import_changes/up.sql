-- What each import changed, so it can be previewed (a dry run) and undone
-- (a revert job), issue 20. Captured by statement-level triggers reading the
-- statement's transition tables: one INSERT … SELECT per import statement,
-- set-based, in the batch's own transaction, and nothing for unchanged rows
-- (the import's UPDATEs only touch rows that differ). A transaction that does
-- not set `foxflow.job_id` (the AI worker, foxctl, a DBA) captures nothing.
CREATE TABLE import_changes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- No foreign key: a dry run's rolled-back transaction writes here while
    -- the job row is updated and locked by other connections.
    job_id     uuid NOT NULL,
    -- A dry run's copy of its first changes, committed for the preview.
    preview    boolean NOT NULL DEFAULT false,
    entity     text NOT NULL,
    -- The row's primary key, as text (null on a `created` line of an import).
    pk         text,
    -- An import's `created` line: every row one statement created, one line
    -- per statement (a line per row would double a fresh import's writes).
    pks        text[],
    -- What an operator recognises it by (SIREN, name, name + postal code…).
    key        text,
    action     text NOT NULL CHECK (action IN ('created', 'updated', 'deleted')),
    -- updated: the changed fields' previous values; deleted: the whole row.
    before     jsonb,
    -- updated: the changed fields' new values; a preview's created: the row.
    after      jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((pk IS NULL) <> (pks IS NULL))
);
CREATE INDEX import_changes_job_idx ON import_changes (job_id, preview, id);

-- A revert is a job of its own: it names the job it undoes.
ALTER TABLE import_jobs
    ADD COLUMN reverts_job_id uuid REFERENCES import_jobs (id) ON DELETE SET NULL,
    ADD COLUMN deleted_rows bigint NOT NULL DEFAULT 0;

-- The fields a revert compares and restores: not the timestamps, nor the
-- texts the AI worker writes after an import (they are not the import's).
CREATE FUNCTION foxflow_captured(r jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT r - ARRAY['created_at', 'updated_at', 'texte_description_ia', 'texte_long_entreprise',
                     'faq', 'avis_decrypte', 'date_derniere_generation_ia']
$$;

-- One capture function per table, written from its columns: an UPDATE's
-- changed fields are found column by column (no row-to-JSON conversion of
-- the unchanged ones) and an INSERT records its new keys as one array, so a
-- fresh import pays one small row per statement. Run
-- `SELECT foxflow_install_capture(…)` again after adding a column.
CREATE FUNCTION foxflow_install_capture(tbl text, pk text, keys text[]) RETURNS void LANGUAGE plpgsql AS $install$
DECLARE
    cols   text[];
    before text;
    after  text;
    stamp  boolean;
    keyexp text;
BEGIN
    SELECT array_agg(column_name::text ORDER BY ordinal_position) INTO cols
      FROM information_schema.columns
     WHERE table_schema = current_schema() AND table_name = tbl AND column_name <> pk
       AND column_name NOT IN ('created_at', 'updated_at', 'texte_description_ia', 'texte_long_entreprise',
                               'faq', 'avis_decrypte', 'date_derniere_generation_ia');
    SELECT EXISTS (SELECT 1 FROM information_schema.columns
                    WHERE table_schema = current_schema() AND table_name = tbl AND column_name = 'updated_at')
      INTO stamp;
    SELECT string_agg(format('CASE WHEN o.%1$I IS DISTINCT FROM n.%1$I THEN jsonb_build_object(%1$L, o.%1$I) ELSE ''{}''::jsonb END', c), ' || '),
           string_agg(format('CASE WHEN o.%1$I IS DISTINCT FROM n.%1$I THEN jsonb_build_object(%1$L, n.%1$I) ELSE ''{}''::jsonb END', c), ' || ')
      INTO before, after FROM unnest(cols) c;
    SELECT 'concat_ws('' '', ' || string_agg(format('n.%I', k), ', ') || ')' INTO keyexp FROM unnest(keys) k;

    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION %1$I() RETURNS trigger LANGUAGE plpgsql AS $body$
        DECLARE
            job text := current_setting('foxflow.job_id', true);
        BEGIN
            IF job IS NULL OR job = '' THEN
                RETURN NULL;
            END IF;
            INSERT INTO import_changes (job_id, entity, pks, action)
            SELECT job::uuid, %2$L, array_agg(%3$I::text), 'created' FROM new_rows HAVING count(*) > 0;
            RETURN NULL;
        END
        $body$$f$, 'foxflow_capture_insert_' || tbl, tbl, pk);

    -- `updated_at` goes with the changed fields (a revert puts it back, so
    -- an undone row is the row as it was) but never counts as one.
    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION %1$I() RETURNS trigger LANGUAGE plpgsql AS $body$
        DECLARE
            job text := current_setting('foxflow.job_id', true);
        BEGIN
            IF job IS NULL OR job = '' THEN
                RETURN NULL;
            END IF;
            INSERT INTO import_changes (job_id, entity, pk, key, action, before, after)
            SELECT job::uuid, %2$L, n.%3$I::text, %4$s, 'updated', d.b %5$s, d.a %6$s
              FROM new_rows n JOIN old_rows o ON o.%3$I = n.%3$I
             CROSS JOIN LATERAL (SELECT %7$s AS b, %8$s AS a) d
             WHERE d.b <> '{}'::jsonb;
            RETURN NULL;
        END
        $body$$f$, 'foxflow_capture_update_' || tbl, tbl, pk, keyexp,
        CASE WHEN stamp THEN '|| jsonb_build_object(''updated_at'', o.updated_at)' ELSE '' END,
        CASE WHEN stamp THEN '|| jsonb_build_object(''updated_at'', n.updated_at)' ELSE '' END,
        before, after);

    EXECUTE format($f$
        CREATE OR REPLACE FUNCTION %1$I() RETURNS trigger LANGUAGE plpgsql AS $body$
        DECLARE
            job text := current_setting('foxflow.job_id', true);
        BEGIN
            IF job IS NULL OR job = '' THEN
                RETURN NULL;
            END IF;
            INSERT INTO import_changes (job_id, entity, pk, key, action, before)
            SELECT job::uuid, %2$L, n.%3$I::text, %4$s, 'deleted', to_jsonb(n) FROM old_rows n;
            RETURN NULL;
        END
        $body$$f$, 'foxflow_capture_delete_' || tbl, tbl, pk, keyexp);

    EXECUTE format('DROP TRIGGER IF EXISTS %I ON %I', tbl || '_capture_insert', tbl);
    EXECUTE format('DROP TRIGGER IF EXISTS %I ON %I', tbl || '_capture_update', tbl);
    EXECUTE format('DROP TRIGGER IF EXISTS %I ON %I', tbl || '_capture_delete', tbl);
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS new_rows
                    FOR EACH STATEMENT EXECUTE FUNCTION %I()', tbl || '_capture_insert', tbl, 'foxflow_capture_insert_' || tbl);
    EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %I REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                    FOR EACH STATEMENT EXECUTE FUNCTION %I()', tbl || '_capture_update', tbl, 'foxflow_capture_update_' || tbl);
    EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %I REFERENCING OLD TABLE AS old_rows
                    FOR EACH STATEMENT EXECUTE FUNCTION %I()', tbl || '_capture_delete', tbl, 'foxflow_capture_delete_' || tbl);
END
$install$;

SELECT foxflow_install_capture('categories', 'id', ARRAY['nom']);
SELECT foxflow_install_capture('sous_categories', 'id', ARRAY['nom']);
SELECT foxflow_install_capture('naf_sous_categories', 'naf_code', ARRAY['naf_code']);
SELECT foxflow_install_capture('villes', 'id', ARRAY['nom', 'code_postal_principal']);
SELECT foxflow_install_capture('entreprises', 'id', ARRAY['siren']);
SELECT foxflow_install_capture('prolocalisations', 'id', ARRAY['entreprise_id', 'sous_categorie_id', 'ville_id']);
