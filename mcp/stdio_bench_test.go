//go:build linux

package guardmcp_test

//lint:file-ignore SA1019 the tests speak the legacy MCP protocol on purpose: an initialize handshake, and server→client requests

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/require"
)

// stdioBenchClient starts argv and returns an initialized client of it.
func stdioBenchClient(b *testing.B, argv []string) *client.Client {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr := transport.NewStdio(argv[0], []string{testUpstreamEnv + "=1"}, argv[1:]...)
	c := client.NewClient(tr, client.WithLegacyProtocolOnly())
	// Start's context bounds the process's life, not the start.
	require.NoError(b, c.Start(context.Background()))
	b.Cleanup(func() { c.Close() })
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	_, err := c.Initialize(ctx, init)
	require.NoError(b, err)
	return c
}

// tmpfsMagic is the f_type of a tmpfs (linux/magic.h).
const tmpfsMagic = 0x01021994

// BenchmarkStdioOverhead measures a tools/call over stdio to a Go MCP
// upstream (this test binary's echo tool), directly and through the
// mcpguard command with its audit log on a disk file (the test's temporary
// directory; set TMPDIR to choose the disk). The calls alternate between
// the two clients, so a busy machine slows both alike; it reports the p50
// and p99 of each and the overheads: the differences of the p50s and of
// the p99s; p50-fsync-ms, the median fsync of a line appended to a file in
// the same directory, back to back, measured after the calls; and
// p50-fsync-idle-ms, the same after an idle pause as long as a direct
// call, as a proxied call's fsync follows (on a virtual machine an fsync
// after idling costs more than one in a busy loop); and
// p50-pipe-rtt-idle-ms, the median round trip of a line through a child
// process's stdin and stdout after the same pause: the two process
// switches a proxy adds to a call, with no work between them. The sub-benchmarks are mcpguard's -sync modes:
// "each" (the default: the decision's fsync on the call's path, the
// outcome joining the next), "each-sync-outcomes" (an fsync for the
// outcome too) and "none" (fsync only at exit).
//
//	go test ./mcp -run '^$' -bench BenchmarkStdioOverhead -benchtime 2000x
func BenchmarkStdioOverhead(b *testing.B) {
	guard := buildBin(b, "mcpguard")
	self, err := os.Executable()
	require.NoError(b, err)
	for _, mode := range []struct {
		name  string
		flags []string
	}{
		{"each", nil},
		{"each-sync-outcomes", []string{"-sync-outcomes"}},
		{"none", []string{"-sync", "none"}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			dir := b.TempDir()
			var st syscall.Statfs_t
			require.NoError(b, syscall.Statfs(dir, &st))
			if st.Type == tmpfsMagic {
				b.Logf("%s is a tmpfs: the audit log's fsyncs cost nothing here; set TMPDIR to a disk", dir)
			}
			policy := filepath.Join(dir, "policy.yaml")
			require.NoError(b, os.WriteFile(policy, []byte(misbehavingPolicy), 0o644))
			argv := append([]string{guard, "-policy", policy, "-audit", filepath.Join(dir, "decisions.jsonl"),
				"-principal", "agent", "-scopes", "tools"}, mode.flags...)
			argv = append(argv, "--", self, "-test.run=^$")
			direct := stdioBenchClient(b, []string{self, "-test.run=^$"})
			guarded := stdioBenchClient(b, argv)
			pause := benchAlternate(b, direct, guarded)
			b.ReportMetric(fsyncP50(b, dir, 0), "p50-fsync-ms")
			b.ReportMetric(fsyncP50(b, dir, pause), "p50-fsync-idle-ms")
			b.ReportMetric(pipeRTTP50(b, self, pause), "p50-pipe-rtt-idle-ms")
		})
	}
}

// fsyncP50 is the median time of an fsync after appending a record-sized
// line to a file in dir, pausing before each append: the floor that a
// durable decision record puts under every guarded call on this disk.
func fsyncP50(b *testing.B, dir string, pause time.Duration) float64 {
	b.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "fsync-probe"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	require.NoError(b, err)
	defer f.Close()
	line := make([]byte, 600)
	line[len(line)-1] = '\n'
	ds := make([]time.Duration, 200)
	for i := range ds {
		if pause > 0 {
			time.Sleep(pause)
		}
		_, err := f.Write(line)
		require.NoError(b, err)
		start := time.Now()
		require.NoError(b, f.Sync())
		ds[i] = time.Since(start)
	}
	slices.Sort(ds)
	return float64(ds[len(ds)/2].Nanoseconds()) / 1e6
}

// pipeRTTP50 is the median time to write a request-sized line to a child
// process (this test binary, echoing lines) and read it back, pausing
// before each.
func pipeRTTP50(b *testing.B, self string, pause time.Duration) float64 {
	b.Helper()
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), testUpstreamEnv+"=lines")
	in, err := cmd.StdinPipe()
	require.NoError(b, err)
	out, err := cmd.StdoutPipe()
	require.NoError(b, err)
	require.NoError(b, cmd.Start())
	defer func() { in.Close(); cmd.Wait() }()
	r := bufio.NewReader(out)
	line := []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}` + "\n")
	ds := make([]time.Duration, 300)
	for i := -20; i < len(ds); i++ { // 20 to warm up
		time.Sleep(pause)
		start := time.Now()
		_, err := in.Write(line)
		require.NoError(b, err)
		got, err := r.ReadBytes('\n')
		require.NoError(b, err)
		require.Equal(b, line, got)
		if i >= 0 {
			ds[i] = time.Since(start)
		}
	}
	slices.Sort(ds)
	return float64(ds[len(ds)/2].Nanoseconds()) / 1e6
}

// echoLines copies its stdin to its stdout a line at a time, until EOF.
func echoLines() int {
	r := bufio.NewReader(os.Stdin)
	for {
		l, err := r.ReadBytes('\n')
		if len(l) > 0 {
			if _, werr := os.Stdout.Write(l); werr != nil {
				return 1
			}
		}
		if err != nil {
			return 0
		}
	}
}

// benchAlternate calls the echo tool b.N times on each client, in turn,
// and reports the latency percentiles of both and their differences. It
// returns the direct call's p50.
func benchAlternate(b *testing.B, direct, guarded *client.Client) time.Duration {
	req := mcp.CallToolRequest{}
	req.Params.Name = "echo"
	req.Params.Arguments = map[string]any{"text": "hello"}
	ctx := context.Background()
	call := func(c *client.Client) time.Duration {
		start := time.Now()
		res, err := c.CallTool(ctx, req)
		d := time.Since(start)
		if err != nil || res.IsError {
			b.Fatalf("call failed: %v %+v", err, res)
		}
		return d
	}
	for range 20 { // warm up both paths
		call(direct)
		call(guarded)
	}
	var dd, gd []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			dd = append(dd, call(direct))
			gd = append(gd, call(guarded))
		} else {
			gd = append(gd, call(guarded))
			dd = append(dd, call(direct))
		}
	}
	b.StopTimer()
	slices.Sort(dd)
	slices.Sort(gd)
	pct := func(s []time.Duration, p float64) float64 {
		return float64(s[min(len(s)-1, int(p*float64(len(s))))].Nanoseconds()) / 1e6
	}
	b.ReportMetric(pct(dd, 0.5), "p50-direct-ms")
	b.ReportMetric(pct(gd, 0.5), "p50-guard-ms")
	b.ReportMetric(pct(dd, 0.99), "p99-direct-ms")
	b.ReportMetric(pct(gd, 0.99), "p99-guard-ms")
	b.ReportMetric(pct(gd, 0.5)-pct(dd, 0.5), "p50-overhead-ms")
	b.ReportMetric(pct(gd, 0.99)-pct(dd, 0.99), "p99-overhead-ms")
	return dd[len(dd)/2]
}
