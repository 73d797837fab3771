//go:build deps

// This file pins the libraries billcycle is built on while the packages that
// import them are being written; it is never compiled.
package billcycle

import (
	_ "github.com/go-pdf/fpdf"
	_ "github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/sendgrid/sendgrid-go"
	_ "github.com/shopspring/decimal"
	_ "github.com/stripe/stripe-go/v76/client"
	_ "github.com/stripe/stripe-go/v76/webhook"
	_ "go.temporal.io/api/enums/v1"
	_ "go.temporal.io/api/operatorservice/v1"
	_ "go.temporal.io/sdk/client"
	_ "go.temporal.io/sdk/testsuite"
	_ "go.temporal.io/sdk/worker"
	_ "go.temporal.io/sdk/workflow"
)
