-- Persons. The citizen ID, name and phone are stored encrypted (AES-256-GCM envelopes bound
-- to the person); the ID is found through a keyed blind index, names are compared through a
-- keyed hash of their comparable form, and the masked forms are kept so a listing never
-- decrypts. The id is opaque and never derived from the citizen ID.
CREATE TABLE persons (
    id                TEXT    PRIMARY KEY,
    citizen_id_enc    BLOB   NOT NULL,
    citizen_id_index  TEXT    NOT NULL UNIQUE,
    citizen_id_masked TEXT    NOT NULL,
    name_enc          BLOB   NOT NULL,
    name_key          TEXT    NOT NULL,
    name_masked       TEXT    NOT NULL,
    phone_enc         BLOB,
    phone_masked      TEXT,
    sex               TEXT    NOT NULL,
    birth_date        TEXT    NOT NULL,
    retirement_track  TEXT    NOT NULL,
    retirement_month  TEXT    NOT NULL,
    registered_region TEXT    NOT NULL,
    residence_region  TEXT    NOT NULL,
    labor_capacity    TEXT    NOT NULL,
    skills            TEXT    NOT NULL,
    death_date        TEXT,
    moved_away_date   TEXT,
    created_us        INTEGER    NOT NULL,
    updated_us        INTEGER    NOT NULL,
    revision          INTEGER    NOT NULL
);
-- Keyset paging and scope filters: a county's persons are one index range.
CREATE INDEX persons_registered ON persons (registered_region, id);
CREATE INDEX persons_residence ON persons (residence_region, id);

-- Where a person was registered or lived, from which business date: answers "as of" a day.
CREATE TABLE person_regions (
    person_id   TEXT    NOT NULL REFERENCES persons (id),
    kind        TEXT    NOT NULL CHECK (kind IN ('registered', 'residence')),
    region      TEXT    NOT NULL,
    valid_from  TEXT    NOT NULL,
    recorded_us INTEGER    NOT NULL,
    PRIMARY KEY (person_id, kind, valid_from)
);

-- Labor capacity from which business date.
CREATE TABLE person_labor_capacity (
    person_id      TEXT NOT NULL REFERENCES persons (id),
    labor_capacity TEXT NOT NULL,
    valid_from     TEXT NOT NULL,
    recorded_us    INTEGER NOT NULL,
    PRIMARY KEY (person_id, valid_from)
);
