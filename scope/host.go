package scope

import (
	"errors"
	"strconv"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/agentguard/agentguard/internal/hostname"
)

// CanonicalHost returns the host a client connects to for host, the host
// part of a URL (a name, an IPv4 address in any of the forms browsers,
// curl and libc accept, or an IPv6 address with or without brackets):
//   - IPv4 in dotted decimal: "2130706433", "0x7f000001", "0177.0.0.1",
//     "127.1" and the fullwidth "１２７.０.０.１" all give "127.0.0.1";
//   - IPv6 in RFC 5952 form, an IPv4-mapped address as its IPv4 address:
//     "[::ffff:127.0.0.1]" gives "127.0.0.1";
//   - a name in lower-case ASCII after IDNA (UTS #46) mapping, without a
//     trailing dot: "ｌｏｃａｌｈｏｓｔ" and "LocalHost." give "localhost",
//     "bücher.de" gives "xn--bcher-kva.de".
//
// It returns an error for a host that is empty, has an IPv6 zone, contains
// "%" or any character other than letters, digits, "-" and "_" (after
// mapping), has an empty label, ends in a number without being a valid
// IPv4 address ("1.2.3.4.5"), or is not valid under IDNA. In a policy an
// error never allows a call. CanonicalHost is idempotent.
//
// It is the function behind the CEL member function host.canonicalHost().
func CanonicalHost(host string) (string, error) {
	c, err := hostname.Canonical(host)
	if err != nil {
		return "", hostErr("canonicalHost", err)
	}
	return c, nil
}

// hostError is a hostname.Error reported under the name of the CEL
// function that met it: what a model reads names no Go package.
type hostError struct {
	fn  string
	err *hostname.Error
}

func (e *hostError) Error() string {
	return e.fn + ": " + strconv.Quote(e.err.Input) + " " + e.err.Reason
}

func (e *hostError) Unwrap() error { return e.err }

func hostErr(fn string, err error) error {
	var he *hostname.Error
	if errors.As(err, &he) {
		return &hostError{fn: fn, err: he}
	}
	return err
}

// hostFunctions declares the CEL functions on hosts: urlHost (member and
// global), canonicalHost, and the classifiers isLoopbackHost,
// isPrivateHost, isLinkLocalHost and isInternalHost.
func hostFunctions() []cel.EnvOption {
	classifier := func(name string, class hostname.Class) cel.EnvOption {
		return cel.Function(name,
			cel.MemberOverload("string_"+name, []*cel.Type{cel.StringType}, cel.BoolType,
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					s, ok := v.(types.String)
					if !ok {
						return types.MaybeNoSuchOverloadErr(v)
					}
					c, err := hostname.Classify(string(s))
					if err != nil {
						return types.WrapErr(hostErr(name, err))
					}
					return types.Bool(c.Has(class))
				})))
	}
	return []cel.EnvOption{
		cel.Function("urlHost",
			cel.MemberOverload("string_urlHost", []*cel.Type{cel.StringType}, cel.StringType,
				cel.UnaryBinding(celURLHost)),
			cel.Overload("urlHost_string", []*cel.Type{cel.StringType}, cel.StringType,
				cel.UnaryBinding(celURLHost))),
		cel.Function("canonicalHost",
			cel.MemberOverload("string_canonicalHost", []*cel.Type{cel.StringType}, cel.StringType,
				cel.UnaryBinding(func(v ref.Val) ref.Val {
					s, ok := v.(types.String)
					if !ok {
						return types.MaybeNoSuchOverloadErr(v)
					}
					c, err := CanonicalHost(string(s))
					if err != nil {
						return types.WrapErr(err)
					}
					return types.String(c)
				}))),
		classifier("isLoopbackHost", hostname.Loopback),
		classifier("isPrivateHost", hostname.Private),
		classifier("isLinkLocalHost", hostname.LinkLocal),
		classifier("isInternalHost", hostname.Internal),
	}
}
