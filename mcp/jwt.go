package guardmcp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/agentguard/agentguard/scope"
)

// JWTKey is a public key that verifies access tokens.
type JWTKey struct {
	// ID is the key id ("kid"); a token naming a kid is checked only
	// against keys with that ID.
	ID string
	// Alg, if set, is the only algorithm accepted with this key; it must be
	// one the key's type allows.
	Alg string
	// Key is an *rsa.PublicKey (RS256/384/512, PS256/384/512; at least
	// 2048 bits), an *ecdsa.PublicKey (ES256 on P-256, ES384 on P-384,
	// ES512 on P-521) or an ed25519.PublicKey (EdDSA).
	Key crypto.PublicKey
}

// algs returns the algorithms this key may verify.
func (k JWTKey) algs() ([]string, error) {
	var all []string
	switch pk := k.Key.(type) {
	case *rsa.PublicKey:
		if pk == nil || pk.N.BitLen() < 2048 {
			return nil, errors.New("guardmcp: RSA keys must have at least 2048 bits")
		}
		all = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	case *ecdsa.PublicKey:
		if pk == nil {
			return nil, errors.New("guardmcp: nil ECDSA key")
		}
		switch pk.Curve {
		case elliptic.P256():
			all = []string{"ES256"}
		case elliptic.P384():
			all = []string{"ES384"}
		case elliptic.P521():
			all = []string{"ES512"}
		default:
			return nil, errors.New("guardmcp: unsupported ECDSA curve")
		}
	case ed25519.PublicKey:
		if len(pk) != ed25519.PublicKeySize {
			return nil, errors.New("guardmcp: bad Ed25519 key")
		}
		all = []string{"EdDSA"}
	default:
		return nil, fmt.Errorf("guardmcp: unsupported key type %T (symmetric keys are not accepted)", k.Key)
	}
	if k.Alg == "" {
		return all, nil
	}
	if !slices.Contains(all, k.Alg) {
		return nil, fmt.Errorf("guardmcp: key %q: algorithm %q does not fit the key type", k.ID, k.Alg)
	}
	return []string{k.Alg}, nil
}

// JWTOptions say which tokens a JWTVerifier accepts.
type JWTOptions struct {
	// Audience must appear in the token's aud claim. Required.
	Audience string
	// Issuer must equal the token's iss claim. Required.
	Issuer string
	// Leeway is the clock skew allowed on exp, nbf and iat; zero means
	// DefaultLeeway. Negative means none.
	Leeway time.Duration
	// Claims says which claims become the principal; the zero value is
	// the default mapping (see ClaimMapping).
	Claims ClaimMapping
}

// DefaultLeeway is the clock skew a JWTVerifier allows when
// JWTOptions.Leeway is zero.
const DefaultLeeway = 30 * time.Second

// JWTVerifier turns JWT access tokens into principals, by default with sub
// as the principal's ID, scope (space-separated) and scp (an array or a
// string) as its scopes, and every other claim as its Attrs (see
// ClaimMapping). The signature (by one of the verifier's keys, with an
// algorithm its key type allows — never "none", never HMAC), exp
// (required), nbf, iat, aud and iss are checked.
//
// Create one with NewJWTVerifier (fixed keys, such as from a file) or
// NewJWKSVerifier (keys fetched from the authorization server); the zero
// value accepts nothing. A JWTVerifier is safe for concurrent use.
type JWTVerifier struct {
	keys   []JWTKey
	algs   [][]string
	remote jwkset.Storage // keys fetched and refreshed; nil for fixed keys
	// unknownKID spaces the refreshes that tokens with unknown key ids
	// cause.
	unknownKID *rate.Limiter
	parser     *jwt.Parser
	claims     ClaimMapping
}

// NewJWTVerifier returns a verifier of tokens signed by one of keys.
func NewJWTVerifier(keys []JWTKey, opts JWTOptions) (*JWTVerifier, error) {
	if len(keys) == 0 {
		return nil, errors.New("guardmcp: JWT verifier needs at least one key")
	}
	if opts.Audience == "" || opts.Issuer == "" {
		return nil, errors.New("guardmcp: JWT verifier needs an audience and an issuer")
	}
	v, methods, err := newKeyVerifier(keys)
	if err != nil {
		return nil, err
	}
	v.claims = opts.Claims
	v.parser = newParser(methods, opts)
	return v, nil
}

// newKeyVerifier returns a verifier of signatures by keys, without a
// parser, and the algorithms the keys allow together.
func newKeyVerifier(keys []JWTKey) (*JWTVerifier, []string, error) {
	v := &JWTVerifier{keys: slices.Clone(keys)}
	var methods []string
	for _, k := range keys {
		a, err := k.algs()
		if err != nil {
			return nil, nil, err
		}
		v.algs = append(v.algs, a)
		for _, m := range a {
			if !slices.Contains(methods, m) {
				methods = append(methods, m)
			}
		}
	}
	return v, methods, nil
}

func newParser(methods []string, opts JWTOptions) *jwt.Parser {
	return jwt.NewParser(
		jwt.WithValidMethods(methods),
		jwt.WithLeeway(leeway(opts.Leeway)),
		jwt.WithAudience(opts.Audience),
		jwt.WithIssuer(opts.Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	)
}

// leeway is the clock skew allowed for a configured leeway d: zero means
// DefaultLeeway, negative none.
func leeway(d time.Duration) time.Duration {
	switch {
	case d == 0:
		return DefaultLeeway
	case d < 0:
		return 0
	}
	return d
}

// Verify checks a token and returns its principal. It is VerifyContext
// with a background context.
func (v *JWTVerifier) Verify(token string) (scope.Principal, error) {
	return v.VerifyContext(context.Background(), token)
}

// VerifyContext checks a token and returns its principal. ctx bounds the
// refresh of a verifier's keys that a token with an unknown key id may
// cause (NewJWKSVerifier).
func (v *JWTVerifier) VerifyContext(ctx context.Context, token string) (scope.Principal, error) {
	if v == nil || v.parser == nil {
		return scope.Principal{}, errors.New("guardmcp: no JWT verifier")
	}
	if len(token) > maxTokenBytes {
		return scope.Principal{}, errors.New("guardmcp: token too long")
	}
	claims := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) { return v.keyFunc(ctx, t) })
	if err != nil {
		return scope.Principal{}, fmt.Errorf("guardmcp: invalid token: %w", jwtError(err))
	}
	return v.claims.principal(claims)
}

// jwtError is err from the JWT parser as a client may read it: a bad
// signature or a malformed token in words of its own, without the text of
// the crypto or encoding package underneath ("ed25519: verification
// error"). The result still matches what err matched.
func jwtError(err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return textError{"its signature is not valid", err}
	case errors.Is(err, jwt.ErrTokenMalformed):
		return textError{"it is not a well-formed JWT", err}
	}
	return err
}

// textError is err with other text.
type textError struct {
	text string
	err  error
}

func (e textError) Error() string { return e.text }
func (e textError) Unwrap() error { return e.err }

// PrincipalFunc returns a PrincipalFunc that verifies the request's bearer
// token. Over stdio (no HTTP request) there is no principal.
func (v *JWTVerifier) PrincipalFunc() PrincipalFunc {
	return func(ctx context.Context, r *http.Request) (scope.Principal, error) {
		tok, err := BearerToken(r)
		if err != nil {
			return scope.Principal{}, err
		}
		return v.VerifyContext(ctx, tok)
	}
}

func (v *JWTVerifier) keyFunc(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	kid, hasKid := t.Header["kid"].(string)
	if _, present := t.Header["kid"]; present && !hasKid {
		return nil, errors.New("guardmcp: kid is not a string")
	}
	keys, algs := v.keys, v.algs
	if v.remote != nil {
		var err error
		if keys, algs, err = v.remoteKeys(ctx, kid, hasKid); err != nil {
			return nil, err
		}
	}
	var set jwt.VerificationKeySet
	for i, k := range keys {
		if hasKid && k.ID != kid {
			continue
		}
		if slices.Contains(algs[i], alg) {
			set.Keys = append(set.Keys, k.Key)
		}
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("guardmcp: no key for algorithm %q and kid %q", alg, kid)
	}
	return set, nil
}

// LoadJWTKeys reads verification keys from a file: a JWKS document
// ({"keys": [...]}) or PEM public keys.
func LoadJWTKeys(path string) ([]JWTKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("guardmcp: %w", err)
	}
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		keys, err := ParseJWKS(b)
		if err != nil {
			return nil, fmt.Errorf("%w (in %s)", err, path)
		}
		return keys, nil
	}
	keys, err := ParsePEMKeys(b)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return keys, nil
}

// ParsePEMKeys parses PEM "PUBLIC KEY" blocks (PKIX) and certificates.
func ParsePEMKeys(data []byte) ([]JWTKey, error) {
	var keys []JWTKey
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			break
		}
		var pub any
		switch blk.Type {
		case "PUBLIC KEY":
			k, err := x509.ParsePKIXPublicKey(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("guardmcp: %w", err)
			}
			pub = k
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("guardmcp: %w", err)
			}
			pub = c.PublicKey
		default:
			return nil, fmt.Errorf("guardmcp: PEM block %q is not a public key", blk.Type)
		}
		k := JWTKey{Key: pub}
		if _, err := k.algs(); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("guardmcp: no PEM public keys found")
	}
	return keys, nil
}
