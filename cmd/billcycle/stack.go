package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Pinned versions of the local stack's tools, built from the Go module proxy
// (nothing is downloaded from anywhere else).
const (
	temporalCLIModule = "github.com/temporalio/cli/cmd/temporal@v1.5.1"
	stripeMockModule  = "github.com/stripe/stripe-mock@v0.183.0"
)

// tool returns the path of a pinned tool binary, building it with
// `go install module@version` into billcycle's cache the first time.
func tool(ctx context.Context, module, name string, progress func(string)) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	_, version, _ := strings.Cut(module, "@")
	dir := filepath.Join(cache, "billcycle", "tools", name+"-"+version)
	bin := filepath.Join(dir, name)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	note := "first time only"
	if name == "temporal" {
		note += "; about 5 minutes on 2 cores"
	}
	progress(fmt.Sprintf("building %s from the Go module proxy (%s)", module, note))
	cmd := exec.CommandContext(ctx, "go", "install", module)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s: %w\n%s", module, err, out)
	}
	return bin, nil
}

// child is a process the stack started; it runs in its own process group so
// that stopping it stops everything it spawned.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

func startChild(name, logPath, bin string, args ...string) (*child, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(c.done) }()
	return c, nil
}

// stop sends SIGTERM to the child's process group, then SIGKILL after grace.
func (c *child) stop(grace time.Duration) {
	pgid := -c.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-c.done
	}
}

// exited reports whether the child has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func listening(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// waitListening waits until addr accepts connections, the child dies, or
// the timeout passes.
func waitListening(ctx context.Context, addr string, c *child, timeout time.Duration, logPath string) error {
	deadline := time.Now().Add(timeout)
	for !listening(addr) {
		if c != nil && c.exited() {
			return fmt.Errorf("%s exited before listening on %s; see %s", c.name, addr, logPath)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after %s; see %s", addr, timeout, logPath)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

// stackOptions are the ports and state directory of the local services.
type stackOptions struct {
	dir          string
	temporalPort int
	uiPort       int
	stripePort   int
}

// services are the local services the stack started (nil where it reused a
// running one).
type services struct {
	children []*child
}

func (s *services) stop() {
	for i := len(s.children) - 1; i >= 0; i-- {
		s.children[i].stop(10 * time.Second)
	}
}

// startServices brings up the Temporal dev server and stripe-mock, reusing
// either when something already listens on its port.
func startServices(ctx context.Context, o stackOptions, progress func(string)) (*services, error) {
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return nil, err
	}
	s := &services{}
	temporalAddr := fmt.Sprintf("127.0.0.1:%d", o.temporalPort)
	if listening(temporalAddr) {
		progress("Temporal: reusing the server already on " + temporalAddr)
	} else {
		bin, err := tool(ctx, temporalCLIModule, "temporal", progress)
		if err != nil {
			return nil, err
		}
		logPath := filepath.Join(o.dir, "temporal.log")
		c, err := startChild("temporal dev server", logPath, bin, "server", "start-dev",
			"--ip", "127.0.0.1", "--port", fmt.Sprint(o.temporalPort), "--ui-port", fmt.Sprint(o.uiPort),
			"--db-filename", filepath.Join(o.dir, "temporal.db"), "--log-level", "warn")
		if err != nil {
			return nil, err
		}
		s.children = append(s.children, c)
		if err := waitListening(ctx, temporalAddr, c, 90*time.Second, logPath); err != nil {
			s.stop()
			return nil, err
		}
		progress(fmt.Sprintf("Temporal: dev server started on %s (log %s)", temporalAddr, logPath))
	}
	stripeAddr := fmt.Sprintf("127.0.0.1:%d", o.stripePort)
	if listening(stripeAddr) {
		progress("stripe-mock: reusing the one already on " + stripeAddr)
	} else {
		bin, err := tool(ctx, stripeMockModule, "stripe-mock", progress)
		if err != nil {
			s.stop()
			return nil, err
		}
		logPath := filepath.Join(o.dir, "stripe-mock.log")
		c, err := startChild("stripe-mock", logPath, bin, "-http-port", fmt.Sprint(o.stripePort), "-https-port", fmt.Sprint(o.stripePort+1))
		if err != nil {
			s.stop()
			return nil, err
		}
		s.children = append(s.children, c)
		if err := waitListening(ctx, stripeAddr, c, 30*time.Second, logPath); err != nil {
			s.stop()
			return nil, err
		}
		progress(fmt.Sprintf("stripe-mock: started on http://%s (log %s)", stripeAddr, logPath))
	}
	return s, nil
}
