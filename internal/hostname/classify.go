package hostname

import (
	"net/netip"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// Classes of a host. A host can be in several (a loopback host is also
// internal).
const (
	Loopback  Class = 1 << iota // 127.0.0.0/8, ::1, the unspecified 0.0.0.0 and ::, localhost, *.localhost
	Private                     // 10/8, 172.16/12, 192.168/16 (RFC 1918), fc00::/7 (RFC 4193)
	LinkLocal                   // 169.254/16, fe80::/10, and link-local multicast 224.0.0/24, ff02::/16
	Internal                    // everything that is not a public unicast address or public name; see Classify
)

// Class is a set of host classes.
type Class uint8

// Has reports whether c includes every class in x.
func (c Class) Has(x Class) bool { return c&x == x }

// internal4 lists the IPv4 ranges that are not public unicast addresses:
// the IANA IPv4 Special-Purpose Address Registry's entries that are not
// globally reachable, multicast, and the reserved 240/4.
var internal4 = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("10.0.0.0/8"),      // private
	netip.MustParsePrefix("100.64.0.0/10"),   // shared address space (carrier-grade NAT)
	netip.MustParsePrefix("127.0.0.0/8"),     // loopback
	netip.MustParsePrefix("169.254.0.0/16"),  // link-local (cloud metadata at 169.254.169.254)
	netip.MustParsePrefix("172.16.0.0/12"),   // private
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("192.88.99.0/24"),  // deprecated 6to4 relay anycast
	netip.MustParsePrefix("192.168.0.0/16"),  // private
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("224.0.0.0/4"),     // multicast
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and the broadcast address
}

// internal6 lists the IPv6 ranges inside the global unicast space 2000::/3
// that are not public; everything outside 2000::/3 is internal, except
// NAT64 addresses of public IPv4 hosts.
var internal6 = []netip.Prefix{
	netip.MustParsePrefix("2001::/23"),     // IETF protocol assignments (Teredo, benchmarking, ORCHID)
	netip.MustParsePrefix("2001:db8::/32"), // documentation
	netip.MustParsePrefix("3fff::/20"),     // documentation
}

var (
	global6 = netip.MustParsePrefix("2000::/3")
	nat64   = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052 well-known prefix: IPv4 in the last 32 bits
	sixTo4  = netip.MustParsePrefix("2002::/16")    // RFC 3056: IPv4 in bits 16-47
)

// AddrClass classifies an IP address. An IPv4-mapped IPv6 address is
// classified as its IPv4 address, and a NAT64 (64:ff9b::/96) or 6to4
// (2002::/16) address is internal when the IPv4 address it carries is.
// The zone is ignored.
func AddrClass(a netip.Addr) Class {
	a = a.WithZone("").Unmap()
	var c Class
	if a.IsLoopback() || a.IsUnspecified() {
		// Connecting to 0.0.0.0 or :: reaches the local host on Linux and
		// macOS.
		c |= Loopback
	}
	if a.IsPrivate() {
		c |= Private
	}
	if a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() {
		c |= LinkLocal
	}
	if c != 0 || internalAddr(a) {
		c |= Internal
	}
	return c
}

func internalAddr(a netip.Addr) bool {
	if a.Is4() {
		for _, p := range internal4 {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	b := a.As16()
	switch {
	case nat64.Contains(a):
		return internalAddr(netip.AddrFrom4([4]byte(b[12:16])))
	case sixTo4.Contains(a):
		return internalAddr(netip.AddrFrom4([4]byte(b[2:6])))
	case !global6.Contains(a):
		return true
	}
	for _, p := range internal6 {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Classify classifies a canonical host (see Canonical); it canonicalises
// host first, so any host Canonical accepts may be given. An address is
// classified by AddrClass. A name is loopback when it is "localhost" or
// ends in ".localhost" (RFC 6761: resolvers answer them with loopback
// without asking DNS). A name is internal when it is loopback, has a
// single label ("metadata", "intranet": resolvers complete it with the
// local search domains), ends in ".home.arpa" (RFC 8375), or its
// top-level label is not a top-level domain in the ICANN section of the
// Public Suffix List (".local", ".internal", ".lan", ".corp", ".test",
// Kubernetes' "kubernetes.default.svc", ...), because only a local
// resolver can answer for it. A name is never private or link-local by its
// form: what it resolves to is known only when the connection is made.
func Classify(host string) (Class, error) {
	c, err := Canonical(host)
	if err != nil {
		return 0, err
	}
	if a, err := netip.ParseAddr(c); err == nil {
		return AddrClass(a), nil
	}
	return nameClass(c), nil
}

func nameClass(name string) Class {
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return Loopback | Internal
	}
	tld := name[strings.LastIndexByte(name, '.')+1:]
	if tld == name || name == "home.arpa" || strings.HasSuffix(name, ".home.arpa") {
		return Internal
	}
	if _, icann := publicsuffix.PublicSuffix(tld); !icann {
		return Internal
	}
	return 0
}
