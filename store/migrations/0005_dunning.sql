-- Stripe webhook events by event id, for deduplication. The row is claimed when the event arrives and
-- processed_at is set once its workflows were started or signalled, so a redelivery of a processed event
-- is acknowledged and ignored, while one whose first delivery failed half-way is processed again (every
-- step is idempotent).
CREATE TABLE stripe_events (
    id            text PRIMARY KEY,
    type          text NOT NULL,
    object_id     text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    processed_at  timestamptz,
    outcome       text NOT NULL DEFAULT ''
);

-- The latest state of each Stripe invoice as its webhooks reported it. Events arrive out of order:
-- a newer event (by Stripe's created time) overwrites an older one, and the terminal states paid and
-- void are never overwritten. invoice_id is billcycle's id (the billcycle_invoice_id metadata);
-- charge_id and payment_intent_id map disputes back to their invoice.
CREATE TABLE stripe_invoice_states (
    stripe_invoice_id text PRIMARY KEY,
    invoice_id        text NOT NULL DEFAULT '',
    customer_id       text NOT NULL DEFAULT '',
    status            text NOT NULL,
    charge_id         text NOT NULL DEFAULT '',
    payment_intent_id text NOT NULL DEFAULT '',
    amount_remaining  bigint NOT NULL DEFAULT 0,
    currency          text NOT NULL DEFAULT '',
    due_at            timestamptz,
    event_created     timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stripe_invoice_states_invoice ON stripe_invoice_states (invoice_id) WHERE invoice_id <> '';
CREATE INDEX stripe_invoice_states_charge ON stripe_invoice_states (charge_id) WHERE charge_id <> '';
CREATE INDEX stripe_invoice_states_payment_intent ON stripe_invoice_states (payment_intent_id) WHERE payment_intent_id <> '';

-- Dunning policies per plan (a billing.Policy as JSON); plans without a row use the default policy.
CREATE TABLE dunning_policies (
    plan_id     text PRIMARY KEY,
    policy      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

