package middleware

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/resilient-result/resilient/internal/deadline"
	"github.com/resilient-result/resilient/policies"
)

// Timeout returns a middleware that gives each handler d to start its
// answer. There is no default: d must be > 0, or Timeout panics with
// "middleware: Timeout duration must be > 0".
//
// The handler runs in the calling goroutine, as usual, with a request context
// that ends d after Timeout's ServeHTTP was called (or earlier, when the
// client's context ends first); context.Cause of that context is recognised
// by policies.TimedOut. If the handler has not written anything (no
// WriteHeader, Write or Flush) when d runs out, Timeout answers 503 Service
// Unavailable with an application/problem+json body at once and flushes it,
// while the handler may still be running. From then on the handler's Write
// and Flush return http.ErrHandlerTimeout and its WriteHeader is ignored, so
// the client gets exactly one answer. Headers set by middlewares outside
// Timeout are kept in that answer; those the handler set are dropped.
//
// A handler that started writing before d keeps its response: it is never
// buffered, so a stream goes on reaching the client as it is written; the
// handler sees its context end and may stop. ServeHTTP returns only after
// the handler has returned and the timer can no longer write, so nothing
// touches the ResponseWriter afterwards and no goroutine outlives the
// request.
//
// Timeout cannot stop a handler that ignores its context: the client is
// answered in time, but the handler's goroutine (the server's) runs on until
// it returns. The ResponseWriter it gets supports http.Flusher,
// http.Hijacker and, through Unwrap, http.ResponseController. A handler must
// fetch Header again after its first write to set trailers.
//
// Unlike http.TimeoutHandler, it starts no goroutine per request, does not
// buffer the response, and never writes after the handler began its own
// answer.
//
// Like every ResponseWriter, the one the handler gets must not be used (nor
// its Header map) after the handler returns: Timeout reuses it for later
// requests. The request's context, on the other hand, is the handler's to
// keep: it is never reused, and it is done once ServeHTTP has returned.
func Timeout(d time.Duration) func(http.Handler) http.Handler {
	if d <= 0 {
		panic("middleware: Timeout duration must be > 0, got " + d.String())
	}
	// One cause for every request: it only says d.
	cause := deadline.NewCause(policies.TimeoutCause(d))
	detail := "the handler did not answer within " + d.String()
	return func(next http.Handler) http.Handler {
		return &toHandler{d: d, next: next, cause: cause, detail: detail}
	}
}

// toHandler is one handler behind a Timeout.
type toHandler struct {
	d      time.Duration
	next   http.Handler
	cause  *deadline.Cause // the cause of every request context our deadline ends
	detail string          // the 503's problem detail
	pool   sync.Pool       // of idle *timeoutWriter
}

var _ http.Handler = (*toHandler)(nil)

func (h *toHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parent := r.Context()
	// One timer per request, pooled: the handler's context ends at the
	// deadline and, from the same timer, the writer answers 503 (expire).
	ctx := deadline.New(parent, h.d) // the handler's to keep: never reused
	ctx.SetCause(h.cause)
	tw, _ := h.pool.Get().(*timeoutWriter)
	if tw == nil {
		tw = &timeoutWriter{to: h}
		tw.expireFn = tw.expire // one method value per writer, not per request
	}
	tw.w, tw.ctx, tw.parent = w, ctx, parent
	ctx.ArmWith(tw.expireFn)
	defer h.release(tw) // on panic too
	h.next.ServeHTTP(tw, r.WithContext(ctx))
}

// release ends one request: it releases the handler's context, which stops
// its timer or waits for the 503 it is writing (so it can no longer write),
// and pools the writer. Reusing the writer is safe because nothing holds it
// any more: the timer has stopped or finished, and net/http forbids the
// handler to use its ResponseWriter after ServeHTTP returns.
func (h *toHandler) release(tw *timeoutWriter) {
	tw.ctx.Release()
	if !tw.started && !tw.timedOut {
		// The handler returned without writing: net/http answers for it
		// with the underlying headers, which must be the handler's.
		tw.syncHeaderLocked(false) // the timer is done: no lock needed
	}
	tw.w, tw.ctx, tw.parent = nil, nil, nil
	tw.started, tw.timedOut, tw.own = false, false, false
	if len(tw.hdr) > toMaxPooledHeader {
		tw.hdr = nil // do not keep a rare huge map alive
	} else {
		clear(tw.hdr)
	}
	h.pool.Put(tw)
}

// toMaxPooledHeader is the most header fields a pooled writer's private map
// may have held and still be kept for reuse.
const toMaxPooledHeader = 32

// timeoutWriter is the ResponseWriter a handler behind Timeout writes to,
// pooled by its toHandler. The mutex serialises the handler's writes with
// the timer's 503.
type timeoutWriter struct {
	to       *toHandler
	expireFn func() // tw.expire, run by the context's timer at the deadline

	mu       sync.Mutex
	w        http.ResponseWriter
	ctx      *deadline.Ctx   // the handler's context, ending at the deadline
	parent   context.Context // the request's own context
	hdr      http.Header     // the handler's headers until it starts (when own); kept, cleared, across requests
	own      bool            // the handler asked for Header before starting: hdr is its map
	started  bool            // the handler's answer has begun: the timer stays silent
	timedOut bool            // the 503 was written: the handler's answer is refused
}

var (
	_ http.ResponseWriter = (*timeoutWriter)(nil)
	_ http.Flusher        = (*timeoutWriter)(nil)
	_ http.Hijacker       = (*timeoutWriter)(nil)
	_ io.StringWriter     = (*timeoutWriter)(nil)
)

// expire runs when the context's timer fires, just after the handler's
// context ended by its own deadline.
func (tw *timeoutWriter) expire() {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if tw.started || tw.timedOut || tw.parent.Err() != nil {
		return // the handler answers, or the client is gone
	}
	tw.timeoutLocked()
}

// expiredLocked reports whether the deadline (ours, not the client's) has
// passed before the handler started; if so it writes the 503 first. It makes
// the outcome independent of whether the timer's goroutine has run yet: a
// handler that saw its context end can no longer start an answer.
func (tw *timeoutWriter) expiredLocked() bool {
	if tw.timedOut {
		return true
	}
	if tw.ctx.Err() != nil && tw.parent.Err() == nil {
		tw.timeoutLocked()
		return true
	}
	return false
}

// timeoutLocked writes the 503 answer once and flushes it.
func (tw *timeoutWriter) timeoutLocked() {
	tw.timedOut = true
	writeProblem(tw.w, http.StatusServiceUnavailable, tw.to.detail)
	_ = toFlush(tw.w)
}

// startLocked marks the answer begun and moves the handler's headers to the
// underlying ResponseWriter, replacing those set outside.
func (tw *timeoutWriter) startLocked() {
	tw.started = true
	tw.syncHeaderLocked(false)
}

// syncHeaderLocked copies the handler's headers onto the underlying ones;
// with clone, value slices are copied so the handler's later changes stay
// its own.
func (tw *timeoutWriter) syncHeaderLocked(clone bool) {
	if !tw.own {
		return // the handler never asked: the outer headers stand
	}
	dst := tw.w.Header()
	if len(dst) > 0 { // ranging over a map costs, even an empty one
		for k := range dst {
			if _, ok := tw.hdr[k]; !ok {
				delete(dst, k)
			}
		}
	}
	for k, v := range tw.hdr {
		if clone {
			v = append([]string(nil), v...)
		}
		dst[k] = v
	}
}

// Header returns the header map the handler writes. Until the handler starts
// its answer, it is a copy of the underlying headers (in a map the writer
// keeps for reuse), so the timer's 503 and the handler never touch the same
// map; afterwards it is the underlying map.
func (tw *timeoutWriter) Header() http.Header {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if tw.started {
		return tw.w.Header()
	}
	if !tw.own {
		tw.own = true
		var src http.Header
		if !tw.timedOut {
			src = tw.w.Header()
		}
		if tw.hdr == nil {
			tw.hdr = make(http.Header, len(src)+4)
		}
		if len(src) > 0 {
			for k, v := range src {
				tw.hdr[k] = v[:len(v):len(v)] // shared, but an append by either side copies
			}
		}
	}
	return tw.hdr
}

// WriteHeader sends the status and headers, unless the deadline has passed
// before the handler started; then it is ignored. Informational (1xx)
// statuses other than 101 do not start the answer.
func (tw *timeoutWriter) WriteHeader(code int) {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if !tw.started {
		if tw.expiredLocked() {
			return
		}
		if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
			tw.syncHeaderLocked(true)
			tw.w.WriteHeader(code)
			return
		}
		tw.startLocked()
	}
	tw.w.WriteHeader(code)
}

// beginLocked starts the handler's answer, or reports http.ErrHandlerTimeout
// when the deadline passed before it started. tw.mu must be held.
func (tw *timeoutWriter) beginLocked() error {
	if !tw.started {
		if tw.expiredLocked() {
			return http.ErrHandlerTimeout
		}
		tw.startLocked()
	}
	return nil
}

// Write writes body bytes, starting the answer (with status 200 when
// WriteHeader was not called). It returns http.ErrHandlerTimeout when the
// deadline passed before the handler started.
func (tw *timeoutWriter) Write(p []byte) (int, error) {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if err := tw.beginLocked(); err != nil {
		return 0, err
	}
	return tw.w.Write(p)
}

// WriteString is Write for a string, without copying it to a []byte when
// the underlying ResponseWriter has a WriteString method (io.WriteString
// uses it).
func (tw *timeoutWriter) WriteString(s string) (int, error) {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if err := tw.beginLocked(); err != nil {
		return 0, err
	}
	return io.WriteString(tw.w, s)
}

// Flush sends buffered data to the client, starting the answer; see
// FlushError.
func (tw *timeoutWriter) Flush() { _ = tw.FlushError() }

// FlushError sends buffered data to the client, starting the answer, and
// reports the underlying error; http.ResponseController uses it. It returns
// http.ErrHandlerTimeout when the deadline passed before the handler
// started.
func (tw *timeoutWriter) FlushError() error {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if err := tw.beginLocked(); err != nil {
		return err
	}
	return toFlush(tw.w)
}

// Hijack takes over the connection (through http.ResponseController, so
// wrapped writers work). Once it succeeds the timer stays silent. It returns
// http.ErrHandlerTimeout when the deadline passed before the handler
// started.
func (tw *timeoutWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if !tw.started && tw.expiredLocked() {
		return nil, nil, http.ErrHandlerTimeout
	}
	conn, rw, err := http.NewResponseController(tw.w).Hijack()
	if err == nil {
		tw.started = true
	}
	return conn, rw, err
}

// Unwrap returns the underlying ResponseWriter, for http.ResponseController.
func (tw *timeoutWriter) Unwrap() http.ResponseWriter { return tw.w }

// toFlush flushes w without allocating in the common cases.
func toFlush(w http.ResponseWriter) error {
	switch f := w.(type) {
	case interface{ FlushError() error }:
		return f.FlushError()
	case http.Flusher:
		f.Flush()
		return nil
	}
	return http.NewResponseController(w).Flush()
}
