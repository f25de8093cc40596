package hostname_test

import (
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/idna"

	"github.com/agentguard/agentguard/internal/hostname"
)

// FuzzCanonical checks the canonicaliser, given each input both as a URL
// and as a bare host, against net/url, x/net/idna and net/netip:
//   - a URL it accepts is one net/url parses, with a scheme, no user
//     information and no backslash in the host;
//   - canonicalisation is idempotent;
//   - a canonical IP literal is in netip's unmapped string form, and when
//     netip parses the host as given, it is the same address;
//   - an IPv4 host in number form gives what a separate strconv-based
//     reading of the WHATWG rules gives;
//   - a canonical name is what idna.Lookup.ToASCII (the mapping Go's HTTP
//     client applies) gives whenever that succeeds, and net/url reads it
//     back as the same host;
//   - an address netip calls loopback, private, link-local, unspecified
//     or multicast is never classified as public.
//
// The seed corpus is in testdata/fuzz/FuzzCanonical.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{
		"http://ｌｏｃａｌｈｏｓｔ:8080/", "http://[::ffff:127.0.0.1]/", "http://2130706433/", "http://0x7f.1/",
		"http://0177.0.0.1/", "http://127.1/", "http://１２７.０.０.１/", "http://127。0。0。1/",
		"http://evil.com\\@good.com/", "https://good@evil/", "http://[fe80::1%25eth0]/", "www.example.com/path",
		"http://bücher.de/", "http://xn--bcher-kva.de./", "http://a.0x/", "http://1.2.3.4.5/", "0x7f000001",
		"[::1]", "fe80::1", "64:ff9b::7f00:1", "2002:a9fe:a9fe::", "metadata", "loc\u00adalhost",
	} {
		f.Add(s)
	}
	f.Fuzz(checkInput)
}

// checkInput is the body of FuzzCanonical.
func checkInput(t *testing.T, raw string) {
	if h, err := hostname.FromURL(raw); err == nil {
		u, perr := url.Parse(raw)
		switch {
		case perr != nil:
			t.Fatalf("FromURL(%q) = %q but url.Parse fails: %v", raw, h, perr)
		case u.Scheme == "" || u.User != nil || strings.ContainsRune(u.Host, '\\'):
			t.Fatalf("FromURL(%q) = %q for scheme %q, user %v, host %q", raw, h, u.Scheme, u.User, u.Host)
		}
		given := u.Hostname()
		if strings.HasPrefix(u.Host, "[") {
			given = "[" + given + "]"
		}
		checkCanonical(t, given, h)
	}
	if c, err := hostname.Canonical(raw); err == nil {
		checkCanonical(t, raw, c)
	}
}

func checkCanonical(t *testing.T, given, c string) {
	t.Helper()
	if again, err := hostname.Canonical(c); err != nil || again != c {
		t.Fatalf("Canonical(%q) = %q, but Canonical(%q) = %q, %v", given, c, c, again, err)
	}
	class, err := hostname.Classify(c)
	if err != nil {
		t.Fatalf("Classify(%q): %v", c, err)
	}
	bare := strings.TrimSuffix(strings.TrimPrefix(given, "["), "]")
	if g, err := netip.ParseAddr(bare); err == nil {
		g = g.Unmap()
		if g.Zone() == "" && g.String() != c {
			t.Fatalf("Canonical(%q) = %q, netip says %v", given, c, g)
		}
		if (g.IsLoopback() || g.IsPrivate() || g.IsLinkLocalUnicast() || g.IsLinkLocalMulticast() ||
			g.IsInterfaceLocalMulticast() || g.IsMulticast() || g.IsUnspecified()) && !class.Has(hostname.Internal) {
			t.Fatalf("%q (%v) is not internal", given, g)
		}
	}
	if a, err := netip.ParseAddr(c); err == nil {
		if a.String() != c || a.Is4In6() || a.Zone() != "" {
			t.Fatalf("Canonical(%q) = %q is not netip's unmapped form %v", given, c, a)
		}
		if want, ok := referenceIPv4(given); ok && want != a {
			t.Fatalf("Canonical(%q) = %v, the WHATWG IPv4 rules give %v", given, a, want)
		}
		return
	}
	if strings.ContainsAny(c, ":[]%") {
		t.Fatalf("Canonical(%q) = %q, neither an address nor a name", given, c)
	}
	if want, err := idna.Lookup.ToASCII(given); err == nil {
		if want = strings.TrimSuffix(strings.ToLower(want), "."); want != c {
			t.Fatalf("Canonical(%q) = %q, idna.Lookup gives %q", given, c, want)
		}
	}
	if u, err := url.Parse("http://" + c + "/"); err != nil || u.Hostname() != c {
		t.Fatalf("Canonical(%q) = %q, which net/url does not read back: %v", given, c, err)
	}
}

// referenceIPv4 reads an ASCII host made of numbers and dots by the
// WHATWG IPv4 rules, with strconv doing the number parsing.
func referenceIPv4(host string) (netip.Addr, bool) {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" || strings.Trim(host, "0123456789abcdefx.") != "" {
		return netip.Addr{}, false
	}
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var v uint64
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 0, 64)
		if err != nil {
			return netip.Addr{}, false
		}
		if i < len(parts)-1 {
			if n > 255 {
				return netip.Addr{}, false
			}
			v += n << (8 * (3 - i))
		} else {
			if n >= 1<<(8*(5-len(parts))) {
				return netip.Addr{}, false
			}
			v += n
		}
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}
