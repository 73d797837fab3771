-- Metering: meters, raw usage events, their dedup index, hourly rollups, exact
-- unique-count keys and the billing workflow's watch levels.
--
-- Identifiers that the ingest path compares or sorts (event ids, customer ids,
-- meter slugs, unique keys) use COLLATE "C": byte order, which is what the Go
-- code sorts by (so lock order is the same on both sides) and much cheaper
-- than a linguistic collation in every index insert.

-- Meters: the definition is the meter.Meter JSON as posted. A meter is never
-- deleted, only archived: its rollups stay for the invoices that used them,
-- and its slug is never reused.
CREATE TABLE meters (
    slug        text COLLATE "C" PRIMARY KEY,
    definition  jsonb NOT NULL,
    -- The aggregation, for readers that need only that (invoice lines).
    aggregation text GENERATED ALWAYS AS (definition ->> 'aggregation') STORED,
    created_at  timestamptz NOT NULL DEFAULT now(),
    archived_at timestamptz
);

-- meter_version changes whenever the set of active meters changes. Every
-- ingest transaction reads it (under a shared advisory lock that meter
-- changes take exclusively), so a server's cached meter list is never stale
-- for a transaction that writes rollups.
CREATE TABLE meter_version (
    one     boolean PRIMARY KEY DEFAULT true CHECK (one),
    version bigint NOT NULL
);
INSERT INTO meter_version (version) VALUES (1);

-- Events: append-only, exactly as accepted, partitioned by event time in
-- calendar months (UTC). Partitions are created on demand by the ingest path
-- (events_partition_for below, called once per month per process before the
-- first event of that month is written) and ahead of time here for the
-- lateness window around the migration date. There is no default partition:
-- an event with no partition is an error rather than a row that would later
-- block creating its month's partition. Old months can be detached or dropped
-- whole once no open period needs them.
CREATE TABLE events (
    id          text COLLATE "C" NOT NULL,
    customer_id text COLLATE "C" NOT NULL,
    name        text NOT NULL,
    ts          timestamptz NOT NULL,
    properties  jsonb,
    received_at timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (ts);

-- Support traces a customer's bill back to single events: keyset pages over
-- (customer, time, id).
CREATE INDEX events_customer_ts_id ON events (customer_id, ts, id);

-- event_ids makes the id unique across all partitions (a unique index on a
-- partitioned table must include the partition key, which would let the same
-- id with another timestamp in). The id is unique globally, not per customer,
-- like Stripe's meter event identifier: a retried event is recognised
-- whatever customer or time it claims. ts records where the event lives.
CREATE TABLE event_ids (
    id text COLLATE "C" PRIMARY KEY,
    ts timestamptz NOT NULL
);

-- events_partition_for creates the monthly partition holding time t unless it
-- exists, and returns its name. Concurrent callers are safe: the loser of a
-- creation race sees duplicate_table and returns the name.
CREATE FUNCTION events_partition_for(t timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    lo   timestamptz := date_trunc('month', t AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    hi   timestamptz := (date_trunc('month', t AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
    name text := 'events_' || to_char(t AT TIME ZONE 'UTC', 'YYYY_MM');
BEGIN
    IF to_regclass(quote_ident(name)) IS NULL THEN
        BEGIN
            EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)', name, lo, hi);
        EXCEPTION WHEN duplicate_table THEN
            NULL;
        END;
    END IF;
    RETURN name;
END $$;

SELECT events_partition_for(now() + make_interval(months => m)) FROM generate_series(-2, 2) AS m;

-- Rollups: per customer, meter and hour (UTC) of event time, the mergeable
-- state of meter.Rollup: count and exact sum; min, max and the last value
-- (chosen by event time, then event id byte-wise, then value) are NULL while
-- no value was added (count meters), and the last value is kept for last
-- meters only. A period total merges the hours it covers and never reads raw
-- events (except partial hours at the edges of a period that does not start
-- on the hour).
CREATE TABLE rollups (
    customer_id text COLLATE "C" NOT NULL,
    meter       text COLLATE "C" NOT NULL,
    bucket      timestamptz NOT NULL,
    count       bigint NOT NULL,
    sum         numeric NOT NULL,
    min         numeric,
    max         numeric,
    last_value  numeric,
    last_at     timestamptz,
    last_id     text COLLATE "C",
    PRIMARY KEY (customer_id, meter, bucket)
) WITH (fillfactor = 70); -- room for HOT updates by compaction

-- Exact unique counts: the distinct keys (meter.Meter.UniqueKey) seen per
-- customer, meter and hour. A period's unique count is the number of distinct
-- keys over its hours, so it is exact across bucket boundaries.
CREATE TABLE rollup_unique_keys (
    customer_id text COLLATE "C" NOT NULL,
    meter       text COLLATE "C" NOT NULL,
    bucket      timestamptz NOT NULL,
    key         text COLLATE "C" NOT NULL,
    PRIMARY KEY (customer_id, meter, bucket, key)
);

-- Pending rollups: the ingest transaction that stores a batch's events also
-- appends the batch's pre-aggregated rollups and unique keys here, one row
-- per slot: the customers of a batch are spread over 64 slots by a hash of
-- the customer id (store.rollupSlot), so a batch of 1,000 events writes at
-- most 64 small rows instead of thousands, and a reader finds a customer's
-- pending deltas through the slot index. data is a compact binary encoding
-- (store/usage_pending.go: per customer, its (meter, hour) deltas with
-- exact decimals, and its unique-count keys), written and read only by Go.
-- Rows stay inline and uncompressed up to toast_tuple_target.
--
-- The compactor (Store.CompactRollups, one per server, a fraction of a second
-- behind ingest, one at a time across servers by advisory lock) deletes the
-- pending rows, merges them in Go and upserts the result into rollups and
-- rollup_unique_keys in key order, in one transaction, so each delta is
-- merged exactly once; then it checks the watch levels of exactly the
-- (customer, meter) pairs it merged. Merging is associative: a total is the
-- same before and after compaction, so readers merge rollups with the
-- customer's pending deltas and are exact at every moment.
CREATE TABLE rollup_pending (
    slot smallint NOT NULL,
    data bytea NOT NULL
) WITH (toast_tuple_target = 8160);
ALTER TABLE rollup_pending ALTER COLUMN data SET STORAGE MAIN;
CREATE INDEX rollup_pending_slot ON rollup_pending (slot);

-- Watch levels: per customer and meter, the total (from period_from on) at
-- which the billing workflow wants to be signalled. The ingest path deletes a
-- level when a total reaches it and signals once; the workflow sets new levels.
CREATE TABLE watch_levels (
    customer_id text COLLATE "C" NOT NULL,
    meter       text COLLATE "C" NOT NULL,
    period_from timestamptz NOT NULL,
    level       numeric NOT NULL,
    PRIMARY KEY (customer_id, meter)
);
