-- Corrections of mistyped citizen IDs: proposed by one subject, approved or rejected by
-- another. The proposed ID is stored like the current one (encrypted, indexed, masked).
CREATE TABLE citizen_id_corrections (
    id                    TEXT   PRIMARY KEY,
    person_id             TEXT   NOT NULL REFERENCES persons (id),
    new_citizen_id_enc    BLOB  NOT NULL,
    new_citizen_id_index  TEXT   NOT NULL,
    new_citizen_id_masked TEXT   NOT NULL,
    reason                TEXT   NOT NULL,
    state                 TEXT   NOT NULL CHECK (state IN ('proposed', 'applied', 'rejected')),
    propose_subject       TEXT   NOT NULL,
    proposed_us           INTEGER   NOT NULL,
    review_subject        TEXT,
    review_reason         TEXT,
    reviewed_us           INTEGER
);
CREATE INDEX citizen_id_corrections_person ON citizen_id_corrections (person_id);

-- The IDs a person held before a correction, kept encrypted.
CREATE TABLE person_citizen_id_history (
    person_id         TEXT  NOT NULL REFERENCES persons (id),
    correction_id     TEXT  NOT NULL REFERENCES citizen_id_corrections (id),
    citizen_id_enc    BLOB NOT NULL,
    citizen_id_masked TEXT  NOT NULL,
    replaced_us       INTEGER  NOT NULL,
    PRIMARY KEY (person_id, correction_id)
);
