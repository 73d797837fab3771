// Package billing is billcycle's pricing and rating domain: currencies and
// money, price models for metered usage, plans, billing periods and the rating
// of a cycle's usage into an invoice. It is pure Go with no I/O.
//
// Two rules hold everywhere in this package:
//
// Rounding: unit prices and quantities are exact decimals; every amount is
// computed exactly and rounded once, at the invoice line (and once more for
// each invoice-level discount and for tax), to a whole minor unit of the
// currency, rounding half away from zero (see [Round]). This is the rule
// Stripe documents for unit_amount_decimal prices: 0.05 cents × 30 = 1.5
// cents, rounded at the line to 2 cents.
//
// Tiers reset per cycle, never within a cycle: tiered prices are applied to
// the cycle-to-date quantity of a meter. An early (threshold) invoice bills
// the difference between rating the cumulative usage so far and what was
// already billed in the same cycle (see [Increment]), so splitting a cycle
// into any number of invoices bills exactly what one invoice at the cycle's
// end would.
package billing
