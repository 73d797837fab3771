// Package stripemock runs stripe/stripe-mock v0.183.0 (the release whose embedded OpenAPI spec
// is Stripe API 2023-10-16, the version stripe-go v76 speaks) for contract tests.
//
// stripe-mock validates requests against the spec but is stateless: every call answers with
// fixture data and new ids, a finalized invoice still reads "draft", lists never contain
// what was created. Use it to check that requests are well-formed and responses decode; use
// the stripefake package for behaviour.
//
// Where the server comes from, in order: env STRIPE_MOCK_URL (an already running server, used
// as is); env STRIPE_MOCK_BIN, "stripe-mock" on PATH, or /tmp/builds/stripe-mock (a binary,
// started here); otherwise `go install github.com/stripe/stripe-mock@v0.183.0` into the user
// cache directory, then started. A started server listens on 127.0.0.1 with
// system-chosen ports for both HTTP and HTTPS: without -https-addr stripe-mock would also bind
// the shared dev stack's port 12112.
package stripemock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Version is the stripe-mock release this package installs when it finds no binary.
const Version = "v0.183.0"

// Start returns the base URL (no /v1) of a stripe-mock server for the test, starting one that
// is stopped when the test ends. It skips the test if no server can be had.
func Start(t testing.TB) string {
	t.Helper()
	url, stop, err := StartProcess()
	if err != nil {
		t.Skipf("stripe-mock unavailable (set STRIPE_MOCK_URL or STRIPE_MOCK_BIN): %v", err)
	}
	t.Cleanup(stop)
	return url
}

// StartProcess is Start for TestMain: it returns the server's base URL and a function that
// stops it (a no-op for STRIPE_MOCK_URL).
func StartProcess() (url string, stop func(), err error) {
	if u := os.Getenv("STRIPE_MOCK_URL"); u != "" {
		return strings.TrimRight(u, "/"), func() {}, nil
	}
	bin, err := binary()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, fmt.Errorf("stripe-mock stdout: %w", err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start %s: %w", bin, err)
	}
	stop = func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		const prefix = "Listening for HTTP at address: "
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), prefix); ok {
				addr <- a
				break
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case a := <-addr:
		return "http://" + a, stop, nil
	case <-time.After(30 * time.Second):
		stop()
		return "", nil, errors.New("stripe-mock did not report its HTTP address within 30s")
	}
}

var (
	installOnce sync.Once
	installed   string
	installErr  error
)

// binary finds or installs a stripe-mock executable.
func binary() (string, error) {
	if b := os.Getenv("STRIPE_MOCK_BIN"); b != "" {
		return b, nil
	}
	if b, err := exec.LookPath("stripe-mock"); err == nil {
		return b, nil
	}
	if _, err := os.Stat("/tmp/builds/stripe-mock"); err == nil {
		return "/tmp/builds/stripe-mock", nil
	}
	installOnce.Do(func() { installed, installErr = install() })
	return installed, installErr
}

// install builds stripe-mock into the user cache directory unless it is already there.
func install() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find cache dir: %w", err)
	}
	dir := filepath.Join(cache, "billcycle", "stripe-mock-"+Version)
	bin := filepath.Join(dir, "stripe-mock")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("no stripe-mock binary and no go tool: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "install", "github.com/stripe/stripe-mock@"+Version)
	cmd.Env = append(os.Environ(), "GOBIN="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install stripe-mock@%s: %w: %s", Version, err, out)
	}
	return bin, nil
}
