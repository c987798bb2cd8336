-- Households (户), by household number (户编号). Persons name their household and their
-- relation to its head; other services read them to find relatives (a village cadre's family
-- on a post).
CREATE TABLE households (
    id               TEXT PRIMARY KEY,
    household_number TEXT NOT NULL UNIQUE,
    region           TEXT NOT NULL,
    created_us       BIGINT NOT NULL
);

ALTER TABLE persons ADD COLUMN household_id TEXT REFERENCES households (id);
ALTER TABLE persons ADD COLUMN household_relation TEXT;
CREATE INDEX persons_household ON persons (household_id);
