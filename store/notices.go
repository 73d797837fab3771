package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Notice statuses. A notice is claimed as pending before anything is sent;
// it ends sent (the provider accepted it), outbox (recorded in the dev outbox
// instead of sent) or failed (the provider refused it for good).
const (
	NoticePending = "pending"
	NoticeSent    = "sent"
	NoticeFailed  = "failed"
	NoticeOutbox  = "outbox"
)

// Notice channels: where a notice goes. ChannelOutbox means the dev outbox,
// used for email while no SendGrid key is set (and for Slack or webhooks
// while no URL is configured).
const (
	ChannelEmail   = "email"
	ChannelSlack   = "slack"
	ChannelWebhook = "webhook"
	ChannelOutbox  = "outbox"
)

// Notice is one recorded email, Slack message or webhook, keyed by its dedupe
// key.
type Notice struct {
	DedupeKey         string         `json:"dedupe_key"`
	CustomerID        string         `json:"customer_id,omitempty"`
	Kind              string         `json:"kind"`
	Channel           string         `json:"channel"`
	Recipient         string         `json:"recipient,omitempty"`
	Subject           string         `json:"subject,omitempty"`
	Body              string         `json:"body,omitempty"`
	TemplateID        string         `json:"template_id,omitempty"`
	Data              map[string]any `json:"data,omitempty"`
	Status            string         `json:"status"`
	ProviderMessageID string         `json:"provider_message_id,omitempty"`
	Attempts          int            `json:"attempts"`
	LastError         string         `json:"last_error,omitempty"`
	CreatedAt         time.Time      `json:"created_at"`
	SentAt            *time.Time     `json:"sent_at,omitempty"`
}

// Delivered reports whether the notice reached its provider or the outbox, so
// that sending it again would be a duplicate.
func (n Notice) Delivered() bool { return n.Status == NoticeSent || n.Status == NoticeOutbox }

const noticeColumns = `dedupe_key, customer_id, kind, channel, recipient, subject, body, template_id, data,
	status, provider_message_id, attempts, last_error, created_at, sent_at`

func scanNotice(row pgx.Row) (Notice, error) {
	var n Notice
	var data []byte
	err := row.Scan(&n.DedupeKey, &n.CustomerID, &n.Kind, &n.Channel, &n.Recipient, &n.Subject, &n.Body, &n.TemplateID,
		&data, &n.Status, &n.ProviderMessageID, &n.Attempts, &n.LastError, &n.CreatedAt, &n.SentAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Notice{}, ErrNotFound
	}
	if err != nil {
		return Notice{}, err
	}
	if err := json.Unmarshal(data, &n.Data); err != nil {
		return Notice{}, fmt.Errorf("notice %s data: %w", n.DedupeKey, err)
	}
	return n, nil
}

// insertNotice runs the claim's INSERT ... ON CONFLICT DO NOTHING on q and
// returns ErrNotFound when the key was already there.
func insertNotice(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, n Notice) (Notice, error) {
	if n.DedupeKey == "" {
		return Notice{}, errors.New("notice has no dedupe key")
	}
	if n.Data == nil {
		n.Data = map[string]any{}
	}
	data, err := json.Marshal(n.Data)
	if err != nil {
		return Notice{}, fmt.Errorf("notice %s data: %w", n.DedupeKey, err)
	}
	return scanNotice(q.QueryRow(ctx, `
		INSERT INTO notices (dedupe_key, customer_id, kind, channel, recipient, subject, body, template_id, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (dedupe_key) DO NOTHING
		RETURNING `+noticeColumns,
		n.DedupeKey, n.CustomerID, n.Kind, n.Channel, n.Recipient, n.Subject, n.Body, n.TemplateID, data))
}

// ClaimNotice records n as pending unless a notice with its dedupe key
// exists. It returns the stored notice and whether this call created it. A
// caller sends only when the returned notice is not Delivered: a pending row
// it did not create is a send that crashed before its outcome was recorded.
func (s *Store) ClaimNotice(ctx context.Context, n Notice) (Notice, bool, error) {
	got, err := insertNotice(ctx, s.pool, n)
	if err == nil {
		return got, true, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return Notice{}, false, fmt.Errorf("claim notice %s: %w", n.DedupeKey, err)
	}
	got, err = s.Notice(ctx, n.DedupeKey)
	return got, false, err
}

// Notice returns the notice with the given dedupe key, or ErrNotFound.
func (s *Store) Notice(ctx context.Context, dedupeKey string) (Notice, error) {
	n, err := scanNotice(s.pool.QueryRow(ctx, `SELECT `+noticeColumns+` FROM notices WHERE dedupe_key = $1`, dedupeKey))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Notice{}, fmt.Errorf("notice %s: %w", dedupeKey, err)
	}
	return n, err
}

// FinishNotice records the outcome of one send attempt: status is NoticeSent
// or NoticeOutbox with the provider's message id, NoticeFailed for a
// permanent refusal, or NoticePending for a failure worth retrying; lastError
// says what went wrong. A notice already delivered is left as it is.
func (s *Store) FinishNotice(ctx context.Context, dedupeKey, status, providerMessageID, lastError string) error {
	switch status {
	case NoticePending, NoticeSent, NoticeFailed, NoticeOutbox:
	default:
		return fmt.Errorf("finish notice %s: unknown status %q", dedupeKey, status)
	}
	tag, err := s.pool.Exec(ctx, `
		UPDATE notices SET status = $2, provider_message_id = $3, last_error = $4, attempts = attempts + 1,
			sent_at = CASE WHEN $2 IN ('sent', 'outbox') THEN now() END
		WHERE dedupe_key = $1 AND status NOT IN ('sent', 'outbox')`, dedupeKey, status, providerMessageID, lastError)
	if err != nil {
		return fmt.Errorf("finish notice %s: %w", dedupeKey, err)
	}
	if tag.RowsAffected() == 0 {
		if _, err := s.Notice(ctx, dedupeKey); err != nil {
			return err
		}
	}
	return nil
}

// NoticeFilter selects notices; empty fields match everything.
type NoticeFilter struct {
	CustomerID string
	Kind       string
	// Limit bounds the result (default 100, at most 1000).
	Limit int
}

// Notices lists notices matching f, oldest first.
func (s *Store) Notices(ctx context.Context, f NoticeFilter) ([]Notice, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	rows, err := s.pool.Query(ctx, `SELECT `+noticeColumns+` FROM notices
		WHERE ($1 = '' OR customer_id = $1) AND ($2 = '' OR kind = $2)
		ORDER BY created_at, dedupe_key LIMIT $3`, f.CustomerID, f.Kind, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list notices: %w", err)
	}
	defer rows.Close()
	out := []Notice{}
	for rows.Next() {
		n, err := scanNotice(rows)
		if err != nil {
			return nil, fmt.Errorf("list notices: %w", err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list notices: %w", err)
	}
	return out, nil
}

// ClaimAccessChange grants or revokes n.CustomerID's access and claims the
// notice n that announces the change, in one transaction, so a notice exists
// exactly when its dedupe key changed the access state. It returns the stored
// notice (its Data gains "changed_at") and whether the key changed access:
// true with a fresh pending notice the first time, true with the existing
// notice when the key was seen before, false (and no notice) when access was
// already as asked. An unknown customer is ErrNotFound.
func (s *Store) ClaimAccessChange(ctx context.Context, n Notice, granted bool, reason string) (Notice, bool, error) {
	state := "revoked"
	if granted {
		state = "granted"
	}
	var out Notice
	var changed bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		got, err := insertNotice(ctx, tx, n)
		if errors.Is(err, ErrNotFound) {
			out, err = scanNotice(tx.QueryRow(ctx, `SELECT `+noticeColumns+` FROM notices WHERE dedupe_key = $1`, n.DedupeKey))
			changed = err == nil
			return err
		}
		if err != nil {
			return err
		}
		var at time.Time
		err = tx.QueryRow(ctx, `UPDATE customers SET access = $2, access_reason = $3, access_changed_at = now(), updated_at = now()
			WHERE id = $1 AND access <> $2 RETURNING access_changed_at`, n.CustomerID, state, reason).Scan(&at)
		if errors.Is(err, pgx.ErrNoRows) {
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM customers WHERE id = $1)`, n.CustomerID).Scan(&exists); err != nil {
				return err
			}
			if !exists {
				return ErrNotFound
			}
			return errUnchanged
		}
		if err != nil {
			return err
		}
		out, err = scanNotice(tx.QueryRow(ctx, `UPDATE notices SET data = data || jsonb_build_object('changed_at', $2::timestamptz)
			WHERE dedupe_key = $1 RETURNING `+noticeColumns, got.DedupeKey, at))
		changed = err == nil
		return err
	})
	switch {
	case errors.Is(err, errUnchanged):
		return Notice{}, false, nil
	case errors.Is(err, ErrNotFound):
		return Notice{}, false, fmt.Errorf("access change of customer %s: %w", n.CustomerID, ErrNotFound)
	case err != nil:
		return Notice{}, false, fmt.Errorf("access change of customer %s: %w", n.CustomerID, err)
	}
	return out, changed, nil
}

// errUnchanged rolls back a claimed access notice when access was already as
// asked.
var errUnchanged = errors.New("access unchanged")

// Access is a customer's API access state.
type Access struct {
	CustomerID string `json:"customer_id"`
	// Access is "granted" or "revoked".
	Access    string     `json:"access"`
	Reason    string     `json:"reason"`
	ChangedAt *time.Time `json:"changed_at"`
}

// AccessState returns the access state of a customer, or ErrNotFound.
func (s *Store) AccessState(ctx context.Context, customerID string) (Access, error) {
	a := Access{CustomerID: customerID}
	err := s.pool.QueryRow(ctx, `SELECT access, access_reason, access_changed_at FROM customers WHERE id = $1`, customerID).
		Scan(&a.Access, &a.Reason, &a.ChangedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Access{}, ErrNotFound
	}
	if err != nil {
		return Access{}, fmt.Errorf("access of %s: %w", customerID, err)
	}
	return a, nil
}
