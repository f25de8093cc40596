package audit

// Internals used by the tests of package audit_test.

// SyncRounds reports how many fsyncs a file Log has done.
func SyncRounds(l *Log) uint64 {
	l.sync.mu.Lock()
	defer l.sync.mu.Unlock()
	return l.sync.rounds
}

// Schema helpers shared with package audit_test.
var (
	RecordSchema = recordSchema
	ValidateLine = validateLine
	ValidateLog  = validateLog
)
