package netguard_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/toolguard/netguard"
)

func portOf(u string) string { return u[strings.LastIndexByte(u, ':')+1:] }

// TestAttackDialSpellings: a plain dialer reaches the loopback server by
// each address; the Filter's dialer refuses each, IPv4-mapped IPv6 and
// 0.0.0.0 included, and nothing arrives.
func TestAttackDialSpellings(t *testing.T) {
	srv, hits := server(t, "127.0.0.1:0", nil)
	port := portOf(srv.URL)
	var f netguard.Filter
	for _, addr := range []string{"127.0.0.1", "0.0.0.0", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "127.0.0.2", "localhost"} {
		target := addr + ":" + port
		var plain net.Dialer
		if c, err := plain.DialContext(t.Context(), "tcp", target); err == nil {
			c.Close()
		} else if addr != "127.0.0.2" {
			t.Logf("%s is not reachable here even without the Filter: %v", target, err)
		}
		_, err := f.Dialer(nil).DialContext(t.Context(), "tcp", target)
		require.ErrorIs(t, err, netguard.ErrRefused, target)
	}
	assert.Equal(t, int64(0), hits.Load(), "an HTTP request arrived")
	// The same through Go's HTTP client.
	c := &http.Client{Transport: f.Transport(nil), Timeout: 5 * time.Second}
	for _, u := range []string{"http://0.0.0.0:" + port, "http://[::ffff:127.0.0.1]:" + port, "http://localhost:" + port, "http://[::]:" + port} {
		require.ErrorIs(t, get(c, u), netguard.ErrRefused, u)
	}
	assert.Equal(t, int64(0), hits.Load())
}

// TestAttackOtherNetworks: Unix sockets, raw IP and UDP to the local host
// are refused before any packet is sent.
func TestAttackOtherNetworks(t *testing.T) {
	var f netguard.Filter
	sock := filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	defer l.Close()
	d := f.Dialer(nil)
	_, err = d.DialContext(t.Context(), "unix", sock)
	require.ErrorIs(t, err, netguard.ErrRefused)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	_, err = d.DialContext(t.Context(), "udp", pc.LocalAddr().String())
	require.ErrorIs(t, err, netguard.ErrRefused)
	require.ErrorIs(t, f.Check("ip4:icmp", "127.0.0.1:0"), netguard.ErrRefused)
	require.ErrorIs(t, f.Check("tcp", "localhost:80"), netguard.ErrRefused, "a name, not an address")
}

// TestAttackMixedDNS: a name whose DNS answer holds a public and an
// internal address, in either order. Go's dialer tries each; the internal
// one is refused, so the loopback server is never reached.
func TestAttackMixedDNS(t *testing.T) {
	srv, hits := server(t, "127.0.0.1:0", nil)
	port := portOf(srv.URL)
	var f netguard.Filter
	for _, answer := range [][]netip.Addr{
		{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("8.8.8.8")},
		{netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("127.0.0.1")},
		{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.1")},
	} {
		resolver := multiDNSServer(t, answer)
		base := &net.Dialer{Resolver: resolver, Timeout: 2 * time.Second}
		plain := &http.Client{Transport: &http.Transport{DialContext: base.DialContext}, Timeout: 5 * time.Second}
		before := hits.Load()
		_ = get(plain, "http://mixed.example.com:"+port+"/")
		if answer[0].IsLoopback() {
			require.Equal(t, before+1, hits.Load(), "without the Filter the name reaches the server")
		}
		tr := f.Transport(nil)
		tr.DialContext = f.Dialer(base).DialContext
		before = hits.Load()
		err := get(&http.Client{Transport: tr, Timeout: 5 * time.Second}, "http://mixed.example.com:"+port+"/")
		require.Error(t, err)
		assert.Equal(t, before, hits.Load(), "%v: a request arrived through the Filter", answer)
	}
}

// multiDNSServer is dnsServer answering every A query with all of addrs.
func multiDNSServer(t *testing.T, addrs []netip.Addr) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			resp := dnsAnswer(buf[:n], addrs[0])
			if resp == nil {
				continue
			}
			if binary.BigEndian.Uint16(resp[6:]) == 1 {
				for _, a := range addrs[1:] {
					b := a.As4()
					resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4)
					resp = append(resp, b[:]...)
				}
				binary.BigEndian.PutUint16(resp[6:], uint16(len(addrs)))
			}
			_, _ = pc.WriteTo(resp, from)
		}
	}()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
}

// TestAttackRedirectAndProxy: one allowed internal service redirects to
// another address of the loopback network; a transport that was set up
// with a proxy (on the allowed address) loses it; a DialTLSContext that
// would dial on its own is dropped. Only the allowed service is reached.
func TestAttackRedirectAndProxy(t *testing.T) {
	other, otherHits := server(t, "127.0.0.2:0", nil)
	allowed, allowedHits := server(t, "127.0.0.1:0", http.RedirectHandler(other.URL+"/x", http.StatusFound))
	proxy, proxyHits := server(t, "127.0.0.1:0", nil)
	f := netguard.Filter{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}

	err := get(&http.Client{Transport: f.Transport(nil), Timeout: 5 * time.Second}, allowed.URL)
	require.ErrorIs(t, err, netguard.ErrRefused, "the redirect target is checked")
	assert.Equal(t, int64(1), allowedHits.Load())
	assert.Equal(t, int64(0), otherHits.Load())

	pu, err := url.Parse(proxy.URL)
	require.NoError(t, err)
	mine := &http.Transport{Proxy: http.ProxyURL(pu)}
	require.NoError(t, get(&http.Client{Transport: mine, Timeout: 5 * time.Second}, other.URL), "the proxy is used without the Filter")
	require.Equal(t, int64(1), proxyHits.Load())
	err = get(&http.Client{Transport: f.Transport(mine), Timeout: 5 * time.Second}, other.URL)
	require.ErrorIs(t, err, netguard.ErrRefused)
	assert.Equal(t, int64(1), proxyHits.Load(), "the Filter's transport used the proxy")
	assert.NotNil(t, mine.Proxy, "the caller's transport is not changed")

	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { otherHits.Add(1) }))
	l, err := net.Listen("tcp", "127.0.0.2:0")
	require.NoError(t, err)
	tlsSrv.Listener = l
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	own := &http.Transport{
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return tls.Dial(network, addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // a test server
		},
		DialContext: (&net.Dialer{}).DialContext,
	}
	err = get(&http.Client{Transport: f.Transport(own), Timeout: 5 * time.Second}, tlsSrv.URL)
	require.ErrorIs(t, err, netguard.ErrRefused)
	assert.Equal(t, int64(0), otherHits.Load())
}

// TestAttackDualStack: "localhost" has 127.0.0.1 and ::1; with happy
// eyeballs (a fallback delay) both attempts are refused.
func TestAttackDualStack(t *testing.T) {
	srv, hits := server(t, "127.0.0.1:0", nil)
	port := portOf(srv.URL)
	if l, err := net.Listen("tcp", "[::1]:"+port); err == nil {
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				hits.Add(1)
				c.Close()
			}
		}()
		defer l.Close()
	}
	var f netguard.Filter
	d := f.Dialer(&net.Dialer{FallbackDelay: time.Millisecond, Timeout: 2 * time.Second})
	_, err := d.DialContext(t.Context(), "tcp", "localhost:"+port)
	require.ErrorIs(t, err, netguard.ErrRefused)
	assert.Equal(t, int64(0), hits.Load())
}

// TestAttackCustomDialerControl: a caller's dialer whose own Control would
// let everything through does not weaken the Filter: the Filter runs
// first. The caller's dialer is not changed.
func TestAttackCustomDialerControl(t *testing.T) {
	srv, hits := server(t, "127.0.0.1:0", nil)
	var called atomic.Int64
	mine := &net.Dialer{
		Control: func(string, string, syscall.RawConn) error { called.Add(1); return nil },
	}
	var f netguard.Filter
	_, err := f.Dialer(mine).DialContext(t.Context(), "tcp", strings.TrimPrefix(srv.URL, "http://"))
	require.ErrorIs(t, err, netguard.ErrRefused)
	assert.Equal(t, int64(0), called.Load(), "the caller's Control ran before the Filter")
	assert.Nil(t, mine.ControlContext)
	assert.NotNil(t, mine.Control)
	c, err := mine.DialContext(t.Context(), "tcp", strings.TrimPrefix(srv.URL, "http://"))
	require.NoError(t, err, "the caller's dialer still works unfiltered")
	c.Close()
	assert.Equal(t, int64(1), called.Load())
	assert.Equal(t, int64(0), hits.Load())
}

// TestAttackOwnAddress: a service of this host listening on all
// interfaces is reached through the host's own public address as well as
// through 127.0.0.1. In a network namespace of its own, where lo carries
// the public address 8.8.4.4, the test runs itself again: a plain dial to
// 8.8.4.4 reaches the local service, the Filter refuses it.
func TestAttackOwnAddress(t *testing.T) {
	if os.Getenv("NETGUARD_NETNS_CHILD") == "1" {
		ownAddressChild(t)
		return
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command to give an interface a public address")
	}
	if out, err := exec.Command("unshare", "-rn", "true").CombinedOutput(); err != nil {
		t.Skipf("cannot make a network namespace here (unshare -rn): %v %s", err, out)
	}
	cmd := exec.Command("unshare", "-rn", os.Args[0], "-test.run=^TestAttackOwnAddress$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "NETGUARD_NETNS_CHILD=1")
	out, err := cmd.CombinedOutput()
	t.Logf("child:\n%s", out)
	require.NoError(t, err)
	require.Contains(t, string(out), "--- PASS: TestAttackOwnAddress")
}

func ownAddressChild(t *testing.T) {
	for _, args := range [][]string{{"link", "set", "lo", "up"}, {"addr", "add", "8.8.4.4/32", "dev", "lo"}} {
		out, err := exec.Command("ip", args...).CombinedOutput()
		require.NoError(t, err, "ip %v: %s", args, out)
	}
	l, err := net.Listen("tcp", "0.0.0.0:0") // a local service on all interfaces
	require.NoError(t, err)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	target := "8.8.4.4:" + portOf(l.Addr().String())
	var plain net.Dialer
	c, err := plain.DialContext(t.Context(), "tcp", target)
	require.NoError(t, err, "the own public address reaches the local service")
	c.Close()
	var f netguard.Filter
	require.False(t, netguard.IsInternal(netip.MustParseAddr("8.8.4.4")), "the address is public")
	_, err = f.Dialer(nil).DialContext(t.Context(), "tcp", target)
	require.ErrorIs(t, err, netguard.ErrRefused)
	assert.Contains(t, err.Error(), "an address of this host")
	allowed := netguard.Filter{Allow: []netip.Prefix{netip.MustParsePrefix("8.8.4.4/32")}}
	c, err = allowed.Dialer(nil).DialContext(t.Context(), "tcp", target)
	require.NoError(t, err, "Allow lets it through")
	c.Close()
}

// TestAttackRegisteredProtocol: a transport handed to Filter.Transport may
// carry round trippers registered with RegisterProtocol; they make their
// own connections, so the Filter's transport must not take them over.
func TestAttackRegisteredProtocol(t *testing.T) {
	srv, hits := server(t, "127.0.0.1:0", nil)
	mine := &http.Transport{}
	mine.RegisterProtocol("http", &http.Transport{})
	require.NoError(t, get(&http.Client{Transport: mine, Timeout: 5 * time.Second}, srv.URL))
	require.Equal(t, int64(1), hits.Load(), "the registered round tripper serves http")
	var f netguard.Filter
	err := get(&http.Client{Transport: f.Transport(mine), Timeout: 5 * time.Second}, srv.URL)
	require.ErrorIs(t, err, netguard.ErrRefused)
	assert.Equal(t, int64(1), hits.Load(), "a request went round the Filter")
}

type wrapped struct{ http.RoundTripper }

// TestAttackDefaultTransportReplaced: a program that wrapped
// http.DefaultTransport (for tracing, say) still gets a working filtered
// transport from Transport(nil), not a panic.
func TestAttackDefaultTransportReplaced(t *testing.T) {
	srv, hits := server(t, "127.0.0.1:0", nil)
	old := http.DefaultTransport
	http.DefaultTransport = wrapped{old}
	t.Cleanup(func() { http.DefaultTransport = old })
	var f netguard.Filter
	var tr *http.Transport
	require.NotPanics(t, func() { tr = f.Transport(nil) })
	err := get(&http.Client{Transport: tr, Timeout: 5 * time.Second}, srv.URL)
	require.ErrorIs(t, err, netguard.ErrRefused)
	assert.Equal(t, int64(0), hits.Load())
	assert.Equal(t, 90*time.Second, tr.IdleConnTimeout, "the default transport's settings")
}
