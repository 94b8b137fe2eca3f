package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/resilient-result/resilient/policies"
)

// TestMain fails the tests when any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testSchedule is the demo in about two seconds: short timeouts, a short
// outage, and waits the server asks for in milliseconds (the quota's reset
// is written in whole seconds, so it stays 1s).
var testSchedule = schedule{
	CallTimeout:    3 * time.Second,
	AttemptTimeout: 100 * time.Millisecond,
	Backoff:        policies.Exponential(2*time.Millisecond, 20*time.Millisecond),
	OpenFor:        150 * time.Millisecond,
	RetryAfter:     50 * time.Millisecond,
	QuotaReset:     time.Second,
	SlowFor:        2 * time.Second,
	DownFor:        400 * time.Millisecond,
	Gap:            60 * time.Millisecond,
	MaxOutage:      40,
}

func TestDemoEndToEnd(t *testing.T) {
	var out bytes.Buffer
	s, err := runDemo(context.Background(), &out, testSchedule)
	if err != nil {
		t.Fatal(err)
	}
	if testing.Verbose() {
		t.Log("\n" + out.String())
	}

	errs := 0
	for _, n := range s.Err {
		errs += n
	}
	if s.Ok+errs != s.Requests || s.Requests < 15 {
		t.Errorf("Ok %d + Err %d != %d requests (want >= 15)", s.Ok, errs, s.Requests)
	}
	// The scripted failures end as these Errs, each exactly once.
	for kind, want := range map[string]int{"status 503": 1, "timeout": 1, "connection reset": 1} {
		if s.Err[kind] != want {
			t.Errorf("Err[%q] = %d, want %d (all: %v)", kind, s.Err[kind], want, s.Err)
		}
	}
	if s.Err["circuit open"] < 1 {
		t.Errorf("no call failed fast on the open circuit: %v", s.Err)
	}
	if s.Ok < 10 {
		t.Errorf("Ok = %d, want >= 10", s.Ok)
	}

	// Retry: 2 for /flaky, 1 for /limited, 2 for /reset, 1 + 2 for the
	// slow ones, at least 3 during the outage.
	for cause, want := range map[string]int{"429": 1, "connection reset": 2, "timeout": 3} {
		if s.RetryCauses[cause] != want {
			t.Errorf("retries after %s = %d, want %d (all: %v)", cause, s.RetryCauses[cause], want, s.RetryCauses)
		}
	}
	if s.RetryCauses["503"] < 5 {
		t.Errorf("retries after 503 = %d, want >= 5", s.RetryCauses["503"])
	}
	if s.ServerWaits != 1 || s.ServerWaitFor != testSchedule.RetryAfter {
		t.Errorf("server waits = %d (%v), want 1 (%v)", s.ServerWaits, s.ServerWaitFor, testSchedule.RetryAfter)
	}
	if s.Stops["max_attempts"] != 3 || s.Stops["not_retryable"] < 1 {
		t.Errorf("stops = %v, want max_attempts x3 and not_retryable", s.Stops)
	}

	// RateLimit: held after the 429 and after the exhausted quota; the
	// request after the quota waited for it.
	if s.Holds != 2 || s.HeldWaits < 1 || s.HeldFor < testSchedule.QuotaReset/2 {
		t.Errorf("holds %d, held waits %d (%v); want 2 holds and a wait of about %v", s.Holds, s.HeldWaits, s.HeldFor, testSchedule.QuotaReset)
	}

	// Breaker: only the inventory circuit moves, and it goes all the way
	// round.
	for _, tr := range []string{"inventory closed->open", "inventory open->half-open", "inventory half-open->closed"} {
		if !slices.Contains(s.Transitions, tr) {
			t.Errorf("transitions %v lack %q", s.Transitions, tr)
		}
	}
	if last := s.Transitions[len(s.Transitions)-1]; last != "inventory half-open->closed" {
		t.Errorf("last transition %q, want the circuit closed", last)
	}
	if s.BreakerRejects < 1 {
		t.Error("the open circuit refused no call")
	}

	if s.AttemptTimeouts != 4 || s.CallTimeouts != 0 {
		t.Errorf("timeouts: %d attempts, %d calls; want 4 and 0", s.AttemptTimeouts, s.CallTimeouts)
	}
	if s.Fallbacks < 1 {
		t.Error("no answer came from the fallback")
	}

	// The printed run: Results, phases and the summary.
	for _, want := range []string{"Ok(200 OK)", "Err(503 Service Unavailable)", "Err(circuit open", "Err(timeout after 100ms)",
		"served by the fallback", "summary:", "half-open -> closed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestDemoStopsWhenCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := runDemo(ctx, &bytes.Buffer{}, testSchedule); err == nil {
		t.Fatal("runDemo with an ended context: no error")
	}
}

func TestRunURL(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "0")
			http.Error(w, "busy", http.StatusServiceUnavailable) // retried by Standard
		case 3:
			http.Error(w, "gone", http.StatusNotFound) // final: an Err
		default:
			w.Write([]byte("hello"))
		}
	}))
	defer srv.Close()

	var out bytes.Buffer
	if err := runURL(context.Background(), &out, srv.URL, 3); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"Ok(200 OK)", "5 bytes", "Err(404 Not Found)", "Ok 2, Err 1 (status 404 x1)"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

func TestRunURLRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		url string
		n   int
	}{{"example.com", 1}, {"ftp://example.com", 1}, {"http://", 1}, {"http://example.com", 0}} {
		if err := runURL(context.Background(), &bytes.Buffer{}, tc.url, tc.n); err == nil {
			t.Errorf("runURL(%q, %d): no error", tc.url, tc.n)
		}
	}
}
