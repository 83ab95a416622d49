-- Foxflow's whole data model (docs/spec.md §3). Lengths that the spec fixes are
-- enforced here too, so a bug upstream fails loudly instead of storing junk;
-- the import worker checks them first and reports error rows instead.

CREATE TABLE naf_codes (
    code              text PRIMARY KEY CHECK (code ~ '^[0-9]{2}\.[0-9]{2}[A-Z]$'),
    libelle           text NOT NULL,
    libelle_65        text,
    libelle_40        text,
    classe_code       text NOT NULL,
    classe_libelle    text NOT NULL,
    groupe_code       text NOT NULL,
    groupe_libelle    text NOT NULL,
    division_code     text NOT NULL,
    division_libelle  text NOT NULL,
    section_code      text NOT NULL,
    section_libelle   text NOT NULL
);

CREATE TABLE categories (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    nom                  varchar(100) NOT NULL UNIQUE,
    slug                 varchar(120) NOT NULL UNIQUE,
    description          text,
    texte_description_ia text,
    meta_description     varchar(160),
    ordre                integer NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sous_categories (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    categorie_id         bigint NOT NULL REFERENCES categories (id) ON DELETE CASCADE,
    nom                  varchar(100) NOT NULL,
    slug                 varchar(120) NOT NULL UNIQUE,
    description          text,
    texte_description_ia text,
    mots_cles            text,
    meta_description     varchar(160),
    ordre                integer NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (categorie_id, nom)
);

-- Many NAF codes map to one sous-catégorie; a code maps to at most one.
CREATE TABLE naf_sous_categories (
    naf_code          text PRIMARY KEY REFERENCES naf_codes (code),
    sous_categorie_id bigint NOT NULL REFERENCES sous_categories (id) ON DELETE CASCADE
);
CREATE INDEX naf_sous_categories_sous_categorie_idx ON naf_sous_categories (sous_categorie_id);

CREATE TABLE villes (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    nom                   varchar(100) NOT NULL,
    slug                  varchar(120) NOT NULL UNIQUE,
    code_postal_principal char(5) NOT NULL CHECK (code_postal_principal ~ '^[0-9]{5}$'),
    codes_postaux         text[] NOT NULL DEFAULT '{}',
    departement           varchar(3),
    region                varchar(100),
    lat                   double precision,
    lng                   double precision,
    population            bigint,
    texte_description_ia  text,
    meta_description      varchar(160),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (nom, code_postal_principal)
);
CREATE INDEX villes_code_postal_idx ON villes (code_postal_principal);

CREATE TABLE entreprises (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    siren          char(9) NOT NULL UNIQUE CHECK (siren ~ '^[0-9]{9}$'),
    siret          char(14) CHECK (siret ~ '^[0-9]{14}$'),
    nom            varchar(255) NOT NULL,
    nom_commercial varchar(255),
    adresse        varchar(255),
    code_postal    char(5),
    ville_nom      varchar(100),
    naf_code       text REFERENCES naf_codes (code),
    naf_libelle    text,
    telephone      varchar(20),
    email_contact  varchar(254),
    site_web       varchar(255),
    is_active      boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX entreprises_naf_idx ON entreprises (naf_code, naf_libelle) WHERE naf_libelle IS NOT NULL;
CREATE INDEX entreprises_code_postal_idx ON entreprises (code_postal);

CREATE TABLE prolocalisations (
    id                         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entreprise_id              bigint NOT NULL REFERENCES entreprises (id) ON DELETE CASCADE,
    sous_categorie_id          bigint NOT NULL REFERENCES sous_categories (id) ON DELETE CASCADE,
    ville_id                   bigint NOT NULL REFERENCES villes (id) ON DELETE CASCADE,
    texte_long_entreprise      text,
    meta_description           varchar(160),
    faq                        jsonb,
    avis_decrypte              text,
    date_derniere_generation_ia timestamptz,
    note_moyenne               numeric(3, 2),
    nb_avis                    integer NOT NULL DEFAULT 0,
    score_global               numeric(5, 2),
    is_verified                boolean NOT NULL DEFAULT false,
    is_active                  boolean NOT NULL DEFAULT true,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now(),
    UNIQUE (entreprise_id, sous_categorie_id, ville_id)
);
CREATE INDEX prolocalisations_ville_idx ON prolocalisations (ville_id);
CREATE INDEX prolocalisations_sous_categorie_idx ON prolocalisations (sous_categorie_id);

CREATE TABLE users (
    id         uuid PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    role       text NOT NULL CHECK (role IN ('admin', 'staff', 'viewer')),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Only a SHA-256 of each token is kept; the token itself is shown once.
CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);

-- Uploaded files live in PostgreSQL so that any worker host can read them;
-- chunks keep both writes and reads streaming.
CREATE TABLE stored_files (
    id          uuid PRIMARY KEY,
    size_bytes  bigint NOT NULL,
    sha256      bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    purged_at   timestamptz
);

CREATE TABLE file_chunks (
    file_id uuid NOT NULL REFERENCES stored_files (id) ON DELETE CASCADE,
    seq     integer NOT NULL,
    data    bytea NOT NULL,
    PRIMARY KEY (file_id, seq)
);

CREATE TABLE import_jobs (
    id               uuid PRIMARY KEY,
    import_type      text NOT NULL CHECK (import_type IN ('entreprises', 'categories', 'sous_categories', 'villes')),
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processing', 'success', 'partial', 'error')),
    file_id          uuid REFERENCES stored_files (id) ON DELETE SET NULL,
    file_name        text NOT NULL,
    file_size        bigint NOT NULL,
    file_sha256      text NOT NULL,
    file_purged_at   timestamptz,
    dry_run          boolean NOT NULL DEFAULT false,
    generate_ai      boolean NOT NULL DEFAULT false,
    owner_id         uuid REFERENCES users (id) ON DELETE SET NULL,
    idempotency_key  text,
    total_rows       bigint NOT NULL DEFAULT 0,
    processed_rows   bigint NOT NULL DEFAULT 0,
    created_rows     bigint NOT NULL DEFAULT 0,
    updated_rows     bigint NOT NULL DEFAULT 0,
    unchanged_rows   bigint NOT NULL DEFAULT 0,
    error_rows       bigint NOT NULL DEFAULT 0,
    normalized_values bigint NOT NULL DEFAULT 0,
    unknown_columns  text[] NOT NULL DEFAULT '{}',
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text,
    -- Number of data rows whose effect is committed; a redelivered job resumes after it.
    checkpoint_row   bigint NOT NULL DEFAULT 0,
    -- Which worker holds the job and until when; an expired lease may be taken over.
    lease_owner      text,
    lease_expires_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    completed_at     timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX import_jobs_type_status_idx ON import_jobs (import_type, status);
CREATE INDEX import_jobs_owner_created_idx ON import_jobs (owner_id, created_at DESC);
CREATE INDEX import_jobs_created_idx ON import_jobs (created_at);
CREATE UNIQUE INDEX import_jobs_idempotency_idx ON import_jobs (owner_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE import_errors (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id   uuid NOT NULL REFERENCES import_jobs (id) ON DELETE CASCADE,
    "row"    bigint NOT NULL,
    "column" text,
    value    text,
    code     text NOT NULL,
    message  text NOT NULL,
    raw      json
);
CREATE INDEX import_errors_job_row_idx ON import_errors (job_id, "row");

-- Which entities a job created or updated, so generate_ai hands over exactly those.
CREATE TABLE import_touched (
    job_id      uuid NOT NULL REFERENCES import_jobs (id) ON DELETE CASCADE,
    target_type text NOT NULL,
    target_id   bigint NOT NULL,
    PRIMARY KEY (job_id, target_type, target_id)
);

CREATE TABLE outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    routing_key  text NOT NULL,
    message_id   uuid NOT NULL UNIQUE,
    payload      jsonb NOT NULL,
    -- W3C traceparent of the transaction that wrote the row, carried to the consumer.
    traceparent  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text
);
CREATE INDEX outbox_unsent_idx ON outbox (id) WHERE sent_at IS NULL;

CREATE TABLE ai_batches (
    id          uuid PRIMARY KEY,
    target_type text NOT NULL,
    kinds       text[] NOT NULL,
    force       boolean NOT NULL DEFAULT false,
    import_id   uuid REFERENCES import_jobs (id) ON DELETE SET NULL,
    owner_id    uuid REFERENCES users (id) ON DELETE SET NULL,
    total       integer NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz
);

CREATE TABLE ai_tasks (
    id          uuid PRIMARY KEY,
    batch_id    uuid NOT NULL REFERENCES ai_batches (id) ON DELETE CASCADE,
    target_type text NOT NULL CHECK (target_type IN ('prolocalisation', 'categorie', 'sous_categorie', 'ville')),
    target_id   bigint NOT NULL,
    kind        text NOT NULL,
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processing', 'succeeded', 'failed', 'skipped')),
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    started_at  timestamptz,
    completed_at timestamptz
);
CREATE INDEX ai_tasks_batch_status_idx ON ai_tasks (batch_id, status);

CREATE TABLE ai_generations (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id          uuid REFERENCES ai_tasks (id) ON DELETE SET NULL,
    target_type      text NOT NULL,
    target_id        bigint NOT NULL,
    kind             text NOT NULL,
    content          text NOT NULL,
    provider         text NOT NULL,
    model            text NOT NULL,
    prompt_version   text NOT NULL,
    tokens_in        integer,
    tokens_out       integer,
    latency_ms       integer NOT NULL,
    validation       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ai_generations_target_idx ON ai_generations (target_type, target_id, kind, created_at DESC);

-- Cluster-wide GCRA state: one row per limiter key (docs/spec.md §7).
CREATE TABLE rate_limits (
    key         text PRIMARY KEY,
    tat         timestamptz NOT NULL,
    paused_until timestamptz
);

CREATE TABLE webhooks (
    id         uuid PRIMARY KEY,
    url        text NOT NULL,
    events     text[] NOT NULL,
    secret     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
