-- Catalog: products and plans. A plan's definition is the billing.Plan it
-- was created with (products embedded), so an invoice is always rated with
-- the prices the customer subscribed to; plans and products are immutable.
CREATE TABLE products (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    definition  jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE plans (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    currency    text NOT NULL,
    definition  jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Subscriptions: one per customer, with the per-customer terms rating needs
-- and how Stripe collects the customer's invoices.
CREATE TABLE subscriptions (
    customer_id       text PRIMARY KEY REFERENCES customers (id),
    plan_id           text NOT NULL REFERENCES plans (id),
    anchor            timestamptz NOT NULL,
    trial_end         timestamptz,
    status            text NOT NULL CHECK (status IN ('trialing', 'active', 'past_due', 'suspended', 'canceled')),
    discounts         jsonb NOT NULL DEFAULT '[]'::jsonb,
    credit_balance    bigint NOT NULL DEFAULT 0 CHECK (credit_balance >= 0),
    tax_rate          numeric NOT NULL DEFAULT 0,
    currency          text NOT NULL,
    collection_method text NOT NULL DEFAULT 'charge_automatically'
                      CHECK (collection_method IN ('charge_automatically', 'send_invoice')),
    days_until_due    integer NOT NULL DEFAULT 0,
    thresholds        jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_plan ON subscriptions (plan_id);

-- Invoices: the ledger of what was billed. id is billcycle's stable invoice
-- id (derived from the workflow), so recording an invoice twice is a no-op.
-- status is 'draft' until Stripe has it, then Stripe's status.
CREATE TABLE invoices (
    id                text PRIMARY KEY,
    customer_id       text NOT NULL REFERENCES customers (id),
    kind              text NOT NULL CHECK (kind IN ('threshold', 'cycle')),
    plan_id           text NOT NULL DEFAULT '',
    period_start      timestamptz NOT NULL,
    period_end        timestamptz NOT NULL,
    currency          text NOT NULL,
    subtotal          bigint NOT NULL,
    discount          bigint NOT NULL,
    tax               bigint NOT NULL,
    credit_applied    bigint NOT NULL,
    total             bigint NOT NULL,
    status            text NOT NULL DEFAULT 'draft',
    collection_method text NOT NULL DEFAULT 'charge_automatically',
    days_until_due    integer NOT NULL DEFAULT 0,
    stripe_invoice_id text UNIQUE,
    due_at            timestamptz NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invoices_customer_period ON invoices (customer_id, period_start);

-- Invoice lines keep the meter query that produced them: the events of
-- query_customer_id with event time in [query_from, query_to) aggregated with
-- `aggregation` give the cumulative cycle-to-date quantity the line was rated
-- on; the line itself bills that quantity minus what earlier invoices of the
-- same period billed.
CREATE TABLE invoice_lines (
    invoice_id        text NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    position          integer NOT NULL,
    product_id        text NOT NULL,
    meter             text NOT NULL DEFAULT '',
    model             text NOT NULL DEFAULT '',
    description       text NOT NULL,
    quantity          numeric NOT NULL,
    free_units        numeric NOT NULL,
    billable_quantity numeric NOT NULL,
    unit_price        numeric NOT NULL,
    packages          numeric NOT NULL,
    tiers             jsonb NOT NULL DEFAULT '[]'::jsonb,
    amount            bigint NOT NULL,
    query_customer_id text NOT NULL DEFAULT '',
    query_from        timestamptz,
    query_to          timestamptz,
    aggregation       text NOT NULL DEFAULT '',
    PRIMARY KEY (invoice_id, position)
);
