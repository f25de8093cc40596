package hostname_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/internal/hostname"
)

// attackURLs are spellings of URLs an attacker might use to reach an
// internal host; "PORT" is replaced by a test server's port.
var attackURLs = []string{
	"http://[::127.0.0.1]:PORT/", "http://[0:0:0:0:0:ffff:7f00:1]:PORT/", "http://[::ffff:7f00:1]:PORT/",
	"http://[::ffff:127.0.0.1]:PORT/", "http://[64:ff9b::7f00:1]:PORT/", "http://[2002:7f00:1::]:PORT/",
	"http://[::ffff:0:7f00:1]:PORT/", "http://[64:ff9b:1::7f00:1]:PORT/",
	"http://127.0.0.1.:PORT/", "http://127.0.0.1%2e:PORT/", "http://0128.0.0.1:PORT/", "http://4294967296:PORT/",
	"http://0x100000000:PORT/", "http://127..1:PORT/", "http://127。0。0。1:PORT/", "http://127．0．0．1:PORT/",
	"http://127｡0｡0｡1:PORT/", "http://①②⑦.0.0.1:PORT/", "http://127.0.0⒈:PORT/", "http://127.0.0.1%EF%BC%8E:PORT/",
	"http://%31%32%37.0.0.1:PORT/", "http://localhost.:PORT/", "http://LOCALHOST:PORT/", "http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ:PORT/",
	"http://local\u00adhost:PORT/", "http://local\u200bhost:PORT/", "http://xn--localhost-:PORT/",
	"http://localhost:80@evil.example:PORT/", "http://a%40b@127.0.0.1:PORT/", "http://evil%40127.0.0.1:PORT/",
	"http:/\\127.0.0.1:PORT/", "HTTP://127.0.0.1:PORT/", "http://127.0.0.1:0PORT/", "http://127.0.0.1:PORT:PORT/",
	"http://2130706433:PORT/", "http://0x7f000001:PORT/", "http://0177.0.0.1:PORT/", "http://127.1:PORT/",
	"http://0x7f.1:PORT/", "http://０ｘ７ｆ.1:PORT/", "http://0:PORT/", "http://0x:PORT/", "http://[::]:PORT/",
	"http://0.0.0.0:PORT/", "http://[::1]:PORT/", "http://[fe80::1%25lo]:PORT/", "http://127.0.0.1\\@evil.example:PORT/",
	"http://evil.example#@127.0.0.1:PORT/", "http://127.0.0.1 .evil.example:PORT/", "http://[::ffff:127.0.0.1%25lo]:PORT/",
}

// TestAttackClientAgrees: every attack URL that Go's own HTTP client
// (without any guard) delivers to a server on 127.0.0.1 or ::1 is either
// refused by FromURL or classified loopback and internal. The policy can
// never judge a URL as public while the client reaches the local host.
func TestAttackClientAgrees(t *testing.T) {
	var hits atomic.Int64
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) })
	srv4 := httptest.NewServer(h)
	t.Cleanup(srv4.Close)
	port := srv4.URL[strings.LastIndexByte(srv4.URL, ':')+1:]
	if l, err := net.Listen("tcp", "[::1]:"+port); err == nil {
		srv6 := &http.Server{Handler: h, ReadHeaderTimeout: time.Second}
		go func() { _ = srv6.Serve(l) }()
		t.Cleanup(func() { srv6.Close() })
	}
	client := &http.Client{Transport: &http.Transport{}, Timeout: time.Second}
	reached := 0
	for _, raw := range attackURLs {
		u := strings.ReplaceAll(raw, "PORT", port)
		before := hits.Load()
		if resp, err := client.Get(u); err == nil {
			resp.Body.Close()
		}
		host, err := hostname.FromURL(u)
		if hits.Load() == before {
			continue
		}
		reached++
		if err != nil {
			continue // refused: a policy never allows it
		}
		c, err := hostname.Classify(host)
		require.NoError(t, err, u)
		assert.True(t, c.Has(hostname.Loopback|hostname.Internal), "%s reaches the local server but is %q, class %b", u, host, c)
	}
	assert.Positive(t, reached, "no spelling reached the server: the test proves nothing")
	t.Logf("%d of %d spellings reach the local server", reached, len(attackURLs))
}

// TestAttackCanonical pins the answer for each attack spelling.
func TestAttackCanonical(t *testing.T) {
	tests := []struct {
		url, host string
		class     hostname.Class // checked with Has; 0 means public
		err       string
	}{
		{"http://[::127.0.0.1]/", "::7f00:1", hostname.Internal, ""}, // IPv4-compatible: not loopback on Linux, but internal
		{"http://[0:0:0:0:0:ffff:7f00:1]/", "127.0.0.1", hostname.Loopback | hostname.Internal, ""},
		{"http://[::ffff:7f00:1]/", "127.0.0.1", hostname.Loopback | hostname.Internal, ""},
		{"http://[64:ff9b::7f00:1]/", "64:ff9b::7f00:1", hostname.Internal, ""},       // NAT64 of 127.0.0.1
		{"http://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe", hostname.Internal, ""}, // NAT64 of the metadata address
		{"http://[2002:7f00:1::]/", "2002:7f00:1::", hostname.Internal, ""},           // 6to4 of 127.0.0.1
		{"http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "", hostname.Internal, ""}, // Teredo
		{"http://[::ffff:0:7f00:1]/", "::ffff:0:7f00:1", hostname.Internal, ""},       // IPv4-translated
		{"http://[64:ff9b:1::7f00:1]/", "64:ff9b:1::7f00:1", hostname.Internal, ""},   // local-use NAT64
		{"http://[64:ff9b::808:808]/", "64:ff9b::808:808", 0, ""},                     // NAT64 of a public address
		{"http://127.0.0.1./", "127.0.0.1", hostname.Loopback, ""},
		{"http://127.0.0.1%2e/", "", 0, "invalid URL escape"},
		{"http://0128.0.0.1/", "", 0, "not a valid IPv4 address"},
		{"http://4294967296/", "", 0, "not a valid IPv4 address"},
		{"http://0x100000000/", "", 0, "not a valid IPv4 address"},
		{"http://127..1/", "", 0, "empty label"},
		{"http://127。0。0。1/", "127.0.0.1", hostname.Loopback, ""},
		{"http://127．0．0．1/", "127.0.0.1", hostname.Loopback, ""},
		{"http://127｡0｡0｡1/", "127.0.0.1", hostname.Loopback, ""},
		{"http://127.0.0.1%EF%BC%8E/", "127.0.0.1", hostname.Loopback, ""},
		{"http://①②⑦.0.0.1/", "127.0.0.1", hostname.Loopback, ""},
		{"http://faß.de/", "xn--fa-hia.de", 0, ""}, // non-transitional, as Go's client: not fass.de
		{"http://ς.com/", "xn--3xa.com", 0, ""},
		{"http://a\u200db.com/", "", 0, "IDNA"},
		{"http://xn--localhost-/", "", 0, "IDNA"},
		{"http://lоcalhost/", "xn--lcalhost-nbh", hostname.Internal, ""}, // Cyrillic о: another name, one label
		{"http://localhost./", "localhost", hostname.Loopback, ""},
		{"http://LOCALHOST/", "localhost", hostname.Loopback, ""},
		{"http://foo.LocalHost./", "foo.localhost", hostname.Loopback, ""},
		{"http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/", "localhost", hostname.Loopback, ""},
		{"http://localhost:80@evil/", "", 0, "user information"},
		{"http://a%40b@evil/", "", 0, "user information"},
		{"http://evil%40good/", "", 0, "invalid URL escape"},
		{"http:/\\evil", "", 0, "with a host"},
		{"http://evil.com\\@127.0.0.1/", "", 0, "userinfo"},
		{"HTTP://127.0.0.1/", "127.0.0.1", hostname.Loopback, ""},
		{"file:///etc/passwd", "", 0, "with a host"},
		{"file://localhost/etc/passwd", "localhost", hostname.Loopback, ""},
		{"gopher://127.0.0.1:70/", "127.0.0.1", hostname.Loopback, ""},
		{"http://127.0.0.1:0080/", "127.0.0.1", hostname.Loopback, ""},
		{"http://127.0.0.1:80:80/", "", 0, "invalid port"},
		{"http://127.0.0.1:65536/", "", 0, "invalid port"},
		{"http://0/", "0.0.0.0", hostname.Loopback, ""},
		{"http://0x/", "0.0.0.0", hostname.Loopback, ""},
		{"http://[::]/", "::", hostname.Loopback, ""},
		{"http://0251.0376.0251.0376/", "169.254.169.254", hostname.LinkLocal, ""},
		{"http://169.254.43518/", "169.254.169.254", hostname.LinkLocal, ""},
		{"http://[::ffff:169.254.169.254]/", "169.254.169.254", hostname.LinkLocal, ""},
		{"http://[fd00:ec2::254]/", "fd00:ec2::254", hostname.Private, ""},
		{"http://metadata.google.internal./", "metadata.google.internal", hostname.Internal, ""},
		{"http://metadata/", "metadata", hostname.Internal, ""},
		{"http://[fe80::1%25eth0]/", "", 0, "zone"},
		{"http://example.com#@127.0.0.1/", "example.com", 0, ""}, // the fragment is not the host, for Go's client either
		{"www.example.com/path", "", 0, "no scheme"},
	}
	for _, tt := range tests {
		host, err := hostname.FromURL(tt.url)
		if tt.err != "" {
			require.Error(t, err, tt.url)
			assert.Contains(t, err.Error(), tt.err, tt.url)
			continue
		}
		require.NoError(t, err, tt.url)
		if tt.host != "" {
			assert.Equal(t, tt.host, host, tt.url)
		}
		c, err := hostname.Classify(host)
		require.NoError(t, err, tt.url)
		if tt.class == 0 {
			assert.False(t, c.Has(hostname.Internal), "%s is internal", tt.url)
		} else {
			assert.True(t, c.Has(tt.class), "%s: class %b, want %b", tt.url, c, tt.class)
			assert.True(t, c.Has(hostname.Internal), tt.url)
		}
		again, err := hostname.Canonical(host)
		require.NoError(t, err)
		assert.Equal(t, host, again, "idempotent")
	}
}
