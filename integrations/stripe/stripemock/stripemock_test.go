package stripemock_test

import (
	"net/http"
	"testing"

	"github.com/billcycle/billcycle/integrations/stripe/stripemock"
)

func TestStartServesStripeAPI(t *testing.T) {
	url := stripemock.Start(t)
	tests := []struct {
		key  string
		want int
	}{
		{"sk_test_123", http.StatusOK},
		{"", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(http.MethodGet, url+"/v1/invoices/in_123", nil)
		if err != nil {
			t.Fatal(err)
		}
		if tt.key != "" {
			req.Header.Set("Authorization", "Bearer "+tt.key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET invoice: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("GET invoice with key %q = %d, want %d", tt.key, resp.StatusCode, tt.want)
		}
	}
}
