package starter

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/billcycle/billcycle/billing/meter"
	"github.com/billcycle/billcycle/store"
	"github.com/billcycle/billcycle/workflows"
)

// MaxBatchEvents is the most events one POST /v1/events may carry.
const MaxBatchEvents = 10000

// ingestResponse is the answer to POST /v1/events.
type ingestResponse struct {
	Accepted   int               `json:"accepted"`
	Duplicates int               `json:"duplicates"`
	Rejected   []meter.Rejection `json:"rejected"`
}

// ingestEvents serves POST /v1/events: a batch of up to MaxBatchEvents
// events as JSON ({"events":[...]} or a bare array), a CloudEvents batch, or
// one CloudEvent. Every event is validated on its own; the valid ones are
// stored (exactly once per id) even when others are rejected. The answer is
// 200 when nothing was rejected and 207 Multi-Status when something was, so
// that a client checking only the status notices a partial batch; the body
// has the same shape either way. Retrying a batch is safe: the events stored
// before count as duplicates.
func (s *Server) ingestEvents(w http.ResponseWriter, r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	body, err := readBody(w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	events, rejected, err := meter.DecodeAndValidate(body, ct, s.now(), s.cfg.MaxEventLateness, s.cfg.MaxEventFuture)
	switch {
	case errors.Is(err, meter.ErrUnsupportedContentType):
		return &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Message: err.Error()}
	case err != nil:
		return Invalid("", "%v", err)
	}
	if n := len(events) + len(rejected); n > MaxBatchEvents {
		return Invalid("events", "a batch holds at most %d events, got %d; split it", MaxBatchEvents, n)
	}
	res, err := s.store.IngestEvents(r.Context(), events)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if len(rejected) > 0 {
		status = http.StatusMultiStatus
	}
	if rejected == nil {
		rejected = []meter.Rejection{}
	}
	writeJSON(w, status, ingestResponse{Accepted: res.Accepted, Duplicates: res.Duplicates, Rejected: rejected})
	return nil
}

// signalTimeout bounds one usage-crossed signal.
const signalTimeout = 10 * time.Second

// signalCrossings nudges each customer workflow whose usage reached a watch
// level. The store's compactor calls it (registered by meteringRoutes) about
// a second after the ingest that reached the level. A failed signal is only
// logged: the events are stored and the workflow reads usage on its own
// timer as well.
func (s *Server) signalCrossings(ctx context.Context, crossings []store.Crossing) {
	for _, c := range crossings {
		id := workflows.CustomerWorkflowID(c.CustomerID)
		sctx, cancel := context.WithTimeout(ctx, signalTimeout)
		err := s.temporal.SignalWorkflow(sctx, id, "", workflows.SignalUsageCrossed, workflows.UsageCrossed{Meter: c.Meter})
		cancel()
		if err != nil {
			s.log.WarnContext(ctx, "signal usage crossed", "workflow_id", id, "meter", c.Meter, "level", c.Level, "err", err)
		}
	}
}

// listEvents serves GET /v1/events?customer_id=&from=&to=&limit=&cursor=:
// a customer's raw events in (timestamp, id) order, a page at a time.
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	eq := store.EventQuery{CustomerID: q.Get("customer_id"), Cursor: q.Get("cursor"), Limit: 100}
	if eq.CustomerID == "" {
		return Invalid("customer_id", "is required")
	}
	var err error
	if eq.From, err = optionalTime(q.Get("from"), "from"); err != nil {
		return err
	}
	if eq.To, err = optionalTime(q.Get("to"), "to"); err != nil {
		return err
	}
	if v := q.Get("limit"); v != "" {
		if eq.Limit, err = strconv.Atoi(v); err != nil || eq.Limit < 1 || eq.Limit > 1000 {
			return Invalid("limit", "must be a whole number from 1 to 1000, got %q", v)
		}
	}
	events, next, err := s.store.Events(r.Context(), eq)
	if errors.Is(err, store.ErrBadCursor) {
		return Invalid("cursor", "is not a cursor returned by this endpoint")
	}
	if err != nil {
		return err
	}
	if events == nil {
		events = []store.StoredEvent{}
	}
	out := map[string]any{"events": events, "has_more": next != ""}
	if next != "" {
		out["next_cursor"] = next
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// optionalTime parses an RFC 3339 query parameter; empty means zero.
func optionalTime(v, field string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, Invalid(field, "must be an RFC 3339 time such as 2026-11-01T00:00:00Z, got %q", v)
	}
	return t.UTC(), nil
}
