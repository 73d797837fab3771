package meter

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Content types that DecodeBatch accepts.
const (
	// ContentTypeJSON is billcycle's own format: {"events":[...]} or a bare
	// array of {id, customer_id, name, timestamp, properties}.
	ContentTypeJSON = "application/json"
	// ContentTypeCloudEventsBatch is a JSON array of CloudEvents 1.0.
	ContentTypeCloudEventsBatch = "application/cloudevents-batch+json"
	// ContentTypeCloudEvent is one CloudEvent 1.0 in structured mode.
	ContentTypeCloudEvent = "application/cloudevents+json"
)

var (
	// ErrUnsupportedContentType means the body's content type is none of
	// the ones DecodeBatch reads (HTTP 415).
	ErrUnsupportedContentType = errors.New("unsupported content type")
	// ErrMalformedBody means the body is not JSON or not of the expected
	// top-level shape, so no event in it can be read (HTTP 400).
	ErrMalformedBody = errors.New("malformed body")
)

// format is the wire format of a batch.
type format int

const (
	formatJSON format = iota + 1
	formatCloudEventsBatch
	formatCloudEvent
)

// parseContentType maps a Content-Type header to a format. Media types
// compare case-insensitively; a charset parameter other than UTF-8 is
// refused.
func parseContentType(contentType string) (format, error) {
	mediaType, params, _ := strings.Cut(contentType, ";")
	mediaType = strings.TrimSpace(mediaType)
	var f format
	switch {
	case strings.EqualFold(mediaType, ContentTypeJSON):
		f = formatJSON
	case strings.EqualFold(mediaType, ContentTypeCloudEventsBatch):
		f = formatCloudEventsBatch
	case strings.EqualFold(mediaType, ContentTypeCloudEvent):
		f = formatCloudEvent
	default:
		return 0, fmt.Errorf("content type %q is not %s, %s or %s: %w",
			mediaType, ContentTypeJSON, ContentTypeCloudEventsBatch, ContentTypeCloudEvent, ErrUnsupportedContentType)
	}
	for params != "" {
		var param string
		param, params, _ = strings.Cut(params, ";")
		name, value, _ := strings.Cut(param, "=")
		if !strings.EqualFold(strings.TrimSpace(name), "charset") {
			continue
		}
		value = strings.Trim(strings.TrimSpace(value), `"`)
		if !strings.EqualFold(value, "utf-8") && !strings.EqualFold(value, "utf8") {
			return 0, fmt.Errorf("charset %q is not utf-8: %w", value, ErrUnsupportedContentType)
		}
	}
	return f, nil
}

// DecodeBatch reads the events in body according to contentType
// (ContentTypeJSON, ContentTypeCloudEventsBatch or ContentTypeCloudEvent,
// optionally with charset=utf-8).
//
// It returns the events that could be read, in body order, and a Rejection
// for each element that could not (a field of the wrong type, a timestamp
// that is not RFC 3339, properties that are not an object, a string that is
// not valid UTF-8 or holds NUL or an unpaired surrogate, none of which
// Postgres can store, a number longer than 100 characters or with an
// exponent beyond ±999, nesting deeper than 32 levels): one bad element
// never sinks the others. Unknown fields are ignored; null counts as absent.
// DecodeBatch does not apply the rules of Validate; DecodeAndValidate does.
//
// The error wraps ErrUnsupportedContentType for an unknown content type and
// ErrMalformedBody when body is not JSON or not of the expected shape (an
// array, an object with an "events" array, or one CloudEvent object); then
// no events are returned. An empty array is not an error.
//
// Property numbers are kept as json.Number. Timestamps are returned in UTC.
// RawProperties of the returned events share one allocation and do not
// alias body, so body may be reused afterwards.
func DecodeBatch(body []byte, contentType string) ([]Event, []Rejection, error) {
	return decodeBatch(body, contentType, nil)
}

// DecodeAndValidate is DecodeBatch followed by Validate on every decoded
// event with the given bounds. Events that fail Validate are left out and
// reported as Rejections with their index in body; rejections come in
// index order. For CloudEvents, rejected fields carry CloudEvents names:
// subject for customer_id, type for name, time for timestamp and data for
// properties.
func DecodeAndValidate(body []byte, contentType string, now time.Time, maxLateness, maxFuture time.Duration) ([]Event, []Rejection, error) {
	return decodeBatch(body, contentType, func(ev *Event) *Rejection {
		return Validate(*ev, now, maxLateness, maxFuture)
	})
}

// interners recycles intern caches between batches. A cache may keep
// strings from earlier batches; they are immutable, so that is harmless,
// and it spares a 20 KB allocation per request.
var interners = sync.Pool{New: func() any { return new(interner) }}

// batchDecoder holds the state of decoding one body.
type batchDecoder struct {
	body       []byte
	format     format
	top        scanner // walks the body's top level, checking syntax
	elem       scanner // reads one element that top has checked
	props      valueReader
	events     []Event
	rejections []Rejection
	validate   func(*Event) *Rejection
}

func decodeBatch(body []byte, contentType string, validate func(*Event) *Rejection) ([]Event, []Rejection, error) {
	f, err := parseContentType(contentType)
	if err != nil {
		return nil, nil, err
	}
	d := &batchDecoder{body: body, format: f, validate: validate}
	d.top.data = body
	d.elem.data = body
	d.props.s = &d.elem
	d.props.in = interners.Get().(*interner)
	defer interners.Put(d.props.in)
	d.props.root = "properties"
	if f != formatJSON {
		d.props.root = "data"
	}
	if err := d.run(); err != nil {
		return nil, nil, err
	}
	d.detachRaw()
	return d.events, d.rejections, nil
}

func (d *batchDecoder) malformed(err error) error {
	return fmt.Errorf("%w: %w", ErrMalformedBody, err)
}

func (d *batchDecoder) run() error {
	s := &d.top
	c := s.peek()
	switch {
	case c == '[' && d.format != formatCloudEvent:
		if err := d.array(); err != nil {
			return err
		}
		return d.end()
	case c == '{' && d.format == formatCloudEvent:
		start := s.pos
		if err := s.skipValue(); err != nil {
			return d.malformed(err)
		}
		if err := d.end(); err != nil {
			return err
		}
		d.element(0, start)
		return nil
	case c == '{' && d.format == formatJSON:
		return d.wrapper()
	}
	if err := s.skipValue(); err != nil {
		return d.malformed(err)
	}
	switch d.format {
	case formatJSON:
		return d.malformed(errors.New(`want an array of events or an object with an "events" array`))
	case formatCloudEventsBatch:
		return d.malformed(errors.New("want an array of CloudEvents"))
	default:
		return d.malformed(errors.New("want one CloudEvent object"))
	}
}

// end checks that nothing but white space follows the top-level value.
func (d *batchDecoder) end() error {
	if d.top.peek() != 0 || d.top.pos < len(d.body) {
		return d.malformed(d.top.errorf("invalid character %q after the top-level value", d.body[d.top.pos]))
	}
	return nil
}

// wrapper reads {"events":[...]} in one pass; other keys are ignored and,
// as with encoding/json, the last "events" key wins.
func (d *batchDecoder) wrapper() error {
	s := &d.top
	s.pos++ // {
	found := false
	if s.peek() == '}' {
		s.pos++
	} else {
		for {
			if s.peek() != '"' {
				return d.malformed(s.errorf("object key wanted"))
			}
			start := s.pos
			if _, err := s.skipString(); err != nil {
				return d.malformed(err)
			}
			raw, esc := d.body[start+1:s.pos-1], false
			for _, c := range raw {
				if c == '\\' {
					esc = true
				}
			}
			key, _ := decodeString(raw, esc)
			if err := s.expect(':'); err != nil {
				return d.malformed(err)
			}
			if key == "events" {
				if s.peek() != '[' {
					if err := s.skipValue(); err != nil {
						return d.malformed(err)
					}
					return d.malformed(errors.New(`"events" is not an array`))
				}
				found = true
				d.events, d.rejections = d.events[:0], d.rejections[:0]
				if err := d.array(); err != nil {
					return err
				}
			} else if err := s.skipValue(); err != nil {
				return d.malformed(err)
			}
			c := s.peek()
			s.pos++
			if c == '}' {
				break
			}
			if c != ',' {
				s.pos--
				if s.pos >= len(d.body) {
					return d.malformed(s.errorf("unexpected end of JSON in object"))
				}
				return d.malformed(s.errorf("invalid character %q after an object value", c))
			}
		}
	}
	if err := d.end(); err != nil {
		return err
	}
	if !found {
		return d.malformed(errors.New(`object has no "events" array`))
	}
	return nil
}

// array reads the array at top's position element by element.
func (d *batchDecoder) array() error {
	s := &d.top
	s.pos++ // [
	if s.peek() == ']' {
		s.pos++
		return nil
	}
	for i := 0; ; i++ {
		s.skipWS()
		start := s.pos
		if err := s.skipValue(); err != nil {
			return d.malformed(err)
		}
		d.element(i, start)
		switch s.peek() {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return nil
		default:
			if s.pos >= len(d.body) {
				return d.malformed(s.errorf("unexpected end of JSON in array"))
			}
			return d.malformed(s.errorf("invalid character %q after an array element", d.body[s.pos]))
		}
	}
}

// element decodes the element at start and files it as an event or a
// rejection.
func (d *batchDecoder) element(index, start int) {
	d.elem.pos = start
	d.props.path = d.props.path[:0]
	var ev Event
	var rej *Rejection
	if d.format == formatJSON {
		rej = d.native(&ev)
	} else {
		rej = d.cloudEvent(&ev)
	}
	if rej == nil && d.validate != nil {
		if rej = d.validate(&ev); rej != nil && d.format != formatJSON {
			rej.Field = cloudEventsField(rej.Field)
		}
	}
	if rej != nil {
		rej.Index = index
		d.rejections = append(d.rejections, *rej)
		return
	}
	d.events = append(d.events, ev)
}

// detachRaw copies every RawProperties into one buffer so that the events
// do not keep body alive or change if the caller reuses it.
func (d *batchDecoder) detachRaw() {
	total := 0
	for i := range d.events {
		total += len(d.events[i].RawProperties)
	}
	if total == 0 {
		return
	}
	buf := make([]byte, total)
	off := 0
	for i := range d.events {
		ev := &d.events[i]
		if ev.RawProperties == nil {
			continue
		}
		n := copy(buf[off:], ev.RawProperties)
		ev.RawProperties = buf[off : off+n : off+n]
		off += n
	}
}

// cloudEventsField names a field of Event as CloudEvents does.
func cloudEventsField(field string) string {
	switch {
	case field == "customer_id":
		return "subject"
	case field == "name":
		return "type"
	case field == "timestamp":
		return "time"
	case field == "properties":
		return "data"
	case strings.HasPrefix(field, "properties."):
		return "data" + strings.TrimPrefix(field, "properties")
	}
	return field
}

// Fields of an element, recognized without allocating.
type elemField int

const (
	fieldOther elemField = iota
	fieldID
	fieldCustomerID
	fieldName
	fieldTimestamp
	fieldProperties
	fieldSpecVersion
	fieldSource
	fieldType
	fieldSubject
	fieldTime
	fieldData
	fieldDataContentType
	fieldDataBase64
)

func (d *batchDecoder) fieldOf(key []byte) elemField {
	if d.format == formatJSON {
		switch string(key) {
		case "id":
			return fieldID
		case "customer_id":
			return fieldCustomerID
		case "name":
			return fieldName
		case "timestamp":
			return fieldTimestamp
		case "properties":
			return fieldProperties
		}
		return fieldOther
	}
	switch string(key) {
	case "specversion":
		return fieldSpecVersion
	case "id":
		return fieldID
	case "source":
		return fieldSource
	case "type":
		return fieldType
	case "subject":
		return fieldSubject
	case "time":
		return fieldTime
	case "data":
		return fieldData
	case "datacontenttype":
		return fieldDataContentType
	case "data_base64":
		return fieldDataBase64
	}
	return fieldOther
}

// key reads an object key at the element's position, through the colon.
func (d *batchDecoder) key() (elemField, *Rejection) {
	e := &d.elem
	e.skipWS()
	raw, esc := e.readString()
	_ = e.expect(':')
	if !esc {
		return d.fieldOf(raw), nil
	}
	key, prob := decodeString(raw, esc)
	if prob != textOK {
		return fieldOther, &Rejection{Reason: "has a key that " + string(prob)}
	}
	return d.fieldOf([]byte(key)), nil
}

// fields walks the element's object, calling set for every key; it
// rejects an element that is not an object.
func (d *batchDecoder) fields(set func(elemField) *Rejection) *Rejection {
	e := &d.elem
	if e.peek() != '{' {
		return &Rejection{Reason: "must be a JSON object"}
	}
	e.pos++
	if e.peek() == '}' {
		e.pos++
		return nil
	}
	for {
		f, rej := d.key()
		if rej != nil {
			return rej
		}
		if rej := set(f); rej != nil {
			return rej
		}
		if e.peek() != ',' {
			e.pos++ // }
			return nil
		}
		e.pos++
	}
}

// native decodes an element of billcycle's own format into ev.
func (d *batchDecoder) native(ev *Event) *Rejection {
	return d.fields(func(f elemField) *Rejection {
		var rej *Rejection
		switch f {
		case fieldID:
			ev.ID, rej = d.text("id")
		case fieldCustomerID:
			ev.CustomerID, rej = d.text("customer_id")
		case fieldName:
			ev.Name, rej = d.text("name")
		case fieldTimestamp:
			ev.Timestamp, rej = d.timestamp("timestamp")
		case fieldProperties:
			rej = d.properties(ev)
		default:
			_ = d.elem.skipValue()
		}
		return rej
	})
}

// cloudEvent decodes a structured-mode CloudEvent 1.0 into ev.
func (d *batchDecoder) cloudEvent(ev *Event) *Rejection {
	var specVersion, source, contentType string
	var hasBase64 bool
	rej := d.fields(func(f elemField) *Rejection {
		var rej *Rejection
		switch f {
		case fieldSpecVersion:
			specVersion, rej = d.text("specversion")
		case fieldID:
			ev.ID, rej = d.text("id")
		case fieldSource:
			source, rej = d.text("source")
		case fieldType:
			ev.Name, rej = d.text("type")
		case fieldSubject:
			ev.CustomerID, rej = d.text("subject")
		case fieldTime:
			ev.Timestamp, rej = d.timestamp("time")
		case fieldData:
			rej = d.properties(ev)
		case fieldDataContentType:
			contentType, rej = d.text("datacontenttype")
		case fieldDataBase64:
			hasBase64 = d.elem.peek() != 'n'
			_ = d.elem.skipValue()
		default:
			_ = d.elem.skipValue()
		}
		return rej
	})
	switch {
	case rej != nil:
		return rej
	case specVersion == "":
		return &Rejection{Field: "specversion", Reason: "is required"}
	case specVersion != "1.0":
		return &Rejection{Field: "specversion", Reason: fmt.Sprintf("is %q; only 1.0 is supported", specVersion)}
	case source == "":
		return &Rejection{Field: "source", Reason: "is required"}
	case hasBase64:
		return &Rejection{Field: "data_base64", Reason: "is not supported; send data as a JSON object"}
	case contentType != "" && !isJSONMediaType(contentType):
		return &Rejection{Field: "datacontenttype", Reason: fmt.Sprintf("is %q; data must be JSON", contentType)}
	}
	return nil
}

// isJSONMediaType reports whether a datacontenttype names JSON.
func isJSONMediaType(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// text reads a string field; null reads as "".
func (d *batchDecoder) text(field string) (string, *Rejection) {
	e := &d.elem
	switch e.peek() {
	case 'n':
		e.pos += 4
		return "", nil
	case '"':
	default:
		return "", &Rejection{Field: field, Reason: "must be a string"}
	}
	raw, esc := e.readString()
	s, prob := d.props.in.text(raw, esc)
	if prob != textOK {
		return "", &Rejection{Field: field, Reason: string(prob)}
	}
	return s, nil
}

// timestamp reads an RFC 3339 timestamp field; null reads as the zero time.
func (d *batchDecoder) timestamp(field string) (time.Time, *Rejection) {
	e := &d.elem
	switch e.peek() {
	case 'n':
		e.pos += 4
		return time.Time{}, nil
	case '"':
	default:
		return time.Time{}, &Rejection{Field: field, Reason: "must be an RFC 3339 string such as 2024-05-01T12:00:00Z"}
	}
	raw, esc := e.readString()
	if esc {
		s, _ := decodeString(raw, esc)
		raw = []byte(s)
	}
	t, ok := parseTimestamp(raw)
	if !ok {
		return time.Time{}, &Rejection{Field: field, Reason: fmt.Sprintf("%q is not an RFC 3339 date-time such as 2024-05-01T12:00:00Z", raw)}
	}
	return t, nil
}

// properties reads the properties (or CloudEvents data) object into ev;
// null leaves them nil.
func (d *batchDecoder) properties(ev *Event) *Rejection {
	e := &d.elem
	switch e.peek() {
	case 'n':
		e.pos += 4
		ev.Properties, ev.RawProperties = nil, nil
		return nil
	case '{':
	default:
		return &Rejection{Field: d.props.root, Reason: "must be a JSON object"}
	}
	start := e.pos
	m, ferr := d.props.object()
	if ferr != nil {
		return &Rejection{Field: ferr.field, Reason: ferr.reason}
	}
	ev.Properties = m
	ev.RawProperties = d.body[start:e.pos]
	return nil
}
