package render_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/billcycle/billcycle/billing"
	"github.com/billcycle/billcycle/render"
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// sample rates a March invoice with a flat fee, a sub-cent per-unit price
// with a free allowance, a graduated price and a package price, a 10 %
// discount, 8.25 % tax and some credit.
func sample() render.Document {
	ten := d("10")
	plan := billing.Plan{ID: "pro", Name: "Pro", Currency: "usd", Interval: billing.Interval{Unit: billing.Month, Count: 1},
		Products: []billing.Product{{ID: "api", Name: "API platform", FlatFee: 4900, Prices: []billing.MeterPrice{
			{Meter: "requests", Model: billing.PerUnit, UnitPrice: d("0.04"), FreeUnits: d("10000")},
			{Meter: "storage_gb", Model: billing.Graduated, Tiers: []billing.Tier{{UpTo: &ten, UnitPrice: d("100")}, {UnitPrice: d("50"), FlatFee: d("200")}}},
			{Meter: "exports", Model: billing.Package, UnitPrice: d("500"), PackageSize: d("100")},
		}}}}
	sub := billing.Subscription{CustomerID: "acme", PlanID: "pro", Currency: "usd", TaxRate: d("8.25"), CreditBalance: 1000,
		Discounts: []billing.Discount{{Kind: billing.PercentOff, PercentOff: d("10")}}}
	period := billing.Period{Start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)}
	inv := billing.Rate(plan, sub, period, map[string]decimal.Decimal{"requests": d("1234567"), "storage_gb": d("12.5"), "exports": d("250")})
	return render.Document{ID: "customer/acme/2026-03-01/cycle", Kind: "cycle", Status: "open", StripeInvoiceID: "in_123",
		Customer: render.Customer{ID: "acme", Name: "Acme Corp", Email: "billing@acme.test"},
		IssuedAt: period.End, DueAt: period.End.AddDate(0, 0, 14), TaxRate: sub.TaxRate, Invoice: inv}
}

func TestCSV(t *testing.T) {
	doc := sample()
	inv := doc.Invoice
	// requests: 1,224,567 billable × 0.04 = 48,982.68 cents → 48,983; storage: 10 × 100 + 2.5 × 50 + 200 = 1,325;
	// exports: 3 packages × 500 = 1,500; flat 4,900. Subtotal 56,708; 10 % off = 5,670.8 → 5,671; tax 8.25 % of
	// 51,037 = 4,210.5525 → 4,211; credit 1,000; total 54,248.
	if inv.Subtotal != 56708 || inv.Discount != 5671 || inv.Tax != 4211 || inv.CreditApplied != 1000 || inv.Total != 54248 {
		t.Fatalf("Rate = subtotal %d discount %d tax %d credit %d total %d, want the hand-computed 56708/5671/4211/1000/54248",
			inv.Subtotal, inv.Discount, inv.Tax, inv.CreditApplied, inv.Total)
	}
	var buf bytes.Buffer
	if err := render.CSV(&buf, doc); err != nil {
		t.Fatal(err)
	}
	const p = "customer/acme/2026-03-01/cycle,acme,USD,2026-03-01T00:00:00Z,2026-04-01T00:00:00Z,"
	want := "invoice_id,customer_id,currency,period_start,period_end,line,product,meter,description,quantity,free_units,billable_quantity,unit_price,amount\n" +
		p + "1,api,,API platform,1,0,1,49,49.00\n" +
		p + "2,api,requests,API platform – requests,1234567,10000,1224567,0.0004,489.83\n" +
		p + "3,api,storage_gb,API platform – storage_gb,12.5,0,12.5,,13.25\n" +
		p + "4,api,exports,API platform – exports,250,0,250,5,15.00\n" +
		p + "subtotal,,,,,,,,567.08\n" +
		p + "discount,,,,,,,,-56.71\n" +
		p + "tax,,,,,,,,42.11\n" +
		p + "credit_applied,,,,,,,,-10.00\n" +
		p + "total,,,,,,,,542.48\n"
	if got := buf.String(); got != want {
		t.Errorf("CSV =\n%s\nwant\n%s", got, want)
	}
}

func TestMoneyFormatting(t *testing.T) {
	tests := []struct {
		amount int64
		cur    billing.Currency
		want   string
	}{
		{123456, "usd", "$1,234.56"}, {-50, "eur", "-€0.50"}, {1200, "jpy", "¥1,200"}, {1200, "krw", "KRW 1,200"}, {1234, "kwd", "KWD 1.234"},
	}
	for _, tt := range tests {
		if got := render.Money(tt.amount, tt.cur); got != tt.want {
			t.Errorf("Money(%d, %s) = %q, want %q", tt.amount, tt.cur, got, tt.want)
		}
	}
	units := []struct {
		minor string
		cur   billing.Currency
		want  string
	}{{"0.04", "usd", "$0.0004"}, {"150", "usd", "$1.50"}, {"0.5", "jpy", "¥0.5"}, {"12.3400", "usd", "$0.1234"}}
	for _, tt := range units {
		if got := render.UnitPrice(d(tt.minor), tt.cur); got != tt.want {
			t.Errorf("UnitPrice(%s, %s) = %q, want %q", tt.minor, tt.cur, got, tt.want)
		}
	}
}

func TestPDFShowsTheInvoice(t *testing.T) {
	doc := sample()
	var buf bytes.Buffer
	if err := render.PDF(&buf, doc); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte("%PDF-")) || buf.Len() < 1000 {
		t.Fatalf("PDF output is %d bytes starting %q, want a PDF document", buf.Len(), buf.Bytes()[:min(8, buf.Len())])
	}
	if out := os.Getenv("RENDER_PDF_OUT"); out != "" { // for looking at it: RENDER_PDF_OUT=/tmp/x.pdf
		_ = os.WriteFile(out, buf.Bytes(), 0o644)
	}
	bin, err := exec.LookPath("pdftotext")
	if err != nil {
		t.Skip("pdftotext not installed (apt-get install poppler-utils); checked size only")
	}
	file := filepath.Join(t.TempDir(), "invoice.pdf")
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	txt, err := exec.Command(bin, "-layout", file, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	text := string(txt)
	inv := doc.Invoice
	for _, want := range []string{
		"Acme Corp", "1 Mar 2026 – 31 Mar 2026", "API platform – requests", "1,234,567", "10,000", "$0.0004",
		render.Money(inv.Lines[1].Amount, "usd"), "units 11 and above: 2.5 × $0.50 + $2.00 flat", "$5.00 / pkg",
		"Subtotal", render.Money(inv.Subtotal, "usd"), "Tax (8.25%)", render.Money(inv.Tax, "usd"),
		"Discount", render.Money(-inv.Discount, "usd"), "Credit applied", "Total due (USD)", render.Money(inv.Total, "usd"),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("PDF text lacks %q; text:\n%s", want, text)
		}
	}
}
