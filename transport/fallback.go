package transport

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/resilient-result/resilient/policies"
	"io"
	"net/http"
	"strconv"
)

// Fallback returns a Layer that answers from alt when the primary (the
// RoundTripper the layer wraps) fails: a transport error, a policy rejection
// (an open circuit, a rate limit, a full bulkhead, a timeout) or a response
// with status >= 500. The primary's failed response is drained (up to 64 KiB)
// and closed, so its connection returns to the pool, and alt's outcome,
// whatever it is, goes to the caller. A primary response with status < 500
// is returned untouched and alt is never called.
//
// alt receives a copy of the request with a fresh body obtained from
// GetBody, so a POST reaches alt with the same bytes. A request whose body
// cannot be replayed (a body without GetBody, or GetBody failing) gets the
// primary's outcome unchanged. When the caller's own context has ended
// there is nothing to fall back for: the primary's outcome is returned.
//
// StaticResponse builds a canned alt. Fallback is not a retry: stack Retry
// inside it to retry the primary first. A nil alt panics. Fallback is
// FallbackWith(alt, FallbackOptions{}).
func Fallback(alt http.RoundTripper) Layer {
	return FallbackWith(alt, FallbackOptions{})
}

// FallbackOptions names a Fallback layer and lets it be observed. The zero
// value is an unnamed, silent fallback.
type FallbackOptions struct {
	// Name is the layer's name in events; default "".
	Name string
	// Observer receives a policies.EventFallback (Kind KindFallback, Key the
	// request's host, Err the primary's failure) each time alt answers
	// instead of the primary; nil means none.
	Observer policies.Observer
}

// FallbackWith is Fallback with options: see Fallback for what it does.
func FallbackWith(alt http.RoundTripper, o FallbackOptions) Layer {
	if alt == nil {
		panic("transport: Fallback alt must not be nil")
	}
	return func(next http.RoundTripper) http.RoundTripper {
		return &fallbackRT{next: next, alt: alt, o: o}
	}
}

// fallbackRT is the RoundTripper Fallback builds.
type fallbackRT struct {
	next http.RoundTripper
	alt  http.RoundTripper
	o    FallbackOptions
}

var _ http.RoundTripper = (*fallbackRT)(nil)

// RoundTrip sends req to the primary and, when it fails, to alt.
func (f *fallbackRT) RoundTrip(req *http.Request) (*http.Response, error) {
	hasBody := req.Body != nil && req.Body != http.NoBody
	if hasBody && req.GetBody == nil {
		return f.next.RoundTrip(req) // not replayable: the primary's outcome is final
	}
	resp, err := f.next.RoundTrip(req)
	if err == nil && resp.StatusCode < http.StatusInternalServerError {
		return resp, nil
	}
	if req.Context().Err() != nil {
		return resp, err // the caller gave up: alt would not be waited for either
	}
	altReq := req
	if hasBody {
		body, gerr := req.GetBody()
		if gerr != nil {
			return resp, err
		}
		altReq = req.Clone(req.Context())
		altReq.Body = body
	}
	if f.o.Observer != nil {
		cause := err
		if cause == nil {
			cause = &StatusError{StatusCode: resp.StatusCode, Status: resp.Status, Method: req.Method, URL: statusURL(req), Header: resp.Header}
		}
		f.o.Observer.Observe(policies.Event{Kind: policies.KindFallback, Name: f.o.Name, Key: hostKey(req), Type: policies.EventFallback, Err: cause})
	}
	discard(resp)
	return f.alt.RoundTrip(altReq)
}

// CloseIdleConnections forwards to the primary and to alt.
func (f *fallbackRT) CloseIdleConnections() {
	forwardCloseIdle(f.next)
	forwardCloseIdle(f.alt)
}

// StaticResponse returns a RoundTripper that answers every request with the
// same canned response: status code status, a copy of header (nil means
// none) and body (copied at construction; nil means empty). Each call
// returns a fresh *http.Response with its own Body reader, its Request set
// and ContentLength len(body); a HEAD request gets no body. It closes the
// request body and never fails. Use it as Fallback's alt.
//
// A status outside [100, 999] panics.
func StaticResponse(status int, header http.Header, body []byte) http.RoundTripper {
	if status < 100 || status > 999 {
		panic(fmt.Sprintf("transport: StaticResponse status must be in [100, 999], got %d", status))
	}
	text := http.StatusText(status)
	line := strconv.Itoa(status)
	if text != "" {
		line += " " + text
	}
	return &staticRT{status: status, line: line, header: header.Clone(), body: bytes.Clone(body)}
}

// staticRT is the RoundTripper StaticResponse builds.
type staticRT struct {
	status int
	line   string
	header http.Header
	body   []byte
}

var _ http.RoundTripper = (*staticRT)(nil)

// errStaticNilRequest is returned for a nil request.
var errStaticNilRequest = errors.New("transport: StaticResponse: nil request")

// RoundTrip returns a fresh copy of the canned response.
func (s *staticRT) RoundTrip(req *http.Request) (*http.Response, error) {
	if req == nil {
		return nil, errStaticNilRequest
	}
	closeRequestBody(req)
	h := s.header.Clone()
	if h == nil {
		h = make(http.Header)
	}
	resp := &http.Response{
		Status:        s.line,
		StatusCode:    s.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          http.NoBody,
		ContentLength: int64(len(s.body)),
		Request:       req,
	}
	if len(s.body) > 0 && req.Method != http.MethodHead {
		resp.Body = io.NopCloser(bytes.NewReader(s.body))
	}
	return resp, nil
}
