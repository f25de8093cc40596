// Command auditverify checks agentguard decision logs and summarises them.
//
//	auditverify [-pubkey key] [-hmac-key key] [-closed [-recovered]] [-witness checkpoints.jsonl] [-v1-end] decisions.jsonl...
//
// The files are verified as one hash chain, in the order given: pass a
// rotated log's files oldest first, the active file last (the rotated names
// sort that way, so decisions-*.jsonl decisions.jsonl does it). It prints
// the number of records, allowed and denied decisions, denials by rule,
// principals, the time range and the checkpoints, and exits with status 1
// naming the file and line of the first record that was modified, deleted,
// inserted or reordered, of a bad checkpoint signature, or of a missing
// close checkpoint with -closed. Status 2 is a usage or I/O error.
//
// -pubkey is the ed25519 public key the checkpoints must be signed with:
// 64 hex digits, or a file holding them or a PEM "PUBLIC KEY" block.
// -hmac-key is the chain's HMAC key in hex, when it was written with one.
// -closed requires the log to end with a close checkpoint, which detects
// records cut from its end, and to hold no recover checkpoint, which a
// start writes after an unclean end (a crash, or records cut before the
// restart); -recovered accepts those, and the summary lists them. -witness names the file of an
// audit.WitnessFile that received the log's checkpoints (it needs
// -pubkey): the log must hold every tree the witness saw, which detects a
// log cut back, rolled back to an earlier checkpoint or rewritten before a
// witnessed one. -v1-end accepts a keyed log whose last line is in format
// version 1 and not a signed checkpoint (a log written before format
// version 2), which no key can vouch for.
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/agentguard/agentguard/audit"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command without its process: it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("auditverify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pubFlag := fs.String("pubkey", "", "ed25519 public key of the checkpoints: hex, or a file with hex or PEM")
	hmacFlag := fs.String("hmac-key", "", "HMAC key of the chain, in hex")
	closed := fs.Bool("closed", false, "require the log to end with a close checkpoint and to hold no recover checkpoint")
	recovered := fs.Bool("recovered", false, "with -closed, accept recover checkpoints (starts after a crash)")
	witnessFlag := fs.String("witness", "", "witness file holding the log's checkpoints (needs -pubkey)")
	v1End := fs.Bool("v1-end", false, "accept a keyed log that ends in unauthenticated format version 1 lines")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: auditverify [-pubkey key] [-hmac-key key] [-closed [-recovered]] [-witness checkpoints.jsonl] [-v1-end] decisions.jsonl...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	opts := audit.VerifyOptions{RequireClosed: *closed, AcceptRecovered: *recovered, AcceptVersion1End: *v1End}
	if *pubFlag != "" {
		pub, err := parsePublicKey(*pubFlag)
		if err != nil {
			fmt.Fprintln(stderr, "auditverify:", err)
			return 2
		}
		opts.PublicKey = pub
	}
	if *hmacFlag != "" {
		key, err := hex.DecodeString(*hmacFlag)
		if err != nil || len(key) == 0 {
			fmt.Fprintln(stderr, "auditverify: -hmac-key is not hex")
			return 2
		}
		opts.HMACKey = key
	}

	if *witnessFlag != "" {
		if opts.PublicKey == nil {
			fmt.Fprintln(stderr, "auditverify: -witness needs -pubkey")
			return 2
		}
		w, err := os.ReadFile(*witnessFlag)
		if err != nil {
			fmt.Fprintln(stderr, "auditverify:", err)
			return 2
		}
		opts.Witness = bytes.NewReader(w)
	}

	files, err := openAll(fs.Args())
	if err != nil {
		fmt.Fprintln(stderr, "auditverify:", err)
		return 2
	}
	defer func() {
		for _, f := range files {
			f.f.Close()
		}
	}()
	readers := make([]io.Reader, len(files))
	for i := range files {
		readers[i] = files[i]
	}
	sum, err := audit.Verify(io.MultiReader(readers...), opts)
	printSummary(stdout, sum, opts)
	var ve *audit.VerifyError
	switch {
	case errors.As(err, &ve):
		name, line := locate(files, ve.Line)
		fmt.Fprintf(stdout, "TAMPERED: %s:%d (seq %d): %s\n", name, line, ve.Seq, ve.Reason)
		return 1
	case err != nil:
		fmt.Fprintln(stderr, "auditverify:", err)
		return 2
	}
	fmt.Fprintln(stdout, "OK: the chain is intact")
	return 0
}

// countingFile counts the newlines read from a file, so a line number of
// the whole chain can be turned into a file and a line.
type countingFile struct {
	name    string
	f       *os.File
	lines   int  // newlines read so far
	started bool // Read was called: every file before it was read to its end
}

func (c *countingFile) Read(p []byte) (int, error) {
	c.started = true
	n, err := c.f.Read(p)
	c.lines += bytes.Count(p[:n], []byte{'\n'})
	return n, err
}

func openAll(names []string) ([]*countingFile, error) {
	var files []*countingFile
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			for _, o := range files {
				o.f.Close()
			}
			return nil, err
		}
		files = append(files, &countingFile{name: name, f: f})
	}
	return files, nil
}

// locate maps line n of the chain to a file and a line in it. Verify reads
// ahead, so the file being read may be counted only in part; every file
// before it was read to its end, and line n is in one of those or in it.
func locate(files []*countingFile, n int) (string, int) {
	before := 0
	for i, f := range files {
		passed := i+1 < len(files) && files[i+1].started
		if !passed || n <= before+f.lines {
			return f.name, n - before
		}
		before += f.lines
	}
	return files[len(files)-1].name, n // not reached: the last file is never passed
}

func parsePublicKey(s string) (ed25519.PublicKey, error) {
	text := []byte(s)
	if len(s) != 2*ed25519.PublicKeySize {
		b, err := os.ReadFile(s)
		if err != nil {
			return nil, fmt.Errorf("-pubkey: %w", err)
		}
		text = bytes.TrimSpace(b)
	}
	if block, _ := pem.Decode(text); block != nil {
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("-pubkey: %w", err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("-pubkey: %T is not an ed25519 key", k)
		}
		return pub, nil
	}
	b, err := hex.DecodeString(string(text))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("-pubkey: not 64 hex digits, a file holding them, or a PEM public key")
	}
	return ed25519.PublicKey(b), nil
}

func printSummary(w io.Writer, sum audit.Summary, opts audit.VerifyOptions) {
	fmt.Fprintf(w, "records:     %d (%d decisions: %d allowed, %d denied; %d outcomes; %d checkpoints)\n",
		sum.Records, sum.Decisions, sum.Allowed, sum.Denied, sum.Outcomes, sum.Checkpoints)
	if sum.Records > 0 {
		fmt.Fprintf(w, "time range:  %s .. %s\n", sum.First.UTC().Format(time.RFC3339Nano), sum.Last.UTC().Format(time.RFC3339Nano))
	}
	if len(sum.ByRule) > 0 {
		fmt.Fprintln(w, "denied by:")
		for _, k := range sortedByCount(sum.ByRule) {
			fmt.Fprintf(w, "  %-24s %d\n", orNone(k), sum.ByRule[k])
		}
	}
	if len(sum.Principals) > 0 {
		fmt.Fprintln(w, "principals:")
		for _, k := range sortedByCount(sum.Principals) {
			fmt.Fprintf(w, "  %-24s %d\n", orNone(k), sum.Principals[k])
		}
	}
	switch {
	case opts.PublicKey != nil:
		fmt.Fprintf(w, "signatures:  %d of %d checkpoints verified with key %s\n", sum.Signed, sum.Checkpoints, audit.KeyID(opts.PublicKey))
	case sum.Checkpoints > 0:
		fmt.Fprintln(w, "signatures:  not checked (no -pubkey)")
	}
	if sum.Sealed > 0 {
		fmt.Fprintf(w, "sealed:      %d records authenticated on their own\n", sum.Sealed)
	}
	if opts.Witness != nil {
		fmt.Fprintf(w, "witnessed:   the first %d records match the witness\n", sum.Witnessed)
	}
	fmt.Fprintf(w, "closed:      %v\n", sum.Closed)
	if len(sum.Recovered) > 0 {
		fmt.Fprintf(w, "recovered:   resumed after an unclean end (a crash, or records cut) before seq %v\n", sum.Recovered)
	}
	if sum.LastHash != "" {
		fmt.Fprintf(w, "last hash:   %s (seq %d)\n", sum.LastHash, sum.LastSeq)
		fmt.Fprintf(w, "tree root:   %s (%d records)\n", sum.Root, sum.Records)
	}
}

func sortedByCount(m map[string]int) []string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	return keys
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
