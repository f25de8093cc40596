package toolguard

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/agentguard/agentguard/scope"
)

// ReloadPolicy loads the policy file at path and swaps it in with
// [Guard.SetPolicy]. If the file does not load, or does not fit the
// registered tools, the policy in force stays and the error says why.
func (g *Guard) ReloadPolicy(path string, opts ...scope.Option) (*scope.Policy, error) {
	p, err := scope.Load(path, opts...)
	if err != nil {
		return nil, fmt.Errorf("toolguard: reloading policy, keeping revision %.12s: %w", g.Policy().Revision(), err)
	}
	if err := g.SetPolicy(p); err != nil {
		return nil, fmt.Errorf("toolguard: reloading policy, keeping revision %.12s: %w", g.Policy().Revision(), err)
	}
	return p, nil
}

// WatchPolicy keeps the guard's policy in step with the policy file at
// path: every interval (one second if zero) until ctx is done, if the file's
// content changed since the last look, it is loaded and — when its revision
// differs from the policy in force — swapped in. The first look always
// loads, so a change made before the watch started is not missed. Each
// reload is reported to report, if not nil, with the new policy or the error
// that kept the old one. Polling needs nothing from the platform and notices
// edits made by renaming a new file into place.
func (g *Guard) WatchPolicy(ctx context.Context, path string, interval time.Duration, report func(*scope.Policy, error), opts ...scope.Option) {
	if interval <= 0 {
		interval = time.Second
	}
	var last []byte
	t := time.NewTicker(interval)
	defer t.Stop()
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		sum, err := fileDigest(path)
		if err != nil {
			if report != nil {
				report(nil, fmt.Errorf("toolguard: watching policy: %w", err))
			}
			continue
		}
		if bytes.Equal(sum, last) {
			continue
		}
		last = sum
		p, err := scope.Load(path, opts...)
		if err == nil && p.Revision() == g.Policy().Revision() {
			continue // the policy in force already
		}
		if err == nil {
			err = g.SetPolicy(p)
		}
		if err != nil {
			p, err = nil, fmt.Errorf("toolguard: reloading policy, keeping revision %.12s: %w", g.Policy().Revision(), err)
		}
		if report != nil {
			report(p, err)
		}
	}
}

func fileDigest(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The whole file: the size limit is the loader's (WithMaxPolicyBytes
	// may raise it), and a change past any prefix must be seen.
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}
