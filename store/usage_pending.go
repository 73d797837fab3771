package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/billcycle/billcycle/billing/meter"
)

// Pending rollups (table rollup_pending) are written by ingest in a compact
// binary form, one row per slot of customers, and read back by the
// compactor and by every total. The encoding of a row's data:
//
//	data     = version(1 byte) customer*
//	customer = str(customer id) uvarint(len(body)) body
//	body     = uvarint(n) delta{n} uvarint(k) key{k}
//	delta    = str(meter) varint(unix hour) uvarint(count) flags(1 byte)
//	           [dec(sum) dec(min) dec(max)]            when flags&hasValue
//	           [dec(last) varint(last_at µs) str(last_id)] when flags&hasLast
//	key      = str(meter) varint(unix hour) str(key)
//	str      = uvarint(len) bytes
//	dec      = 0 zigzag(coefficient) zigzag(exponent)   coefficient fits int64
//	         | 1 sign(1 byte) str(big-endian magnitude) zigzag(exponent)
//
// A delta without a value (count and unique-count meters) keeps its count only.
// A reader skips other customers' bodies by their length.

const pendingVersion = 1

const (
	pendingHasValue = 1 << iota
	pendingHasLast
)

// rollupSlots is the number of slots that spread a batch's customers over
// rollup_pending rows.
const rollupSlots = 64

// rollupSlot returns the rollup_pending slot of a customer: FNV-1a of the
// id, modulo rollupSlots. Writers and readers both call it, so a reader
// finds every pending delta of a customer in one slot.
func rollupSlot(customer string) int {
	h := uint32(2166136261)
	for i := 0; i < len(customer); i++ {
		h ^= uint32(customer[i])
		h *= 16777619
	}
	return int(h % rollupSlots)
}

// pendingDelta is one (meter, hour) rollup delta of a customer.
type pendingDelta struct {
	meter  string
	bucket time.Time
	r      meter.Rollup
	last   bool // the rollup keeps its last value (a last meter)
}

// pendingKey is one unique-count key of a customer.
type pendingKey struct {
	meter  string
	bucket time.Time
	key    string
}

// pendingCustomer is a customer's pending deltas and keys.
type pendingCustomer struct {
	deltas []pendingDelta
	keys   []pendingKey
}

// write appends the rollups and unique keys to rollup_pending with one COPY
// of at most rollupSlots rows: nothing to conflict with, so concurrent
// ingests never wait on each other, and few small rows, so the write costs
// little more than the bytes.
func (a *aggregator) write(ctx context.Context, tx pgx.Tx) error {
	if len(a.rollups) == 0 {
		return nil
	}
	byCustomer := map[string]*pendingCustomer{}
	get := func(c string) *pendingCustomer {
		p := byCustomer[c]
		if p == nil {
			p = &pendingCustomer{}
			byCustomer[c] = p
		}
		return p
	}
	for k, r := range a.rollups {
		p := get(k.customer)
		p.deltas = append(p.deltas, pendingDelta{meter: k.meter, bucket: k.bucket, r: *r, last: a.last[k.meter]})
	}
	for k, set := range a.keys {
		p := get(k.customer)
		for v := range set {
			p.keys = append(p.keys, pendingKey{meter: k.meter, bucket: k.bucket, key: v})
		}
	}
	var slots [rollupSlots][]byte
	for c, p := range byCustomer {
		slot := rollupSlot(c)
		if slots[slot] == nil {
			slots[slot] = append(make([]byte, 0, 4096), pendingVersion)
		}
		slots[slot] = appendPendingCustomer(slots[slot], c, p)
	}
	rows := make([][]any, 0, rollupSlots)
	for slot, data := range slots {
		if data != nil {
			rows = append(rows, []any{int16(slot), data})
		}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"rollup_pending"}, []string{"slot", "data"}, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("write pending rollups: %w", err)
	}
	return nil
}

func appendPendingCustomer(b []byte, customer string, p *pendingCustomer) []byte {
	var body []byte
	body = binary.AppendUvarint(body, uint64(len(p.deltas)))
	for _, d := range p.deltas {
		body = appendStr(body, d.meter)
		body = binary.AppendVarint(body, d.bucket.Unix()/3600)
		body = binary.AppendUvarint(body, uint64(d.r.Count))
		var flags byte
		if d.r.HasValue {
			flags |= pendingHasValue
			if d.last {
				flags |= pendingHasLast
			}
		}
		body = append(body, flags)
		if flags&pendingHasValue != 0 {
			body = appendDecimal(body, d.r.Sum)
			body = appendDecimal(body, d.r.Min)
			body = appendDecimal(body, d.r.Max)
		}
		if flags&pendingHasLast != 0 {
			body = appendDecimal(body, d.r.Last)
			body = binary.AppendVarint(body, d.r.LastAt.UnixMicro())
			body = appendStr(body, d.r.LastID)
		}
	}
	body = binary.AppendUvarint(body, uint64(len(p.keys)))
	for _, k := range p.keys {
		body = appendStr(body, k.meter)
		body = binary.AppendVarint(body, k.bucket.Unix()/3600)
		body = appendStr(body, k.key)
	}
	b = appendStr(b, customer)
	b = binary.AppendUvarint(b, uint64(len(body)))
	return append(b, body...)
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendDecimal(b []byte, d decimal.Decimal) []byte {
	if d.NumDigits() <= 18 {
		b = append(b, 0)
		b = binary.AppendVarint(b, d.CoefficientInt64())
		return binary.AppendVarint(b, int64(d.Exponent()))
	}
	c := d.Coefficient()
	b = append(b, 1, byte(c.Sign()+1))
	b = appendStr(b, string(c.Bytes()))
	return binary.AppendVarint(b, int64(d.Exponent()))
}

// errBadPending means a rollup_pending row is not in the encoding above.
var errBadPending = errors.New("malformed pending rollup row")

// pendingReader decodes one rollup_pending row.
type pendingReader struct {
	b   []byte
	err error
}

func (r *pendingReader) fail() {
	if r.err == nil {
		r.err = errBadPending
	}
	r.b = nil
}

func (r *pendingReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *pendingReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *pendingReader) byte1() byte {
	if len(r.b) == 0 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *pendingReader) bytes() []byte {
	n := r.uvarint()
	if uint64(len(r.b)) < n {
		r.fail()
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *pendingReader) str() string { return string(r.bytes()) }

func (r *pendingReader) hour() time.Time { return time.Unix(r.varint()*3600, 0).UTC() }

func (r *pendingReader) decimal() decimal.Decimal {
	switch r.byte1() {
	case 0:
		c := r.varint()
		return decimal.New(c, int32(r.varint()))
	case 1:
		sign := int(r.byte1()) - 1
		c := new(big.Int).SetBytes(r.bytes())
		if sign < 0 {
			c.Neg(c)
		}
		return decimal.NewFromBigInt(c, int32(r.varint()))
	default:
		r.fail()
		return decimal.Decimal{}
	}
}

// decodePending calls fn with each customer's deltas in data, or only with
// customer's when customer is not empty.
func decodePending(data []byte, customer string, fn func(customer string, p *pendingCustomer)) error {
	r := &pendingReader{b: data}
	if r.byte1() != pendingVersion {
		return errBadPending
	}
	for len(r.b) > 0 && r.err == nil {
		c := r.str()
		body := r.bytes()
		if r.err != nil || (customer != "" && c != customer) {
			continue
		}
		p, err := decodePendingBody(body)
		if err != nil {
			return err
		}
		fn(c, p)
	}
	return r.err
}

func decodePendingBody(body []byte) (*pendingCustomer, error) {
	r := &pendingReader{b: body}
	p := &pendingCustomer{}
	n := r.uvarint()
	if n > uint64(len(body)) {
		return nil, errBadPending
	}
	p.deltas = make([]pendingDelta, 0, n)
	for range n {
		d := pendingDelta{meter: r.str(), bucket: r.hour()}
		d.r.Count = int64(r.uvarint())
		flags := r.byte1()
		if flags&pendingHasValue != 0 {
			d.r.HasValue = true
			d.r.Sum, d.r.Min, d.r.Max = r.decimal(), r.decimal(), r.decimal()
		}
		if flags&pendingHasLast != 0 {
			d.last = true
			d.r.Last = r.decimal()
			d.r.LastAt = time.UnixMicro(r.varint()).UTC()
			d.r.LastID = r.str()
		}
		if r.err != nil {
			return nil, r.err
		}
		p.deltas = append(p.deltas, d)
	}
	k := r.uvarint()
	if k > uint64(len(body)) {
		return nil, errBadPending
	}
	p.keys = make([]pendingKey, 0, k)
	for range k {
		p.keys = append(p.keys, pendingKey{meter: r.str(), bucket: r.hour(), key: r.str()})
	}
	if r.err != nil || len(r.b) != 0 {
		return nil, errBadPending
	}
	return p, nil
}

// customerPending returns the customer's pending deltas and keys, read
// through q.
func customerPending(ctx context.Context, q querier, customer string) (*pendingCustomer, error) {
	rows, err := q.Query(ctx, `SELECT data FROM rollup_pending WHERE slot = $1`, rollupSlot(customer))
	if err != nil {
		return nil, fmt.Errorf("read pending rollups: %w", err)
	}
	out := &pendingCustomer{}
	var data []byte
	_, err = pgx.ForEachRow(rows, []any{&data}, func() error {
		return decodePending(data, customer, func(_ string, p *pendingCustomer) {
			out.deltas = append(out.deltas, p.deltas...)
			out.keys = append(out.keys, p.keys...)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read pending rollups: %w", err)
	}
	return out, nil
}
