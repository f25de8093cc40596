package guardmcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentguard/agentguard/internal/safejson"
	"github.com/agentguard/agentguard/internal/taskmeta"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// TaskMetaKey is the _meta key under which an MCP request carries a task
// (one user request) that narrows what the call may do: a signed task
// token (see [TaskVerifier]). Only this exact key is read; any other
// _meta key that contains "agentguard" in any letter case is refused (see
// [WithTaskVerifier]).
const TaskMetaKey = taskmeta.Key

// DefaultTaskLifetime is the longest a task token may be valid when
// TaskOptions.MaxLifetime is zero.
const DefaultTaskLifetime = time.Hour

// maxTaskIDBytes bounds the id of a task, which every record carries.
const maxTaskIDBytes = 256

// TaskOptions say which task tokens a TaskVerifier accepts. The zero value
// accepts tokens of any issuer with no aud claim, valid for at most
// DefaultTaskLifetime.
type TaskOptions struct {
	// Audience, if set, must appear in the token's aud claim. If empty, a
	// token with an aud claim is refused: it was addressed to a recipient
	// this verifier cannot confirm it is.
	Audience string
	// Issuer, if set, must equal the token's iss claim.
	Issuer string
	// MaxLifetime bounds how long a token may be valid: exp may be at
	// most this far after iat (when the token has one) and after now.
	// Zero means DefaultTaskLifetime.
	MaxLifetime time.Duration
	// Leeway is the clock skew allowed on exp, nbf and iat; zero means
	// DefaultLeeway. Negative means none.
	Leeway time.Duration
}

// TaskVerifier checks task tokens: compact JWTs, signed by the
// application that builds MCP requests (the host, not the model), which
// narrow one call to a task. The token's claims are
//
//	task  the task, an object with exactly these members:
//	        id      string, required: the task id records carry
//	        scopes  array of strings: keep only these of the principal's scopes
//	        tools   array of strings: keep only tools matching these names or globs
//	        attrs   object: task.attrs for the policy's conditions
//	sub   required: the ID of the principal the call is judged for
//	exp   required, at most MaxLifetime away; iat and nbf are checked if present
//	aud   required when TaskOptions.Audience is set, else refused
//	iss   checked when TaskOptions.Issuer is set
//	sid   optional: the MCP session the token is bound to
//	session  optional: the guard session of a request that comes with no
//	      MCP session (protocol 2026-07-28, a stateless server), 1 to 256
//	      bytes; refused on a request that has one (bind it with sid)
//
// A member of task not listed, or of the wrong type, refuses the token; so
// do duplicate claims, claims in other letter case than their names
// ("EXP"), and tokens over 16 KiB. The signature is checked as by
// [JWTVerifier]: by one of the verifier's keys, with an algorithm its key
// type allows — never "none", never HMAC. Signing matters because task
// attrs can make conditions allow what they would otherwise ask about or
// deny (a recipient the user named): whoever writes requests — possibly a
// compromised client or the model's output — must not be able to choose
// them.
//
// Create one with NewTaskVerifier; the zero value and nil accept nothing.
// A TaskVerifier is safe for concurrent use.
type TaskVerifier struct {
	v           *JWTVerifier
	audience    string
	maxLifetime time.Duration
	leeway      time.Duration
	now         func() time.Time
}

// NewTaskVerifier returns a verifier of task tokens signed by one of keys
// (from [LoadJWTKeys], [ParseJWKS] or [ParsePEMKeys]).
func NewTaskVerifier(keys []JWTKey, opts TaskOptions) (*TaskVerifier, error) {
	if len(keys) == 0 {
		return nil, errors.New("guardmcp: task verifier needs at least one key")
	}
	if opts.MaxLifetime < 0 {
		return nil, errors.New("guardmcp: task verifier: negative MaxLifetime")
	}
	v, methods, err := newKeyVerifier(keys)
	if err != nil {
		return nil, err
	}
	tv := &TaskVerifier{v: v, audience: opts.Audience, maxLifetime: opts.MaxLifetime,
		leeway: leeway(opts.Leeway), now: time.Now}
	if tv.maxLifetime == 0 {
		tv.maxLifetime = DefaultTaskLifetime
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithLeeway(tv.leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithStrictDecoding(),
		jwt.WithTimeFunc(func() time.Time { return tv.now() }),
	}
	if opts.Audience != "" {
		popts = append(popts, jwt.WithAudience(opts.Audience))
	}
	if opts.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(opts.Issuer))
	}
	v.parser = jwt.NewParser(popts...)
	return tv, nil
}

// Verify checks token for a call judged for the principal with ID
// principal in the MCP session session ("" for none), and returns its
// task. The error says, in words a model can read after the package name,
// why a token is refused.
func (tv *TaskVerifier) Verify(ctx context.Context, token, principal, session string) (scope.Task, error) {
	t, _, err := tv.VerifySession(ctx, token, principal, session)
	return t, err
}

// VerifySession is Verify, and also returns the token's session claim
// ("" for none): the guard session of a request that comes with no MCP
// session of its own. A token with a session claim is refused when
// session is not "".
func (tv *TaskVerifier) VerifySession(ctx context.Context, token, principal, session string) (scope.Task, string, error) {
	if tv == nil || tv.v == nil || tv.v.parser == nil {
		return scope.Task{}, "", errors.New("guardmcp: no task verifier")
	}
	if len(token) > maxTokenBytes {
		return scope.Task{}, "", fmt.Errorf("guardmcp: the task token is longer than %d bytes", maxTokenBytes)
	}
	var c taskClaims
	if _, err := tv.v.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) { return tv.v.keyFunc(ctx, t) }); err != nil {
		return scope.Task{}, "", fmt.Errorf("guardmcp: the task token is not valid: %w", jwtError(err))
	}
	t, err := c.check(tv, principal, session)
	if err != nil {
		return scope.Task{}, "", err
	}
	own, err := c.session(session)
	if err != nil {
		return scope.Task{}, "", err
	}
	return t, own, nil
}

// session returns the token's session claim, checked against the
// request's own session.
func (c *taskClaims) session(session string) (string, error) {
	v, ok := c.m["session"]
	if !ok {
		return "", nil
	}
	s, isStr := v.(string)
	switch {
	case !isStr || s == "" || len(s) > maxTaskIDBytes:
		return "", fmt.Errorf("guardmcp: the task token's session claim is not a string of 1 to %d bytes", maxTaskIDBytes)
	case session != "":
		return "", errors.New("guardmcp: the task token names a session, and the call has an MCP session of its own (bind the token to it with sid instead)")
	}
	return s, nil
}

// taskClaims are the claims of a task token, decoded strictly.
type taskClaims struct{ m map[string]any }

// UnmarshalJSON decodes the claims with the safe decoder: duplicate
// claims, claims whose names fold alike ("exp", "EXP") and inexact
// numbers are refused.
func (c *taskClaims) UnmarshalJSON(b []byte) error {
	m, err := safejson.DecodeArguments(b, safejson.Limits{MaxBytes: maxTokenBytes, MaxDepth: 16, MaxElements: 4096})
	if err != nil {
		return err
	}
	c.m = m
	return nil
}

func (c *taskClaims) date(name string) (*jwt.NumericDate, error) {
	v, ok := c.m[name]
	if !ok {
		return nil, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return nil, fmt.Errorf("claim %s is not a number", name)
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) || math.Abs(f) > 1e15 {
		return nil, fmt.Errorf("claim %s is not a time", name)
	}
	sec, frac := math.Modf(f)
	return jwt.NewNumericDate(time.Unix(int64(sec), int64(frac*1e9))), nil
}

func (c *taskClaims) str(name string) (string, error) {
	v, ok := c.m[name]
	if !ok {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("claim %s is not a string", name)
	}
	return s, nil
}

// GetExpirationTime implements jwt.Claims.
func (c *taskClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.date("exp") }

// GetIssuedAt implements jwt.Claims.
func (c *taskClaims) GetIssuedAt() (*jwt.NumericDate, error) { return c.date("iat") }

// GetNotBefore implements jwt.Claims.
func (c *taskClaims) GetNotBefore() (*jwt.NumericDate, error) { return c.date("nbf") }

// GetIssuer implements jwt.Claims.
func (c *taskClaims) GetIssuer() (string, error) { return c.str("iss") }

// GetSubject implements jwt.Claims.
func (c *taskClaims) GetSubject() (string, error) { return c.str("sub") }

// GetAudience implements jwt.Claims.
func (c *taskClaims) GetAudience() (jwt.ClaimStrings, error) {
	switch a := c.m["aud"].(type) {
	case nil:
		if _, ok := c.m["aud"]; ok {
			return nil, errors.New("claim aud is null")
		}
		return nil, nil
	case string:
		return jwt.ClaimStrings{a}, nil
	case []any:
		out := make(jwt.ClaimStrings, 0, len(a))
		for _, e := range a {
			s, ok := e.(string)
			if !ok {
				return nil, errors.New("claim aud holds a value that is not a string")
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, errors.New("claim aud is neither a string nor an array of strings")
}

// check checks what the parser does not: the subject, the lifetime, the
// audience when none is expected, the session and the task itself.
func (c *taskClaims) check(tv *TaskVerifier, principal, session string) (scope.Task, error) {
	sub, err := c.GetSubject()
	if err != nil || sub == "" {
		return scope.Task{}, errors.New("guardmcp: the task token has no sub claim naming the principal")
	}
	if sub != principal {
		return scope.Task{}, errors.New("guardmcp: the task token was issued for another principal")
	}
	exp, _ := c.GetExpirationTime() // required and checked by the parser
	iat, _ := c.GetIssuedAt()
	if exp == nil {
		return scope.Task{}, errors.New("guardmcp: the task token has no exp claim")
	}
	if exp.Sub(tv.now()) > tv.maxLifetime+tv.leeway || (iat != nil && exp.Sub(iat.Time) > tv.maxLifetime) {
		return scope.Task{}, fmt.Errorf("guardmcp: the task token is valid for longer than %v; a task token must be short-lived", tv.maxLifetime)
	}
	aud, err := c.GetAudience()
	if err != nil {
		return scope.Task{}, fmt.Errorf("guardmcp: the task token is not valid: %w", jwtError(err))
	}
	if tv.audience == "" && len(aud) > 0 {
		return scope.Task{}, errors.New("guardmcp: the task token is addressed to an audience, and this server has none configured for tasks")
	}
	if v, ok := c.m["sid"]; ok {
		sid, isStr := v.(string)
		switch {
		case !isStr || sid == "":
			return scope.Task{}, errors.New("guardmcp: the task token's sid claim is not a session id")
		case session == "":
			return scope.Task{}, errors.New("guardmcp: the task token is bound to an MCP session, and the call has none")
		case sid != session:
			return scope.Task{}, errors.New("guardmcp: the task token is bound to another MCP session")
		}
	}
	raw, ok := c.m["task"]
	if !ok {
		return scope.Task{}, errors.New("guardmcp: the task token has no task claim")
	}
	t, err := taskOf(raw)
	if err != nil {
		return scope.Task{}, fmt.Errorf("guardmcp: the task token's task claim %w", err)
	}
	return t, nil
}

// taskOf converts the task claim, accepting exactly its four members
// with their types.
func taskOf(raw any) (scope.Task, error) {
	obj, ok := raw.(map[string]any)
	if !ok {
		return scope.Task{}, errors.New("is not an object")
	}
	var t scope.Task
	for k, v := range obj {
		switch k {
		case "id":
			id, ok := v.(string)
			if !ok || id == "" || len(id) > maxTaskIDBytes {
				return scope.Task{}, fmt.Errorf("has an id that is not a string of 1 to %d bytes", maxTaskIDBytes)
			}
			t.ID = id
		case "scopes", "tools":
			list, err := stringList(v)
			if err != nil {
				return scope.Task{}, fmt.Errorf("has %s that %w", k, err)
			}
			if k == "scopes" {
				t.Scopes = list
			} else {
				t.Tools = list
			}
		case "attrs":
			a, ok := v.(map[string]any)
			if !ok {
				return scope.Task{}, errors.New("has attrs that are not an object")
			}
			t.Attrs = a
		default:
			return scope.Task{}, fmt.Errorf("has a member %q that is not one of id, scopes, tools and attrs", k)
		}
	}
	if t.ID == "" {
		return scope.Task{}, errors.New("has no id")
	}
	return t, nil
}

// stringList converts a JSON array of strings; an empty array is an empty,
// not nil, list: it keeps nothing.
func stringList(v any) ([]string, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, errors.New("are not an array of strings")
	}
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		s, ok := e.(string)
		if !ok {
			return nil, errors.New("are not an array of strings")
		}
		out = append(out, s)
	}
	return out, nil
}

// WithTaskVerifier makes the guard read a task from the _meta of every
// tools/call, resources/read and prompts/get request, under
// [TaskMetaKey], and verify it with v: a valid token narrows the request
// to its task (toolguard.WithTask: it can only remove privilege, and
// records carry the task's id). The token's sub must be the principal the
// request is judged for, and its sid, if it has one, the request's MCP
// session (its Mcp-Session-Id over streamable HTTP; over stdio, where
// each process is one session, leave sid out). A request that has no MCP
// session (protocol 2026-07-28, where sessions are gone, or a stateless
// server) takes the guard session its token's session claim names,
// TaskSessionPrefix and the claim, so that flow rules judge the requests
// of one conversation together; without the claim it belongs to no
// session. The claim is signed like the rest: the model cannot move a
// call into a session of its choosing, and leaving the token out leaves
// the call in no session, where flow-reading tools are denied.
//
// A request whose task cannot be accepted is denied, recorded, and never
// reaches the tool, the resource or the prompt: a token that is invalid,
// expired, for another principal or session, or malformed; a value under
// TaskMetaKey that is not a string; and any other _meta key containing
// "agentguard" in any letter case ("io.agentguard/Task",
// "agentguard/task"), since its sender meant to narrow the request and
// it would otherwise run unnarrowed. Without WithTaskVerifier (or with a
// nil v) every request carrying TaskMetaKey is denied the same way: the
// sender asked for narrowing that cannot be checked. Lists (tools/list,
// resources/list, prompts/list) do not read _meta.
//
// The proxy does not forward TaskMetaKey upstream, and an in-process
// handler gets its request with TaskMetaKey removed from _meta (the rest
// of _meta is kept).
func WithTaskVerifier(v *TaskVerifier) Option {
	return func(o *options) { o.tasks = v }
}

// withoutTask returns meta without the task token, for the handler
// (taskmeta.Without); a _meta left with nothing in it becomes nil.
func withoutTask(meta *mcp.Meta) *mcp.Meta {
	if meta == nil {
		return nil
	}
	if _, ok := meta.AdditionalFields[TaskMetaKey]; !ok {
		return meta
	}
	out := *meta
	out.AdditionalFields = taskmeta.Without(meta.AdditionalFields)
	if out.AdditionalFields == nil && out.ProgressToken == nil {
		return nil
	}
	return &out
}

// withTask narrows ctx to the task the request's _meta carries, or marks
// it refused. It runs after withSession, so that a token bound to a
// session is checked against the request's.
func (m *middleware) withTask(ctx context.Context, meta *mcp.Meta) context.Context {
	var fields map[string]any
	if meta != nil {
		fields = meta.AdditionalFields
	}
	var v taskmeta.Verifier
	if m.tasks != nil {
		v = m.tasks
	}
	sid, _ := toolguard.SessionFrom(ctx)
	return taskmeta.Narrow(ctx, fields, v, sid)
}

// TaskSessionPrefix begins the guard session of a request that has no
// MCP session and whose task token names one (its session claim), so that
// such sessions never meet MCP sessions of the same id.
const TaskSessionPrefix = taskmeta.SessionPrefix
