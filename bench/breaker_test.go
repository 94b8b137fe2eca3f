package bench

import (
	"context"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/sony/gobreaker/v2"

	"github.com/resilient-result/resilient/policies"
)

// benchOp runs op b.N times: serially as name, under b.RunParallel as
// name-parallel. Each form gets fresh state from setup, which returns the
// operation (it reports failures with b.Error).
func benchOp(b *testing.B, name string, setup func(b *testing.B) (op func(), done func())) {
	b.Run(name, func(b *testing.B) {
		op, done := setup(b)
		if done != nil {
			defer done()
		}
		op()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			op()
		}
	})
	b.Run(name+"-parallel", func(b *testing.B) {
		op, done := setup(b)
		if done != nil {
			defer done()
		}
		op()
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				op()
			}
		})
	})
}

// BenchmarkBreaker is a closed circuit admitting a successful call. Ours is
// the two-step form the transport adapter uses (policies.Circuit Allow, then
// Ticket.Record); gobreaker's is Execute around a no-op (its only form);
// failsafe-go's is TryAcquirePermit then RecordSuccess. All three use their
// defaults (failsafe-go's set to open after 5 failures, like ours).
func BenchmarkBreaker(b *testing.B) {
	benchOp(b, "resilient", func(b *testing.B) (func(), func()) {
		c := policies.NewCircuit(policies.Breaker{})
		return func() {
			t, err := c.Allow()
			if err != nil {
				b.Error(err)
				return
			}
			t.Record(policies.OutcomeSuccess)
		}, nil
	})
	benchOp(b, "gobreaker", func(b *testing.B) (func(), func()) {
		cb := gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{Name: "bench"})
		return func() {
			if _, err := cb.Execute(func() (struct{}, error) { return struct{}{}, nil }); err != nil {
				b.Error(err)
			}
		}, nil
	})
	benchOp(b, "failsafe", func(b *testing.B) (func(), func()) {
		cb := circuitbreaker.NewBuilder[any]().WithFailureThreshold(5).WithDelay(5 * time.Second).Build()
		return func() {
			if !cb.TryAcquirePermit() {
				b.Error("failsafe circuit refused")
				return
			}
			cb.RecordSuccess()
		}, nil
	})
}

// BenchmarkBreakerExecute is the same closed path through each library's
// function-wrapping form around a no-op: our Circuit.Execute, gobreaker's
// Execute and failsafe-go's executor Run.
func BenchmarkBreakerExecute(b *testing.B) {
	benchOp(b, "resilient", func(b *testing.B) (func(), func()) {
		c := policies.NewCircuit(policies.Breaker{})
		ctx := context.Background()
		return func() {
			if err := c.Execute(ctx, func(context.Context) error { return nil }); err != nil {
				b.Error(err)
			}
		}, nil
	})
	benchOp(b, "gobreaker", func(b *testing.B) (func(), func()) {
		cb := gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{Name: "bench"})
		return func() {
			if _, err := cb.Execute(func() (struct{}, error) { return struct{}{}, nil }); err != nil {
				b.Error(err)
			}
		}, nil
	})
	benchOp(b, "failsafe", func(b *testing.B) (func(), func()) {
		cb := circuitbreaker.NewBuilder[any]().WithFailureThreshold(5).WithDelay(5 * time.Second).Build()
		ex := failsafe.With[any](cb)
		return func() {
			if err := ex.Run(func() error { return nil }); err != nil {
				b.Error(err)
			}
		}, nil
	})
}
