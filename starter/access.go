package starter

import (
	"net/http"
)

// customerAccess handles GET /v1/customers/{id}/access: whether the customer
// may use the API ("granted" or "revoked"), why, and since when (null while
// access never changed since signup).
func (s *Server) customerAccess(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	a, err := s.store.AccessState(r.Context(), id)
	if err != nil {
		return found(err, "customer "+id)
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}
