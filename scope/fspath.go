package scope

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// Bounds of [ResolvesUnder]: beyond them the check fails with an error, so
// a hostile tree or argument costs bounded time.
const (
	// maxResolveLinks is the number of symbolic links followed in one
	// resolution, as Linux's MAXSYMLINKS.
	maxResolveLinks = 40
	// maxResolveSteps is the number of path components looked at in one
	// resolution, link targets included.
	maxResolveSteps = 4096
)

// ResolvesUnder reports whether the absolute path p, resolved on this
// machine's filesystem the way the kernel resolves it when the path is
// opened, lands at base or below it, base being resolved the same way.
//
// Every component that exists is looked up with lstat; a symbolic link is
// replaced by its target (read with readlink) before the components after
// it, so "link/../x" is the parent of the link's target, then x, as the
// kernel has it. From the first component that does not exist, the rest of
// the path is taken as the directories a creating call (mkdir -p, a write
// with O_CREATE) would make, so ".." there goes back up those. A final
// component that is a link is followed, so a dangling link whose target is
// outside base is outside base. base may itself be or contain a link (/tmp
// on macOS is one). Besides comparing the resolved paths, the check asks
// whether the existing part of the resolved path or a directory above it is
// base's directory itself (the same device and inode), so a path through a
// bind mount of base is under base.
//
// p and base must be absolute and must not be empty or contain a NUL byte
// or a backslash; a component that cannot be looked up (permission denied,
// a file used as a directory), more than 40 links, more than 4096
// components, and a link inside /proc (such as /proc/self/fd/3, which leads
// to an open file rather than to the path it shows) are errors. In a policy
// an error never allows a call.
//
// ResolvesUnder reads the filesystem (lstat, stat and readlink, never open)
// every time it is called. It is a check: the tree can change between the check
// and the open that follows it, so a handler that opens the path must still
// open it inside the root (see package toolguard/fsroot), and a proxy in
// front of a server it does not control can only check.
//
// It is the function behind the CEL member function path.resolvesUnder(base).
func ResolvesUnder(p, base string) (bool, error) {
	rp, existing, err := resolvePath(p)
	if err != nil {
		return false, err
	}
	rb, _, err := resolvePath(base)
	if err != nil {
		return false, err
	}
	if rp == rb || rb == "/" || strings.HasPrefix(rp, rb) && rp[len(rb)] == '/' {
		return true, nil
	}
	return sameDirAbove(existing, rb)
}

// sameDirAbove reports whether dir or one of its parents is the directory
// base under another name: a bind mount of it, or (the reason to compare
// files rather than names) a spelling in another case on a case-insensitive
// filesystem.
func sameDirAbove(dir, base string) (bool, error) {
	bi, err := os.Stat(base)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("resolvesUnder: %w", err)
	}
	for {
		fi, err := os.Stat(dir)
		if err != nil {
			return false, fmt.Errorf("resolvesUnder: %w", err)
		}
		if os.SameFile(fi, bi) {
			return true, nil
		}
		if dir == "/" {
			return false, nil
		}
		dir = path.Dir(dir)
	}
}

// resolvePath returns the absolute, symlink-free path p leads to, and the
// part of it that exists; see ResolvesUnder.
func resolvePath(p string) (resolved, existing string, err error) {
	switch {
	case p == "":
		return "", "", errors.New("resolvesUnder: empty path")
	case strings.IndexByte(p, 0) >= 0:
		return "", "", fmt.Errorf("resolvesUnder: path %q contains a NUL byte", p)
	case strings.IndexByte(p, '\\') >= 0:
		return "", "", fmt.Errorf("resolvesUnder: path %q contains a backslash", p)
	case p[0] != '/':
		return "", "", fmt.Errorf("resolvesUnder: path %q is not absolute", p)
	}
	real := "/"          // the existing, link-free prefix resolved so far
	var missing []string // components below real that do not exist
	rest := p
	links, steps := 0, 0
	for rest != "" {
		var name string
		name, rest, _ = strings.Cut(rest, "/")
		if name == "" || name == "." {
			continue
		}
		if steps++; steps > maxResolveSteps {
			return "", "", fmt.Errorf("resolvesUnder: path %q has more than %d components", p, maxResolveSteps)
		}
		switch {
		case name == ".." && len(missing) > 0:
			missing = missing[:len(missing)-1]
			continue
		case name == "..":
			real = path.Dir(real)
			continue
		case len(missing) > 0:
			missing = append(missing, name)
			continue
		}
		next := path.Join(real, name)
		fi, err := os.Lstat(next)
		if errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, name)
			continue
		}
		if err != nil {
			return "", "", fmt.Errorf("resolvesUnder: %w", err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			real = next
			continue
		}
		if next == "/proc" || strings.HasPrefix(next, "/proc/") {
			// /proc/self/fd/N and the like lead to whatever file a
			// process has open, not to the path readlink shows.
			return "", "", fmt.Errorf("resolvesUnder: path %q leads through the link %q in /proc", p, next)
		}
		if links++; links > maxResolveLinks {
			return "", "", fmt.Errorf("resolvesUnder: path %q: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", "", fmt.Errorf("resolvesUnder: %w", err)
		}
		if target == "" || strings.IndexByte(target, 0) >= 0 {
			return "", "", fmt.Errorf("resolvesUnder: link %q has an unusable target", next)
		}
		if target[0] == '/' {
			real = "/"
		}
		rest = target + "/" + rest
	}
	if len(missing) == 0 {
		return real, real, nil
	}
	return path.Join(real, strings.Join(missing, "/")), real, nil
}

// resolvesUnderFunction declares the CEL member function
// path.resolvesUnder(base).
func resolvesUnderFunction() cel.EnvOption {
	return cel.Function("resolvesUnder",
		cel.MemberOverload("string_resolvesUnder_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
			cel.BinaryBinding(celResolvesUnder)))
}

func celResolvesUnder(lhs, rhs ref.Val) ref.Val {
	p, ok1 := lhs.(types.String)
	b, ok2 := rhs.(types.String)
	if !ok1 || !ok2 {
		return types.MaybeNoSuchOverloadErr(lhs)
	}
	ok, err := ResolvesUnder(string(p), string(b))
	if err != nil {
		return types.WrapErr(err)
	}
	return types.Bool(ok)
}
