package meter

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

type sample struct {
	v  decimal.Decimal
	at time.Time
	id string
}

func TestRollupResult(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	d := decimal.RequireFromString
	samples := []sample{
		{d("2.5"), t0.Add(time.Hour), "b"},
		{d("-1"), t0, "a"},
		{d("10"), t0.Add(time.Hour), "a"}, // same time as "b", smaller id: not last
		{d("0.25"), t0.Add(30 * time.Minute), "z"},
	}
	var r Rollup
	for _, s := range samples {
		r.Add(s.v, s.at, s.id)
	}
	tests := []struct {
		agg  Aggregation
		want string
	}{
		{AggregationCount, "4"},
		{AggregationSum, "11.75"},
		{AggregationMax, "10"},
		{AggregationMin, "-1"},
		{AggregationLast, "2.5"},
		{AggregationUniqueCount, "3"},
	}
	for _, tt := range tests {
		if got := r.Result(tt.agg, 3); !got.Equal(d(tt.want)) {
			t.Errorf("Result(%s) = %v, want %s", tt.agg, got, tt.want)
		}
	}
	if r.LastID != "b" || !r.LastAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("last = %s at %v, want b at %v", r.LastID, r.LastAt, t0.Add(time.Hour))
	}

	var empty Rollup
	for _, agg := range []Aggregation{AggregationCount, AggregationSum, AggregationMax, AggregationMin, AggregationLast, AggregationUniqueCount} {
		if got := empty.Result(agg, 0); !got.IsZero() {
			t.Errorf("empty Result(%s) = %v, want 0", agg, got)
		}
	}
}

// TestRollupMergeMatchesDirect checks the property rollups rely on: adding
// all values to one rollup and merging rollups of random buckets, in random
// order, give the same state.
func TestRollupMergeMatchesDirect(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	for round := 0; round < 200; round++ {
		n := 1 + rng.IntN(60)
		samples := make([]sample, n)
		for i := range samples {
			// Few distinct times and ids, so ties are frequent.
			samples[i] = sample{
				v:  decimal.New(rng.Int64N(2001)-1000, -int32(rng.IntN(4))),
				at: t0.Add(time.Duration(rng.IntN(5)) * time.Minute),
				id: fmt.Sprintf("e%d", rng.IntN(8)),
			}
		}
		var direct Rollup
		for _, s := range samples {
			direct.Add(s.v, s.at, s.id)
		}

		order := rng.Perm(n)
		buckets := make([]Rollup, 1+rng.IntN(n))
		for _, i := range order {
			s := samples[i]
			buckets[rng.IntN(len(buckets))].Add(s.v, s.at, s.id)
		}
		// Merge pairwise in random order until one rollup is left.
		for len(buckets) > 1 {
			i := rng.IntN(len(buckets))
			j := rng.IntN(len(buckets) - 1)
			if j >= i {
				j++
			}
			buckets[i].Merge(buckets[j])
			buckets = append(buckets[:j], buckets[j+1:]...)
		}
		merged := buckets[0]

		// An independent reference for the last value: sort by the documented order.
		sorted := append([]sample(nil), samples...)
		sort.Slice(sorted, func(a, b int) bool {
			x, y := sorted[a], sorted[b]
			if !x.at.Equal(y.at) {
				return x.at.Before(y.at)
			}
			if x.id != y.id {
				return x.id < y.id
			}
			return x.v.LessThan(y.v)
		})
		wantLast := sorted[n-1]

		for _, agg := range []Aggregation{AggregationCount, AggregationSum, AggregationMax, AggregationMin, AggregationLast} {
			if d, m := direct.Result(agg, 0), merged.Result(agg, 0); !d.Equal(m) {
				t.Fatalf("round %d: Result(%s) direct = %v, merged = %v", round, agg, d, m)
			}
		}
		if !merged.Last.Equal(wantLast.v) || merged.LastID != wantLast.id || !merged.LastAt.Equal(wantLast.at) {
			t.Fatalf("round %d: last = %v %s %v, want %v %s %v", round, merged.Last, merged.LastID, merged.LastAt, wantLast.v, wantLast.id, wantLast.at)
		}
		if merged.LastID != direct.LastID || !merged.LastAt.Equal(direct.LastAt) || merged.Count != int64(n) {
			t.Fatalf("round %d: merged %+v, direct %+v", round, merged, direct)
		}
	}
}

func TestRollupMergeEmpty(t *testing.T) {
	var r Rollup
	r.Add(decimal.NewFromInt(5), time.Unix(0, 0), "a")
	before := r
	r.Merge(Rollup{})
	if r.Count != before.Count || !r.Sum.Equal(before.Sum) || r.LastID != before.LastID {
		t.Errorf("Merge(empty) changed %+v into %+v", before, r)
	}
	var e Rollup
	e.Merge(before)
	if e.Count != 1 || !e.Result(AggregationMax, 0).Equal(decimal.NewFromInt(5)) {
		t.Errorf("empty.Merge(%+v) = %+v, want the same state", before, e)
	}
}
