// Package starter is billcycle's HTTP front door: it authenticates API
// callers, validates input, writes to the store and starts or signals
// workflows (signups, usage events, Stripe webhooks, the admin API). It knows
// workflows only by their names and ids.
package starter

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/billcycle/billcycle/config"
	"github.com/billcycle/billcycle/store"
)

// Temporal is the part of the Temporal client the front door uses;
// client.Client satisfies it.
type Temporal interface {
	ExecuteWorkflow(ctx context.Context, options client.StartWorkflowOptions, workflow any, args ...any) (client.WorkflowRun, error)
	SignalWorkflow(ctx context.Context, workflowID, runID, signalName string, arg any) error
	CheckHealth(ctx context.Context, request *client.CheckHealthRequest) (*client.CheckHealthResponse, error)
}

// Server serves the HTTP API.
type Server struct {
	store    *store.Store
	temporal Temporal
	cfg      config.Config
	log      *slog.Logger
	now      func() time.Time

	keysMu sync.Mutex
	keys   map[[32]byte]cachedKey
}

type cachedKey struct {
	key     store.APIKey
	expires time.Time
}

// keyCacheTTL bounds how long a revoked key may still be accepted by a
// running server, in exchange for one database lookup per key per TTL.
const keyCacheTTL = 30 * time.Second

// New builds a Server.
func New(st *store.Store, tc Temporal, cfg config.Config, log *slog.Logger) *Server {
	return &Server{store: st, temporal: tc, cfg: cfg, log: log, now: time.Now, keys: map[[32]byte]cachedKey{}}
}

// Handler returns the API's routes wrapped in logging and panic recovery.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("POST /v1/signups", s.authed(s.signup))
	s.catalogRoutes(mux)
	s.noticeRoutes(mux)
	s.meteringRoutes(mux)
	s.dunningRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &Error{Status: http.StatusNotFound, Code: "not_found", Message: "no route for " + r.Method + " " + r.URL.Path})
	})
	return s.logged(mux)
}

// handlerFunc is an API handler that returns its error for the wrapper to write.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// authed requires a valid API key and writes the handler's error, if any.
func (s *Server) authed(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.authenticate(r); err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="billcycle"`)
			writeError(w, err)
			return
		}
		s.serve(w, r, h)
	})
}

// public serves a handler that needs no API key (webhooks verify their own signatures).
func (s *Server) public(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, h) })
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, h handlerFunc) {
	if err := h(w, r); err != nil {
		var apiErr *Error
		if !errors.As(err, &apiErr) {
			s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		writeError(w, err)
	}
}

func (s *Server) authenticate(r *http.Request) error {
	unauth := func(msg string) error {
		return &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: msg}
	}
	h := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || token == "" {
		return unauth("missing Authorization: Bearer <api key> header")
	}
	sum := sha256.Sum256([]byte(token))
	now := s.now()
	s.keysMu.Lock()
	c, hit := s.keys[sum]
	s.keysMu.Unlock()
	if hit && now.Before(c.expires) {
		return nil
	}
	k, err := s.store.AuthenticateAPIKey(r.Context(), token)
	if errors.Is(err, store.ErrNotFound) {
		return unauth("invalid or revoked API key")
	}
	if err != nil {
		return err
	}
	s.keysMu.Lock()
	s.keys[sum] = cachedKey{key: k, expires: now.Add(keyCacheTTL)}
	s.keysMu.Unlock()
	return nil
}

// statusRecorder remembers the status a handler wrote, for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (s *Server) logged(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if p := recover(); p != nil {
				s.log.ErrorContext(r.Context(), "panic in handler", "method", r.Method, "path", r.URL.Path, "panic", p)
				writeError(rec, errors.New("panic"))
				rec.status = http.StatusInternalServerError
			}
			level := slog.LevelInfo
			if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
				level = slog.LevelDebug
			}
			s.log.Log(r.Context(), level, "http", "method", r.Method, "path", r.URL.Path, "status", rec.status,
				"duration_ms", float64(time.Since(start).Microseconds())/1000)
		}()
		next.ServeHTTP(rec, r)
	})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 only when Postgres and Temporal both answer.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"postgres": "ok", "temporal": "ok"}
	ready := true
	if err := s.store.Ping(ctx); err != nil {
		checks["postgres"] = err.Error()
		ready = false
	}
	if _, err := s.temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		checks["temporal"] = err.Error()
		ready = false
	}
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"ready": ready, "checks": checks})
}
