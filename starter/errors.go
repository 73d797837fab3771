package starter

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/billcycle/billcycle/store"
)

// Error is an API error: it is written as
// {"error":{"code":"...","message":"...","field":"..."}} with its status.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// Invalid is a 400 naming the offending field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Field: field, Message: fmt.Sprintf(format, args...)}
}

// NotFound is a 404 for the named thing.
func NotFound(what string) *Error {
	return &Error{Status: http.StatusNotFound, Code: "not_found", Message: what + " not found"}
}

// found turns the store's ErrNotFound into a 404 for what and passes any
// other error on.
func found(err error, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return NotFound(what)
	}
	return err
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// writeError writes err as an API error; errors that are not *Error become a
// 500 whose message hides internals (they are logged by the caller).
func writeError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error; it has been logged"}
	}
	writeJSON(w, e.Status, map[string]*Error{"error": e})
}

// requireJSON checks the request's content type: 415 for anything but JSON.
func requireJSON(r *http.Request, allowed ...string) (string, error) {
	if len(allowed) == 0 {
		allowed = []string{"application/json"}
	}
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil {
		mt = ""
	}
	for _, a := range allowed {
		if mt == a {
			return mt, nil
		}
	}
	return "", &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
		Message: fmt.Sprintf("Content-Type must be %s, got %q", strings.Join(allowed, " or "), ct)}
}

// readBody reads the whole body, answering 413 past the limit.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, &Error{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large",
			Message: fmt.Sprintf("request body exceeds %d bytes", tooBig.Limit)}
	}
	if err != nil {
		return nil, Invalid("", "reading request body: %v", err)
	}
	return body, nil
}

// decodeJSON decodes a JSON request body into v, strictly: unknown fields and
// wrong types are 400s naming the field.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if _, err := requireJSON(r); err != nil {
		return err
	}
	body, err := readBody(w, r, limit)
	if err != nil {
		return err
	}
	return unmarshalStrict(body, v)
}

func unmarshalStrict(body []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		var syntaxErr *json.SyntaxError
		switch {
		case errors.As(err, &typeErr):
			return Invalid(typeErr.Field, "must be %s, got a JSON %s", describeType(typeErr.Type.Kind().String()), typeErr.Value)
		case errors.As(err, &syntaxErr):
			return Invalid("", "malformed JSON at byte %d: %v", syntaxErr.Offset, err)
		case errors.Is(err, io.EOF):
			return Invalid("", "request body is empty; want a JSON object")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return Invalid(f, "unknown field")
		default:
			return Invalid("", "malformed JSON: %v", err)
		}
	}
	if dec.More() {
		return Invalid("", "request body holds more than one JSON value")
	}
	return nil
}

func describeType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	case "bool":
		return "true or false"
	default:
		return "a number"
	}
}
