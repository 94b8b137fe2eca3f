package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resilient-result/resilient/headers"
)

// upstream is the demo's unreliable world: two hosts on 127.0.0.1.
//
// The api host misbehaves per path, counting the hits on each path:
//
//	/hello   200 at once
//	/flaky   503 twice, then 200 (and again: 503, 503, 200, ...)
//	/limited 429 with Retry-After on the first hit, then 200
//	/quota   200 announcing an exhausted quota (RateLimit: r=0) for a while
//	/reset   resets the connection (TCP RST) on every hit
//	/slow1   slow (SlowFor) on the first hit, then at once
//	/slow    slow on every hit
//
// The inventory host answers /stock with 503 for DownFor after goDown is
// called, then recovers.
type upstream struct {
	api       *httptest.Server
	inventory *httptest.Server

	sched schedule

	mu   sync.Mutex
	hits map[string]int // api path -> hits so far

	downSince atomic.Int64 // unix nanos when the inventory host went down; 0: up
}

// newUpstream starts both hosts. Close stops them.
func newUpstream(s schedule) *upstream {
	u := &upstream{sched: s, hits: make(map[string]int)}
	u.api = httptest.NewServer(http.HandlerFunc(u.serveAPI))
	u.inventory = httptest.NewServer(http.HandlerFunc(u.serveInventory))
	return u
}

// Close stops both hosts, cutting the connections they still hold.
func (u *upstream) Close() {
	u.api.CloseClientConnections()
	u.inventory.CloseClientConnections()
	u.api.Close()
	u.inventory.Close()
}

// goDown takes the inventory host down for sched.DownFor from now.
func (u *upstream) goDown() { u.downSince.Store(time.Now().UnixNano()) }

// hit counts one request to path and returns its number, from 1.
func (u *upstream) hit(path string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.hits[path]++
	return u.hits[path]
}

func (u *upstream) serveAPI(w http.ResponseWriter, r *http.Request) {
	n := u.hit(r.URL.Path)
	switch r.URL.Path {
	case "/hello":
		fmt.Fprintln(w, "hello")
	case "/flaky":
		if n%3 != 0 {
			http.Error(w, "flaky: try again", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "flaky: this time it worked")
	case "/limited":
		if n == 1 {
			writeRetryAfter(w.Header(), u.sched.RetryAfter)
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		fmt.Fprintln(w, "limited: welcome back")
	case "/quota":
		headers.WritePolicy(w.Header(), headers.Policy{Name: "default", Quota: 5, Window: u.sched.QuotaReset})
		headers.WriteState(w.Header(), headers.State{Name: "default", Remaining: 0, Reset: u.sched.QuotaReset})
		fmt.Fprintln(w, "quota: that was the last one for now")
	case "/reset":
		resetConn(w)
	case "/slow1", "/slow":
		if r.URL.Path == "/slow" || n == 1 {
			t := time.NewTimer(u.sched.SlowFor)
			defer t.Stop()
			select {
			case <-t.C:
			case <-r.Context().Done(): // the client gave up
				return
			}
		}
		fmt.Fprintln(w, "slow: done")
	default:
		http.NotFound(w, r)
	}
}

func (u *upstream) serveInventory(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/stock" {
		http.NotFound(w, r)
		return
	}
	if since := u.downSince.Load(); since != 0 && time.Since(time.Unix(0, since)) < u.sched.DownFor {
		http.Error(w, "inventory is down", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, `{"sku": "A-42", "stock": 7}`)
}

// writeRetryAfter asks the client to wait d: Retry-After in whole seconds,
// as most servers write it, or retry-after-ms for a shorter wait.
func writeRetryAfter(h http.Header, d time.Duration) {
	if d%time.Second == 0 {
		headers.WriteRetryAfter(h, d)
		return
	}
	h.Set("Retry-After-Ms", fmt.Sprint(d.Milliseconds()))
}

// resetConn takes the connection over and resets it (TCP RST), so the
// client sees "connection reset by peer" instead of a response.
func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler) // closes the connection without a response
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // close with RST rather than FIN
	}
	_ = conn.Close()
}
