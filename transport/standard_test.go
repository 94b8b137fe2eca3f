package transport

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilient-result/resilient/policies"
)

// describeStack walks a RoundTripper built from this package's layers,
// outermost first, and names each layer with its main settings.
func describeStack(rt http.RoundTripper) []string {
	var out []string
	for {
		switch x := rt.(type) {
		case *timeoutRT:
			out = append(out, fmt.Sprintf("timeout %v", x.d))
			rt = x.next
		case *retryRT:
			out = append(out, fmt.Sprintf("retry attempts=%d maxdelay=%v budget=%v", x.p.MaxAttempts, x.p.MaxDelay, x.p.Budget != nil))
			rt = x.next
		case *breakerRT:
			out = append(out, "breaker")
			rt = x.next
		case *rateLimitRT:
			out = append(out, "ratelimit")
			rt = x.next
		default:
			return out
		}
	}
}

func TestPresetStacks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layers []Layer
		want   string
	}{
		{"Standard", Standard(), "timeout 1m0s|retry attempts=0 maxdelay=0s budget=false|breaker|ratelimit|timeout 10s"},
		{"ThirdPartyAPI", ThirdPartyAPI(), "timeout 3m0s|retry attempts=5 maxdelay=1m0s budget=false|breaker|ratelimit|timeout 30s"},
		{"Internal", Internal(), "timeout 10s|retry attempts=3 maxdelay=2s budget=true|breaker|ratelimit|timeout 2s"},
	} {
		if got := strings.Join(describeStack(Chain(&countingRT{}, tc.layers...)), "|"); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

func TestStandardSuccessReusesConnections(t *testing.T) {
	srv, conns := newCountedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("fine"))
	}))
	c := newTestClient(t, Standard()...)
	for i := 0; i < 3; i++ {
		r := Do(c, mustRequest(t, context.Background(), http.MethodGet, srv.URL, ""))
		if r.IsErr() {
			t.Fatal(r.Err())
		}
		if got := readAll(t, r.Value()); got != "fine" {
			t.Fatalf("body %q", got)
		}
	}
	if n := conns.NewConns(); n != 1 {
		t.Fatalf("%d connections for 3 calls, want 1", n)
	}
}

func TestStandardClientErrorNotRetried(t *testing.T) {
	var calls atomic.Int64
	srv := newServer(t, statusSeq(&calls, nil, http.StatusNotFound))
	c := newTestClient(t, Standard()...)
	var se *StatusError
	if r := Do(c, mustRequest(t, context.Background(), http.MethodGet, srv.URL, "")); !errors.As(r.Err(), &se) || se.StatusCode != 404 {
		t.Fatalf("err = %v, want a 404 StatusError", r.Err())
	}
	if calls.Load() != 1 {
		t.Fatalf("server saw %d requests, want 1", calls.Load())
	}
}

func TestStandardObeysLongRetryAfter(t *testing.T) {
	// A 429 asking for 2 minutes: beyond MaxDelay (30s) and the call's 60s
	// deadline. The first call returns the 429 at once; the next call to the
	// host fails fast without being sent, saying how long to wait.
	var calls atomic.Int64
	srv := newServer(t, statusSeq(&calls, func(_ int, h http.Header) { h.Set("Retry-After", "120") }, http.StatusTooManyRequests))
	c := newTestClient(t, Standard()...)
	start := time.Now()
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if resp.StatusCode != 429 || calls.Load() != 1 {
		t.Fatalf("got %d after %d requests, want the 429 after 1", resp.StatusCode, calls.Load())
	}
	resp, err = c.Get(srv.URL)
	if err == nil {
		discard(resp)
	}
	wait, ok := policies.RetryAfter(err)
	if !errors.Is(err, policies.ErrRateLimited) || !ok || wait < 100*time.Second {
		t.Fatalf("err = %v (wait %v), want ErrRateLimited asking for about 120s", err, wait)
	}
	if calls.Load() != 1 {
		t.Fatalf("server saw %d requests, want 1: a held host is not sent to", calls.Load())
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("took %v, want no waiting", el)
	}
}

func TestStandardForwardsCloseIdleConnections(t *testing.T) {
	for name, layers := range map[string][]Layer{"Standard": Standard(), "ThirdPartyAPI": ThirdPartyAPI(), "Internal": Internal()} {
		base := &countingRT{}
		(&http.Client{Transport: Chain(base, layers...)}).CloseIdleConnections()
		if base.idleCalls.Load() != 1 {
			t.Errorf("%s: CloseIdleConnections not forwarded", name)
		}
	}
}

func BenchmarkStandardStack(b *testing.B) {
	rt := Chain(benchBaseFresh(), Standard()...)
	req, _ := http.NewRequest(http.MethodGet, "http://bench.test/", nil)
	benchRoundTrips(b, rt, req)
}

// benchBaseFresh is benchBase for stacks whose layers may wrap the response
// body (Timeout): each call gets a shallow copy of the prebuilt response.
func benchBaseFresh() http.RoundTripper {
	resp := http.Response{StatusCode: 200, Status: "200 OK", Header: http.Header{}, Body: http.NoBody, ProtoMajor: 1, ProtoMinor: 1}
	return rtFunc(func(*http.Request) (*http.Response, error) {
		r := resp
		return &r, nil
	})
}
