-- Rule numbers that differ by region and date. A lookup takes the longest region prefix valid
-- on the date; '*' is the whole country. Dates are business dates, 'YYYY-MM-DD'.
CREATE TABLE parameters (
    key             TEXT   NOT NULL,
    region_prefix   TEXT   NOT NULL,
    valid_from      TEXT   NOT NULL,
    valid_to        TEXT,
    value           BIGINT NOT NULL,
    source_document TEXT   NOT NULL,
    update_subject  TEXT   NOT NULL,
    update_time_us  BIGINT NOT NULL,
    revision        BIGINT NOT NULL,
    PRIMARY KEY (key, region_prefix, valid_from),
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
);
