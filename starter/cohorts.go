package starter

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/billcycle/billcycle/billing"
	"github.com/billcycle/billcycle/store"
)

// Defaults of the overdue cohort: more than one outstanding invoice, due over
// a month ago.
const (
	defaultMinOutstanding = 2
	defaultOlderThan      = 30 * 24 * time.Hour
	maxCohortRows         = 1000
)

type cohortResponse struct {
	MinOutstanding int                     `json:"min_outstanding"`
	OlderThan      billing.Duration        `json:"older_than"`
	DueBefore      time.Time               `json:"due_before"`
	Customers      []store.OverdueCustomer `json:"customers"`
}

// parsePeriod reads a Go duration ("720h") or a number of days ("30d").
func parsePeriod(v string) (time.Duration, bool) {
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 3650 {
			return 0, false
		}
		return time.Duration(n) * 24 * time.Hour, true
	}
	d, err := time.ParseDuration(v)
	return d, err == nil && d >= 0 && d <= 3650*24*time.Hour
}

// overdueCohort lists the customers with at least min_outstanding open
// invoices (default 2) due longer ago than older_than (default 30d), for
// sales and support.
func (s *Server) overdueCohort(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	resp := cohortResponse{MinOutstanding: defaultMinOutstanding, OlderThan: billing.Duration(defaultOlderThan)}
	if v := q.Get("min_outstanding"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return Invalid("min_outstanding", "must be a whole number from 1 to 10000, got %q", v)
		}
		resp.MinOutstanding = n
	}
	if v := q.Get("older_than"); v != "" {
		d, ok := parsePeriod(v)
		if !ok {
			return Invalid("older_than", "must be a period such as 30d or 720h (at most 3650d), got %q", v)
		}
		resp.OlderThan = billing.Duration(d)
	}
	limit := maxCohortRows
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxCohortRows {
			return Invalid("limit", "must be a whole number from 1 to %d, got %q", maxCohortRows, v)
		}
		limit = n
	}
	resp.DueBefore = s.now().UTC().Add(-time.Duration(resp.OlderThan)).Truncate(time.Second)
	rows, err := s.store.OverdueCohort(r.Context(), resp.MinOutstanding, resp.DueBefore, limit)
	if err != nil {
		return err
	}
	resp.Customers = rows
	if resp.Customers == nil {
		resp.Customers = []store.OverdueCustomer{}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}
