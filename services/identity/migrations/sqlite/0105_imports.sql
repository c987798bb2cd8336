-- Bulk import from the national monitoring system. last_import names the import that last saw
-- a person, so a second row with the same ID in one import is found through the database and
-- memory stays flat however large the file.
ALTER TABLE persons ADD COLUMN national_person_number TEXT;
ALTER TABLE persons ADD COLUMN last_import TEXT;

-- Categories an import proposed that the importing department may not certify: a reviewer of
-- the certifying department confirms them (ConfirmCertifications). region is the person's
-- registered region at import, for listing by prefix.
CREATE TABLE pending_certifications (
    id                 TEXT   PRIMARY KEY,
    person_id          TEXT   NOT NULL REFERENCES persons (id),
    region             TEXT   NOT NULL,
    category           TEXT   NOT NULL,
    household_type     TEXT   NOT NULL,
    valid_from         TEXT   NOT NULL,
    document_reference TEXT   NOT NULL,
    import_subject     TEXT   NOT NULL,
    created_us         INTEGER NOT NULL,
    state              TEXT   NOT NULL CHECK (state IN ('pending', 'confirmed')),
    confirm_subject    TEXT,
    confirmed_us       INTEGER,
    certification_id   TEXT
);
-- One open proposal per person, category and start: re-importing the file adds nothing.
CREATE UNIQUE INDEX pending_certifications_open
    ON pending_certifications (person_id, category, household_type, valid_from) WHERE state = 'pending';
CREATE INDEX pending_certifications_region ON pending_certifications (state, region, id);
