package render

import (
	"fmt"
	"io"
	"strings"

	"github.com/go-pdf/fpdf"

	"github.com/billcycle/billcycle/billing"
)

// Page geometry in millimetres (A4 portrait).
const (
	margin   = 18.0
	rowH     = 6.0
	colDesc  = 76.0
	colQty   = 24.0
	colFree  = 20.0
	colUnit  = 26.0
	colTotal = 28.0
)

// PDF writes the invoice as a one-or-more-page A4 PDF: who is billed, the
// period, a table of lines (quantity, free units, unit price or the tier
// breakdown, amount) and the totals, with amounts in the invoice's currency.
func PDF(w io.Writer, d Document) error {
	inv := d.Invoice
	cur := inv.Currency
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetMargins(margin, margin, margin)
	pdf.SetAutoPageBreak(true, margin+8)
	pdf.SetTitle("Invoice "+d.ID, true)
	pdf.SetCreator("billcycle", true)
	if !d.IssuedAt.IsZero() {
		pdf.SetCreationDate(d.IssuedAt)
		pdf.SetModificationDate(d.IssuedAt)
	}
	tr := pdf.UnicodeTranslatorFromDescriptor("") // UTF-8 to the core fonts' Windows-1252
	pdf.AliasNbPages("")
	pdf.SetFooterFunc(func() {
		pdf.SetY(-margin)
		pdf.SetFont("Helvetica", "", 8)
		pdf.SetTextColor(120, 120, 120)
		pdf.CellFormat(0, 5, tr(fmt.Sprintf("Invoice %s · page %d of {nb}", d.ID, pdf.PageNo())), "", 0, "C", false, 0, "")
	})
	pdf.AddPage()
	width, _ := pdf.GetPageSize()
	content := width - 2*margin

	// Heading: title on the left, invoice facts on the right.
	pdf.SetTextColor(30, 30, 30)
	pdf.SetFont("Helvetica", "B", 22)
	pdf.CellFormat(content/2, 12, "Invoice", "", 0, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 9)
	facts := [][2]string{{"Invoice", d.ID}, {"Kind", d.Kind}, {"Status", d.Status}}
	if !d.IssuedAt.IsZero() {
		facts = append(facts, [2]string{"Issued", d.IssuedAt.UTC().Format("2 Jan 2006")})
	}
	if !d.DueAt.IsZero() {
		facts = append(facts, [2]string{"Due", d.DueAt.UTC().Format("2 Jan 2006")})
	}
	if d.StripeInvoiceID != "" {
		facts = append(facts, [2]string{"Stripe", d.StripeInvoiceID})
	}
	y := pdf.GetY()
	for _, f := range facts {
		pdf.SetXY(margin+content/2, y)
		pdf.SetFont("Helvetica", "", 9)
		pdf.SetTextColor(110, 110, 110)
		pdf.CellFormat(22, 5, f[0], "", 0, "L", false, 0, "")
		pdf.SetTextColor(30, 30, 30)
		pdf.CellFormat(content/2-22, 5, tr(fit(pdf, tr, f[1], content/2-22)), "", 0, "R", false, 0, "")
		y += 5
	}
	y = max(y, margin+14) + 4

	// Bill to and period.
	pdf.SetXY(margin, y)
	label := func(s string) {
		pdf.SetFont("Helvetica", "B", 8)
		pdf.SetTextColor(110, 110, 110)
		pdf.CellFormat(content/2, 5, strings.ToUpper(s), "", 2, "L", false, 0, "")
		pdf.SetFont("Helvetica", "", 10)
		pdf.SetTextColor(30, 30, 30)
	}
	label("Bill to")
	for _, s := range []string{d.Customer.Name, d.Customer.ID, d.Customer.Email} {
		if s != "" {
			pdf.CellFormat(content/2, 5, tr(s), "", 2, "L", false, 0, "")
		}
	}
	bottom := pdf.GetY()
	pdf.SetXY(margin+content/2, y)
	label("Billing period")
	pdf.CellFormat(content/2, 5, tr(periodText(inv)), "", 2, "L", false, 0, "")
	pdf.CellFormat(content/2, 5, tr("Currency: "+cur.String()), "", 2, "L", false, 0, "")
	pdf.SetXY(margin, max(bottom, pdf.GetY())+6)

	// Lines.
	header := func() {
		pdf.SetFont("Helvetica", "B", 9)
		pdf.SetFillColor(238, 240, 244)
		pdf.SetTextColor(30, 30, 30)
		pdf.CellFormat(colDesc, rowH+1, "Description", "", 0, "L", true, 0, "")
		pdf.CellFormat(colQty, rowH+1, "Quantity", "", 0, "R", true, 0, "")
		pdf.CellFormat(colFree, rowH+1, "Free", "", 0, "R", true, 0, "")
		pdf.CellFormat(colUnit, rowH+1, "Unit price", "", 0, "R", true, 0, "")
		pdf.CellFormat(colTotal, rowH+1, "Amount", "", 1, "R", true, 0, "")
	}
	header()
	for _, l := range inv.Lines {
		need := rowH * float64(1+len(l.Tiers))
		if _, h := pdf.GetPageSize(); pdf.GetY()+need > h-margin-8 {
			pdf.AddPage()
			header()
		}
		pdf.SetFont("Helvetica", "", 9)
		pdf.SetTextColor(30, 30, 30)
		qty, free, unit := Quantity(l.Quantity), "", ""
		if l.Meter == "" {
			qty, unit = "1", Money(l.Amount, cur)
		} else if !l.FreeUnits.IsZero() {
			free = Quantity(l.FreeUnits)
		}
		switch {
		case l.Meter == "":
		case l.Model == billing.Package:
			unit = UnitPrice(l.UnitPrice, cur) + " / pkg"
		case len(l.Tiers) > 0:
			unit = "tiered"
		case !l.UnitPrice.IsZero():
			unit = UnitPrice(l.UnitPrice, cur)
		}
		pdf.CellFormat(colDesc, rowH, tr(fit(pdf, tr, l.Description, colDesc-2)), "", 0, "L", false, 0, "")
		pdf.CellFormat(colQty, rowH, qty, "", 0, "R", false, 0, "")
		pdf.CellFormat(colFree, rowH, free, "", 0, "R", false, 0, "")
		pdf.CellFormat(colUnit, rowH, tr(unit), "", 0, "R", false, 0, "")
		pdf.CellFormat(colTotal, rowH, tr(Money(l.Amount, cur)), "", 1, "R", false, 0, "")
		pdf.SetFont("Helvetica", "", 8)
		pdf.SetTextColor(100, 100, 100)
		if l.Model == billing.Package && !l.Packages.IsZero() {
			pdf.CellFormat(content, rowH-1, tr(fmt.Sprintf("    %s billable units in %s packages", Quantity(l.BillableQuantity), Quantity(l.Packages))), "", 1, "L", false, 0, "")
		}
		for _, t := range l.Tiers {
			pdf.CellFormat(colDesc+colQty+colFree+colUnit, rowH-1, tr("    "+tierText(t, cur)), "", 0, "L", false, 0, "")
			pdf.CellFormat(colTotal, rowH-1, tr(UnitPrice(t.Amount, cur)), "", 1, "R", false, 0, "")
		}
		x, yy := pdf.GetXY()
		pdf.SetDrawColor(225, 225, 225)
		pdf.Line(x, yy+0.5, x+content, yy+0.5)
		pdf.Ln(1.5)
	}

	// Totals, right-aligned under the Amount column.
	pdf.Ln(3)
	labelW := colUnit + colFree + 10
	left := margin + content - colTotal - labelW
	row := func(name string, amount int64, bold bool) {
		style := ""
		if bold {
			style = "B"
		}
		pdf.SetX(left)
		pdf.SetFont("Helvetica", style, 10)
		pdf.SetTextColor(30, 30, 30)
		pdf.CellFormat(labelW, rowH+1, tr(name), "", 0, "L", false, 0, "")
		pdf.CellFormat(colTotal, rowH+1, tr(Money(amount, cur)), "", 1, "R", false, 0, "")
	}
	row("Subtotal", inv.Subtotal, false)
	if inv.Discount != 0 {
		row("Discount", -inv.Discount, false)
	}
	taxName := "Tax"
	if d.TaxRate.IsPositive() {
		taxName = "Tax (" + d.TaxRate.String() + "%)"
	}
	row(taxName, inv.Tax, false)
	if inv.CreditApplied != 0 {
		row("Credit applied", -inv.CreditApplied, false)
	}
	pdf.SetDrawColor(60, 60, 60)
	pdf.Line(left, pdf.GetY()+0.5, margin+content, pdf.GetY()+0.5)
	pdf.Ln(1.5)
	row("Total due ("+cur.String()+")", inv.Total, true)

	pdf.Ln(8)
	pdf.SetFont("Helvetica", "", 8)
	pdf.SetTextColor(110, 110, 110)
	pdf.MultiCell(content, 4, tr("Unit prices may be fractions of the smallest currency unit. Each line is computed exactly "+
		"and rounded once to the currency's minor unit, half away from zero. Tiered prices apply to usage since the start of "+
		"the billing period; an early (threshold) invoice bills the period's usage so far minus what earlier invoices of the "+
		"period billed."), "", "L", false)
	if err := pdf.Error(); err != nil {
		return fmt.Errorf("render invoice %s: %w", d.ID, err)
	}
	if err := pdf.Output(w); err != nil {
		return fmt.Errorf("render invoice %s: %w", d.ID, err)
	}
	return nil
}

// fit shortens s with an ellipsis until it fits in width mm at the current font.
func fit(pdf *fpdf.Fpdf, tr func(string) string, s string, width float64) string {
	if pdf.GetStringWidth(tr(s)) <= width {
		return s
	}
	r := []rune(s)
	for len(r) > 1 && pdf.GetStringWidth(tr(string(r)+"…")) > width {
		r = r[:len(r)-1]
	}
	return string(r) + "…"
}
