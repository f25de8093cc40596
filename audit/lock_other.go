//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package audit

import "os"

// lockFile does nothing on this platform: the caller must make sure only one
// Log appends to a file.
func lockFile(*os.File) error { return nil }

// syncDir does nothing on this platform.
func syncDir(string) error { return nil }
