-- The landlord's case record. Every write from the workflow is keyed so that a retried activity
-- writes nothing new: timeline rows by (reference, seq), letters by (reference, letter_key).
CREATE TABLE IF NOT EXISTS complaints (
    reference          text PRIMARY KEY,
    workflow_id        text NOT NULL,
    policy_id          text NOT NULL,
    policy_version     text NOT NULL,
    landlord           text NOT NULL,
    nation             text NOT NULL,
    received_at        timestamptz NOT NULL,
    channel            text NOT NULL,
    resident_name      text,
    resident_address   text,
    resident_email     text,
    resident_phone     text,
    property_address   text,
    postcode           text,
    summary            text,
    desired_outcome    text,
    filed_at_stage2    boolean NOT NULL DEFAULT false,
    stage              text NOT NULL,
    status             text NOT NULL,
    handler_id         text,
    stage2_handler_id  text,
    escalated_at       timestamptz,
    closed_at          timestamptz,
    personal_data_removed_at timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS complaints_received_idx ON complaints (received_at);
CREATE INDEX IF NOT EXISTS complaints_stage_idx ON complaints (stage, status);

CREATE TABLE IF NOT EXISTS timeline (
    reference  text NOT NULL REFERENCES complaints(reference),
    seq        integer NOT NULL,
    at         timestamptz NOT NULL,
    kind       text NOT NULL,
    stage      text NOT NULL,
    actor      text NOT NULL,
    summary    text NOT NULL,
    detail     jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (reference, seq)
);
CREATE INDEX IF NOT EXISTS timeline_kind_idx ON timeline (kind, at);

CREATE TABLE IF NOT EXISTS correspondence (
    id          bigserial PRIMARY KEY,
    reference   text NOT NULL REFERENCES complaints(reference),
    letter_key  text NOT NULL,
    kind        text NOT NULL,
    stage       text NOT NULL,
    recipient   text NOT NULL,
    address     text,
    subject     text NOT NULL,
    body        text NOT NULL,
    sent_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (reference, letter_key)
);

CREATE TABLE IF NOT EXISTS deadlines (
    reference         text NOT NULL REFERENCES complaints(reference),
    key               text NOT NULL,
    label             text NOT NULL,
    stage             text NOT NULL,
    kind              text NOT NULL,
    trigger_at        timestamptz NOT NULL,
    original_due_date date NOT NULL,
    due_date          date NOT NULL,
    due_at            timestamptz NOT NULL,
    extended_by       integer NOT NULL DEFAULT 0,
    met_at            timestamptz,
    passed_at         timestamptz,
    cancelled         boolean NOT NULL DEFAULT false,
    PRIMARY KEY (reference, key)
);
CREATE INDEX IF NOT EXISTS deadlines_due_idx ON deadlines (due_at) WHERE met_at IS NULL;

CREATE TABLE IF NOT EXISTS breaches (
    reference     text NOT NULL REFERENCES complaints(reference),
    deadline_key  text NOT NULL,
    stage         text NOT NULL,
    label         text NOT NULL,
    due_date      date NOT NULL,
    recorded_at   timestamptz NOT NULL,
    PRIMARY KEY (reference, deadline_key)
);

CREATE TABLE IF NOT EXISTS extensions (
    reference     text NOT NULL REFERENCES complaints(reference),
    seq           integer NOT NULL,
    deadline_key  text NOT NULL,
    working_days  integer NOT NULL,
    reason        text NOT NULL,
    exceptional   boolean NOT NULL,
    old_due_date  date NOT NULL,
    new_due_date  date NOT NULL,
    at            timestamptz NOT NULL,
    PRIMARY KEY (reference, seq)
);

CREATE TABLE IF NOT EXISTS contacts (
    reference  text NOT NULL REFERENCES complaints(reference),
    seq        integer NOT NULL,
    at         timestamptz NOT NULL,
    channel    text NOT NULL,
    direction  text NOT NULL,
    made_by    text NOT NULL,
    kind       text NOT NULL,
    notes      text NOT NULL DEFAULT '',
    PRIMARY KEY (reference, seq)
);

CREATE TABLE IF NOT EXISTS staff (
    id        text PRIMARY KEY,
    name      text NOT NULL,
    role      text NOT NULL,
    landlord  text NOT NULL DEFAULT '*',
    email     text,
    active    boolean NOT NULL DEFAULT true
);

CREATE TABLE IF NOT EXISTS assignments (
    reference   text NOT NULL,
    stage       text NOT NULL,
    staff_id    text NOT NULL REFERENCES staff(id),
    assigned_at timestamptz NOT NULL DEFAULT now(),
    released_at timestamptz,
    PRIMARY KEY (reference, stage)
);
CREATE INDEX IF NOT EXISTS assignments_open_idx ON assignments (staff_id) WHERE released_at IS NULL;

CREATE TABLE IF NOT EXISTS notifications (
    reference  text NOT NULL,
    key        text NOT NULL,
    role       text NOT NULL,
    staff_id   text,
    kind       text NOT NULL,
    message    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (reference, key)
);

CREATE TABLE IF NOT EXISTS calendar_changes (
    id          bigserial PRIMARY KEY,
    day         date NOT NULL,
    change      text NOT NULL CHECK (change IN ('add', 'remove')),
    nation      text,
    reason      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS calendar_changes_once ON calendar_changes (day, change, coalesce(nation, '*'));

CREATE TABLE IF NOT EXISTS involved_customers (
    id        text PRIMARY KEY,
    name      text NOT NULL,
    landlord  text NOT NULL DEFAULT '*',
    active    boolean NOT NULL DEFAULT true
);

CREATE TABLE IF NOT EXISTS involvements (
    reference    text NOT NULL,
    customer_id  text NOT NULL REFERENCES involved_customers(id),
    invited_at   timestamptz NOT NULL DEFAULT now(),
    withdrawn_at timestamptz,
    PRIMARY KEY (reference, customer_id)
);

CREATE TABLE IF NOT EXISTS panel_sittings (
    id                  bigserial PRIMARY KEY,
    landlord            text NOT NULL,
    sits_on             date NOT NULL,
    capacity            integer NOT NULL DEFAULT 6,
    attendance_possible boolean NOT NULL DEFAULT true,
    UNIQUE (landlord, sits_on)
);

CREATE TABLE IF NOT EXISTS panel_bookings (
    reference   text PRIMARY KEY,
    sitting_id  bigint NOT NULL REFERENCES panel_sittings(id),
    attending   boolean NOT NULL DEFAULT false,
    booked_at   timestamptz NOT NULL DEFAULT now()
);

-- Reports (activities/reports.py). Homes a landlord owns, for a reporting year (the calendar year,
-- or the financial year starting 1 April of it): the denominator of TSM CH01.
CREATE TABLE IF NOT EXISTS landlord_stock (
    landlord  text NOT NULL,
    year      integer NOT NULL,
    homes     integer NOT NULL CHECK (homes > 0),
    PRIMARY KEY (landlord, year)
);
-- CH01 counts escalations by date; CH02 and the annual report read responses by when they were met.
CREATE INDEX IF NOT EXISTS complaints_escalated_idx ON complaints (escalated_at) WHERE escalated_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS deadlines_met_idx ON deadlines (key, met_at) WHERE met_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS breaches_recorded_idx ON breaches (recorded_at);
-- A case's timeline rows are written by the step's own activity or by record_events, and two batches can
-- commit out of order. The case row and its deadlines are a projection of the newest batch only: the
-- highest event sequence number written so far is kept here, and an older batch leaves them alone.
ALTER TABLE complaints ADD COLUMN IF NOT EXISTS recorded_seq integer NOT NULL DEFAULT 0;
-- The annual report counts extensions by when they were granted; the calendar-change fan-out reads the
-- open cases, oldest first; the retention sweep reads the closed cases still holding personal data.
-- Each reads its few rows, not the whole record (tests/test_query_plans.py).
CREATE INDEX IF NOT EXISTS extensions_at_idx ON extensions (at);
CREATE INDEX IF NOT EXISTS complaints_open_idx ON complaints (received_at, reference) WHERE closed_at IS NULL;
CREATE INDEX IF NOT EXISTS complaints_awaiting_removal_idx ON complaints (closed_at)
    WHERE closed_at IS NOT NULL AND personal_data_removed_at IS NULL;
-- One reference, one case, for ever: the workflow chain that opened the case (the first run of its workflow id;
-- a continue-as-new keeps it), so that a later case filed under the same reference, or a workflow under
-- another id carrying it, is refused instead of writing this case's record (activities/ownership.py).
-- NULL on rows opened before it was kept: those are checked by workflow id alone.
ALTER TABLE complaints ADD COLUMN IF NOT EXISTS first_run_id text;
