package transport

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/resilient-result/resilient/policies"
)

// Timeout returns a Layer that bounds each call through it to d, from the
// request until the response body is closed. Placed outside Retry it bounds
// the whole call, waits between attempts included; placed inside Retry it
// bounds each attempt, and an attempt it cuts short is retried. It panics if
// d <= 0; there is no default.
//
// When d expires first, RoundTrip returns a *policies.TimeoutError:
// errors.Is(err, policies.ErrTimeout) is true and
// errors.Is(err, context.DeadlineExceeded) is false, which is kept for the
// caller's own deadline; the caller's deadline or cancellation comes back
// unchanged. A response obtained in time stays readable after RoundTrip
// returns; the timeout's context is released when its body is closed (the
// caller must close it, as always), and a read cut short by the timeout
// also fails with the *policies.TimeoutError.
func Timeout(d time.Duration) Layer {
	if d <= 0 {
		panic("transport: Timeout duration must be > 0, got " + d.String())
	}
	return TimeoutWith(policies.Timeout{After: d})
}

// TimeoutWith is Timeout configured by p: p.After is the duration (it must
// be > 0), p.Name names the layer in events and in the *policies.TimeoutError
// it returns, and p.Observer receives a policies.EventTimeout (Key the
// request's host) each time the timeout cuts a call short.
func TimeoutWith(p policies.Timeout) Layer {
	if p.After <= 0 {
		panic("transport: Timeout duration must be > 0, got " + p.After.String())
	}
	return func(next http.RoundTripper) http.RoundTripper {
		return &timeoutRT{next: next, d: p.After, name: p.Name, o: p.Observer, cause: policies.TimeoutCause(p.After)}
	}
}

// timeoutRT is the RoundTripper built by Timeout.
type timeoutRT struct {
	next  http.RoundTripper
	d     time.Duration
	name  string
	o     policies.Observer
	cause error // made once: every call's context ends with it
}

var _ http.RoundTripper = (*timeoutRT)(nil)

// RoundTrip sends req with a context that ends after d; see Timeout.
func (t *timeoutRT) RoundTrip(req *http.Request) (*http.Response, error) {
	parent := req.Context()
	tctx, cancel := context.WithTimeoutCause(parent, t.d, t.cause)
	resp, err := t.next.RoundTrip(req.WithContext(tctx))
	if err != nil {
		te := policies.TimedOut(parent, tctx, err)
		cancel()
		if resp != nil {
			discard(resp)
		}
		if te != nil {
			te.Name = t.name
			if t.o != nil {
				t.o.Observe(policies.Event{Kind: policies.KindTimeout, Name: t.name, Key: hostKey(req), Type: policies.EventTimeout, Delay: t.d, Err: err})
			}
			return nil, te
		}
		return nil, err
	}
	if resp.Body == nil || resp.Body == http.NoBody {
		cancel() // nothing left to read
		return resp, nil
	}
	tb := timeoutBody{rc: resp.Body, parent: parent, tctx: tctx, cancel: cancel}
	if rw, ok := resp.Body.(io.ReadWriteCloser); ok {
		// A 101 Switching Protocols body is writable: keep it so.
		resp.Body = &timeoutRWBody{timeoutBody: tb, w: rw}
	} else {
		resp.Body = &tb
	}
	return resp, nil
}

// CloseIdleConnections forwards to the wrapped RoundTripper.
func (t *timeoutRT) CloseIdleConnections() { forwardCloseIdle(t.next) }

// timeoutBody is a response body that releases the timeout's context when
// closed, and reports a read cut short by the timeout as a TimeoutError.
type timeoutBody struct {
	rc     io.ReadCloser
	parent context.Context
	tctx   context.Context
	cancel context.CancelFunc
}

// Read reads from the body; an error caused by the timeout is returned as a
// *policies.TimeoutError.
func (b *timeoutBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF {
		if te := policies.TimedOut(b.parent, b.tctx, err); te != nil {
			return n, te
		}
	}
	return n, err
}

// Close closes the body and releases the timeout's context.
func (b *timeoutBody) Close() error {
	err := b.rc.Close()
	b.cancel()
	return err
}

// timeoutRWBody is a timeoutBody that stays writable (protocol upgrades).
type timeoutRWBody struct {
	timeoutBody
	w io.Writer
}

// Write writes to the upgraded connection.
func (b *timeoutRWBody) Write(p []byte) (int, error) { return b.w.Write(p) }
