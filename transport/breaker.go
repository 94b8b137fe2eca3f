package transport

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"

	"github.com/resilient-result/resilient/policies"
)

// breakerMaxHosts bounds the circuits one Breaker layer keeps.
const breakerMaxHosts = 1024

// Breaker returns a Layer that runs one circuit breaker (a policies.Circuit
// configured by p) per host, so one failing host does not cut the others
// off. The zero policies.Breaker opens a host's circuit after 5 consecutive
// failures for 5s, then admits one probe.
//
// Transport errors and responses with status >= 500 are failures (a
// transport error is asked to p.IsFailure first, when it is set); any other
// response, 4xx included, is a success. The outcome is recorded when the
// wrapped RoundTrip returns, once the status is known. An error returned
// after the caller's context ended, and a rejection by an inner policy (a
// *policies.RejectedError: the request never reached the host), are not
// counted.
//
// While a host's circuit is open, requests to it fail fast without being
// sent: RoundTrip closes the request body and returns (nil, err), err the
// *policies.RejectedError (errors.Is(err, policies.ErrCircuitOpen);
// policies.RetryAfter(err) is the cool-down left) with Key set to the host.
// Every circuit is named p.Name, and events reach p.Observer with Key set to
// the host.
//
// Circuits are kept for at most 1024 hosts: when full, a closed circuit is
// forgotten to make room (an arbitrary one when none is closed). Breaker
// panics when p is invalid (see policies.Breaker.Validate).
func Breaker(p policies.Breaker) Layer {
	if err := p.Validate(); err != nil {
		panic("transport: " + strings.TrimPrefix(err.Error(), "policies: "))
	}
	return func(next http.RoundTripper) http.RoundTripper {
		return &breakerRT{next: next, opts: p, circuits: make(map[string]*policies.Circuit)}
	}
}

// breakerRT is the RoundTripper Breaker builds.
type breakerRT struct {
	next http.RoundTripper
	opts policies.Breaker

	mu       sync.RWMutex
	circuits map[string]*policies.Circuit // host -> circuit, at most breakerMaxHosts
}

var _ http.RoundTripper = (*breakerRT)(nil)

// RoundTrip sends req through its host's circuit.
func (b *breakerRT) RoundTrip(req *http.Request) (*http.Response, error) {
	host := hostKey(req)
	t, err := b.circuit(host).Allow()
	if err != nil {
		closeRequestBody(req)
		var re *policies.RejectedError
		if errors.As(err, &re) && re.Key == "" {
			re.Key = host
		}
		return nil, err
	}
	recorded := false
	defer func() {
		if !recorded { // the transport panicked: free a probe slot, count it
			t.Record(policies.OutcomeFailure)
		}
	}()
	resp, err := b.next.RoundTrip(req)
	recorded = true
	t.Record(b.classify(req.Context(), resp, err))
	return resp, err
}

// classify turns a round trip's outcome into the circuit's Outcome.
func (b *breakerRT) classify(ctx context.Context, resp *http.Response, err error) policies.Outcome {
	if err != nil {
		var re *policies.RejectedError
		switch {
		case policies.CallerDone(ctx), errors.As(err, &re):
			return policies.OutcomeIgnore
		case b.opts.IsFailure != nil && !b.opts.IsFailure(err):
			return policies.OutcomeSuccess
		}
		return policies.OutcomeFailure
	}
	if resp.StatusCode >= http.StatusInternalServerError {
		return policies.OutcomeFailure
	}
	return policies.OutcomeSuccess
}

// circuit returns host's circuit, creating it (and evicting another when the
// registry is full) on first use.
func (b *breakerRT) circuit(host string) *policies.Circuit {
	b.mu.RLock()
	c := b.circuits[host]
	b.mu.RUnlock()
	if c != nil {
		return c
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if c = b.circuits[host]; c != nil {
		return c
	}
	if len(b.circuits) >= breakerMaxHosts {
		b.evictLocked()
	}
	o := b.opts
	if o.Observer != nil {
		o.Observer = keyObserver{o: o.Observer, key: host}
	}
	c = policies.NewCircuit(o)
	b.circuits[host] = c
	return c
}

// evictLocked forgets one circuit: a closed one when there is one (map
// iteration starts at random), else any. b.mu must be held.
func (b *breakerRT) evictLocked() {
	victim, found := "", false
	for h, c := range b.circuits {
		if !found {
			victim, found = h, true
		}
		if c.State() == policies.StateClosed {
			victim = h
			break
		}
	}
	if found {
		delete(b.circuits, victim)
	}
}

// CloseIdleConnections forwards to the wrapped transport.
func (b *breakerRT) CloseIdleConnections() { forwardCloseIdle(b.next) }
