package worker

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/billcycle/billcycle/activities"
	"github.com/billcycle/billcycle/billing"
	"github.com/billcycle/billcycle/integrations/notify"
	"github.com/billcycle/billcycle/integrations/sendgrid"
	"github.com/billcycle/billcycle/integrations/sendgrid/sendgridfake"
	"github.com/billcycle/billcycle/internal/testenv"
	"github.com/billcycle/billcycle/store"
)

// noticeTest runs the notice activities, wired as the worker wires them,
// against a real store, the SendGrid fake and a recording webhook receiver.
type noticeTest struct {
	t     *testing.T
	st    *store.Store
	mail  *sendgridfake.Server
	hooks *receiver
	env   *testsuite.TestActivityEnvironment
	acts  *activities.NoticeActivities
}

const hookSecret = "whsec-test-secret"

func newNoticeTest(t *testing.T, cfg NoticeConfig) *noticeTest {
	t.Helper()
	nt := &noticeTest{t: t, st: testenv.Store(t), mail: sendgridfake.New(t), hooks: newReceiver(t)}
	if cfg.SendGridAPIKey != "" {
		cfg.SendGridBaseURL = nt.mail.URL
	}
	if cfg.AccessWebhookURL == "hooks" {
		cfg.AccessWebhookURL, cfg.AccessWebhookSecret = nt.hooks.srv.URL+"/access", hookSecret
	}
	if cfg.SalesSlackWebhook == "hooks" {
		cfg.SalesSlackWebhook = nt.hooks.srv.URL + "/slack"
	}
	cfg.EmailFrom = "billing@billcycle.test"
	nt.acts = NoticeActivities(Deps{Store: nt.st, Notices: cfg})
	var suite testsuite.WorkflowTestSuite
	nt.env = suite.NewTestActivityEnvironment()
	nt.env.RegisterActivity(nt.acts)
	ctx := context.Background()
	if _, _, err := nt.st.CreateCustomer(ctx, store.Customer{ID: "acme", Email: "billing@acme.test", Name: "Acme",
		Metadata: map[string]string{"plan": "pro"}}); err != nil {
		t.Fatal(err)
	}
	return nt
}

func (nt *noticeTest) send(n activities.Notice) (activities.SentNotice, error) {
	nt.t.Helper()
	var out activities.SentNotice
	v, err := nt.env.ExecuteActivity(nt.acts.SendNotice, n)
	if err == nil {
		err = v.Get(&out)
	}
	return out, err
}

func (nt *noticeTest) notice(key string) store.Notice {
	nt.t.Helper()
	n, err := nt.st.Notice(context.Background(), key)
	if err != nil {
		nt.t.Fatalf("Notice(%s): %v", key, err)
	}
	return n
}

// nonRetryableType returns the type of a non-retryable application error, or "".
func nonRetryableType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.NonRetryable() {
		return appErr.Type()
	}
	return ""
}

// receiver records webhook and Slack requests and answers with queued statuses (200 when none).
type receiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	requests []recorded
	statuses []int
}

type recorded struct {
	path   string
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.requests = append(r.requests, recorded{req.URL.Path, req.Header.Clone(), body})
		status := http.StatusOK
		if len(r.statuses) > 0 {
			status, r.statuses = r.statuses[0], r.statuses[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) got() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.requests...)
}

func (r *receiver) failNext(status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.statuses = append(r.statuses, status)
}

func TestSendNoticeThroughSendGrid(t *testing.T) {
	tests := []struct {
		name   string
		notice activities.Notice
		check  func(t *testing.T, m sendgridfake.Message)
	}{
		{"plain", activities.Notice{DedupeKey: "alert/a1/acme/1", CustomerID: "acme", Kind: "alert",
			Subject: "You passed 1,000 calls", Text: "Your usage of calls reached 1,000."},
			func(t *testing.T, m sendgridfake.Message) {
				if m.Subject != "You passed 1,000 calls" || len(m.Content) != 1 || m.Content[0].Type != "text/plain" ||
					m.Content[0].Value != "Your usage of calls reached 1,000." || m.TemplateID != "" {
					t.Errorf("plain mail = %+v, want the subject and text as given", m)
				}
			}},
		{"template", activities.Notice{DedupeKey: "alert/a1/acme/2", CustomerID: "acme", Kind: "alert",
			TemplateID: "d-alert", Data: map[string]any{"meter": "calls", "threshold": "1000"}},
			func(t *testing.T, m sendgridfake.Message) {
				data := m.Personalizations[0].DynamicTemplateData
				if m.TemplateID != "d-alert" || data["meter"] != "calls" || data["threshold"] != "1000" || len(m.Content) != 0 {
					t.Errorf("template mail = %+v, want template d-alert filled with the data", m)
				}
			}},
		{"configured template by kind", activities.Notice{DedupeKey: "alert/a1/acme/3", CustomerID: "acme", Kind: "usage_alert",
			Subject: "You passed 1,000 calls", Text: "Your usage of calls reached 1,000.", Data: map[string]any{"meter": "calls"}},
			func(t *testing.T, m sendgridfake.Message) {
				data := m.Personalizations[0].DynamicTemplateData
				if m.TemplateID != "d-kind" || data["meter"] != "calls" || data["subject"] != "You passed 1,000 calls" || len(m.Content) != 0 {
					t.Errorf("mail = %+v, want the configured template d-kind with the data, subject and text", m)
				}
			}},
		{"configured template by dunning step", activities.Notice{DedupeKey: "dunning/i1/step-2", CustomerID: "acme", Kind: "dunning",
			Subject: "Final warning", Text: "Pay now.", Data: map[string]any{"template": "dunning_final_warning"}},
			func(t *testing.T, m sendgridfake.Message) {
				if m.TemplateID != "d-final" {
					t.Errorf("mail template = %q, want d-final (the step's template wins over the kind's)", m.TemplateID)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nt := newNoticeTest(t, NoticeConfig{SendGridAPIKey: "SG.test",
				Templates: map[string]string{"usage_alert": "d-kind", "dunning": "d-dunning", "dunning_final_warning": "d-final"}})
			out, err := nt.send(tt.notice)
			if err != nil || out.Duplicate {
				t.Fatalf("SendNotice = %+v, %v; want sent", out, err)
			}
			msgs := nt.mail.Messages()
			if len(msgs) != 1 {
				t.Fatalf("SendGrid got %d messages, want 1", len(msgs))
			}
			m := msgs[0]
			if to := m.Personalizations[0].To[0]; to.Email != "billing@acme.test" || to.Name != "Acme" || m.From.Email != "billing@billcycle.test" {
				t.Errorf("mail from %v to %v, want billing@billcycle.test to Acme <billing@acme.test>", m.From, to)
			}
			if m.CustomArgs[sendgrid.DedupeArg] != tt.notice.DedupeKey {
				t.Errorf("custom_args = %v, want the dedupe key %s", m.CustomArgs, tt.notice.DedupeKey)
			}
			tt.check(t, m)
			rec := nt.notice(tt.notice.DedupeKey)
			if rec.Status != store.NoticeSent || rec.Channel != store.ChannelEmail || rec.ProviderMessageID != m.ID || rec.Attempts != 1 {
				t.Errorf("recorded notice = %+v, want sent by email with message id %s after 1 attempt", rec, m.ID)
			}
			again, err := nt.send(tt.notice)
			if err != nil || !again.Duplicate {
				t.Errorf("second SendNotice = %+v, %v; want a duplicate", again, err)
			}
			if n := len(nt.mail.Messages()); n != 1 {
				t.Errorf("after the repeat SendGrid has %d messages, want 1", n)
			}
		})
	}
}

func TestSendNoticeRetryableAndPermanentFailures(t *testing.T) {
	n := activities.Notice{DedupeKey: "invoice/inv1", CustomerID: "acme", Kind: "invoice", Subject: "Invoice", Text: "Due"}
	tests := []struct {
		status   int
		wantType string // "" = retryable
		retry    bool
		want     string // final status
	}{
		{http.StatusTooManyRequests, "", true, store.NoticeSent},
		{http.StatusServiceUnavailable, "", true, store.NoticeSent},
		{http.StatusBadRequest, activities.ErrTypeNoticeRejected, false, store.NoticeFailed},
		{http.StatusUnauthorized, activities.ErrTypeNoticeRejected, false, store.NoticeFailed},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			nt := newNoticeTest(t, NoticeConfig{SendGridAPIKey: "SG.test"})
			nt.mail.FailNext(1, tt.status)
			_, err := nt.send(n)
			if err == nil {
				t.Fatalf("SendNotice with SendGrid answering %d = nil error", tt.status)
			}
			if got := nonRetryableType(err); got != tt.wantType {
				t.Fatalf("SendNotice error %v: non-retryable type %q, want %q", err, got, tt.wantType)
			}
			if tt.retry {
				// Temporal retries the activity; the retry sends once.
				if out, err := nt.send(n); err != nil || out.Duplicate {
					t.Fatalf("retried SendNotice = %+v, %v; want sent", out, err)
				}
			}
			rec := nt.notice(n.DedupeKey)
			wantMsgs := 0
			if tt.retry {
				wantMsgs = 1
			}
			if got := len(nt.mail.Messages()); got != wantMsgs || rec.Status != tt.want || nt.mail.Calls() != 1+wantMsgs {
				t.Errorf("after %d: %d messages, %d calls, notice %s; want %d messages, %d calls, %s",
					tt.status, got, nt.mail.Calls(), rec.Status, wantMsgs, 1+wantMsgs, tt.want)
			}
		})
	}
}

func TestSendNoticeResendsPendingClaim(t *testing.T) {
	nt := newNoticeTest(t, NoticeConfig{SendGridAPIKey: "SG.test"})
	n := activities.Notice{DedupeKey: "alert/a1/acme/9", CustomerID: "acme", Kind: "alert", Subject: "S", Text: "T"}
	// A worker crashed after claiming the key and before sending.
	if _, _, err := nt.st.ClaimNotice(context.Background(), store.Notice{DedupeKey: n.DedupeKey, CustomerID: "acme",
		Kind: "alert", Channel: store.ChannelEmail, Recipient: "billing@acme.test", Subject: "S", Body: "T"}); err != nil {
		t.Fatal(err)
	}
	out, err := nt.send(n)
	if err != nil || out.Duplicate {
		t.Fatalf("SendNotice over a pending claim = %+v, %v; want sent", out, err)
	}
	if msgs := nt.mail.Messages(); len(msgs) != 1 || msgs[0].CustomArgs[sendgrid.DedupeArg] != n.DedupeKey {
		t.Errorf("SendGrid got %v, want one message carrying the dedupe key", msgs)
	}
}

func TestSendNoticeToOutbox(t *testing.T) {
	nt := newNoticeTest(t, NoticeConfig{})
	n := activities.Notice{DedupeKey: "alert/a1/acme/3", CustomerID: "acme", Kind: "alert", Subject: "S", Text: "T"}
	for i, wantDup := range []bool{false, true} {
		out, err := nt.send(n)
		if err != nil || out.Duplicate != wantDup {
			t.Fatalf("SendNotice #%d = %+v, %v; want duplicate %v", i+1, out, err, wantDup)
		}
	}
	if nt.mail.Calls() != 0 {
		t.Errorf("the outbox called SendGrid %d times", nt.mail.Calls())
	}
	got, err := nt.st.Notices(context.Background(), store.NoticeFilter{CustomerID: "acme", Kind: "alert"})
	if err != nil || len(got) != 1 || got[0].Status != store.NoticeOutbox || got[0].Channel != store.ChannelOutbox ||
		got[0].Recipient != "billing@acme.test" || got[0].Subject != "S" || got[0].Body != "T" {
		t.Errorf("outbox = %+v, %v; want one outbox email to billing@acme.test", got, err)
	}
}

func TestSendNoticeRejectsBadInput(t *testing.T) {
	nt := newNoticeTest(t, NoticeConfig{})
	tests := []struct {
		name string
		n    activities.Notice
		want string
	}{
		{"unknown customer", activities.Notice{DedupeKey: "k1", CustomerID: "ghost", Kind: "alert", Subject: "S", Text: "T"}, activities.ErrTypeNoticeCustomer},
		{"no key", activities.Notice{CustomerID: "acme", Kind: "alert", Subject: "S", Text: "T"}, activities.ErrTypeNoticeInvalid},
		{"no body", activities.Notice{DedupeKey: "k2", CustomerID: "acme", Kind: "alert", Subject: "S"}, activities.ErrTypeNoticeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := nt.send(tt.n); nonRetryableType(err) != tt.want {
				t.Errorf("SendNotice(%+v) = %v, want non-retryable %s", tt.n, err, tt.want)
			}
		})
	}
}

func TestSetAccessSendsOneSignedWebhookPerChange(t *testing.T) {
	nt := newNoticeTest(t, NoticeConfig{AccessWebhookURL: "hooks"})
	set := func(key string, granted bool) (bool, error) {
		var changed bool
		v, err := nt.env.ExecuteActivity(nt.acts.SetAccess, activities.AccessChange{DedupeKey: key, CustomerID: "acme", Granted: granted, Reason: "alert a1"})
		if err == nil {
			err = v.Get(&changed)
		}
		return changed, err
	}
	nt.hooks.failNext(http.StatusServiceUnavailable)
	if _, err := set("revoke/1", false); err == nil || nonRetryableType(err) != "" {
		t.Fatalf("SetAccess with the receiver down = %v, want a retryable error", err)
	}
	steps := []struct {
		key     string
		granted bool
		changed bool
	}{
		{"revoke/1", false, true}, // Temporal's retry of the failed delivery
		{"revoke/1", false, true}, // a second retry after success: nothing sent
		{"revoke/2", false, false},
		{"grant/1", true, true},
	}
	for _, s := range steps {
		changed, err := set(s.key, s.granted)
		if err != nil || changed != s.changed {
			t.Errorf("SetAccess(%s, granted %v) = %v, %v; want %v", s.key, s.granted, changed, err, s.changed)
		}
	}
	reqs := nt.hooks.got()
	if len(reqs) != 3 {
		t.Fatalf("receiver got %d requests, want 3 (a failed and a good revoke, a grant)", len(reqs))
	}
	for i, want := range []struct{ key, access string }{{"revoke/1", "revoked"}, {"revoke/1", "revoked"}, {"grant/1", "granted"}} {
		r := reqs[i]
		if err := notify.VerifySignature(r.body, r.header.Get(notify.SignatureHeader), hookSecret, 5*time.Minute); err != nil {
			t.Errorf("webhook %d signature: %v", i+1, err)
		}
		var p activities.AccessWebhookPayload
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatal(err)
		}
		if r.header.Get(notify.IdempotencyKeyHeader) != want.key || p.Access != want.access || p.CustomerID != "acme" ||
			p.Reason != "alert a1" || p.ChangedAt == "" || p.Type != "customer.access."+want.access {
			t.Errorf("webhook %d = %s %+v, want %s for %s", i+1, r.header.Get(notify.IdempotencyKeyHeader), p, want.access, want.key)
		}
	}
	if err := notify.VerifySignature(reqs[0].body, reqs[0].header.Get(notify.SignatureHeader), "wrong", 0); err == nil {
		t.Errorf("a wrong secret verified")
	}
	a, _ := nt.st.AccessState(context.Background(), "acme")
	if a.Access != "granted" {
		t.Errorf("access after revoke then grant = %q, want granted", a.Access)
	}
}

func TestNotifySales(t *testing.T) {
	tests := []struct {
		name    string
		cfg     NoticeConfig
		channel string
	}{
		{"slack", NoticeConfig{SalesSlackWebhook: "hooks", SalesEmail: "sales@billcycle.test", SendGridAPIKey: "SG.test"}, store.ChannelSlack},
		{"email", NoticeConfig{SalesEmail: "sales@billcycle.test", SendGridAPIKey: "SG.test"}, store.ChannelEmail},
		{"outbox", NoticeConfig{}, store.ChannelOutbox},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nt := newNoticeTest(t, tt.cfg)
			sn := activities.SalesNotice{DedupeKey: "sales/a1/acme/1", CustomerID: "acme", Text: "Acme passed 1M calls"}
			for range 2 {
				if _, err := nt.env.ExecuteActivity(nt.acts.NotifySales, sn); err != nil {
					t.Fatalf("NotifySales: %v", err)
				}
			}
			slack, mails := nt.hooks.got(), nt.mail.Messages()
			var wantSlack, wantMail int
			switch tt.channel {
			case store.ChannelSlack:
				wantSlack = 1
				if len(slack) == 1 && string(slack[0].body) != `{"text":"Acme passed 1M calls"}` {
					t.Errorf("slack body = %s", slack[0].body)
				}
			case store.ChannelEmail:
				wantMail = 1
				if len(mails) == 1 && mails[0].Personalizations[0].To[0].Email != "sales@billcycle.test" {
					t.Errorf("sales mail to %v, want sales@billcycle.test", mails[0].Personalizations[0].To)
				}
			}
			if len(slack) != wantSlack || len(mails) != wantMail {
				t.Errorf("two NotifySales: %d slack posts, %d emails; want %d, %d", len(slack), len(mails), wantSlack, wantMail)
			}
			if rec := nt.notice(sn.DedupeKey); rec.Channel != tt.channel || !rec.Delivered() {
				t.Errorf("recorded sales notice = %+v, want delivered on %s", rec, tt.channel)
			}
		})
	}
}

func TestLoadAlertsFiltersByMetadata(t *testing.T) {
	nt := newNoticeTest(t, NoticeConfig{})
	ctx := context.Background()
	for _, a := range []billing.Alert{
		{ID: "own", Meter: "calls", CustomerID: "acme"},
		{ID: "pro-only", Meter: "calls", CustomerFilter: map[string]string{"plan": "pro"}},
		{ID: "not-pro", Meter: "calls", CustomerFilter: map[string]string{"plan": "!pro"}},
	} {
		a.Threshold, a.Direction, a.Actions = decimal.NewFromInt(10), billing.Above, []billing.AlertAction{billing.ActionEmail}
		if _, err := nt.st.CreateAlert(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	v, err := nt.env.ExecuteActivity(nt.acts.LoadAlerts, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var got []billing.Alert
	if err := v.Get(&got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "own" || got[1].ID != "pro-only" || !got[0].Threshold.Equal(decimal.NewFromInt(10)) {
		t.Errorf("LoadAlerts(acme, plan pro) = %+v, want own and pro-only", got)
	}
	if _, err := nt.env.ExecuteActivity(nt.acts.LoadAlerts, "ghost"); nonRetryableType(err) != activities.ErrTypeNoticeCustomer {
		t.Errorf("LoadAlerts(ghost) = %v, want non-retryable %s", err, activities.ErrTypeNoticeCustomer)
	}
}
