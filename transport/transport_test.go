package transport

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// tagLayer returns a Layer that appends name to the request's X-Order
// header (on a clone) before passing it on.
func tagLayer(name string) Layer {
	return func(next http.RoundTripper) http.RoundTripper {
		return rtFunc(func(req *http.Request) (*http.Response, error) {
			r := req.Clone(req.Context())
			r.Header.Add("X-Order", name)
			return next.RoundTrip(r)
		})
	}
}

func TestChainFirstLayerOutermost(t *testing.T) {
	base := &countingRT{}
	rt := Chain(base, tagLayer("a"), nil, tagLayer("b"), tagLayer("c"))
	resp, err := rt.RoundTrip(mustRequest(t, context.Background(), http.MethodGet, "http://x.test/", ""))
	if err != nil {
		t.Fatal(err)
	}
	discard(resp)
	if got := strings.Join(base.Requests()[0].Header.Values("X-Order"), ","); got != "a,b,c" {
		t.Fatalf("order %q, want a,b,c (first layer outermost, nil skipped)", got)
	}
	if Chain(base) != http.RoundTripper(base) {
		t.Fatal("Chain with no layers must return base")
	}
}

func TestChainNilBaseSharesOnePool(t *testing.T) {
	a, b := Chain(nil), Chain(nil)
	if a != b {
		t.Fatal("every Chain with a nil base must share one pooled transport")
	}
	if a == http.DefaultTransport {
		t.Fatal("the shared pool must not be http.DefaultTransport")
	}
	tr, ok := a.(*http.Transport)
	if !ok || tr.MaxIdleConnsPerHost <= 2 {
		t.Fatalf("base %T is not a pooled transport", a)
	}
}

func TestDiscardDrainsForReuse(t *testing.T) {
	srv, conns := newCountedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, strings.Repeat("x", 32<<10))
	}))
	c := newTestClient(t)
	for i := 0; i < 3; i++ {
		resp, err := c.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		discard(resp)
	}
	if n := conns.NewConns(); n != 1 {
		t.Fatalf("%d connections, want 1: discard must drain the body", n)
	}
	discard(nil)
	discard(&http.Response{})
}

func TestDiscardBoundsTheDrain(t *testing.T) {
	body := newTrackedBody(strings.Repeat("x", 1<<20))
	discard(&http.Response{Body: body})
	if body.Closed() != 1 {
		t.Fatal("body not closed")
	}
	rest, _ := io.Copy(io.Discard, body.r)
	if want := int64(1<<20 - drainLimit); rest != want {
		t.Fatalf("%d bytes left unread, want %d: the drain is bounded by 64 KiB", rest, want)
	}
}

func TestCloseRequestBody(t *testing.T) {
	b := newTrackedBody("x")
	closeRequestBody(&http.Request{Body: b})
	if b.Closed() != 1 {
		t.Fatal("body not closed")
	}
	closeRequestBody(nil)
	closeRequestBody(&http.Request{})
	closeRequestBody(&http.Request{Body: http.NoBody})
}

func TestForwardCloseIdle(t *testing.T) {
	base := &countingRT{}
	forwardCloseIdle(base)
	if base.idleCalls.Load() != 1 {
		t.Fatal("not forwarded")
	}
	forwardCloseIdle(rtFunc(nil)) // no CloseIdleConnections: nothing to do
}

func TestHostKey(t *testing.T) {
	u, _ := url.Parse("https://api.example.com:8443/v1")
	if got := hostKey(&http.Request{URL: u, Host: "other"}); got != "api.example.com:8443" {
		t.Fatalf("hostKey = %q, want the URL's host", got)
	}
	if got := hostKey(&http.Request{Host: "h.test"}); got != "h.test" {
		t.Fatalf("hostKey without URL = %q, want req.Host", got)
	}
}
