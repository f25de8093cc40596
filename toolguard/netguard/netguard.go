// Package netguard keeps a tool's own network connections away from
// internal addresses, at the moment they are made.
//
// A policy rule such as urlHost(args.url).isInternalHost() judges the URL
// the model wrote. It cannot judge what a name resolves to: a public-looking
// name can resolve to 127.0.0.1 or 169.254.169.254, and can resolve
// differently when the tool connects than when anyone checked (DNS
// rebinding). A Filter checks the address of every connection after the
// name is resolved and before the connection is made, through
// net.Dialer's ControlContext hook, so redirects, retries and every
// address a name has are checked too. It is to URLs what os.Root is to
// file paths: a check at use, not before it.
//
// # Use
//
//	var f netguard.Filter // refuses every internal address
//	client := &http.Client{Transport: f.Transport(nil)}
//	resp, err := client.Get(url) // errors.Is(err, netguard.ErrRefused) for an internal address
//
// Use both: the policy rule gives the model a clear denial before the tool
// runs, the Filter holds when DNS says something else. A proxy in front of
// a third-party server can only check the URL; only the server that
// connects can use a Filter.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"

	"github.com/agentguard/agentguard/internal/hostname"
)

// ErrRefused is returned (wrapped) for a connection the Filter refuses.
var ErrRefused = errors.New("netguard: connection refused")

// Filter decides which addresses a tool may connect to. The zero Filter
// refuses every internal address (see IsInternal) and every address of
// this host's own network interfaces, and allows every other IP address; it refuses connections that are not TCP or UDP over IP
// (Unix sockets, for one), whose target it cannot judge. A Filter must not
// be changed once in use; it is then safe for concurrent use.
type Filter struct {
	// Allow lists internal prefixes that may be reached all the same, for
	// example netip.MustParsePrefix("10.1.2.3/32") for one service the
	// tool needs. An IPv4-mapped IPv6 address is matched as its IPv4
	// address.
	Allow []netip.Prefix
}

// IsInternal reports whether connecting to a reaches something that is
// not a public host: loopback, unspecified (0.0.0.0 and :: reach the local
// host), private (RFC 1918, fc00::/7), link-local (169.254/16, where cloud
// metadata lives, and fe80::/10), shared (100.64/10), benchmarking,
// documentation, multicast, reserved (240/4, broadcast), every IPv6 range
// outside 2000::/3, the IETF ranges 2001::/23 (Teredo among them) and
// 3fff::/20, and a NAT64 (64:ff9b::/96) or 6to4 (2002::/16) address
// whose embedded IPv4 address is internal. An IPv4-mapped IPv6 address is
// judged as its IPv4 address. It is the same judgement as the policy
// function isInternalHost on an IP address.
func IsInternal(a netip.Addr) bool {
	return hostname.AddrClass(a).Has(hostname.Internal)
}

// Check returns nil if a connection over network to address (an IP and
// port, as net.Dialer's Control hook receives it) is allowed, and an
// error wrapping ErrRefused if not. An address in Allow is allowed;
// otherwise an internal address (see IsInternal) is refused, and so is an
// address assigned to one of this host's own network interfaces (read at
// each check), even a public one: a connection to it reaches every
// service of this host that listens on all interfaces. If the host's
// addresses cannot be read, the connection is refused.
func (f *Filter) Check(network, address string) error {
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	default:
		return fmt.Errorf("%w: network %q is not TCP or UDP over IP", ErrRefused, network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q is not an IP address and port", ErrRefused, address)
	}
	a := ap.Addr().WithZone("").Unmap()
	for _, p := range f.Allow {
		if p.Contains(a) {
			return nil
		}
	}
	if IsInternal(a) {
		return fmt.Errorf("%w: %s is an internal address", ErrRefused, address)
	}
	own, err := ownAddr(a)
	if err != nil {
		return fmt.Errorf("%w: cannot list this host's own addresses: %w", ErrRefused, err)
	}
	if own {
		return fmt.Errorf("%w: %s is an address of this host", ErrRefused, address)
	}
	return nil
}

// ownAddr reports whether a is assigned to one of this host's network
// interfaces. A connection to it reaches the services of this host that
// listen on every interface, as a connection to 127.0.0.1 does.
func ownAddr(a netip.Addr) (bool, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false, err
	}
	for _, ia := range addrs {
		if n, ok := ia.(*net.IPNet); ok {
			if b, ok := netip.AddrFromSlice(n.IP); ok && b.Unmap() == a {
				return true, nil
			}
		}
	}
	return false, nil
}

// Control has the signature of net.Dialer.Control and calls Check.
func (f *Filter) Control(network, address string, _ syscall.RawConn) error {
	return f.Check(network, address)
}

// Dialer returns a copy of d (nil means a zero net.Dialer) that checks
// every connection with the Filter before it is made, after name
// resolution. d's own ControlContext or Control, if set, runs after the
// check. d is not changed.
func (f *Filter) Dialer(d *net.Dialer) *net.Dialer {
	nd := &net.Dialer{}
	if d != nil {
		*nd = *d
	}
	next := nd.ControlContext
	if next == nil && nd.Control != nil {
		c := nd.Control
		next = func(_ context.Context, network, address string, rc syscall.RawConn) error {
			return c(network, address, rc)
		}
	}
	nd.Control = nil
	nd.ControlContext = func(ctx context.Context, network, address string, rc syscall.RawConn) error {
		if err := f.Check(network, address); err != nil {
			return err
		}
		if next != nil {
			return next(ctx, network, address, rc)
		}
		return nil
	}
	return nd
}

// Transport returns a clone of t (nil means http.DefaultTransport, or a
// transport with its standard settings if a program replaced it with
// another kind of round tripper) whose
// every connection, redirects included, goes through f.Dialer with the
// timeouts of http.DefaultTransport's dialer; t's own DialContext is not
// used. It clears the clone's Proxy, Dial, DialTLS and DialTLSContext: a
// proxy resolves and connects on its own, out of the Filter's sight, and
// the others would open connections the Filter never sees. To keep a
// dialer of your own (a resolver, say), set the clone's DialContext to
// f.Dialer(yours).DialContext. t is not changed.
func (f *Filter) Transport(t *http.Transport) *http.Transport {
	if t == nil {
		t = defaultTransport()
	}
	nt := t.Clone()
	nt.Proxy = nil
	nt.OnProxyConnectResponse = nil
	// Dial and DialTLS are deprecated, and cleared so that they cannot
	// take precedence over DialContext.
	//lint:ignore SA1019 cleared so that it cannot be used instead of DialContext
	nt.Dial = nil
	//lint:ignore SA1019 cleared so that it cannot be used instead of DialContext
	nt.DialTLS = nil
	nt.DialTLSContext = nil
	nt.DialContext = f.Dialer(&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return nt
}

// defaultTransport returns http.DefaultTransport if it is an
// *http.Transport, and else a transport with the settings Go gives it.
func defaultTransport() *http.Transport {
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		return t
	}
	return &http.Transport{
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
	}
}
