// Command httpclient shows what the transport layers do for an http.Client
// facing an unreliable server, each outcome seen as a result.Result.
//
//	go run ./examples/httpclient                              # the demo, about 10s, no network needed
//	go run ./examples/httpclient -url https://example.com -n 5  # Standard() against a real URL
//
// With no flags it starts two deliberately unreliable hosts on 127.0.0.1
// (httptest servers) and calls them through Standard's layers in Standard's
// order, with shorter timeouts and cool-down so the demo takes seconds:
//
//	Timeout(5s) > Retry > Breaker (per host) > RateLimit (per host) > Timeout(300ms)
//
// The api host answers 503s that Retry retries with backoff, a 429 with
// Retry-After that Retry waits for, a 200 announcing an exhausted quota
// (RateLimit: r=0) after which RateLimit holds the host, connections reset
// mid-request, and answers too slow for the per-attempt timeout. The
// inventory host goes down for a few seconds and recovers: its circuit
// opens, refuses calls without sending them, probes while half-open (a
// failed probe reopens it for twice as long) and closes once a probe
// succeeds; meanwhile every other request goes through a Fallback that
// serves a stale copy.
//
// Each request prints one line: its outcome as a Result (Ok(200 OK),
// Err(503 Service Unavailable), Err(circuit open, retry after 600ms)), how
// long it took and what the policies did meanwhile, as told by their events
// (policies.Observer). A summary follows: for each layer what it did
// (retries, waits the servers asked for, circuit transitions, fallbacks,
// timeouts) and the outcomes, Ok and Err by kind.
//
// With -url it sends -n GET requests to that URL through
// transport.Chain(nil, transport.Standard()...) and prints each outcome.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/resilient-result/resilient/result"
	"github.com/resilient-result/resilient/transport"
)

func main() {
	target := flag.String("url", "", "send requests to this URL through transport.Standard() instead of running the demo")
	n := flag.Int("n", 5, "with -url: the number of requests")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	if *target != "" {
		err = runURL(ctx, os.Stdout, *target, *n)
	} else {
		_, err = runDemo(ctx, os.Stdout, demoSchedule)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "httpclient:", err)
		os.Exit(1)
	}
}

// runURL sends n GET requests to target through Standard(), one after the
// other, and prints each outcome and the counts.
func runURL(ctx context.Context, w io.Writer, target string, n int) error {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("-url must be an absolute http or https URL, got %q", target)
	}
	if n < 1 {
		return fmt.Errorf("-n must be >= 1, got %d", n)
	}
	client := &http.Client{Transport: transport.Chain(nil, transport.Standard()...)}
	defer client.CloseIdleConnections()

	fmt.Fprintf(w, "GET %s, %d times, through transport.Standard()\n", u.Redacted(), n)
	start := time.Now()
	ok, errs := 0, map[string]int{}
	for i := 1; i <= n; i++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return err
		}
		t := time.Now()
		out := result.Then(transport.Do(client, req), readAnswer)
		a, err := out.Unwrap()
		if err != nil {
			if errors.Is(err, context.Canceled) && ctx.Err() != nil {
				return ctx.Err()
			}
			errs[errKind(err)]++
			fmt.Fprintf(w, "%4d  %-40s %7s\n", i, outcomeText(a, err), short(time.Since(t)))
			continue
		}
		ok++
		fmt.Fprintf(w, "%4d  %-40s %7s  %d bytes\n", i, outcomeText(a, nil), short(time.Since(t)), a.Bytes)
	}
	fmt.Fprintf(w, "\n%d requests in %s: Ok %d, Err %d (%s)\n", n, short(time.Since(start)), ok, n-ok, counts(errs))
	return nil
}
