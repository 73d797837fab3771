package stripe

import (
	"context"
	"maps"

	stripego "github.com/stripe/stripe-go/v76"
)

// CustomerInput describes the Stripe customer for one billcycle customer.
type CustomerInput struct {
	// CustomerID is billcycle's stable customer id; required.
	CustomerID string
	// Email is the billing email address.
	Email string
	// Name is the customer's display name.
	Name string
	// Metadata is copied onto the Stripe customer next to billcycle_customer_id.
	Metadata map[string]string
}

// EnsureCustomer returns the id of the Stripe customer for in.CustomerID, creating it once.
// It first looks among the Stripe customers with in.Email for one whose billcycle_customer_id
// metadata matches, then creates one with the idempotency key "customer/<CustomerID>", so
// repeated calls return the same customer. It does not update an existing customer.
func (c *Client) EnsureCustomer(ctx context.Context, in CustomerInput) (string, error) {
	const op = "ensure customer"
	if in.CustomerID == "" {
		return "", invalidInput(op, "customer id is required")
	}
	if in.Email != "" {
		lp := &stripego.CustomerListParams{Email: stripego.String(in.Email)}
		lp.Context = ctx
		lp.Limit = stripego.Int64(100)
		it := c.api.Customers.List(lp)
		for it.Next() {
			if cu := it.Customer(); cu.Metadata[MetadataCustomerID] == in.CustomerID {
				return cu.ID, nil
			}
		}
		if err := it.Err(); err != nil {
			return "", classify(op+": list customers", err)
		}
	}
	p := &stripego.CustomerParams{
		Params:   params(ctx, IdempotencyKey("customer", in.CustomerID)),
		Metadata: withMeta(in.Metadata, MetadataCustomerID, in.CustomerID),
	}
	if in.Email != "" {
		p.Email = stripego.String(in.Email)
	}
	if in.Name != "" {
		p.Name = stripego.String(in.Name)
	}
	cu, err := c.api.Customers.New(p)
	if err != nil {
		return "", classify(op+": create customer", err)
	}
	return cu.ID, nil
}

// withMeta returns a copy of m with key set to value.
func withMeta(m map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(m)+len(kv)/2)
	maps.Copy(out, m)
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}
