package starter

import (
	"net/http"
	"strconv"

	"github.com/billcycle/billcycle/store"
)

// listNotices handles GET /v1/notices?customer_id=&kind=&limit=: the notices
// recorded for a customer, oldest first. With no SendGrid key set this is the
// dev outbox (status "outbox"): what would have been sent.
func (s *Server) listNotices(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := store.NoticeFilter{CustomerID: q.Get("customer_id"), Kind: q.Get("kind"), Limit: 100}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return Invalid("limit", "must be a whole number from 1 to 1000, got %q", v)
		}
		f.Limit = n
	}
	notices, err := s.store.Notices(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"notices": notices})
	return nil
}
