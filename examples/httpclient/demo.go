package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/resilient-result/resilient/policies"
	"github.com/resilient-result/resilient/result"
	"github.com/resilient-result/resilient/transport"
)

// schedule holds the demo's timings. Standard's own timings (a 60s call,
// 10s attempts, a 5s cool-down) would make a demo of minutes; the demo keeps
// Standard's layers and order and shortens these.
type schedule struct {
	CallTimeout    time.Duration    // the outer Timeout, bounding a whole call; Standard: 60s
	AttemptTimeout time.Duration    // the inner Timeout, bounding one attempt; Standard: 10s
	Backoff        policies.Backoff // Retry's backoff; nil is Standard's (exponential 100ms to 10s, full jitter)
	OpenFor        time.Duration    // the breaker's first cool-down; Standard: 5s
	RetryAfter     time.Duration    // the wait the api host's 429 asks for
	QuotaReset     time.Duration    // how long the api host's exhausted quota lasts (whole seconds on the wire)
	SlowFor        time.Duration    // how long a slow answer takes; longer than AttemptTimeout
	DownFor        time.Duration    // how long the inventory host is down
	Gap            time.Duration    // the pause between requests during the outage
	MaxOutage      int              // the most requests sent during the outage
}

// demoSchedule is what go run uses: about 9 seconds in all.
var demoSchedule = schedule{
	CallTimeout:    5 * time.Second,
	AttemptTimeout: 300 * time.Millisecond,
	OpenFor:        time.Second,
	RetryAfter:     time.Second,
	QuotaReset:     time.Second,
	SlowFor:        2 * time.Second,
	DownFor:        2500 * time.Millisecond,
	Gap:            400 * time.Millisecond,
	MaxOutage:      20,
}

// stack returns Standard's layers in Standard's order, with s's timings and
// every policy reporting to obs:
//
//	Timeout(call) › Retry › Breaker (per host) › RateLimit (per host) › Timeout(attempt)
func stack(s schedule, obs policies.Observer) []transport.Layer {
	return []transport.Layer{
		transport.Timeout(s.CallTimeout),
		transport.Retry(policies.Retry{Backoff: s.Backoff, Name: "retry", Observer: obs}),
		transport.Breaker(policies.Breaker{OpenFor: s.OpenFor, Name: "breaker", Observer: obs}),
		transport.RateLimit(policies.RateLimit{Name: "ratelimit", Observer: obs}),
		transport.Timeout(s.AttemptTimeout),
	}
}

// fallbackHeader marks the responses the fallback serves.
const fallbackHeader = "X-Served-By"

// answer is what the demo keeps of a successful response.
type answer struct {
	Status   string // "200 OK"
	Fallback bool   // served by the fallback, not by the host
	Bytes    int64  // body length
}

// call is one request of the demo and its outcome.
type call struct {
	N       int
	Target  string // "GET api/flaky"
	Outcome result.Result[answer]
	Took    time.Duration
	Events  []policies.Event
}

// demo runs the scripted requests and prints them.
type demo struct {
	w      io.Writer
	sched  schedule
	up     *upstream
	rec    *recorder
	labels map[string]string // host:port -> "api", "inventory"
	calls  []call
}

// runDemo starts the unreliable upstream, drives it through the stack with
// the timings of s, prints one line per request and a summary to w, and
// returns the summary. It stops early, with ctx's error, when ctx ends.
func runDemo(ctx context.Context, w io.Writer, s schedule) (summary, error) {
	start := time.Now()
	up := newUpstream(s)
	defer up.Close()

	d := &demo{w: w, sched: s, up: up, rec: &recorder{}, labels: map[string]string{
		up.api.Listener.Addr().String():       "api",
		up.inventory.Listener.Addr().String(): "inventory",
	}}
	rt := transport.Chain(nil, stack(s, d.rec)...)
	client := &http.Client{Transport: rt}
	defer client.CloseIdleConnections()
	// The same stack (the same circuits, the same held hosts) with a
	// Fallback outside it that serves a cached copy when the stack fails.
	cached := transport.StaticResponse(http.StatusOK,
		http.Header{fallbackHeader: {"fallback"}, "Content-Type": {"application/json"}},
		[]byte(`{"sku": "A-42", "stock": 7, "stale": true}`))
	withFallback := &http.Client{Transport: transport.Chain(rt, transport.Fallback(cached))}

	d.header()
	api, inv := up.api.URL, up.inventory.URL
	steps := []struct {
		title string
		paths []string
	}{
		{"healthy: answers at once", []string{"/hello", "/hello"}},
		{"flaky: 503 twice, then 200; Retry tries again with backoff", []string{"/flaky"}},
		{fmt.Sprintf("rate limited: 429 with Retry-After %v; Retry waits what the server asks", s.RetryAfter), []string{"/limited"}},
		{fmt.Sprintf("quota: a 200 announcing RateLimit r=0, t=%v; RateLimit holds the host", s.QuotaReset), []string{"/quota", "/hello"}},
		{"reset: the connection is reset on every attempt", []string{"/reset", "/hello"}},
		{fmt.Sprintf("slow: %v answers, cut by the %v per-attempt timeout", s.SlowFor, s.AttemptTimeout), []string{"/slow1", "/slow", "/hello"}},
	}
	for _, st := range steps {
		d.phase(st.title)
		for _, p := range st.paths {
			if err := d.do(ctx, client, api, p); err != nil {
				return d.summary(time.Since(start)), err
			}
		}
	}

	d.phase(fmt.Sprintf("outage: inventory answers 503 for %v, then recovers; every other request has a Fallback", s.DownFor))
	up.goDown()
	recovered := 0
	for i := range s.MaxOutage {
		c := client
		if i%2 == 1 {
			c = withFallback
		}
		mark := d.rec.len()
		if err := d.do(ctx, c, inv, "/stock"); err != nil {
			return d.summary(time.Since(start)), err
		}
		if recovered > 0 || closedSince(d.rec, mark) {
			if recovered++; recovered == 3 {
				break
			}
		}
		if err := sleep(ctx, s.Gap); err != nil {
			return d.summary(time.Since(start)), err
		}
	}

	sum := d.summary(time.Since(start))
	sum.print(w, s)
	return sum, nil
}

// closedSince reports whether a circuit closed in the events since mark.
func closedSince(r *recorder, mark int) bool {
	for _, e := range r.since(mark) {
		if e.Type == policies.EventStateChange && e.To == policies.StateClosed {
			return true
		}
	}
	return false
}

// do sends GET base+path with c, prints the outcome and records it. It
// returns an error only when ctx has ended.
func (d *demo) do(ctx context.Context, c *http.Client, base, path string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return err
	}
	mark := d.rec.len()
	start := time.Now()
	out := result.Then(transport.Do(c, req), readAnswer)
	cl := call{
		N:       len(d.calls) + 1,
		Target:  "GET " + d.labels[req.URL.Host] + path,
		Outcome: out,
		Took:    time.Since(start),
		Events:  d.rec.since(mark),
	}
	d.calls = append(d.calls, cl)
	d.line(cl)
	return ctx.Err()
}

// readAnswer reads (at most 1 MiB of) the body, closes it and keeps the
// status; a body cut short is an Err.
func readAnswer(resp *http.Response) result.Result[answer] {
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return result.Err[answer](fmt.Errorf("reading the body: %w", err))
	}
	return result.Ok(answer{Status: resp.Status, Fallback: resp.Header.Get(fallbackHeader) != "", Bytes: n})
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
