package main

import (
	"flag"

	guardmcp "github.com/agentguard/agentguard/mcp"
)

// poisonConfig is what the flags say about tool-poisoning findings.
type poisonConfig struct {
	hideFlagged severityFlag
}

func (pc *poisonConfig) register(fs *flag.FlagSet) {
	pc.hideFlagged = severityFlag(guardmcp.SeverityHigh)
	fs.Var(&pc.hideFlagged, "hide-flagged",
		"hide upstream tools whose definitions have tool-poisoning findings of this severity or worse: high, medium, low or none (findings are logged either way)")
}

// option returns the proxy option for the flags.
func (pc *poisonConfig) option() guardmcp.Option {
	return guardmcp.WithHideFlagged(guardmcp.Severity(pc.hideFlagged))
}

// severityFlag is a hiding threshold; "" is none.
type severityFlag guardmcp.Severity

func (s *severityFlag) String() string {
	if *s == "" {
		return "none"
	}
	return string(*s)
}

func (s *severityFlag) Set(v string) error {
	sev, err := guardmcp.ParseSeverity(v)
	if err != nil {
		return err
	}
	*s = severityFlag(sev)
	return nil
}
