package guardmcp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Defaults of SSEPollOptions.
const (
	DefaultSSERetry           = time.Second
	DefaultSSEPollAfter       = 3 * time.Second
	DefaultSSETTL             = time.Minute
	DefaultSSEMaxStreams      = 256
	DefaultSSEMaxStreamEvents = 4096
	DefaultSSEMaxStreamBytes  = 8 << 20
	DefaultSSEMaxBytes        = 64 << 20
	DefaultSSEMaxSessions     = 4096
)

// sseResumableVersion is the first protocol version whose clients resume
// a stream the server ends before the response (SEP-1699). Older clients
// may not understand a priming event with empty data, nor resume.
const sseResumableVersion = "2025-11-25"

// SSEPollOptions configure an SSEPoller. The zero value is all defaults.
type SSEPollOptions struct {
	// Retry is the reconnection time sent in the SSE retry field: how long
	// a client waits before it resumes a stream the server ended. Zero
	// means DefaultSSERetry.
	Retry time.Duration
	// PollAfter is how long a stream stays open while the response is not
	// ready. Then the server ends it and the client resumes it with a GET
	// carrying Last-Event-ID, the polling of SEP-1699. Zero means
	// DefaultSSEPollAfter; a negative value keeps streams open until the
	// response.
	PollAfter time.Duration
	// TTL is how long a stream is kept while no client is connected to
	// it: a call whose client does not come back within TTL is cancelled,
	// and the events of a finished stream are dropped TTL after its last
	// connection ended. Zero means DefaultSSETTL.
	TTL time.Duration
	// MaxStreams bounds the streams kept at once, across all sessions.
	// When it is reached, finished streams are dropped, oldest first; if
	// none is finished, a new request is refused with 503. Zero means
	// DefaultSSEMaxStreams.
	MaxStreams int
	// MaxStreamEvents and MaxStreamBytes bound the events one stream
	// buffers (and the size of the response the server writes). A stream
	// over either bound is ended with a JSON-RPC error for its request,
	// and the call is cancelled. Zero means the default.
	MaxStreamEvents int
	MaxStreamBytes  int64
	// MaxBytes bounds the bytes buffered by all streams together; a
	// stream that would exceed it is ended as if over MaxStreamBytes.
	// Zero means DefaultSSEMaxBytes.
	MaxBytes int64
	// MaxSessions bounds the sessions remembered as able to resume
	// (least recently used are forgotten first; their requests are then
	// answered as the inner handler answers them). Zero means
	// DefaultSSEMaxSessions.
	MaxSessions int
	// Logger receives what goes wrong inside the poller (a panicking
	// inner handler, a refused stream). Nil discards it.
	Logger *slog.Logger
}

// SSEPoller is an http.Handler that adds resumable SSE polling (SEP-1699)
// in front of mcp-go's streamable HTTP server, which answers calls but
// cannot end a response stream before the response for the client to
// resume it.
//
// A POST carrying a JSON-RPC request (not initialize), from a session
// that negotiated protocol version 2025-11-25 or later before 2026-07-28,
// whose Accept header includes text/event-stream, is answered with an SSE
// stream: first a priming event (an id of this poller's, the retry field
// and no data; written once the inner handler has accepted the request, or
// after 200 ms, so that a refusal such as 404 for an expired session is
// relayed with its status), then each message the inner handler writes for the call,
// as it comes — progress, server requests such as elicitation, and the
// response — each with an id of its own. The call runs on until it is
// answered, whether or not the client stays connected (as the transport
// specification asks, a disconnection is not a cancellation: a client
// cancels with notifications/cancelled); after PollAfter
// without the response the stream is ended, and the client resumes it
// with a GET carrying Last-Event-ID and the same Mcp-Session-Id, which
// replays what it missed and goes on until the response (or PollAfter
// again). A GET whose Last-Event-ID is not one of this poller's, or names
// a stream of another session, goes to the inner handler unchanged, as
// does everything else: notifications, responses, initialize (observed
// for the negotiated version), DELETE (which also drops the session's
// streams), requests of older or 2026-07-28 clients, JSON-only clients.
//
// Sessions are what a resumed stream belongs to: put the poller behind
// authentication and behind the check that binds a session to its
// principal (ProtectedResource.Require with SessionIDs), so that a token
// is verified before anything is replayed.
//
// Everything it keeps is bounded (see SSEPollOptions). Make one with
// NewSSEPoller; the zero value is not usable. An SSEPoller is
// safe for concurrent use; Close cancels the calls it still runs.
type SSEPoller struct {
	next http.Handler
	opts SSEPollOptions
	log  *slog.Logger

	mu       sync.Mutex
	streams  map[string]*pollStream
	sessions map[string]time.Time // resumable sessions, last used
	closed   bool

	bytes atomic.Int64 // buffered by all streams
}

// NewSSEPoller returns the poller in front of next, typically a
// *server.StreamableHTTPServer. Negative bounds are an error.
func NewSSEPoller(next http.Handler, opts SSEPollOptions) (*SSEPoller, error) {
	if next == nil {
		return nil, errors.New("guardmcp: SSE poller needs a handler")
	}
	if opts.Retry < 0 || opts.TTL < 0 || opts.MaxStreams < 0 || opts.MaxStreamEvents < 0 ||
		opts.MaxStreamBytes < 0 || opts.MaxBytes < 0 || opts.MaxSessions < 0 {
		return nil, errors.New("guardmcp: SSE poll options must not be negative (except PollAfter)")
	}
	def := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defDur(&opts.Retry, DefaultSSERetry)
	defDur(&opts.PollAfter, DefaultSSEPollAfter)
	defDur(&opts.TTL, DefaultSSETTL)
	defInt(&opts.MaxStreams, DefaultSSEMaxStreams)
	defInt(&opts.MaxStreamEvents, DefaultSSEMaxStreamEvents)
	def(&opts.MaxStreamBytes, DefaultSSEMaxStreamBytes)
	def(&opts.MaxBytes, DefaultSSEMaxBytes)
	defInt(&opts.MaxSessions, DefaultSSEMaxSessions)
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SSEPoller{
		next:     next,
		opts:     opts,
		log:      log,
		streams:  map[string]*pollStream{},
		sessions: map[string]time.Time{},
	}, nil
}

// Close cancels the calls the poller still runs and drops every stream.
// Later requests go to the inner handler unchanged.
func (p *SSEPoller) Close() {
	p.mu.Lock()
	p.closed = true
	streams := p.streams
	p.streams = map[string]*pollStream{}
	p.sessions = map[string]time.Time{}
	p.mu.Unlock()
	for _, st := range streams {
		st.drop()
	}
}

// maxPollBody is the largest POST body the poller reads to decide whether
// to poll; a larger one goes to the inner handler unread.
const maxPollBody = 4 << 20

// commitGrace is how long the poller waits for the inner handler to
// commit its answer before it commits the SSE stream itself: an answer
// that comes first and is not 200 (an invalid session, a bad header) is
// relayed as it is, with its status.
const commitGrace = 200 * time.Millisecond

// ServeHTTP implements http.Handler.
func (p *SSEPoller) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		p.servePost(w, r)
	case http.MethodGet:
		if st, after := p.resumable(r); st != nil {
			p.serveResume(w, r, st, after)
			return
		}
		p.next.ServeHTTP(w, r)
	case http.MethodDelete:
		sw := &statusWriter{ResponseWriter: w}
		p.next.ServeHTTP(sw, r)
		if sw.status/100 == 2 {
			p.dropSession(r.Header.Get(server.HeaderKeySessionID))
		}
	default:
		p.next.ServeHTTP(w, r)
	}
}

// pollEnvelope is what the poller reads of a POSTed message.
type pollEnvelope struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params struct {
		Meta *mcp.Meta `json:"_meta"`
	} `json:"params"`
}

func (p *SSEPoller) servePost(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.Body == nil || modernRequest(r.Header) {
		p.next.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPollBody+1))
	if err != nil || len(body) > maxPollBody {
		// Too large to look at, or unreadable: the inner handler reads
		// (or fails on) the rest itself.
		r2 := r.Clone(r.Context())
		r2.Body = readCloser{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
		p.next.ServeHTTP(w, r2)
		return
	}
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))

	var env pollEnvelope
	if json.Unmarshal(body, &env) != nil || mcp.IsModernProtocol(env.Params.Meta.ProtocolVersion()) {
		p.next.ServeHTTP(w, r2)
		return
	}
	if env.Method == string(mcp.MethodInitialize) {
		p.observeInitialize(w, r2)
		return
	}
	id := bytes.TrimSpace(env.ID)
	sid := r.Header.Values(server.HeaderKeySessionID)
	if env.Method == "" || len(id) == 0 || bytes.Equal(id, []byte("null")) || len(sid) != 1 ||
		!acceptsEventStream(r.Header) || !p.touchSession(sid[0]) {
		p.next.ServeHTTP(w, r2)
		return
	}
	var cid bytes.Buffer
	if json.Compact(&cid, id) != nil {
		p.next.ServeHTTP(w, r2)
		return
	}
	// The call belongs to the stream, not to this connection: it goes on
	// when the client disconnects, until it is answered or the stream is
	// dropped.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	st, err := p.newStream(sid[0], cid.Bytes(), cancel)
	if err != nil {
		cancel()
		p.log.Warn("guardmcp: SSE stream refused", "err", err)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", strconv.Itoa(int(max(p.opts.Retry/time.Second, 1))))
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write(jsonRPCError(cid.Bytes(), err.Error()))
		return
	}
	capture := &pollCapture{st: st, header: http.Header{}, committed: make(chan struct{}), returned: make(chan struct{})}
	inner := r2.Clone(ctx)
	go p.runInner(capture, inner)

	grace := time.NewTimer(commitGrace)
	defer grace.Stop()
	select {
	case <-capture.committed:
	case <-grace.C:
	case <-r.Context().Done():
		p.detach(st, nil)
		return
	}
	if capture.refused() {
		// An error answer is written at once; wait (briefly) for all of
		// it, to relay it as it is.
		select {
		case <-capture.returned:
		case <-time.After(commitGrace):
		case <-r.Context().Done():
			p.detach(st, nil)
			return
		}
	}
	if status, header, passBody, ok := capture.commit(); ok {
		// The inner handler refused the request before it began: relay
		// its answer, status and all, and forget the stream.
		p.remove(st)
		if status == http.StatusNotFound {
			p.dropSession(sid[0])
		}
		copyHeader(w.Header(), header)
		w.WriteHeader(status)
		_, _ = w.Write(passBody)
		return
	}
	h := w.Header()
	copyHeader(h, capture.headerSnapshot())
	h.Del("Content-Length")
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	att := p.attach(st)
	if _, err := fmt.Fprintf(w, "id: %s/0\nretry: %d\ndata: \n\n", st.id, p.opts.Retry.Milliseconds()); err != nil {
		p.detach(st, att)
		return
	}
	p.stream(w, r, st, att, 0, start)
}

// runInner runs the inner handler for a polled call and ends the stream
// when it returns.
func (p *SSEPoller) runInner(c *pollCapture, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				p.log.Error("guardmcp: panic in the MCP handler of a polled call", "panic", v)
			}
			c.finish(errors.New("the server failed while handling the request"))
			return
		}
		c.finish(nil)
	}()
	p.next.ServeHTTP(c, r)
}

// resumable returns the stream a GET resumes and the sequence number of
// the last event its client saw, or nil if the GET is not for this poller.
func (p *SSEPoller) resumable(r *http.Request) (*pollStream, int) {
	ids := r.Header.Values("Last-Event-ID")
	sid := r.Header.Values(server.HeaderKeySessionID)
	if len(ids) != 1 || len(sid) != 1 || modernRequest(r.Header) || !acceptsEventStream(r.Header) {
		return nil, 0
	}
	streamID, seq, ok := parseEventID(ids[0])
	if !ok {
		return nil, 0
	}
	p.mu.Lock()
	st := p.streams[streamID]
	p.mu.Unlock()
	if st == nil || subtle.ConstantTimeCompare([]byte(st.session), []byte(sid[0])) != 1 {
		return nil, 0
	}
	st.mu.Lock()
	n := len(st.events)
	st.mu.Unlock()
	if seq > n {
		return nil, 0
	}
	p.touchSession(sid[0])
	return st, seq
}

func (p *SSEPoller) serveResume(w http.ResponseWriter, r *http.Request, st *pollStream, after int) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	p.stream(w, r, st, p.attach(st), after, time.Now())
}

// stream writes st's events after the after'th to w as they come, until
// the last one, PollAfter since start, the client going away, or another
// connection taking the stream over.
func (p *SSEPoller) stream(w http.ResponseWriter, r *http.Request, st *pollStream, att *attachment, after int, start time.Time) {
	defer p.detach(st, att)
	rc := http.NewResponseController(w)
	defer rc.SetWriteDeadline(time.Time{})
	var poll <-chan time.Time
	if p.opts.PollAfter > 0 {
		t := time.NewTimer(max(p.opts.PollAfter-time.Since(start), 0))
		defer t.Stop()
		poll = t.C
	}
	for {
		st.mu.Lock()
		if st.dropped || after > len(st.events) {
			st.mu.Unlock()
			return
		}
		events, done, wake := st.events[after:], st.done, st.wake
		st.mu.Unlock()
		if len(events) > 0 {
			// A client that stops reading cannot hold the connection
			// longer than a write takes; its events stay buffered.
			_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
			for _, data := range events {
				after++
				if _, err := fmt.Fprintf(w, "id: %s/%d\nevent: message\ndata: %s\n\n", st.id, after, data); err != nil {
					return
				}
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
		if done {
			st.mu.Lock()
			st.delivered = true
			st.mu.Unlock()
			return
		}
		select {
		case <-wake:
		case <-poll:
			return
		case <-att.gone:
			return
		case <-r.Context().Done():
			return
		}
	}
}

// attach makes a new connection the stream's one, ending the previous.
func (p *SSEPoller) attach(st *pollStream) *attachment {
	a := &attachment{gone: make(chan struct{})}
	st.mu.Lock()
	if st.conn != nil {
		close(st.conn.gone)
	}
	st.conn = a
	if st.expiry != nil {
		st.expiry.Stop()
	}
	st.mu.Unlock()
	return a
}

// detach ends connection a (nil: the stream was never attached) and
// starts the stream's TTL.
func (p *SSEPoller) detach(st *pollStream, a *attachment) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if a != nil {
		if st.conn != a {
			return // taken over
		}
		close(a.gone)
		st.conn = nil
	}
	st.detached = time.Now()
	if st.expiry == nil {
		st.expiry = time.AfterFunc(p.opts.TTL, func() { p.expire(st) })
	} else {
		st.expiry.Reset(p.opts.TTL)
	}
}

// expire drops a stream no client came back for within TTL.
func (p *SSEPoller) expire(st *pollStream) {
	st.mu.Lock()
	stale := st.conn == nil && time.Since(st.detached) >= p.opts.TTL
	st.mu.Unlock()
	if stale {
		p.remove(st)
	}
}

// newStream registers a stream for a call of session sid with JSON-RPC
// id reqID, making room by dropping finished streams if need be.
func (p *SSEPoller) newStream(sid string, reqID []byte, cancel context.CancelFunc) (*pollStream, error) {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	st := &pollStream{p: p, id: hex.EncodeToString(b[:]), session: sid, reqID: reqID, cancel: cancel, wake: make(chan struct{})}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("guardmcp: SSE poller closed")
	}
	if len(p.streams) >= p.opts.MaxStreams {
		p.evictFinishedLocked()
	}
	if len(p.streams) >= p.opts.MaxStreams {
		return nil, fmt.Errorf("too many open response streams (%d): retry later", p.opts.MaxStreams)
	}
	p.streams[st.id] = st
	return st, nil
}

// evictFinishedLocked drops the finished streams, those delivered first,
// until a quarter of MaxStreams is free. p.mu is held.
func (p *SSEPoller) evictFinishedLocked() {
	var delivered, finished []*pollStream
	for _, st := range p.streams {
		st.mu.Lock()
		switch {
		case st.done && st.delivered && st.conn == nil:
			delivered = append(delivered, st)
		case st.done && st.conn == nil:
			finished = append(finished, st)
		}
		st.mu.Unlock()
	}
	want := len(p.streams) - p.opts.MaxStreams*3/4
	for _, st := range append(delivered, finished...) {
		if want <= 0 {
			break
		}
		delete(p.streams, st.id)
		p.bytes.Add(-st.drop())
		want--
	}
}

// remove drops st: its call is cancelled and its events freed.
func (p *SSEPoller) remove(st *pollStream) {
	p.mu.Lock()
	if p.streams[st.id] == st {
		delete(p.streams, st.id)
	}
	p.mu.Unlock()
	p.bytes.Add(-st.drop())
}

// reserve accounts n more buffered bytes to the poller's bound.
func (p *SSEPoller) reserve(n int64) bool {
	for {
		cur := p.bytes.Load()
		if cur+n > p.opts.MaxBytes {
			return false
		}
		if p.bytes.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

// touchSession reports whether sid is a session that can resume, and
// marks it used.
func (p *SSEPoller) touchSession(sid string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.sessions[sid]; !ok || p.closed {
		return false
	}
	p.sessions[sid] = time.Now()
	return true
}

func (p *SSEPoller) addSession(sid string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	if _, ok := p.sessions[sid]; !ok && len(p.sessions) >= p.opts.MaxSessions {
		var oldest string
		var at time.Time
		for s, t := range p.sessions {
			if oldest == "" || t.Before(at) {
				oldest, at = s, t
			}
		}
		delete(p.sessions, oldest)
	}
	p.sessions[sid] = time.Now()
}

// dropSession forgets a session that ended, with its streams.
func (p *SSEPoller) dropSession(sid string) {
	if sid == "" {
		return
	}
	p.mu.Lock()
	delete(p.sessions, sid)
	var gone []*pollStream
	for _, st := range p.streams {
		if st.session == sid {
			gone = append(gone, st)
		}
	}
	p.mu.Unlock()
	for _, st := range gone {
		p.remove(st)
	}
}

// maxInitSniff bounds how much of an initialize response is kept to read
// the negotiated protocol version from.
const maxInitSniff = 64 << 10

// observeInitialize passes an initialize request through and remembers
// the session it opens if the negotiated version can resume streams.
func (p *SSEPoller) observeInitialize(w http.ResponseWriter, r *http.Request) {
	tw := &teeWriter{statusWriter: statusWriter{ResponseWriter: w}}
	p.next.ServeHTTP(tw, r)
	sid := tw.Header().Get(server.HeaderKeySessionID)
	if tw.status != http.StatusOK || sid == "" {
		return
	}
	body := tw.buf.Bytes()
	if mt, _, _ := mime.ParseMediaType(tw.Header().Get("Content-Type")); mt == "text/event-stream" {
		for line := range strings.SplitSeq(string(body), "\n") {
			if data, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), "data:"); ok && resumableVersion([]byte(data)) {
				p.addSession(sid)
				return
			}
		}
		return
	}
	if resumableVersion(body) {
		p.addSession(sid)
	}
}

// resumableVersion reports whether an initialize response negotiated a
// version whose clients resume polled streams.
func resumableVersion(msg []byte) bool {
	var res struct {
		Result struct {
			ProtocolVersion string `json:"protocolVersion"`
		} `json:"result"`
	}
	if json.Unmarshal(msg, &res) != nil {
		return false
	}
	v := res.Result.ProtocolVersion
	return v >= sseResumableVersion && !mcp.IsModernProtocol(v)
}

// pollStream is one polled call's SSE stream: the events of its messages
// (sequence number i+1 at index i; 0 is the priming event), buffered
// until the stream is dropped.
type pollStream struct {
	p       *SSEPoller
	id      string
	session string
	reqID   []byte // compact JSON-RPC id of the call
	cancel  context.CancelFunc

	mu        sync.Mutex
	events    [][]byte
	bytes     int64
	done      bool          // the last event is buffered
	answered  bool          // a response to reqID is buffered
	delivered bool          // the last event was written to a client
	dropped   bool          // dropped: buffers nothing more
	wake      chan struct{} // closed (and replaced) when events are added
	conn      *attachment
	detached  time.Time
	expiry    *time.Timer
}

type attachment struct{ gone chan struct{} }

// add buffers one message (compact JSON) and wakes the connection. last
// ends the stream. It reports false when a bound stopped it: the stream
// then ends with an error for the call, which is cancelled.
func (st *pollStream) add(data []byte, last bool) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done || st.dropped {
		return false
	}
	n := int64(len(data))
	var over string
	switch {
	case len(st.events) >= st.p.opts.MaxStreamEvents-1:
		over = fmt.Sprintf("more than %d messages", st.p.opts.MaxStreamEvents)
	case st.bytes+n > st.p.opts.MaxStreamBytes:
		over = fmt.Sprintf("more than %d bytes", st.p.opts.MaxStreamBytes)
	case !st.p.reserve(n):
		over = fmt.Sprintf("more than the server's %d buffered bytes", st.p.opts.MaxBytes)
	}
	if over != "" {
		// The error itself is small and always buffered, so that the
		// client learns why its call ended.
		msg := st.errorMessage("the response stream was ended: it would hold " + over)
		st.p.bytes.Add(int64(len(msg)))
		st.bytes += int64(len(msg))
		st.events = append(st.events, msg)
		st.finishLocked()
		if st.cancel != nil {
			st.cancel()
		}
		return false
	}
	st.bytes += n
	st.events = append(st.events, data)
	if !st.answered && isResponseTo(data, st.reqID) {
		st.answered = true
	}
	if last {
		st.finishLocked()
	} else {
		st.wakeLocked()
	}
	return true
}

func (st *pollStream) wakeLocked() {
	close(st.wake)
	st.wake = make(chan struct{})
}

func (st *pollStream) finishLocked() {
	st.done = true
	st.wakeLocked()
}

// errorMessage is a JSON-RPC error response to the stream's call.
func (st *pollStream) errorMessage(text string) []byte { return jsonRPCError(st.reqID, text) }

// jsonRPCError is a JSON-RPC internal error response to id.
func jsonRPCError(id []byte, text string) []byte {
	msg, _ := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}{JSONRPC: "2.0", ID: id, Error: struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{mcp.INTERNAL_ERROR, text}})
	return msg
}

// drop cancels the call, ends any connection and frees the events; it
// returns the bytes freed.
func (st *pollStream) drop() int64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.dropped {
		return 0
	}
	st.dropped = true
	if st.cancel != nil {
		st.cancel()
	}
	if st.expiry != nil {
		st.expiry.Stop()
	}
	if st.conn != nil {
		close(st.conn.gone)
		st.conn = nil
	}
	n := st.bytes
	st.events, st.bytes = nil, 0
	if !st.done {
		st.finishLocked()
	}
	return n
}

// isResponseTo reports whether msg is a JSON-RPC response with id.
func isResponseTo(msg, id []byte) bool {
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method *string         `json:"method"`
	}
	if json.Unmarshal(msg, &m) != nil || m.Method != nil {
		return false
	}
	var c bytes.Buffer
	return json.Compact(&c, m.ID) == nil && bytes.Equal(c.Bytes(), id)
}

// Capture modes: what the inner handler answered with.
const (
	modeUndecided = iota
	modeJSON      // 200 application/json: one message, when it returns
	modeSSE       // 200 text/event-stream: messages as they come
	modePass      // anything else: relayed as it is, or turned into an error
)

// pollCapture is the ResponseWriter the inner handler of a polled call
// writes to. It turns what is written into the stream's messages.
type pollCapture struct {
	st        *pollStream
	header    http.Header
	committed chan struct{} // closed when the inner handler commits or returns
	returned  chan struct{} // closed when the inner handler returned

	mu       sync.Mutex
	status   int
	mode     int
	commit1  bool // committed is closed
	snapshot http.Header
	buf      []byte   // JSON or relayed body; unterminated SSE line
	data     []string // data lines of the SSE event being read
	failed   bool     // a bound stopped the stream
	sse      bool     // the poller committed the SSE stream to the client
}

func (c *pollCapture) Header() http.Header { return c.header }

func (c *pollCapture) WriteHeader(status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writeHeaderLocked(status)
}

func (c *pollCapture) writeHeaderLocked(status int) {
	if c.status != 0 || status < 200 {
		return
	}
	c.status = status
	c.snapshot = c.header.Clone()
	mt, _, _ := mime.ParseMediaType(c.header.Get("Content-Type"))
	switch {
	case status == http.StatusOK && mt == "application/json":
		c.mode = modeJSON
	case status == http.StatusOK && mt == "text/event-stream":
		c.mode = modeSSE
	default:
		c.mode = modePass
	}
	c.closeCommittedLocked()
}

func (c *pollCapture) closeCommittedLocked() {
	if !c.commit1 {
		c.commit1 = true
		close(c.committed)
	}
}

// refused reports whether the inner handler answered with something
// other than a 200 of JSON or SSE.
func (c *pollCapture) refused() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mode == modePass
}

func (c *pollCapture) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writeHeaderLocked(http.StatusOK)
	if c.failed {
		return 0, errors.New("guardmcp: response stream ended")
	}
	limit := c.st.p.opts.MaxStreamBytes
	if int64(len(c.buf)+len(b)) > limit {
		c.failLocked(fmt.Sprintf("the response stream was ended: a message is over %d bytes", limit))
		return 0, errors.New("guardmcp: response over the stream bound")
	}
	c.buf = append(c.buf, b...)
	if c.mode == modeSSE {
		c.parseSSELocked()
	}
	if c.failed {
		return 0, errors.New("guardmcp: response stream ended")
	}
	return len(b), nil
}

// Flush commits a 200, as net/http's does; events are delivered as they
// are parsed, so there is nothing else to flush.
func (c *pollCapture) Flush() {
	c.mu.Lock()
	c.writeHeaderLocked(http.StatusOK)
	c.mu.Unlock()
}

// parseSSELocked turns the complete lines of buf into messages.
func (c *pollCapture) parseSSELocked() {
	for !c.failed {
		i := bytes.IndexByte(c.buf, '\n')
		if i < 0 {
			return
		}
		line := strings.TrimSuffix(string(c.buf[:i]), "\r")
		c.buf = c.buf[i+1:]
		switch {
		case line == "":
			if len(c.data) > 0 {
				c.emitLocked([]byte(strings.Join(c.data, "\n")))
				c.data = nil
			}
		case strings.HasPrefix(line, "data:"):
			c.data = append(c.data, strings.TrimPrefix(line[len("data:"):], " "))
		}
	}
}

// emitLocked buffers one message on the stream, compacted to one line
// (which also proves it JSON: nothing else may reach the client's stream).
func (c *pollCapture) emitLocked(msg []byte) {
	var b bytes.Buffer
	if err := json.Compact(&b, msg); err != nil {
		c.failLocked("the server wrote a message that is not JSON")
		return
	}
	if !c.st.add(b.Bytes(), false) {
		c.failed = true
	}
}

func (c *pollCapture) failLocked(text string) {
	c.failed = true
	c.st.add(c.st.errorMessage(text), true)
	if c.st.cancel != nil {
		c.st.cancel()
	}
}

// commit is called once the poller stops waiting for the inner handler
// to commit first. If the inner handler refused the request (modePass)
// and has returned, it returns the answer to relay; otherwise the stream
// is SSE from now on.
func (c *pollCapture) commit() (int, http.Header, []byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mode == modePass && isClosed(c.returned) {
		return c.status, c.snapshot, c.buf, true
	}
	c.sse = true
	if c.mode == modePass && c.status != 0 {
		// Refused, but still writing: too late to relay.
		c.failLocked(fmt.Sprintf("the server answered HTTP %d", c.status))
	}
	return 0, nil, nil, false
}

func (c *pollCapture) headerSnapshot() http.Header {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.snapshot
}

// finish ends the stream when the inner handler returned; err says it
// failed.
func (c *pollCapture) finish(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer close(c.returned)
	if c.status == 0 && err == nil {
		c.writeHeaderLocked(http.StatusOK) // an empty 200: no answer
	}
	c.closeCommittedLocked()
	if c.failed {
		return
	}
	switch {
	case err != nil:
		c.failLocked(err.Error())
		return
	case c.mode == modePass:
		// Unless the POST relays the answer as it is, the client
		// learns of it from this error.
		c.failLocked(fmt.Sprintf("the server answered HTTP %d: %s", c.status, truncate(strings.TrimSpace(string(c.buf)), 200)))
		return
	case c.mode == modeJSON:
		if len(bytes.TrimSpace(c.buf)) > 0 {
			c.emitLocked(c.buf)
		}
	case c.mode == modeSSE:
		c.buf = append(c.buf, "\n\n"...)
		c.parseSSELocked()
	}
	if c.failed {
		return
	}
	c.st.mu.Lock()
	answered := c.st.answered
	c.st.mu.Unlock()
	if !answered {
		c.failLocked("the server ended the request without a response")
		return
	}
	c.st.mu.Lock()
	if !c.st.done {
		c.st.finishLocked()
	}
	c.st.mu.Unlock()
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// parseEventID splits an event id of this poller, "<32 hex>/<seq>".
func parseEventID(s string) (string, int, bool) {
	if len(s) > 32+1+9 || len(s) < 32+2 || s[32] != '/' {
		return "", 0, false
	}
	id, num := s[:32], s[33:]
	if _, err := hex.DecodeString(id); err != nil || strings.ToLower(id) != id {
		return "", 0, false
	}
	seq, err := strconv.Atoi(num)
	if err != nil || seq < 0 || strconv.Itoa(seq) != num {
		return "", 0, false
	}
	return id, seq, true
}

// modernRequest reports whether a request's header names protocol version
// 2026-07-28 or later, which has neither sessions nor resumption.
func modernRequest(h http.Header) bool {
	return mcp.IsModernProtocol(h.Get(mcp.HeaderProtocolVersion))
}

// acceptsEventStream reports whether the Accept header lists
// text/event-stream.
func acceptsEventStream(h http.Header) bool {
	for _, v := range h.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "text/event-stream" {
				return true
			}
		}
	}
	return false
}

func copyHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = append([]string(nil), v...)
	}
}

type readCloser struct {
	io.Reader
	io.Closer
}

// statusWriter records the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// teeWriter is a statusWriter that keeps the first maxInitSniff bytes of
// the body.
type teeWriter struct {
	statusWriter
	buf bytes.Buffer
}

func (w *teeWriter) Write(b []byte) (int, error) {
	if room := maxInitSniff - w.buf.Len(); room > 0 {
		w.buf.Write(b[:min(room, len(b))])
	}
	return w.statusWriter.Write(b)
}
