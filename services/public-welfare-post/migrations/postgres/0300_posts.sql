-- Public-welfare posts (乡村公益性岗位): posts, announcements, applications, hire notices,
-- assignments (one signing each), objections, evaluations, closed months, exit proposals and
-- village cadres. Days are 'YYYY-MM-DD' text; a slot's days are also kept as day numbers so the
-- one-person-one-post rule is an exclusion constraint over an integer range.
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE posts (
    id                   TEXT   PRIMARY KEY,
    village              TEXT   NOT NULL,
    title                TEXT   NOT NULL,
    post_type            TEXT   NOT NULL,
    post_class           TEXT   NOT NULL,
    funding_source       TEXT   NOT NULL,
    subsidy_policy       TEXT   NOT NULL,
    monthly_standard_fen BIGINT CHECK (monthly_standard_fen IS NULL OR monthly_standard_fen >= 0),
    hours_per_month      BIGINT NOT NULL CHECK (hours_per_month BETWEEN 1 AND 300),
    days_per_month       BIGINT NOT NULL CHECK (days_per_month BETWEEN 1 AND 31),
    work_time            TEXT   NOT NULL,
    places               BIGINT NOT NULL CHECK (places BETWEEN 1 AND 100),
    village_only         BIGINT NOT NULL DEFAULT 0,
    state                TEXT   NOT NULL CHECK (state IN ('open', 'closed')),
    create_subject       TEXT   NOT NULL,
    created_us           BIGINT NOT NULL,
    updated_us           BIGINT NOT NULL,
    revision             BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX posts_village ON posts (village, id);

CREATE TABLE announcements (
    id             TEXT   PRIMARY KEY,
    post_id        TEXT   NOT NULL REFERENCES posts (id),
    duties         TEXT   NOT NULL,
    requirements   TEXT   NOT NULL,
    pay            TEXT   NOT NULL,
    hours          TEXT   NOT NULL,
    place          TEXT   NOT NULL,
    first_day      TEXT   NOT NULL,
    last_day       TEXT   NOT NULL CHECK (last_day >= first_day),
    create_subject TEXT   NOT NULL,
    created_us     BIGINT NOT NULL
);
CREATE INDEX announcements_post ON announcements (post_id);

CREATE TABLE applications (
    id              TEXT   PRIMARY KEY,
    announcement_id TEXT   NOT NULL REFERENCES announcements (id),
    person_id       TEXT   NOT NULL,
    display_name    TEXT   NOT NULL,
    labor_capacity  TEXT   NOT NULL DEFAULT '',
    declared_fit    BIGINT NOT NULL DEFAULT 0,
    state           TEXT   NOT NULL CHECK (state IN ('submitted', 'proposed', 'hired', 'not_hired')),
    eligibility     TEXT,
    rank_key        BIGINT NOT NULL DEFAULT 9,
    create_subject  TEXT   NOT NULL,
    created_us      BIGINT NOT NULL,
    UNIQUE (announcement_id, person_id)
);

CREATE TABLE hire_notices (
    id              TEXT   PRIMARY KEY,
    announcement_id TEXT   NOT NULL REFERENCES announcements (id),
    first_day       TEXT   NOT NULL,
    last_day        TEXT   NOT NULL CHECK (last_day >= first_day),
    state           TEXT   NOT NULL CHECK (state IN ('running', 'confirmed')),
    create_subject  TEXT   NOT NULL,
    created_us      BIGINT NOT NULL,
    confirm_subject TEXT,
    confirmed_us    BIGINT
);

-- One signing of a person on a post. While proposed or active it holds the person's slot
-- [slot_first, slot_last] (day numbers): no two such rows of one person overlap, whatever
-- path wrote them.
CREATE TABLE assignments (
    id                  TEXT   PRIMARY KEY,
    post_id             TEXT   NOT NULL REFERENCES posts (id),
    village             TEXT   NOT NULL,
    person_id           TEXT   NOT NULL,
    display_name        TEXT   NOT NULL,
    household           TEXT   NOT NULL DEFAULT '',
    application_id      TEXT   REFERENCES applications (id),
    notice_id           TEXT   REFERENCES hire_notices (id),
    renews              TEXT   REFERENCES assignments (id),
    state               TEXT   NOT NULL CHECK (state IN ('proposed', 'active', 'withdrawn', 'ended')),
    start_date          TEXT   NOT NULL,
    end_date            TEXT   NOT NULL CHECK (end_date >= start_date),
    last_day            TEXT   NOT NULL,
    slot_first          BIGINT NOT NULL,
    slot_last           BIGINT NOT NULL CHECK (slot_last >= slot_first),
    insurer             TEXT   NOT NULL,
    insurance_number    TEXT   NOT NULL,
    insurance_first     TEXT   NOT NULL,
    insurance_last      TEXT   NOT NULL,
    first_hire_date     TEXT   NOT NULL,
    exit_reason         TEXT   NOT NULL DEFAULT '',
    exit_note           TEXT   NOT NULL DEFAULT '',
    employment_recorded BIGINT NOT NULL DEFAULT 0,
    create_subject      TEXT   NOT NULL,
    created_us          BIGINT NOT NULL,
    updated_us          BIGINT NOT NULL,
    revision            BIGINT NOT NULL DEFAULT 1,
    CONSTRAINT one_person_one_post EXCLUDE USING gist (
        person_id WITH =,
        int8range(slot_first, slot_last, '[]') WITH &&
    ) WHERE (state IN ('proposed', 'active'))
);
CREATE INDEX assignments_post ON assignments (post_id, state);
CREATE INDEX assignments_village ON assignments (village, id);
CREATE INDEX assignments_person ON assignments (person_id);
CREATE INDEX assignments_notice ON assignments (notice_id);

CREATE TABLE objections (
    id              TEXT   PRIMARY KEY,
    notice_id       TEXT   NOT NULL REFERENCES hire_notices (id),
    assignment_id   TEXT   NOT NULL REFERENCES assignments (id),
    content         TEXT   NOT NULL,
    received_from   TEXT   NOT NULL DEFAULT '',
    state           TEXT   NOT NULL CHECK (state IN ('open', 'upheld', 'dismissed')),
    resolution      TEXT   NOT NULL DEFAULT '',
    raise_subject   TEXT   NOT NULL,
    resolve_subject TEXT,
    created_us      BIGINT NOT NULL,
    resolved_us     BIGINT,
    CHECK (resolve_subject IS NULL OR resolve_subject <> raise_subject)
);
CREATE INDEX objections_notice ON objections (notice_id, state);

CREATE TABLE evaluations (
    assignment_id TEXT   NOT NULL REFERENCES assignments (id),
    month         TEXT   NOT NULL,
    days_on_post  BIGINT NOT NULL CHECK (days_on_post BETWEEN 0 AND 31),
    hours_on_post BIGINT NOT NULL CHECK (hours_on_post BETWEEN 0 AND 744),
    score         BIGINT NOT NULL CHECK (score BETWEEN 0 AND 100),
    passed        BIGINT NOT NULL,
    remark        TEXT   NOT NULL DEFAULT '',
    subject       TEXT   NOT NULL,
    updated_us    BIGINT NOT NULL,
    revision      BIGINT NOT NULL DEFAULT 1,
    PRIMARY KEY (assignment_id, month)
);

-- A holder's closed month: the claim sent (source key assignment + month) or why none was.
CREATE TABLE month_lines (
    assignment_id TEXT   NOT NULL REFERENCES assignments (id),
    month         TEXT   NOT NULL,
    village       TEXT   NOT NULL,
    outcome       TEXT   NOT NULL,
    facts         TEXT   NOT NULL DEFAULT '[]',
    claim         TEXT   NOT NULL DEFAULT '',
    message       TEXT   NOT NULL DEFAULT '',
    subject       TEXT   NOT NULL,
    updated_us    BIGINT NOT NULL,
    PRIMARY KEY (assignment_id, month)
);
CREATE INDEX month_lines_pending ON month_lines (outcome, month);
CREATE INDEX month_lines_village ON month_lines (month, village);

CREATE TABLE exit_proposals (
    id             TEXT   PRIMARY KEY,
    assignment_id  TEXT   NOT NULL REFERENCES assignments (id),
    village        TEXT   NOT NULL,
    reason         TEXT   NOT NULL,
    effective_date TEXT,
    source         TEXT   NOT NULL,
    state          TEXT   NOT NULL CHECK (state IN ('open', 'done')),
    created_us     BIGINT NOT NULL,
    UNIQUE (assignment_id, reason)
);
CREATE INDEX exit_proposals_village ON exit_proposals (village, id);

CREATE TABLE village_cadres (
    id             TEXT   PRIMARY KEY,
    village        TEXT   NOT NULL,
    person_id      TEXT   NOT NULL,
    household      TEXT   NOT NULL DEFAULT '',
    office         TEXT   NOT NULL,
    term_start     TEXT   NOT NULL,
    term_end       TEXT,
    create_subject TEXT   NOT NULL,
    created_us     BIGINT NOT NULL
);
CREATE INDEX village_cadres_village ON village_cadres (village);
CREATE INDEX village_cadres_person ON village_cadres (person_id);
CREATE INDEX village_cadres_household ON village_cadres (household);
