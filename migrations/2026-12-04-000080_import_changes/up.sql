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
    -- The row's primary key, as text.
    pk         text NOT NULL,
    -- What an operator recognises it by (SIREN, name, name + postal code…).
    key        text,
    action     text NOT NULL CHECK (action IN ('created', 'updated', 'deleted')),
    -- updated: the changed fields' previous values; deleted: the whole row.
    before     jsonb,
    -- created: the row as created; updated: the changed fields' new values.
    after      jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
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

CREATE FUNCTION foxflow_key(r jsonb, cols text[]) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT string_agg(r ->> c, ' ' ORDER BY o) FROM unnest(cols) WITH ORDINALITY AS u(c, o)
$$;

-- Trigger arguments: the primary key column, then the key columns.
CREATE FUNCTION foxflow_capture() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    job  text := current_setting('foxflow.job_id', true);
    pk   text := TG_ARGV[0];
    keys text[] := TG_ARGV[1:TG_NARGS - 1];
BEGIN
    IF job IS NULL OR job = '' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO import_changes (job_id, entity, pk, key, action, after)
        SELECT job::uuid, TG_TABLE_NAME, j ->> pk, foxflow_key(j, keys), 'created', foxflow_captured(j)
          FROM (SELECT to_jsonb(n) AS j FROM new_rows n) s;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO import_changes (job_id, entity, pk, key, action, before, after)
        -- `updated_at` goes with the changed fields (a revert puts it back,
        -- so an undone row is the row as it was) but never counts as one.
        SELECT job::uuid, TG_TABLE_NAME, n.j ->> pk, foxflow_key(n.j, keys), 'updated',
               (SELECT jsonb_object_agg(k, o.j -> k) FROM jsonb_object_keys(n.j) k WHERE (o.j -> k) IS DISTINCT FROM (n.j -> k))
                   || jsonb_strip_nulls(jsonb_build_object('updated_at', o.ts)),
               (SELECT jsonb_object_agg(k, n.j -> k) FROM jsonb_object_keys(n.j) k WHERE (o.j -> k) IS DISTINCT FROM (n.j -> k))
                   || jsonb_strip_nulls(jsonb_build_object('updated_at', n.ts))
          FROM (SELECT foxflow_captured(to_jsonb(x)) AS j, to_jsonb(x) -> 'updated_at' AS ts FROM new_rows x) n
          JOIN (SELECT foxflow_captured(to_jsonb(x)) AS j, to_jsonb(x) -> 'updated_at' AS ts FROM old_rows x) o
            ON (o.j ->> pk) = (n.j ->> pk)
         WHERE n.j IS DISTINCT FROM o.j;
    ELSE
        INSERT INTO import_changes (job_id, entity, pk, key, action, before)
        SELECT job::uuid, TG_TABLE_NAME, j ->> pk, foxflow_key(j, keys), 'deleted', j
          FROM (SELECT to_jsonb(o) AS j FROM old_rows o) s;
    END IF;
    RETURN NULL;
END
$$;

-- Trigger arguments: the primary key column, then the key columns.
CREATE TRIGGER categories_capture_insert AFTER INSERT ON categories REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION foxflow_capture('id', 'nom');
CREATE TRIGGER categories_capture_update AFTER UPDATE ON categories REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION foxflow_capture('id', 'nom');
CREATE TRIGGER categories_capture_delete AFTER DELETE ON categories REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION foxflow_capture('id', 'nom');
CREATE TRIGGER sous_categories_capture_insert AFTER INSERT ON sous_categories REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION foxflow_capture('id', 'nom');
CREATE TRIGGER sous_categories_capture_update AFTER UPDATE ON sous_categories REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION foxflow_capture('id', 'nom');
CREATE TRIGGER sous_categories_capture_delete AFTER DELETE ON sous_categories REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION foxflow_capture('id', 'nom');
CREATE TRIGGER naf_sous_categories_capture_insert AFTER INSERT ON naf_sous_categories REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION foxflow_capture('naf_code', 'naf_code');
CREATE TRIGGER naf_sous_categories_capture_update AFTER UPDATE ON naf_sous_categories REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION foxflow_capture('naf_code', 'naf_code');
CREATE TRIGGER naf_sous_categories_capture_delete AFTER DELETE ON naf_sous_categories REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION foxflow_capture('naf_code', 'naf_code');
CREATE TRIGGER villes_capture_insert AFTER INSERT ON villes REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION foxflow_capture('id', 'nom', 'code_postal_principal');
CREATE TRIGGER villes_capture_update AFTER UPDATE ON villes REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION foxflow_capture('id', 'nom', 'code_postal_principal');
CREATE TRIGGER villes_capture_delete AFTER DELETE ON villes REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION foxflow_capture('id', 'nom', 'code_postal_principal');
CREATE TRIGGER entreprises_capture_insert AFTER INSERT ON entreprises REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION foxflow_capture('id', 'siren');
CREATE TRIGGER entreprises_capture_update AFTER UPDATE ON entreprises REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION foxflow_capture('id', 'siren');
CREATE TRIGGER entreprises_capture_delete AFTER DELETE ON entreprises REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION foxflow_capture('id', 'siren');
CREATE TRIGGER prolocalisations_capture_insert AFTER INSERT ON prolocalisations REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION foxflow_capture('id', 'entreprise_id', 'sous_categorie_id', 'ville_id');
CREATE TRIGGER prolocalisations_capture_update AFTER UPDATE ON prolocalisations REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION foxflow_capture('id', 'entreprise_id', 'sous_categorie_id', 'ville_id');
CREATE TRIGGER prolocalisations_capture_delete AFTER DELETE ON prolocalisations REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION foxflow_capture('id', 'entreprise_id', 'sous_categorie_id', 'ville_id');
