package audit_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
)

// keyConfig is one column of the table of what each key configuration
// detects: how the log is written, and how an auditor verifies it (with
// everything that configuration gives them).
type keyConfig struct {
	name    string
	hmac    []byte
	sign    ed25519.PrivateKey
	witness bool
}

var keyConfigs = []keyConfig{
	{name: "no key"},
	{name: "HMAC", hmac: []byte("tamper hmac key")},
	{name: "signing", sign: testKey},
	{name: "signing+witness", sign: testKey, witness: true},
}

// fileOptions are the options the log is written with; w is the witness
// file for the witness column.
func (c keyConfig) fileOptions(w audit.Sink) audit.FileOptions {
	o := audit.FileOptions{HMACKey: c.hmac, SigningKey: c.sign}
	if c.witness {
		o.Witness = w
	}
	return o
}

// verify reports whether the auditor detects tampering of the log, with
// the strongest check the configuration allows: the HMAC key or the public
// key and RequireClosed, or the public key and the witness. The log a
// crash left is not closed, so its auditor cannot demand RequireClosed:
// only the records' own MACs and signatures (and the witness) count.
func (c keyConfig) verify(t *testing.T, tl tamperLog) error {
	t.Helper()
	data, err := os.ReadFile(tl.path)
	require.NoError(t, err)
	opts := audit.VerifyOptions{HMACKey: c.hmac}
	if c.sign != nil {
		opts.PublicKey = c.sign.Public().(ed25519.PublicKey)
	}
	opts.RequireClosed = (c.hmac != nil || c.sign != nil) && !tl.crashed
	if c.witness {
		w, err := os.ReadFile(tl.witness)
		require.NoError(t, err)
		opts.Witness = bytes.NewReader(w)
		opts.RequireClosed = false // the witness alone must do
	}
	_, err = audit.Verify(bytes.NewReader(data), opts)
	if err != nil {
		var ve *audit.VerifyError
		require.ErrorAs(t, err, &ve, "a tampered log is a VerifyError, not a malfunction")
	}
	return err
}

// tamperLog is a log as written to disk: two runs of the writer, each
// closed, or the second one cut short by a crash.
type tamperLog struct {
	path, witness string
	lines         [][]byte
	firstRun      int  // lines written by the first run, its close checkpoint included
	crashed       bool // the second run crashed: no close checkpoint at the end
}

// writeRun appends records to the log at path in one OpenFile run. With
// crash, the run ends without Close: the file and witness are copied
// while the Log is still open, as a crash would leave them, to dir.
func writeRun(t *testing.T, c keyConfig, path, witnessPath string, crash bool, rs ...*audit.Record) {
	t.Helper()
	var w *audit.WitnessFile
	if c.witness {
		var err error
		w, err = audit.OpenWitness(witnessPath, testPub)
		require.NoError(t, err)
	}
	l, err := audit.OpenFile(path, c.fileOptions(w))
	require.NoError(t, err)
	writeAll(t, l, rs...)
	if crash {
		crashCopy(t, path)
		if c.witness {
			crashCopy(t, witnessPath)
		}
	}
	require.NoError(t, l.Close())
	if w != nil {
		require.NoError(t, w.Close())
	}
}

// crashCopy copies path to path + ".crash" as it is now.
func crashCopy(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path+".crash", data, 0o600))
}

// callRecords returns the records of n calls whose ids start with prefix;
// each decision carries arguments, their hash, a reason and a principal.
func callRecords(prefix string, n int) []*audit.Record {
	var rs []*audit.Record
	for i := range n {
		id := fmt.Sprintf("%s-%d", prefix, i)
		d := decision(id, "allow")
		d.ArgsSHA256 = sha(`{"path":"/w/a.txt"}`)
		d.Reason = "allowed by scope"
		rs = append(rs, d, outcome(id))
	}
	last := decision(prefix+"-denied", "deny")
	last.ArgsSHA256 = sha(`{"path":"/w/a.txt"}`)
	return append(rs, last)
}

// newTamperLog writes a log in two runs; with crash the second run
// crashed and the log is the copy it left.
func newTamperLog(t *testing.T, c keyConfig, crash bool) tamperLog {
	t.Helper()
	dir := t.TempDir()
	tl := tamperLog{path: filepath.Join(dir, "decisions.jsonl"), witness: filepath.Join(dir, "witness", "checkpoints.jsonl"), crashed: crash}
	require.NoError(t, os.MkdirAll(filepath.Dir(tl.witness), 0o700))
	writeRun(t, c, tl.path, tl.witness, false, callRecords("a", 2)...)
	tl.firstRun = len(readLines(t, tl.path))
	writeRun(t, c, tl.path, tl.witness, crash, callRecords("b", 2)...)
	if crash {
		tl.path += ".crash"
		tl.witness += ".crash"
	}
	tl.lines = readLines(t, tl.path)
	return tl
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
}

func writeLines(t *testing.T, path string, lines [][]byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, join(lines), 0o600))
}

// rechain makes lines[from:] a valid SHA-256 chain again, as anyone can:
// seq and prev recomputed, checkpoint hash and count fixed, and the mac
// and sig members — which need a key — dropped.
func rechain(t *testing.T, lines [][]byte, from int) [][]byte {
	t.Helper()
	for i := from; i < len(lines); i++ {
		r := decodeRecord(t, lines[i])
		r.Seq, r.MAC, r.Sig = uint64(i), "", ""
		r.Prev = ""
		if i > 0 {
			r.Prev = lineHash(lines[i-1])
		}
		if cp := r.Checkpoint; cp != nil {
			cp.Hash, cp.Records, cp.Seq, cp.Sig, cp.KeyID, cp.Note = r.Prev, uint64(i), uint64(i-1), "", "", ""
		}
		lines[i] = r.AppendJSON(nil)
	}
	return lines
}

// editRecord changes the record at line i as an attacker editing the file
// would: the rest of the line (prev, mac, sig) is left as it was.
func editRecord(t *testing.T, lines [][]byte, i int, edit func(r *audit.Record)) [][]byte {
	t.Helper()
	r := decodeRecord(t, lines[i])
	edit(&r)
	lines[i] = r.AppendJSON(nil)
	return lines
}

// lastRecord returns the index of the last line that is not a checkpoint.
func lastRecord(t *testing.T, lines [][]byte) int {
	t.Helper()
	for i := len(lines) - 1; i >= 0; i-- {
		if !bytes.Contains(lines[i], []byte(`"kind":"checkpoint"`)) {
			return i
		}
	}
	t.Fatal("no record")
	return 0
}

// tamperAttack is one row of the table: it changes the log on disk and
// returns whether the auditor detected it.
type tamperAttack struct {
	name  string
	crash bool // attack the log a crash left, not a closed one
	// want is the row of the table: detected in no key, HMAC, signing,
	// signing+witness.
	want [4]bool
	run  func(t *testing.T, c keyConfig, tl tamperLog) bool
}

// onLines is an attack that rewrites the lines and runs Verify.
func onLines(f func(t *testing.T, tl tamperLog) [][]byte) func(t *testing.T, c keyConfig, tl tamperLog) bool {
	return func(t *testing.T, c keyConfig, tl tamperLog) bool {
		writeLines(t, tl.path, f(t, tl))
		return c.verify(t, tl) != nil
	}
}

// lastEdits are the edits of the last record the table's second row
// stands for.
var lastEdits = map[string]func(r *audit.Record){
	"principal":   func(r *audit.Record) { r.Principal = "mallory" },
	"args":        func(r *audit.Record) { r.Args = json.RawMessage(`{"path":"/etc/passwd"}`) },
	"reason":      func(r *audit.Record) { r.Reason = "approved by security" },
	"args_sha256": func(r *audit.Record) { r.ArgsSHA256 = sha(`{"path":"/etc/passwd"}`) },
	"effect":      func(r *audit.Record) { r.Effect, r.Rule, r.Reason, r.Scope = "allow", "", "", "fs.read" },
}

func tamperAttacks() []tamperAttack {
	all, keyed, witnessOnly := [4]bool{true, true, true, true}, [4]bool{false, true, true, true}, [4]bool{false, false, false, true}
	attacks := []tamperAttack{
		{name: "edit a record", want: all, run: onLines(func(t *testing.T, tl tamperLog) [][]byte {
			return editRecord(t, tl.lines, 2, lastEdits["principal"])
		})},
		{name: "edit a record, re-chained", want: keyed, run: onLines(func(t *testing.T, tl tamperLog) [][]byte {
			return rechain(t, editRecord(t, tl.lines, 2, lastEdits["args"]), 2)
		})},
		{name: "delete a record, re-chained", want: keyed, run: onLines(func(t *testing.T, tl tamperLog) [][]byte {
			lines := append(tl.lines[:4:4], tl.lines[5:]...) // the denied call's decision
			return rechain(t, lines, 4)
		})},
		{name: "insert a record, re-chained", want: keyed, run: onLines(func(t *testing.T, tl tamperLog) [][]byte {
			d := decision("forged", "deny")
			lines := append(tl.lines[:2:2], append([][]byte{d.AppendJSON(nil)}, tl.lines[2:]...)...)
			return rechain(t, lines, 2)
		})},
		{name: "reorder records, re-chained", want: keyed, run: onLines(func(t *testing.T, tl tamperLog) [][]byte {
			// The second call (decision, outcome) before the first.
			lines := append(append(append([][]byte{}, tl.lines[2:4]...), tl.lines[0:2]...), tl.lines[4:]...)
			return rechain(t, lines, 0)
		})},
		{name: "edit the last line", want: keyed, run: onLines(func(t *testing.T, tl tamperLog) [][]byte {
			last := len(tl.lines) - 1
			return editRecord(t, tl.lines, last, func(r *audit.Record) { r.Principal += "x"; r.Reason = "edited" })
		})},
		{name: "downgrade the last line to format version 1", want: all, run: onLines(func(t *testing.T, tl tamperLog) [][]byte {
			last := len(tl.lines) - 1
			r := decodeRecord(t, tl.lines[last])
			r.Version, r.MAC, r.Sig = 1, "", ""
			if cp := r.Checkpoint; cp != nil {
				cp.Root, cp.Edge, cp.Note, cp.KeyID, cp.Sig = "", nil, "", "", ""
			}
			r.Principal = "mallory"
			tl.lines[last] = r.AppendJSON(nil)
			return tl.lines
		})},
		{name: "truncate the tail", want: keyed, run: onLines(func(t *testing.T, tl tamperLog) [][]byte {
			return tl.lines[:len(tl.lines)-3]
		})},
		{name: "roll back to an earlier checkpoint", want: witnessOnly, run: onLines(func(t *testing.T, tl tamperLog) [][]byte {
			return tl.lines[:tl.firstRun]
		})},
		{name: "forge a whole new log", want: keyed, run: func(t *testing.T, c keyConfig, tl tamperLog) bool {
			// The forger has no key of ours: they use their own.
			forger := keyConfig{name: "forger", witness: false}
			if c.hmac != nil {
				forger.hmac = []byte("forger's key")
			}
			if c.sign != nil {
				forger.sign = otherKey
			}
			require.NoError(t, os.Remove(tl.path))
			writeRun(t, forger, tl.path, "", false, callRecords("forged", 3)...)
			return c.verify(t, tl) != nil
		}},
		{name: "forge a whole new log in format version 1", want: keyed, run: onLines(func(t *testing.T, tl tamperLog) [][]byte {
			rs := callRecords("forged", 3)
			for _, r := range rs {
				r.Version = 1
			}
			return bytes.Split(bytes.TrimSuffix(chain(rs...), []byte("\n")), []byte("\n"))
		})},
	}
	for _, field := range []string{"principal", "args", "reason", "args_sha256", "effect"} {
		attacks = append(attacks, tamperAttack{name: "edit the last record after a crash: " + field, crash: true, want: keyed,
			run: onLines(func(t *testing.T, tl tamperLog) [][]byte {
				i := lastRecord(t, tl.lines)
				require.Equal(t, len(tl.lines)-1, i, "a crash leaves a record last, no close checkpoint")
				return editRecord(t, tl.lines, i, lastEdits[field])
			})})
	}
	attacks = append(attacks, tamperAttack{name: "truncate the tail after a crash", crash: true, want: [4]bool{},
		run: onLines(func(t *testing.T, tl tamperLog) [][]byte {
			return tl.lines[:len(tl.lines)-2]
		})})
	attacks = append(attacks, tamperAttack{name: "edit the last record after a crash, then resume and close", crash: true, want: keyed,
		run: func(t *testing.T, c keyConfig, tl tamperLog) bool {
			i := lastRecord(t, tl.lines)
			writeLines(t, tl.path, editRecord(t, tl.lines, i, lastEdits["args"]))
			var w audit.Sink
			if c.witness {
				wf, err := audit.OpenWitness(tl.witness, testPub)
				require.NoError(t, err)
				defer wf.Close()
				w = wf
			}
			l, err := audit.OpenFile(tl.path, c.fileOptions(w))
			if err != nil {
				assert.ErrorContains(t, err, "does not authenticate under the Log's key")
				assert.Equal(t, join(tl.lines), mustRead(t, tl.path), "a refused file is left as it is")
				return true
			}
			writeAll(t, l, callRecords("after", 1)...)
			require.NoError(t, l.Close())
			return c.verify(t, tl) != nil
		}})
	return attacks
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return data
}

// TestTamperMatrix performs every attack of the README's table on a real
// log file, for each key configuration, and asserts exactly the table:
// detected where it says so, and not detected where it says not, so the
// table can never claim more than holds.
func TestTamperMatrix(t *testing.T) {
	var table strings.Builder
	for _, a := range tamperAttacks() {
		fmt.Fprintf(&table, "| %-58s |", a.name)
		for ci, c := range keyConfigs {
			t.Run(a.name+"/"+c.name, func(t *testing.T) {
				tl := newTamperLog(t, c, a.crash)
				// The log verifies before the attack.
				require.NoError(t, c.verify(t, tl), "the untouched log verifies")
				detected := a.run(t, c, tl)
				assert.Equal(t, a.want[ci], detected, "detected")
				fmt.Fprintf(&table, " %-5v |", detected)
			})
		}
		table.WriteString("\n")
	}
	t.Logf("detected:\n| attack | no key | HMAC | signing | signing+witness |\n%s", table.String())
}

// TestResumeKeepsChain: the resumed log verifies end to end, with the tree
// rebuilt after a crash, for every configuration.
func TestResumeKeepsChain(t *testing.T) {
	for _, c := range keyConfigs {
		t.Run(c.name, func(t *testing.T) {
			tl := newTamperLog(t, c, true)
			var w audit.Sink
			if c.witness {
				wf, err := audit.OpenWitness(tl.witness, testPub)
				require.NoError(t, err)
				defer wf.Close()
				w = wf
			}
			l, err := audit.OpenFile(tl.path, c.fileOptions(w))
			require.NoError(t, err)
			writeAll(t, l, callRecords("c", 1)...)
			require.NoError(t, l.Close())
			require.NoError(t, c.verify(t, tl))
		})
	}
}
