// Package redistest starts a private redis-server on a free loopback port
// for tests, with its data in a temporary directory. If redis-server is not
// on PATH the test fails with a message saying how to install it.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a running redis-server owned by one test.
type Server struct {
	Addr string // host:port on loopback
	Dir  string // data directory (appendonly files live here)
	port int
	cmd  *exec.Cmd
	tb   testing.TB
}

// Start launches redis-server with appendonly persistence and registers
// its shutdown with tb.Cleanup.
func Start(tb testing.TB) *Server {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Fatalf("redis-server not found on PATH: install it (Debian: apt-get install -y redis-server); .ci/run does this in CI: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), Dir: tb.TempDir(), port: port, tb: tb}
	s.launch()
	tb.Cleanup(func() { s.Stop() })
	return s
}

func (s *Server) launch() {
	s.tb.Helper()
	s.cmd = exec.Command("redis-server",
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.Dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "",
		"--logfile", filepath.Join(s.Dir, "redis.log"), "--protected-mode", "yes")
	s.cmd.Stdout, s.cmd.Stderr = os.Stderr, os.Stderr
	if err := s.cmd.Start(); err != nil {
		s.tb.Fatalf("start redis-server: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
			s.tb.Fatalf("redis-server did not answer on %s: %s", s.Addr, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Client returns a new client for the server, closed at test end.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	s.tb.Cleanup(func() { c.Close() })
	return c
}

// URL returns the redis:// URL of the server.
func (s *Server) URL() string { return fmt.Sprintf("redis://%s/0", s.Addr) }

// Stop shuts the server down (SIGTERM, which flushes the append-only file)
// and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

// Restart stops the server and starts it again on the same port and data
// directory, so persisted data comes back.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Stop()
	s.launch()
}
