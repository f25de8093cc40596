package bench

import "fmt"

// Principal is a caller: the scopes it holds and one numeric attribute.
type Principal struct {
	ID         string
	Scopes     []string
	MaxResults int64
}

// Call is one tool call and what every engine must decide for it.
type Call struct {
	Name      string // a short label, used in benchmark and test names
	Principal Principal
	Tool      string
	Args      string // JSON object
	// Allow is the expected decision; DenyRule names the deny rule that
	// must deny it, empty when it is allowed or denied for want of a grant.
	Allow    bool
	DenyRule string
	// Why says which part of the policy decides.
	Why string
}

// The principals of the call table.
var (
	SupportBot = Principal{ID: "support-bot", Scopes: []string{"fs.read", "tickets.read"}, MaxResults: 50}
	Builder    = Principal{ID: "builder", Scopes: []string{"fs.read", "fs.write", "tickets.write"}, MaxResults: 10}
)

// Calls is the shared table of calls: allowed, denied for want of a scope,
// denied by a deny rule and denied by a grant's condition.
var Calls = []Call{
	{Name: "read-allowed", Principal: SupportBot, Tool: "read_file", Args: `{"path":"/workspace/docs/guide.md"}`, Allow: true, Why: "fs.read grant"},
	{Name: "list-root", Principal: SupportBot, Tool: "list_directory", Args: `{"path":"/workspace"}`, Allow: true, Why: "fs.read grant, the workspace itself"},
	{Name: "read-outside", Principal: SupportBot, Tool: "read_file", Args: `{"path":"/etc/passwd"}`, Why: "fs.read condition"},
	{Name: "read-prefix-trap", Principal: SupportBot, Tool: "read_file", Args: `{"path":"/workspace2/a.txt"}`, Why: "fs.read condition: /workspace2 is not under /workspace"},
	{Name: "read-dotenv", Principal: SupportBot, Tool: "read_file", Args: `{"path":"/workspace/app/.env"}`, DenyRule: "no-dotenv", Why: "deny rule"},
	{Name: "read-traversal", Principal: SupportBot, Tool: "read_file", Args: `{"path":"/workspace/../etc/shadow"}`, DenyRule: "no-traversal", Why: "deny rule"},
	{Name: "read-traversal-end", Principal: Builder, Tool: "list_directory", Args: `{"path":"/workspace/out/.."}`, DenyRule: "no-traversal", Why: "deny rule"},
	{Name: "write-no-scope", Principal: SupportBot, Tool: "write_file", Args: `{"path":"/workspace/out/r.txt","content":"hi"}`, Why: "no scope"},
	{Name: "write-allowed", Principal: Builder, Tool: "write_file", Args: `{"path":"/workspace/out/r.txt","content":"hi"}`, Allow: true, Why: "fs.write grant"},
	{Name: "write-outside-out", Principal: Builder, Tool: "write_file", Args: `{"path":"/workspace/src/main.go","content":"package main"}`, Why: "fs.write condition"},
	{Name: "write-dotenv", Principal: Builder, Tool: "write_file", Args: `{"path":"/workspace/out/.env.local","content":"K=V"}`, DenyRule: "no-dotenv", Why: "deny rule beats a matching grant"},
	{Name: "search-allowed", Principal: SupportBot, Tool: "search_tickets", Args: `{"query":"refund","limit":20}`, Allow: true, Why: "tickets.read grant"},
	{Name: "search-at-bound", Principal: SupportBot, Tool: "search_tickets", Args: `{"query":"refund","limit":50}`, Allow: true, Why: "tickets.read grant, numeric bound inclusive"},
	{Name: "search-over-bound", Principal: SupportBot, Tool: "search_tickets", Args: `{"query":"refund","limit":51}`, Why: "tickets.read condition: limit above principal's max_results"},
	{Name: "search-zero", Principal: SupportBot, Tool: "search_tickets", Args: `{"query":"refund","limit":0}`, Why: "tickets.read condition: limit below 1"},
	{Name: "close-no-scope", Principal: SupportBot, Tool: "close_ticket", Args: `{"id":"T-1"}`, Why: "no scope"},
	{Name: "close-allowed", Principal: Builder, Tool: "close_ticket", Args: `{"id":"T-1"}`, Allow: true, Why: "tickets.write grant, no condition"},
	{Name: "unknown-tool", Principal: Builder, Tool: "delete_everything", Args: `{}`, Why: "no grant names the tool"},
}

// CallNamed returns the call with the given name; it panics if there is
// none, which is a mistake in a benchmark, not an input.
func CallNamed(name string) Call {
	for _, c := range Calls {
		if c.Name == name {
			return c
		}
	}
	panic("bench: no call named " + name)
}

// ScaledCall returns the allowed call of the scaling benchmarks on a
// [Scaled] policy of n tools: the last tool, by a principal holding its
// scope and four others.
func ScaledCall(n int) Call {
	var scopes []string
	for i := 0; i < 4 && i < n-1; i++ {
		scopes = append(scopes, ScaledScope(i))
	}
	scopes = append(scopes, ScaledScope(n-1))
	return Call{
		Name:      fmt.Sprintf("scaled-%d", n),
		Principal: Principal{ID: "scaled-agent", Scopes: scopes, MaxResults: 50},
		Tool:      ScaledTool(n - 1),
		Args:      `{"path":"/workspace/docs/guide.md"}`,
		Allow:     true,
	}
}
