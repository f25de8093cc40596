// Package scope is agentguard's policy model: principals, scopes, grants,
// rules and limits, loaded from YAML or JSON (or built in Go), with every
// condition written in CEL and compiled once, at load.
//
// # Policy files
//
// A policy (format version 1) names scopes, each granting tools under a
// condition; rules that deny or ask on every call; named rate limits; and
// optionally static scopes for known principals:
//
//	version: 1
//	scopes:
//	  fs.read:
//	    description: Read files in the caller's workspace.
//	    grants:
//	      - tools: [read_text_file, list_directory]   # names or globs
//	        when: args.path.isUnder(principal.attrs.workspace)
//	  fs.write:
//	    grants:
//	      - tools: [write_file]
//	        when: args.path.isUnder(principal.attrs.workspace + "/out")
//	        limit: writes
//	rules:                       # deny beats ask beats allow
//	  - name: no-dotenv
//	    effect: deny             # deny | ask
//	    tools: ["*"]
//	    when: has(args.path) && args.path.glob("**/.env*")
//	    message: '"secret files are off limits: " + args.path'
//	    mode: enforce            # enforce | shadow
//	limits:
//	  writes: {rate: 10/m, burst: 5, key: principal.id}
//	principals:
//	  support-bot: [fs.read]
//
// [Load] reads a file, [Parse] a byte slice, [Compile] a [Def] built in
// code. A policy that does not compile fails to load with
// file:line:column and the expression at fault; nothing is skipped.
//
// # Deciding
//
// [Policy.Decide] is pure — no rate limits, no approvals, no I/O (except
// the lstat and readlink calls of a policy that uses resolvesUnder):
//
//   - an unknown principal (empty ID) is denied;
//   - any enforced deny rule whose tools match and whose condition holds
//     denies, with the rule's message as the reason;
//   - otherwise a grant of a scope the principal holds, whose tools match
//     and whose condition holds, allows; with none, the call is denied and
//     the reason says what would be allowed;
//   - a matching ask rule then turns allow into ask (a human must approve);
//   - the allowing grant's limits are returned with their keys evaluated.
//
// A CEL error or cost overrun never allows: in a deny or ask rule it denies,
// in a grant the grant does not match. Errors are returned in the Decision.
// Shadow rules (mode: shadow) are evaluated on every call and reported, never
// enforced. The zero Decision denies.
//
// # CEL
//
// Variables: principal (id, scopes, attrs), tool (name, annotations), args
// (the decoded arguments; numbers are int, uint or double) and call (id,
// time). Besides the standard library and cel-go's strings, lists, sets and
// network (ip, cidr) extensions, policies may use:
//
//	path.isUnder(base)        path is base or below it, after lexical cleaning (see IsUnder)
//	path.resolvesUnder(base)  the same after following symbolic links on this machine (see ResolvesUnder)
//	s.glob(pattern)           glob match: * within a path element, ** across, ? one character;
//	                          a pattern with a "/" sees the cleaned path; a pattern with "://"
//	                          sees the URL in canonical form (see GlobURL), with or without
//	                          its query and a trailing slash ("\\?" in the pattern names a query)
//	url.urlHost()             the canonical host of an absolute URL (see URLHost); also urlHost(url)
//	host.canonicalHost()      the canonical form of a host (see CanonicalHost)
//	host.isLoopbackHost()     127/8, ::1, 0.0.0.0, ::, localhost, *.localhost
//	host.isPrivateHost()      10/8, 172.16/12, 192.168/16, fc00::/7
//	host.isLinkLocalHost()    169.254/16, fe80::/10, link-local multicast
//	host.isInternalHost()     any of these, and every other non-public address or name
//	cidr("10.0.0.0/8").containsIP(args.ip)
//
// isUnder and glob read only the string: a symbolic link inside the
// workspace leads wherever it points. resolvesUnder follows the links that
// exist when the call is decided; a handler that opens the path should still
// open it with package toolguard/fsroot, because the tree can change between
// the decision and the open.
//
// The host functions canonicalise first, the way clients do before they
// connect: "http://2130706433/", "http://[::ffff:127.0.0.1]/" and
// "http://ｌｏｃａｌｈｏｓｔ/" all have the host of "http://127.0.0.1/" or
// "http://localhost/", so a rule such as
//
//	urlHost(args.url).isInternalHost()
//
// holds for every spelling. A host that clients could read in more than
// one way is an error, and an error never allows. A name is judged by its
// form only; what it resolves to is known when the tool connects, where
// toolguard/netguard checks it.
//
// Each expression is type-checked and its cost estimated at load; at run
// time it is stopped at the cost limit ([WithCostLimit]) or when the context
// is cancelled.
//
// # Sessions
//
// The labels section says which labels a tool's result brings into the
// caller's session ([LabelDef]). Rules read the session as session.id,
// session.labels (list of string), session.calls (int) and session.tools
// (map of tool to calls), and ask where a value came from with
// x.from("label"): true when a token of x (see internal/provenance) was in
// the result of an earlier call that carried the label. A deny or ask rule
// that reads the session names the earlier calls it read in
// [Decision.Flow]. The task variable (id, attrs) is the [Task] the call was
// narrowed to. An ask rule may name a remember key; see
// [Decision.RememberKey]. scope stores nothing: the caller hands a
// [Session] view to Decide, and a call without one to a tool whose rules
// read the session is denied.
//
// # Resources and prompts
//
// Grants and rules govern MCP resources and prompts as they govern tools.
// A grant or rule names one kind: tools, resources (globs over canonical
// URIs, see [ParseURI]) or prompts (names or globs):
//
//	scopes:
//	  docs:
//	    grants:
//	      - resources: ["file:///srv/docs/**"]
//	        when: uri.path.isUnder("/srv/docs/" + principal.attrs.team)
//	      - prompts: [summarize, "review-*"]
//	        when: '!has(args.style) || args.style in ["short", "long"]'
//	rules:
//	  - name: no-keys
//	    effect: deny            # rules over resources and prompts only deny
//	    resources: ["**"]
//	    when: uri.path.glob("**/*.pem")
//
// Their conditions see principal, call and, for resources, uri (raw,
// canonical, scheme, host, port, path, query), for prompts, prompt (name)
// and args (the prompt's arguments, a map of strings); tool and the tool
// args are not there, so a condition written for the wrong kind fails to
// load. A rule naming tools, "*" included, never applies to resources or
// prompts. A task narrows the scopes that grant them (its tool list does not
// apply). [Policy.DecideResource] and [Policy.DecidePrompt] decide as
// Decide does (deny rules, then grants, else deny); a URI ParseURI refuses
// is denied. A resource pattern must be written in canonical form (lower
// case scheme and host, no dot segments): one that is not fails to load.
//
// Resources and prompts are denied by default: a policy without a grant
// naming them — every policy written before they were governed — lets no
// one list or read a resource or get a prompt, while its tools are decided
// as before (its revision is unchanged). Serving them to everyone again
// takes an explicit grant (resources: ["**"]), which [Lint] reports as
// too wide (wide-resource-grant); for a server that offers resources or
// prompts, Lint reports a policy that grants none (no-data-grants).
//
// # Revisions
//
// [Policy.Revision] is the SHA-256 of the policy's canonical JSON form.
// Decisions and audit records carry it, so every decision can be traced to
// the exact policy that made it.
package scope
