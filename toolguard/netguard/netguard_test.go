package netguard_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard/netguard"
)

// server starts an HTTP server on addr ("127.0.0.1:0", "[::1]:0") that
// counts the requests that reach it.
func server(t *testing.T, addr string, h http.Handler) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	var hits atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if h != nil {
			h.ServeHTTP(w, r)
		}
	}))
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &hits
}

func get(c *http.Client, u string) error {
	resp, err := c.Get(u)
	if err == nil {
		resp.Body.Close()
	}
	return err
}

// TestTransportRefusesInternal: every spelling of the loopback host that
// Go's client reaches without the Filter is refused with it, and no request
// arrives.
func TestTransportRefusesInternal(t *testing.T) {
	srv, hits := server(t, "127.0.0.1:0", nil)
	port := srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]
	plain := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}
	var f netguard.Filter
	guarded := &http.Client{Transport: f.Transport(nil), Timeout: 5 * time.Second}
	for _, host := range []string{"127.0.0.1", "localhost", "ｌｏｃａｌｈｏｓｔ", "[::ffff:127.0.0.1]", "0.0.0.0", "１２７.０.０.１"} {
		u := "http://" + host + ":" + port + "/"
		before := hits.Load()
		require.NoError(t, get(plain, u), "without the Filter, Go's client reaches %s", u)
		require.Equal(t, before+1, hits.Load(), u)

		err := get(guarded, u)
		require.Error(t, err, u)
		assert.ErrorIs(t, err, netguard.ErrRefused, u)
		assert.Contains(t, err.Error(), "internal address", u)
		assert.Equal(t, before+1, hits.Load(), "a request to %s arrived through the Filter", u)
	}
}

// TestAllow: an allowed prefix is reachable, and only that prefix.
func TestAllow(t *testing.T) {
	srv, hits := server(t, "127.0.0.1:0", nil)
	f := netguard.Filter{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	c := &http.Client{Transport: f.Transport(nil), Timeout: 5 * time.Second}
	require.NoError(t, get(c, srv.URL))
	assert.Equal(t, int64(1), hits.Load())

	f = netguard.Filter{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}
	c = &http.Client{Transport: f.Transport(nil), Timeout: 5 * time.Second}
	assert.ErrorIs(t, get(c, srv.URL), netguard.ErrRefused)
	assert.Equal(t, int64(1), hits.Load())
}

// TestRedirectIsChecked: a redirect from an allowed server to an internal
// one is refused when the client follows it.
func TestRedirectIsChecked(t *testing.T) {
	inner, innerHits := server(t, "[::1]:0", nil)
	outer, _ := server(t, "127.0.0.1:0", http.RedirectHandler(inner.URL+"/secret", http.StatusFound))
	f := netguard.Filter{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	c := &http.Client{Transport: f.Transport(nil), Timeout: 5 * time.Second}
	err := get(c, outer.URL)
	require.ErrorIs(t, err, netguard.ErrRefused)
	assert.Equal(t, int64(0), innerHits.Load())

	plain := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}
	require.NoError(t, get(plain, outer.URL), "without the Filter the redirect is followed")
	assert.Equal(t, int64(1), innerHits.Load())
}

// TestDNSRebinding: a name the policy cannot judge (a public-looking name)
// resolves, through a real DNS server, to 127.0.0.1. The policy allows the
// URL; Go's client without the Filter reaches the loopback server; with
// the Filter the connection is refused after resolution.
func TestDNSRebinding(t *testing.T) {
	srv, hits := server(t, "127.0.0.1:0", nil)
	port := srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]
	u := "http://rebind.example.com:" + port + "/"

	p, err := scope.Parse([]byte(`
version: 1
scopes:
  web:
    grants:
      - tools: [fetch]
        when: '!urlHost(args.url).isInternalHost()'
`))
	require.NoError(t, err)
	d := p.Decide(t.Context(), scope.Input{
		Principal: scope.Principal{ID: "u", Scopes: []string{"web"}},
		Tool:      scope.Tool{Name: "fetch"},
		Args:      map[string]any{"url": u},
	})
	require.Equal(t, scope.Allow, d.Effect, "the name alone looks public: %s", d.Reason)

	resolver := dnsServer(t, netip.MustParseAddr("127.0.0.1"))
	base := &net.Dialer{Resolver: resolver, Timeout: 5 * time.Second}
	plain := &http.Client{Transport: &http.Transport{DialContext: base.DialContext}, Timeout: 5 * time.Second}
	require.NoError(t, get(plain, u))
	require.Equal(t, int64(1), hits.Load(), "the name reaches the loopback server")

	var f netguard.Filter
	tr := f.Transport(nil)
	tr.DialContext = f.Dialer(base).DialContext
	err = get(&http.Client{Transport: tr, Timeout: 5 * time.Second}, u)
	require.ErrorIs(t, err, netguard.ErrRefused)
	assert.Equal(t, int64(1), hits.Load(), "a request arrived through the Filter")
}

// dnsServer runs a DNS server on 127.0.0.1 that answers every A query with
// addr and every other query with no answer, and returns a resolver that
// asks it.
func dnsServer(t *testing.T, addr netip.Addr) *net.Resolver {
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
			if resp := dnsAnswer(buf[:n], addr); resp != nil {
				_, _ = pc.WriteTo(resp, from)
			}
		}
	}()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
}

// dnsAnswer builds the response to a one-question query (RFC 1035 4.1).
func dnsAnswer(q []byte, addr netip.Addr) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil
	}
	i := 12
	for i < len(q) && q[i] != 0 {
		i += int(q[i]) + 1
	}
	if i+5 > len(q) {
		return nil
	}
	question := q[12 : i+5]
	qtype := binary.BigEndian.Uint16(q[i+1:])
	resp := make([]byte, 12, 64)
	copy(resp, q[:2])                            // id
	binary.BigEndian.PutUint16(resp[2:], 0x8180) // response, recursion desired and available
	binary.BigEndian.PutUint16(resp[4:], 1)      // one question
	resp = append(resp, question...)
	if qtype == 1 { // A
		binary.BigEndian.PutUint16(resp[6:], 1)
		a := addr.As4()
		resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4)
		resp = append(resp, a[:]...)
	}
	return resp
}

func TestCheck(t *testing.T) {
	var f netguard.Filter
	tests := []struct {
		network, address string
		ok               bool
	}{
		{"tcp", "8.8.8.8:443", true},
		{"tcp6", "[2606:4700::1111]:443", true},
		{"udp", "1.1.1.1:53", true},
		{"tcp", "127.0.0.1:80", false},
		{"tcp", "[::1]:80", false},
		{"tcp", "[::ffff:127.0.0.1]:80", false},
		{"tcp", "[::ffff:169.254.169.254]:80", false},
		{"tcp", "169.254.169.254:80", false},
		{"tcp", "10.0.0.1:80", false},
		{"tcp", "[fe80::1%eth0]:80", false},
		{"tcp", "[fd00:ec2::254]:80", false},
		{"tcp", "[64:ff9b::a9fe:a9fe]:80", false},
		{"tcp", "0.0.0.0:80", false},
		{"tcp", "[::]:80", false},
		{"tcp", "100.64.0.1:80", false},
		{"unix", "/run/docker.sock", false},
		{"tcp", "example.com:80", false},
		{"tcp", "8.8.8.8", false},
	}
	for _, tt := range tests {
		err := f.Check(tt.network, tt.address)
		if tt.ok {
			assert.NoError(t, err, "%s %s", tt.network, tt.address)
		} else {
			assert.ErrorIs(t, err, netguard.ErrRefused, "%s %s", tt.network, tt.address)
		}
	}
	assert.True(t, netguard.IsInternal(netip.MustParseAddr("::ffff:10.1.1.1")))
	assert.False(t, netguard.IsInternal(netip.MustParseAddr("8.8.4.4")))
}

// TestDialerKeepsControl: the Dialer runs the given dialer's own Control
// after its check, and leaves the given dialer unchanged.
func TestDialerKeepsControl(t *testing.T) {
	srv, _ := server(t, "127.0.0.1:0", nil)
	addr := srv.Listener.Addr().String()
	var seen atomic.Int64
	base := &net.Dialer{Control: func(network, address string, _ syscall.RawConn) error {
		seen.Add(1)
		return errors.New("base control says no")
	}}
	f := netguard.Filter{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	_, err := f.Dialer(base).Dial("tcp", addr)
	require.ErrorContains(t, err, "base control says no")
	assert.Equal(t, int64(1), seen.Load())
	assert.Nil(t, base.ControlContext, "the given dialer was changed")

	var strict netguard.Filter
	_, err = strict.Dialer(base).Dial("tcp", addr)
	require.ErrorIs(t, err, netguard.ErrRefused)
	assert.Equal(t, int64(1), seen.Load(), "base control ran for a refused address")
}
