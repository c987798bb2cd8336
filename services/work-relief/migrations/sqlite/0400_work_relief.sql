-- Work relief (以工代赈): projects, allocations, the real-name roster, muster rolls, monthly
-- payrolls with their notice and objections. Money in fen; business dates as YYYY-MM-DD text;
-- instants as microseconds since the epoch; booleans as 0/1.

CREATE TABLE wr_projects (
    id TEXT PRIMARY KEY,
    project_number TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    summary TEXT NOT NULL,
    channel TEXT NOT NULL,
    region TEXT NOT NULL,
    start_date TEXT NOT NULL,
    end_date TEXT NOT NULL,
    owner_unit TEXT NOT NULL,
    contact_name TEXT NOT NULL,
    contact_phone TEXT NOT NULL,
    key_assistance_county INTEGER NOT NULL,
    relocation_site INTEGER NOT NULL,
    flood_plain INTEGER NOT NULL,
    remarks TEXT NOT NULL,
    remuneration_policy TEXT NOT NULL,
    pay_day INTEGER NOT NULL,
    state TEXT NOT NULL,
    -- Moves on every change, and on every enrolment: the guard that serializes a project's
    -- roster checks.
    revision INTEGER NOT NULL,
    create_subject TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    updated_us INTEGER NOT NULL,
    closed_us INTEGER
);
CREATE INDEX wr_projects_region ON wr_projects (region, id);

CREATE TABLE wr_allocations (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES wr_projects (id),
    fund_source TEXT NOT NULL,
    year INTEGER NOT NULL,
    amount_fen INTEGER NOT NULL CHECK (amount_fen > 0),
    document TEXT NOT NULL,
    create_subject TEXT NOT NULL,
    created_us INTEGER NOT NULL
);
CREATE INDEX wr_allocations_project ON wr_allocations (project_id, created_us);

CREATE TABLE wr_workers (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES wr_projects (id),
    -- The place on the roster, from 1, in enrolment order: payroll lines follow it.
    roster_number INTEGER NOT NULL,
    person_id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    -- 'daily' (rate per day) or 'piece' (rate per piece_unit).
    pay_basis TEXT NOT NULL,
    rate_fen INTEGER NOT NULL CHECK (rate_fen > 0),
    piece_unit TEXT NOT NULL,
    start_date TEXT NOT NULL,
    end_date TEXT,
    local_labor INTEGER NOT NULL,
    target_person INTEGER NOT NULL,
    relocated INTEGER NOT NULL,
    state TEXT NOT NULL,
    end_reason TEXT NOT NULL,
    agreement_reference TEXT NOT NULL,
    -- What identity has not yet recorded: 'enrol', 'end', or '' when both are recorded.
    identity_pending TEXT NOT NULL,
    create_subject TEXT NOT NULL,
    created_us INTEGER NOT NULL
);
CREATE INDEX wr_workers_project ON wr_workers (project_id, id);
CREATE UNIQUE INDEX wr_workers_roster ON wr_workers (project_id, roster_number);
CREATE INDEX wr_workers_person ON wr_workers (person_id);
CREATE INDEX wr_workers_identity_pending ON wr_workers (identity_pending) WHERE identity_pending <> '';

-- A month of the muster roll (考勤): one row per worker and month.
CREATE TABLE wr_attendance (
    worker_id TEXT NOT NULL REFERENCES wr_workers (id),
    month TEXT NOT NULL,
    project_id TEXT NOT NULL,
    days INTEGER NOT NULL,
    pieces INTEGER NOT NULL,
    record_subject TEXT NOT NULL,
    recorded_us INTEGER NOT NULL,
    PRIMARY KEY (worker_id, month)
);
CREATE INDEX wr_attendance_month ON wr_attendance (project_id, month);

CREATE TABLE wr_payrolls (
    project_id TEXT NOT NULL REFERENCES wr_projects (id),
    month TEXT NOT NULL,
    state TEXT NOT NULL,
    due_date TEXT NOT NULL,
    notice_first TEXT,
    notice_last TEXT,
    objection_contact TEXT NOT NULL,
    prepare_subject TEXT NOT NULL,
    prepared_us INTEGER NOT NULL,
    approve_subject TEXT,
    approved_us INTEGER,
    revision INTEGER NOT NULL,
    PRIMARY KEY (project_id, month)
);
CREATE INDEX wr_payrolls_state ON wr_payrolls (state, due_date);

CREATE TABLE wr_payroll_lines (
    project_id TEXT NOT NULL,
    month TEXT NOT NULL,
    line_number INTEGER NOT NULL,
    worker_id TEXT NOT NULL REFERENCES wr_workers (id),
    person_id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    days INTEGER NOT NULL,
    pieces INTEGER NOT NULL,
    rate_fen INTEGER NOT NULL,
    amount_fen INTEGER NOT NULL,
    counts_in_share INTEGER NOT NULL,
    state TEXT NOT NULL,
    claim TEXT NOT NULL,
    status_detail TEXT NOT NULL,
    receipt_source TEXT NOT NULL,
    paid_date TEXT,
    ledger_reference TEXT NOT NULL,
    updated_us INTEGER NOT NULL,
    PRIMARY KEY (project_id, month, line_number),
    FOREIGN KEY (project_id, month) REFERENCES wr_payrolls (project_id, month),
    UNIQUE (project_id, month, worker_id)
);
CREATE INDEX wr_payroll_lines_state ON wr_payroll_lines (state);

CREATE TABLE wr_objections (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    month TEXT NOT NULL,
    line_number INTEGER NOT NULL,
    content TEXT NOT NULL,
    channel TEXT NOT NULL,
    received_date TEXT NOT NULL,
    state TEXT NOT NULL,
    resolution TEXT NOT NULL,
    raise_subject TEXT NOT NULL,
    resolve_subject TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    FOREIGN KEY (project_id, month) REFERENCES wr_payrolls (project_id, month)
);
CREATE INDEX wr_objections_payroll ON wr_objections (project_id, month, created_us);
