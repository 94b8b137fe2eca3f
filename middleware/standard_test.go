package middleware

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
)

func TestStandardOrder(t *testing.T) {
	final := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	rl, ok := Standard()(final).(*rlMiddleware)
	if !ok {
		t.Fatal("outermost layer is not RateLimit")
	}
	bh, ok := rl.next.(*bhHandler)
	if !ok {
		t.Fatalf("second layer is %T, want Bulkhead", rl.next)
	}
	if o := bh.c.Options(); o.MaxConcurrent != StandardMaxConcurrent || o.MaxQueue != StandardMaxQueue || o.QueueTimeout != StandardQueueTimeout {
		t.Fatalf("bulkhead options %+v", o)
	}
	to, ok := bh.next.(*toHandler)
	if !ok {
		t.Fatalf("third layer is %T, want Timeout", bh.next)
	}
	if to.d != StandardTimeout {
		t.Fatalf("timeout %v", to.d)
	}
	if _, ok := to.next.(http.HandlerFunc); !ok {
		t.Fatalf("innermost is %T, want the handler", to.next)
	}
}

func TestStandardRateLimitsBeforeTheHandler(t *testing.T) {
	var calls atomic.Int32
	var deadlineIn time.Duration
	h := Standard()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if dl, ok := r.Context().Deadline(); ok {
			deadlineIn = time.Until(dl)
		}
		_, _ = io.WriteString(w, "ok")
	}))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = "192.0.2.1:1234"
	for i := range StandardRateLimit {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("request %d: status %d", i+1, rec.Code)
		}
		if i == 0 && (rec.Header().Get("RateLimit-Policy") != `"default";q=100;w=1` || rec.Header().Get("RateLimit") == "") {
			t.Fatalf("headers %v", rec.Header())
		}
	}
	if deadlineIn <= StandardTimeout-time.Second || deadlineIn > StandardTimeout {
		t.Fatalf("handler deadline in %v, want about %v", deadlineIn, StandardTimeout)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("request %d: %d %v", StandardRateLimit+1, rec.Code, rec.Header())
	}
	if calls.Load() != StandardRateLimit {
		t.Fatalf("handler ran %d times, want %d", calls.Load(), StandardRateLimit)
	}
	// Another client has its own share.
	other := httptest.NewRequest(http.MethodGet, "/", nil)
	other.RemoteAddr = "192.0.2.2:1234"
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, other)
	if rec.Code != http.StatusOK {
		t.Fatalf("other client: %d", rec.Code)
	}
}

// stdGet fetches url and returns the status, header and body.
func stdGet(t *testing.T, c *http.Client, url string) (int, http.Header, string) {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, string(body)
}

func TestStandardServeMux(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello/{name}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello "+r.PathValue("name"))
	})
	srv := httptest.NewServer(Standard()(mux))
	defer srv.Close()

	code, h, body := stdGet(t, srv.Client(), srv.URL+"/hello/gopher")
	if code != http.StatusOK || body != "hello gopher" || h.Get("RateLimit") == "" {
		t.Fatalf("got %d %q %v", code, body, h)
	}
	code, h, _ = stdGet(t, srv.Client(), srv.URL+"/nowhere")
	if code != http.StatusNotFound || h.Get("RateLimit-Policy") == "" {
		t.Fatalf("unknown route: %d %v", code, h)
	}
}

func TestStandardChi(t *testing.T) {
	r := chi.NewRouter()
	r.Use(Standard())
	r.Get("/items/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "item "+chi.URLParam(r, "id"))
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	code, h, body := stdGet(t, srv.Client(), srv.URL+"/items/7")
	if code != http.StatusOK || body != "item 7" || h.Get("RateLimit") == "" {
		t.Fatalf("got %d %q %v", code, body, h)
	}
}

func BenchmarkStandard(b *testing.B) {
	h := Standard()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	// Many clients, so every request takes the admitted path: 65,536 keys
	// of 100 requests each outlast any benchmark run.
	reqs := make([]*http.Request, 1<<16)
	for i := range reqs {
		reqs[i] = httptest.NewRequest(http.MethodGet, "/", nil)
		reqs[i].RemoteAddr = "10." + strconv.Itoa(i>>8&0xff) + "." + strconv.Itoa(i&0xff) + ".1:1234"
	}
	var next atomic.Uint64
	serve := func() int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, reqs[next.Add(1)&(1<<16-1)])
		return rec.Code
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if code := serve(); code != http.StatusOK {
				b.Fatalf("status %d", code)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if code := serve(); code != http.StatusOK {
					b.Errorf("status %d", code)
					return
				}
			}
		})
	})
}
