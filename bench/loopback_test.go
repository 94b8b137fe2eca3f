package bench

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/go-cleanhttp"

	"github.com/resilient-result/resilient/transport"
)

// loopback is one benchmark's httptest server on 127.0.0.1, counting the
// connections clients open to it.
type loopback struct {
	srv   *httptest.Server
	conns atomic.Int64
}

func newLoopback() *loopback {
	lb := &loopback{}
	lb.srv = httptest.NewUnstartedServer(okHandler)
	lb.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			lb.conns.Add(1)
		}
	}
	lb.srv.Start()
	return lb
}

// get is one real request: send, read the body, close it.
func get(tb testing.TB, c *http.Client, url string) {
	resp, err := c.Get(url)
	if err != nil {
		tb.Error(err) // not Fatal: may run in a RunParallel goroutine
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Errorf("status %d", resp.StatusCode)
	}
}

// benchLoopback runs name and name-parallel: GETs to a fresh loopback
// server through a client whose transport build makes from a fresh pooled
// go-cleanhttp transport. It reports conns/op, the new connections per
// request (0 when the pool keeps them).
func benchLoopback(b *testing.B, name string, build func(base http.RoundTripper) http.RoundTripper) {
	run := func(b *testing.B, parallel bool) {
		lb := newLoopback()
		base := cleanhttp.DefaultPooledTransport()
		c := &http.Client{Transport: build(base)}
		defer func() {
			c.CloseIdleConnections()
			lb.srv.Close()
		}()
		url := lb.srv.URL + "/resource"
		get(b, c, url)
		b.ReportAllocs()
		b.ResetTimer()
		start := lb.conns.Load()
		if parallel {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					get(b, c, url)
				}
			})
		} else {
			for range b.N {
				get(b, c, url)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(lb.conns.Load()-start)/float64(b.N), "conns/op")
	}
	b.Run(name, func(b *testing.B) { run(b, false) })
	b.Run(name+"-parallel", func(b *testing.B) { run(b, true) })
}

// BenchmarkLoopback is one real HTTP/1.1 round trip over 127.0.0.1: a bare
// client on a pooled go-cleanhttp transport vs the same transport under
// transport.Standard(). It shows what share of a real request the layers
// are, and that they keep connections pooled (conns/op stays ~0).
func BenchmarkLoopback(b *testing.B) {
	benchLoopback(b, "bare", func(base http.RoundTripper) http.RoundTripper { return base })
	benchLoopback(b, "resilient", func(base http.RoundTripper) http.RoundTripper {
		return transport.Chain(base, transport.Standard()...)
	})
}
