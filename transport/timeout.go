package transport

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/resilient-result/resilient/internal/deadline"
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
		return &timeoutRT{next: next, d: p.After, name: p.Name, o: p.Observer}
	}
}

// timeoutRT is the RoundTripper built by Timeout.
type timeoutRT struct {
	next http.RoundTripper
	d    time.Duration
	name string
	o    policies.Observer
}

var _ http.RoundTripper = (*timeoutRT)(nil)

// timeoutCall is what one call through a Timeout layer allocates: its
// context and its response body wrapper, together.
type timeoutCall struct {
	ctx  deadline.Ctx
	body timeoutBody
}

// RoundTrip sends req with a context that ends after d; see Timeout.
func (t *timeoutRT) RoundTrip(req *http.Request) (*http.Response, error) {
	call := new(timeoutCall)
	c := &call.ctx
	c.Init(req.Context(), t.d)
	resp, err := t.next.RoundTrip(req.WithContext(c))
	if err != nil {
		timedOut := c.TimedOut()
		c.Release()
		if resp != nil {
			discard(resp)
		}
		if timedOut {
			if t.o != nil {
				t.o.Observe(policies.Event{Kind: policies.KindTimeout, Name: t.name, Key: hostKey(req), Type: policies.EventTimeout, Delay: t.d, Err: err})
			}
			return nil, t.timeoutError(err)
		}
		return nil, err
	}
	if resp.Body == nil || resp.Body == http.NoBody {
		c.Release() // nothing left to read
		return resp, nil
	}
	call.body = timeoutBody{rc: resp.Body, ctx: c, t: t}
	if rw, ok := resp.Body.(io.ReadWriteCloser); ok {
		// A 101 Switching Protocols body is writable: keep it so.
		resp.Body = &timeoutRWBody{timeoutBody: &call.body, w: rw}
	} else {
		resp.Body = &call.body
	}
	return resp, nil
}

// timeoutError is the error returned when the layer's own deadline cut a
// call short; err is what the call returned. context.DeadlineExceeded,
// which only reports the deadline this layer set, is kept out of the chain
// so that errors.Is(err, context.DeadlineExceeded) stays a test for the
// caller's deadline.
func (t *timeoutRT) timeoutError(err error) *policies.TimeoutError {
	if errors.Is(err, context.DeadlineExceeded) {
		err = nil
	}
	return &policies.TimeoutError{Name: t.name, After: t.d, Err: err}
}

// CloseIdleConnections forwards to the wrapped RoundTripper.
func (t *timeoutRT) CloseIdleConnections() { forwardCloseIdle(t.next) }

// timeoutBody is a response body that releases the timeout's context when
// closed, and reports a read cut short by the timeout as a TimeoutError.
type timeoutBody struct {
	rc  io.ReadCloser
	ctx *deadline.Ctx
	t   *timeoutRT
}

// Read reads from the body; an error caused by the timeout is returned as a
// *policies.TimeoutError.
func (b *timeoutBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF && b.ctx.TimedOut() {
		return n, b.t.timeoutError(err)
	}
	return n, err
}

// Close closes the body and releases the timeout's context.
func (b *timeoutBody) Close() error {
	err := b.rc.Close()
	b.ctx.Release()
	return err
}

// timeoutRWBody is a timeoutBody that stays writable (protocol upgrades).
type timeoutRWBody struct {
	*timeoutBody
	w io.Writer
}

// Write writes to the upgraded connection.
func (b *timeoutRWBody) Write(p []byte) (int, error) { return b.w.Write(p) }
