package guardmcp

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"golang.org/x/time/rate"
)

// ParseJWKS parses a JSON Web Key Set (RFC 7517) of RSA, EC (P-256, P-384,
// P-521) and OKP (Ed25519) public keys, with github.com/MicahParks/jwkset.
// Keys whose "use" is not "sig" are skipped; symmetric ("oct"), malformed
// and unknown keys are an error.
func ParseJWKS(data []byte) ([]JWTKey, error) {
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("guardmcp: JWKS: %w", err)
	}
	var keys []JWTKey
	for i, m := range set.Keys {
		if m.USE != "" && m.USE != jwkset.UseSig {
			continue
		}
		j, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			return nil, fmt.Errorf("guardmcp: JWKS key %d (%q): %w", i, m.KID, err)
		}
		k, err := jwtKey(j)
		if err != nil {
			return nil, fmt.Errorf("guardmcp: JWKS key %d (%q): %w", i, m.KID, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("guardmcp: JWKS has no signing keys")
	}
	return keys, nil
}

// jwtKey converts a parsed JWK, checking that the key may verify tokens.
func jwtKey(j jwkset.JWK) (JWTKey, error) {
	m := j.Marshal()
	key := j.Key()
	if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		key = pk.Public()
	}
	k := JWTKey{ID: m.KID, Alg: m.ALG.String(), Key: key}
	if _, err := k.algs(); err != nil {
		return JWTKey{}, err
	}
	return k, nil
}

// JWKSOptions say where NewJWKSVerifier fetches the authorization
// server's keys and how often it refreshes them. The zero value discovers
// the JWKS URL and uses the defaults.
type JWKSOptions struct {
	// URL is the JWKS URL; if empty it is discovered from the issuer's
	// metadata (DiscoverJWKSURL).
	URL string
	// Client makes the requests; nil means a client with a 10 second
	// timeout. Responses over 1 MiB are refused.
	Client *http.Client
	// RefreshInterval is how often the keys are fetched again (default
	// an hour).
	RefreshInterval time.Duration
	// UnknownKIDInterval is the least time between two refreshes caused
	// by tokens whose key id ("kid") is unknown (default 5 minutes): the
	// first such token refreshes the keys at once, and until the interval
	// has passed tokens with unknown key ids are refused without a
	// request.
	UnknownKIDInterval time.Duration
	// Logger receives refresh failures; nil discards them.
	Logger *slog.Logger
}

// maxMetadataBytes bounds the authorization server documents read.
const maxMetadataBytes = 1 << 20

// asymmetric are the algorithms a verifier with fetched keys accepts;
// each key narrows them to those its type allows.
var asymmetric = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// NewJWKSVerifier returns a verifier of tokens signed by the keys the
// authorization server publishes at its JWKS URL, fetched with
// github.com/MicahParks/keyfunc/v3 and github.com/MicahParks/jwkset: once
// now (an error if that fails), again every RefreshInterval, and once more
// when a token names a key id not among the keys, at most once per
// UnknownKIDInterval. A refresh replaces the keys, so a key the server no
// longer publishes stops verifying after the next refresh. Refreshes stop
// when ctx is done.
//
// Without src.URL, the JWKS URL is found in the metadata of opts.Issuer
// (RFC 8414 or OpenID Connect discovery, see DiscoverJWKSURL).
func NewJWKSVerifier(ctx context.Context, src JWKSOptions, opts JWTOptions) (*JWTVerifier, error) {
	if opts.Audience == "" || opts.Issuer == "" {
		return nil, errors.New("guardmcp: JWT verifier needs an audience and an issuer")
	}
	client := boundedClient(src.Client)
	u := src.URL
	if u == "" {
		var err error
		if u, err = DiscoverJWKSURL(ctx, client, opts.Issuer); err != nil {
			return nil, err
		}
	} else if err := checkFetchURL(u); err != nil {
		return nil, fmt.Errorf("guardmcp: JWKS URL: %w", err)
	}
	unknown := src.UnknownKIDInterval
	if unknown <= 0 {
		unknown = 5 * time.Minute
	}
	logger := src.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	fail := false
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{u}, keyfunc.Override{
		Client:                    client,
		HTTPTimeout:               10 * time.Second,
		NoErrorReturnFirstHTTPReq: &fail,
		RefreshInterval:           src.RefreshInterval,
		// The library refreshes whenever it is asked for an unknown kid;
		// remoteKeys asks only when the verifier's own limiter allows, so
		// that other tokens are refused at once instead of waiting.
		RefreshUnknownKID: rate.NewLimiter(rate.Inf, 1),
		RateLimitWaitMax:  10 * time.Second,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(_ context.Context, err error) {
				logger.Warn("guardmcp: refreshing the JWKS failed; the keys in hand stay", "url", u, "err", err)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("guardmcp: JWKS %s: %w", u, err)
	}
	return &JWTVerifier{remote: kf.Storage(), unknownKID: rate.NewLimiter(rate.Every(unknown), 1),
		parser: newParser(asymmetric, opts), claims: opts.Claims}, nil
}

// remoteKeys returns the fetched keys for a token: those with its key id
// (which refreshes the keys, rate-limited, when none has it), or all.
func (v *JWTVerifier) remoteKeys(ctx context.Context, kid string, hasKid bool) ([]JWTKey, [][]string, error) {
	jwks, err := v.remote.KeyReadAll(ctx) // the keys in hand: no request
	if err != nil {
		return nil, nil, fmt.Errorf("guardmcp: keys: %w", err)
	}
	if hasKid {
		jwks = slices.DeleteFunc(jwks, func(j jwkset.JWK) bool { return j.Marshal().KID != kid })
		if len(jwks) == 0 {
			if !v.unknownKID.Allow() {
				return nil, nil, fmt.Errorf("guardmcp: no key with kid %q (the keys were refreshed recently)", kid)
			}
			// The storage refreshes its keys when asked for an unknown kid.
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			j, err := v.remote.KeyRead(rctx, kid)
			if err != nil {
				return nil, nil, fmt.Errorf("guardmcp: no key with kid %q: %w", kid, err)
			}
			jwks = []jwkset.JWK{j}
		}
	}
	var keys []JWTKey
	var algs [][]string
	for _, j := range jwks {
		if use := j.Marshal().USE; use != "" && use != jwkset.UseSig {
			continue
		}
		k, err := jwtKey(j)
		if err != nil {
			continue // a key this verifier does not accept verifies nothing
		}
		a, _ := k.algs()
		keys, algs = append(keys, k), append(algs, a)
	}
	return keys, algs, nil
}

// DiscoverJWKSURL finds the jwks_uri of the authorization server issuer
// in its metadata: RFC 8414 (/.well-known/oauth-authorization-server,
// inserted before the issuer's path), then OpenID Connect discovery
// (/.well-known/openid-configuration inserted before the path, then
// appended to it), the order the MCP authorization specification gives.
// The metadata's issuer must equal issuer exactly (RFC 8414, section 3.3).
// Issuer and JWKS URLs must be https, or http on a loopback address.
func DiscoverJWKSURL(ctx context.Context, client *http.Client, issuer string) (string, error) {
	iu, err := url.Parse(issuer)
	if err != nil || checkFetchURL(issuer) != nil || iu.RawQuery != "" || iu.Fragment != "" {
		return "", fmt.Errorf("guardmcp: issuer %q is not an https URL (or http on loopback) without query or fragment", issuer)
	}
	client = boundedClient(client)
	path := strings.TrimSuffix(iu.EscapedPath(), "/")
	base := iu.Scheme + "://" + iu.Host
	candidates := []string{base + "/.well-known/oauth-authorization-server" + path,
		base + "/.well-known/openid-configuration" + path}
	if path != "" {
		candidates = append(candidates, base+path+"/.well-known/openid-configuration")
	}
	var errs []error
	for _, c := range candidates {
		u, err := jwksFromMetadata(ctx, client, c, issuer)
		if err == nil {
			return u, nil
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("guardmcp: no authorization server metadata for %s: %w", issuer, errors.Join(errs...))
}

func jwksFromMetadata(ctx context.Context, client *http.Client, metaURL, issuer string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metaURL, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: HTTP %d", metaURL, resp.StatusCode)
	}
	var meta struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&meta); err != nil {
		return "", fmt.Errorf("%s: %w", metaURL, err)
	}
	switch {
	case meta.Issuer != issuer:
		return "", fmt.Errorf("%s: the metadata's issuer %q is not %q", metaURL, meta.Issuer, issuer)
	case meta.JWKSURI == "":
		return "", fmt.Errorf("%s: no jwks_uri", metaURL)
	}
	if err := checkFetchURL(meta.JWKSURI); err != nil {
		return "", fmt.Errorf("%s: jwks_uri: %w", metaURL, err)
	}
	return meta.JWKSURI, nil
}

// checkFetchURL accepts https URLs, and http URLs of loopback hosts.
func checkFetchURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || host == "localhost" {
			return nil
		}
	}
	return fmt.Errorf("%q is neither https nor http on a loopback address", raw)
}

// boundedClient returns c (or a client with a 10 second timeout) whose
// response bodies are cut off at maxMetadataBytes, so that a JWKS or a
// metadata document cannot take unbounded memory.
func boundedClient(c *http.Client) *http.Client {
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	cp := *c
	base := cp.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	cp.Transport = limitedTransport{base}
	return &cp
}

type limitedTransport struct{ rt http.RoundTripper }

func (t limitedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = limitedBody{io.LimitReader(resp.Body, maxMetadataBytes), resp.Body}
	return resp, nil
}

type limitedBody struct {
	io.Reader
	io.Closer
}
