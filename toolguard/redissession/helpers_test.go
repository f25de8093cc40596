package redissession_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// redisServer is a redis-server child process on a loopback port, in a
// temporary directory, with persistence off.
type redisServer struct {
	tb    testing.TB
	bin   string
	dir   string
	port  int
	extra []string
	Addr  string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// startRedis starts a redis-server for tb, with the extra arguments, and
// stops it when tb ends. When redis-server is not installed it skips tb,
// or fails it if AGENTGUARD_REQUIRE_EXTERNAL=1 (as in CI).
func startRedis(tb testing.TB, extra ...string) *redisServer {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		const msg = "redis-server not found: apt-get install redis-server"
		if os.Getenv("AGENTGUARD_REQUIRE_EXTERNAL") == "1" {
			tb.Fatal(msg + " (required: AGENTGUARD_REQUIRE_EXTERNAL=1)")
		}
		tb.Skip(msg)
	}
	s := &redisServer{tb: tb, bin: bin, dir: tb.TempDir(), extra: extra}
	tb.Cleanup(s.Stop)
	// A free port can be taken between picking and binding it: try again.
	for try := 0; ; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(tb, err)
		s.port = l.Addr().(*net.TCPAddr).Port
		l.Close()
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
		err = s.start()
		if err == nil {
			return s
		}
		if try == 4 {
			tb.Fatalf("starting redis-server: %v", err)
		}
	}
}

// Start starts the server again on the same port, empty.
func (s *redisServer) Start() {
	s.tb.Helper()
	require.NoError(s.tb, s.start())
}

func (s *redisServer) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("already running")
	}
	args := append([]string{
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--logfile", filepath.Join(s.dir, "redis.log")}, s.extra...)
	cmd := exec.Command(s.bin, args...)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ping(s.Addr) == nil {
			s.cmd = cmd
			return nil
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			return fmt.Errorf("redis-server exited: %s", log)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server did not answer on %s", s.Addr)
		}
	}
}

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING: %q", line)
	}
	return nil
}

// Stop kills the server (SIGKILL) and waits until its port is closed.
func (s *redisServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT) // in case it is paused
	_ = s.cmd.Process.Kill()
	for ping(s.Addr) == nil {
		time.Sleep(time.Millisecond)
	}
	s.cmd = nil
}

// Pause stops the server process without closing its connections: it
// accepts nothing and answers nothing until Resume.
func (s *redisServer) Pause() { s.signal(syscall.SIGSTOP) }

// Resume undoes Pause.
func (s *redisServer) Resume() { s.signal(syscall.SIGCONT) }

func (s *redisServer) signal(sig os.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	require.NotNil(s.tb, s.cmd, "redis-server is not running")
	require.NoError(s.tb, s.cmd.Process.Signal(sig))
}

// Client returns a client with go-redis's default options, closed when tb
// ends.
func (s *redisServer) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	s.tb.Cleanup(func() { _ = c.Close() })
	return c
}

// go-redis logs every failed dial; the outage tests make many on purpose.
func init() { redis.SetLogger(quietLogger{}) }

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}
