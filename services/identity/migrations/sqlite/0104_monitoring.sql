-- Employment timeline (就业状态): one row per period of one status. A person's status on day D is
-- the row with the latest start_date <= D whose end_date is open or >= D; recording a new
-- period closes the open one the day before it starts, so periods never overlap.
CREATE TABLE employment_records (
    id               TEXT   PRIMARY KEY,
    person_id        TEXT   NOT NULL REFERENCES persons (id),
    status           TEXT   NOT NULL,
    employer         TEXT   NOT NULL,
    work_region      TEXT   NOT NULL,
    start_date       TEXT   NOT NULL,
    end_date         TEXT,
    reporting_system TEXT   NOT NULL,
    record_subject   TEXT   NOT NULL,
    recorded_us      INTEGER NOT NULL,
    CHECK (end_date IS NULL OR end_date >= start_date)
);
CREATE INDEX employment_records_person ON employment_records (person_id, start_date);

-- Monthly income from work (务工收入), in fen. A month recorded again is replaced; the audit log
-- keeps who reported what.
CREATE TABLE income_records (
    person_id        TEXT   NOT NULL REFERENCES persons (id),
    month            TEXT   NOT NULL,
    income_fen       INTEGER NOT NULL CHECK (income_fen >= 0),
    reporting_system TEXT   NOT NULL,
    record_subject   TEXT   NOT NULL,
    recorded_us      INTEGER NOT NULL,
    PRIMARY KEY (person_id, month)
);

-- Monitoring alerts (预警). dedupe_key makes raising the same alert twice (a retry, two
-- replicas) a no-op.
CREATE TABLE alerts (
    id                  TEXT   PRIMARY KEY,
    kind                TEXT   NOT NULL,
    person_id           TEXT   REFERENCES persons (id),
    region              TEXT   NOT NULL,
    effective_date      TEXT   NOT NULL,
    drop_basis_points   INTEGER NOT NULL,
    dedupe_key          TEXT   NOT NULL UNIQUE,
    created_us          INTEGER NOT NULL,
    acknowledged_us     INTEGER,
    acknowledge_subject TEXT,
    acknowledge_note    TEXT
);
CREATE INDEX alerts_region ON alerts (region, created_us);
CREATE INDEX alerts_created ON alerts (created_us, id);
