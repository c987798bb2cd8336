-- Training courses and their trainees, and recruitment events: what Shandong's quarterly form
-- (附件1) counts besides placements.

CREATE TABLE jobs_courses (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    provider TEXT NOT NULL,
    occupation_code TEXT NOT NULL,
    occupation_name TEXT NOT NULL,
    region TEXT NOT NULL,
    start_date TEXT NOT NULL,
    end_date TEXT NOT NULL,
    days BIGINT NOT NULL,
    place TEXT NOT NULL,
    create_subject TEXT NOT NULL,
    created_us BIGINT NOT NULL
);
CREATE INDEX jobs_courses_region ON jobs_courses (region, id);

CREATE TABLE jobs_enrolments (
    id TEXT PRIMARY KEY,
    course_id TEXT NOT NULL REFERENCES jobs_courses (id),
    person_id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    home_region TEXT NOT NULL,
    -- A target person (脱贫人口 or 监测对象) when enrolled, as 附件1 counts.
    target_person BIGINT NOT NULL,
    state TEXT NOT NULL,
    certificate TEXT NOT NULL,
    -- 1 once identity holds the training period (or its shortening on a drop-out).
    identity_recorded BIGINT NOT NULL,
    create_subject TEXT NOT NULL,
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL,
    UNIQUE (course_id, person_id)
);

CREATE TABLE jobs_events (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    region TEXT NOT NULL,
    event_date TEXT NOT NULL,
    -- ",carrier,carrier," and ",posting,posting,"
    carriers TEXT NOT NULL,
    postings TEXT NOT NULL,
    persons_reached BIGINT NOT NULL CHECK (persons_reached >= 0),
    persons_placed BIGINT NOT NULL CHECK (persons_placed >= 0 AND persons_placed <= persons_reached),
    create_subject TEXT NOT NULL,
    created_us BIGINT NOT NULL
);
CREATE INDEX jobs_events_region ON jobs_events (region, id);
