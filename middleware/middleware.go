// Package middleware protects an http.Handler from overload: per-client rate
// limiting that speaks the IETF RateLimit headers, a bulkhead that caps
// concurrent handlers, and a timeout that answers 503 once and never leaks a
// goroutine. Each is a plain func(http.Handler) http.Handler, so it drops
// into http.ServeMux, chi (r.Use) and echo (echo.WrapMiddleware) unchanged.
//
//	mux := http.NewServeMux()
//	handler := middleware.Chain(
//		middleware.RateLimit(policies.RateLimit{Limit: 100, Window: time.Minute}, nil),
//		middleware.Bulkhead(policies.Bulkhead{}),
//		middleware.Timeout(10*time.Second),
//	)(mux)
//
// Refusals are answered with an RFC 9457 application/problem+json body and,
// where waiting helps, a Retry-After header.
package middleware

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Chain composes middlewares into one, the first outermost: a request passes
// through mws[0] first. Nil entries are skipped.
func Chain(mws ...func(http.Handler) http.Handler) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		for i := len(mws) - 1; i >= 0; i-- {
			if mws[i] != nil {
				h = mws[i](h)
			}
		}
		return h
	}
}

// KeyFunc tells which client a request comes from, for per-client limits. An
// error refuses the request with 400 rather than pooling it with others.
type KeyFunc func(*http.Request) (string, error)

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type   string `json:"type,omitempty"`   // a URI naming the problem type; "" means "about:blank"
	Title  string `json:"title"`            // short summary, such as "Too Many Requests"
	Status int    `json:"status"`           // the HTTP status code
	Detail string `json:"detail,omitempty"` // explanation for this occurrence
}

// writeProblem answers with status and an application/problem+json body.
// Headers already set on w (Retry-After, RateLimit) are kept.
func writeProblem(w http.ResponseWriter, status int, detail string) {
	p := Problem{Title: http.StatusText(status), Status: status, Detail: detail}
	body, _ := json.Marshal(p)
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
