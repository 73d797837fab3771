package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// APIKeyPrefix starts every API key, so leaked keys are easy to recognise.
const APIKeyPrefix = "bc_"

// APIKey is a stored key's public record; the key itself is never stored.
type APIKey struct {
	ID     int64
	Name   string
	Prefix string
}

// CreateAPIKey makes a new random API key named name, stores only its SHA-256
// hash and returns the key, which cannot be shown again.
func (s *Store) CreateAPIKey(ctx context.Context, name string) (string, APIKey, error) {
	var raw [20]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", APIKey{}, err
	}
	key := APIKeyPrefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw[:]))
	k := APIKey{Name: name, Prefix: key[:len(APIKeyPrefix)+6]}
	sum := sha256.Sum256([]byte(key))
	err := s.pool.QueryRow(ctx, `INSERT INTO api_keys (name, prefix, hash) VALUES ($1, $2, $3) RETURNING id`,
		name, k.Prefix, sum[:]).Scan(&k.ID)
	if err != nil {
		return "", APIKey{}, fmt.Errorf("create api key: %w", err)
	}
	return key, k, nil
}

// AuthenticateAPIKey returns the live key matching key, or ErrNotFound.
// SHA-256 without salt suits these keys: they carry 160 random bits, so there
// is nothing to guess and the lookup stays one indexed query.
func (s *Store) AuthenticateAPIKey(ctx context.Context, key string) (APIKey, error) {
	if !strings.HasPrefix(key, APIKeyPrefix) {
		return APIKey{}, ErrNotFound
	}
	sum := sha256.Sum256([]byte(key))
	var k APIKey
	err := s.pool.QueryRow(ctx, `SELECT id, name, prefix FROM api_keys WHERE hash = $1 AND revoked_at IS NULL`,
		sum[:]).Scan(&k.ID, &k.Name, &k.Prefix)
	if errors.Is(err, pgx.ErrNoRows) {
		return APIKey{}, ErrNotFound
	}
	if err != nil {
		return APIKey{}, fmt.Errorf("authenticate api key: %w", err)
	}
	// Record use at most once a minute, so busy keys do not contend on one row.
	if _, err := s.pool.Exec(ctx, `UPDATE api_keys SET last_used_at = now()
		WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`, k.ID); err != nil {
		return APIKey{}, fmt.Errorf("authenticate api key: %w", err)
	}
	return k, nil
}

// RevokeAPIKey revokes the key with the given id.
func (s *Store) RevokeAPIKey(ctx context.Context, id int64) error {
	tag, err := s.pool.Exec(ctx, `UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL`, id)
	if err != nil {
		return fmt.Errorf("revoke api key %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}
