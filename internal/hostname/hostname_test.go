package hostname_test

import (
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/internal/hostname"
)

func TestCanonical(t *testing.T) {
	tests := []struct{ in, want, err string }{
		// Names: case, trailing dot, IDNA mapping.
		{"Example.COM", "example.com", ""},
		{"example.com.", "example.com", ""},
		{"ｌｏｃａｌｈｏｓｔ", "localhost", ""},
		{"LOCALHOST", "localhost", ""},
		{"loc\u00adalhost", "localhost", ""},         // soft hyphen is ignored by UTS #46
		{"localhost\u3002", "localhost", ""},         // ideographic full stop is a dot
		{"bücher.de", "xn--bcher-kva.de", ""},        // A-label form
		{"XN--BCHER-KVA.de", "xn--bcher-kva.de", ""}, // an A-label as given
		{"_dmarc.example.com", "_dmarc.example.com", ""},
		{"r3---sn-abc.googlevideo.com", "r3---sn-abc.googlevideo.com", ""},
		{"a.0x1g", "a.0x1g", ""}, // "0x1g" is no number: a name
		// IPv4 in every WHATWG form.
		{"127.0.0.1", "127.0.0.1", ""},
		{"2130706433", "127.0.0.1", ""},
		{"0x7f000001", "127.0.0.1", ""},
		{"0X7F000001", "127.0.0.1", ""},
		{"0177.0.0.1", "127.0.0.1", ""},
		{"0177.0.0.01", "127.0.0.1", ""},
		{"127.1", "127.0.0.1", ""},
		{"127.0.1", "127.0.0.1", ""},
		{"0x7f.1", "127.0.0.1", ""},
		{"127.0.0.1.", "127.0.0.1", ""},
		{"１２７.０.０.１", "127.0.0.1", ""},
		{"127。0。0。1", "127.0.0.1", ""},
		{"0", "0.0.0.0", ""},
		{"0x", "0.0.0.0", ""},
		{"4294967295", "255.255.255.255", ""},
		{"169.254.43518", "169.254.169.254", ""},
		// IPv6.
		{"[::1]", "::1", ""},
		{"::1", "::1", ""},
		{"[0:0:0:0:0:0:0:1]", "::1", ""},
		{"[::FFFF:127.0.0.1]", "127.0.0.1", ""},
		{"[::ffff:7f00:1]", "127.0.0.1", ""},
		{"[::ffff:a9fe:a9fe]", "169.254.169.254", ""},
		{"[2001:DB8::1]", "2001:db8::1", ""},
		// Refused.
		{"", "", "is empty"},
		{".", "", "is empty"},
		{"a..b", "", "empty label"},
		{".example.com", "", "empty label"},
		{"example.com..", "", "empty label"},
		{"1.2.3.4.5", "", "not a valid IPv4"},
		{"example.123", "", "not a valid IPv4"},
		{"example.0x", "", "not a valid IPv4"},
		{"4294967296", "", "not a valid IPv4"},
		{"1.2.3.256", "", "not a valid IPv4"},
		{"1.16777216", "", "not a valid IPv4"},
		{"256.1", "", "not a valid IPv4"},
		{"09", "", "not a valid IPv4"},
		{"0x1.0x", "", ""}, // valid: 1.0.0.0
		{"[fe80::1%25eth0]", "", "zone"},
		{"fe80::1%eth0", "", "zone"},
		{"[1.2.3.4]", "", "not a valid IPv6"},
		{"[::1", "", "unterminated"},
		{"[example.com]", "", "not a valid IPv6"},
		{"a:b", "", "not a valid IPv6"},
		{"%6c%6fcalhost", "", "percent"},
		{"xn--zz", "", "IDNA"},
		{"xn--mi7cdqncpe6aj", "", "IDNA"}, // the A-label of fullwidth "localhost" is not a valid label
		{"ｅｖｉｌ．ｃｏｍ／", "", "not allowed"},
		{"evil.com/x", "", "not allowed"},
		{"a b", "", "not allowed"},
		{"a*b", "", "not allowed"},
		{strings.Repeat("a", 64) + ".com", "", "longer than 63"},
		{strings.Repeat("a.", 127) + "com", "", "longer than 253"},
		{strings.Repeat("ａ", 400), "", "longer than 1024"},
	}
	for _, tt := range tests {
		got, err := hostname.Canonical(tt.in)
		if tt.err != "" {
			require.Error(t, err, "%q gave %q", tt.in, got)
			assert.Contains(t, err.Error(), tt.err, tt.in)
			var he *hostname.Error
			assert.ErrorAs(t, err, &he)
			continue
		}
		if tt.want == "" {
			require.NoError(t, err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
		again, err := hostname.Canonical(got)
		require.NoError(t, err, "canonical %q of %q", got, tt.in)
		assert.Equal(t, got, again, "not idempotent for %q", tt.in)
	}
}

func TestFromURL(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"https://Example.COM/a?b", "example.com", ""},
		{"http://example.com:8080/", "example.com", ""},
		{"http://[::1]:80/", "::1", ""},
		{"https://example.com./", "example.com", ""},
		{"http://2130706433:8080/", "127.0.0.1", ""},
		{"http://[::ffff:127.0.0.1]/", "127.0.0.1", ""},
		{"http://ｌｏｃａｌｈｏｓｔ/", "localhost", ""},
		{"http://%EF%BD%8C%EF%BD%8F%EF%BD%83%EF%BD%81%EF%BD%8C%EF%BD%88%EF%BD%8F%EF%BD%93%EF%BD%94/", "localhost", ""},
		{"ftp://files.example.com/x", "files.example.com", ""},
		{"http://good.com#@evil.com", "good.com", ""},
		{"http://good.com?@evil.com", "good.com", ""},
		{"http://good.com/\\@evil.com", "good.com", ""}, // a backslash in the path is harmless
		// Refused.
		{"https://evil.test@example.com/", "", "user information"},
		{"https://example.com@evil.test/", "", "user information"},
		{"https://user:pass@example.com/", "", "user information"},
		{"https://@example.com/", "", "user information"},
		{"http://evil.com\\@good.com/", "", "URL"},
		{"http://good.com\\.evil.com/", "", ""},
		{"http:\\\\evil.com/", "", ""},
		{"http:/evil.com/", "", "with a host"},
		{"http:evil.com", "", "with a host"},
		{"http:///evil.com", "", "with a host"},
		{"www.example.com/path", "", "no scheme"},
		{"//www.example.com/path", "", "no scheme"},
		{"localhost:8080/x", "", "with a host"},
		{"/relative/path", "", "no scheme"},
		{"::", "", "valid URL"},
		{"http://%6c%6fcalhost/", "", "valid URL"},
		{"http://loc\talhost/", "", "control character"},
		{" http://localhost/", "", ""},
		{"http://[fe80::1%25eth0]/", "", "zone"},
		{"http://example.com:99999/", "", "port"},
		{"http://1.2.3.4.5/", "", "not a valid IPv4"},
		{"http://a:1:2/", "", ""},
	}
	for _, tt := range tests {
		got, err := hostname.FromURL(tt.in)
		if tt.err != "" || tt.want == "" {
			require.Error(t, err, "%q gave %q", tt.in, got)
			assert.Contains(t, err.Error(), tt.err, tt.in)
			assert.NotContains(t, err.Error(), "net/url", tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
}

func TestClassify(t *testing.T) {
	const (
		L = hostname.Loopback | hostname.Internal
		P = hostname.Private | hostname.Internal
		K = hostname.LinkLocal | hostname.Internal
		I = hostname.Internal
	)
	tests := []struct {
		host string
		want hostname.Class
	}{
		{"127.0.0.1", L},
		{"127.255.255.254", L},
		{"2130706433", L},
		{"[::ffff:127.0.0.1]", L},
		{"::1", L},
		{"0.0.0.0", L},
		{"0", L},
		{"::", L},
		{"localhost", L},
		{"ｌｏｃａｌｈｏｓｔ", L},
		{"api.localhost", L},
		{"10.1.2.3", P},
		{"172.16.0.1", P},
		{"172.31.255.255", P},
		{"192.168.1.1", P},
		{"0xc0a80101", P},
		{"[::ffff:10.0.0.1]", P},
		{"fd00:ec2::254", P},
		{"169.254.169.254", K},
		{"fe80::1", K},
		{"[::ffff:169.254.169.254]", K},
		{"224.0.0.251", K},
		{"ff02::1", K},
		{"100.64.0.1", I},
		{"198.18.0.1", I},
		{"192.0.2.1", I},
		{"192.0.0.170", I},
		{"240.0.0.1", I},
		{"255.255.255.255", I},
		{"239.1.1.1", I},
		{"0.1.2.3", I},
		{"fec0::1", I},
		{"::7f00:1", I},          // IPv4-compatible, deprecated
		{"64:ff9b::7f00:1", I},   // NAT64 of loopback
		{"64:ff9b::a00:1", I},    // NAT64 of 10.0.0.1
		{"64:ff9b:1::1", I},      // local-use NAT64
		{"2002:7f00:1::1", I},    // 6to4 of loopback
		{"2002:a9fe:a9fe::1", I}, // 6to4 of the metadata address
		{"2001::1", I},           // Teredo
		{"2001:db8::1", I},
		{"3fff::1", I},
		{"ff0e::1", I},
		{"100::1", I},
		{"5f00::1", I},
		{"metadata", I},
		{"intranet", I},
		{"metadata.google.internal", I},
		{"printer.local", I},
		{"kubernetes.default.svc", I},
		{"router.lan", I},
		{"app.test", I},
		{"nas.home.arpa", I},
		{"host.localdomain", I},
		// Public.
		{"example.com", 0},
		{"bücher.de", 0},
		{"xn--80ak6aa92e.xn--p1ai", 0},
		{"8.8.8.8", 0},
		{"1.1.1.1", 0},
		{"100.63.255.255", 0},
		{"100.128.0.0", 0},
		{"172.32.0.1", 0},
		{"2606:4700::1111", 0},
		{"64:ff9b::808:808", 0}, // NAT64 of 8.8.8.8
		{"2002:808:808::1", 0},  // 6to4 of 8.8.8.8
		{"[::ffff:8.8.8.8]", 0},
		{"home.arpa.example.com", 0},
	}
	for _, tt := range tests {
		got, err := hostname.Classify(tt.host)
		require.NoError(t, err, tt.host)
		assert.Equal(t, tt.want, got, "%s: got %04b, want %04b", tt.host, got, tt.want)
	}
	_, err := hostname.Classify("1.2.3.4.5")
	assert.Error(t, err)
}

// TestAddrClassAgreesWithNetip walks the address ranges net/netip knows and
// checks that none of them is taken for public.
func TestAddrClassAgreesWithNetip(t *testing.T) {
	for _, s := range []string{
		"127.0.0.1", "127.1.2.3", "10.0.0.0", "10.255.255.255", "172.16.0.0", "192.168.255.255",
		"169.254.0.1", "0.0.0.0", "224.0.0.1", "239.255.255.255", "::1", "::", "fc00::1",
		"fdff:ffff::1", "fe80::", "febf:ffff::1", "ff01::1", "ff02::2", "ff05::1",
	} {
		a := netip.MustParseAddr(s)
		for _, x := range []netip.Addr{a, netip.AddrFrom16(a.As16())} {
			c := hostname.AddrClass(x)
			assert.True(t, c.Has(hostname.Internal), "%v", x)
			assert.Equal(t, x.Unmap().IsLoopback() || x.Unmap().IsUnspecified(), c.Has(hostname.Loopback), "%v", x)
			assert.Equal(t, x.Unmap().IsPrivate(), c.Has(hostname.Private), "%v", x)
			assert.Equal(t, x.Unmap().IsLinkLocalUnicast() || x.Unmap().IsLinkLocalMulticast(), c.Has(hostname.LinkLocal), "%v", x)
		}
	}
	assert.True(t, hostname.AddrClass(netip.MustParseAddr("fe80::1%eth0")).Has(hostname.LinkLocal))
}

// TestLongHostErrorIsValidUTF8: the error for a host over the length
// limit quotes its start, cut on a character boundary.
func TestLongHostErrorIsValidUTF8(t *testing.T) {
	for pad := range 4 {
		host := strings.Repeat("a", pad) + strings.Repeat(strings.Repeat("é", 20)+".", 200)
		_, err := hostname.Canonical(host)
		var he *hostname.Error
		require.ErrorAs(t, err, &he)
		assert.True(t, utf8.ValidString(he.Input), "%q", he.Input)
		assert.Contains(t, err.Error(), "is longer than")
	}
}
