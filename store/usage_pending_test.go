package store

import (
	"hash/fnv"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/billcycle/billcycle/billing/meter"
)

func TestPendingEncodingRoundTrips(t *testing.T) {
	hour := time.Date(2026, 11, 3, 7, 0, 0, 0, time.UTC)
	dec := decimal.RequireFromString
	huge := dec("123456789012345678901234567890.123456789")
	in := map[string]*pendingCustomer{
		"acme": {
			deltas: []pendingDelta{
				{meter: "calls", bucket: hour, r: meter.Rollup{Count: 3}},
				{meter: "tokens", bucket: hour.Add(time.Hour), r: meter.Rollup{Count: 2, HasValue: true, Sum: dec("12.5"), Min: dec("-0.25"), Max: huge}},
				{meter: "storage", bucket: hour, last: true, r: meter.Rollup{Count: 1, HasValue: true, Sum: dec("7"), Min: dec("7"), Max: dec("7"),
					Last: dec("-123456789012345678901"), LastAt: hour.Add(90 * time.Second), LastID: "evt_9"}},
			},
			keys: []pendingKey{{meter: "users", bucket: hour, key: "u_1"}, {meter: "users", bucket: hour, key: ""}},
		},
		"émile": {deltas: []pendingDelta{{meter: "calls", bucket: hour, r: meter.Rollup{Count: 1}}}},
	}
	data := []byte{pendingVersion}
	for _, c := range []string{"acme", "émile"} {
		data = appendPendingCustomer(data, c, in[c])
	}
	tests := []struct {
		name, only string
		want       []string
	}{
		{"all customers", "", []string{"acme", "émile"}},
		{"one customer", "émile", []string{"émile"}},
		{"unknown customer", "nobody", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			err := decodePending(data, tt.only, func(c string, p *pendingCustomer) {
				got = append(got, c)
				want := in[c]
				if len(p.deltas) != len(want.deltas) || len(p.keys) != len(want.keys) {
					t.Fatalf("decodePending(%s) = %d deltas %d keys, want %d, %d", c, len(p.deltas), len(p.keys), len(want.deltas), len(want.keys))
				}
				for i, d := range p.deltas {
					w := want.deltas[i]
					if d.meter != w.meter || !d.bucket.Equal(w.bucket) || d.last != w.last || d.r.Count != w.r.Count || d.r.HasValue != w.r.HasValue ||
						!d.r.Sum.Equal(w.r.Sum) && w.r.HasValue || !d.r.Min.Equal(w.r.Min) || !d.r.Max.Equal(w.r.Max) ||
						!d.r.Last.Equal(w.r.Last) || !d.r.LastAt.Equal(w.r.LastAt) || d.r.LastID != w.r.LastID {
						t.Errorf("decodePending(%s) delta %d = %+v, want %+v", c, i, d, w)
					}
				}
				for i, k := range p.keys {
					if k != want.keys[i] {
						t.Errorf("decodePending(%s) key %d = %+v, want %+v", c, i, k, want.keys[i])
					}
				}
			})
			if err != nil {
				t.Fatalf("decodePending: %v", err)
			}
			if len(got) != len(tt.want) || (len(got) > 0 && (got[0] != tt.want[0] || got[len(got)-1] != tt.want[len(tt.want)-1])) {
				t.Errorf("decodePending(only %q) visited %v, want %v", tt.only, got, tt.want)
			}
		})
	}
	// A truncation inside a customer's section is an error, never a panic
	// or a silent partial read.
	boundary := len(appendPendingCustomer([]byte{pendingVersion}, "acme", in["acme"]))
	for n := 0; n < len(data); n++ {
		if n == 1 || n == boundary {
			continue // whole sections: a shorter valid row
		}
		if err := decodePending(data[:n], "", func(string, *pendingCustomer) {}); err == nil {
			t.Errorf("decodePending(first %d of %d bytes) = nil error, want errBadPending", n, len(data))
		}
	}
}

func TestRollupSlotIsFNV1a(t *testing.T) {
	// Readers and writers in different processes must agree: the slot is
	// FNV-1a (32 bit) of the id modulo rollupSlots.
	for _, customer := range []string{"", "acme", "cust_00042", "émile", "a-very-long-customer-identifier-0123456789"} {
		h := fnv.New32a()
		h.Write([]byte(customer))
		if got, want := rollupSlot(customer), int(h.Sum32()%rollupSlots); got != want {
			t.Errorf("rollupSlot(%q) = %d, want %d", customer, got, want)
		}
	}
}
