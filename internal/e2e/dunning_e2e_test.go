package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/billcycle/billcycle/starter"
	"github.com/billcycle/billcycle/store"
	"github.com/billcycle/billcycle/workflows"
)

const e2eWebhookSecret = "whsec_e2e"

// TestDunningEndToEnd runs a compressed policy (steps a second apart) on the
// real Temporal dev server and Postgres: a signed payment_failed webhook
// starts the sequence, two notices land in the outbox and access is
// suspended, a signed invoice.paid webhook stops it and restores access.
func TestDunningEndToEnd(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	cfg := s.cfg
	cfg.StripeWebhookSecret = e2eWebhookSecret
	api := httptest.NewServer(starter.New(s.store, s.tc, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))).Handler())
	t.Cleanup(api.Close)

	n := time.Now().UnixNano()
	cust, plan, inv := fmt.Sprintf("dun-%d", n), fmt.Sprintf("plan-%d", n), fmt.Sprintf("inv-%d", n)
	if _, _, err := s.store.CreateCustomer(ctx, store.Customer{ID: cust, Email: "ap@" + cust + ".test", Name: "Dunned", Plan: plan}); err != nil {
		t.Fatal(err)
	}
	if err := s.store.SetStripeCustomerID(ctx, cust, "cus_"+cust); err != nil {
		t.Fatal(err)
	}

	policy := `{"steps":[
		{"after":"0s","action":"email_notice","template":"dunning_reminder"},
		{"after":"1s","action":"email_notice","template":"dunning_second_reminder"},
		{"after":"2s","action":"suspend_access","template":"dunning_access_suspended"},
		{"after":"10m","action":"email_notice","template":"dunning_final_warning"}]}`
	req, _ := http.NewRequest("PUT", api.URL+"/v1/plans/"+plan+"/dunning-policy", strings.NewReader(policy))
	req.Header.Set("Authorization", "Bearer "+s.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PUT dunning policy status = %d, want 200", resp.StatusCode)
	}

	deliver := func(id, typ string, paid bool) {
		t.Helper()
		status := "open"
		if paid {
			status = "paid"
		}
		payload, _ := json.Marshal(map[string]any{"id": id, "object": "event", "api_version": "2023-10-16",
			"created": time.Now().Unix(), "type": typ, "data": map[string]any{"object": map[string]any{
				"id": "in_" + inv, "object": "invoice", "customer": "cus_" + cust, "status": status, "paid": paid,
				"metadata": map[string]string{"billcycle_invoice_id": inv}, "amount_remaining": 4200, "currency": "usd"}}})
		signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: e2eWebhookSecret})
		req, _ := http.NewRequest("POST", api.URL+"/v1/webhooks/stripe", strings.NewReader(string(payload)))
		req.Header.Set("Stripe-Signature", signed.Header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("webhook %s status = %d (%s), want 200", typ, resp.StatusCode, body)
		}
	}
	wid := workflows.DunningWorkflowID(inv)
	t.Cleanup(func() { _ = s.tc.TerminateWorkflow(context.Background(), wid, "", "test over") })

	deliver(fmt.Sprintf("evt_fail_%d", n), "invoice.payment_failed", false)
	dunningKeys := func() []string {
		ns, _ := s.store.Notices(ctx, store.NoticeFilter{CustomerID: cust, Kind: workflows.NoticeKindDunning})
		var keys []string
		for _, n := range ns {
			if n.Delivered() {
				keys = append(keys, n.DedupeKey)
			}
		}
		return keys
	}
	base := "dunning/" + inv
	eventually(t, "two dunning notices in the outbox and access suspended", func() (bool, string) {
		keys := dunningKeys()
		c, _ := s.store.Customer(ctx, cust)
		return slices.Contains(keys, base+"/step-0") && slices.Contains(keys, base+"/step-1") && c.Access == "revoked",
			fmt.Sprintf("notices %v, access %s", keys, c.Access)
	})

	deliver(fmt.Sprintf("evt_paid_%d", n), "invoice.paid", true)
	var result workflows.DunningStatus
	getCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := s.tc.GetWorkflow(getCtx, wid, "").Get(getCtx, &result); err != nil {
		t.Fatalf("dunning workflow result: %v", err)
	}
	if result.Outcome != workflows.DunningPaid || result.Step != 3 {
		t.Errorf("dunning result = %+v, want paid after 3 steps", result)
	}
	c, err := s.store.Customer(ctx, cust)
	if err != nil || c.Access != "granted" {
		t.Errorf("customer access after payment = %q (%v), want granted", c.Access, err)
	}
	want := []string{base + "/step-0", base + "/step-1", base + "/step-2/notice", base + "/restored"}
	if keys := dunningKeys(); !slices.Equal(keys, want) {
		t.Errorf("dunning notices = %v, want %v (no final warning after payment)", keys, want)
	}
}
