package agentguard_test

//lint:file-ignore SA1019 the tests speak the legacy MCP protocol on purpose: an initialize handshake, and server→client requests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
)

// block is a fenced code block of README.md.
type block struct {
	lang    string
	section string // the "## " heading it is under
	line    int    // of the opening fence
	text    string
}

func readmeBlocks(t *testing.T) []block {
	t.Helper()
	f, err := os.Open("README.md")
	require.NoError(t, err)
	defer f.Close()
	var (
		out     []block
		cur     *block
		section string
		buf     strings.Builder
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(line, "## "):
			section = strings.TrimPrefix(line, "## ")
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &block{lang: strings.TrimPrefix(line, "```"), section: section, line: n}
			buf.Reset()
		case cur != nil && line == "```":
			cur.text = buf.String()
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			buf.WriteString(line + "\n")
		}
	}
	require.NoError(t, sc.Err())
	require.Nil(t, cur, "an unclosed fence")
	return out
}

func blocksOf(t *testing.T, lang, section string) []block {
	var out []block
	for _, b := range readmeBlocks(t) {
		if b.lang == lang && (section == "" || b.section == section) {
			out = append(out, b)
		}
	}
	return out
}

// glueImports are imported by every Go snippet that is not a whole file;
// the blank uses keep the unused ones legal.
const glueImports = `import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentguard/agentguard/audit"
	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/scope/scopetest"
	"github.com/agentguard/agentguard/toolguard"
	"github.com/agentguard/agentguard/toolguard/netguard"
)

var (
	_ = context.Background
	_ = json.Marshal
	_ = errors.New
	_ = fmt.Sprint
	_ = os.Exit
	_ = testing.Short
	_ = mcp.NewTool
	_ = server.NewMCPServer
	_ = audit.OpenFile
	_ = guardmcp.AddTool
	_ = scope.Load
	_ = scopetest.Golden
	_ = toolguard.New
	_ = http.Get
	_ = netguard.ErrRefused
)
`

// givens are what a snippet takes as given, keyed by a string that picks
// the snippet out: the minimum glue, and nothing else.
var givens = map[string]string{
	"scopetest.Run(":               "var bot scope.Principal",
	"guardmcp.ServerOptions(g)...": "var (\n\tg       *toolguard.Guard\n\ttool    mcp.Tool\n\thandler server.ToolHandlerFunc\n)",
}

var declStart = regexp.MustCompile(`^(func|type|var|const)\b`)

// snippetFile turns a Go block into a file of package name: a whole file as
// it is, declarations under the glue's imports, statements in a function.
func snippetFile(b block, name string) string {
	if strings.HasPrefix(b.text, "package ") {
		return b.text
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "package %s\n\n%s\n", name, glueImports)
	for key, decl := range givens {
		if strings.Contains(b.text, key) {
			sb.WriteString(decl + "\n\n")
		}
	}
	first := ""
	for _, l := range strings.Split(b.text, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "//") {
			first = l
			break
		}
	}
	if declStart.MatchString(first) {
		sb.WriteString(b.text)
	} else {
		fmt.Fprintf(&sb, "func _() {\n%s}\n", b.text)
	}
	return sb.String()
}

// snippetModule writes every Go block of README.md as a package of a
// temporary module that uses this repository (a replace directive), and
// returns its directory and the package directories, by block.
func snippetModule(t *testing.T) (string, map[int]string) {
	t.Helper()
	root, err := os.Getwd()
	require.NoError(t, err)
	dir := t.TempDir()
	gomod := "module readmecheck\n\ngo 1.26.0\n\n" +
		"require github.com/agentguard/agentguard v0.0.0-00010101000000-000000000000\n\n" +
		"replace github.com/agentguard/agentguard => " + root + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644))
	sum, err := os.ReadFile("go.sum")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644))
	pkgs := map[int]string{}
	for _, b := range blocksOf(t, "go", "") {
		name := fmt.Sprintf("line%d", b.line)
		require.NoError(t, os.MkdirAll(filepath.Join(dir, name), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name, "snippet.go"), []byte(snippetFile(b, name)), 0o644))
		pkgs[b.line] = name
	}
	require.NotEmpty(t, pkgs)
	// Everything the snippets import is in this module's build list; tidy
	// may still fetch go.mod files of modules the build list prunes, which
	// a fresh module cache does not hold, so the module proxy stays on.
	goCmd(t, dir, 2*time.Minute, "mod", "tidy")
	return dir, pkgs
}

func goCmd(t *testing.T, dir string, timeout time.Duration, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

// TestReadmeGoBlocks compiles and vets every fenced Go block of README.md,
// then runs the quick start's program against the README's policy: the
// allowed call is allowed, the secret file denied with a reason that names
// no Go package, no warning is logged, and the log verifies.
func TestReadmeGoBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module")
	}
	dir, pkgs := snippetModule(t)
	goCmd(t, dir, 3*time.Minute, "build", "./...")
	goCmd(t, dir, 3*time.Minute, "vet", "./...")

	quick := blocksOf(t, "go", "Quick start")
	require.Len(t, quick, 1, "the quick start shows one program")
	require.True(t, strings.HasPrefix(quick[0].text, "package main"), "a program a newcomer can paste")
	policies := blocksOf(t, "yaml", "Policies")
	require.NotEmpty(t, policies)

	bin := filepath.Join(dir, "quickstart")
	goCmd(t, dir, 3*time.Minute, "build", "-o", bin, "./"+pkgs[quick[0].line])
	work := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(work, "policy.yaml"), []byte(policies[0].text), 0o644))
	cmd := exec.Command(bin)
	cmd.Dir = work
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "stderr: %s", stderr.String())
	t.Logf("output:\n%s", stdout.String())
	assert.Empty(t, stderr.String(), "no warning: the policy grants the registered tool")
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	require.Len(t, lines, 2)
	assert.Equal(t, "notes.txt allowed: hello", lines[0])
	env := filepath.Join(work, "workspace", ".env")
	if w, err := filepath.EvalSymlinks(work); err == nil && w != work {
		env = filepath.Join(w, "workspace", ".env")
	}
	assert.Equal(t, `.env denied: call to "read_text_file" denied: denied by rule "no-dotenv": secret files are off limits: `+env, lines[1])

	recs := verifiedRecords(t, filepath.Join(work, "decisions.jsonl"))
	var effects []string
	for _, r := range recs {
		if r.Kind == audit.KindDecision {
			effects = append(effects, r.Tool+" "+r.Effect)
		}
	}
	assert.Equal(t, []string{"read_text_file allow", "read_text_file deny"}, effects)
}

func verifiedRecords(t *testing.T, path string) []audit.Record {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	_, err = audit.Verify(f, audit.VerifyOptions{})
	require.NoError(t, err)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var recs []audit.Record
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r audit.Record
		require.NoError(t, json.Unmarshal([]byte(l), &r))
		recs = append(recs, r)
	}
	return recs
}

// commands returns the shell commands of a block: continuation lines
// joined, comments dropped.
func commands(b block) []string {
	var out []string
	cur := ""
	for _, l := range strings.Split(b.text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "#") || strings.TrimSpace(l) == "" && cur == "" {
			continue
		}
		if c, ok := strings.CutSuffix(l, "\\"); ok {
			cur += c
			continue
		}
		out = append(out, cur+l)
		cur = ""
	}
	return out
}

// TestReadmeQuickStartCommands runs the quick start's shell commands as
// written. `go test ./...` would run this test again: it is checked by
// .ci/run, which runs the whole suite; here only that it is the command
// meant, and that the packages it names load.
func TestReadmeQuickStartCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the quick start")
	}
	blocks := blocksOf(t, "sh", "Quick start")
	require.Len(t, blocks, 1)
	cmds := commands(blocks[0])
	require.Len(t, cmds, 2)
	for _, c := range cmds {
		line := strings.TrimSpace(strings.SplitN(c, "#", 2)[0])
		switch line {
		case "go test ./...":
			ci, err := os.ReadFile(filepath.Join(".ci", "run"))
			require.NoError(t, err)
			assert.Regexp(t, `(?m)^go test .*\./\.\.\.$`, string(ci), "CI runs the whole suite")
			goCmd(t, ".", time.Minute, "list", "./...")
		default:
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			out, err := exec.CommandContext(ctx, "bash", "-e", "-c", c).CombinedOutput()
			cancel()
			require.NoError(t, err, "%s:\n%s", c, out)
			assert.NotEmpty(t, out)
		}
	}
}

// requireNode skips a test that needs the Node MCP peers, unless
// AGENTGUARD_REQUIRE_EXTERNAL=1, when their absence fails it. It returns
// the node_modules directory.
func requireNode(t *testing.T) string {
	t.Helper()
	mods, err := filepath.Abs(filepath.Join("mcp", "testdata", "node", "node_modules"))
	require.NoError(t, err)
	missing := ""
	if _, err := exec.LookPath("npx"); err != nil {
		missing = "node and npx are not installed"
	} else if _, err := os.Stat(filepath.Join(mods, "@modelcontextprotocol", "server-filesystem")); err != nil {
		missing = "node packages are not installed: npm ci --prefix mcp/testdata/node"
	}
	if missing != "" {
		if os.Getenv("AGENTGUARD_REQUIRE_EXTERNAL") == "1" {
			t.Fatal(missing)
		}
		t.Skip(missing)
	}
	return mods
}

// freshClone copies the repository's files (not .git, not node_modules)
// into a temporary directory, as a fresh clone would have them, with the
// pinned Node packages where npx finds them without the network.
func freshClone(t *testing.T, mods string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, path)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	require.NoError(t, err)
	require.NoError(t, os.Symlink(mods, filepath.Join(dst, "node_modules")))
	return dst
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestReadmeMCPCommands runs the MCP section's shell commands as written,
// in a fresh copy of the repository: the lock is written and reported, then
// the last command serves an MCP client over stdio, with no noise on
// stderr; the allowed read works, the write is denied with a reason for the
// model, and the decision log verifies.
func TestReadmeMCPCommands(t *testing.T) {
	mods := requireNode(t)
	blocks := blocksOf(t, "sh", "MCP")
	require.Len(t, blocks, 1)
	cmds := commands(blocks[0])
	require.GreaterOrEqual(t, len(cmds), 2)
	clone := freshClone(t, mods)
	tmp := t.TempDir()

	// Every command but the last, in one shell; its variables are kept
	// (set -a exports them) for the last.
	setup := "set -a\n" + strings.Join(cmds[:len(cmds)-1], "\n") + "\nenv -0 >&3\n"
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	sh := exec.CommandContext(ctx, "bash", "-e", "-c", setup)
	sh.Dir = clone
	sh.Env = append(os.Environ(), "TMPDIR="+tmp)
	envR, envW, err := os.Pipe()
	require.NoError(t, err)
	sh.ExtraFiles = []*os.File{envW}
	var envOut bytes.Buffer
	envDone := make(chan struct{})
	go func() { io.Copy(&envOut, envR); close(envDone) }()
	out, err := sh.CombinedOutput()
	envW.Close()
	<-envDone
	envR.Close()
	require.NoError(t, err, "%s", out)
	t.Logf("setup output:\n%s", out)
	assert.Contains(t, string(out), "tools pinned (there was no lock before)")
	assert.Contains(t, string(out), "  added     read_text_file\n")
	var env []string
	demo := ""
	for _, kv := range strings.Split(envOut.String(), "\x00") {
		if kv != "" {
			env = append(env, kv)
		}
		if v, ok := strings.CutPrefix(kv, "demo="); ok {
			demo = v
		}
	}
	require.NotEmpty(t, demo, "the commands set demo")

	stderr := &lockedBuffer{}
	tr := transport.NewStdioWithOptions("bash", nil, []string{"-c", cmds[len(cmds)-1]},
		transport.WithCommandStderrWriter(stderr),
		transport.WithCommandFunc(func(ctx context.Context, command string, _ []string, args []string) (*exec.Cmd, error) {
			cmd := exec.CommandContext(ctx, command, args...)
			cmd.Dir, cmd.Env = clone, env
			return cmd, nil
		}))
	c := client.NewClient(tr, client.WithLegacyProtocolOnly())
	require.NoError(t, c.Start(ctx))
	defer c.Close()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "readme-test", Version: "1"}
	_, err = c.Initialize(ctx, init)
	require.NoError(t, err, "stderr: %s", stderr.String())

	list, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	require.NoError(t, err)
	var names []string
	for _, tl := range list.Tools {
		names = append(names, tl.Name)
	}
	assert.Contains(t, names, "read_text_file")
	assert.NotContains(t, names, "write_file", "fs.read does not show write tools")

	callText := func(name string, args map[string]any) (string, bool) {
		req := mcp.CallToolRequest{}
		req.Params.Name, req.Params.Arguments = name, args
		res, err := c.CallTool(ctx, req)
		require.NoError(t, err)
		var texts []string
		for _, ct := range res.Content {
			if tx, ok := ct.(mcp.TextContent); ok {
				texts = append(texts, tx.Text)
			}
		}
		return strings.Join(texts, "\n"), res.IsError
	}
	text, isErr := callText("read_text_file", map[string]any{"path": filepath.Join(demo, "w", "notes.txt")})
	assert.False(t, isErr, text)
	assert.Contains(t, text, "hello")
	text, isErr = callText("write_file", map[string]any{"path": filepath.Join(demo, "w", "out", "x.txt"), "content": "x"})
	assert.True(t, isErr)
	assert.True(t, strings.HasPrefix(text, `call to "write_file" denied: `), text)
	text, isErr = callText("read_text_file", map[string]any{"path": "/etc/passwd"})
	assert.True(t, isErr)
	assert.True(t, strings.HasPrefix(text, `call to "read_text_file" denied: `), text)
	require.NoError(t, c.Close())

	t.Logf("stderr:\n%s", stderr.String())
	for _, noise := range []string{"Failed", "cannot be routed", "level=WARN", "level=ERROR"} {
		assert.NotContains(t, stderr.String(), noise)
	}
	require.Eventually(t, func() bool {
		recs := verifiedRecordsOrNil(filepath.Join(demo, "decisions.jsonl"))
		return len(recs) >= 4
	}, 30*time.Second, 100*time.Millisecond, "decision and outcome records")
	var effects []string
	for _, r := range verifiedRecords(t, filepath.Join(demo, "decisions.jsonl")) {
		if r.Kind == audit.KindDecision {
			effects = append(effects, r.Tool+" "+r.Effect)
		}
	}
	assert.Equal(t, []string{"read_text_file allow", "write_file deny", "read_text_file deny"}, effects)
}

func verifiedRecordsOrNil(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	if _, err := audit.Verify(bytes.NewReader(b), audit.VerifyOptions{}); err != nil {
		return nil
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}
