// Package sendgridfake is a recording fake of SendGrid's POST /v3/mail/send for tests. It
// checks the v3 request shape the way SendGrid does for the fields billcycle uses (Bearer
// auth, from.email, personalizations[0].to, subject or template_id, content or template_id),
// answers 202 with an X-Message-Id, and can be told to fail the next calls.
package sendgridfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Address is an email address with an optional name.
type Address struct {
	Email string `json:"email"`
	Name  string `json:"name,omitempty"`
}

// Personalization is one personalizations[] entry.
type Personalization struct {
	To                  []Address         `json:"to"`
	Subject             string            `json:"subject,omitempty"`
	DynamicTemplateData map[string]any    `json:"dynamic_template_data,omitempty"`
	CustomArgs          map[string]string `json:"custom_args,omitempty"`
}

// Content is one content[] entry.
type Content struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Message is an accepted mail as the fake decoded it.
type Message struct {
	// ID is the X-Message-Id the fake answered with.
	ID               string            `json:"-"`
	From             *Address          `json:"from"`
	Subject          string            `json:"subject,omitempty"`
	Personalizations []Personalization `json:"personalizations"`
	Content          []Content         `json:"content,omitempty"`
	TemplateID       string            `json:"template_id,omitempty"`
	CustomArgs       map[string]string `json:"custom_args,omitempty"`
	Categories       []string          `json:"categories,omitempty"`
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL to give the client (no path).
	URL string
	// APIKey, when not empty, is the only key accepted; otherwise any non-empty key is.
	APIKey string

	mu       sync.Mutex
	messages []Message
	failures []int
	calls    int
}

// New starts a fake that is closed when the test ends.
func New(t testing.TB) *Server {
	s := &Server{}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = srv.URL
	t.Cleanup(srv.Close)
	return s
}

// FailNext makes the next n calls answer status with a SendGrid error body, accepting nothing.
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, status)
	}
}

// Messages returns the accepted messages in arrival order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Calls returns how many requests reached the fake, accepted or not.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls++
	var fail int
	if len(s.failures) > 0 {
		fail, s.failures = s.failures[0], s.failures[1:]
	}
	s.mu.Unlock()

	if r.Method != http.MethodPost || r.URL.Path != "/v3/mail/send" {
		writeErrors(w, http.StatusNotFound, "", "not found: "+r.Method+" "+r.URL.Path)
		return
	}
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || key == "" || (s.APIKey != "" && key != s.APIKey) {
		writeErrors(w, http.StatusUnauthorized, "", "The provided authorization grant is invalid, expired, or revoked")
		return
	}
	if fail != 0 {
		writeErrors(w, fail, "", fmt.Sprintf("injected failure %d (sendgridfake)", fail))
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeErrors(w, http.StatusBadRequest, "", "could not read body")
		return
	}
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		writeErrors(w, http.StatusBadRequest, "", "Bad Request: "+err.Error())
		return
	}
	if field, msg := check(m); msg != "" {
		writeErrors(w, http.StatusBadRequest, field, msg)
		return
	}
	s.mu.Lock()
	m.ID = fmt.Sprintf("fake-msg-%06d", len(s.messages)+1)
	s.messages = append(s.messages, m)
	s.mu.Unlock()
	w.Header().Set("X-Message-Id", m.ID)
	w.WriteHeader(http.StatusAccepted)
}

// check returns the field and message of the first shape error, or "" for a valid mail.
func check(m Message) (field, msg string) {
	switch {
	case m.From == nil || m.From.Email == "":
		return "from.email", "The from object must be provided for every email send. It is an object that requires the email parameter, but may also contain a name parameter."
	case len(m.Personalizations) == 0:
		return "personalizations", "The personalizations field is required and must have at least one personalization."
	case len(m.Personalizations[0].To) == 0 || m.Personalizations[0].To[0].Email == "":
		return "personalizations.0.to", "The to array is required for all personalization objects, and must have at least one email object with a valid email address."
	case m.TemplateID == "" && m.Subject == "" && m.Personalizations[0].Subject == "":
		return "subject", "The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined."
	case m.TemplateID == "" && len(m.Content) == 0:
		return "content", "Unless a valid template_id is provided, the content parameter is required. There must be at least one defined content block."
	}
	for _, c := range m.Content {
		if c.Value == "" {
			return "content.value", "The content value must be a string at least one character in length."
		}
	}
	if len(m.Content) > 1 && m.Content[0].Type != "text/plain" {
		return "content.0.type", "If present, text/plain content must be first, followed by any other content."
	}
	return "", ""
}

func writeErrors(w http.ResponseWriter, status int, field, msg string) {
	e := map[string]any{"message": msg, "help": nil}
	if field != "" {
		e["field"] = field
	} else {
		e["field"] = nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []any{e}})
}
