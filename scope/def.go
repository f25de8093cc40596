package scope

import (
	"encoding/json"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Def is a policy as written in a file or built in code: the input of [Compile].
// Its fields mirror the YAML/JSON policy format (version 1); see the package
// documentation for the meaning of each.
type Def struct {
	// Version is the policy format version. It must be 1.
	Version int `json:"version" yaml:"version"`
	// Scopes maps a scope name (such as "fs.read") to what it grants.
	Scopes map[string]ScopeDef `json:"scopes,omitempty" yaml:"scopes,omitempty"`
	// Rules are checked on every call, in order: deny beats ask beats allow.
	Rules []RuleDef `json:"rules,omitempty" yaml:"rules,omitempty"`
	// Limits are named rate limits that grants refer to.
	Limits map[string]LimitDef `json:"limits,omitempty" yaml:"limits,omitempty"`
	// Principals optionally gives principals (by ID) static scopes, in
	// addition to the scopes a caller brings.
	Principals map[string][]string `json:"principals,omitempty" yaml:"principals,omitempty"`
	// Redact names, by tool name or glob, the JSON pointers of argument
	// values to keep out of audit records (replaced by keyed digests), in
	// addition to what the tools' schemas mark writeOnly or x-sensitive.
	// "*" in a pointer stands for any array item or property.
	Redact map[string][]string `json:"redact,omitempty" yaml:"redact,omitempty"`
	// Results says how tool results are checked before they go back to
	// the caller (see [ResultsDef]); nil: they are not looked at.
	Results *ResultsDef `json:"results,omitempty" yaml:"results,omitempty"`
	// Labels say which labels a tool's result brings into the caller's
	// session, for flow rules to read (see [LabelDef]).
	Labels []LabelDef `json:"labels,omitempty" yaml:"labels,omitempty"`
}

// ScopeDef is one scope: a named bundle of grants.
type ScopeDef struct {
	Description string     `json:"description,omitempty" yaml:"description,omitempty"`
	Grants      []GrantDef `json:"grants" yaml:"grants"`
}

// GrantDef allows the tools it names when its condition holds.
type GrantDef struct {
	// Tools are tool names or globs ("fs_*").
	Tools []string `json:"tools" yaml:"tools"`
	// Resources are globs over canonical resource URIs ("file:///w/**"):
	// the resources the grant lets a principal list and read (see
	// ParseURI). A grant names tools, resources or prompts: one kind.
	Resources []string `json:"resources,omitempty" yaml:"resources,omitempty"`
	// Prompts are prompt names or globs the grant lets a principal list
	// and get.
	Prompts []string `json:"prompts,omitempty" yaml:"prompts,omitempty"`
	// When is an optional CEL condition; empty means always.
	When string `json:"when,omitempty" yaml:"when,omitempty"`
	// Limit names the limits (from Def.Limits) that calls allowed by this
	// grant draw on. In a file it may be one name or a list.
	Limit Names `json:"limit,omitempty" yaml:"limit,omitempty"`
}

// RuleDef is a deny or ask rule, checked on every call to the tools it names.
type RuleDef struct {
	// Name identifies the rule in decisions and records. Required and unique.
	Name string `json:"name" yaml:"name"`
	// Effect is "deny" or "ask".
	Effect string `json:"effect" yaml:"effect"`
	// Tools are tool names or globs the rule applies to.
	Tools []string `json:"tools" yaml:"tools"`
	// Resources and Prompts, instead of Tools, make the rule apply to
	// resource reads (URI globs) or prompt gets (names or globs).
	Resources []string `json:"resources,omitempty" yaml:"resources,omitempty"`
	Prompts   []string `json:"prompts,omitempty" yaml:"prompts,omitempty"`
	// When is an optional CEL condition; empty means the rule always matches.
	When string `json:"when,omitempty" yaml:"when,omitempty"`
	// Message is an optional CEL string expression giving the reason shown to
	// the model, like Kubernetes' messageExpression.
	Message string `json:"message,omitempty" yaml:"message,omitempty"`
	// Mode is "enforce" (the default) or "shadow": a shadow rule is evaluated
	// and recorded but never changes a decision.
	Mode string `json:"mode,omitempty" yaml:"mode,omitempty"`
	// Remember is an optional CEL string expression, on ask rules only:
	// the key under which a human may approve the call for the rest of
	// the session. Later calls the same rule asks about with the same key,
	// in the same session, are then allowed without asking.
	Remember string `json:"remember,omitempty" yaml:"remember,omitempty"`
}

// LimitDef is a named limit: exactly one of a token-bucket rate, a
// concurrency cap, or a quota over calendar windows.
type LimitDef struct {
	// Rate is "N/s", "N/m", "N/h", "N/d" or "N/<duration>" such as "5/10s":
	// a token bucket refilling N per period.
	Rate string `json:"rate,omitempty" yaml:"rate,omitempty"`
	// Burst is the bucket size; zero means N, the count in Rate.
	Burst int `json:"burst,omitempty" yaml:"burst,omitempty"`
	// Concurrency caps the calls in flight at once per key.
	Concurrency int `json:"concurrency,omitempty" yaml:"concurrency,omitempty"`
	// Quota is "N/hour", "N/day" or "N/week": at most N units per calendar
	// window (UTC; weeks start on Monday).
	Quota string `json:"quota,omitempty" yaml:"quota,omitempty"`
	// Cost is a CEL int expression: how many units one call uses of a rate
	// or quota (say, bytes written). Empty means 1.
	Cost string `json:"cost,omitempty" yaml:"cost,omitempty"`
	// Key is a CEL string expression naming the bucket; empty means
	// principal.id.
	Key string `json:"key,omitempty" yaml:"key,omitempty"`
}

// Names is a list of names that may be written as a single string in a
// policy file.
type Names []string

// UnmarshalYAML accepts a scalar or a sequence.
func (n *Names) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind == yaml.ScalarNode {
		var s string
		if err := node.Decode(&s); err != nil {
			return err
		}
		*n = Names{s}
		return nil
	}
	var l []string
	if err := node.Decode(&l); err != nil {
		return err
	}
	*n = l
	return nil
}

// UnmarshalJSON accepts a string or an array of strings.
func (n *Names) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*n = Names{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return fmt.Errorf("scope: limit must be a name or a list of names: %w", err)
	}
	*n = l
	return nil
}
