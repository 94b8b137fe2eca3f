package middleware

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// chainTag returns a middleware that appends name to the X-Order response header
// before calling next, so a test can see the order layers ran in.
func chainTag(name string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Add("X-Order", name)
			next.ServeHTTP(w, r)
		})
	}
}

func TestChainFirstIsOutermost(t *testing.T) {
	h := Chain(chainTag("a"), chainTag("b"), chainTag("c"))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("X-Order", "handler")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if got, want := strings.Join(rec.Header().Values("X-Order"), ","), "a,b,c,handler"; got != want {
		t.Fatalf("order = %q, want %q", got, want)
	}
}

func TestChainSkipsNilAndEmpty(t *testing.T) {
	called := false
	final := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true })
	h := Chain(nil, chainTag("a"), nil)(final)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if !called || rec.Header().Get("X-Order") != "a" {
		t.Fatalf("called=%v order=%q", called, rec.Header().Get("X-Order"))
	}
	called = false
	Chain()(final).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if !called {
		t.Fatal("empty Chain did not call the handler")
	}
}

func TestWriteProblem(t *testing.T) {
	rec := httptest.NewRecorder()
	rec.Header().Set("Retry-After", "3") // set before: must survive
	writeProblem(rec, http.StatusTooManyRequests, "slow down")
	res := rec.Result()
	defer res.Body.Close()
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status = %d", res.StatusCode)
	}
	for k, want := range map[string]string{
		"Content-Type":  "application/problem+json",
		"Cache-Control": "no-store",
		"Retry-After":   "3",
	} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	body := rec.Body.Bytes()
	if got := res.Header.Get("Content-Length"); got != strconv.Itoa(len(body)) {
		t.Errorf("Content-Length = %q, body is %d bytes", got, len(body))
	}
	var p Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	want := Problem{Title: "Too Many Requests", Status: 429, Detail: "slow down"}
	if p != want {
		t.Fatalf("problem = %+v, want %+v", p, want)
	}
	if strings.Contains(string(body), `"type"`) {
		t.Errorf("empty type should be omitted (about:blank): %s", body)
	}
}

// benchHandler runs h over fresh recorders, serially and in parallel,
// failing when it does not answer want.
func benchHandler(b *testing.B, h http.Handler, want int) {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	once := func() int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if code := once(); code != want {
				b.Fatalf("status %d, want %d", code, want)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if code := once(); code != want {
					b.Errorf("status %d, want %d", code, want)
					return
				}
			}
		})
	})
}
