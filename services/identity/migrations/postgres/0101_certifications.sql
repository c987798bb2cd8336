-- Certifications of persons into categories, with their validity. A category holds on day D
-- when valid_from <= D <= valid_to (no valid_to: open) and the certification is not annulled.
-- Rows are never deleted: a revocation sets valid_to, an annulment voids the row from its
-- start, and both keep who did it and when.
CREATE TABLE certifications (
    id                 TEXT    PRIMARY KEY,
    person_id          TEXT    NOT NULL REFERENCES persons (id),
    category           TEXT    NOT NULL,
    household_type     TEXT    NOT NULL,
    certifying_body    TEXT    NOT NULL,
    document_reference TEXT    NOT NULL,
    valid_from         TEXT    NOT NULL,
    valid_to           TEXT,
    annulled           BIGINT    NOT NULL DEFAULT 0,
    certify_subject    TEXT    NOT NULL,
    certified_us       BIGINT    NOT NULL,
    revoke_document    TEXT,
    revoke_subject     TEXT,
    revoked_us         BIGINT,
    annulled_us        BIGINT,
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);
CREATE INDEX certifications_person ON certifications (person_id, valid_from);

-- Which department may certify which category: data, not code. Rural low-income persons are
-- certified by civil affairs and disabled persons by the disabled persons' federation; an
-- agriculture or HR reviewer enters that body's document.
CREATE TABLE certifying_departments (
    category   TEXT NOT NULL,
    department TEXT NOT NULL,
    PRIMARY KEY (category, department)
);
INSERT INTO certifying_departments (category, department) VALUES
    ('poverty_alleviated', 'agri'),
    ('monitored_at_risk', 'agri'),
    ('relocated', 'agri'),
    ('yellow_river_resettled', 'agri'),
    ('employment_difficulty', 'hr'),
    ('rural_low_income', 'agri'),
    ('rural_low_income', 'hr'),
    ('disabled', 'agri'),
    ('disabled', 'hr');
