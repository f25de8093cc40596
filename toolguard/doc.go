// Package toolguard puts tools behind a guard: each call's arguments are
// decoded strictly and validated against the tool's JSON Schema, the policy
// decides (package scope), a human approves where a rule says ask, rate
// limits are taken, and a decision record is written to the audit sink —
// before the tool runs. Anything that fails on the way denies the call.
//
// # Using a guard
//
//	p, err := scope.Load("policy.yaml")
//	log, err := audit.OpenFile("decisions.jsonl", audit.FileOptions{Sync: audit.SyncEachRecord})
//	g, err := toolguard.New(p, toolguard.WithSink(log))
//	err = toolguard.Register(g, "read_file", "Read a file", readFile) // schema from the Go type
//	ctx = toolguard.WithPrincipal(ctx, scope.Principal{ID: "support-bot", Scopes: []string{"fs.read"}})
//	out, err := g.Call(ctx, "read_file", json.RawMessage(`{"path":"/w/a.txt"}`))
//
// [Guard.Check] decides without running, asking or recording: for previews
// and tests. Its error is nil only when [Guard.Call] would run the tool
// without asking anyone; where a rule asks for a human, it returns the
// decision (Effect Ask) with an error matching [ErrApprovalRequired], so
// code that runs a tool when Check's error is nil never skips the human.
//
// # Approvals
//
// Where a rule says ask, [Guard.Call] sends an [ApprovalRequest] to the
// [Approver] ([WithApprover]; [Queue] is one for out-of-band answers) and
// waits. The request shows the arguments as the decision record will hold
// them, with [ApprovalRequest.Hidden] saying what is hidden and why. An
// answer approves only if it says yes and names the request's [Binding]:
// the hash of principal, tool, arguments and policy revision. After the
// answer the call is decided again under the policy in force; if that
// policy does not ask the same question (the same rule, for the same
// binding), because [Guard.SetPolicy] replaced it during the wait, the
// approval is void and the call is denied ([ErrApprovalVoid]) and recorded
// so. The handler runs on a private copy of the arguments taken before the
// wait: a caller that reuses its buffer meanwhile cannot change what runs.
//
// # Denials
//
// A denied call returns a *[DeniedError]. Its message is meant for the model
// that made the call: it says which rule or argument was at fault and what
// would be allowed, so the model can correct itself. errors.Is matches
// [ErrDenied] and one of [ErrUnknownTool], [ErrNoPrincipal],
// [ErrTaskRefused], [ErrInvalidArguments], [ErrPolicy], [ErrNotApproved], [ErrRateLimited] or
// [ErrAuditUnavailable]; the [Decision] has everything that was recorded.
//
// # Arguments
//
// Arguments are parsed once, strictly: duplicate keys, invalid UTF-8, lone
// surrogates, trailing data, numbers beyond float64's range, and inputs over
// the size, depth or element limits ([ArgumentLimits]) are rejected, because
// a parser differential between the validator and the tool is an attack.
// The handler receives the very bytes that were checked.
//
// Two more differentials are closed at the same stage, for handlers that
// decode with encoding/json (Register's handlers, mcp-go's typed handlers
// and BindArguments), which matches keys to struct fields ignoring case,
// with Unicode folding ("ſ" U+017F is "s", the Kelvin sign U+212A is "k"):
//
//   - an object, at any depth, with two keys that fold alike
//     ({"path":"/w/a","PATH":"/etc/passwd"}) is denied, whatever the schema;
//   - a key that is not a property the schema declares for its object but
//     folds like one ({"PATH":"/etc/passwd"} against a schema declaring
//     "path" without additionalProperties: false) is denied, at every depth
//     the schema describes;
//   - a key that is not a member the policy's expressions for the tool read
//     by name ([scope.Policy.ArgRefs]: args.path, has(args.opts.mode),
//     args["x"], "x" in args) but folds like one is denied too, also where
//     the schema declares nothing ({"type":"object"}, the default for an
//     empty InputSchema, or an object without properties): {"PATH":...}
//     cannot walk around a rule reading args.path. A member read from a
//     list element or a comprehension variable (args.files.all(f, f.path
//     ...)) counts at every depth. Keys the policy computes at run time
//     (args[principal.attrs.field]) are not known in advance and not
//     checked this way.
//
// So decoding the arguments with encoding/json into a struct gives exactly
// the values found at the exact keys the guard validated and the policy
// judged. Numbers are kept exact, and a number is denied unless a reader of
// its exact decimal and a reader of float64 see the same value (its decimal
// value equals that of the shortest decimal of the nearest float64): the
// policy compares numbers that are not small integers as float64, and
// 100.0000000000000001 would pass "args.amount <= 100" while a tool using
// math/big pays more. 0.1, 1e2 and 9007199254740992 pass;
// 100.0000000000000001, 9007199254740993 and 1e-400 do not. A value that
// needs more digits must be sent as a string; the policy's double() of such
// a string is an error (which never allows) unless the double holds it
// exactly, so a rule cannot compare a rounded amount either way.
//
// # Records
//
// Every call gets one decision record, written before the handler runs; if
// it cannot be written the call is denied with [ErrAuditUnavailable]. An
// allowed call then gets an outcome record (duration, error class, result
// size and digest) with the same id. Values the schema marks writeOnly or
// x-sensitive are replaced in records by keyed digests, and so are the
// parts of strings and object keys that hold a recognisable secret (the
// rest of the string is kept).
//
// # Sessions
//
// [WithSession] puts a call in a session, kept per principal in a
// [SessionStore] ([NewMemorySessions] by default). Before the policy
// decides, the session's summary is loaded; a store error or a session over
// its bounds denies ([StageSession]). Once the call is allowed, it reserves
// its place in the session ([SessionStore.Reserve]), so that calls running
// at once cannot together exceed the session's bound on calls; one that
// does not fit is denied before it runs. When the tool returns, the policy's
// labels for its result and the result's provenance tokens go into the
// session before the result goes back; if that fails the result is withheld
// ([ErrResultWithheld]). [WithTask] narrows one task. An approver may
// answer [Approval.ForSession] to an ask rule with a remember key.
//
// # Handlers
//
// A handler's panic is recovered and reported as [ErrToolPanic];
// [WithToolTimeout] bounds its run time ([ErrToolTimeout]). Both are
// recorded in the outcome record.
package toolguard
