package transport

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/resilient-result/resilient/result"
)

// statusBodyLimit is how much of an error response's body a StatusError
// keeps.
const statusBodyLimit = 64 << 10

// StatusError is the error Do returns for a response with status >= 400. It
// carries what a caller needs to branch on or log the failure: the status,
// the response headers (Retry-After, rate-limit fields) and the first 64 KiB
// of the body. The response itself has been drained and closed.
type StatusError struct {
	StatusCode int         // the response's status code, such as 503
	Status     string      // the response's status line, such as "503 Service Unavailable"
	Method     string      // the request's method
	URL        string      // the request's URL, password redacted
	Header     http.Header // the response's headers
	Body       []byte      // the first 64 KiB of the response body; nil when it had none
}

// Error describes the failure: "transport: GET https://x/y: 503 Service
// Unavailable".
func (e *StatusError) Error() string {
	status := e.Status
	code := strconv.Itoa(e.StatusCode)
	if !strings.HasPrefix(status, code) {
		text := status
		if text == "" {
			text = http.StatusText(e.StatusCode)
		}
		status = strings.TrimSpace(code + " " + text)
	}
	return "transport: " + e.Method + " " + e.URL + ": " + status
}

// Do sends req with c and returns the outcome as a Result: Err with the
// error as is for a transport error (a *url.Error from http.Client); Err
// with a *StatusError for a response with status >= 400, whose body Do has
// read (the first 64 KiB into the error), drained and closed, so an Err
// never holds a connection; Ok(resp) otherwise, and the caller must close
// resp.Body.
//
// A nil c means http.DefaultClient. Do adds no policy of its own: retries,
// timeouts and limits come from c's Transport, such as
// Chain(nil, Standard()...).
func Do(c *http.Client, req *http.Request) result.Result[*http.Response] {
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return result.Err[*http.Response](err)
	}
	if resp.StatusCode >= http.StatusBadRequest {
		return result.Err[*http.Response](newStatusError(resp, req))
	}
	return result.Ok(resp)
}

// DoJSON sends req with c as Do does and decodes the JSON body of a
// successful response into a T; the body is always closed. Transport
// errors and statuses >= 400 are Do's errors; a body that is not valid JSON
// for T is an Err that wraps the decoding error. A nil c means
// http.DefaultClient.
func DoJSON[T any](c *http.Client, req *http.Request) result.Result[T] {
	r := Do(c, req)
	if r.IsErr() {
		return result.Err[T](r.Err())
	}
	resp := r.Value()
	defer discard(resp)
	var v T
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return result.Err[T](fmt.Errorf("transport: %s %s: decoding JSON: %w", req.Method, statusURL(req), err))
	}
	return result.Ok(v)
}

// newStatusError reads the first 64 KiB of resp's body into a StatusError,
// then drains and closes the body.
func newStatusError(resp *http.Response, req *http.Request) *StatusError {
	if resp.Request != nil {
		req = resp.Request // the request that got this response, after redirects
	}
	e := &StatusError{
		StatusCode: resp.StatusCode,
		Status:     resp.Status,
		Method:     req.Method,
		URL:        statusURL(req),
		Header:     resp.Header,
	}
	if resp.Body != nil {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, statusBodyLimit))
		if len(b) > 0 {
			e.Body = b
		}
		discard(resp)
	}
	if e.Method == "" {
		e.Method = http.MethodGet
	}
	return e
}

// statusURL is req's URL for messages, with any password redacted.
func statusURL(req *http.Request) string {
	if req.URL == nil {
		return ""
	}
	return req.URL.Redacted()
}
