package transport

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/resilient-result/resilient/policies"
)

// eventLog is a concurrency-safe policies.Observer that keeps every event.
type eventLog struct {
	mu sync.Mutex
	ev []policies.Event
}

func (l *eventLog) Observe(e policies.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ev = append(l.ev, e)
}

func (l *eventLog) of(t policies.EventType) []policies.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []policies.Event
	for _, e := range l.ev {
		if e.Type == t {
			out = append(out, e)
		}
	}
	return out
}

func TestFallbackWithReportsEachFallback(t *testing.T) {
	var log eventLog
	primary := rtFunc(func(req *http.Request) (*http.Response, error) {
		return newResponse(req, http.StatusServiceUnavailable, nil, "down"), nil
	})
	rt := Chain(primary, FallbackWith(StaticResponse(http.StatusOK, nil, []byte("stale")), FallbackOptions{Name: "cache", Observer: &log}))
	req := mustRequest(t, testCtx(t), http.MethodGet, "http://inventory.test/stock", "")
	resp, err := rt.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("RoundTrip = %v, %v; want the fallback's 200", resp, err)
	}
	_ = resp.Body.Close()
	evs := log.of(policies.EventFallback)
	if len(evs) != 1 {
		t.Fatalf("fallback events = %+v, want one", log.ev)
	}
	e := evs[0]
	var se *StatusError
	if e.Kind != policies.KindFallback || e.Name != "cache" || e.Key != "inventory.test" || !errors.As(e.Err, &se) || se.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("event = %+v, want KindFallback named cache for inventory.test caused by the 503", e)
	}
}

func TestTimeoutWithNamesAndReportsTheTimeout(t *testing.T) {
	var log eventLog
	slow := rtFunc(func(req *http.Request) (*http.Response, error) {
		<-req.Context().Done()
		return nil, req.Context().Err()
	})
	rt := Chain(slow, TimeoutWith(policies.Timeout{After: time.Millisecond, Name: "attempt", Observer: &log}))
	_, err := rt.RoundTrip(mustRequest(t, testCtx(t), http.MethodGet, "http://api.test/", ""))
	var te *policies.TimeoutError
	if !errors.As(err, &te) || te.Name != "attempt" || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a *TimeoutError named attempt, not the caller's deadline", err)
	}
	evs := log.of(policies.EventTimeout)
	if len(evs) != 1 || evs[0].Name != "attempt" || evs[0].Key != "api.test" || evs[0].Delay != time.Millisecond {
		t.Fatalf("timeout events = %+v, want one for attempt on api.test after 1ms", log.ev)
	}
}

func TestStandardWithReportsEveryLayer(t *testing.T) {
	var log eventLog
	calls := 0
	base := rtFunc(func(req *http.Request) (*http.Response, error) {
		calls++
		if calls == 1 {
			h := http.Header{"Retry-After": {"0"}}
			return newResponse(req, http.StatusServiceUnavailable, h, "busy"), nil
		}
		return newResponse(req, http.StatusOK, nil, "ok"), nil
	})
	rt := Chain(base, StandardWith(&log)...)
	resp, err := rt.RoundTrip(mustRequest(t, testCtx(t), http.MethodGet, "http://api.test/", ""))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("RoundTrip = %v, %v; want 200 after one retry", resp, err)
	}
	_ = resp.Body.Close()
	if evs := log.of(policies.EventRetry); len(evs) != 1 || evs[0].Key != "api.test" {
		t.Errorf("retry events = %+v, want one for api.test", evs)
	}
	if len(Standard()) != len(StandardWith(nil)) {
		t.Error("Standard and StandardWith(nil) differ in length")
	}
}

func TestHedgeWithReportsEachHedge(t *testing.T) {
	var log eventLog
	release := make(chan struct{})
	base := &countingRT{respond: func(n int, req *http.Request) (*http.Response, error) {
		if n == 1 {
			select {
			case <-release:
			case <-req.Context().Done():
				return nil, context.Cause(req.Context())
			}
		}
		return newResponse(req, http.StatusOK, nil, "ok"), nil
	}}
	defer close(release)
	fake := t2Fake()
	rt := Chain(base, hedgeLayer(time.Millisecond, fake, HedgeOptions{Name: "tail", Observer: &log}))
	done := make(chan error, 1)
	go func() {
		resp, err := rt.RoundTrip(mustRequest(t, testCtx(t), http.MethodGet, "http://api.test/", ""))
		if err == nil {
			_ = resp.Body.Close()
		}
		done <- err
	}()
	if err := fake.BlockUntil(testCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	fake.Advance(time.Millisecond)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	evs := log.of(policies.EventHedge)
	if len(evs) != 1 || evs[0].Kind != policies.KindHedge || evs[0].Name != "tail" || evs[0].Key != "api.test" || evs[0].Delay != time.Millisecond {
		t.Fatalf("hedge events = %+v, want one named tail for api.test after 1ms", log.ev)
	}
}
