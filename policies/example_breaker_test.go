package policies_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/resilient-result/resilient/policies"
)

func ExampleCircuit() {
	circuit := policies.NewCircuit(policies.Breaker{Name: "db", Failures: 2, OpenFor: time.Minute})
	ctx := context.Background()
	query := func(context.Context) error { return errors.New("connection refused") }

	for range 3 {
		err := circuit.Execute(ctx, query)
		wait, _ := policies.RetryAfter(err)
		fmt.Printf("%v (open: %v, wait > 0: %v)\n", circuit.State(), errors.Is(err, policies.ErrCircuitOpen), wait > 0)
	}
	// Output:
	// closed (open: false, wait > 0: false)
	// open (open: false, wait > 0: false)
	// open (open: true, wait > 0: true)
}

func ExampleCircuit_Allow() {
	circuit := policies.NewCircuit(policies.Breaker{})

	// The two-step form, for adapters that cannot wrap a function.
	ticket, err := circuit.Allow()
	if err != nil {
		fmt.Println("rejected:", err)
		return
	}
	status := 503 // the call's result
	switch {
	case status >= 500:
		ticket.Record(policies.OutcomeFailure)
	default:
		ticket.Record(policies.OutcomeSuccess)
	}
	fmt.Println(circuit.State())
	// Output:
	// closed
}

func ExampleBreaker_ratio() {
	// Open when half the calls of the last 30s failed, once there were 20.
	circuit := policies.NewCircuit(policies.Breaker{FailureRatio: 0.5, Window: 30 * time.Second, MinCalls: 20})
	for i := range 20 {
		ticket, _ := circuit.Allow()
		if i%2 == 0 {
			ticket.Record(policies.OutcomeSuccess)
		} else {
			ticket.Record(policies.OutcomeFailure)
		}
	}
	fmt.Println(circuit.State())
	// Output:
	// open
}

func ExampleBreaker_observer() {
	var circuit *policies.Circuit
	circuit = policies.NewCircuit(policies.Breaker{
		Name:     "payments",
		Failures: 1,
		Observer: policies.ObserverFunc(func(e policies.Event) {
			if e.Type == policies.EventStateChange {
				// Observers run outside the circuit's lock: reading it is safe.
				fmt.Printf("%s: %v -> %v (now %v) for %v\n", e.Name, e.From, e.To, circuit.State(), e.Delay)
			}
		}),
		OpenFor: 30 * time.Second,
	})
	_ = circuit.Execute(context.Background(), func(context.Context) error { return errors.New("timeout") })
	// Output:
	// payments: closed -> open (now open) for 30s
}
