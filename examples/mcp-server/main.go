// Command mcp-server is a small MCP server, written with mcp-go, whose
// file tools — read_text_file, list_directory, write_file over one directory
// — are guarded in-process by agentguard: every tools/call is validated
// against the tool's schema, decided by the policy and recorded in the audit
// log before the tool runs, and tools/list shows the caller only the tools
// its scopes grant. The tools open files with package toolguard/fsroot, so
// a path that leads out of the directory, through a symbolic link too, is
// refused when the file is opened, even if the link appeared after the
// policy's decision.
//
// Over stdio the principal comes from the command line:
//
//	mcp-server -root ./files -policy policy.yaml -audit decisions.jsonl \
//	    -principal support-bot -scopes fs.read -attr workspace=$PWD/files
//
// Over streamable HTTP (-listen) the principal is either the same static one
// or, with -jwks or -jwt-key, the subject of the request's bearer token:
//
//	mcp-server -root ./files -policy policy.yaml -audit decisions.jsonl \
//	    -listen 127.0.0.1:8080 -jwks keys.json -audience mcp -issuer https://idp
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentguard/agentguard/audit"
	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
	"github.com/agentguard/agentguard/toolguard/fsroot"
)

type attrFlag map[string]any

func (a attrFlag) String() string { return fmt.Sprint(map[string]any(a)) }
func (a attrFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return errors.New("want key=value")
	}
	a[k] = v
	return nil
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mcp-server:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("mcp-server", flag.ContinueOnError)
	root := fs.String("root", "", "directory the tools work in (required)")
	policyPath := fs.String("policy", "", "policy file (required)")
	auditPath := fs.String("audit", "", "decision log, JSON Lines (required)")
	listen := fs.String("listen", "", "serve streamable HTTP at this address (/mcp) instead of stdio")
	principal := fs.String("principal", "", "principal ID for stdio, or for HTTP without tokens")
	scopes := fs.String("scopes", "", "comma-separated scopes of -principal")
	attrs := attrFlag{}
	fs.Var(attrs, "attr", "attribute key=value of -principal (repeatable)")
	jwksPath := fs.String("jwks", "", "JWKS file with the keys of bearer tokens (HTTP)")
	jwtKey := fs.String("jwt-key", "", "PEM public key file of bearer tokens (HTTP)")
	audience := fs.String("audience", "", "required token audience")
	issuer := fs.String("issuer", "", "required token issuer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *root == "" || *policyPath == "" || *auditPath == "" {
		return errors.New("-root, -policy and -audit are required")
	}
	dir, err := fsroot.Open(*root)
	if err != nil {
		return err
	}
	defer dir.Close()

	p, err := scope.Load(*policyPath)
	if err != nil {
		return err
	}
	log, err := audit.OpenFile(*auditPath, audit.FileOptions{})
	if err != nil {
		return err
	}
	defer log.Close()
	g, err := toolguard.New(p, toolguard.WithSink(log), toolguard.WithToolTimeout(time.Minute))
	if err != nil {
		return err
	}

	s := server.NewMCPServer("agentguard-files", "1.0.0", guardmcp.ServerOptions(g)...)
	if err := addTools(s, g, dir); err != nil {
		return err
	}

	pf, err := principalFunc(*principal, *scopes, attrs, *jwksPath, *jwtKey, *audience, *issuer)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *listen == "" {
		return serveStdio(ctx, s, pf)
	}
	return serveHTTP(ctx, s, pf, *listen)
}

func principalFunc(id, scopes string, attrs map[string]any, jwks, jwtKey, aud, iss string) (guardmcp.PrincipalFunc, error) {
	if jwks != "" || jwtKey != "" {
		path := jwks
		if path == "" {
			path = jwtKey
		}
		keys, err := guardmcp.LoadJWTKeys(path)
		if err != nil {
			return nil, err
		}
		v, err := guardmcp.NewJWTVerifier(keys, guardmcp.JWTOptions{Audience: aud, Issuer: iss})
		if err != nil {
			return nil, err
		}
		return v.PrincipalFunc(), nil
	}
	if id == "" {
		return nil, errors.New("-principal (or -jwks / -jwt-key) is required")
	}
	pr := scope.Principal{ID: id, Attrs: attrs}
	for _, s := range strings.Split(scopes, ",") {
		if s = strings.TrimSpace(s); s != "" {
			pr.Scopes = append(pr.Scopes, s)
		}
	}
	return guardmcp.Static(pr), nil
}

func serveStdio(ctx context.Context, s *server.MCPServer, pf guardmcp.PrincipalFunc) error {
	stdio := server.NewStdioServer(s)
	stdio.SetContextFunc(guardmcp.StdioContextFunc(pf))
	err := stdio.Listen(ctx, os.Stdin, os.Stdout)
	if err == nil || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func serveHTTP(ctx context.Context, s *server.MCPServer, pf guardmcp.PrincipalFunc, addr string) error {
	h := server.NewStreamableHTTPServer(s, server.WithHTTPContextFunc(guardmcp.HTTPContextFunc(pf)))
	mux := http.NewServeMux()
	mux.Handle("/mcp", h)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "mcp-server: listening on http://%s/mcp\n", ln.Addr())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = h.Shutdown(sctx)
	return srv.Shutdown(sctx)
}

// fileError is the tool result for a failed file operation. A path that
// leads outside the root, lexically or through a symbolic link, is refused
// when the file is opened, whatever the policy concluded before.
func fileError(err error) *mcp.CallToolResult {
	if errors.Is(err, fsroot.ErrOutside) {
		return mcp.NewToolResultError("access denied: " + err.Error())
	}
	return mcp.NewToolResultError(err.Error())
}

const pathSchema = `{"type":"object","properties":{"path":{"type":"string"}},"required":["path"],"additionalProperties":false}`

// addTools registers the file tools, which work in root only.
func addTools(s *server.MCPServer, g *toolguard.Guard, root *fsroot.Root) error {
	type tool struct {
		t mcp.Tool
		h server.ToolHandlerFunc
	}
	tools := []tool{
		{
			mcp.NewToolWithRawSchema("read_text_file", "Read a text file.", json.RawMessage(pathSchema)),
			func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				b, err := root.ReadFile(req.GetString("path", ""))
				if err != nil {
					return fileError(err), nil
				}
				return mcp.NewToolResultText(string(b)), nil
			},
		},
		{
			mcp.NewToolWithRawSchema("list_directory", "List a directory: [FILE] and [DIR] entries.", json.RawMessage(pathSchema)),
			func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				ents, err := root.ReadDir(req.GetString("path", ""))
				if err != nil {
					return fileError(err), nil
				}
				lines := make([]string, 0, len(ents))
				for _, e := range ents {
					kind := "[FILE]"
					if e.IsDir() {
						kind = "[DIR]"
					}
					lines = append(lines, kind+" "+e.Name())
				}
				sort.Strings(lines)
				return mcp.NewToolResultText(strings.Join(lines, "\n")), nil
			},
		},
		{
			mcp.NewToolWithRawSchema("write_file", "Create or overwrite a file.",
				json.RawMessage(`{"type":"object","properties":{"path":{"type":"string"},"content":{"type":"string"}},"required":["path","content"],"additionalProperties":false}`)),
			func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				err := root.WriteFile(req.GetString("path", ""), []byte(req.GetString("content", "")), fsroot.WriteOptions{Sync: true})
				if err != nil {
					return fileError(err), nil
				}
				return mcp.NewToolResultText("Successfully wrote to " + req.GetString("path", "")), nil
			},
		},
	}
	ro, rw := true, false
	tools[0].t.Annotations.ReadOnlyHint = &ro
	tools[1].t.Annotations.ReadOnlyHint = &ro
	tools[2].t.Annotations.ReadOnlyHint = &rw
	tools[2].t.Annotations.DestructiveHint = &ro
	for _, t := range tools {
		if err := guardmcp.AddTool(s, g, t.t, t.h); err != nil {
			return err
		}
	}
	return nil
}
