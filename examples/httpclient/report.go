package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/resilient-result/resilient/headers"
	"github.com/resilient-result/resilient/policies"
	"github.com/resilient-result/resilient/transport"
)

// recorder is the demo's policies.Observer: it keeps every event, in order.
type recorder struct {
	mu     sync.Mutex
	events []policies.Event
}

// Observe keeps e.
func (r *recorder) Observe(e policies.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// len returns the number of events so far, a mark for since.
func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// since returns a copy of the events recorded after mark.
func (r *recorder) since(mark int) []policies.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events[mark:])
}

// header prints the hosts and the stack.
func (d *demo) header() {
	s := d.sched
	fmt.Fprintln(d.w, "resilient: an unreliable upstream on 127.0.0.1, called through transport's Standard stack")
	fmt.Fprintf(d.w, "  api        %s  flaky, rate-limited, resetting, slow\n", d.up.api.URL)
	fmt.Fprintf(d.w, "  inventory  %s  down for %v, then back\n", d.up.inventory.URL, s.DownFor)
	backoff := "exponential 100ms..10s, full jitter"
	if s.Backoff != nil {
		backoff = "custom"
	}
	fmt.Fprintf(d.w, "  stack      Timeout(%v) > Retry(3 attempts, %s) > Breaker(5 failures, open %v) > RateLimit(obeys hosts) > Timeout(%v)\n",
		s.CallTimeout, backoff, s.OpenFor, s.AttemptTimeout)
	fmt.Fprintln(d.w, "             Standard's layers in Standard's order; the timeouts and the cool-down are shortened for the demo")
}

// phase prints a phase's title.
func (d *demo) phase(title string) {
	fmt.Fprintf(d.w, "\n%s\n", title)
}

// line prints one request: its number, target, outcome, duration and what
// the policies did meanwhile.
func (d *demo) line(c call) {
	notes := make([]string, 0, len(c.Events)+1)
	for _, e := range c.Events {
		if n := d.note(e); n != "" {
			notes = append(notes, n)
		}
	}
	if a, err := c.Outcome.Unwrap(); err == nil && a.Fallback {
		notes = append(notes, "served by the fallback (stale copy)")
	}
	line := fmt.Sprintf("%4d  %-20s %-36s %7s  %s", c.N, c.Target, outcomeText(c.Outcome.Unwrap()), short(c.Took), strings.Join(notes, "; "))
	fmt.Fprintln(d.w, strings.TrimRight(line, " "))
}

// outcomeText renders an outcome as a Result: Ok(200 OK), Err(timeout after
// 300ms).
func outcomeText(a answer, err error) string {
	if err != nil {
		return "Err(" + errText(err) + ")"
	}
	return "Ok(" + a.Status + ")"
}

// note describes one event for a request's line; "" skips it.
func (d *demo) note(e policies.Event) string {
	switch e.Type {
	case policies.EventRetry:
		return fmt.Sprintf("retry in %s after %s", short(e.Delay), causeText(e.Err))
	case policies.EventRetryStop:
		switch {
		case e.Reason == 0:
			return "retry wait cut short"
		case errors.Is(e.Err, policies.ErrCircuitOpen):
			return "no retry: the circuit is open"
		}
		return "retry stops: " + e.Reason.String()
	case policies.EventStateChange:
		s := fmt.Sprintf("%s circuit %s->%s", d.labels[e.Key], e.From, e.To)
		if e.To == policies.StateOpen {
			s += " for " + short(e.Delay)
		}
		return s
	case policies.EventReject:
		if e.Kind == policies.KindBreaker {
			if e.Delay > 0 {
				return "circuit refuses (" + short(e.Delay) + " left)"
			}
			return "circuit refuses (probe busy)"
		}
		return "held host: fails fast (would wait " + short(e.Delay) + ")"
	case policies.EventHold:
		return "host held " + short(e.Delay) + " (server asked)"
	case policies.EventAdmit:
		return "waited " + short(e.Delay) + " for the held host"
	case policies.EventBudgetExhausted:
		return "retry budget spent"
	}
	return ""
}

// errKind is the kind of a failed call, for counting.
func errKind(err error) string {
	var se *transport.StatusError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("status %d", se.StatusCode)
	case errors.Is(err, policies.ErrCircuitOpen):
		return "circuit open"
	case errors.Is(err, policies.ErrRateLimited):
		return "rate limited"
	case errors.Is(err, policies.ErrBulkheadFull):
		return "bulkhead full"
	case errors.Is(err, policies.ErrTimeout):
		return "timeout"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "transport error"
}

// errText is a short, port-free description of a failed call.
func errText(err error) string {
	var (
		se *transport.StatusError
		te *policies.TimeoutError
	)
	switch {
	case errors.As(err, &se):
		return se.Status
	case errors.As(err, &te):
		return "timeout after " + short(te.After)
	}
	kind := errKind(err)
	if kind == "transport error" {
		return cut(err.Error(), 60)
	}
	if wait, ok := policies.RetryAfter(err); ok {
		return kind + ", retry after " + short(wait)
	}
	if errors.Is(err, syscall.ECONNRESET) {
		return "connection reset by peer"
	}
	return kind
}

// causeText names the cause of a retry: the status (with the wait the
// server asked for) or the kind of error.
func causeText(err error) string {
	if err == nil {
		return "a retryable outcome"
	}
	var se *transport.StatusError
	if errors.As(err, &se) {
		s := fmt.Sprint(se.StatusCode)
		if d, ok := headers.Delay(se.Header, time.Now()); ok {
			s += fmt.Sprintf(" asking to wait %s", short(d))
		}
		return s
	}
	return errKind(err)
}

// short renders d for people: milliseconds below a second, hundredths of a
// second above.
func short(d time.Duration) string {
	switch {
	case d > 0 && d < time.Millisecond:
		return "<1ms"
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// cut shortens s to at most n bytes.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// summary is what every layer did over the whole run, derived from the
// policies' events and the calls' outcomes.
type summary struct {
	Elapsed  time.Duration
	Requests int
	Ok       int
	Err      map[string]int // failed calls by errKind

	Retries       int            // EventRetry: retries scheduled
	RetryCauses   map[string]int // what they retried, by kind
	RetryWait     time.Duration  // the waits scheduled, in all
	ServerWaits   int            // retries whose wait the server asked for (Retry-After, exhausted quota)
	ServerWaitFor time.Duration  // the waits they asked for, in all
	Stops         map[string]int // EventRetryStop by reason: why calls stopped retrying

	Holds     int           // EventHold: hosts held on the server's word
	HoldFor   time.Duration // the holds, in all
	HeldWaits int           // EventAdmit: requests that waited for a held host
	HeldFor   time.Duration // the time they waited, in all
	Throttled int           // rate-limit EventReject: failed fast rather than wait past the deadline

	Transitions     []string // "closed->open", per host, in order
	BreakerRejects  int      // calls the breaker refused without sending them
	Fallbacks       int      // calls answered by the fallback
	AttemptTimeouts int      // attempts cut short by the per-attempt Timeout
	CallTimeouts    int      // calls cut short by the whole-call Timeout
}

// summary derives the run's summary from the recorded calls.
func (d *demo) summary(elapsed time.Duration) summary {
	s := summary{Elapsed: elapsed, Err: map[string]int{}, RetryCauses: map[string]int{}, Stops: map[string]int{}}
	for _, c := range d.calls {
		s.Requests++
		a, err := c.Outcome.Unwrap()
		if err != nil {
			s.Err[errKind(err)]++
			if timeoutAfter(err) == d.sched.CallTimeout {
				s.CallTimeouts++
			}
			continue
		}
		s.Ok++
		if a.Fallback {
			s.Fallbacks++
		}
	}
	for _, c := range d.calls {
		for _, e := range c.Events {
			switch e.Type {
			case policies.EventRetry:
				s.Retries++
				s.RetryCauses[retryCauseKind(e.Err)]++
				s.RetryWait += e.Delay
				var se *transport.StatusError
				if errors.As(e.Err, &se) {
					if d, ok := headers.Delay(se.Header, time.Now()); ok {
						s.ServerWaits++
						s.ServerWaitFor += d
					}
				}
			case policies.EventRetryStop:
				if e.Reason != 0 {
					s.Stops[e.Reason.String()]++
				}
			case policies.EventStateChange:
				s.Transitions = append(s.Transitions, fmt.Sprintf("%s %s->%s", d.labels[e.Key], e.From, e.To))
			case policies.EventReject:
				if e.Kind == policies.KindBreaker {
					s.BreakerRejects++
				} else {
					s.Throttled++
				}
			case policies.EventHold:
				s.Holds++
				s.HoldFor += e.Delay
			case policies.EventAdmit:
				s.HeldWaits++
				s.HeldFor += e.Delay
			}
			// Each failed attempt is reported once, by EventRetry or
			// EventRetryStop (Reason 0 repeats an earlier cause).
			if (e.Type == policies.EventRetry || e.Type == policies.EventRetryStop && e.Reason != 0) &&
				timeoutAfter(e.Err) == d.sched.AttemptTimeout {
				s.AttemptTimeouts++
			}
		}
	}
	return s
}

// retryCauseKind is the kind of a retried outcome: its status or errKind.
func retryCauseKind(err error) string {
	var se *transport.StatusError
	if errors.As(err, &se) {
		return fmt.Sprint(se.StatusCode)
	}
	if err == nil {
		return "other"
	}
	return errKind(err)
}

// timeoutAfter is the duration of the Timeout layer that cut err short, 0
// when none did.
func timeoutAfter(err error) time.Duration {
	var te *policies.TimeoutError
	if errors.As(err, &te) {
		return te.After
	}
	return 0
}

// print writes the summary, one block per layer, outermost first.
func (s summary) print(w io.Writer, sc schedule) {
	errs := 0
	for _, n := range s.Err {
		errs += n
	}
	row := func(layer, format string, args ...any) {
		fmt.Fprintf(w, "  %-15s %s\n", layer, fmt.Sprintf(format, args...))
	}
	fmt.Fprintf(w, "\nsummary: %d requests in %s\n", s.Requests, short(s.Elapsed))
	row(fmt.Sprintf("Timeout(%v)", sc.CallTimeout), "whole calls cut short: %d", s.CallTimeouts)
	row("Retry", "retries scheduled: %d (%s), %s of waits", s.Retries, counts(s.RetryCauses), short(s.RetryWait))
	row("", "server waits obeyed: %d (Retry-After and the like, %s in all)", s.ServerWaits, short(s.ServerWaitFor))
	row("", "gave up: %s", counts(s.Stops))
	row("Breaker", "%s", transitions(s.Transitions))
	row("", "calls refused without being sent: %d", s.BreakerRejects)
	row("RateLimit", "hosts held on the server's word: %d (%s in all)", s.Holds, short(s.HoldFor))
	row("", "requests that waited for a held host: %d (%s in all); failed fast: %d", s.HeldWaits, short(s.HeldFor), s.Throttled)
	row(fmt.Sprintf("Timeout(%v)", sc.AttemptTimeout), "attempts cut short: %d", s.AttemptTimeouts)
	row("Fallback", "answers served from the fallback: %d", s.Fallbacks)
	row("outcomes", "Ok %d, Err %d (%s)", s.Ok, errs, counts(s.Err))
}

// counts renders a count map sorted by key: "429 x1, 503 x4"; "none" when
// empty.
func counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s x%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// transitions renders the circuits' state changes per host as a path:
// "inventory closed -> open -> half-open -> closed".
func transitions(ts []string) string {
	if len(ts) == 0 {
		return "no circuit changed state"
	}
	var hosts []string
	paths := map[string][]string{}
	for _, t := range ts {
		host, change, _ := strings.Cut(t, " ")
		from, to, _ := strings.Cut(change, "->")
		if _, ok := paths[host]; !ok {
			hosts = append(hosts, host)
			paths[host] = []string{from}
		}
		paths[host] = append(paths[host], to)
	}
	parts := make([]string, 0, len(hosts))
	for _, h := range hosts {
		parts = append(parts, h+" circuit "+strings.Join(paths[h], " -> "))
	}
	return strings.Join(parts, "; ")
}
