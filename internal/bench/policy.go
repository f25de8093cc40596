package bench

import (
	"fmt"
	"strings"
)

// Workspace is the directory the file tools are confined to. It is a
// constant of the policy, not a principal attribute, because Cedar has no
// string concatenation and its like operator takes only a literal pattern:
// "path under principal.workspace" cannot be written in Cedar, so no engine
// gets it.
const Workspace = "/workspace"

// AgentguardPolicy is the shared policy as an agentguard scope file.
//
// Paths are compared lexically (equal to the workspace, or starting with it
// and a "/"), as in the other two versions; agentguard's isUnder, which
// also cleans "." and ".." segments, has no counterpart in Rego or Cedar.
// The no-traversal rule stands in for that cleaning in all three.
//
// The limit on fs.read is not part of the comparison (neither OPA nor Cedar
// rate limits); it is here because a real policy has one, and its key is one
// more CEL expression agentguard evaluates on every allowed read.
const AgentguardPolicy = `version: 1
scopes:
  fs.read:
    description: Read files in the workspace.
    grants:
      - tools: [read_file, list_directory]
        when: args.path == "/workspace" || args.path.startsWith("/workspace/")
        limit: reads
  fs.write:
    description: Write files under the workspace's out directory.
    grants:
      - tools: [write_file]
        when: args.path.startsWith("/workspace/out/")
  tickets.read:
    description: Search tickets, a bounded number at a time.
    grants:
      - tools: [search_tickets]
        when: args.limit >= 1 && args.limit <= principal.attrs.max_results
  tickets.write:
    description: Close and comment on tickets.
    grants:
      - tools: [close_ticket, comment_ticket]
rules:
  - name: no-dotenv
    effect: deny
    tools: ["*"]
    when: has(args.path) && args.path.contains("/.env")
  - name: no-traversal
    effect: deny
    tools: ["*"]
    when: has(args.path) && (args.path.contains("/../") || args.path.endsWith("/.."))
limits:
  reads: {rate: 1000000000/s, burst: 1000000000, key: principal.id}
`

// RegoPolicy is the shared policy in Rego (OPA v1 syntax). The query
// data.agentguard.allow is the decision; data.agentguard.deny names the deny
// rules that matched.
const RegoPolicy = `package agentguard

default allow := false

allow if {
	count(deny) == 0
	granted
}

deny contains "no-dotenv" if contains(input.args.path, "/.env")

deny contains "no-traversal" if contains(input.args.path, "/../")

deny contains "no-traversal" if endswith(input.args.path, "/..")

under_workspace(p) if p == "/workspace"

under_workspace(p) if startswith(p, "/workspace/")

granted if {
	input.tool in {"read_file", "list_directory"}
	"fs.read" in input.principal.scopes
	under_workspace(input.args.path)
}

granted if {
	input.tool == "write_file"
	"fs.write" in input.principal.scopes
	startswith(input.args.path, "/workspace/out/")
}

granted if {
	input.tool == "search_tickets"
	"tickets.read" in input.principal.scopes
	input.args.limit >= 1
	input.args.limit <= input.principal.attrs.max_results
}

granted if {
	input.tool in {"close_ticket", "comment_ticket"}
	"tickets.write" in input.principal.scopes
}
`

// CedarPolicy is the shared policy in Cedar. The principal is an Agent
// whose parents are the Scope entities it holds, the action is
// Action::"call", the resource is the Tool, and the arguments are
// context.args. Each (scope, tool) pair is one permit, as a Cedar author
// would write it; the @id annotation names the rule.
const CedarPolicy = `@id("fs.read#read_file")
permit (principal in Scope::"fs.read", action == Action::"call", resource == Tool::"read_file")
when { context.args has path && (context.args.path == "/workspace" || context.args.path like "/workspace/*") };

@id("fs.read#list_directory")
permit (principal in Scope::"fs.read", action == Action::"call", resource == Tool::"list_directory")
when { context.args has path && (context.args.path == "/workspace" || context.args.path like "/workspace/*") };

@id("fs.write#write_file")
permit (principal in Scope::"fs.write", action == Action::"call", resource == Tool::"write_file")
when { context.args has path && context.args.path like "/workspace/out/*" };

@id("tickets.read#search_tickets")
permit (principal in Scope::"tickets.read", action == Action::"call", resource == Tool::"search_tickets")
when { context.args has limit && context.args.limit >= 1 && context.args.limit <= principal.max_results };

@id("tickets.write#close_ticket")
permit (principal in Scope::"tickets.write", action == Action::"call", resource == Tool::"close_ticket");

@id("tickets.write#comment_ticket")
permit (principal in Scope::"tickets.write", action == Action::"call", resource == Tool::"comment_ticket");

@id("no-dotenv")
forbid (principal, action, resource)
when { context.args has path && context.args.path like "*/.env*" };

@id("no-traversal")
forbid (principal, action, resource)
when { context.args has path && (context.args.path like "*/../*" || context.args.path like "*/..") };
`

// Policies is one policy in the three languages.
type Policies struct {
	Agentguard string // scope YAML
	Rego       string
	Cedar      string
}

// Shared returns the shared policy.
func Shared() Policies {
	return Policies{Agentguard: AgentguardPolicy, Rego: RegoPolicy, Cedar: CedarPolicy}
}

// ScaledTool names the i-th tool of a [Scaled] policy.
func ScaledTool(i int) string { return fmt.Sprintf("tool_%05d", i) }

// ScaledScope names the i-th scope of a [Scaled] policy.
func ScaledScope(i int) string { return fmt.Sprintf("scope_%05d", i) }

// Scaled returns a policy with n tools and n scopes: scope i grants tool i
// when the path is in the workspace, and the two deny rules of the shared
// policy apply to every tool.
func Scaled(n int) Policies {
	var ag, rg, cd strings.Builder
	ag.WriteString("version: 1\nscopes:\n")
	rg.WriteString(regoHeader)
	for i := range n {
		t, s := ScaledTool(i), ScaledScope(i)
		fmt.Fprintf(&ag, "  %s:\n    grants:\n      - tools: [%s]\n        when: args.path.startsWith(\"/workspace/\")\n", s, t)
		fmt.Fprintf(&rg, "\ngranted if {\n\tinput.tool == %q\n\t%q in input.principal.scopes\n\tstartswith(input.args.path, \"/workspace/\")\n}\n", t, s)
		fmt.Fprintf(&cd, "@id(%q)\npermit (principal in Scope::%q, action == Action::\"call\", resource == Tool::%q)\nwhen { context.args has path && context.args.path like \"/workspace/*\" };\n\n", s+"#"+t, s, t)
	}
	ag.WriteString(agentguardDenyRules)
	cd.WriteString(cedarDenyRules)
	return Policies{Agentguard: ag.String(), Rego: rg.String(), Cedar: cd.String()}
}

// WithRules returns the shared policy plus k deny rules on read_file, each
// with a condition that is false for paths without "/secret-<i>/", so an
// allowed read evaluates all of them.
func WithRules(k int) Policies {
	p := Shared()
	var ag, rg, cd strings.Builder
	rg.WriteString(p.Rego)
	cd.WriteString(p.Cedar)
	// The rules section comes just before limits: extend it there.
	head, tail, _ := strings.Cut(p.Agentguard, "limits:\n")
	ag.WriteString(head)
	for i := range k {
		fmt.Fprintf(&ag, "  - name: secret-%d\n    effect: deny\n    tools: [read_file]\n    when: args.path.contains(\"/secret-%d/\")\n", i, i)
		fmt.Fprintf(&rg, "\ndeny contains \"secret-%d\" if {\n\tinput.tool == \"read_file\"\n\tcontains(input.args.path, \"/secret-%d/\")\n}\n", i, i)
		fmt.Fprintf(&cd, "\n@id(\"secret-%d\")\nforbid (principal, action == Action::\"call\", resource == Tool::\"read_file\")\nwhen { context.args has path && context.args.path like \"*/secret-%d/*\" };\n", i, i)
	}
	ag.WriteString("limits:\n")
	ag.WriteString(tail)
	return Policies{Agentguard: ag.String(), Rego: rg.String(), Cedar: cd.String()}
}

// KeyedRules returns the shared policy plus k deny rules on read_file,
// each naming one blocked file by its exact path
// ("/workspace/blocked/<i>.txt"), as a blocklist is written. Each engine
// gets the rules in its own idiom: agentguard and OPA index the equality
// on the path, cedar-go evaluates every forbid whose scope matches.
func KeyedRules(k int) Policies {
	p := Shared()
	var ag, rg, cd strings.Builder
	rg.WriteString(p.Rego)
	cd.WriteString(p.Cedar)
	head, tail, _ := strings.Cut(p.Agentguard, "limits:\n")
	ag.WriteString(head)
	for i := range k {
		path := BlockedPath(i)
		fmt.Fprintf(&ag, "  - name: blocked-%d\n    effect: deny\n    tools: [read_file]\n    when: args.path == %q\n", i, path)
		fmt.Fprintf(&rg, "\ndeny contains \"blocked-%d\" if {\n\tinput.tool == \"read_file\"\n\tinput.args.path == %q\n}\n", i, path)
		fmt.Fprintf(&cd, "\n@id(\"blocked-%d\")\nforbid (principal, action == Action::\"call\", resource == Tool::\"read_file\")\nwhen { context.args has path && context.args.path == %q };\n", i, path)
	}
	ag.WriteString("limits:\n")
	ag.WriteString(tail)
	return Policies{Agentguard: ag.String(), Rego: rg.String(), Cedar: cd.String()}
}

// BlockedPath is the file the i-th rule of [KeyedRules] blocks.
func BlockedPath(i int) string { return fmt.Sprintf("/workspace/blocked/%d.txt", i) }

const regoHeader = `package agentguard

default allow := false

allow if {
	count(deny) == 0
	granted
}

deny contains "no-dotenv" if contains(input.args.path, "/.env")

deny contains "no-traversal" if contains(input.args.path, "/../")

deny contains "no-traversal" if endswith(input.args.path, "/..")
`

const agentguardDenyRules = `rules:
  - name: no-dotenv
    effect: deny
    tools: ["*"]
    when: has(args.path) && args.path.contains("/.env")
  - name: no-traversal
    effect: deny
    tools: ["*"]
    when: has(args.path) && (args.path.contains("/../") || args.path.endsWith("/.."))
`

const cedarDenyRules = `@id("no-dotenv")
forbid (principal, action, resource)
when { context.args has path && context.args.path like "*/.env*" };

@id("no-traversal")
forbid (principal, action, resource)
when { context.args has path && (context.args.path like "*/../*" || context.args.path like "*/..") };
`
