package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// t2SignalBody is a response body that reports its Close on a channel.
type t2SignalBody struct {
	io.Reader
	closed chan struct{}
	once   atomic.Bool
}

func t2NewSignalBody(s string) *t2SignalBody {
	return &t2SignalBody{Reader: strings.NewReader(s), closed: make(chan struct{})}
}

// Close signals the first call.
func (b *t2SignalBody) Close() error {
	if b.once.CompareAndSwap(false, true) {
		close(b.closed)
	}
	return nil
}

// t2Wait waits for ch or fails the test after 5s.
func t2Wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestHedgeSlowPrimaryFastHedgeWins(t *testing.T) {
	var hits atomic.Int64
	primaryArrived := make(chan struct{})
	primaryCancelled := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			close(primaryArrived)
			<-r.Context().Done() // the slow primary is given up on
			close(primaryCancelled)
			return
		}
		_, _ = io.WriteString(w, "hedge")
	})
	fake := t2Fake()
	client := newTestClient(t, hedgeLayer(50*time.Millisecond, fake, HedgeOptions{}))

	type outcome struct {
		body string
		err  error
	}
	done := make(chan outcome, 1)
	go func() {
		resp, err := client.Get(srv.URL)
		if err != nil {
			done <- outcome{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		done <- outcome{string(b), err}
	}()
	t2Wait(t, primaryArrived, "the primary")
	if err := fake.BlockUntil(testCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	fake.Advance(50 * time.Millisecond)
	o := <-done
	if o.err != nil || o.body != "hedge" {
		t.Fatalf("got %q, %v; want the hedge's answer", o.body, o.err)
	}
	t2Wait(t, primaryCancelled, "the primary's context to be cancelled")
	if hits.Load() != 2 {
		t.Fatalf("server saw %d requests, want 2", hits.Load())
	}
}

func TestHedgeFastPrimarySendsNoHedge(t *testing.T) {
	var hits atomic.Int64
	srv := newServer(t, statusSeq(&hits, nil, 200))
	fake := t2Fake()
	client := newTestClient(t, hedgeLayer(time.Second, fake, HedgeOptions{}))
	for i := 0; i < 5; i++ {
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		if body := readAll(t, resp); body != "OK" {
			t.Fatalf("body %q", body)
		}
	}
	if hits.Load() != 5 {
		t.Fatalf("server saw %d requests, want 5: no hedge for a fast primary", hits.Load())
	}
	if n := fake.Timers(); n != 0 {
		t.Fatalf("%d hedge timers left armed", n)
	}
}

func TestHedgeLoserBodyClosedAndWinnerContextLivesUntilClose(t *testing.T) {
	release := make(chan struct{})
	loserBody := t2NewSignalBody("late")
	var winnerCtx atomic.Pointer[context.Context]
	base := &countingRT{respond: func(n int, req *http.Request) (*http.Response, error) {
		if n == 1 {
			<-release // slow, and it answers after the race is decided
			resp := newResponse(req, 200, nil, "")
			resp.Body = loserBody
			return resp, nil
		}
		ctx := req.Context()
		winnerCtx.Store(&ctx)
		return newResponse(req, 200, nil, "fast"), nil
	}}
	fake := t2Fake()
	rt := Chain(base, hedgeLayer(time.Millisecond, fake, HedgeOptions{}))

	type outcome struct {
		resp *http.Response
		err  error
	}
	done := make(chan outcome, 1)
	req := mustRequest(t, testCtx(t), http.MethodGet, "http://a.test/", "")
	go func() {
		resp, err := rt.RoundTrip(req)
		done <- outcome{resp, err}
	}()
	if err := fake.BlockUntil(testCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	fake.Advance(time.Millisecond)
	o := <-done
	if o.err != nil {
		t.Fatal(o.err)
	}
	wctx := *winnerCtx.Load()
	if wctx.Err() != nil {
		t.Fatal("the winner's context ended before its body was read")
	}
	if body := readAll(t, o.resp); body != "fast" {
		t.Fatalf("body %q", body)
	}
	if wctx.Err() == nil {
		t.Fatal("the winner's context outlives its closed body")
	}
	if req.Context().Err() != nil {
		t.Fatal("the caller's context was cancelled")
	}
	close(release)
	t2Wait(t, loserBody.closed, "the loser's body to be closed")
}

func TestHedgeOnlyIdempotentReplayableRequests(t *testing.T) {
	cases := []struct {
		name   string
		method string
		key    string
		body   func() io.Reader
		hedged bool
	}{
		{"GET", http.MethodGet, "", nil, true},
		{"PUT with body", http.MethodPut, "", func() io.Reader { return strings.NewReader("payload") }, true},
		{"POST", http.MethodPost, "", func() io.Reader { return strings.NewReader("payload") }, false},
		{"POST with Idempotency-Key", http.MethodPost, "k1", func() io.Reader { return strings.NewReader("payload") }, true},
		{"PUT with unreplayable body", http.MethodPut, "", func() io.Reader { return io.MultiReader(strings.NewReader("payload")) }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			base := &countingRT{respond: func(n int, req *http.Request) (*http.Response, error) {
				if n == 1 {
					select {
					case <-release:
					case <-req.Context().Done():
						return nil, context.Cause(req.Context())
					}
				}
				return newResponse(req, 200, nil, "ok"), nil
			}}
			fake := t2Fake()
			rt := Chain(base, hedgeLayer(time.Millisecond, fake, HedgeOptions{}))
			var body io.Reader
			if tc.body != nil {
				body = tc.body()
			}
			req, err := http.NewRequestWithContext(testCtx(t), tc.method, "http://a.test/", body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.key != "" {
				req.Header.Set("Idempotency-Key", tc.key)
			}
			done := make(chan error, 1)
			go func() {
				resp, err := rt.RoundTrip(req)
				if err == nil {
					_ = resp.Body.Close()
				}
				done <- err
			}()
			if tc.hedged {
				if err := fake.BlockUntil(testCtx(t), 1); err != nil {
					t.Fatal(err)
				}
				fake.Advance(time.Millisecond)
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				if base.Calls() != 2 {
					t.Fatalf("base calls %d, want 2", base.Calls())
				}
				if tc.body != nil {
					// The losing attempt may still be reading its body when
					// the winner returns: wait for both to be recorded.
					for len(base.Bodies()) < 2 {
						time.Sleep(time.Millisecond)
					}
					if got := base.Bodies(); got[0] != "payload" || got[1] != "payload" {
						t.Fatalf("bodies %q, want the same bytes twice", got)
					}
				}
				return
			}
			for base.calls.Load() == 0 {
				time.Sleep(time.Millisecond)
			}
			if n := fake.Timers(); n != 0 {
				t.Fatalf("%d timers armed for a request that must not be hedged", n)
			}
			close(release)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if base.Calls() != 1 {
				t.Fatalf("base calls %d, want 1", base.Calls())
			}
		})
	}
}

func TestHedgeBothFailReturnsLast(t *testing.T) {
	firstBody := t2NewSignalBody("first")
	primaryRelease := make(chan struct{})
	hedgeRelease := make(chan struct{})
	base := &countingRT{respond: func(n int, req *http.Request) (*http.Response, error) {
		if n == 1 {
			<-primaryRelease
			resp := newResponse(req, 502, nil, "")
			resp.Body = firstBody
			return resp, nil
		}
		<-hedgeRelease
		return newResponse(req, 503, nil, "second"), nil
	}}
	fake := t2Fake()
	rt := Chain(base, hedgeLayer(time.Millisecond, fake, HedgeOptions{}))
	type outcome struct {
		resp *http.Response
		err  error
	}
	done := make(chan outcome, 1)
	go func() {
		resp, err := rt.RoundTrip(mustRequest(t, testCtx(t), http.MethodGet, "http://a.test/", ""))
		done <- outcome{resp, err}
	}()
	if err := fake.BlockUntil(testCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	fake.Advance(time.Millisecond)
	for base.calls.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	close(primaryRelease) // the primary fails first: the hedge may still win
	select {
	case o := <-done:
		t.Fatalf("returned %v, %v before the hedge answered", o.resp, o.err)
	case <-time.After(5 * time.Millisecond):
	}
	close(hedgeRelease)
	o := <-done
	if o.err != nil || o.resp.StatusCode != 503 || readAll(t, o.resp) != "second" {
		t.Fatalf("got %v, %v; want the last failure (the hedge's 503)", o.resp, o.err)
	}
	t2Wait(t, firstBody.closed, "the first failure's body to be closed")
}

func TestHedgeEarlyFailureIsFinal(t *testing.T) {
	base := &countingRT{respond: func(int, *http.Request) (*http.Response, error) {
		return nil, errors.New("refused")
	}}
	fake := t2Fake()
	rt := Chain(base, hedgeLayer(time.Second, fake, HedgeOptions{}))
	if _, err := t2Get(t, rt, "http://a.test/"); err == nil || err.Error() != "refused" {
		t.Fatalf("err = %v", err)
	}
	if base.Calls() != 1 || fake.Timers() != 0 {
		t.Fatalf("base calls %d, timers %d; want 1 and 0: Hedge is not Retry", base.Calls(), fake.Timers())
	}
}

func TestHedgeForwardsCloseIdle(t *testing.T) {
	base := &countingRT{}
	(&http.Client{Transport: Chain(base, Hedge(time.Second))}).CloseIdleConnections()
	if base.idleCalls.Load() != 1 {
		t.Fatalf("CloseIdleConnections reached the base %d times", base.idleCalls.Load())
	}
}

func TestHedgeInvalidDelayPanics(t *testing.T) {
	defer func() {
		if msg := fmt.Sprint(recover()); !strings.HasPrefix(msg, "transport: Hedge delay must be > 0") {
			t.Fatalf("panic = %q", msg)
		}
	}()
	Hedge(0)
}
