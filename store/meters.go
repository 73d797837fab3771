package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/billcycle/billcycle/billing/meter"
)

// StoredMeter is a meter definition as stored, with its lifecycle.
type StoredMeter struct {
	meter.Meter
	CreatedAt  time.Time  `json:"created_at"`
	ArchivedAt *time.Time `json:"archived_at,omitempty"`
}

// Archived reports whether the meter has been archived.
func (m StoredMeter) Archived() bool { return m.ArchivedAt != nil }

// meterLockID keys the advisory lock between ingest transactions (shared)
// and meter changes (exclusive): a meter change waits for in-flight ingests
// and ingests wait for the change, so each ingest sees one meter list.
const meterLockID = 0x6d657465 // "mete"

const meterColumns = `slug, definition, created_at, archived_at`

func scanMeter(row pgx.Row) (StoredMeter, error) {
	var m StoredMeter
	var slug string
	var def []byte
	err := row.Scan(&slug, &def, &m.CreatedAt, &m.ArchivedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return StoredMeter{}, ErrNotFound
	}
	if err != nil {
		return StoredMeter{}, err
	}
	if err := json.Unmarshal(def, &m.Meter); err != nil {
		return StoredMeter{}, fmt.Errorf("meter %s definition: %w", slug, err)
	}
	m.Slug = slug
	return m, nil
}

// CreateMeter stores m, which must be valid (meter.Meter.Validate), and
// reports whether this call created it. A meter with the same slug and the
// same definition is returned as it is (a repeated create is harmless); one
// with another definition is an error wrapping ErrConflict. Archived meters
// keep their slug.
//
// A new meter counts the events stored before it existed: its rollups are
// filled from the raw events with event time at or after backfillFrom (the
// caller passes now minus the lateness bound, the oldest an event can still
// be) in the same transaction, which holds ingestion back meanwhile so that
// no event is counted twice or missed.
func (s *Store) CreateMeter(ctx context.Context, m meter.Meter, backfillFrom time.Time) (StoredMeter, bool, error) {
	if err := m.Validate(); err != nil {
		return StoredMeter{}, false, fmt.Errorf("create meter: %w", err)
	}
	def, err := json.Marshal(m)
	if err != nil {
		return StoredMeter{}, false, err
	}
	var out StoredMeter
	created, backfilled := false, false
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, meterLockID); err != nil {
			return err
		}
		got, err := scanMeter(tx.QueryRow(ctx, `INSERT INTO meters (slug, definition) VALUES ($1, $2)
			ON CONFLICT (slug) DO NOTHING RETURNING `+meterColumns, m.Slug, def))
		if errors.Is(err, ErrNotFound) {
			existing, err := scanMeter(tx.QueryRow(ctx, `SELECT `+meterColumns+` FROM meters WHERE slug = $1`, m.Slug))
			if err != nil {
				return err
			}
			// jsonb equality ignores key order and number spelling (1.0 = 1).
			var same bool
			if err := tx.QueryRow(ctx, `SELECT definition = $2::jsonb FROM meters WHERE slug = $1`, m.Slug, def).Scan(&same); err != nil {
				return err
			}
			if !same {
				return fmt.Errorf("meter %s exists with another definition: %w", m.Slug, ErrConflict)
			}
			out = existing
			return nil
		}
		if err != nil {
			return err
		}
		out, created = got, true
		if _, err := tx.Exec(ctx, `UPDATE meter_version SET version = version + 1`); err != nil {
			return err
		}
		backfilled, err = backfill(ctx, tx, got.Meter, backfillFrom)
		return err
	})
	if err != nil {
		return StoredMeter{}, false, fmt.Errorf("create meter %s: %w", m.Slug, err)
	}
	if backfilled {
		s.ingest.kickCompactor(s) // merge the backfilled rollups
	}
	return out, created, nil
}

// backfill folds the stored events of m's event name since from into m's
// rollups (as pending rollups) and reports whether there were any.
func backfill(ctx context.Context, tx pgx.Tx, m meter.Meter, from time.Time) (bool, error) {
	rows, err := tx.Query(ctx, `SELECT id, customer_id, ts, properties FROM events WHERE name = $1 AND ts >= $2`, m.EventName, from)
	if err != nil {
		return false, fmt.Errorf("backfill: %w", err)
	}
	agg := newAggregator()
	meters := []meter.Meter{m}
	var ev meter.Event
	var props []byte
	ev.Name = m.EventName
	_, err = pgx.ForEachRow(rows, []any{&ev.ID, &ev.CustomerID, &ev.Timestamp, &props}, func() error {
		p, err := decodeProperties(props)
		if err != nil {
			return fmt.Errorf("event %s: %w", ev.ID, err)
		}
		ev.Properties = p
		agg.add(ev, meters)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("backfill: %w", err)
	}
	return agg.len() > 0, agg.write(ctx, tx)
}

// decodeProperties decodes stored properties the way meter's decoder does:
// numbers as json.Number, null as nil.
func decodeProperties(raw []byte) (map[string]any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var p map[string]any
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("properties: %w", err)
	}
	return p, nil
}

// Meter returns the meter with the given slug, archived or not, or
// ErrNotFound.
func (s *Store) Meter(ctx context.Context, slug string) (StoredMeter, error) {
	m, err := scanMeter(s.pool.QueryRow(ctx, `SELECT `+meterColumns+` FROM meters WHERE slug = $1`, slug))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return StoredMeter{}, fmt.Errorf("meter %s: %w", slug, err)
	}
	return m, err
}

// Meters lists meters by slug; archived ones only when includeArchived.
func (s *Store) Meters(ctx context.Context, includeArchived bool) ([]StoredMeter, error) {
	return listMeters(ctx, s.pool, includeArchived)
}

func listMeters(ctx context.Context, q querier, includeArchived bool) ([]StoredMeter, error) {
	rows, err := q.Query(ctx, `SELECT `+meterColumns+` FROM meters WHERE $1 OR archived_at IS NULL ORDER BY slug`, includeArchived)
	if err != nil {
		return nil, fmt.Errorf("list meters: %w", err)
	}
	defer rows.Close()
	var ms []StoredMeter
	for rows.Next() {
		m, err := scanMeter(rows)
		if err != nil {
			return nil, fmt.Errorf("list meters: %w", err)
		}
		ms = append(ms, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list meters: %w", err)
	}
	return ms, nil
}

// ArchiveMeter archives the meter: it stops counting new events, drops out
// of MeterTotals, and keeps its rollups and slug. Archiving an archived
// meter changes nothing. It returns the meter, or ErrNotFound.
func (s *Store) ArchiveMeter(ctx context.Context, slug string) (StoredMeter, error) {
	var out StoredMeter
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, meterLockID); err != nil {
			return err
		}
		m, err := scanMeter(tx.QueryRow(ctx, `UPDATE meters SET archived_at = now() WHERE slug = $1 AND archived_at IS NULL
			RETURNING `+meterColumns, slug))
		if errors.Is(err, ErrNotFound) {
			out, err = scanMeter(tx.QueryRow(ctx, `SELECT `+meterColumns+` FROM meters WHERE slug = $1`, slug))
			return err
		}
		if err != nil {
			return err
		}
		out = m
		_, err = tx.Exec(ctx, `UPDATE meter_version SET version = version + 1`)
		return err
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return StoredMeter{}, fmt.Errorf("archive meter %s: %w", slug, err)
	}
	return out, err
}

// querier is what pgxpool.Pool and pgx.Tx have in common.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// meterSet is the active meters at one meter_version, indexed by event name.
type meterSet struct {
	version int64
	byName  map[string][]meter.Meter
	bySlug  map[string]meter.Meter
}

// activeMeters returns the meters at version, reading them through q (the
// ingest transaction) when the cache holds another version.
func (s *Store) activeMeters(ctx context.Context, q querier, version int64) (*meterSet, error) {
	c := s.ingest
	c.mu.Lock()
	set := c.set
	c.mu.Unlock()
	if set != nil && set.version == version {
		return set, nil
	}
	ms, err := listMeters(ctx, q, false)
	if err != nil {
		return nil, err
	}
	set = &meterSet{version: version, byName: map[string][]meter.Meter{}, bySlug: map[string]meter.Meter{}}
	for _, m := range ms {
		set.byName[m.EventName] = append(set.byName[m.EventName], m.Meter)
		set.bySlug[m.Slug] = m.Meter
	}
	c.mu.Lock()
	if c.set == nil || c.set.version < version {
		c.set = set
	}
	c.mu.Unlock()
	return set, nil
}
