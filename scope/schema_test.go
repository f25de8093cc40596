package scope_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
)

var toolSchemas = map[string]json.RawMessage{
	"write_file": json.RawMessage(`{"type":"object","properties":{"path":{"type":"string"},"content":{"type":"string"},"mode":{"type":"integer"},"opts":{"type":"object","properties":{"append":{"type":"boolean"}}},"tags":{"type":"array","items":{"type":"string"}}},"required":["path","content"]}`),
	"read_file":  json.RawMessage(`{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}`),
	"fetch":      json.RawMessage(`{"type":"object","properties":{"url":{"type":"string"},"headers":{"type":"object","additionalProperties":{"type":"string"}}}}`),
}

func TestSchemaTypedArgs(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
		line int
		col  int
	}{
		{name: "typo in an argument name", src: `version: 1
scopes:
  s:
    grants:
      - tools: [write_file]
        when: args.pth.startsWith("/w")
`, want: `for tool "write_file": undefined field 'pth'`, line: 6, col: 19},
		{name: "string compared with a number", src: `version: 1
scopes:
  s:
    grants:
      - tools: [write_file]
        when: args.content == 42
`, want: "no matching overload", line: 6, col: 28},
		{name: "integer used as a string", src: `version: 1
rules:
  - name: r
    effect: deny
    tools: ["*_file"]
    when: args.mode.startsWith("7")
`, want: `for tool "write_file"`, line: 6},
		{name: "nested object field", src: `version: 1
scopes:
  s:
    grants:
      - tools: [write_file]
        when: args.opts.apend == true
`, want: "undefined field 'apend'"},
		{name: "list element type", src: `version: 1
scopes:
  s:
    grants:
      - tools: [write_file]
        when: args.tags.exists(t, t > 3)
`, want: "no matching overload"},
		{name: "glob rule checked against each tool", src: `version: 1
rules:
  - name: r
    effect: deny
    tools: ["*"]
    when: args.path.startsWith("/etc")
`, want: `for tool "fetch": undefined field 'path'`},
		{name: "has() allows only the field it tests", src: `version: 1
rules:
  - name: r
    effect: deny
    tools: ["*"]
    when: has(args.path) && args.paht.startsWith("/etc")
`, want: `undefined field 'paht'`},
		{name: "limit key", src: `version: 1
scopes:
  s:
    grants:
      - tools: [fetch]
        limit: l
limits:
  l: {rate: 1/s, key: args.host}
`, want: "undefined field 'host'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := scope.Parse([]byte(tt.src), scope.WithFilename("p.yaml"), scope.WithToolSchemas(toolSchemas))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			if tt.line > 0 {
				var pe *scope.Error
				require.True(t, errors.As(err, &pe))
				assert.Equal(t, tt.line, pe.Line, err.Error())
				if tt.col > 0 {
					assert.Equal(t, tt.col, pe.Column, err.Error())
				}
			}
			// Without schemas the same policy loads: args is dynamic.
			_, err = scope.Parse([]byte(tt.src))
			require.NoError(t, err)
		})
	}
}

func TestSchemaTypedArgsValid(t *testing.T) {
	p, err := scope.Parse([]byte(`version: 1
scopes:
  s:
    grants:
      - tools: [write_file]
        when: >-
          args.path.isUnder("/w") && size(args.content) < 100 && (!has(args.mode) || args.mode < 511)
          && (!has(args.opts) || !args.opts.append) && args.tags.all(t, t != "secret")
      - tools: [fetch]
        when: args.url.urlHost() == "example.com" && args.headers.all(k, args.headers[k].size() < 100)
      - tools: [unknown_tool]
        when: args.anything == 1
rules:
  - name: r
    effect: deny
    tools: ["*"]
    when: has(args.path) && args.path.glob("**/.env")
`), scope.WithToolSchemas(toolSchemas))
	require.NoError(t, err)
	require.NoError(t, p.CheckTools(toolSchemas))

	// CheckTools after load: a newly registered tool's schema is checked too.
	err = p.CheckTools(map[string]json.RawMessage{"write_file": json.RawMessage(`{"type":"object","properties":{"file":{"type":"string"}}}`)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "undefined field 'path'")
}
