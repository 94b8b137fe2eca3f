package middleware

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"sync"
	"time"

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
func Timeout(d time.Duration) func(http.Handler) http.Handler {
	if d <= 0 {
		panic("middleware: Timeout duration must be > 0, got " + d.String())
	}
	return func(next http.Handler) http.Handler {
		return &toHandler{d: d, next: next}
	}
}

// toHandler is one handler behind a Timeout.
type toHandler struct {
	d    time.Duration
	next http.Handler
}

var _ http.Handler = (*toHandler)(nil)

func (h *toHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parent := r.Context()
	ctx, cancel := policies.WithTimeout(parent, h.d)
	tw := &timeoutWriter{w: w, ctx: ctx, parent: parent, d: h.d}
	tw.fired.Add(1)
	stop := context.AfterFunc(ctx, tw.expire)
	defer func() {
		// Runs on panic too. Stop the timer before cancel, which would fire
		// it; if it is already running, wait for it to finish writing.
		if stop() {
			tw.fired.Done()
		}
		tw.fired.Wait()
		cancel()
	}()
	h.next.ServeHTTP(tw, r.WithContext(ctx))
}

// timeoutWriter is the ResponseWriter a handler behind Timeout writes to. The
// mutex serialises the handler's writes with the timer's 503.
type timeoutWriter struct {
	w      http.ResponseWriter
	ctx    context.Context // the handler's context, ending at the deadline
	parent context.Context // the request's own context
	d      time.Duration
	fired  sync.WaitGroup // done when the timer has run or can no longer run

	mu       sync.Mutex
	h        http.Header // the handler's headers until it starts; nil until asked for
	started  bool        // the handler's answer has begun: the timer stays silent
	timedOut bool        // the 503 was written: the handler's answer is refused
}

var (
	_ http.ResponseWriter = (*timeoutWriter)(nil)
	_ http.Flusher        = (*timeoutWriter)(nil)
	_ http.Hijacker       = (*timeoutWriter)(nil)
)

// expire runs when the handler's context ends.
func (tw *timeoutWriter) expire() {
	defer tw.fired.Done()
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
	writeProblem(tw.w, http.StatusServiceUnavailable, "the handler did not answer within "+tw.d.String())
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
	if tw.h == nil {
		return // the handler never asked: the outer headers stand
	}
	dst := tw.w.Header()
	for k := range dst {
		if _, ok := tw.h[k]; !ok {
			delete(dst, k)
		}
	}
	for k, v := range tw.h {
		if clone {
			v = append([]string(nil), v...)
		}
		dst[k] = v
	}
}

// Header returns the header map the handler writes. Until the handler starts
// its answer, it is a copy of the underlying headers, so the timer's 503 and
// the handler never touch the same map; afterwards it is the underlying map.
func (tw *timeoutWriter) Header() http.Header {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if tw.started {
		return tw.w.Header()
	}
	if tw.h == nil {
		var src http.Header
		if !tw.timedOut {
			src = tw.w.Header()
		}
		tw.h = make(http.Header, len(src)+2)
		for k, v := range src {
			tw.h[k] = v[:len(v):len(v)] // shared, but an append by either side copies
		}
	}
	return tw.h
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

// Write writes body bytes, starting the answer (with status 200 when
// WriteHeader was not called). It returns http.ErrHandlerTimeout when the
// deadline passed before the handler started.
func (tw *timeoutWriter) Write(p []byte) (int, error) {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if !tw.started {
		if tw.expiredLocked() {
			return 0, http.ErrHandlerTimeout
		}
		tw.startLocked()
	}
	return tw.w.Write(p)
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
	if !tw.started {
		if tw.expiredLocked() {
			return http.ErrHandlerTimeout
		}
		tw.startLocked()
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
