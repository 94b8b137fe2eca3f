// Package bench measures resilient side by side with its peers (failsafe-go,
// go-retryablehttp, sony/gobreaker, x/time/rate, uber-go/ratelimit,
// sethvargo/go-limiter, chi's Throttle and Timeout with go-chi/httprate, and
// http.TimeoutHandler). It is its own module so that the library's go.mod
// never lists a peer.
//
// Every pair runs in the same process over the same in-memory base (an
// http.RoundTripper or an http.Handler that does almost nothing), so that
// "overhead" = ns/op of a stack minus ns/op of the bare base. Each benchmark
// has a serial form (BenchmarkX/name) and a b.RunParallel form
// (BenchmarkX/name-parallel).
//
//	go test -run='^$' -bench=. -benchmem ./...   # the set
//	bash run.sh                                  # the set, -count=5, then BENCHMARKS.md
package bench
