package meter

import (
	"time"

	"github.com/shopspring/decimal"
)

// Rollup is the aggregation state of a set of event values, such as one
// meter's events of one customer in one time bucket. It is mergeable:
// merging the rollups of any partition of a set of values, in any order and
// grouping, gives the same state as adding all the values to one rollup, so
// hourly rollups merge into the exact daily or billing-period result. This
// holds for every aggregation because the sum is exact, max and min are
// order-free, and the last value is chosen by a total order (event time,
// then event id, then value) rather than by arrival.
//
// Unique counts are not kept here: the store keeps the distinct keys from
// Meter.UniqueKey itself and passes their number to Result.
//
// The zero Rollup is empty and ready to use.
type Rollup struct {
	Count    int64           `json:"count"`     // values added
	Sum      decimal.Decimal `json:"sum"`       // exact sum of the values
	Max      decimal.Decimal `json:"max"`       // largest value, when HasValue
	Min      decimal.Decimal `json:"min"`       // smallest value, when HasValue
	Last     decimal.Decimal `json:"last"`      // value of the latest event, when HasValue
	LastAt   time.Time       `json:"last_at"`   // event time of Last
	LastID   string          `json:"last_id"`   // event id of Last
	HasValue bool            `json:"has_value"` // at least one value was added
}

// Add adds the value v of the event with timestamp at and id id, as
// returned by Meter.Value.
func (r *Rollup) Add(v decimal.Decimal, at time.Time, id string) {
	r.Merge(Rollup{Count: 1, Sum: v, Max: v, Min: v, Last: v, LastAt: at, LastID: id, HasValue: true})
}

// Merge adds the values summarized by o to r.
func (r *Rollup) Merge(o Rollup) {
	if !o.HasValue {
		r.Count += o.Count
		return
	}
	if !r.HasValue {
		count := r.Count
		*r = o
		r.Count += count
		return
	}
	r.Count += o.Count
	r.Sum = r.Sum.Add(o.Sum)
	if o.Max.Cmp(r.Max) > 0 {
		r.Max = o.Max
	}
	if o.Min.Cmp(r.Min) < 0 {
		r.Min = o.Min
	}
	if later(o.LastAt, o.LastID, o.Last, r.LastAt, r.LastID, r.Last) {
		r.Last, r.LastAt, r.LastID = o.Last, o.LastAt, o.LastID
	}
}

// later reports whether value a (at time ta, event id ida) comes after
// value b in the order that picks the last value: event time first, then
// event id byte-wise, then the value itself so that even duplicate ids
// resolve the same way every time.
func later(ta time.Time, ida string, a decimal.Decimal, tb time.Time, idb string, b decimal.Decimal) bool {
	if c := ta.Compare(tb); c != 0 {
		return c > 0
	}
	if ida != idb {
		return ida > idb
	}
	return a.Cmp(b) > 0
}

// Result returns the quantity for aggregation agg: the count, sum, max, min
// or last value, or uniqueCount for unique_count. An empty rollup yields
// zero for every aggregation.
func (r Rollup) Result(agg Aggregation, uniqueCount int64) decimal.Decimal {
	switch agg {
	case AggregationCount:
		return decimal.NewFromInt(r.Count)
	case AggregationSum:
		return r.Sum
	case AggregationUniqueCount:
		return decimal.NewFromInt(uniqueCount)
	}
	if !r.HasValue {
		return decimal.Decimal{}
	}
	switch agg {
	case AggregationMax:
		return r.Max
	case AggregationMin:
		return r.Min
	case AggregationLast:
		return r.Last
	}
	return decimal.Decimal{}
}
