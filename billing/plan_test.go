package billing

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/shopspring/decimal"
)

func validPlan() Plan {
	return Plan{
		ID: "pro", Name: "Pro", Currency: "usd", Interval: Interval{Unit: Month, Count: 1},
		Products: []Product{
			{ID: "platform", Name: "Platform", FlatFee: 4900},
			{ID: "search", Name: "Search API", Prices: []MeterPrice{
				{Meter: "requests", Model: PerUnit, UnitPrice: dec("0.04"), FreeUnits: dec("10000")},
				{Meter: "storage_gb", Model: Package, UnitPrice: dec("500"), PackageSize: dec("5")},
				{Meter: "fonts", Model: Graduated, Tiers: stripeTiers()},
			}},
		},
	}
}

func TestPlanValidate(t *testing.T) {
	tests := []struct {
		name      string
		mutate    func(*Plan)
		wantField string
	}{
		{"valid", func(*Plan) {}, ""},
		{"valid with dunning policy and day interval", func(p *Plan) { p.DunningPolicy, p.Interval = "default", Interval{Day, 7} }, ""},
		{"missing id", func(p *Plan) { p.ID = "" }, "id"},
		{"missing name", func(p *Plan) { p.Name = "" }, "name"},
		{"unknown currency", func(p *Plan) { p.Currency = "xyz" }, "currency"},
		{"upper-case currency", func(p *Plan) { p.Currency = "USD" }, "currency"},
		{"no products", func(p *Plan) { p.Products = nil }, "products"},
		{"interval unit", func(p *Plan) { p.Interval.Unit = "week" }, "interval.unit"},
		{"interval count", func(p *Plan) { p.Interval.Count = 0 }, "interval.count"},
		{"duplicate product", func(p *Plan) { p.Products[1].ID = "platform" }, "products[1].id"},
		{"product name", func(p *Plan) { p.Products[0].Name = "" }, "products[0].name"},
		{"negative flat fee", func(p *Plan) { p.Products[0].FlatFee = -1 }, "products[0].flat_fee"},
		{"empty product", func(p *Plan) { p.Products[0].FlatFee = 0 }, "products[0].prices"},
		{"tier up_to path", func(p *Plan) { p.Products[1].Prices[2].Tiers[1].UpTo = decp("4") }, "products[1].prices[2].tiers[1].up_to"},
		{"package size path", func(p *Plan) { p.Products[1].Prices[1].PackageSize = decimal.Zero }, "products[1].prices[1].package_size"},
		{"meter twice", func(p *Plan) { p.Products[1].Prices[2].Meter = "requests" }, "products[1].prices[2].meter"},
		{"too many meters", func(p *Plan) {
			for i := range MaxMetersPerProduct {
				p.Products[0].Prices = append(p.Products[0].Prices,
					MeterPrice{Meter: fmt.Sprintf("m%d", i), Model: PerUnit, UnitPrice: dec("1")})
			}
			p.Products[0].Prices = append(p.Products[0].Prices, MeterPrice{Meter: "one_more", Model: PerUnit})
		}, "products[0].prices"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validPlan()
			tt.mutate(&p)
			err := p.Validate()
			var fe *FieldError
			switch {
			case tt.wantField == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.wantField != "" && !errors.As(err, &fe):
				t.Errorf("Validate() = %v, want a *FieldError for %s", err, tt.wantField)
			case tt.wantField != "" && fe.Field != tt.wantField:
				t.Errorf("Validate() field = %q (%v), want %q", fe.Field, err, tt.wantField)
			}
		})
	}
}

func TestFieldErrorMessage(t *testing.T) {
	p := validPlan()
	p.Products[1].Prices[2].Tiers[2].UpTo = decp("50")
	err := p.Validate()
	want := "products[1].prices[2].tiers[2].up_to: must be null: the last tier is unbounded"
	if err == nil || err.Error() != want {
		t.Errorf("Validate() = %v, want %q", err, want)
	}
}

func TestPlanJSON(t *testing.T) {
	const body = `{
	  "id": "typographic", "name": "Typographic", "currency": "usd",
	  "interval": {"unit": "month", "count": 1},
	  "dunning_policy": "gentle",
	  "products": [{
	    "id": "fonts", "name": "Fonts", "flat_fee": 1000,
	    "prices": [{
	      "meter": "fonts", "model": "graduated", "free_units": "0",
	      "tiers": [
	        {"up_to": "5", "unit_price": "700", "flat_fee": "0"},
	        {"up_to": 10, "unit_price": "650"},
	        {"up_to": null, "unit_price": "600"}
	      ]
	    }]
	  }]
	}`
	var p Plan
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("json.Unmarshal(plan) = %v", err)
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("Validate() = %v, want nil", err)
	}
	inv := Estimate(p, map[string]decimal.Decimal{"fonts": dec("13")})
	if want := int64(1000 + 8550); inv.Total != want {
		t.Errorf("Estimate(13 fonts).Total = %d, want %d", inv.Total, want)
	}
	if p.DunningPolicy != "gentle" {
		t.Errorf("DunningPolicy = %q, want %q", p.DunningPolicy, "gentle")
	}

	out, err := json.Marshal(p)
	if err != nil {
		t.Fatalf("json.Marshal(plan) = %v", err)
	}
	var back Plan
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatalf("json.Unmarshal(marshalled plan) = %v", err)
	}
	if got := Estimate(back, map[string]decimal.Decimal{"fonts": dec("13")}).Total; got != inv.Total {
		t.Errorf("round-tripped plan Estimate(13 fonts).Total = %d, want %d (json %s)", got, inv.Total, out)
	}
}
