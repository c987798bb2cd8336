-- Reports: one row per form, region and period. The numbers are a document written whole by
-- one generation (JSON: rows, projects, sources, missing parts), never patched cell by cell;
-- once submitted they are frozen, and a later generation is kept beside them as `live_content`
-- for the differences. A state change is one guarded UPDATE (state and revision in WHERE).

CREATE TABLE rp_reports (
    id                  TEXT PRIMARY KEY,
    form                TEXT   NOT NULL CHECK (form IN ('progress', 'project_list')),
    region              TEXT   NOT NULL,
    year                BIGINT NOT NULL,
    quarter             BIGINT NOT NULL CHECK (quarter BETWEEN 0 AND 4),
    state               TEXT   NOT NULL CHECK (state IN ('generating', 'draft', 'incomplete', 'submitted', 'approved', 'returned')),
    -- The state to go back to when a generation is abandoned (its server stopped midway).
    prior_state         TEXT   NOT NULL,
    revision            BIGINT NOT NULL,
    content             TEXT   NOT NULL,
    generated_by        TEXT   NOT NULL,
    generated_us        BIGINT NOT NULL,
    generation_started_us BIGINT NOT NULL,
    live_content        TEXT,
    live_read_us        BIGINT,
    submitted_by        TEXT   NOT NULL DEFAULT '',
    created_us          BIGINT NOT NULL,
    updated_us          BIGINT NOT NULL,
    UNIQUE (form, region, year, quarter)
);
CREATE INDEX rp_reports_region ON rp_reports (region, id);

-- The sign-off trail, oldest first.
CREATE TABLE rp_sign_off (
    id          BIGSERIAL PRIMARY KEY,
    report_id   TEXT   NOT NULL REFERENCES rp_reports (id),
    action      TEXT   NOT NULL CHECK (action IN ('submitted', 'approved', 'returned')),
    subject     TEXT   NOT NULL,
    scope       TEXT   NOT NULL,
    note        TEXT   NOT NULL,
    at_us       BIGINT NOT NULL
);
CREATE INDEX rp_sign_off_report ON rp_sign_off (report_id, id);
