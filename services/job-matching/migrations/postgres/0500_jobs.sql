-- Job matching (就业帮扶): carriers, postings, seekers, applications, placements and their
-- follow-ups. Money in fen; business dates as YYYY-MM-DD text; instants as microseconds since
-- the epoch; booleans as 0/1. Lists matching reads in SQL are delimited text ("|缝纫|包装|",
-- ",3704,5001,") so one LIKE per item tests membership without a join.

CREATE TABLE jobs_carriers (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    credit_code TEXT NOT NULL UNIQUE,
    region TEXT NOT NULL,
    contact_name TEXT NOT NULL,
    contact_phone TEXT NOT NULL,
    relocation_site BIGINT NOT NULL,
    cert_body TEXT,
    cert_document TEXT,
    cert_date TEXT,
    cert_valid_until TEXT,
    cert_subject TEXT,
    revision BIGINT NOT NULL,
    create_subject TEXT NOT NULL,
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL
);
CREATE INDEX jobs_carriers_region ON jobs_carriers (region, id);

CREATE TABLE jobs_postings (
    id TEXT PRIMARY KEY,
    carrier_id TEXT NOT NULL REFERENCES jobs_carriers (id),
    title TEXT NOT NULL,
    occupation_code TEXT NOT NULL,
    occupation_name TEXT NOT NULL,
    work_region TEXT NOT NULL,
    -- The work region's prefix at each level it reaches, empty past its own level.
    r_province TEXT NOT NULL,
    r_city TEXT NOT NULL,
    r_county TEXT NOT NULL,
    r_township TEXT NOT NULL,
    r_village TEXT NOT NULL,
    wage_min_fen BIGINT NOT NULL CHECK (wage_min_fen > 0),
    wage_max_fen BIGINT NOT NULL CHECK (wage_max_fen >= wage_min_fen),
    headcount BIGINT NOT NULL CHECK (headcount > 0),
    contract_months BIGINT NOT NULL,
    weekly_hours BIGINT NOT NULL,
    -- "|full|weak|"
    accepted TEXT NOT NULL,
    min_age BIGINT NOT NULL,
    max_age BIGINT NOT NULL,
    -- "|缝纫|包装|"
    skills TEXT NOT NULL,
    skill_count BIGINT NOT NULL,
    accommodation BIGINT NOT NULL,
    meals BIGINT NOT NULL,
    valid_until TEXT NOT NULL,
    shared BIGINT NOT NULL,
    open_date TEXT NOT NULL,
    state TEXT NOT NULL,
    placed BIGINT NOT NULL CHECK (placed <= headcount),
    close_reason TEXT NOT NULL,
    revision BIGINT NOT NULL,
    create_subject TEXT NOT NULL,
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL
);
CREATE INDEX jobs_postings_region ON jobs_postings (work_region, id);
CREATE INDEX jobs_postings_carrier ON jobs_postings (carrier_id, id);
CREATE INDEX jobs_postings_open ON jobs_postings (state, valid_until);

CREATE TABLE jobs_seekers (
    id TEXT PRIMARY KEY,
    person_id TEXT NOT NULL UNIQUE,
    -- Masked, as identity gives it.
    display_name TEXT NOT NULL,
    -- What matching reads of the person, from identity's masked view: the registered village,
    -- labor capacity, priority rank as a target person, year and month of birth (the age
    -- requirement). Refreshed from identity on registration and for every recommendation.
    registered_region TEXT NOT NULL,
    labor_capacity TEXT NOT NULL,
    priority BIGINT NOT NULL,
    birth_month TEXT NOT NULL,
    facts_read_us BIGINT NOT NULL,
    -- "|缝纫|包装|"
    skills TEXT NOT NULL,
    want_local BIGINT NOT NULL,
    want_out_county BIGINT NOT NULL,
    want_out_province BIGINT NOT NULL,
    -- ",3704,5001,"
    destinations TEXT NOT NULL,
    expected_wage_fen BIGINT NOT NULL CHECK (expected_wage_fen > 0),
    available_from TEXT NOT NULL,
    route_origin TEXT NOT NULL,
    route_destination TEXT NOT NULL,
    state TEXT NOT NULL,
    revision BIGINT NOT NULL,
    create_subject TEXT NOT NULL,
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL
);
CREATE INDEX jobs_seekers_region ON jobs_seekers (registered_region, id);
CREATE INDEX jobs_seekers_state_region ON jobs_seekers (state, registered_region);
-- Seekers whose person changed in identity, to be read again.
CREATE INDEX jobs_seekers_stale ON jobs_seekers (id) WHERE facts_read_us = 0;

CREATE TABLE jobs_applications (
    id TEXT PRIMARY KEY,
    posting_id TEXT NOT NULL REFERENCES jobs_postings (id),
    seeker_id TEXT NOT NULL REFERENCES jobs_seekers (id),
    state TEXT NOT NULL,
    decision_note TEXT NOT NULL,
    decided_by TEXT NOT NULL,
    revision BIGINT NOT NULL,
    create_subject TEXT NOT NULL,
    created_us BIGINT NOT NULL,
    decided_us BIGINT,
    UNIQUE (posting_id, seeker_id)
);
CREATE INDEX jobs_applications_seeker ON jobs_applications (seeker_id, id);

CREATE TABLE jobs_placements (
    id TEXT PRIMARY KEY,
    posting_id TEXT NOT NULL REFERENCES jobs_postings (id),
    seeker_id TEXT NOT NULL REFERENCES jobs_seekers (id),
    application_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    carrier_id TEXT NOT NULL REFERENCES jobs_carriers (id),
    work_region TEXT NOT NULL,
    -- The person's registered region: scope and the employment place are judged on it.
    home_region TEXT NOT NULL,
    start_date TEXT NOT NULL,
    contract_months BIGINT NOT NULL,
    monthly_wage_fen BIGINT NOT NULL CHECK (monthly_wage_fen > 0),
    social_insurance BIGINT NOT NULL,
    place TEXT NOT NULL,
    -- The priority rank when placed: a carrier's absorbed target persons count on it.
    priority BIGINT NOT NULL,
    state TEXT NOT NULL,
    end_date TEXT,
    end_reason TEXT,
    end_note TEXT NOT NULL,
    -- 1 once identity holds the placement's latest fact (its start, or its end).
    identity_recorded BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    create_subject TEXT NOT NULL,
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL
);
CREATE INDEX jobs_placements_home ON jobs_placements (home_region, id);
CREATE INDEX jobs_placements_carrier ON jobs_placements (carrier_id, state);
CREATE INDEX jobs_placements_posting ON jobs_placements (posting_id);
-- One active placement per person: a second would double their employment in identity.
CREATE UNIQUE INDEX jobs_placements_one_active ON jobs_placements (seeker_id) WHERE state = 'active';
CREATE INDEX jobs_placements_unrecorded ON jobs_placements (identity_recorded) WHERE identity_recorded = 0;

CREATE TABLE jobs_follow_ups (
    id TEXT PRIMARY KEY,
    placement_id TEXT NOT NULL REFERENCES jobs_placements (id),
    month TEXT NOT NULL,
    still_employed BIGINT NOT NULL,
    income_fen BIGINT NOT NULL CHECK (income_fen >= 0),
    note TEXT NOT NULL,
    identity_recorded BIGINT NOT NULL,
    create_subject TEXT NOT NULL,
    created_us BIGINT NOT NULL,
    UNIQUE (placement_id, month)
);
