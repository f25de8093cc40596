package fsroot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// ErrOutside is the error, inside an *fs.PathError, of an operation whose
// name is outside the root, lexically or by following a symbolic link.
var ErrOutside = errors.New("path is outside the allowed directory")

// Root gives access to the files below one directory, and to nothing else.
// Names are the absolute paths a policy judged, such as "/w/notes.txt" for a
// root at /w; a relative name is taken relative to the root.
//
// Every operation resolves its name inside the root when it runs, following
// symbolic links as the kernel does but failing with [ErrOutside] where a
// component, a link or a ".." would leave the root — also when the tree was
// changed after a policy checked the path. Links with an absolute target are
// refused even when the target is inside the root (a limit of [os.Root]).
//
// A Root is safe for concurrent use. The zero value is not usable: make one
// with [Open].
type Root struct {
	dirs [2][]string // the components of the directory as given, and with links resolved
	root *os.Root
}

// Open opens the directory dir as a Root. dir may be relative (to the
// working directory) and may contain symbolic links; names are mapped to the
// root under either spelling of it. Close the Root when done.
func Open(dir string) (*Root, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("fsroot: %w", err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("fsroot: %w", err)
	}
	r, err := os.OpenRoot(real)
	if err != nil {
		return nil, fmt.Errorf("fsroot: %w", err)
	}
	return &Root{dirs: [2][]string{split(filepath.ToSlash(abs)), split(filepath.ToSlash(real))}, root: r}, nil
}

// Close closes the root. Files opened through it stay open.
func (r *Root) Close() error { return r.root.Close() }

// Dir returns the directory of the root as given to Open, made absolute.
func (r *Root) Dir() string { return "/" + strings.Join(r.dirs[0], "/") }

// split returns the components of a slash-separated path, without empty
// and "." components.
func split(p string) []string {
	return slices.DeleteFunc(strings.Split(p, "/"), func(s string) bool { return s == "" || s == "." })
}

// Rel returns the name inside the root that name refers to: the components
// after the root's directory, with ".." kept (it is resolved, with links,
// when an operation runs). It fails with ErrOutside for an absolute name
// that does not start with the root's directory, and for an empty name or
// one with a NUL byte.
func (r *Root) Rel(name string) (string, error) {
	if name == "" || strings.IndexByte(name, 0) >= 0 {
		return "", &fs.PathError{Op: "resolve", Path: name, Err: fs.ErrInvalid}
	}
	parts := split(name)
	if path.IsAbs(name) {
		var ok bool
		for _, d := range r.dirs {
			if len(parts) >= len(d) && slices.Equal(parts[:len(d)], d) {
				parts, ok = parts[len(d):], true
				break
			}
		}
		if !ok {
			return "", &fs.PathError{Op: "resolve", Path: name, Err: ErrOutside}
		}
	}
	if len(parts) == 0 {
		return ".", nil
	}
	rel := strings.Join(parts, "/")
	if strings.HasSuffix(name, "/") {
		rel += "/"
	}
	return rel, nil
}

// do maps name into the root, runs op on it and puts name, as the caller
// spelt it, into the error.
func do[T any](r *Root, op, name string, f func(rel string) (T, error)) (T, error) {
	rel, err := r.Rel(name)
	if err != nil {
		var zero T
		return zero, err
	}
	v, err := f(rel)
	return v, fixErr(op, name, err)
}

// errEscapes is the text of os.Root's unexported error for a name that
// leaves the root (TestEscapeErrorText pins it).
const errEscapes = "path escapes from parent"

func fixErr(op, name string, err error) error {
	if err == nil {
		return nil
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		return err
	}
	out := &fs.PathError{Op: op, Path: name, Err: pe.Err}
	if pe.Err.Error() == errEscapes {
		out.Err = ErrOutside
	}
	return out
}

// Open opens the named file for reading.
func (r *Root) Open(name string) (*os.File, error) {
	return do(r, "open", name, r.root.Open)
}

// OpenFile opens the named file with the flags and permission bits of
// os.OpenFile. With os.O_CREATE, a dangling link whose target is outside the
// root fails with ErrOutside instead of creating the target.
func (r *Root) OpenFile(name string, flag int, perm fs.FileMode) (*os.File, error) {
	return do(r, "open", name, func(rel string) (*os.File, error) { return r.root.OpenFile(rel, flag, perm) })
}

// ReadFile reads the named file.
func (r *Root) ReadFile(name string) ([]byte, error) {
	return do(r, "read", name, r.root.ReadFile)
}

// WriteOptions configure [Root.WriteFile]. The zero value creates or
// truncates the file with permission bits 0644 and does not sync.
type WriteOptions struct {
	// Perm are the permission bits of a file that is created; zero means
	// 0644.
	Perm fs.FileMode
	// Exclusive fails if the file already exists (os.O_EXCL).
	Exclusive bool
	// Sync flushes the file and then its directory to stable storage
	// (fsync) before WriteFile returns, so that a file WriteFile reported
	// written survives a crash.
	Sync bool
}

// WriteFile writes data to the named file, creating it if necessary.
func (r *Root) WriteFile(name string, data []byte, opts WriteOptions) error {
	_, err := do(r, "write", name, func(rel string) (struct{}, error) {
		return struct{}{}, r.writeFile(rel, data, opts)
	})
	return err
}

func (r *Root) writeFile(rel string, data []byte, opts WriteOptions) error {
	flag := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if opts.Exclusive {
		flag |= os.O_EXCL
	}
	perm := opts.Perm
	if perm == 0 {
		perm = 0o644
	}
	f, err := r.root.OpenFile(rel, flag, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil && opts.Sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil || !opts.Sync {
		return err
	}
	d, err := r.root.Open(path.Dir(strings.TrimSuffix(rel, "/")))
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Mkdir creates the named directory.
func (r *Root) Mkdir(name string, perm fs.FileMode) error {
	_, err := do(r, "mkdir", name, func(rel string) (struct{}, error) { return struct{}{}, r.root.Mkdir(rel, perm) })
	return err
}

// MkdirAll creates the named directory and any missing parents.
func (r *Root) MkdirAll(name string, perm fs.FileMode) error {
	_, err := do(r, "mkdir", name, func(rel string) (struct{}, error) { return struct{}{}, r.root.MkdirAll(rel, perm) })
	return err
}

// ReadDir reads the named directory and returns its entries sorted by
// name, as os.ReadDir.
func (r *Root) ReadDir(name string) ([]fs.DirEntry, error) {
	return do(r, "readdir", name, func(rel string) ([]fs.DirEntry, error) {
		f, err := r.root.Open(rel)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		ents, err := f.ReadDir(-1)
		slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
		return ents, err
	})
}

// Stat returns the file information of the named file, following links.
func (r *Root) Stat(name string) (fs.FileInfo, error) {
	return do(r, "stat", name, r.root.Stat)
}

// Remove removes the named file or empty directory. A link is removed, not
// its target.
func (r *Root) Remove(name string) error {
	_, err := do(r, "remove", name, func(rel string) (struct{}, error) { return struct{}{}, r.root.Remove(rel) })
	return err
}
