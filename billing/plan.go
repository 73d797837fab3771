package billing

// MaxMetersPerProduct is the most meters one product may price.
const MaxMetersPerProduct = 10

// maxIntervalCount bounds Interval.Count so period arithmetic cannot overflow.
const maxIntervalCount = 1000

// IntervalUnit is the unit of a billing interval.
type IntervalUnit string

// The interval units a plan can bill in.
const (
	Month IntervalUnit = "month"
	Day   IntervalUnit = "day"
)

// Interval is the length of a billing cycle: Count months or Count days.
type Interval struct {
	Unit  IntervalUnit `json:"unit"`
	Count int          `json:"count"`
}

// Validate returns a *FieldError naming the invalid field ("unit" or
// "count"), or nil.
func (iv Interval) Validate() error {
	if fe := iv.validate(); fe != nil {
		return fe
	}
	return nil
}

func (iv Interval) validate() *FieldError {
	if iv.Unit != Month && iv.Unit != Day {
		return fieldErr("unit", "must be \"month\" or \"day\"")
	}
	if iv.Count < 1 || iv.Count > maxIntervalCount {
		return fieldErr("count", "must be between 1 and %d", maxIntervalCount)
	}
	return nil
}

// Product is something a plan sells: a set of metered prices and an
// optional flat fee charged once per cycle.
type Product struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Prices price at most MaxMetersPerProduct meters, each meter once.
	Prices []MeterPrice `json:"prices"`
	// FlatFee is a recurring fee in minor units charged once per cycle,
	// independent of usage; 0 means none.
	FlatFee int64 `json:"flat_fee"`
}

// Validate returns a *FieldError whose field path is relative to the product
// (like "prices[2].tiers[1].up_to"), or nil.
func (p Product) Validate() error {
	if fe := p.validate(); fe != nil {
		return fe
	}
	return nil
}

func (p Product) validate() *FieldError {
	switch {
	case p.ID == "":
		return fieldErr("id", "is required")
	case p.Name == "":
		return fieldErr("name", "is required")
	case p.FlatFee < 0:
		return fieldErr("flat_fee", "must not be negative")
	case len(p.Prices) > MaxMetersPerProduct:
		return fieldErr("prices", "must price at most %d meters", MaxMetersPerProduct)
	case len(p.Prices) == 0 && p.FlatFee == 0:
		return fieldErr("prices", "must not be empty unless the product has a flat_fee")
	}
	seen := make(map[string]bool, len(p.Prices))
	for i, mp := range p.Prices {
		path := indexed("prices", i)
		if fe := mp.validate(); fe != nil {
			return under(path, fe)
		}
		if seen[mp.Meter] {
			return fieldErr(path+".meter", "meter %q is priced more than once in this product", mp.Meter)
		}
		seen[mp.Meter] = true
	}
	return nil
}

// Plan is what a customer subscribes to: products billed together every
// Interval in one Currency.
type Plan struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Currency Currency  `json:"currency"`
	Interval Interval  `json:"interval"`
	Products []Product `json:"products"`
	// DunningPolicy is the id of the escalation policy for unpaid invoices;
	// empty means the service default.
	DunningPolicy string `json:"dunning_policy,omitempty"`
}

// Validate returns a *FieldError naming the first invalid field with its full
// path (like "products[0].prices[2].tiers[1].up_to"), or nil.
func (p Plan) Validate() error {
	if fe := p.validate(); fe != nil {
		return fe
	}
	return nil
}

func (p Plan) validate() *FieldError {
	switch {
	case p.ID == "":
		return fieldErr("id", "is required")
	case p.Name == "":
		return fieldErr("name", "is required")
	case !p.Currency.Known():
		return fieldErr("currency", "unsupported currency %q (use a lowercase ISO 4217 code such as \"usd\")", string(p.Currency))
	case len(p.Products) == 0:
		return fieldErr("products", "must not be empty")
	}
	if fe := p.Interval.validate(); fe != nil {
		return under("interval", fe)
	}
	seen := make(map[string]bool, len(p.Products))
	for i, prod := range p.Products {
		path := indexed("products", i)
		if fe := prod.validate(); fe != nil {
			return under(path, fe)
		}
		if seen[prod.ID] {
			return fieldErr(path+".id", "product %q appears more than once", prod.ID)
		}
		seen[prod.ID] = true
	}
	return nil
}
