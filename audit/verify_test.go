package audit_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
)

// logLines writes the sample records with a Log and returns the lines,
// without newlines.
func logLines(t *testing.T) [][]byte {
	t.Helper()
	var buf bytes.Buffer
	writeAll(t, audit.NewLog(&buf), sampleRecords(5)...) // 8 records
	return bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n"))
}

func join(lines [][]byte) []byte {
	return append(bytes.Join(lines, []byte("\n")), '\n')
}

func lineHash(line []byte) string {
	h := sha256.Sum256(unsealed(line))
	return hex.EncodeToString(h[:])
}

// sealMembers matches the members that authenticate a version 2 line.
var sealMembers = regexp.MustCompile(`(,"mac":"[0-9a-f]{64}")?(,"sig":"[0-9a-f]{128}")?}$`)

// unsealed returns line without its mac and sig members: what its chain
// link hashes.
func unsealed(line []byte) []byte {
	return sealMembers.ReplaceAll(bytes.Clone(line), []byte("}"))
}

// replace is bytes.Replace of the first old, which must be there.
func replace(b, old, new []byte, _ int) []byte {
	if !bytes.Contains(b, old) {
		panic("test data has no " + string(old))
	}
	return bytes.Replace(b, old, new, 1)
}

func TestVerifyTamper(t *testing.T) {
	tests := []struct {
		name     string
		tamper   func(ls [][]byte) [][]byte
		line     int
		seq      uint64
		contains string
	}{
		{
			name: "one byte changed in a middle record",
			tamper: func(ls [][]byte) [][]byte {
				ls[2] = replace(ls[2], []byte("no-dotenv"), []byte("no-dotenw"), 1)
				return ls
			},
			line: 4, seq: 3, contains: "prev hash does not match line 3",
		},
		{
			name: "effect flipped in a middle record",
			tamper: func(ls [][]byte) [][]byte {
				ls[2] = replace(ls[2], []byte(`"effect":"deny"`), []byte(`"effect":"allow"`), 1)
				return ls
			},
			line: 4, seq: 3, contains: "prev hash does not match line 3",
		},
		{
			name: "space added: valid JSON, not canonical",
			tamper: func(ls [][]byte) [][]byte {
				ls[3] = replace(ls[3], []byte(`"tool":`), []byte(`"tool": `), 1)
				return ls
			},
			line: 4, seq: 3, contains: "not the canonical encoding",
		},
		{
			name: "member renamed in another case",
			tamper: func(ls [][]byte) [][]byte {
				ls[3] = replace(ls[3], []byte(`"tool":`), []byte(`"Tool":`), 1)
				return ls
			},
			line: 4, seq: 3, contains: "not the canonical encoding",
		},
		{
			name: "line deleted",
			tamper: func(ls [][]byte) [][]byte {
				return append(ls[:3:3], ls[4:]...)
			},
			line: 4, seq: 4, contains: "seq 4 where 3 was expected",
		},
		{
			name: "first line deleted",
			tamper: func(ls [][]byte) [][]byte {
				return ls[1:]
			},
			line: 1, seq: 1, contains: "seq 1 where 0 was expected",
		},
		{
			name: "line duplicated",
			tamper: func(ls [][]byte) [][]byte {
				out := append(ls[:4:4], ls[3])
				return append(out, ls[4:]...)
			},
			line: 5, seq: 3, contains: "seq 3 where 4 was expected",
		},
		{
			name: "neighbours swapped",
			tamper: func(ls [][]byte) [][]byte {
				ls[3], ls[4] = ls[4], ls[3]
				return ls
			},
			line: 4, seq: 4, contains: "seq 4 where 3 was expected",
		},
		{
			name: "forged line inserted with naive seq and prev",
			tamper: func(ls [][]byte) [][]byte {
				forged := decision("forged", "allow")
				forged.Seq, forged.Prev = 3, lineHash(ls[1])
				out := append(ls[:3:3], forged.AppendJSON(nil))
				return append(out, ls[3:]...)
			},
			line: 4, seq: 3, contains: "prev hash does not match line 3",
		},
		{
			name: "forged line inserted with correct seq and prev",
			tamper: func(ls [][]byte) [][]byte {
				forged := decision("forged", "allow")
				forged.Seq, forged.Prev = 3, lineHash(ls[2])
				out := append(ls[:3:3], forged.AppendJSON(nil))
				return append(out, ls[3:]...)
			},
			line: 5, seq: 3, contains: "seq 3 where 4 was expected",
		},
		{
			name: "forged line appended",
			tamper: func(ls [][]byte) [][]byte {
				forged := outcome("call-1")
				forged.Seq, forged.Prev = 8, lineHash(ls[6])
				return append(ls, forged.AppendJSON(nil))
			},
			line: 9, seq: 8, contains: "prev hash does not match line 8",
		},
		{
			name: "first prev set",
			tamper: func(ls [][]byte) [][]byte {
				ls[0] = replace(ls[0], []byte(`"prev":""`), []byte(`"prev":"`+lineHash(nil)+`"`), 1)
				return ls
			},
			line: 1, seq: 0, contains: "first record's prev is not empty",
		},
		{
			name: "garbage line",
			tamper: func(ls [][]byte) [][]byte {
				ls[2] = []byte("hello")
				return ls
			},
			line: 3, seq: 2, contains: "not a valid record",
		},
		{
			name: "empty line",
			tamper: func(ls [][]byte) [][]byte {
				out := append(ls[:2:2], nil)
				return append(out, ls[2:]...)
			},
			line: 3, seq: 2, contains: "empty line",
		},
		{
			name: "unknown member",
			tamper: func(ls [][]byte) [][]byte {
				ls[2] = replace(ls[2], []byte(`"tool":`), []byte(`"x":1,"tool":`), 1)
				return ls
			},
			line: 3, seq: 2, contains: `unknown field "x"`,
		},
		{
			name: "invalid UTF-8",
			tamper: func(ls [][]byte) [][]byte {
				ls[2] = replace(ls[2], []byte(`read_file`), []byte("read_\xff"), 1)
				return ls
			},
			line: 3, seq: 2, contains: "not valid UTF-8",
		},
		{
			name: "windows line ending",
			tamper: func(ls [][]byte) [][]byte {
				ls[2] = append(ls[2], '\r')
				return ls
			},
			line: 3, seq: 2, contains: "not the canonical encoding",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ls := logLines(t)
			checkLog(t, join(ls)) // untouched, it verifies
			data := join(tt.tamper(ls))
			sum, err := audit.Verify(bytes.NewReader(data), audit.VerifyOptions{})
			var ve *audit.VerifyError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, tt.line, ve.Line, "reason: %s", ve.Reason)
			assert.Equal(t, tt.seq, ve.Seq)
			assert.Contains(t, ve.Reason, tt.contains)
			assert.Equal(t, tt.line-1, sum.Records, "the summary covers the lines before")
		})
	}
}

func TestVerifyTornAndLongLines(t *testing.T) {
	ls := logLines(t)
	data := join(ls)

	_, err := audit.Verify(bytes.NewReader(data[:len(data)-10]), audit.VerifyOptions{})
	var ve *audit.VerifyError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, 8, ve.Line)
	assert.Contains(t, ve.Reason, "incomplete last line")

	_, err = audit.Verify(bytes.NewReader(data[:len(data)-1]), audit.VerifyOptions{})
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, 8, ve.Line)

	// Lines longer than the limit, shorter and longer than the read buffer.
	for _, limit := range []int{100, 64 << 10} {
		big := decision("big", "deny")
		big.Reason = strings.Repeat("x", 2*limit)
		var buf bytes.Buffer
		writeAll(t, audit.NewLog(&buf), decision("c0", "deny"), big)
		sum, err := audit.Verify(&buf, audit.VerifyOptions{MaxLineBytes: limit + 400})
		require.ErrorAs(t, err, &ve)
		assert.Equal(t, 2, ve.Line)
		assert.Contains(t, ve.Reason, "longer than")
		assert.Equal(t, 1, sum.Records)
	}

	// A long line within the limit, read in pieces.
	big := decision("big", "deny")
	big.Reason = strings.Repeat("y", 200<<10)
	var buf bytes.Buffer
	writeAll(t, audit.NewLog(&buf), decision("c0", "deny"), big, decision("c2", "deny"))
	sum, err := audit.Verify(iotest.OneByteReader(bytes.NewReader(buf.Bytes())), audit.VerifyOptions{})
	require.NoError(t, err)
	assert.Equal(t, 3, sum.Records)
}

func TestVerifyPairing(t *testing.T) {
	tests := []struct {
		name     string
		records  []*audit.Record
		line     int
		contains string
	}{
		{"outcome without decision", []*audit.Record{decision("a", "allow"), outcome("b")}, 2, `outcome for id "b" has no earlier allowed decision`},
		{"outcome before decision", []*audit.Record{outcome("a"), decision("a", "allow")}, 1, `outcome for id "a"`},
		{"outcome of a denied call", []*audit.Record{decision("a", "deny"), outcome("a")}, 2, `outcome for id "a"`},
		{"two outcomes", []*audit.Record{decision("a", "allow"), outcome("a"), outcome("a")}, 3, `outcome for id "a"`},
		{"second decision while open", []*audit.Record{decision("a", "allow"), decision("a", "deny")}, 2, `second decision for id "a"`},
		{"wrong version", []*audit.Record{{Version: 3, ID: "a", Kind: audit.KindDecision, Time: t0, Effect: "deny"}}, 1, "format version 3"},
		{"decision without effect", []*audit.Record{{Version: 1, ID: "a", Kind: audit.KindDecision, Time: t0}}, 1, "not allow or deny"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := audit.Verify(bytes.NewReader(chain(tt.records...)), audit.VerifyOptions{})
			var ve *audit.VerifyError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, tt.line, ve.Line)
			assert.Contains(t, ve.Reason, tt.contains)
		})
	}

	// Repeated ids are fine once the earlier call is complete.
	ok := chain(decision("a", "allow"), outcome("a"), decision("a", "deny"), decision("a", "allow"), decision("b", "allow"), outcome("a"))
	sum := checkLog(t, ok)
	assert.Equal(t, 6, sum.Records)
	assert.Equal(t, map[string]int{"no-dotenv": 1}, sum.ByRule)
}

func TestVerifyEmptyAndErrors(t *testing.T) {
	sum, err := audit.Verify(strings.NewReader(""), audit.VerifyOptions{})
	require.NoError(t, err)
	assert.Zero(t, sum.Records)
	assert.Empty(t, sum.LastHash)
	assert.NotNil(t, sum.ByRule)

	boom := errors.New("boom")
	_, err = audit.Verify(iotest.ErrReader(boom), audit.VerifyOptions{})
	require.ErrorIs(t, err, boom)
	var ve *audit.VerifyError
	assert.False(t, errors.As(err, &ve), "a read error is not a bad record")

	ve = &audit.VerifyError{Line: 7, Seq: 6, Reason: "prev hash does not match line 6"}
	assert.Equal(t, "audit: line 7 (seq 6): prev hash does not match line 6", ve.Error())
}

func TestVerifyStopsAtDenialByStage(t *testing.T) {
	d := decision("a", "deny")
	d.Rule, d.Stage = "", "arguments"
	var buf bytes.Buffer
	l := audit.NewLog(&buf)
	require.NoError(t, l.Write(context.Background(), d))
	sum := checkLog(t, buf.Bytes())
	assert.Equal(t, map[string]int{"arguments": 1}, sum.ByRule)
}

// TestVerifyLastLineNeedsAnchor shows why Summary.LastHash should be kept
// elsewhere: no later line protects the last one.
func TestVerifyLastLineNeedsAnchor(t *testing.T) {
	ls := logLines(t)
	before := checkLog(t, join(ls))
	ls[7] = replace(ls[7], []byte(`"result_bytes":5`), []byte(`"result_bytes":6`), 1)
	after := checkLog(t, join(ls))
	assert.Equal(t, before.Records, after.Records)
	assert.NotEqual(t, before.LastHash, after.LastHash, "the edit shows against a kept LastHash")
}
