package audit

// Names of the kinds of secret the built-in detectors find, as
// [SecretKinds] reports them.
const (
	SecretAWSAccessKeyID = "aws_access_key_id"
	SecretGoogleAPIKey   = "google_api_key"
	SecretPrivateKey     = "private_key"
	SecretBearerToken    = "bearer_token"
	SecretGitHubToken    = "github_token"
	SecretSlackToken     = "slack_token"
	SecretJWT            = "jwt"
	SecretURLPassword    = "url_password"
)

// name returns the kind's name in [SecretKinds].
func (k secretKind) name() string {
	switch k {
	case awsKeyID:
		return SecretAWSAccessKeyID
	case googleAPIKey:
		return SecretGoogleAPIKey
	case pemPrivateKey:
		return SecretPrivateKey
	case bearerToken:
		return SecretBearerToken
	case githubToken:
		return SecretGitHubToken
	case slackToken:
		return SecretSlackToken
	case jsonWebToken:
		return SecretJWT
	case urlPasswordKind:
		return SecretURLPassword
	}
	return "secret"
}

// SecretKinds reports the kinds of secret the built-in detectors (those
// [Redactor.Redact] uses) find in s, as a bit set: bit k is set for the
// k-th name of [SecretKindNames]. It costs one table lookup per byte of a
// string without a secret, and does not allocate.
func SecretKinds(s string) uint16 {
	if !containsSecret(s) {
		return 0
	}
	var buf [8]span
	_, kinds := secretSpans(s, buf[:0])
	return kinds >> 1 // bit 0 is noSecret
}

// SecretKindNames returns the names of the kinds in a set from
// [SecretKinds], in a fixed order.
func SecretKindNames(kinds uint16) []string {
	var out []string
	for k := awsKeyID; k <= urlPasswordKind; k++ {
		if kinds&(1<<(k-1)) != 0 {
			out = append(out, k.name())
		}
	}
	return out
}

// Digest returns what [Redactor.Redact] puts in place of a value v:
// "redacted:hmac-sha256:" and the hex of the first 16 bytes of the HMAC of
// v's canonical JSON under r's key.
func (r *Redactor) Digest(v any) string {
	if r == nil {
		r = &nilRedactor
	}
	return r.digest(v)
}

// appendResultGuard appends the members saying what the result guard did.
func (r *Record) appendResultGuard(dst []byte) []byte {
	dst = appendStringField(dst, `"result_action":`, r.ResultAction)
	if len(r.ResultRules) > 0 {
		dst = append(dst, `"result_rules":`...)
		dst = appendStrings(dst, r.ResultRules)
		dst = append(dst, ',')
	}
	if len(r.ResultFindings) > 0 {
		dst = append(dst, `"result_findings":`...)
		dst = appendStrings(dst, r.ResultFindings)
		dst = append(dst, ',')
	}
	return appendIntField(dst, `"result_redacted":`, r.ResultRedacted)
}
