// Command server is a small HTTP server protected by the middleware package:
// a per-client rate limit that speaks the IETF RateLimit headers, a bulkhead
// that caps concurrent handlers, and a timeout that answers 503 once.
//
//	go run ./examples/server [-addr 127.0.0.1:8080]
//
// Routes, on a chi router, behind one stack:
//
//	GET /hello      answers at once
//	GET /slow       works longer than the timeout: 503 after 2s
//	GET /stream     streams a line every 300ms; the timeout does not cut a
//	                started stream, the handler sees its context end and stops
//	GET /std/time   a plain http.ServeMux mounted on the router
//
// Ctrl-C or SIGTERM shuts it down gracefully: requests in flight finish
// (the timeout bounds how long that takes).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/resilient-result/resilient/middleware"
	"github.com/resilient-result/resilient/policies"
)

// demoConfig holds the numbers of the demo, small enough to see by hand.
type demoConfig struct {
	Limit       int           // requests per Window per client IP
	Window      time.Duration // the rate limit's window
	Timeout     time.Duration // time a handler has to start answering
	SlowFor     time.Duration // how long /slow would work
	StreamTicks int           // lines /stream writes
	StreamEvery time.Duration // pause between them
}

// defaultDemo is what go run uses: 10 requests per 10s per client (so a
// burst of 15 shows the first 429 at once), a 2s timeout.
var defaultDemo = demoConfig{
	Limit:       10,
	Window:      10 * time.Second,
	Timeout:     2 * time.Second,
	SlowFor:     5 * time.Second,
	StreamTicks: 10,
	StreamEvery: 300 * time.Millisecond,
}

// newHandler returns the demo's router with its middleware stack.
func newHandler() http.Handler { return newHandlerWith(defaultDemo) }

// newHandlerWith builds the demo's router for c. The stack is the order
// middleware.Standard uses: rate limit (cheapest refusal), bulkhead, timeout.
func newHandlerWith(c demoConfig) http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.Chain(
		middleware.RateLimitWith(middleware.RateLimitOptions{
			Policy: policies.RateLimit{Limit: c.Limit, Window: c.Window},
			Legacy: true, // X-RateLimit-* too, for older clients
		}),
		middleware.Bulkhead(policies.Bulkhead{MaxConcurrent: 50, MaxQueue: 50, QueueTimeout: time.Second}),
		middleware.Timeout(c.Timeout),
	))

	r.Get("/hello", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello\n")
	})
	r.Get("/slow", func(w http.ResponseWriter, r *http.Request) {
		t := time.NewTimer(c.SlowFor)
		defer t.Stop()
		select {
		case <-t.C:
			_, _ = io.WriteString(w, "done, slowly\n")
		case <-r.Context().Done():
			// Timeout has answered 503 already; stop working.
		}
	})
	r.Get("/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		rc := http.NewResponseController(w)
		t := time.NewTicker(c.StreamEvery)
		defer t.Stop()
		for i := 1; i <= c.StreamTicks; i++ {
			if i > 1 {
				select {
				case <-t.C:
				case <-r.Context().Done():
					_, _ = fmt.Fprintf(w, "stopped: %v\n", context.Cause(r.Context()))
					return
				}
			}
			_, _ = fmt.Fprintf(w, "tick %d\n", i)
			if err := rc.Flush(); err != nil {
				return
			}
		}
	})

	std := http.NewServeMux()
	std.HandleFunc("GET /time", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, time.Now().UTC().Format(time.RFC3339)+"\n")
	})
	r.Mount("/std", http.StripPrefix("/std", std))
	return r
}

// printUsage tells how to try the server at base (http://host:port).
func printUsage(w io.Writer, base string) {
	_, _ = fmt.Fprintf(w, `listening on %[1]s

try:
  # RateLimit-Policy, RateLimit and X-RateLimit-* on every answer
  curl -i %[1]s/hello
  # a burst: 200 ten times, then 429 with Retry-After
  for i in $(seq 1 15); do curl -s -o /dev/null -w '%%{http_code} ' %[1]s/hello; done; echo
  # 503 problem+json after %[2]v
  curl -i %[1]s/slow
  # lines arrive one by one; at %[2]v the handler sees its context end and stops
  curl -N %[1]s/stream
  # a plain http.ServeMux mounted on the chi router, behind the same stack
  curl -i %[1]s/std/time

Ctrl-C stops the server gracefully.
`, base, defaultDemo.Timeout)
}

// run serves h on ln until ctx ends, then shuts down gracefully: it stops
// accepting, lets requests in flight finish (at most 10s) and returns.
func run(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

func serve() error {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	printUsage(os.Stdout, "http://"+ln.Addr().String())
	if err := run(ctx, ln, newHandler()); err != nil {
		return err
	}
	fmt.Println("server stopped")
	return nil
}

func main() {
	if err := serve(); err != nil {
		log.Fatal(err)
	}
}
