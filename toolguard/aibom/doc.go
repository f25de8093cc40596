// Package aibom describes what an agent can reach as a CycloneDX 1.6 AI
// bill of materials (AI-BOM): the application, the models it declares, the
// guard with its policy, the tools registered in-process, and each upstream
// MCP server with the tools it lists, their definition digests and whether
// the tool lock pins them.
//
// It builds on github.com/CycloneDX/cyclonedx-go: [New] returns a
// *cyclonedx.BOM, [Encode] and [WriteFile] write it as CycloneDX 1.6 JSON.
//
// # What is in a BOM
//
//   - metadata.component: the application (type application).
//   - metadata.lifecycles: phase "operations" — the BOM is taken from a
//     running guard, not from source.
//   - components: agentguard itself (type library, bom-ref "agentguard"),
//     the policy in force (type data, bom-ref "policy": version and SHA-256
//     hash are the policy revision, properties list its scopes, rules and
//     limits), and each declared model (type machine-learning-model, with
//     its supplier and model card).
//   - services: each upstream MCP server (bom-ref "mcp-server:NAME", with
//     its endpoint for HTTP and its command line for stdio), holding its
//     tools as nested services; and each tool registered in-process (bom-ref
//     "tool:NAME").
//   - dependencies: the application depends on agentguard and the models;
//     agentguard on the policy, the in-process tools and the servers; a
//     server on its tools. Only tools the agent can actually reach are
//     linked: a tool that is disabled (not pinned by the lock, or changed)
//     or that no scope of the policy grants is listed, with its status, but
//     nothing depends on it.
//   - vulnerabilities: the findings given for MCP tools (for example tool
//     poisoning), each affecting the tool's service.
//
// # Properties
//
// What CycloneDX has no field for is in properties named agentguard:…:
//
//	agentguard:policy:revision      the policy revision (metadata and the policy)
//	agentguard:policy:scope:NAME    the tool patterns scope NAME grants
//	agentguard:policy:rule:NAME     effect, mode and tool patterns of a rule
//	agentguard:policy:limit:NAME    a limit's rate, burst, concurrency or quota
//	agentguard:tool:digest          sha256 of the tool definition: canonical JSON of
//	                                name, description, inputSchema and annotations
//	                                (for MCP tools the digest a tool lock pins)
//	agentguard:tool:schema-digest   sha256 of the canonical JSON of the input schema
//	agentguard:tool:title           the tool's title
//	agentguard:tool:annotation:KEY  an annotation, as JSON
//	agentguard:tool:granted-by      a scope whose grants name the tool (repeated)
//	agentguard:tool:rule            a rule that applies to the tool (repeated)
//	agentguard:tool:status          enabled or disabled
//	agentguard:tool:disabled-reason why calls to a disabled tool are denied
//	agentguard:tool:reachable       true when enabled and granted by some scope
//	agentguard:mcp:lock-digest      the digest the tool lock holds for the tool
//	agentguard:mcp:pinned           true when the lock holds the listed digest
//	agentguard:mcp:lock-file        the tool lock file of a server
//	agentguard:mcp:transport        stdio or streamable-http
//	agentguard:mcp:command          the command line of a stdio server
//	agentguard:mcp:protocol-version the MCP protocol version negotiated
//
// Server URLs lose their user information, query and fragment, where
// credentials tend to be; a command line is recorded as given, so keep
// secrets in the environment, which is not recorded.
package aibom
