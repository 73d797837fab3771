package starter

import (
	"errors"
	"net/http"

	"github.com/billcycle/billcycle/billing/meter"
	"github.com/billcycle/billcycle/store"
)

// meteringRoutes adds the meter, usage and event routes, and has the store's
// compactor report reached watch levels to signalCrossings.
func (s *Server) meteringRoutes(mux *http.ServeMux) {
	s.store.HandleCrossings(s.signalCrossings)
	mux.Handle("POST /v1/events", s.authed(s.ingestEvents))
	mux.Handle("GET /v1/events", s.authed(s.listEvents))
	mux.Handle("POST /v1/meters", s.authed(s.createMeter))
	mux.Handle("GET /v1/meters", s.authed(s.listMeters))
	mux.Handle("GET /v1/meters/{slug}", s.authed(s.getMeter))
	mux.Handle("POST /v1/meters/{slug}/archive", s.authed(s.archiveMeter))
	mux.Handle("GET /v1/meters/{slug}/usage", s.authed(s.meterUsage))
}

// createMeter serves POST /v1/meters: 201 with the new meter, 200 with the
// stored one when the same definition is posted again, 409 when the slug
// holds another definition, 400 naming the offending field (for example
// "filter.conditions[0].value") when the definition is invalid. A new meter
// also counts the events already stored within the lateness bound.
func (s *Server) createMeter(w http.ResponseWriter, r *http.Request) error {
	var m meter.Meter
	if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &m); err != nil {
		return err
	}
	if err := m.Validate(); err != nil {
		var fe *meter.FieldError
		if errors.As(err, &fe) {
			return Invalid(fe.Field, "%s", fe.Message)
		}
		return Invalid("", "%v", err)
	}
	got, created, err := s.store.CreateMeter(r.Context(), m, s.now().Add(-s.cfg.MaxEventLateness))
	if errors.Is(err, store.ErrConflict) {
		return &Error{Status: http.StatusConflict, Code: "conflict", Field: "slug",
			Message: "meter " + m.Slug + " exists with another definition; meters cannot be changed, create one with a new slug"}
	}
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, got)
	return nil
}

// listMeters serves GET /v1/meters: every meter, archived ones included
// (with archived_at), by slug.
func (s *Server) listMeters(w http.ResponseWriter, r *http.Request) error {
	ms, err := s.store.Meters(r.Context(), true)
	if err != nil {
		return err
	}
	if ms == nil {
		ms = []store.StoredMeter{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"meters": ms})
	return nil
}

// getMeter serves GET /v1/meters/{slug}.
func (s *Server) getMeter(w http.ResponseWriter, r *http.Request) error {
	m, err := s.store.Meter(r.Context(), r.PathValue("slug"))
	if err != nil {
		return found(err, "meter "+r.PathValue("slug"))
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

// archiveMeter serves POST /v1/meters/{slug}/archive: the meter stops
// counting new events and leaves the billed totals; its history stays.
func (s *Server) archiveMeter(w http.ResponseWriter, r *http.Request) error {
	m, err := s.store.ArchiveMeter(r.Context(), r.PathValue("slug"))
	if err != nil {
		return found(err, "meter "+r.PathValue("slug"))
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

// meterUsage serves GET /v1/meters/{slug}/usage?customer_id=&from=&to=&window=:
// the customer's total over [from, to) and a series with one point per
// window (hour, day or month in UTC; default day).
func (s *Server) meterUsage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	customer := q.Get("customer_id")
	if customer == "" {
		return Invalid("customer_id", "is required")
	}
	from, err := optionalTime(q.Get("from"), "from")
	if err != nil {
		return err
	}
	if from.IsZero() {
		return Invalid("from", "is required")
	}
	to, err := optionalTime(q.Get("to"), "to")
	if err != nil {
		return err
	}
	if to.IsZero() {
		return Invalid("to", "is required")
	}
	if !from.Before(to) {
		return Invalid("to", "must be after from")
	}
	window := store.Window(q.Get("window"))
	switch window {
	case "":
		window = store.WindowDay
	case store.WindowHour, store.WindowDay, store.WindowMonth:
	default:
		return Invalid("window", "must be hour, day or month, got %q", window)
	}
	u, err := s.store.Usage(r.Context(), r.PathValue("slug"), customer, from, to, window)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return NotFound("meter " + r.PathValue("slug"))
	case errors.Is(err, store.ErrTooManyPoints):
		return Invalid("window", "the range holds more than %d %ss; use a larger window", store.MaxUsagePoints, window)
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}
