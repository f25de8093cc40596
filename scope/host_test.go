package scope_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
)

// classicPolicy is the loopback rule policy authors write with cel-go's
// network functions. It is only as good as the host urlHost hands it.
const classicPolicy = `
version: 1
scopes:
  web:
    grants:
      - tools: [fetch]
        when: args.url.startsWith("http")
rules:
  - name: no-loopback
    effect: deny
    tools: [fetch]
    when: >-
      args.url.urlHost() == "localhost" || args.url.urlHost().endsWith(".localhost") ||
      (isIP(args.url.urlHost()) && ip(args.url.urlHost()).isLoopback())
`

// helperPolicy uses the host helpers.
const helperPolicy = `
version: 1
scopes:
  web:
    grants:
      - tools: [fetch]
        when: '!urlHost(args.url).isInternalHost()'
rules:
  - name: no-internal
    effect: deny
    tools: [fetch]
    when: urlHost(args.url).isInternalHost()
`

// TestHostSpellingsReachLoopback starts a server on 127.0.0.1, shows that a
// real client (Go's net/http, or curl for the forms Go leaves to the
// resolver) reaches it through each spelling of the host, and that both
// the classic loopback rule and isInternalHost deny every spelling.
func TestHostSpellingsReachLoopback(t *testing.T) {
	var mu sync.Mutex
	hits := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path] = true
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)

	classic, helpers := compile(t, classicPolicy), compile(t, helperPolicy)
	tests := []struct {
		host   string // as written in the URL, before ":port"
		client string // "go" or "curl"
		// classic: the classic rule denies it (otherwise only the helper
		// does: an unspecified address is not "loopback" to cel-go).
		classic bool
		linux   bool // reaches 127.0.0.1 only on Linux
	}{
		{"ｌｏｃａｌｈｏｓｔ", "go", true, false},
		{"LOCALHOST", "go", true, false},
		{"ⓛⓞⓒⓐⓛⓗⓞⓢⓣ", "go", true, false},
		{"𝐥𝐨𝐜𝐚𝐥𝐡𝐨𝐬𝐭", "go", true, false},
		{"127．0．0．1", "go", true, false},
		{"loc\u00adalhost", "go", true, false},
		{"%EF%BD%8C%EF%BD%8F%EF%BD%83%EF%BD%81%EF%BD%8C%EF%BD%88%EF%BD%8F%EF%BD%93%EF%BD%94", "go", true, false},
		{"[::ffff:127.0.0.1]", "go", true, false},
		{"[::ffff:7f00:1]", "go", true, false},
		{"[0:0:0:0:0:ffff:127.0.0.1]", "go", true, false},
		{"１２７.０.０.１", "go", true, false},
		{"127。0。0。1", "go", true, false},
		{"evil.test@127.0.0.1", "go", true, false},
		{"0.0.0.0", "go", false, true},
		{"[::]", "go", false, true},
		{"2130706433", "curl", true, false},
		{"0x7f000001", "curl", true, false},
		{"0177.0.0.1", "curl", true, false},
		{"127.1", "curl", true, false},
		{"0x7f.1", "curl", true, false},
		{"127.0.0.01", "curl", true, false},
		{"%6c%6fcalhost", "curl", true, false},
		{"evil.test\\@127.0.0.1", "curl", true, false},
		{"0", "curl", false, true},
	}
	for i, tt := range tests {
		path := "/spelling-" + strconv.Itoa(i)
		u := "http://" + tt.host + ":" + port + path
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			if tt.linux && runtime.GOOS != "linux" {
				t.Skip("the unspecified address reaches the local host on Linux")
			}
			switch tt.client {
			case "go":
				c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}} // no proxy from the environment
				resp, err := c.Get(u)
				require.NoError(t, err, "Go's client does not reach %s", u)
				resp.Body.Close()
			case "curl":
				curl, err := exec.LookPath("curl")
				if err != nil {
					if os.Getenv("AGENTGUARD_REQUIRE_EXTERNAL") == "1" {
						t.Fatal("curl is not installed (required: AGENTGUARD_REQUIRE_EXTERNAL=1)")
					}
					t.Skip("curl is not installed")
				}
				out, err := exec.Command(curl, "-sS", "-g", "--noproxy", "*", "-m", "5", "-o", "/dev/null", u).CombinedOutput()
				require.NoError(t, err, "curl does not reach %s: %s", u, out)
			}
			mu.Lock()
			arrived := hits[path]
			mu.Unlock()
			require.True(t, arrived, "%s: no request arrived at 127.0.0.1", u)

			args := map[string]any{"url": u}
			d := helpers.Decide(t.Context(), in("u", []string{"web"}, "fetch", args))
			assert.Equal(t, scope.Deny, d.Effect, "isInternalHost lets %s through: %s", u, d.Reason)
			assert.Equal(t, "no-internal", d.Rule, u)
			if tt.classic {
				d := classic.Decide(t.Context(), in("u", []string{"web"}, "fetch", args))
				assert.Equal(t, scope.Deny, d.Effect, "the classic loopback rule lets %s through: %s", u, d.Reason)
			}
		})
	}
	// The same policies still allow a public host.
	args := map[string]any{"url": "https://example.com/a"}
	for _, p := range []*scope.Policy{classic, helpers} {
		d := p.Decide(t.Context(), in("u", []string{"web"}, "fetch", args))
		assert.Equal(t, scope.Allow, d.Effect, d.Reason)
	}
}

func TestURLHostCanonical(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"http://ｌｏｃａｌｈｏｓｔ/", "localhost", ""},
		{"http://[::ffff:127.0.0.1]:8080/", "127.0.0.1", ""},
		{"http://2130706433/", "127.0.0.1", ""},
		{"http://0x7f000001/", "127.0.0.1", ""},
		{"http://0177.0.0.1/", "127.0.0.1", ""},
		{"http://127.1/", "127.0.0.1", ""},
		{"http://[0:0::1]/", "::1", ""},
		{"http://169.254.43518/latest/meta-data/", "169.254.169.254", ""},
		{"https://Bücher.DE./", "xn--bcher-kva.de", ""},
		{"www.example.com/path", "", "no scheme"},
		{"https://good.example@evil.test/", "", "user information"},
		{"http://evil.test\\@good.example/", "", "urlHost"},
		{"http://[fe80::1%25eth0]/", "", "zone"},
		{"http://1.2.3.4.5/", "", "IPv4"},
		{"http://%6c%6fcalhost/", "", "urlHost"},
	}
	for _, tt := range tests {
		got, err := scope.URLHost(tt.in)
		if tt.err != "" {
			require.Error(t, err, "%q gave %q", tt.in, got)
			assert.Contains(t, err.Error(), tt.err, tt.in)
			assert.True(t, strings.HasPrefix(err.Error(), "urlHost: "), err.Error())
			assert.NotContains(t, err.Error(), "hostname:", "a Go package name in a model-facing reason")
			continue
		}
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
}

// TestHostFunctions checks each CEL host function on hosts and URLs,
// including that an invalid host is an error, so that neither a deny rule
// nor a grant fails open.
func TestHostFunctions(t *testing.T) {
	p := compile(t, `
version: 1
scopes:
  s:
    grants:
      - tools: [loopback]
        when: args.h.isLoopbackHost()
      - tools: [private]
        when: args.h.isPrivateHost()
      - tools: [linklocal]
        when: args.h.isLinkLocalHost()
      - tools: [internal]
        when: args.h.isInternalHost()
      - tools: [public]
        when: '!args.h.isInternalHost()'
      - tools: [canon]
        when: args.h.canonicalHost() == "127.0.0.1"
      - tools: [member]
        when: args.h.urlHost() == urlHost(args.h) && urlHost(args.h) == "example.com"
      - tools: [fetch]
        when: "true"
rules:
  - name: deny-internal-url
    effect: deny
    tools: [fetch]
    when: urlHost(args.h).isInternalHost()
`)
	tests := []struct {
		tool, h string
		want    scope.Effect
	}{
		{"loopback", "0x7f.1", scope.Allow},
		{"loopback", "[::ffff:127.0.0.1]", scope.Allow},
		{"loopback", "ｌｏｃａｌｈｏｓｔ", scope.Allow},
		{"loopback", "0.0.0.0", scope.Allow},
		{"loopback", "10.0.0.1", scope.Deny},
		{"loopback", "example.com", scope.Deny},
		{"private", "::ffff:192.168.0.1", scope.Allow},
		{"private", "0xa000001", scope.Allow},
		{"private", "fd12::1", scope.Allow},
		{"private", "127.0.0.1", scope.Deny},
		{"private", "intranet", scope.Deny}, // a name is never private by its form
		{"linklocal", "169.254.169.254", scope.Allow},
		{"linklocal", "[fe80::1]", scope.Allow},
		{"linklocal", "10.0.0.1", scope.Deny},
		{"internal", "metadata.google.internal", scope.Allow},
		{"internal", "100.64.0.1", scope.Allow},
		{"internal", "64:ff9b::a9fe:a9fe", scope.Allow},
		{"internal", "example.com", scope.Deny},
		{"public", "example.com", scope.Allow},
		{"public", "8.8.8.8", scope.Allow},
		{"public", "127.1", scope.Deny},
		{"public", "%6c%6fcalhost", scope.Deny},      // an error never allows
		{"public", "http://example.com", scope.Deny}, // a URL is not a host
		{"public", "fe80::1%eth0", scope.Deny},
		{"canon", "２１３０７０６４３３", scope.Allow},
		{"member", "https://EXAMPLE.com./x", scope.Allow},
		{"fetch", "http://[::ffff:169.254.169.254]/", scope.Deny},
		{"fetch", "not a url", scope.Deny},
		{"fetch", "https://example.com/", scope.Allow},
	}
	for _, tt := range tests {
		d := p.Decide(t.Context(), in("u", []string{"s"}, tt.tool, map[string]any{"h": tt.h}))
		assert.Equal(t, tt.want, d.Effect, "%s(%q): %s", tt.tool, tt.h, d.Reason)
		if tt.tool == "fetch" && tt.want == scope.Deny {
			assert.Equal(t, "deny-internal-url", d.Rule, tt.h)
		}
		assert.NotContains(t, d.Reason, "hostname:", "a Go package name in a model-facing reason")
	}
	// An error in the deny rule denies with the reason.
	d := p.Decide(t.Context(), in("u", []string{"s"}, "fetch", map[string]any{"h": "www.example.com/path"}))
	assert.Contains(t, d.Reason, "no scheme")
}
