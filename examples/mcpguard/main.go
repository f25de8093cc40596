// Command mcpguard puts agentguard in front of any MCP server. It starts
// the upstream server (a command over stdio, or a streamable HTTP URL),
// re-serves its tools, resources and prompts, and runs every tool call
// through the guard: the arguments are validated against the tool's own
// input schema, the policy decides, and a decision record is written to the
// audit log before the call is forwarded.
//
//	mcpguard -lock tools.lock.json -update-lock \
//	    -- npx -y @modelcontextprotocol/server-filesystem /srv/files
//	mcpguard -policy policy.yaml -audit decisions.jsonl -lock tools.lock.json \
//	    -principal support-bot -scopes fs.read -attr workspace=/srv/files \
//	    -- npx -y @modelcontextprotocol/server-filesystem /srv/files
//
// mcpguard -h prints the flags and more examples. A mistake on the command
// line is reported once, with exit status 2; any other failure exits 1.
// At start, a tool that no scope of the policy can grant is logged as a
// warning: every call to it would be denied.
//
// Without -listen it serves stdio, with the principal given by -principal,
// -scopes and -attr. With -listen it serves streamable HTTP at /mcp; the
// principal is the subject of the request's bearer token when -jwks or
// -jwt-key is given (checked against -audience and -issuer), else the static
// one. The token is never forwarded upstream.
//
// With bearer tokens, mcpguard follows the MCP authorization specification
// (guardmcp.ProtectedResource): every request without a valid token, of
// any method, is answered 401 before any session exists, with a challenge
// naming the Protected Resource Metadata that mcpguard serves at
// /.well-known/oauth-protected-resource/mcp (and at the root form), which
// names -issuer as the authorization server. -resource-url is the URL
// clients reach /mcp at (by default http://<-listen>/mcp on a specific
// address); its canonical form is the audience tokens must carry, unless
// -audience says otherwise. A token without every -require-scopes scope is
// answered 403 insufficient_scope. Tokens in the query string are refused.
// A session belongs to the principal whose token opened it: another
// principal's requests with its id get 404.
//
// Over HTTP a request whose Origin header is not an -allow-origin origin
// (or, on a loopback address, a loopback page) is refused with 403, and so
// is one that reached a loopback address under a Host name that is neither
// loopback, the -resource-url host nor an -allow-host (DNS rebinding).
// mcpguard refuses to serve the static -principal over HTTP on an address
// that is not loopback, since anyone who can reach it would act as that
// principal, unless -insecure-static-principal is given.
//
// Instead of a key file, -discover-keys finds the authorization server's
// JWKS URL in the metadata of -issuer (RFC 8414, then OpenID Connect
// discovery), and -jwks-url names it directly: the keys are fetched at
// start (mcpguard does not start without them), refreshed every
// -jwks-refresh, and once more when a token names an unknown key id — at
// most once per -jwks-unknown-kid. -claim-subject, -claim-scopes and
// -claim-attr say which claims become the principal's ID, scopes and
// attributes (guardmcp.ClaimMapping).
//
// Each client session gets an upstream session of its own
// (guardmcp.DialProxy): for a command, a process of its own; for a URL, an
// MCP session of its own. Its logging level, resource subscriptions and
// roots are its own, and the upstream's log messages, resource updates,
// progress and requests (sampling, elicitation, and with -forward-roots
// roots) reach that client only. Upstream, mcpguard declares only the
// capabilities the client declared, so a client is offered only the tools
// its own session lists. Cancellations are passed on; the upstream's
// JSON-RPC errors reach the client with their own code and message. At
// most -max-sessions clients are served at once (a client beyond the bound
// gets an error saying so); an upstream session without requests for
// -session-idle is closed, and so is one whose client has left. An upstream
// session belongs to the principal that opened it: a request that names
// another principal's session id is refused.
//
// Over HTTP a request body may be at most -max-request bytes (4 MiB by
// default, room for the guard's 1 MiB of arguments and the JSON-RPC
// envelope): a larger one is refused before it is decoded, so memory stays
// bounded whoever sends it. A client that closes its end of stdio ends the
// session; mcpguard then exits cleanly rather than dying of SIGPIPE.
//
// With -lock, the upstream's tools are pinned: a tool that is new or changed
// since the lock file was written is hidden and every call to it denied
// (and recorded) until the lock is rewritten on purpose. mcpguard
// -update-lock (with -lock and the upstream; -policy, if given, is checked
// against the tools) writes the lock from the upstream's current tools,
// prints every tool with what changed since the previous lock (added,
// changed, removed, unchanged) and exits. Without a lock file mcpguard
// refuses to start, says how to write one, and leaves no file behind.
//
// The upstream's tool definitions — descriptions, titles, and the
// descriptions, defaults, enums and property names of their schemas — are
// scanned for tool poisoning (guardmcp.ScanTools) when they are listed and
// when the lock is written: hidden instruction tags and phrasing, invisible
// Unicode, instructions aimed at other tools, exfiltration to URLs or
// e-mail addresses, secret file paths, encoded blobs, overly long text.
// Every finding is logged; -update-lock also writes the findings into the
// lock and prints them with each tool, and -bom puts them into the BOM. A
// tool with a finding of -hide-flagged severity or worse (high by default;
// none to only report) is hidden and every call to it denied and recorded.
//
// Where a policy rule says ask, -approve elicit (the default) asks the human
// at the calling client through MCP elicitation: the call runs only if they
// approve it. A client that cannot be asked (it did not declare the
// elicitation capability) is denied, with a reason saying so. -approve none
// denies every call that needs approval.
//
// Policies that read the session (labels, flow rules, x.from, remember)
// see each client on its own: over HTTP each client's MCP session
// (Mcp-Session-Id) is a guard session, over stdio each run of mcpguard is
// one. A client without an MCP session (protocol 2026-07-28) is denied the
// tools whose policy reads the session.
//
// The host application can narrow a request to one task (one user
// request) by attaching a task token, signed with its key, under
// _meta["io.agentguard/task"] of tools/call, resources/read or
// prompts/get (guardmcp.TaskVerifier says which claims). -task-key or
// -task-jwks gives the key that verifies it, and -task-audience the
// audience it must carry (without it, a token carrying one is refused);
// -task-max-lifetime (default 1h) is the longest a token may be valid.
// A valid task only removes privilege, and records carry its id. A
// request whose task is refused — and, without a task key, every request
// that carries one — is denied and recorded, and the upstream never sees
// it; so is a request with any other _meta key containing "agentguard".
// The token is not forwarded upstream.
//
// Session state lives in this process by default (-session-store memory);
// -session-store redis://host:port/db keeps it in Redis, so that replicas
// behind one load balancer share it. While Redis is down, or slower than
// -session-store-timeout, calls in sessions are denied: there is no
// fail-open mode, and mcpguard does not start if Redis does not answer.
// -session-ttl, -session-max-calls, -session-max-labels and
// -session-max-values bound each session; a session over a bound, or
// expired, is denied with the reason, never emptied.
//
// With -functions FILE, rules may call functions answered over HTTP, for
// live data a policy file cannot hold (a balance, who owns a file). The
// file (YAML or JSON) declares each function's name, parameter and result
// types, URL, and optionally its timeout (1s) and cost (100):
//
//	functions:
//	  - name: balance
//	    params: [string]
//	    result: double
//	    url: https://bank.internal/agentguard/balance
//	    timeout: 200ms
//
// A rule such as double(args.amount) <= balance(principal.id) then POSTs
// {"function":"balance","args":["alice"]} to the URL, within the timeout,
// and expects 200 with {"result": 120.5}. Redirects are not followed and
// answers are bounded to 1 MiB. Any other status, an answer that is not
// strict JSON (duplicate keys, trailing data), a missing result, or one
// that does not fit the declared type exactly (an int is an integral
// number within range) fails the function's call, so the rule does not
// allow: the denial names the function, and the cause is logged. The file
// is read once, at start; a mistake in it stops mcpguard with a usage
// error. Reloaded policies get the same functions.
//
// On SIGHUP mcpguard reloads the policy file; with -watch it also polls the
// file for changes. A policy that fails to load is logged and the one in
// force stays. After a reload, connected clients are told that the tool list
// changed (notifications/tools/list_changed), since what each principal may
// see can differ.
//
// With -bom FILE, mcpguard writes a CycloneDX 1.6 AI-BOM (package aibom)
// once the upstream's tools are listed: the upstream server, every tool it
// lists with its digest and lock state, and the policy in force with its
// revision. It is written once, at start-up, and not rewritten when the
// policy is reloaded. To write only the BOM, give mcpguard an empty
// standard input (< /dev/null): it exits when stdin ends.
//
// -sync says when the audit log is fsynced. With each, the default, a
// call's decision record is on stable storage before the call is forwarded
// upstream: one fsync on each call's path, shared by concurrent calls
// (group commit). The outcome record is written to the file as soon as the
// call returns, in chain order, and made durable by the next fsync — the
// next call's, a background one at most -sync-interval later, or the one at
// exit — so a killed mcpguard loses no record it wrote, and a machine crash
// at most the outcomes (and the decisions of calls not yet forwarded)
// written since the last fsync. -sync-outcomes makes each outcome wait for
// its own fsync too. -sync interval fsyncs every -sync-interval and -sync
// none only at exit: a machine crash may then lose decisions too.
//
// On SIGINT or SIGTERM mcpguard stops serving, stops the upstream and closes
// the audit log, which then verifies (audit.Verify).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentguard/agentguard/audit"
	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

type attrFlag map[string]any

func (a attrFlag) String() string { return fmt.Sprint(map[string]any(a)) }
func (a attrFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return errors.New("want key=value")
	}
	a[k] = v
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// A client that has gone away makes writes fail with EPIPE, which ends
	// the session, instead of killing the process.
	signal.Ignore(syscall.SIGPIPE)
	code := exitCode(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// exitCode runs mcpguard and returns its exit status: 0 on success and for
// -h, 2 for a usage error (after saying what is wrong, once), 1 otherwise.
func exitCode(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	err := run(ctx, args, stdin, stdout, stderr)
	var ue usageError
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsageShown):
		return 2
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "mcpguard: %v\nRun 'mcpguard -h' for usage.\n", err)
		return 2
	}
	fmt.Fprintln(stderr, "mcpguard:", err)
	return 1
}

// usageError is a mistake on the command line.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// errUsageShown: the usage was printed instead of an error (no arguments).
var errUsageShown = errors.New("usage shown")

const synopsis = `Usage:
  mcpguard [flags] -- command [args...]   guard an MCP server started as a command (stdio)
  mcpguard [flags] -upstream URL          guard a streamable HTTP MCP server

mcpguard puts agentguard in front of an MCP server. It serves the upstream's
tools, resources and prompts, and runs every tool call through the policy:
the arguments are checked against the tool's input schema, the policy
decides, and a decision record is written to the audit log before the call
is forwarded. With -lock, tools that are new or changed since they were
pinned are hidden until the lock is updated on purpose.

Examples:
  # Pin the upstream's tools (first run; again after reviewing a change).
  # Prints the tools and what changed, writes the lock and exits.
  mcpguard -lock tools.lock.json -update-lock \
      -- npx -y @modelcontextprotocol/server-filesystem /srv/w

  # Serve one principal over stdio (as the command an MCP client starts).
  mcpguard -policy policy.yaml -audit decisions.jsonl -lock tools.lock.json \
      -principal support-bot -scopes fs.read -attr workspace=/srv/w \
      -- npx -y @modelcontextprotocol/server-filesystem /srv/w

  # Serve streamable HTTP at /mcp; principals from bearer tokens.
  mcpguard -policy policy.yaml -audit decisions.jsonl -listen 127.0.0.1:8080 \
      -jwks keys.json -audience mcpguard -issuer https://id.example.com \
      -upstream http://127.0.0.1:3001/mcp

  # The same with the keys fetched from the authorization server's JWKS,
  # found in its metadata, and refreshed when it rotates them.
  mcpguard -policy policy.yaml -audit decisions.jsonl -listen 127.0.0.1:8080 \
      -discover-keys -issuer https://id.example.com/realms/r1 -audience mcpguard \
      -upstream http://127.0.0.1:3001/mcp

  # Let the host application narrow requests to a task it signed
  # (_meta "io.agentguard/task"; see the package documentation).
  mcpguard -policy policy.yaml -audit decisions.jsonl -principal assistant \
      -scopes mail -task-key app-task-key.pem -- ./mail-server

  # Behind a TLS reverse proxy: tokens for https://mcp.example.com/mcp
  # (their audience), OAuth clients sent to the issuer by the 401.
  mcpguard -policy policy.yaml -audit decisions.jsonl -listen 127.0.0.1:8080 \
      -discover-keys -issuer https://id.example.com/realms/r1 \
      -resource-url https://mcp.example.com/mcp -require-scopes mcp:tools \
      -allow-origin https://app.example.com -upstream http://127.0.0.1:3001/mcp

Flags:
`

// printUsage writes the synopsis, the examples and the flags to w.
func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, synopsis)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

type config struct {
	policy, audit, lock, listen, upstream string
	updateLock                            bool
	principal, scopes                     string
	attrs                                 attrFlag
	jwks, jwtKey, audience, issuer        string
	callTimeout                           time.Duration
	approve                               string
	approvalTimeout, watch                time.Duration
	maxRequest                            int64
	forwardRoots                          bool
	maxSessions                           int
	sessionIdle                           time.Duration
	command                               []string
	bom                                   string
	poison                                poisonConfig
	auth                                  authConfig
	httpAuth                              httpAuthConfig
	sse                                   sseConfig
	sync                                  audit.SyncMode
	syncInterval                          time.Duration
	syncOutcomes                          bool
	maxPolicy                             int
	sessionStore                          sessionStoreConfig
	functionsFile                         string
	functions                             []*httpFunction
	task                                  taskConfig
}

func parse(args []string, stdout, stderr io.Writer) (*config, error) {
	c := &config{attrs: attrFlag{}}
	fs := flag.NewFlagSet("mcpguard", flag.ContinueOnError)
	// Errors are reported once, by the caller; -h prints the usage to
	// stdout.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&c.policy, "policy", "", "policy file (required, except with -update-lock)")
	fs.StringVar(&c.audit, "audit", "", "decision log, JSON Lines (required, except with -update-lock)")
	fs.StringVar(&c.lock, "lock", "", "tool lock file: pin the upstream's tools")
	fs.BoolVar(&c.updateLock, "update-lock", false, "write the tool lock from the upstream's current tools, print them and what changed, and exit")
	fs.StringVar(&c.listen, "listen", "", "serve streamable HTTP at this address (/mcp) instead of stdio")
	fs.StringVar(&c.upstream, "upstream", "", "streamable HTTP URL of the upstream server (instead of a command after --)")
	fs.StringVar(&c.principal, "principal", "", "static principal ID (stdio, or HTTP without tokens)")
	fs.StringVar(&c.scopes, "scopes", "", "comma-separated scopes of -principal")
	fs.Var(c.attrs, "attr", "attribute key=value of -principal (repeatable)")
	fs.StringVar(&c.jwks, "jwks", "", "JWKS file with the keys of bearer tokens")
	fs.StringVar(&c.jwtKey, "jwt-key", "", "PEM public key file of bearer tokens")
	fs.StringVar(&c.audience, "audience", "", "required token audience")
	fs.StringVar(&c.issuer, "issuer", "", "required token issuer")
	fs.DurationVar(&c.callTimeout, "call-timeout", 2*time.Minute, "bound on each request forwarded upstream")
	fs.StringVar(&c.approve, "approve", "elicit", "how calls that need approval are decided: elicit (ask the client's user) or none (deny)")
	fs.DurationVar(&c.approvalTimeout, "approval-timeout", 5*time.Minute, "how long a call waits for a human's approval")
	fs.Int64Var(&c.maxRequest, "max-request", 4<<20, "largest HTTP request body accepted, in bytes")
	fs.DurationVar(&c.watch, "watch", 0, "poll the policy file at this interval and reload it when it changes (0: only on SIGHUP)")
	fs.StringVar(&c.bom, "bom", "", "write a CycloneDX 1.6 AI-BOM of the upstream, its tools and the policy to this file once connected")
	c.poison.register(fs)
	c.auth.register(fs)
	c.httpAuth.register(fs)
	c.sse.register(fs)
	fs.Func("sync", "when the audit log is fsynced, `mode`: each (a decision record is durable before its call is forwarded), interval (every -sync-interval) or none (only at exit) (default each)", c.setSync)
	fs.DurationVar(&c.syncInterval, "sync-interval", time.Second, "fsync period of -sync interval, and the longest an outcome record waits for its fsync with -sync each")
	fs.IntVar(&c.maxPolicy, "max-policy-bytes", scope.MaxPolicyBytes, "largest policy accepted, in bytes of its file and of its canonical form")
	fs.StringVar(&c.functionsFile, "functions", "", "YAML or JSON `file` declaring functions the policy's rules may call, each answered by an HTTP endpoint (read once, at start)")
	fs.BoolVar(&c.syncOutcomes, "sync-outcomes", false, "with -sync each, also wait for each outcome record's own fsync before answering (off: an outcome joins the next fsync, at most -sync-interval later, and exit)")
	fs.BoolVar(&c.forwardRoots, "forward-roots", false, "declare roots upstream for each client that declared them, and forward the upstream's roots/list to that client (off: the upstream keeps its own configuration)")
	fs.IntVar(&c.maxSessions, "max-sessions", 32, "most client sessions served at once, each with its own upstream session (for a command upstream, its own process)")
	fs.DurationVar(&c.sessionIdle, "session-idle", 10*time.Minute, "close a client's upstream session after this long without a request")
	c.sessionStore.register(fs)
	c.task.register(fs)
	if len(args) == 0 {
		printUsage(stderr, fs)
		return nil, errUsageShown
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout, fs)
			return nil, err
		}
		return nil, usageError{err}
	}
	c.command = fs.Args()
	if err := c.check(); err != nil {
		return nil, usageError{err}
	}
	if err := c.loadFunctions(); err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// check reports flags that do not go together.
func (c *config) check() error {
	switch {
	case c.maxRequest <= 0:
		return errors.New("-max-request must be a positive number of bytes")
	case c.upstream == "" && len(c.command) == 0:
		return errors.New("give the upstream: -upstream URL, or a command after --")
	case c.upstream != "" && len(c.command) > 0:
		return errors.New("give -upstream or a command, not both")
	case c.updateLock && c.lock == "":
		return errors.New("-update-lock needs -lock")
	case c.updateLock:
		return nil
	case c.policy == "" || c.audit == "":
		return errors.New("-policy and -audit are required")
	case c.jwks != "" && c.jwtKey != "":
		return errors.New("give -jwks or -jwt-key, not both")
	case c.approve != "elicit" && c.approve != "none":
		return errors.New("-approve is elicit or none")
	case c.watch < 0:
		return errors.New("-watch must not be negative")
	case c.maxSessions <= 0:
		return errors.New("-max-sessions must be positive")
	case c.sessionIdle <= 0:
		return errors.New("-session-idle must be positive")
	case c.syncInterval <= 0:
		return errors.New("-sync-interval must be positive")
	}
	if err := c.task.check(); err != nil {
		return err
	}
	return c.sessionStore.check()
}

// setSync parses -sync.
func (c *config) setSync(s string) error {
	switch s {
	case "each":
		c.sync = audit.SyncEachRecord
	case "interval":
		c.sync = audit.SyncInterval
	case "none":
		c.sync = audit.SyncNone
	default:
		return errors.New("want each, interval or none")
	}
	return nil
}

// logOptions are the audit log's options: by default one fsync on a
// call's path, the decision's; the outcome joins the next group commit.
func (c *config) logOptions() audit.FileOptions {
	return audit.FileOptions{Sync: c.sync, Interval: c.syncInterval, DeferOutcomes: !c.syncOutcomes}
}

func (c *config) principalFunc(ctx context.Context, logger *slog.Logger) (guardmcp.PrincipalFunc, error) {
	if c.jwks != "" || c.jwtKey != "" || c.auth.remote() {
		if c.listen == "" {
			return nil, usageErrorf("bearer tokens (-jwks, -jwt-key, -jwks-url, -discover-keys) need -listen")
		}
		if (c.jwks != "" || c.jwtKey != "") && c.auth.remote() {
			return nil, usageErrorf("give a key file (-jwks, -jwt-key) or fetched keys (-jwks-url, -discover-keys), not both")
		}
		if err := c.resolveResource(logger); err != nil {
			return nil, err
		}
		opts, err := c.auth.options(c.audience, c.issuer)
		if err != nil {
			return nil, err
		}
		var v *guardmcp.JWTVerifier
		if c.auth.remote() {
			v, err = c.auth.verifier(ctx, opts, logger)
		} else {
			var keys []guardmcp.JWTKey
			if keys, err = guardmcp.LoadJWTKeys(c.jwks + c.jwtKey); err == nil {
				v, err = guardmcp.NewJWTVerifier(keys, opts)
			}
		}
		if err != nil {
			return nil, err
		}
		c.httpAuth.verifier = v
		return v.PrincipalFunc(), nil
	}
	if c.principal == "" {
		return nil, usageErrorf("-principal (or, with -listen, -jwks / -jwt-key) is required")
	}
	pr := scope.Principal{ID: c.principal, Attrs: c.attrs}
	for _, s := range strings.Split(c.scopes, ",") {
		if s = strings.TrimSpace(s); s != "" {
			pr.Scopes = append(pr.Scopes, s)
		}
	}
	return guardmcp.Static(pr), nil
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (err error) {
	// From the start, a SIGHUP reloads the policy rather than ends the
	// process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	c, err := parse(args, stdout, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	for _, f := range c.functions {
		f.logger = logger
	}
	if c.updateLock {
		return updateLock(ctx, c, stdout, stderr, logger)
	}
	pf, err := c.principalFunc(ctx, logger)
	if err != nil {
		return err
	}
	tasks, err := c.task.option()
	if err != nil {
		return err
	}
	p, err := scope.Load(c.policy, c.policyOptions()...)
	if err != nil {
		return policyLoadError(err)
	}
	front, err := c.newHTTPFront(p)
	if err != nil {
		return err
	}
	// The session store and the lock are checked before the audit log is
	// opened, so that a first run leaves no empty log behind.
	sessions, closeSessions, err := c.sessionStore.option(ctx)
	if err != nil {
		return err
	}
	defer closeSessions()
	if err := checkLock(c.lock); err != nil {
		return err
	}
	log, err := openLog(c.audit, c.logOptions())
	if err != nil {
		return err
	}
	defer func() {
		if cerr := log.closeAfter(err); cerr != nil && err == nil {
			err = cerr
		}
	}()
	gopts := []toolguard.Option{toolguard.WithSink(log), toolguard.WithLogger(logger), sessions}
	if c.approve == "elicit" {
		// The approver asks the session of the call being decided, on the
		// proxy's server (known only once NewProxy has built it).
		gopts = append(gopts, toolguard.WithApprover(guardmcp.ElicitationApprover(nil)),
			toolguard.WithApprovalTimeout(c.approvalTimeout))
	}
	g, err := toolguard.New(p, gopts...)
	if err != nil {
		return err
	}

	px, err := guardmcp.DialProxy(ctx, c.upstreamSpec(stderr), g,
		c.poison.option(),
		guardmcp.WithLogger(logger),
		guardmcp.WithAuditSink(log),
		guardmcp.WithLock(c.lock, false),
		guardmcp.WithCallTimeout(c.callTimeout),
		guardmcp.WithMaxSessions(c.maxSessions),
		guardmcp.WithSessionIdle(c.sessionIdle),
		tasks,
	)
	if err != nil {
		return err
	}
	defer px.Close()
	if c.bom != "" {
		if err := writeBOM(c.bom, g, px); err != nil {
			return err
		}
	}
	log.started = true

	reloadCtx, stopReload := context.WithCancel(ctx)
	defer stopReload()
	go reloadOnSignal(reloadCtx, hup, g, px.Server(), c.policy, logger, c.policyOptions()...)
	if c.watch > 0 {
		go g.WatchPolicy(reloadCtx, c.policy, c.watch, func(p *scope.Policy, err error) {
			reported(px.Server(), logger, "watch", p, err)
		}, c.policyOptions()...)
	}

	if c.listen == "" {
		return serveStdio(ctx, px.Server(), pf, stdin, stdout)
	}
	return serveHTTP(ctx, px.Server(), front, pf, c.sse, c.listen, c.maxRequest, stderr)
}

// reloadOnSignal reloads the policy from disk on every signal on hup until
// ctx is done.
func reloadOnSignal(ctx context.Context, hup <-chan os.Signal, g *toolguard.Guard, s *server.MCPServer, path string, logger *slog.Logger, opts ...scope.Option) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			p, err := g.ReloadPolicy(path, opts...)
			reported(s, logger, "SIGHUP", p, err)
		}
	}
}

// reported logs a reload and, when a new policy is in force, tells the
// connected clients that their tool lists may have changed.
func reported(s *server.MCPServer, logger *slog.Logger, trigger string, p *scope.Policy, err error) {
	if err != nil {
		logger.Error("mcpguard: policy reload failed; the policy in force stays", "trigger", trigger, "err", err)
		return
	}
	if p == nil {
		return
	}
	logger.Info("mcpguard: policy reloaded", "trigger", trigger, "revision", p.Revision())
	s.SendNotificationToAllClients(string(mcp.MethodNotificationToolsListChanged), nil)
}

// upstreamSpec says how to reach the upstream. The proxy builds the
// upstream client itself, so that the upstream's sampling, elicitation and
// roots requests reach the client whose tool call they belong to.
func (c *config) upstreamSpec(stderr io.Writer) guardmcp.Upstream {
	up := guardmcp.Upstream{
		// The proxy initializes the upstream itself, and forwards sampling
		// and elicitation, which only the legacy protocol versions have.
		//lint:ignore SA1019 the proxy needs the initialize handshake and server→client requests
		ClientOptions: []client.ClientOption{client.WithLegacyProtocolOnly()},
		ForwardRoots:  c.forwardRoots,
	}
	if c.upstream != "" {
		up.URL = c.upstream
		up.HTTPOptions = []transport.StreamableHTTPCOption{transport.WithHTTPTimeout(c.callTimeout)}
	} else {
		up.Command = c.command
		up.Stderr = stderr
	}
	return up
}

// limitBody refuses a request whose body is larger than max bytes with 413
// before the MCP server reads it (a declared length is checked up front; a
// chunked body is cut off at the bound, and the server answers with a
// JSON-RPC parse error).
func limitBody(h http.Handler, max int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			http.Error(w, fmt.Sprintf("request body of %d bytes is over the limit of %d", r.ContentLength, max), http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, max)
		h.ServeHTTP(w, r)
	})
}

func serveStdio(ctx context.Context, s *server.MCPServer, pf guardmcp.PrincipalFunc, stdin io.Reader, stdout io.Writer) error {
	stdio := server.NewStdioServer(s)
	stdio.SetContextFunc(guardmcp.StdioContextFunc(pf))
	err := stdio.Listen(ctx, stdin, stdout)
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE) {
		return nil
	}
	return err
}

func serveHTTP(ctx context.Context, s *server.MCPServer, front *httpFront, pf guardmcp.PrincipalFunc, sse sseConfig, addr string, maxRequest int64, stderr io.Writer) error {
	h := server.NewStreamableHTTPServer(s, front.serverOptions(pf)...)
	// The poller sits behind the Origin, token and session checks: a
	// stream is resumed only by its session, bound to its principal.
	polled, closePoller, err := sse.wrap(h, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		return err
	}
	defer closePoller()
	mux := http.NewServeMux()
	mux.Handle("/mcp", front.handler(limitBody(polled, maxRequest)))
	front.mount(mux)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "mcpguard: listening on http://%s/mcp\n", ln.Addr())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	closePoller()
	_ = h.Shutdown(sctx)
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
