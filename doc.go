// Package agentguard is an embeddable library for least-privilege agent
// tool calling. An agent, or an MCP server, wraps each tool in a guard that
// validates the arguments against the tool's JSON Schema, checks CEL scope
// rules and rate limits, asks a human where policy says so, and writes a
// tamper-evident decision record before the tool runs. Anything that goes
// wrong denies the call.
//
// The packages:
//
//   - [github.com/agentguard/agentguard/toolguard]: the Guard and its
//     decision pipeline.
//   - [github.com/agentguard/agentguard/scope]: the policy model (scopes,
//     grants, rules, limits) and CEL.
//   - [github.com/agentguard/agentguard/audit]: decision records, sinks, the
//     hash-chained log and its verification.
//   - [github.com/agentguard/agentguard/mcp] (guardmcp): guarded mark3labs/mcp-go
//     servers, JWT principals, and the guarding proxy behind examples/mcpguard.
//   - [github.com/agentguard/agentguard/scope/scopetest]: unit tests for
//     policies — case files, coverage, replay.
//   - [github.com/agentguard/agentguard/toolguard/aibom]: a CycloneDX 1.6
//     AI bill of materials of what an agent can reach.
//
// COMPLIANCE.md maps the controls of the EU Cyber Resilience Act (Annex I),
// the UK AI Cyber Security Code of Practice, OWASP LLM06 and the MCP
// security best practices to the tests that prove them.
//
// Start with the quick start in README.md, or run
//
//	go run ./examples/quickstart
package agentguard
