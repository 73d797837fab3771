-- Notices: every email, Slack message and webhook billcycle sends on a customer's behalf, keyed by a
-- dedupe key the caller derives from what the notice is about (for example
-- "alert/a_1/customer/acme/2026-11-01"). The key is claimed before anything is sent, so a retried
-- activity finds the row and sends nothing twice. When SENDGRID_API_KEY is empty this table is the
-- durable dev outbox: emails are recorded with channel and status 'outbox' and never leave the machine.
CREATE TABLE notices (
    dedupe_key          text PRIMARY KEY,
    customer_id         text NOT NULL DEFAULT '',
    kind                text NOT NULL,
    channel             text NOT NULL CHECK (channel IN ('email', 'slack', 'webhook', 'outbox')),
    recipient           text NOT NULL DEFAULT '',
    subject             text NOT NULL DEFAULT '',
    body                text NOT NULL DEFAULT '',
    template_id         text NOT NULL DEFAULT '',
    data                jsonb NOT NULL DEFAULT '{}'::jsonb,
    status              text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'outbox')),
    provider_message_id text NOT NULL DEFAULT '',
    attempts            integer NOT NULL DEFAULT 0,
    last_error          text NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL DEFAULT now(),
    sent_at             timestamptz
);

CREATE INDEX notices_customer_kind ON notices (customer_id, kind, created_at);

-- Usage alerts: a threshold on one meter, for one customer (customer_id) or for every customer whose
-- metadata matches customer_filter (customer_id NULL). Archived alerts stay for the record.
CREATE TABLE alerts (
    id              text PRIMARY KEY,
    meter           text NOT NULL,
    customer_id     text REFERENCES customers (id),
    customer_filter jsonb NOT NULL DEFAULT '{}'::jsonb,
    threshold       numeric NOT NULL,
    direction       text NOT NULL CHECK (direction IN ('above', 'below')),
    "window"        interval NOT NULL DEFAULT '0',
    cooldown        interval NOT NULL DEFAULT '0',
    actions         text[] NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    archived_at     timestamptz
);

CREATE INDEX alerts_live ON alerts (customer_id, meter) WHERE archived_at IS NULL;
