// Package audittest checks that an [audit.Sink] keeps the promises the guard
// relies on, the way testing/slogtest checks a slog.Handler.
//
// # Running the kit
//
// Call [TestSink] from a test with a function that makes a fresh sink and
// a way to read back what it stored:
//
//	func TestMySink(t *testing.T) {
//		audittest.TestSink(t, func(t *testing.T) (audit.Sink, func() []audit.Record) {
//			s := mysink.New(...)
//			return s, func() []audit.Record { return s.ReadAll(t) }
//		})
//	}
//
// The read-back function returns every record the sink has stored so far,
// in the order it stored them. The kit writes records, mutates them, cancels
// contexts and writes concurrently, then compares what comes back.
//
// # What is checked
//
// TestSink checks that every Write that returned nil stored the whole record
// (its members round-trip; Seq, Prev and Version are the sink's to set, and
// times are compared to the millisecond); that sequential writes come back
// in order and one goroutine's writes keep their order among concurrent
// ones; that nothing is dropped or stored twice under concurrency; that the
// sink does not keep the caller's record (changing it after Write changes
// nothing stored); that a cancelled context either fails the Write or stores
// the record, never stores part of it, and leaves the sink usable; and that
// a nil record is an error, not a panic.
//
// [TestSinkErrors] checks the other half of "never drop a record silently":
// given a sink whose storage starts failing after a number of records, every
// Write that did not store its record must return an error.
package audittest
