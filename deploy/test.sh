#!/usr/bin/env bash
# billcycle's whole test run, from a fresh Debian machine with Go installed:
#   - starts PostgreSQL if it is down (and checks it answers),
#   - builds the pinned Temporal CLI and stripe-mock from the Go module proxy
#     (through `billcycle dev --services-only`) and runs them on test ports,
#   - runs the formatting check, go vet, workflowcheck and the tests with the
#     race detector, then stops what it started.
# Extra arguments go to `go test` (for example: bash deploy/test.sh -run Signup ./starter/).
set -euo pipefail
cd "$(dirname "$0")/.."

WORKFLOWCHECK=go.temporal.io/sdk/contrib/tools/workflowcheck@v0.6.0
TEMPORAL_PORT=${TEMPORAL_TEST_PORT:-17233}
STRIPE_PORT=${STRIPE_MOCK_TEST_PORT:-12211}
export TEST_DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
export TEMPORAL_TEST_ADDRESS=127.0.0.1:$TEMPORAL_PORT
export STRIPE_MOCK_URL=http://127.0.0.1:$STRIPE_PORT
export GOFLAGS=${GOFLAGS:--buildvcs=false}

say() { printf '\n== %s\n' "$*"; }

say "PostgreSQL"
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "not answering; starting it"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432 || { echo "PostgreSQL does not answer on 127.0.0.1:5432" >&2; exit 1; }
psql "$TEST_DATABASE_URL" -qAtc 'select 1' >/dev/null 2>&1 || \
  psql "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable" -qc 'CREATE DATABASE test' || true

say "Build"
mkdir -p bin
go build -o bin/billcycle ./cmd/billcycle

say "Temporal dev server and stripe-mock (test ports $TEMPORAL_PORT, $STRIPE_PORT)"
rm -rf .dev/test
mkdir -p .dev/test
./bin/billcycle dev --services-only --dir .dev/test --temporal-port "$TEMPORAL_PORT" --ui-port $((TEMPORAL_PORT + 1000)) \
  --stripe-port "$STRIPE_PORT" > .dev/test/services.log 2>&1 &
services=$!
trap 'kill -INT $services 2>/dev/null; wait $services 2>/dev/null || true' EXIT
for _ in $(seq 1 900); do
  grep -q "services ready" .dev/test/services.log 2>/dev/null && break
  kill -0 $services 2>/dev/null || { cat .dev/test/services.log; echo "services failed to start" >&2; exit 1; }
  sleep 1
done
cat .dev/test/services.log

say "Formatting"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.dev/*'))
if [ -n "$unformatted" ]; then echo "gofmt would change:"; echo "$unformatted"; exit 1; fi
echo ok

say "go vet"
go vet ./...

say "workflowcheck (determinism of workflow code)"
go run "$WORKFLOWCHECK" ./workflows/...
echo ok

say "Tests (race detector)"
if [ $# -eq 0 ]; then set -- ./...; fi
go test -race -count=1 -timeout 30m "$@"
