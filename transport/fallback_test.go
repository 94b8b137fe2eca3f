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

	"github.com/resilient-result/resilient/policies"
)

// t2Cached is the alt answer of the fallback tests.
func t2Cached() http.RoundTripper {
	return StaticResponse(http.StatusOK, http.Header{"X-Source": {"cache"}}, []byte("cached"))
}

func TestFallbackOnTransportErrorAndRejection(t *testing.T) {
	for _, primaryErr := range []error{
		errors.New("dial tcp: connection refused"),
		&policies.RejectedError{Kind: policies.KindBreaker, Err: policies.ErrCircuitOpen},
	} {
		base := &countingRT{respond: func(int, *http.Request) (*http.Response, error) { return nil, primaryErr }}
		rt := Chain(base, Fallback(t2Cached()))
		resp, err := t2Get(t, rt, "http://a.test/")
		if err != nil {
			t.Fatalf("%v: err = %v, want alt's answer", primaryErr, err)
		}
		if body := readAll(t, resp); resp.StatusCode != 200 || body != "cached" || resp.Header.Get("X-Source") != "cache" {
			t.Fatalf("%v: got %d %q", primaryErr, resp.StatusCode, body)
		}
	}
}

func TestFallbackDiscards5xxAndReusesConnection(t *testing.T) {
	var hits atomic.Int64
	srv, conns := newCountedServer(t, statusSeq(&hits, nil, 503))
	client := newTestClient(t, Fallback(t2Cached()))
	for i := 0; i < 3; i++ {
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		if body := readAll(t, resp); body != "cached" {
			t.Fatalf("call %d: body %q, want alt's", i+1, body)
		}
	}
	if hits.Load() != 3 {
		t.Fatalf("primary saw %d requests, want 3", hits.Load())
	}
	if conns.NewConns() != 1 {
		t.Fatalf("%d connections opened, want 1: discarded 503s must free their connection", conns.NewConns())
	}
}

func TestFallbackClosesDiscardedBody(t *testing.T) {
	body := newTrackedBody("primary failed")
	base := &countingRT{respond: func(_ int, req *http.Request) (*http.Response, error) {
		resp := newResponse(req, 500, nil, "")
		resp.Body = body
		return resp, nil
	}}
	resp, err := Chain(base, Fallback(t2Cached())).RoundTrip(mustRequest(t, testCtx(t), http.MethodGet, "http://a.test/", ""))
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if body.Closed() != 1 {
		t.Fatalf("discarded body closed %d times, want 1", body.Closed())
	}
}

func TestFallbackKeepsGoodPrimaryAnswer(t *testing.T) {
	var want *http.Response
	base := &countingRT{respond: func(_ int, req *http.Request) (*http.Response, error) {
		want = newResponse(req, 404, nil, "not here")
		return want, nil
	}}
	alt := &countingRT{}
	resp, err := Chain(base, Fallback(alt)).RoundTrip(mustRequest(t, testCtx(t), http.MethodGet, "http://a.test/", ""))
	if err != nil || resp != want {
		t.Fatalf("got %v, %v; want the primary's response itself", resp, err)
	}
	if body := readAll(t, resp); body != "not here" {
		t.Fatalf("body %q", body)
	}
	if alt.Calls() != 0 {
		t.Fatalf("alt called %d times, want 0", alt.Calls())
	}
}

func TestFallbackReplaysBodyToAlt(t *testing.T) {
	primary := &bodyRecorder{codes: []int{500}}
	srv := newServer(t, primary.ServeHTTP)
	alt := &countingRT{}
	client := newTestClient(t, Fallback(alt))
	resp, err := client.Post(srv.URL, "text/plain", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if resp.StatusCode != 200 || alt.Calls() != 1 {
		t.Fatalf("status %d, alt calls %d", resp.StatusCode, alt.Calls())
	}
	if got := primary.Bodies(); len(got) != 1 || got[0] != "payload" {
		t.Fatalf("primary bodies %q", got)
	}
	if got := alt.Bodies(); got[0] != "payload" {
		t.Fatalf("alt body %q, want the same bytes", got[0])
	}
	if r := alt.Requests()[0]; r.Method != http.MethodPost || r.URL.String() != srv.URL {
		t.Fatalf("alt got %s %s", r.Method, r.URL)
	}
}

func TestFallbackNonReplayableBodyGetsPrimaryOutcome(t *testing.T) {
	base := &countingRT{respond: func(_ int, req *http.Request) (*http.Response, error) {
		return newResponse(req, 502, nil, "bad gateway"), nil
	}}
	alt := &countingRT{}
	req := mustRequest(t, testCtx(t), http.MethodPost, "http://a.test/", "")
	req.Body = io.NopCloser(strings.NewReader("once")) // no GetBody
	resp, err := Chain(base, Fallback(alt)).RoundTrip(req)
	if err != nil || resp.StatusCode != 502 || readAll(t, resp) != "bad gateway" {
		t.Fatalf("got %v, %v; want the primary's 502", resp, err)
	}
	if alt.Calls() != 0 {
		t.Fatalf("alt called %d times", alt.Calls())
	}
}

func TestFallbackNotForCallerCancellation(t *testing.T) {
	base := &countingRT{respond: func(_ int, req *http.Request) (*http.Response, error) {
		return nil, context.Cause(req.Context())
	}}
	alt := &countingRT{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Chain(base, Fallback(alt)).RoundTrip(mustRequest(t, ctx, http.MethodGet, "http://a.test/", ""))
	if !errors.Is(err, context.Canceled) || alt.Calls() != 0 {
		t.Fatalf("err = %v, alt calls %d; want the cancellation and no alt", err, alt.Calls())
	}
}

func TestFallbackForwardsCloseIdleToBoth(t *testing.T) {
	base, alt := &countingRT{}, &countingRT{}
	(&http.Client{Transport: Chain(base, Fallback(alt))}).CloseIdleConnections()
	if base.idleCalls.Load() != 1 || alt.idleCalls.Load() != 1 {
		t.Fatalf("CloseIdleConnections: base %d, alt %d; want 1 and 1", base.idleCalls.Load(), alt.idleCalls.Load())
	}
}

func TestFallbackNilAltPanics(t *testing.T) {
	defer func() {
		if msg := fmt.Sprint(recover()); msg != "transport: Fallback alt must not be nil" {
			t.Fatalf("panic = %q", msg)
		}
	}()
	Fallback(nil)
}

func TestStaticResponseIsFreshEachCall(t *testing.T) {
	h := http.Header{"Content-Type": {"text/plain"}}
	body := []byte("hello")
	rt := StaticResponse(http.StatusServiceUnavailable, h, body)
	h.Set("Content-Type", "changed")
	body[0] = 'J'

	for i := 0; i < 2; i++ {
		reqBody := newTrackedBody("x")
		req := mustRequest(t, testCtx(t), http.MethodPost, "http://a.test/", "")
		req.Body = reqBody
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 503 || resp.Status != "503 Service Unavailable" || resp.Request != req || resp.ContentLength != 5 {
			t.Fatalf("call %d: %+v", i+1, resp)
		}
		if got := readAll(t, resp); got != "hello" {
			t.Fatalf("call %d: body %q, want a copy taken at construction", i+1, got)
		}
		if got := resp.Header.Get("Content-Type"); got != "text/plain" {
			t.Fatalf("call %d: header %q", i+1, got)
		}
		resp.Header.Set("Content-Type", "mutated by the caller")
		if reqBody.Closed() != 1 {
			t.Fatalf("request body closed %d times", reqBody.Closed())
		}
	}

	resp, err := rt.RoundTrip(mustRequest(t, testCtx(t), http.MethodHead, "http://a.test/", ""))
	if err != nil || resp.Body != http.NoBody {
		t.Fatalf("HEAD: %v, body %v; want no body", err, resp.Body)
	}
}

func TestStaticResponseInvalidStatusPanics(t *testing.T) {
	defer func() {
		if msg := fmt.Sprint(recover()); !strings.HasPrefix(msg, "transport: StaticResponse status") {
			t.Fatalf("panic = %q", msg)
		}
	}()
	StaticResponse(42, nil, nil)
}
