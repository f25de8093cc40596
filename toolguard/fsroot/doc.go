// Package fsroot lets a tool handler open, create, list and remove files
// below one directory, and nothing outside it, even when the tree changes
// while the call is running.
//
// # Why a check is not enough
//
// A policy can say where a path may go: scope's isUnder compares the path
// as written, and resolvesUnder follows the symbolic links that exist when
// the policy is evaluated. Both are checks. Between the check and the
// handler's os.Open, whoever else can write to the directory can replace a
// component with a link to /etc, and the open follows it. The open itself
// has to refuse to leave the directory.
//
// # Using a Root
//
// Open the directory once, then call the Root's methods with the same
// absolute paths the policy judged:
//
//	root, err := fsroot.Open(workspace)
//	if err != nil {
//		return err
//	}
//	defer root.Close()
//	err = toolguard.Register(g, "read_file", "Read a file", func(ctx context.Context, in ReadArgs) (string, error) {
//		b, err := root.ReadFile(in.Path) // in.Path is "/w/notes.txt", as the policy saw it
//		return string(b), err
//	})
//
// Each operation resolves its name inside the directory when it runs, with
// Go's os.Root: links are followed as the kernel follows them, but a
// component, a link or a ".." that leaves the directory fails the
// operation with an *fs.PathError wrapping [ErrOutside]. The error names the
// path as the caller gave it and is fit to hand back to a model.
//
// # What it does not do
//
// A Root confines names; it does not decide who may use which name (that is
// the policy's job), and it does not stop hard links, bind mounts or /proc
// files that are already inside the directory. Links with absolute targets
// are refused, even when they point inside. A proxy that forwards calls to a
// server it does not control cannot use a Root: it can only check, with
// resolvesUnder, and the server's own opens remain racy.
package fsroot
