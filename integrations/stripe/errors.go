package stripe

import (
	"errors"
	"fmt"
	"net/http"

	stripego "github.com/stripe/stripe-go/v76"
)

// Error is a failed Stripe operation, classified for retry. Every error the Client returns
// is, or wraps, an *Error.
type Error struct {
	// Op says what the client was doing, for example "create invoice".
	Op string
	// StatusCode is the HTTP status Stripe answered with; 0 when no answer arrived.
	StatusCode int
	// Type is Stripe's error type, for example "invalid_request_error" or "card_error".
	Type string
	// Code is Stripe's error code, for example "resource_missing"; often empty.
	Code string
	// Message is Stripe's human-readable message, or a description of a local failure.
	Message string
	// RequestID is Stripe's Request-Id, for support tickets.
	RequestID string
	// Retryable reports whether repeating the same call (with the same idempotency key)
	// may succeed.
	Retryable bool
	// Err is the underlying error.
	Err error
}

// Error describes the failure.
func (e *Error) Error() string {
	s := "stripe: " + e.Op
	if e.StatusCode != 0 {
		s += fmt.Sprintf(": status %d", e.StatusCode)
	}
	if e.Type != "" {
		s += " " + e.Type
		if e.Code != "" {
			s += "/" + e.Code
		}
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RequestID != "" {
		s += " (request " + e.RequestID + ")"
	}
	if e.StatusCode == 0 && e.Err != nil && e.Message != e.Err.Error() {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// IsRetryable reports whether err is worth retrying. Stripe's 409, 429 and 5xx answers,
// network failures and context deadlines are retryable; other 4xx answers (invalid requests,
// card errors, missing objects, a key reused with other parameters, bad API key) and invalid
// input are permanent. An error this package did not classify counts as retryable; nil does not.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Retryable
	}
	return true
}

// invalidInput is a permanent error for a request this package refuses to send.
func invalidInput(op, msg string) *Error {
	return &Error{Op: op, Message: msg, Retryable: false, Err: errors.New(msg)}
}

// classify wraps an error from stripe-go into an *Error.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var se *stripego.Error
	if !errors.As(err, &se) {
		// No Stripe answer: connection refused or reset, timeout, cancelled context, or a body
		// that was not Stripe JSON (a proxy page). The outcome is unknown, so retry with the
		// same key.
		return &Error{Op: op, Message: err.Error(), Retryable: true, Err: err}
	}
	e := &Error{
		Op:         op,
		StatusCode: se.HTTPStatusCode,
		Type:       string(se.Type),
		Code:       string(se.Code),
		Message:    se.Msg,
		RequestID:  se.RequestID,
		Err:        err,
	}
	e.Retryable = retryableStatus(se.HTTPStatusCode)
	if se.LastResponse != nil {
		// Stripe can say explicitly whether a retry could succeed.
		switch se.LastResponse.Header.Get("Stripe-Should-Retry") {
		case "true":
			e.Retryable = true
		case "false":
			e.Retryable = false
		}
	}
	return e
}

// retryableStatus reports whether an HTTP status from Stripe is transient.
func retryableStatus(status int) bool {
	switch {
	case status == http.StatusConflict, status == http.StatusTooManyRequests:
		return true
	case status >= 500:
		return true
	default:
		return false
	}
}
