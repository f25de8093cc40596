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
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

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
}

// DefaultLeeway is the clock skew a JWTVerifier allows when
// JWTOptions.Leeway is zero.
const DefaultLeeway = 30 * time.Second

// JWTVerifier turns JWT access tokens into principals: sub becomes the
// principal's ID, scope (space-separated) and scp (an array or a string)
// its scopes, and every other claim its Attrs. The signature (by one of
// the verifier's keys, with an algorithm its key type allows — never
// "none", never HMAC), exp (required), nbf, iat, aud and iss are checked.
//
// Create one with NewJWTVerifier; the zero value accepts nothing. A
// JWTVerifier is safe for concurrent use.
type JWTVerifier struct {
	keys   []JWTKey
	algs   [][]string
	parser *jwt.Parser
}

// NewJWTVerifier returns a verifier of tokens signed by one of keys.
func NewJWTVerifier(keys []JWTKey, opts JWTOptions) (*JWTVerifier, error) {
	if len(keys) == 0 {
		return nil, errors.New("guardmcp: JWT verifier needs at least one key")
	}
	if opts.Audience == "" || opts.Issuer == "" {
		return nil, errors.New("guardmcp: JWT verifier needs an audience and an issuer")
	}
	v := &JWTVerifier{keys: slices.Clone(keys)}
	var methods []string
	for _, k := range keys {
		a, err := k.algs()
		if err != nil {
			return nil, err
		}
		v.algs = append(v.algs, a)
		for _, m := range a {
			if !slices.Contains(methods, m) {
				methods = append(methods, m)
			}
		}
	}
	leeway := opts.Leeway
	if leeway == 0 {
		leeway = DefaultLeeway
	} else if leeway < 0 {
		leeway = 0
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(methods),
		jwt.WithLeeway(leeway),
		jwt.WithAudience(opts.Audience),
		jwt.WithIssuer(opts.Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	)
	return v, nil
}

// Verify checks a token and returns its principal.
func (v *JWTVerifier) Verify(token string) (scope.Principal, error) {
	if v == nil || v.parser == nil {
		return scope.Principal{}, errors.New("guardmcp: no JWT verifier")
	}
	if len(token) > maxTokenBytes {
		return scope.Principal{}, errors.New("guardmcp: token too long")
	}
	claims := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(token, claims, v.keyFunc)
	if err != nil {
		return scope.Principal{}, fmt.Errorf("guardmcp: invalid token: %w", err)
	}
	return principalFromClaims(claims)
}

// PrincipalFunc returns a PrincipalFunc that verifies the request's bearer
// token. Over stdio (no HTTP request) there is no principal.
func (v *JWTVerifier) PrincipalFunc() PrincipalFunc {
	return func(_ context.Context, r *http.Request) (scope.Principal, error) {
		tok, err := BearerToken(r)
		if err != nil {
			return scope.Principal{}, err
		}
		return v.Verify(tok)
	}
}

func (v *JWTVerifier) keyFunc(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	kid, hasKid := t.Header["kid"].(string)
	var set jwt.VerificationKeySet
	for i, k := range v.keys {
		if hasKid && k.ID != kid {
			continue
		}
		if slices.Contains(v.algs[i], alg) {
			set.Keys = append(set.Keys, k.Key)
		}
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("guardmcp: no key for algorithm %q and kid %q", alg, kid)
	}
	return set, nil
}

func principalFromClaims(c jwt.MapClaims) (scope.Principal, error) {
	sub, _ := c["sub"].(string)
	if sub == "" {
		return scope.Principal{}, errors.New("guardmcp: token has no sub claim")
	}
	pr := scope.Principal{ID: sub, Attrs: map[string]any{}}
	if s, ok := c["scope"].(string); ok {
		pr.Scopes = append(pr.Scopes, strings.Fields(s)...)
	}
	switch s := c["scp"].(type) {
	case string:
		pr.Scopes = append(pr.Scopes, strings.Fields(s)...)
	case []any:
		for _, e := range s {
			if str, ok := e.(string); ok && str != "" {
				pr.Scopes = append(pr.Scopes, str)
			}
		}
	}
	for k, val := range c {
		switch k {
		case "sub", "scope", "scp":
		default:
			pr.Attrs[k] = val
		}
	}
	return pr, nil
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

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// ParseJWKS parses a JSON Web Key Set (RFC 7517) of RSA, EC (P-256, P-384,
// P-521) and OKP (Ed25519) public keys. Keys whose "use" is not "sig" are
// skipped; symmetric ("oct") and unknown keys are an error.
func ParseJWKS(data []byte) ([]JWTKey, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("guardmcp: JWKS: %w", err)
	}
	var keys []JWTKey
	for i, j := range set.Keys {
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		k, err := j.key()
		if err != nil {
			return nil, fmt.Errorf("guardmcp: JWKS key %d (%q): %w", i, j.Kid, err)
		}
		if _, err := k.algs(); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("guardmcp: JWKS has no signing keys")
	}
	return keys, nil
}

func b64(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

func (j jwk) key() (JWTKey, error) {
	k := JWTKey{ID: j.Kid, Alg: j.Alg}
	switch j.Kty {
	case "RSA":
		n, err := b64(j.N)
		if err != nil {
			return k, err
		}
		e, err := b64(j.E)
		if err != nil {
			return k, err
		}
		if len(e) == 0 || len(e) > 4 {
			return k, errors.New("bad RSA exponent")
		}
		exp := new(big.Int).SetBytes(e)
		if exp.Int64() < 3 || exp.Bit(0) == 0 {
			return k, errors.New("bad RSA exponent")
		}
		k.Key = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp.Int64())}
	case "EC":
		var curve elliptic.Curve
		switch j.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return k, fmt.Errorf("unsupported curve %q", j.Crv)
		}
		x, err := b64(j.X)
		if err != nil {
			return k, err
		}
		y, err := b64(j.Y)
		if err != nil {
			return k, err
		}
		size := (curve.Params().BitSize + 7) / 8
		if len(x) != size || len(y) != size {
			return k, errors.New("bad EC coordinates")
		}
		pk, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
		if err != nil {
			return k, err
		}
		k.Key = pk
	case "OKP":
		if j.Crv != "Ed25519" {
			return k, fmt.Errorf("unsupported curve %q", j.Crv)
		}
		x, err := b64(j.X)
		if err != nil {
			return k, err
		}
		if len(x) != ed25519.PublicKeySize {
			return k, errors.New("bad Ed25519 key")
		}
		k.Key = ed25519.PublicKey(x)
	default:
		return k, fmt.Errorf("unsupported key type %q", j.Kty)
	}
	return k, nil
}
