module github.com/billcycle/billcycle

go 1.26.8

require (
	github.com/go-pdf/fpdf v0.9.0 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/pgx/v5 v5.12.0 // indirect
	github.com/sendgrid/rest v2.6.9+incompatible // indirect
	github.com/sendgrid/sendgrid-go v3.16.1+incompatible // indirect
	github.com/shopspring/decimal v1.6.0 // indirect
	github.com/stripe/stripe-go/v76 v76.25.0 // indirect
	go.temporal.io/sdk v1.50.0 // indirect
	golang.org/x/text v0.41.0 // indirect
)
