package audit_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"

	"github.com/agentguard/agentguard/audit"
)

// keyedConfigs are the columns of the table that promise more than a
// plain chain.
var keyedConfigs = keyConfigs[1:]

// fileAttack is an attacker who can rewrite the log file (not the keys,
// not the witness): it returns the new content of the file.
type fileAttack struct {
	name  string
	crash bool // attack the log a crash left
	// tail: the attack changes the last line, so OpenFile must refuse to
	// resume on top of the file as well.
	tail bool
	run  func(t *testing.T, tl tamperLog) []byte
}

// lastCheckpoint returns the index of the last checkpoint line.
func lastCheckpoint(t *testing.T, lines [][]byte) int {
	t.Helper()
	for i := len(lines) - 1; i >= 0; i-- {
		if bytes.Contains(lines[i], []byte(`"kind":"checkpoint"`)) {
			return i
		}
	}
	t.Fatal("no checkpoint")
	return 0
}

// onLine rewrites the bytes of line i with f.
func onLine(i func(t *testing.T, tl tamperLog) int, f func(line []byte) []byte) func(t *testing.T, tl tamperLog) []byte {
	return func(t *testing.T, tl tamperLog) []byte {
		n := i(t, tl)
		tl.lines[n] = f(bytes.Clone(tl.lines[n]))
		return join(tl.lines)
	}
}

func lastLineIndex(_ *testing.T, tl tamperLog) int { return len(tl.lines) - 1 }
func midLineIndex(_ *testing.T, tl tamperLog) int  { return 2 }

// downgradeAt downgrades line i.
func downgradeAt(i func(t *testing.T, tl tamperLog) int) func(t *testing.T, tl tamperLog) []byte {
	return func(t *testing.T, tl tamperLog) []byte {
		n := i(t, tl)
		tl.lines[n] = downgrade(t, tl.lines[n])
		return join(tl.lines)
	}
}

// downgrade rewrites a record as format version 1: no mac, no sig, no
// tree, and its content edited.
func downgrade(t *testing.T, line []byte) []byte {
	r := decodeRecord(t, line)
	r.Version, r.MAC, r.Sig = 1, "", ""
	if cp := r.Checkpoint; cp != nil {
		cp.Root, cp.Edge, cp.Note = "", nil, ""
	} else {
		r.Principal = "mallory"
	}
	return r.AppendJSON(nil)
}

// bytesAttacks keep the JSON value of a line (or its authenticated part)
// and change its bytes, or change the framing of the file.
func bytesAttacks() []fileAttack {
	respell := func(old, new string) func(line []byte) []byte {
		return func(line []byte) []byte { return replace(line, []byte(old), []byte(new), 1) }
	}
	var attacks []fileAttack
	for _, at := range []struct {
		name  string
		i     func(t *testing.T, tl tamperLog) int
		crash bool
	}{{"mid-file", midLineIndex, false}, {"last line after a crash", lastLineIndex, true}, {"close checkpoint", lastLineIndex, false}} {
		tail := at.name != "mid-file"
		for _, e := range []struct {
			name string
			f    func(line []byte) []byte
		}{
			{"duplicate member", func(line []byte) []byte {
				return replace(line, []byte(`"kind":`), []byte(`"id":"x","kind":`), 1)
			}},
			{"reordered members", func(line []byte) []byte {
				// "v" and "seq" swapped.
				r := respell(`{"v":2,"seq":`, `{"seq":`)(line)
				return replace(r, []byte(`,"id":`), []byte(`,"v":2,"id":`), 1)
			}},
			{"whitespace", respell(`"kind":`, `"kind": `)},
			{"escaped letter", respell(`"kind":"`, `"kin\u0064":"`)},
			{"uppercase member name", respell(`"kind":`, `"KIND":`)},
			{"CR before the newline", func(line []byte) []byte { return append(line, '\r') }},
			{"NUL inside", respell(`"kind":`, "\x00\"kind\":")},
			{"trailing second value", func(line []byte) []byte { return append(line, []byte(` {}`)...) }},
		} {
			attacks = append(attacks, fileAttack{name: e.name + ", " + at.name, crash: at.crash, tail: tail, run: onLine(at.i, e.f)})
		}
	}
	attacks = append(attacks,
		fileAttack{name: "CRLF line endings", run: func(t *testing.T, tl tamperLog) []byte {
			return bytes.ReplaceAll(join(tl.lines), []byte("\n"), []byte("\r\n"))
		}, tail: true},
		fileAttack{name: "no final newline", run: func(t *testing.T, tl tamperLog) []byte {
			return bytes.TrimSuffix(join(tl.lines), []byte("\n"))
		}},
		fileAttack{name: "NUL bytes after the last line", run: func(t *testing.T, tl tamperLog) []byte {
			return append(join(tl.lines), make([]byte, 4096)...)
		}, tail: true},
		fileAttack{name: "huge line appended", run: func(t *testing.T, tl tamperLog) []byte {
			return append(append(join(tl.lines), bytes.Repeat([]byte("a"), 17<<20)...), '\n')
		}, tail: true},
	)
	return attacks
}

// authAttacks move, strip, swap and downgrade what authenticates lines.
func authAttacks() []fileAttack {
	return []fileAttack{
		{name: "downgrade the last record to format version 1 after a crash", crash: true, tail: true,
			run: downgradeAt(lastLineIndex)},
		{name: "downgrade the close checkpoint to format version 1", tail: true, run: downgradeAt(lastLineIndex)},
		{name: "downgrade a record mid-file to format version 1", run: downgradeAt(midLineIndex)},
		{name: "downgrade every line before the close checkpoint, re-chained", run: func(t *testing.T, tl tamperLog) []byte {
			last := len(tl.lines) - 1
			for i := range last {
				tl.lines[i] = downgrade(t, tl.lines[i])
			}
			return join(rechain(t, tl.lines[:last], 0))
		}},
		{name: "strip mac and sig from the last record after a crash", crash: true, tail: true,
			run: onLine(lastLineIndex, unsealed)},
		{name: "strip mac and sig mid-file", run: onLine(midLineIndex, unsealed)},
		{name: "mac and sig of another record", crash: true, tail: true, run: func(t *testing.T, tl tamperLog) []byte {
			last := len(tl.lines) - 1
			other := sealMembers.Find(tl.lines[last-1])
			tl.lines[last] = append(unsealed(tl.lines[last])[:len(unsealed(tl.lines[last]))-1], other...)
			return join(tl.lines)
		}},
		{name: "sig added to a record that has a mac", crash: true, tail: true, run: onLine(lastLineIndex, func(line []byte) []byte {
			return addSig(line)
		})},
		{name: "sig added to the close checkpoint", tail: true, run: onLine(lastLineIndex, func(line []byte) []byte {
			return addSig(line)
		})},
		{name: "mac under another key added to the last record", crash: true, tail: true, run: onLine(lastLineIndex, func(line []byte) []byte {
			u := unsealed(line)
			mac := hmac.New(sha256.New, []byte("attacker's key"))
			mac.Write(u)
			seal := `,"mac":"` + hex.EncodeToString(mac.Sum(nil)) + `"`
			if m := regexp.MustCompile(`,"sig":"[0-9a-f]{128}"`).Find(line); m != nil {
				seal += string(m)
			}
			return append(u[:len(u)-1], seal+"}"...)
		})},
	}
}

// addSig adds a well-formed sig member to a line that has none, after its
// mac if it has one.
func addSig(line []byte) []byte {
	sig := `,"sig":"` + strings.Repeat("ab", ed25519.SignatureSize) + `"}`
	return append(line[:len(line)-1], sig...)
}

// structureAttacks move checkpoints, lie about trees and splice logs.
func structureAttacks(c keyConfig) []fileAttack {
	cpEdit := func(edit func(t *testing.T, cp *audit.Checkpoint)) func(t *testing.T, tl tamperLog) []byte {
		return func(t *testing.T, tl tamperLog) []byte {
			return join(editRecord(t, tl.lines, lastCheckpoint(t, tl.lines), func(r *audit.Record) { edit(t, r.Checkpoint) }))
		}
	}
	return []fileAttack{
		{name: "move the first run's close checkpoint one line down", run: func(t *testing.T, tl tamperLog) []byte {
			i := tl.firstRun - 1
			tl.lines[i], tl.lines[i+1] = tl.lines[i+1], tl.lines[i]
			return join(tl.lines)
		}},
		{name: "checkpoint note signed by another key for our origin", tail: true, run: cpEdit(func(t *testing.T, cp *audit.Checkpoint) {
			cp.Note = otherNote(t, audit.Origin(testPub), cp.Records, cp.Root)
		})},
		{name: "checkpoint note of another origin", tail: true, run: cpEdit(func(t *testing.T, cp *audit.Checkpoint) {
			cp.Note = otherNote(t, audit.Origin(otherPub), cp.Records, cp.Root)
		})},
		{name: "checkpoint tree size lie", tail: true, run: cpEdit(func(t *testing.T, cp *audit.Checkpoint) { cp.Records++ })},
		{name: "checkpoint key id of another key", tail: true, run: cpEdit(func(t *testing.T, cp *audit.Checkpoint) {
			if cp.KeyID == "" {
				cp.KeyID, cp.Sig = audit.KeyID(otherPub), strings.Repeat("ab", ed25519.SignatureSize)
				return
			}
			cp.KeyID = audit.KeyID(otherPub)
		})},
		{name: "replay the whole file after itself", run: func(t *testing.T, tl tamperLog) []byte {
			return append(join(tl.lines), join(tl.lines)...)
		}},
		{name: "splice two valid logs of the same key", run: func(t *testing.T, tl tamperLog) []byte {
			other := newTamperLog(t, c, false)
			return append(join(tl.lines[:tl.firstRun]), join(other.lines[tl.firstRun:])...)
		}},
		{name: "substitute another valid log of the same key, grown longer", tail: true, run: func(t *testing.T, tl tamperLog) []byte {
			// Accepted without a witness (nothing outside the file knew
			// this log), caught with one: see TestSubstituteLogOfSameKey.
			other := newTamperLog(t, c, false)
			return join(other.lines)
		}},
	}
}

// otherNote returns a checkpoint note signed with otherKey under name.
func otherNote(t *testing.T, name string, size uint64, rootHex string) string {
	t.Helper()
	root, err := audit.ParseRoot(rootHex)
	require.NoError(t, err)
	signer := &testNoteSigner{name: name, key: otherKey}
	text := name + "\n" + strconv.FormatUint(size, 10) + "\n" + base64.StdEncoding.EncodeToString(root[:]) + "\n"
	msg, err := note.Sign(&note.Note{Text: text}, signer)
	require.NoError(t, err)
	return string(msg)
}

// testNoteSigner signs notes with an ed25519 key under any name.
type testNoteSigner struct {
	name string
	key  ed25519.PrivateKey
}

func (s *testNoteSigner) Name() string { return s.name }
func (s *testNoteSigner) KeyHash() uint32 {
	h := sha256.New()
	h.Write([]byte(s.name + "\n\x01"))
	h.Write(s.key.Public().(ed25519.PublicKey))
	return binary.BigEndian.Uint32(h.Sum(nil))
}
func (s *testNoteSigner) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.key, msg), nil }

// openWitness opens the witness of tl for c, or returns nil.
func openWitness(t *testing.T, c keyConfig, tl tamperLog) audit.Sink {
	t.Helper()
	if !c.witness {
		return nil
	}
	w, err := audit.OpenWitness(tl.witness, testPub)
	require.NoError(t, err)
	t.Cleanup(func() { w.Close() })
	return w
}

// TestFileAttacks performs, on a real closed or crashed log file, every
// attack of an attacker who can rewrite the file but holds neither key
// nor witness, for each configuration that promises detection: Verify
// must reject the file and, when the attack changes its last line,
// OpenFile must refuse to resume on top of it (leaving the file as it is).
func TestFileAttacks(t *testing.T) {
	for _, c := range keyedConfigs {
		attacks := append(append(bytesAttacks(), authAttacks()...), structureAttacks(c)...)
		for _, a := range attacks {
			t.Run(c.name+"/"+a.name, func(t *testing.T) {
				tl := newTamperLog(t, c, a.crash)
				tampered := a.run(t, tl)
				require.NoError(t, os.WriteFile(tl.path, tampered, 0o600))
				if a.name == "substitute another valid log of the same key, grown longer" && !c.witness {
					require.NoError(t, c.verify(t, tl), "without a witness another log of the same key is indistinguishable")
					return
				}
				assert.Error(t, c.verify(t, tl), "Verify accepted the tampered log")
				if !a.tail {
					return
				}
				l, err := audit.OpenFile(tl.path, c.fileOptions(openWitness(t, c, tl)))
				if err == nil {
					l.Close()
				}
				assert.Error(t, err, "OpenFile resumed on top of the tampered log")
				assert.Equal(t, tampered, mustRead(t, tl.path), "a refused file is left as it is")
			})
		}
	}
}

// TestWitnessRefusesRollbackThenGrow: a log cut back to an earlier close
// checkpoint and then grown past the witnessed size (by a run of the
// writer without its witness) is refused by OpenFile with the witness,
// and its checkpoints are refused by the WitnessFile itself: a larger tree
// is accepted only with the proof that it extends the witnessed one.
func TestWitnessRefusesRollbackThenGrow(t *testing.T) {
	c := keyConfigs[3]
	tl := newTamperLog(t, c, false) // two witnessed runs, both closed
	witnessBefore := mustRead(t, tl.witness)
	// Roll back to the first run's close checkpoint, then grow the log
	// with the key but without the witness, past the witnessed size.
	writeLines(t, tl.path, tl.lines[:tl.firstRun])
	writeRun(t, keyConfig{sign: testKey}, tl.path, "", false, callRecords("regrown", 6)...)
	grown := mustRead(t, tl.path)
	require.Greater(t, len(readLines(t, tl.path)), len(tl.lines), "grown past the witnessed size")
	_, err := audit.Verify(bytes.NewReader(grown), audit.VerifyOptions{PublicKey: testPub, RequireClosed: true})
	require.NoError(t, err, "without the witness the regrown log verifies")

	w, err := audit.OpenWitness(tl.witness, testPub)
	require.NoError(t, err)
	defer w.Close()
	_, err = audit.OpenFile(tl.path, audit.FileOptions{SigningKey: testKey, Witness: w})
	require.ErrorContains(t, err, "does not extend the tree")
	assert.Equal(t, grown, mustRead(t, tl.path), "a refused file is left as it is")

	// Delivered by any other way than its own Log, the regrown log's
	// checkpoint is refused too: no proof it extends the witnessed tree.
	lines := readLines(t, tl.path)
	cp := decodeRecord(t, lines[len(lines)-1])
	require.Equal(t, audit.KindCheckpoint, cp.Kind)
	require.ErrorContains(t, w.Write(t.Context(), &cp), "without proof that it extends")
	assert.Equal(t, witnessBefore, mustRead(t, tl.witness), "the witness is unchanged")

	// The checkpoint the witness holds is still accepted again (an
	// idempotent delivery), and the untouched log still opens.
	wl := readLines(t, tl.witness)
	held := decodeRecord(t, wl[len(wl)-1])
	require.NoError(t, w.Write(t.Context(), &held))
}

// TestWitnessedLogGrowsAcrossRestarts: the proofs a Log gives its
// WitnessFile hold across clean restarts, crashes and rotations.
func TestWitnessedLogGrowsAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	path, wpath := filepath.Join(dir, "decisions.jsonl"), filepath.Join(dir, "w.jsonl")
	opts := audit.FileOptions{SigningKey: testKey, CheckpointEvery: 3, MaxBytes: 5000, Sync: audit.SyncNone}
	for run := range 4 {
		w, err := audit.OpenWitness(wpath, testPub)
		require.NoError(t, err)
		opts.Witness = w
		l, err := audit.OpenFile(path, opts)
		require.NoError(t, err, "run %d", run)
		writeAll(t, l, sampleRecords(4+run)...)
		if run%2 == 1 { // a crash: copy the files as they are, drop the Log
			files, err := audit.LogFiles(path)
			require.NoError(t, err)
			saved := map[string][]byte{}
			for _, f := range append(files, wpath) {
				saved[f] = mustRead(t, f)
			}
			require.NoError(t, l.Close())
			require.NoError(t, w.Close())
			for f, data := range saved {
				require.NoError(t, os.WriteFile(f, data, 0o600))
			}
			continue
		}
		require.NoError(t, l.Close())
		require.NoError(t, w.Close())
	}
	_, chain := readChain(t, path)
	sum, err := audit.Verify(bytes.NewReader(chain), audit.VerifyOptions{PublicKey: testPub, Witness: bytes.NewReader(mustRead(t, wpath))})
	require.NoError(t, err)
	assert.Greater(t, sum.Witnessed, uint64(20))
}

// TestWitnessOutsideThreatModel keeps the attacks on the witness itself,
// or on how it is used, as tests: an attacker who can also cut the
// witness file back defeats it (the witness must be kept where the log's
// attacker cannot write); a witness of another log, or of another key,
// is caught; an empty witness checks nothing, which Summary.Witnessed
// shows.
func TestWitnessOutsideThreatModel(t *testing.T) {
	c := keyConfigs[3]
	tl := newTamperLog(t, c, false)
	verify := func(log, witness []byte) (audit.Summary, error) {
		return audit.Verify(bytes.NewReader(log), audit.VerifyOptions{PublicKey: testPub, RequireClosed: true, Witness: bytes.NewReader(witness)})
	}
	w := readLines(t, tl.witness)
	require.Len(t, w, 2, "one close checkpoint a run")

	t.Run("witness cut back with the log: accepted", func(t *testing.T) {
		sum, err := verify(join(tl.lines[:tl.firstRun]), join(w[:1]))
		require.NoError(t, err, "the rollback goes unseen when the witness was rolled back too")
		assert.Equal(t, uint64(tl.firstRun-1), sum.Witnessed)
		writeLines(t, tl.path, tl.lines[:tl.firstRun])
		writeLines(t, tl.witness, w[:1])
		wf, err := audit.OpenWitness(tl.witness, testPub)
		require.NoError(t, err)
		defer wf.Close()
		l, err := audit.OpenFile(tl.path, c.fileOptions(wf))
		require.NoError(t, err)
		require.NoError(t, l.Close())
	})
	t.Run("witness of another log of the same key", func(t *testing.T) {
		other := newTamperLog(t, c, false)
		_, err := verify(join(tl.lines), mustRead(t, other.witness))
		var ve *audit.VerifyError
		require.ErrorAs(t, err, &ve)
		assert.Contains(t, ve.Reason, "not the log its witness saw")
	})
	t.Run("witness of another key", func(t *testing.T) {
		_, err := audit.Verify(bytes.NewReader(join(tl.lines)), audit.VerifyOptions{PublicKey: otherPub, Witness: bytes.NewReader(join(w))})
		require.ErrorContains(t, err, "witness line 1")
	})
	t.Run("empty witness", func(t *testing.T) {
		sum, err := verify(join(tl.lines[:tl.firstRun]), nil)
		require.NoError(t, err)
		assert.Zero(t, sum.Witnessed, "nothing witnessed: the caller must check Summary.Witnessed")
	})
	t.Run("witness line edited", func(t *testing.T) {
		edited := bytes.Replace(join(w), []byte(`"records":`), []byte(`"records":1`), 1)
		_, err := verify(join(tl.lines), edited)
		require.ErrorContains(t, err, "witness line 1")
	})
}

// TestRotatedFilesAttacks: a rotated log's files reordered, or one of
// them removed, fail Verify over LogFiles in order; with the witness,
// OpenFile refuses a log whose newest files were removed.
func TestRotatedFilesAttacks(t *testing.T) {
	newLog := func(t *testing.T) (path, wpath string, files []string) {
		dir := t.TempDir()
		path, wpath = filepath.Join(dir, "decisions.jsonl"), filepath.Join(dir, "w.jsonl")
		w, err := audit.OpenWitness(wpath, testPub)
		require.NoError(t, err)
		l, err := audit.OpenFile(path, audit.FileOptions{SigningKey: testKey, MaxBytes: 4000, Sync: audit.SyncNone, Witness: w})
		require.NoError(t, err)
		writeAll(t, l, sampleRecords(25)...)
		require.NoError(t, l.Close())
		require.NoError(t, w.Close())
		files, err = audit.LogFiles(path)
		require.NoError(t, err)
		require.Greater(t, len(files), 3)
		return path, wpath, files
	}
	verify := func(t *testing.T, path, wpath string) error {
		_, data := readChain(t, path)
		opts := audit.VerifyOptions{PublicKey: testPub, RequireClosed: true}
		if wpath != "" {
			opts.Witness = bytes.NewReader(mustRead(t, wpath))
		}
		_, err := audit.Verify(bytes.NewReader(data), opts)
		return err
	}
	t.Run("intact", func(t *testing.T) {
		path, wpath, _ := newLog(t)
		require.NoError(t, verify(t, path, wpath))
	})
	t.Run("two rotated files swapped by name", func(t *testing.T) {
		path, _, files := newLog(t)
		a, b := mustRead(t, files[1]), mustRead(t, files[2])
		require.NoError(t, os.WriteFile(files[1], b, 0o600))
		require.NoError(t, os.WriteFile(files[2], a, 0o600))
		require.Error(t, verify(t, path, ""))
	})
	for _, which := range []string{"first", "middle", "newest rotated", "active"} {
		t.Run("remove the "+which+" file", func(t *testing.T) {
			path, wpath, files := newLog(t)
			i := map[string]int{"first": 0, "middle": 1, "newest rotated": len(files) - 2, "active": len(files) - 1}[which]
			require.NoError(t, os.Remove(files[i]))
			require.Error(t, verify(t, path, ""), "without the witness")
			require.Error(t, verify(t, path, wpath), "with the witness")
			// OpenFile checks the end of the log, not the rest (Verify's
			// job): with the witness it refuses a log whose active file
			// was removed, and resumes one that lost an earlier file.
			w, err := audit.OpenWitness(wpath, testPub)
			require.NoError(t, err)
			defer w.Close()
			l, err := audit.OpenFile(path, audit.FileOptions{SigningKey: testKey, MaxBytes: 4000, Witness: w})
			if which == "active" {
				require.ErrorContains(t, err, "witness has a checkpoint after", "OpenFile with the witness")
				return
			}
			require.NoError(t, err)
			require.NoError(t, l.Close())
			require.Error(t, verify(t, path, wpath), "still caught by Verify after the resume")
		})
	}
}

// TestTornTailThatIsAValidRecord: the close checkpoint with its newline
// removed looks like a line torn by a crash. Verify reports it; OpenFile
// without a witness cuts it (as after a crash) and marks the spot with a
// recover checkpoint, which RequireClosed reports; with the witness it
// refuses the file.
func TestTornTailThatIsAValidRecord(t *testing.T) {
	for _, c := range keyedConfigs {
		t.Run(c.name, func(t *testing.T) {
			tl := newTamperLog(t, c, false)
			torn := bytes.TrimSuffix(join(tl.lines), []byte("\n"))
			require.NoError(t, os.WriteFile(tl.path, torn, 0o600))
			err := c.verify(t, tl)
			require.ErrorContains(t, err, "incomplete last line")
			l, err := audit.OpenFile(tl.path, c.fileOptions(openWitness(t, c, tl)))
			if c.witness {
				require.ErrorContains(t, err, "witness has a checkpoint after")
				assert.Equal(t, torn, mustRead(t, tl.path))
				return
			}
			require.NoError(t, err)
			require.NoError(t, l.Close())
			assert.Equal(t, len(tl.lines)+1, len(readLines(t, tl.path)), "the torn close checkpoint was cut, a recover checkpoint and a new close checkpoint written")
			require.ErrorContains(t, c.verify(t, tl), "was resumed at seq", "the cut is visible to RequireClosed")
		})
	}
}

// endless is a reader of an endless line: prefix, then 'a' forever.
type endless struct {
	prefix []byte
	n      int64
}

func (e *endless) Read(p []byte) (int, error) {
	n := copy(p, e.prefix)
	e.prefix = e.prefix[n:]
	for i := n; i < len(p); i++ {
		p[i] = 'a'
	}
	e.n += int64(len(p))
	return len(p), nil
}

// TestVerifyBoundedOnHostileInput: an endless line in the log or in the
// witness stops Verify after the line bound, having read and allocated a
// bounded amount; under a key the first line that does not authenticate
// stops it, so what Verify accumulates (open decisions, principal and
// rule names) is bounded by what the key holder wrote.
func TestVerifyBoundedOnHostileInput(t *testing.T) {
	measure := func(f func()) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	t.Run("endless log line", func(t *testing.T) {
		r := &endless{prefix: []byte(`{"v":2,"seq":0,"id":"`)}
		var err error
		alloc := measure(func() { _, err = audit.Verify(r, audit.VerifyOptions{MaxLineBytes: 1 << 20}) })
		var ve *audit.VerifyError
		require.ErrorAs(t, err, &ve)
		assert.Contains(t, ve.Reason, "longer than")
		assert.Less(t, r.n, int64(2<<20), "read")
		assert.Less(t, alloc, uint64(8<<20), "allocated")
	})
	t.Run("endless witness line", func(t *testing.T) {
		r := &endless{prefix: []byte(`{"v":2,`)}
		var err error
		alloc := measure(func() {
			_, err = audit.Verify(bytes.NewReader(nil), audit.VerifyOptions{PublicKey: testPub, Witness: r})
		})
		require.ErrorContains(t, err, "witness line 1")
		assert.Less(t, r.n, int64(1<<20), "read")
		assert.Less(t, alloc, uint64(4<<20), "allocated")
	})
	t.Run("forged lines after a keyed log", func(t *testing.T) {
		tl := newTamperLog(t, keyConfigs[1], false)
		var forged []*audit.Record
		for i := range 2000 {
			d := decision(fmt.Sprintf("forged-%d", i), "allow")
			d.Principal = strings.Repeat("p", 1000) + strconv.Itoa(i)
			forged = append(forged, d)
		}
		data := append(join(tl.lines), chain(forged...)...)
		var sum audit.Summary
		var err error
		alloc := measure(func() {
			sum, err = audit.Verify(bytes.NewReader(data), audit.VerifyOptions{HMACKey: keyConfigs[1].hmac})
		})
		var ve *audit.VerifyError
		require.ErrorAs(t, err, &ve)
		assert.Equal(t, len(tl.lines)+1, ve.Line, "stopped at the first forged line")
		assert.Len(t, sum.Principals, 1)
		assert.Less(t, alloc, uint64(len(data)), "nothing kept of the forged lines")
	})
}

// TestKeyConfusion: a log verifies only with the key configuration it was
// written with; a verifier given the other kind of key, or only one of two,
// rejects it rather than check less.
func TestKeyConfusion(t *testing.T) {
	hmacKey := []byte("tamper hmac key")
	for _, tc := range []struct {
		name    string
		written audit.FileOptions
		opts    audit.VerifyOptions
	}{
		{"HMAC log, verified with the public key", audit.FileOptions{HMACKey: hmacKey}, audit.VerifyOptions{PublicKey: testPub}},
		{"HMAC log, verified with the HMAC key as another key", audit.FileOptions{HMACKey: hmacKey}, audit.VerifyOptions{HMACKey: []byte("other")}},
		{"signed log, verified with an HMAC key", audit.FileOptions{SigningKey: testKey}, audit.VerifyOptions{HMACKey: hmacKey}},
		{"signed log, verified with another public key", audit.FileOptions{SigningKey: testKey}, audit.VerifyOptions{PublicKey: otherPub}},
		{"log with both keys, verified with the public key only", audit.FileOptions{SigningKey: testKey, HMACKey: hmacKey}, audit.VerifyOptions{PublicKey: testPub}},
		{"log with both keys, verified with the HMAC key and another public key", audit.FileOptions{SigningKey: testKey, HMACKey: hmacKey}, audit.VerifyOptions{HMACKey: hmacKey, PublicKey: otherPub}},
		{"unkeyed log, verified with an HMAC key", audit.FileOptions{}, audit.VerifyOptions{HMACKey: hmacKey}},
		{"unkeyed log, verified with the public key", audit.FileOptions{}, audit.VerifyOptions{PublicKey: testPub}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "decisions.jsonl")
			l, err := audit.OpenFile(path, tc.written)
			require.NoError(t, err)
			writeAll(t, l, callRecords("k", 2)...)
			require.NoError(t, l.Close())
			right := audit.VerifyOptions{HMACKey: tc.written.HMACKey}
			if tc.written.SigningKey != nil {
				right.PublicKey = testPub
			}
			_, err = audit.Verify(bytes.NewReader(mustRead(t, path)), right)
			require.NoError(t, err, "with the right keys")
			_, err = audit.Verify(bytes.NewReader(mustRead(t, path)), tc.opts)
			var ve *audit.VerifyError
			require.ErrorAs(t, err, &ve)
		})
	}
}

// TestCutThenRestart: an attacker without the key cuts records off the
// end of a closed log (the close checkpoint with them), and the writer
// then starts again on the cut file and closes it cleanly. The new start
// marks where it resumed with a recover checkpoint, so RequireClosed
// still fails, naming the spot; with AcceptRecovered the auditor sees it
// in Summary.Recovered. With the witness, OpenFile refuses the cut file.
func TestCutThenRestart(t *testing.T) {
	for _, c := range keyedConfigs {
		t.Run(c.name, func(t *testing.T) {
			tl := newTamperLog(t, c, false)
			cut := tl.lines[:len(tl.lines)-3] // an outcome, a decision and the close checkpoint
			writeLines(t, tl.path, cut)
			l, err := audit.OpenFile(tl.path, c.fileOptions(openWitness(t, c, tl)))
			if c.witness {
				require.Error(t, err, "the witness holds a longer log")
				return
			}
			require.NoError(t, err)
			writeAll(t, l, decision("later", "deny"))
			require.NoError(t, l.Close())
			err = c.verify(t, tl)
			require.ErrorContains(t, err, fmt.Sprintf("resumed at seq %d", len(cut)))

			opts := audit.VerifyOptions{HMACKey: c.hmac, RequireClosed: true, AcceptRecovered: true}
			if c.sign != nil {
				opts.PublicKey = testPub
			}
			sum, err := audit.Verify(bytes.NewReader(mustRead(t, tl.path)), opts)
			require.NoError(t, err)
			assert.Equal(t, []uint64{uint64(len(cut))}, sum.Recovered)
		})
	}
}

// TestWitnessedCheckpointDropped: the witness received the close
// checkpoint; a log whose last line — that checkpoint — was removed ends
// at exactly the tree the witness holds, and still fails: the witness
// saw a checkpoint follow those lines.
func TestWitnessedCheckpointDropped(t *testing.T) {
	c := keyConfig{name: "signing+witness", sign: testKey, witness: true}
	tl := newTamperLog(t, c, false)
	require.Contains(t, string(tl.lines[len(tl.lines)-1]), `"reason":"close"`)
	data := join(tl.lines[:len(tl.lines)-1])
	_, err := audit.Verify(bytes.NewReader(data), audit.VerifyOptions{PublicKey: testPub, Witness: bytes.NewReader(mustRead(t, tl.witness))})
	require.ErrorContains(t, err, "checkpoint was cut off")

	// The checkpoint replaced by another record fails as well.
	other := append(slices.Clone(tl.lines[:len(tl.lines)-1]), tl.lines[0])
	_, err = audit.Verify(bytes.NewReader(join(other)), audit.VerifyOptions{PublicKey: testPub, Witness: bytes.NewReader(mustRead(t, tl.witness))})
	require.Error(t, err)
	_, err = audit.Verify(bytes.NewReader(join(tl.lines)), audit.VerifyOptions{PublicKey: testPub, Witness: bytes.NewReader(mustRead(t, tl.witness))})
	require.NoError(t, err, "the whole log verifies")
}
