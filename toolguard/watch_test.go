package toolguard_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

func TestWatchPolicy(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	write := func(src string) {
		tmp := filepath.Join(dir, "new.yaml")
		require.NoError(t, os.WriteFile(tmp, []byte(src), 0o644))
		require.NoError(t, os.Rename(tmp, path)) // how editors and deploys replace files
	}
	write("version: 1\nscopes:\n  s: {grants: [{tools: [t]}]}\n")
	p, err := scope.Load(path)
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	require.NoError(t, err)
	require.NoError(t, g.Register(toolguard.Tool{Name: "t", Handler: func(context.Context, json.RawMessage) (any, error) { return "ok", nil },
		InputSchema: json.RawMessage(`{"type":"object","properties":{"n":{"type":"integer"}}}`)}))
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "a", Scopes: []string{"s"}})

	reports := make(chan error, 100)
	wctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go g.WatchPolicy(wctx, path, 5*time.Millisecond, func(_ *scope.Policy, err error) { reports <- err })
	next := func() error {
		t.Helper()
		select {
		case err := <-reports:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("no reload reported")
			return nil
		}
	}

	_, err = g.Call(ctx, "t", nil)
	require.NoError(t, err)

	write("version: 1\nscopes:\n  s: {grants: [{tools: [t]}]}\nrules:\n  - {name: closed, effect: deny, tools: [t]}\n")
	require.NoError(t, next())
	_, err = g.Call(ctx, "t", nil)
	assert.ErrorIs(t, err, toolguard.ErrPolicy)
	closedRev := g.Policy().Revision()

	// A policy that does not load keeps the old one and says why.
	write("version: 1\nscopes:\n  s: {grants: [{tools: [t], when: 'args.n =='}]}\n")
	err = next()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "keeping revision "+closedRev[:12])
	assert.Contains(t, err.Error(), "policy.yaml:3:")
	assert.Equal(t, closedRev, g.Policy().Revision())

	// So does one that does not fit the registered tools' schemas.
	write("version: 1\nscopes:\n  s: {grants: [{tools: [t], when: 'args.m == 1'}]}\n")
	err = next()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "undefined field 'm'")
	assert.Equal(t, closedRev, g.Policy().Revision())
}

// TestWatchPolicyLargeFile: with the size limit raised, a change past the
// first MaxPolicyBytes of the file is still seen and loaded.
func TestWatchPolicyLargeFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	pad := strings.Repeat("# padding to push the change past the default limit\n", scope.MaxPolicyBytes/50)
	head := "version: 1\nscopes:\n  s: {grants: [{tools: [t]}]}\n" + pad
	write := func(src string) {
		tmp := filepath.Join(dir, "new.yaml")
		require.NoError(t, os.WriteFile(tmp, []byte(src), 0o644))
		require.NoError(t, os.Rename(tmp, path))
	}
	write(head)
	opt := scope.WithMaxPolicyBytes(2 * scope.MaxPolicyBytes)
	p, err := scope.Load(path, opt)
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	require.NoError(t, err)
	require.NoError(t, g.Register(toolguard.Tool{Name: "t", Handler: func(context.Context, json.RawMessage) (any, error) { return "ok", nil }}))
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "a", Scopes: []string{"s"}})
	reports := make(chan error, 100)
	wctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go g.WatchPolicy(wctx, path, 5*time.Millisecond, func(_ *scope.Policy, err error) { reports <- err }, opt)
	_, err = g.Call(ctx, "t", nil)
	require.NoError(t, err)

	write(head + "rules:\n  - {name: closed, effect: deny, tools: [t]}\n")
	deadline := time.After(2 * time.Minute) // loading 4 MiB twice is slow under -race
	for {
		_, err = g.Call(ctx, "t", nil)
		if errors.Is(err, toolguard.ErrPolicy) {
			return
		}
		select {
		case err := <-reports:
			require.NoError(t, err)
		case <-deadline:
			t.Fatal("the change at the end of the file was not loaded")
		}
	}
}
