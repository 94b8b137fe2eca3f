package transport

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilient-result/resilient/policies"
)

// hang is a handler that never answers: it returns when the request's
// context ends (the client gave up).
func hang(calls *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		<-r.Context().Done()
	}
}

func TestTimeoutSlowServer(t *testing.T) {
	var calls atomic.Int64
	srv := newServer(t, hang(&calls))
	rt := newTestClient(t, Timeout(30*time.Millisecond)).Transport
	start := time.Now()
	resp, err := rt.RoundTrip(mustRequest(t, context.Background(), http.MethodGet, srv.URL, ""))
	if resp != nil {
		discard(resp)
		t.Fatal("want no response")
	}
	if !errors.Is(err, policies.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("the layer's timeout must not look like the caller's deadline (context.DeadlineExceeded)")
	}
	var te *policies.TimeoutError
	if !errors.As(err, &te) || te.After != 30*time.Millisecond {
		t.Fatalf("err = %#v, want a *policies.TimeoutError after 30ms", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("took %v", el)
	}
}

func TestTimeoutCallerDeadlineUnchanged(t *testing.T) {
	var calls atomic.Int64
	srv := newServer(t, hang(&calls))
	c := newTestClient(t, Timeout(time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	resp, err := c.Do(mustRequest(t, ctx, http.MethodGet, srv.URL, ""))
	if err == nil {
		discard(resp)
	}
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, policies.ErrTimeout) {
		t.Fatalf("err = %v, want the caller's context.DeadlineExceeded, not ErrTimeout", err)
	}
}

func TestTimeoutBodyReadableAfterReturn(t *testing.T) {
	release := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		http.NewResponseController(w).Flush()
		<-release // the body comes after RoundTrip has returned
		_, _ = io.WriteString(w, "late body")
	})
	c := newTestClient(t, Timeout(5*time.Second))
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	close(release)
	if got := readAll(t, resp); got != "late body" {
		t.Fatalf("body %q, want %q", got, "late body")
	}
}

func TestTimeoutCutsBodyRead(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		_, _ = io.WriteString(w, "start")
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	})
	c := newTestClient(t, Timeout(30*time.Millisecond))
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, err = io.ReadAll(resp.Body)
	if !errors.Is(err, policies.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read err = %v, want ErrTimeout", err)
	}
}

func TestTimeoutReleasesContext(t *testing.T) {
	var seen context.Context
	ok := rtFunc(func(req *http.Request) (*http.Response, error) {
		seen = req.Context()
		return newResponse(req, 200, nil, "x"), nil
	})
	resp, err := Chain(ok, Timeout(time.Minute)).RoundTrip(mustRequest(t, context.Background(), http.MethodGet, "http://t.test/", ""))
	if err != nil {
		t.Fatal(err)
	}
	if seen.Err() != nil {
		t.Fatal("context ended before the body was closed")
	}
	_ = resp.Body.Close()
	if seen.Err() == nil {
		t.Fatal("context not released when the body was closed")
	}

	boom := errors.New("boom")
	fail := rtFunc(func(req *http.Request) (*http.Response, error) {
		seen = req.Context()
		return nil, boom
	})
	if _, err := Chain(fail, Timeout(time.Minute)).RoundTrip(mustRequest(t, context.Background(), http.MethodGet, "http://t.test/", "")); err != boom {
		t.Fatalf("err = %v, want the inner error as is", err)
	}
	if seen.Err() == nil {
		t.Fatal("context not released on error")
	}
}

func TestTimeoutInsideRetryBoundsEachAttempt(t *testing.T) {
	var calls atomic.Int64
	srv := newServer(t, hang(&calls))
	c := newTestClient(t, Retry(noWait), Timeout(20*time.Millisecond))
	resp, err := c.Get(srv.URL)
	if err == nil {
		discard(resp)
	}
	if !errors.Is(err, policies.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if calls.Load() != 3 {
		t.Fatalf("server saw %d attempts, want 3: each attempt is bounded, then retried", calls.Load())
	}
}

func TestTimeoutOutsideRetryBoundsTheCall(t *testing.T) {
	var calls atomic.Int64
	srv := newServer(t, hang(&calls))
	c := newTestClient(t, Timeout(30*time.Millisecond), Retry(noWait))
	start := time.Now()
	resp, err := c.Get(srv.URL)
	if err == nil {
		discard(resp)
	}
	if !errors.Is(err, policies.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if calls.Load() != 1 {
		t.Fatalf("server saw %d attempts, want 1: the whole call is bounded", calls.Load())
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("took %v", el)
	}
}

func TestTimeoutKeepsUpgradeBodyWritable(t *testing.T) {
	rw := struct {
		io.Reader
		io.Writer
		io.Closer
	}{strings.NewReader(""), io.Discard, io.NopCloser(nil)}
	up := rtFunc(func(req *http.Request) (*http.Response, error) {
		r := newResponse(req, http.StatusSwitchingProtocols, nil, "")
		r.Body = rw
		return r, nil
	})
	resp, err := Chain(up, Timeout(time.Minute)).RoundTrip(mustRequest(t, context.Background(), http.MethodGet, "http://t.test/", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, ok := resp.Body.(io.ReadWriteCloser); !ok {
		t.Fatal("a 101 response body must stay an io.ReadWriteCloser")
	}
}

func TestTimeoutInvalidPanics(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		func() {
			defer func() {
				msg, _ := recover().(string)
				if !strings.HasPrefix(msg, "transport: Timeout duration must be > 0") {
					t.Errorf("Timeout(%v) panic %q", d, msg)
				}
			}()
			Timeout(d)
		}()
	}
}

// BenchmarkTimeoutArmed is the Standard() timeouts over a base that derives
// a context from the request's, as net/http's Transport does, so each call's
// timeout contexts are watched (timers armed, children attached).
func BenchmarkTimeoutArmed(b *testing.B) {
	base := rtFunc(func(req *http.Request) (*http.Response, error) {
		ctx, cancel := context.WithCancelCause(req.Context())
		defer cancel(nil)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		default:
		}
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
	})
	rt := Chain(base, Timeout(time.Minute), Timeout(10*time.Second))
	req, _ := http.NewRequest(http.MethodGet, "http://bench.test/", nil)
	benchRoundTrips(b, rt, req)
}
