package guardmcp

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/agentguard/agentguard/internal/canonjson"
	"github.com/agentguard/agentguard/internal/safejson"
)

// LockVersion is the format version of tool lock files.
const LockVersion = 1

// Lock pins the tools of an upstream server: for each tool name, the
// digest ([ToolDigest]) of the definition that was reviewed. A tool whose
// digest differs, or that is not in the lock, is hidden and denied.
//
// The file is JSON: {"version": 1, "tools": {"name": "sha256:<hex>", ...},
// "findings": {"name": [Finding, ...], ...}}. Findings record what
// [ScanTools] found in each tool when the lock was written, for the
// reviewer; they do not decide anything when the lock is read (the scan
// runs again whenever tools are listed). A lock without findings is valid.
type Lock struct {
	Version  int                  `json:"version"`
	Tools    map[string]string    `json:"tools"`
	Findings map[string][]Finding `json:"findings,omitempty"`
}

// maxLockBytes bounds lock files read.
const maxLockBytes = 16 << 20

// ReadLock reads a lock file.
func ReadLock(path string) (*Lock, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("guardmcp: lock: %w", err)
	}
	if len(b) > maxLockBytes {
		return nil, fmt.Errorf("guardmcp: lock %s: too large", path)
	}
	var l Lock
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("guardmcp: lock %s: %w", path, err)
	}
	if l.Version != LockVersion {
		return nil, fmt.Errorf("guardmcp: lock %s: version %d, want %d", path, l.Version, LockVersion)
	}
	if l.Tools == nil {
		l.Tools = map[string]string{}
	}
	return &l, nil
}

// WriteLock writes l to path atomically (a temporary file, renamed).
func WriteLock(path string, l *Lock) error {
	out := struct {
		Version  int                  `json:"version"`
		Tools    map[string]string    `json:"tools"`
		Findings map[string][]Finding `json:"findings,omitempty"`
	}{LockVersion, l.Tools, l.Findings}
	if out.Tools == nil {
		out.Tools = map[string]string{}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return fmt.Errorf("guardmcp: lock: %w", err)
	}
	b = append(b, '\n')
	f, err := os.CreateTemp(filepath.Dir(path), ".tools.lock-*")
	if err != nil {
		return fmt.Errorf("guardmcp: lock: %w", err)
	}
	_, werr := f.Write(b)
	if werr == nil {
		werr = f.Sync()
	}
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("guardmcp: lock: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("guardmcp: lock: %w", err)
	}
	return nil
}

// pinnedFields are the members of a tool definition a digest covers.
var pinnedFields = []string{"name", "description", "inputSchema", "annotations"}

// ToolDigest returns "sha256:<hex>" over the canonical JSON of a tool
// definition's name, description, input schema and annotations (as sent in
// tools/list), so any change to what a model reads or what the guard
// validates changes the digest, and changes of layout or key order do not.
func ToolDigest(rawTool json.RawMessage) (string, error) {
	v, err := safejson.Decode(rawTool, safejson.Limits{})
	if err != nil {
		return "", fmt.Errorf("guardmcp: tool definition: %w", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return "", errors.New("guardmcp: tool definition is not an object")
	}
	pinned := make(map[string]any, len(pinnedFields))
	for _, f := range pinnedFields {
		if x, ok := obj[f]; ok {
			pinned[f] = x
		}
	}
	b, err := canonjson.Marshal(pinned)
	if err != nil {
		return "", fmt.Errorf("guardmcp: tool definition: %w", err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// Changes compares l with an earlier lock prev: the tools l pins that prev
// does not (added), those prev pins that l does not (removed), and those
// both pin with different digests (changed), each sorted by name. A nil
// lock pins nothing.
func (l *Lock) Changes(prev *Lock) (added, removed, changed []string) {
	var cur, old map[string]string
	if l != nil {
		cur = l.Tools
	}
	if prev != nil {
		old = prev.Tools
	}
	for _, name := range sortedKeys(cur) {
		d, ok := old[name]
		switch {
		case !ok:
			added = append(added, name)
		case d != cur[name]:
			changed = append(changed, name)
		}
	}
	for _, name := range sortedKeys(old) {
		if _, ok := cur[name]; !ok {
			removed = append(removed, name)
		}
	}
	return added, removed, changed
}

func sortedKeys(m map[string]string) []string {
	k := make([]string, 0, len(m))
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}
