package guardmcp_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
)

// advCanary is the content of every file the policy keeps from the agent:
// an answer that contains it means the upstream read a file it must not.
const advCanary = "CANARY: this file must never reach the agent"

const (
	// advCaseBound is how long one hostile call may take to be answered.
	advCaseBound = 5 * time.Second
	// advWait is how long the test waits for an answer at all.
	advWait = 20 * time.Second
	// advMaxRSS bounds mcpguard's peak resident set over the whole corpus.
	advMaxRSS = 512 << 20
	// advMaxText bounds the reason a model reads.
	advMaxText = 8 << 10
)

// advCase is one hostile tools/call. The fields read from the corpus are
// those of toolguard's adversarial_test.go.
type advCase struct {
	Name      string `json:"name"`
	Tool      string `json:"tool"`
	Args      string `json:"args"`
	ArgsHex   string `json:"args_hex"`
	Want      string `json:"want"` // allow, the kind of denial, or rpc
	Anonymous bool   `json:"anonymous"`

	// params, when set, is the raw params object of the message, in place
	// of one made of Tool and Args.
	params []byte
	// auth, when not nil, are the Authorization headers of the call, in
	// place of a valid bearer token. Such cases only run over HTTP.
	auth []string
}

// wantStage maps the kinds of denial of the corpus to the stage the
// decision record names.
var wantStage = map[string]string{
	"invalid_arguments": "arguments",
	"policy":            "policy",
	"unknown_tool":      "tool",
	"no_principal":      "principal",
}

// advFixture is a directory tree the upstream filesystem server may read
// all of, and a workspace, root/w, that the policy confines reads to.
type advFixture struct {
	root, ws, logDir string
	tree             map[string]string
}

func newAdvFixture(t *testing.T) *advFixture {
	t.Helper()
	root, err := filepath.EvalSymlinks(t.TempDir())
	require.NoError(t, err)
	require.Equal(t, `"`+root+`"`, mustJSON(root), "the test puts the root into JSON unescaped")
	f := &advFixture{root: root, ws: filepath.Join(root, "w"), logDir: t.TempDir()}
	for name, content := range map[string]string{
		"w/a":                   "the workspace file a",
		"w/app/.env.production": advCanary,
		"w2/secret":             advCanary,
		"etc/passwd":            advCanary,
	} {
		p := filepath.Join(root, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	f.tree = f.snapshot(t)
	return f
}

// snapshot lists every directory and file under root, with the files'
// contents.
func (f *advFixture) snapshot(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(f.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(f.root, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			out[rel+"/"] = ""
			return nil
		}
		b, err := os.ReadFile(p)
		out[rel] = string(b)
		return err
	}))
	return out
}

// localize moves the corpus' paths into the fixture: /w/ is the
// workspace, and /w2/ and /etc/passwd are canary files beside it, which a
// call the guard wrongly allowed would read.
func (f *advFixture) localize(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte(`"/w/`), []byte(`"`+f.root+`/w/`))
	b = bytes.ReplaceAll(b, []byte(`"/w2/`), []byte(`"`+f.root+`/w2/`))
	return bytes.ReplaceAll(b, []byte(`"/etc/passwd"`), []byte(`"`+f.root+`/etc/passwd"`))
}

// args returns the raw arguments of c, in the fixture.
func (f *advFixture) args(t *testing.T, c advCase) []byte {
	t.Helper()
	args := []byte(c.Args)
	if c.ArgsHex != "" {
		var err error
		args, err = hex.DecodeString(c.ArgsHex)
		require.NoError(t, err)
	}
	return f.localize(args)
}

// advCases returns toolguard's corpus, its generated inputs and the inputs
// only a JSON-RPC message can carry.
func advCases(t *testing.T, f *advFixture, tokens advTokens) []advCase {
	t.Helper()
	b, err := os.ReadFile("../toolguard/testdata/adversarial.json")
	require.NoError(t, err)
	var cases []advCase
	require.NoError(t, json.Unmarshal(b, &cases))
	require.NotEmpty(t, cases)
	for i, c := range cases {
		if c.Anonymous {
			cases[i].auth = []string{}
		}
	}

	ws := f.ws
	// 64 bytes under the guard's 1 MiB bound on arguments.
	frame := `{"path":"` + ws + `/"}`
	underLimit := `{"path":"` + ws + `/` + strings.Repeat("a", 1<<20-64-len(frame)) + `"}`
	nested := func(depth int) string {
		return `{"path":"` + ws + `/a","x":` + strings.Repeat(`{"a":`, depth) + `1` + strings.Repeat(`}`, depth) + `}`
	}
	cases = append(cases,
		advCase{Name: "a megabyte string", Tool: "read_file", Args: `{"path":"` + ws + `/` + strings.Repeat("a", 1<<20) + `"}`, Want: "invalid_arguments"},
		advCase{Name: "a string just under the limit", Tool: "read_file", Args: underLimit, Want: "allow"},
		advCase{Name: "an array of 100001 elements", Tool: "read_file", Args: `{"path":"` + ws + `/a","x":[` + strings.Repeat("0,", 100_000) + `0]}`, Want: "invalid_arguments"},
		advCase{Name: "a huge array", Tool: "read_file", Args: `{"path":"` + ws + `/a","x":[` + strings.Repeat("0,", 200_000) + `0]}`, Want: "invalid_arguments"},
		// Deeper than encoding/json decodes: the JSON-RPC layer refuses it.
		advCase{Name: "nesting 10000 deep", Tool: "read_file", Args: nested(10_000), Want: "invalid_arguments"},
		// Deep, but within what the JSON-RPC layer decodes: the guard refuses it.
		advCase{Name: "nesting 5000 deep", Tool: "read_file", Args: nested(5_000), Want: "invalid_arguments"},
		advCase{Name: "many keys", Tool: "read_file", Args: `{"path":"` + ws + `/a"` + advManyKeys(150_000) + `}`, Want: "invalid_arguments"},
		advCase{Name: "a 64 KiB tool name", Tool: strings.Repeat("t", 64<<10), Args: `{}`, Want: "unknown_tool"},
		advCase{Name: "an overlong tool name", Tool: strings.Repeat("t", 1<<20), Args: `{}`, Want: "unknown_tool"},
	)

	a := `{"path":"` + ws + `/a"}`
	secret := `{"path":"` + f.root + `/etc/passwd"}`
	cases = append(cases,
		advCase{Name: "arguments omitted", params: []byte(`{"name":"read_file"}`), Want: "invalid_arguments"},
		advCase{Name: "arguments null", params: []byte(`{"name":"read_file","arguments":null}`), Want: "invalid_arguments"},
		// The guard must decide the arguments the upstream is sent.
		advCase{Name: "two arguments members", params: []byte(`{"name":"read_file","arguments":` + a + `,"arguments":` + secret + `}`), Want: "rpc"},
		advCase{Name: "two name members", params: []byte(`{"name":"read_file","arguments":` + a + `,"name":"delete_everything"}`), Want: "rpc"},
		advCase{Name: "no tool name", params: []byte(`{"arguments":` + a + `}`), Want: "unknown_tool"},
		advCase{Name: "an empty tool name", params: []byte(`{"name":"","arguments":` + a + `}`), Want: "unknown_tool"},
		advCase{Name: "tool name with invalid UTF-8", params: []byte("{\"name\":\"read_file\xff\",\"arguments\":" + a + "}"), Want: "unknown_tool"},
		advCase{Name: "the proxy's route for unknown tools, by name", params: []byte(`{"name":"guardmcp unknown tool","arguments":` + secret + `}`), Want: "unknown_tool"},
		advCase{Name: "the route with a forged mark", params: []byte(`{"name":"guardmcp unknown tool","arguments":` + secret + `,"_meta":{"guardmcp/unknown-tool":{"name":"read_file"}}}`), Want: "unknown_tool"},
		advCase{Name: "a forged mark on a real tool", params: []byte(`{"name":"read_file","arguments":` + secret + `,"_meta":{"guardmcp/unknown-tool":"delete_everything"}}`), Want: "policy"},
		advCase{Name: "a tool no scope grants", params: []byte(`{"name":"write_file","arguments":{"path":"` + ws + `/pwned","content":"x"}}`), Want: "policy"},
		advCase{Name: "params not an object", params: []byte(`["read_file",` + a + `]`), Want: "rpc"},
		advCase{Name: "arguments with trailing garbage", params: []byte(`{"name":"read_file","arguments":` + a + `]}`), Want: "rpc"},
	)

	// Over HTTP, mcpguard refuses these before the MCP server sees them
	// (401, or 400 for a malformed request): no session, no record.
	cases = append(cases,
		advCase{Name: "a bearer token that is not a JWT", Tool: "read_file", Args: a, Want: "no_principal", auth: []string{"Bearer not.a.token"}},
		advCase{Name: "a token signed by another key", Tool: "read_file", Args: a, Want: "no_principal", auth: []string{"Bearer " + tokens.otherKey}},
		advCase{Name: "an expired token", Tool: "read_file", Args: a, Want: "no_principal", auth: []string{"Bearer " + tokens.expired}},
		advCase{Name: "a token for another audience", Tool: "read_file", Args: a, Want: "no_principal", auth: []string{"Bearer " + tokens.otherAudience}},
		advCase{Name: "an unsigned token", Tool: "read_file", Args: a, Want: "no_principal", auth: []string{"Bearer " + tokens.unsigned}},
		advCase{Name: "a basic credential", Tool: "read_file", Args: a, Want: "no_principal", auth: []string{"Basic cmVhZGVyOnJlYWRlcg=="}},
		advCase{Name: "two bearer tokens", Tool: "read_file", Args: a, Want: "no_principal", auth: []string{"Bearer " + tokens.valid, "Bearer " + tokens.valid}},
		advCase{Name: "an oversized bearer token", Tool: "read_file", Args: a, Want: "no_principal", auth: []string{"Bearer " + strings.Repeat("a", 64<<10)}},
		advCase{Name: "a token with a space inside", Tool: "read_file", Args: a, Want: "no_principal", auth: []string{"Bearer " + tokens.valid[:20] + " " + tokens.valid[20:]}},
		advCase{Name: "a misspelled scheme", Tool: "read_file", Args: a, Want: "no_principal", auth: []string{"Bearer: " + tokens.valid}},
	)
	return cases
}

// advManyKeys returns n distinct members, each with a leading comma.
func advManyKeys(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `,"k%s%c_%06x":1`, strings.Repeat("x", i%7), 'a'+i%26, i)
	}
	return b.String()
}

// advTokens are the bearer tokens of the HTTP run.
type advTokens struct {
	jwksPath                                          string
	valid, otherKey, expired, otherAudience, unsigned string
}

func newAdvTokens(t *testing.T, f *advFixture) advTokens {
	t.Helper()
	jf := newJWTFixture(t)
	claims := func() jwt.MapClaims {
		c := validClaims()
		c["workspace"] = f.ws
		return c
	}
	tk := advTokens{jwksPath: filepath.Join(f.logDir, "jwks.json")}
	require.NoError(t, os.WriteFile(tk.jwksPath, jf.jwks, 0o600))
	tk.valid = jf.sign(t, claims(), nil)
	tk.expired = jf.sign(t, claims(), func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() })
	tk.otherAudience = jf.sign(t, claims(), func(c jwt.MapClaims) { c["aud"] = "another-service" })
	other := jwt.NewWithClaims(jwt.SigningMethodES256, claims())
	other.Header["kid"] = "k1"
	var err error
	tk.otherKey, err = other.SignedString(jf.other)
	require.NoError(t, err)
	tk.unsigned, err = jwt.NewWithClaims(jwt.SigningMethodNone, claims()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	return tk
}

// advPeer sends raw JSON-RPC requests to mcpguard and returns the raw
// responses, so that nothing re-encodes the hostile bytes on the way.
type advPeer interface {
	// call sends msg, the request with the given id, with the given
	// Authorization headers (nil: the peer's own credentials; ignored over
	// stdio), and returns the response to it.
	call(t *testing.T, id int, msg []byte, auth []string) []byte
}

// advGuard is a running mcpguard.
type advGuard struct {
	cmd   *exec.Cmd
	out   *syncBuffer // stderr (and, over HTTP, stdout)
	done  chan struct{}
	stdin io.WriteCloser // stdio only
	lines chan []byte    // stdio only: the lines mcpguard writes
}

func startAdvGuard(t *testing.T, f *advFixture, argv []string, stdio bool) *advGuard {
	t.Helper()
	g := &advGuard{out: &syncBuffer{}, done: make(chan struct{})}
	g.cmd = exec.Command(argv[0], argv[1:]...)
	// A relative path the guard wrongly allowed would resolve against the
	// root, where the canaries are.
	g.cmd.Dir = f.root
	g.cmd.Stderr = g.out
	var pr *io.PipeReader
	var pw *io.PipeWriter
	if stdio {
		var err error
		g.stdin, err = g.cmd.StdinPipe()
		require.NoError(t, err)
		pr, pw = io.Pipe()
		g.cmd.Stdout = pw
		g.lines = make(chan []byte, 16)
	} else {
		g.cmd.Stdout = g.out
	}
	require.NoError(t, g.cmd.Start())
	quit := make(chan struct{})
	go func() {
		_ = g.cmd.Wait()
		if pw != nil {
			pw.Close()
		}
		close(g.done)
	}()
	if stdio {
		go func() {
			defer close(g.lines)
			br := bufio.NewReader(pr)
			for {
				line, err := br.ReadBytes('\n')
				if len(line) > 0 {
					select {
					case g.lines <- line:
					case <-quit:
						_, _ = io.Copy(io.Discard, br)
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
	t.Cleanup(func() {
		close(quit)
		select {
		case <-g.done:
			return
		default:
		}
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.done:
		case <-time.After(10 * time.Second):
			_ = g.cmd.Process.Kill()
			<-g.done
		}
	})
	return g
}

// stop ends mcpguard with SIGTERM and checks that it exits cleanly.
func (g *advGuard) stop(t *testing.T) {
	t.Helper()
	if g.stdin != nil {
		g.stdin.Close()
	}
	require.NoError(t, g.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-g.done:
	case <-time.After(advWait):
		t.Fatalf("mcpguard did not exit after SIGTERM; output: %s", g.out.String())
	}
	assert.True(t, g.cmd.ProcessState.Success(), "exit status %v; output: %s", g.cmd.ProcessState, g.out.String())
}

// peakRSS returns the peak resident set size of the running process pid
// (VmHWM), or false where /proc does not tell.
func peakRSS(t *testing.T, pid int) (uint64, bool) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fields := strings.Fields(v)
			require.Len(t, fields, 2, "VmHWM line %q", line)
			require.Equal(t, "kB", fields[1])
			n, err := strconv.ParseUint(fields[0], 10, 64)
			require.NoError(t, err)
			return n << 10, true
		}
	}
	return 0, false
}

// stdioPeer speaks newline-delimited JSON-RPC on mcpguard's stdin and stdout.
type stdioPeer struct{ g *advGuard }

func (p stdioPeer) call(t *testing.T, id int, msg []byte, _ []string) []byte {
	t.Helper()
	require.False(t, bytes.Contains(msg, []byte("\n")), "stdio cannot frame a message with a raw newline")
	line := append(append(make([]byte, 0, len(msg)+1), msg...), '\n')
	written := make(chan error, 1)
	go func() {
		_, err := p.g.stdin.Write(line)
		written <- err
	}()
	timeout := time.After(advWait)
	for {
		select {
		case err := <-written:
			require.NoError(t, err, "writing to mcpguard; output: %s", p.g.out.String())
			written = nil
		case line, ok := <-p.g.lines:
			require.True(t, ok, "mcpguard closed its output; output: %s", p.g.out.String())
			if resp, ok := responseTo(t, line, id); ok {
				return resp
			}
		case <-timeout:
			t.Fatalf("no response to request %d within %v; output: %s", id, advWait, p.g.out.String())
		}
	}
}

// responseTo reports whether msg is the response to request id (or, with a
// null id, to a request that could not be parsed). It skips notifications
// and requests of the server, and fails on a response to another request.
func responseTo(t *testing.T, msg []byte, id int) ([]byte, bool) {
	t.Helper()
	var m struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Method  string          `json:"method"`
	}
	require.NoError(t, json.Unmarshal(msg, &m), "mcpguard wrote something that is not JSON: %.200q", msg)
	require.Equal(t, "2.0", m.JSONRPC, "%.200q", msg)
	if m.Method != "" {
		return nil, false
	}
	got := string(bytes.TrimSpace(m.ID))
	require.Contains(t, []string{strconv.Itoa(id), "null", ""}, got, "a response to another request: %.200q", msg)
	return msg, true
}

// httpPeer posts each message to mcpguard's streamable HTTP endpoint.
type httpPeer struct {
	url, session, token string
	client              *http.Client
}

func (p *httpPeer) post(t *testing.T, ctx context.Context, msg []byte, auth []string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(msg))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if p.session != "" {
		req.Header.Set(server.HeaderKeySessionID, p.session)
		req.Header.Set(mcp.HeaderProtocolVersion, mcp.LATEST_LEGACY_PROTOCOL_VERSION)
	}
	if auth == nil && p.token != "" {
		auth = []string{"Bearer " + p.token}
	}
	for _, a := range auth {
		req.Header.Add("Authorization", a)
	}
	resp, err := p.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

func (p *httpPeer) call(t *testing.T, id int, msg []byte, auth []string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), advWait)
	defer cancel()
	resp, body := p.post(t, ctx, msg, auth)
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		out, ok := responseTo(t, body, id)
		require.True(t, ok, "HTTP %d: %.200q", resp.StatusCode, body)
		return out
	}
	for _, line := range strings.Split(string(body), "\n") {
		if data, ok := strings.CutPrefix(line, "data:"); ok && strings.TrimSpace(data) != "" { // not a priming event
			if out, ok := responseTo(t, []byte(strings.TrimSpace(data)), id); ok {
				return out
			}
		}
	}
	t.Fatalf("no response to request %d in the event stream: %.300q", id, body)
	return nil
}

// logTail reads the records an audit log gained since it last looked.
type logTail struct {
	path string
	off  int64
}

func (l *logTail) next(t *testing.T) []audit.Record {
	t.Helper()
	fh, err := os.Open(l.path)
	require.NoError(t, err)
	defer fh.Close()
	_, err = fh.Seek(l.off, io.SeekStart)
	require.NoError(t, err)
	b, err := io.ReadAll(fh)
	require.NoError(t, err)
	var out []audit.Record
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break
		}
		var r audit.Record
		require.NoError(t, json.Unmarshal(b[:i], &r))
		out = append(out, r)
		b = b[i+1:]
		l.off += int64(i + 1)
	}
	return out
}

// advResponse is a JSON-RPC response to a tools/call.
type advResponse struct {
	Result *struct {
		IsError bool `json:"isError"`
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
	} `json:"result"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (r advResponse) text() string {
	var parts []string
	for _, c := range r.Result.Content {
		parts = append(parts, c.Text)
	}
	return strings.Join(parts, "\n")
}

// advTally counts what became of the cases of one run.
type advTally struct {
	denied, rejected, allowed int
	unauthorized              int // refused over HTTP before the guard
	slowest                   time.Duration
	slowestCase               string
}

// TestAdversarialCorpusThroughMCPGuard sends toolguard's adversarial corpus
// (testdata/adversarial.json and the generated inputs), and hostile inputs
// only a JSON-RPC message can carry, through the real mcpguard in front of
// the real filesystem server, over stdio and over streamable HTTP with
// bearer tokens. The messages are written byte for byte, so that duplicate
// keys, invalid UTF-8 and numbers out of range reach mcpguard as sent.
//
// Each must get a clear answer within a bounded time: a denial the model
// can read, recorded once in the audit log, or a JSON-RPC error for a
// message the JSON-RPC layer cannot decode, which reaches neither the guard
// nor the upstream. The few inputs the corpus allows (harmless names inside
// the workspace) go upstream and come back. Nothing outside the workspace is
// ever read, nothing is written, mcpguard still serves an allowed call at
// the end, its memory stays bounded and its log verifies.
func TestAdversarialCorpusThroughMCPGuard(t *testing.T) {
	mods := requireExternal(t)
	guard := buildBin(t, "mcpguard")
	policy, err := filepath.Abs(filepath.Join("testdata", "adversarial", "policy.yaml"))
	require.NoError(t, err)
	fsServer := filepath.Join(mods, "@modelcontextprotocol", "server-filesystem", "dist", "index.js")

	t.Run("stdio", func(t *testing.T) {
		t.Parallel()
		f := newAdvFixture(t)
		logPath := filepath.Join(f.logDir, "decisions.jsonl")
		g := startAdvGuard(t, f, []string{guard, "-policy", policy, "-audit", logPath, "-call-timeout", "10s",
			"-principal", "agent", "-scopes", "fs.read", "-attr", "workspace=" + f.ws,
			"--", "node", fsServer, f.root}, true)
		p := stdioPeer{g: g}
		advInitialize(t, p)
		runAdversarial(t, f, g, p, logPath, "agent", advCases(t, f, newAdvTokens(t, f)), false)
	})

	t.Run("http", func(t *testing.T) {
		t.Parallel()
		f := newAdvFixture(t)
		tokens := newAdvTokens(t, f)
		logPath := filepath.Join(f.logDir, "decisions.jsonl")
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		g := startAdvGuard(t, f, []string{guard, "-policy", policy, "-audit", logPath, "-call-timeout", "10s",
			"-listen", addr, "-jwks", tokens.jwksPath, "-audience", "mcp", "-issuer", "https://idp.test",
			"--", "node", fsServer, f.root}, false)
		waitListening(t, addr, 30*time.Second)
		p := &httpPeer{url: "http://" + addr + "/mcp", token: tokens.valid, client: &http.Client{}}
		resp, body := p.post(t, context.Background(), initializeMsg, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, "initialize: %s", body)
		p.session = resp.Header.Get(server.HeaderKeySessionID)
		require.NotEmpty(t, p.session, "initialize: no session id")
		resp, body = p.post(t, context.Background(), []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`), nil)
		require.Equal(t, http.StatusAccepted, resp.StatusCode, "notifications/initialized: %s", body)
		// Bodies over mcpguard's -max-request bound (4 MiB) are refused
		// before they are decoded, whether their length is declared or
		// they arrive chunked; the corpus run below checks that memory
		// stayed bounded and that nothing was recorded for them.
		big := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"` +
			f.ws + `/a","x":[` + strings.Repeat("0,", 8<<20) + `0]}}}`)
		start := time.Now()
		resp, body = p.post(t, context.Background(), big, nil)
		assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "%.200s", body)
		assert.Contains(t, string(body), "over the limit")
		chunked := struct{ io.Reader }{bytes.NewReader(big)} // no length: sent chunked
		req, err := http.NewRequest(http.MethodPost, p.url, chunked)
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+tokens.valid)
		req.Header.Set(server.HeaderKeySessionID, p.session)
		req.Header.Set(mcp.HeaderProtocolVersion, mcp.LATEST_LEGACY_PROTOCOL_VERSION)
		resp2, err := p.client.Do(req)
		if err == nil { // the server may also reset the connection mid-upload
			body, _ = io.ReadAll(resp2.Body)
			resp2.Body.Close()
			assert.NotEqual(t, http.StatusOK, resp2.StatusCode/100*100, "chunked oversized body: %.200s", body)
			assert.NotContains(t, string(body), `"result"`)
		}
		assert.Less(t, time.Since(start), advWait, "oversized bodies are refused promptly")
		runAdversarial(t, f, g, p, logPath, "reader", advCases(t, f, tokens), true)
	})
}

var initializeMsg = []byte(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"` +
	mcp.LATEST_LEGACY_PROTOCOL_VERSION + `","capabilities":{},"clientInfo":{"name":"adversarial","version":"1"}}}`)

// advInitialize performs the stdio handshake.
func advInitialize(t *testing.T, p stdioPeer) {
	t.Helper()
	var r struct {
		Result *struct {
			ProtocolVersion string `json:"protocolVersion"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal(p.call(t, 0, initializeMsg, nil), &r))
	require.NotNil(t, r.Result, "initialize failed; output: %s", p.g.out.String())
	_, err := p.g.stdin.Write([]byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n"))
	require.NoError(t, err)
}

// runAdversarial sends the cases to a started and initialized mcpguard,
// then one allowed call, stops it and checks its log.
func runAdversarial(t *testing.T, f *advFixture, g *advGuard, p advPeer, logPath, principal string, cases []advCase, overHTTP bool) {
	// The upstream's real tools are served.
	var list struct {
		Result struct {
			Tools []struct {
				Name string `json:"name"`
			} `json:"tools"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal(p.call(t, 1, []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`), nil), &list))
	var names []string
	for _, tl := range list.Result.Tools {
		names = append(names, tl.Name)
	}
	require.Contains(t, names, "read_file", "the upstream's read_file is listed")
	require.NotContains(t, names, "write_file", "no scope grants write_file")

	tail := &logTail{path: logPath}
	require.Empty(t, tail.next(t), "nothing recorded before the first call")
	var tally advTally
	id := 100
	for _, c := range cases {
		if c.auth != nil && !overHTTP {
			// Over stdio the principal is configured, not presented.
			continue
		}
		id++
		t.Run(c.Name, func(t *testing.T) {
			params, name := c.params, c.Tool
			if params == nil {
				params = []byte(`{"name":` + mustJSON(c.Tool) + `,"arguments":` + string(f.args(t, c)) + `}`)
			} else {
				var named struct {
					Name string `json:"name"`
				}
				if json.Unmarshal(params, &named) == nil {
					name = named.Name
				}
			}
			msg := []byte(`{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"method":"tools/call","params":` + string(params) + `}`)

			if hp, ok := p.(*httpPeer); ok && c.auth != nil {
				ctx, cancel := context.WithTimeout(context.Background(), advWait)
				defer cancel()
				resp, body := hp.post(t, ctx, msg, c.auth)
				assert.Contains(t, []int{http.StatusUnauthorized, http.StatusBadRequest}, resp.StatusCode, "%.300q", body)
				assert.Contains(t, resp.Header.Get("WWW-Authenticate"), "Bearer resource_metadata=")
				assert.Empty(t, resp.Header.Get(server.HeaderKeySessionID))
				assert.False(t, bytes.Contains(body, []byte(advCanary)))
				assert.Empty(t, tail.next(t), "refused before the guard: nothing recorded")
				tally.unauthorized++
				return
			}
			start := time.Now()
			raw := p.call(t, id, msg, c.auth)
			took := time.Since(start)
			recs := tail.next(t)

			assert.Less(t, took, advCaseBound, "answered within bounded time")
			if took > tally.slowest {
				tally.slowest, tally.slowestCase = took, c.Name
			}
			assert.False(t, bytes.Contains(raw, []byte(advCanary)), "nothing outside the workspace was read")
			var resp advResponse
			require.NoError(t, json.Unmarshal(raw, &resp), "%.300q", raw)

			if c.Want == "rpc" {
				require.NotNil(t, resp.Error, "the JSON-RPC layer refuses the message: %.300q", raw)
			}
			if resp.Error != nil {
				// The JSON-RPC layer may refuse only a message it cannot
				// decode into a tools/call request: every other one must
				// reach the guard, to be decided and recorded.
				// mcp-go (from v1.6) also refuses duplicate members, which
				// encoding/json would accept.
				if c.Want != "rpc" {
					require.Error(t, json.Unmarshal(msg, new(mcp.CallToolRequest)),
						"a message that decodes must reach the guard; got JSON-RPC error %d: %s", resp.Error.Code, resp.Error.Message)
				}
				tally.rejected++
				assert.Nil(t, resp.Result)
				assert.NotEmpty(t, resp.Error.Message)
				assert.True(t, utf8.ValidString(resp.Error.Message), "the error is clean text")
				assert.Less(t, len(resp.Error.Message), advMaxText, "the error is short")
				assert.Empty(t, recs, "a message the JSON-RPC layer refused reaches no guard, and no upstream")
				t.Logf("JSON-RPC error %d: %s", resp.Error.Code, resp.Error.Message)
				return
			}
			require.Nil(t, resp.Error, "the call reached the guard, which answers with a tool result: %.300q", raw)
			require.NotNil(t, resp.Result, "%.300q", raw)
			text := resp.text()

			if c.Want == "allow" {
				tally.allowed++
				require.Len(t, recs, 2, "a decision and an outcome")
				assert.Equal(t, audit.KindDecision, recs[0].Kind)
				assert.Equal(t, "allow", recs[0].Effect)
				assert.Equal(t, principal, recs[0].Principal)
				assert.Equal(t, name, recs[0].Tool)
				assert.Equal(t, audit.KindOutcome, recs[1].Kind)
				assert.Equal(t, recs[0].ID, recs[1].ID)
				t.Logf("allowed; the upstream answered (isError %v): %.200s", resp.Result.IsError, text)
				return
			}

			tally.denied++
			assert.True(t, resp.Result.IsError, "a tool error: %.300q", raw)
			assert.Contains(t, text, "denied", "the reason says the call was denied")
			assert.True(t, utf8.ValidString(text), "the reason is clean text")
			assert.Less(t, len(text), advMaxText, "the reason is short enough for a model")
			assert.Less(t, len(raw), 2*advMaxText, "the answer does not echo the input")
			require.Len(t, recs, 1, "exactly one record: the denial")
			r := recs[0]
			assert.Equal(t, audit.KindDecision, r.Kind)
			assert.Equal(t, "deny", r.Effect)
			assert.Equal(t, wantStage[c.Want], r.Stage, "the kind of denial; reason: %s", r.Reason)
			assert.True(t, utf8.ValidString(r.Tool), "the recorded tool name is clean text")
			if r.Stage == "tool" {
				assert.LessOrEqual(t, len(r.Tool), 1<<10, "the record does not copy an overlong name")
			} else {
				assert.Equal(t, name, r.Tool)
			}
			if c.Want == "no_principal" {
				assert.Empty(t, r.Principal)
			} else if r.Stage != "tool" {
				// toolguard denies an unknown tool before it looks at the
				// principal.
				assert.Equal(t, principal, r.Principal)
			}
			t.Logf("denied: %.200s", text)
		})
	}

	// mcpguard is still up and serves an allowed call.
	id++
	msg := `{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"` + f.ws + `/a"}}}`
	var resp advResponse
	require.NoError(t, json.Unmarshal(p.call(t, id, []byte(msg), nil), &resp))
	require.NotNil(t, resp.Result, "the allowed call after the corpus; output: %s", g.out.String())
	assert.False(t, resp.Result.IsError, resp.text())
	assert.Contains(t, resp.text(), "the workspace file a")
	recs := tail.next(t)
	require.Len(t, recs, 2)
	assert.Equal(t, "allow", recs[0].Effect)
	assert.Equal(t, audit.KindOutcome, recs[1].Kind)

	rss, ok := peakRSS(t, g.cmd.Process.Pid)
	g.stop(t)

	assert.Equal(t, f.tree, f.snapshot(t), "nothing was written upstream")
	out := g.out.String()
	assert.NotContains(t, out, "panic", "no panic, not even a recovered one")

	fh, err := os.Open(logPath)
	require.NoError(t, err)
	defer fh.Close()
	sum, err := audit.Verify(fh, audit.VerifyOptions{})
	require.NoError(t, err, "the audit log verifies")
	assert.Equal(t, tally.denied, sum.Denied, "one denial record per case the guard denied")
	assert.Equal(t, tally.allowed+1, sum.Allowed, "allow records only for the harmless cases and the final call")
	assert.Equal(t, sum.Allowed+sum.Denied, sum.Decisions)
	assert.Equal(t, sum.Allowed, sum.Outcomes, "an outcome only for allowed calls")
	assert.Equal(t, sum.Decisions+sum.Outcomes, sum.Records)

	if ok {
		t.Logf("mcpguard peak RSS (VmHWM): %.1f MiB", float64(rss)/(1<<20))
		assert.Less(t, rss, uint64(advMaxRSS), "mcpguard's memory stays bounded")
	} else {
		t.Log("peak RSS not measured: no /proc/<pid>/status")
	}
	if overHTTP {
		assert.Positive(t, tally.unauthorized, "the credential cases ran")
	}
	t.Logf("%d cases: %d denied by the guard, %d refused by the JSON-RPC layer, %d refused for want of a valid token, %d allowed (harmless); slowest %q in %v",
		tally.denied+tally.rejected+tally.allowed+tally.unauthorized, tally.denied, tally.rejected, tally.unauthorized, tally.allowed, tally.slowestCase, tally.slowest.Round(time.Millisecond))
}
