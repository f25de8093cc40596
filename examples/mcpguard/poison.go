package main

import (
	"flag"
	"fmt"

	guardmcp "github.com/agentguard/agentguard/mcp"
)

// poisonConfig is what the flags say about tool-poisoning findings.
type poisonConfig struct {
	hideFlagged string
}

func (pc *poisonConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&pc.hideFlagged, "hide-flagged", "high",
		"hide upstream tools whose definitions have tool-poisoning findings of this severity or worse: high, medium, low or none (findings are logged either way)")
}

// option returns the proxy option for the flags.
func (pc *poisonConfig) option() (guardmcp.Option, error) {
	sev, err := guardmcp.ParseSeverity(pc.hideFlagged)
	if err != nil {
		return nil, fmt.Errorf("-hide-flagged: %w", err)
	}
	return guardmcp.WithHideFlagged(sev), nil
}
