-- Customers: one row per billed customer, keyed by the id the API company uses.
CREATE TABLE customers (
    id                 text PRIMARY KEY,
    email              text NOT NULL,
    name               text NOT NULL DEFAULT '',
    plan               text NOT NULL DEFAULT '',
    metadata           jsonb NOT NULL DEFAULT '{}'::jsonb,
    stripe_customer_id text,
    access             text NOT NULL DEFAULT 'granted' CHECK (access IN ('granted', 'revoked')),
    access_reason      text NOT NULL DEFAULT '',
    access_changed_at  timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- API keys are stored as SHA-256 hashes; the key itself is shown once, at creation.
CREATE TABLE api_keys (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    prefix      text NOT NULL,
    hash        bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at  timestamptz
);
