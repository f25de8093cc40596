package main

import (
	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/toolguard"
	"github.com/agentguard/agentguard/toolguard/aibom"
)

// writeBOM writes the AI-BOM of mcpguard in front of the proxy's upstream
// to path.
func writeBOM(path string, g *toolguard.Guard, px *guardmcp.Proxy) error {
	bom, err := aibom.New(aibom.Inventory{
		Application: aibom.Application{Name: "mcpguard",
			Description: "agentguard's MCP proxy: every tool call is validated, decided and recorded before it is forwarded"},
		Guard:   g,
		Servers: []aibom.Server{px.BOMServer()},
	})
	if err != nil {
		return err
	}
	return aibom.WriteFile(path, bom)
}
