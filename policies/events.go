package policies

import "time"

// Kind names a kind of policy in events and errors.
type Kind uint8

// The policy kinds.
const (
	KindRetry     Kind = iota + 1 // Retry, and its Budget
	KindBreaker                   // a circuit breaker
	KindRateLimit                 // a rate limiter
	KindBulkhead                  // a bulkhead
	KindTimeout                   // a timeout
	KindBudget                    // a retry budget on its own (reserved: Retry reports budget events as KindRetry)
	KindHedge                     // a hedging layer
	KindFallback                  // a fallback layer
)

var kindNames = [...]string{"", "retry", "breaker", "ratelimit", "bulkhead", "timeout", "budget", "hedge", "fallback"}

// String returns the kind's lower-case name, such as "breaker".
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// EventType says what happened.
type EventType uint8

// The event types.
const (
	// EventRetry: a retry is scheduled after Delay; Attempt is the attempt
	// that just failed (1-based) and Err its cause.
	EventRetry EventType = iota + 1
	// EventRetryStop: retrying stopped; Err is the reason (the last error, or
	// ErrBudgetExhausted, or the refused delay's cause).
	EventRetryStop
	// EventStateChange: a circuit moved From one state To another.
	EventStateChange
	// EventReject: a policy refused a call; Delay is the retry-after.
	EventReject
	// EventBudgetExhausted: the retry budget refused a retry.
	EventBudgetExhausted
	// EventAdmit: a bulkhead admitted a call; Delay is the time it queued.
	EventAdmit
	// EventRelease: a bulkhead slot was released.
	EventRelease
	// EventTimeout: a policy's own timeout expired after Delay.
	EventTimeout
	// EventHold: a limiter was told to hold a key for Delay (a server's
	// announced reset or Retry-After).
	EventHold
	// EventHedge: a hedged attempt was started after Delay.
	EventHedge
	// EventFallback: a fallback replaced a failed outcome; Err is the failure.
	EventFallback
)

var eventNames = [...]string{"", "retry", "retry_stop", "state_change", "reject", "budget_exhausted", "admit", "release", "timeout", "hold", "hedge", "fallback"}

// String returns the event type's snake_case name, such as "state_change".
func (t EventType) String() string {
	if int(t) < len(eventNames) {
		return eventNames[t]
	}
	return "unknown"
}

// Event is one thing a policy did. Metrics, traces and logs are derived from
// events, so an event carries the policy's kind, name and key.
type Event struct {
	Kind    Kind          // which kind of policy
	Name    string        // the policy's name; "" when unnamed
	Key     string        // the key (host, client) concerned; "" when unkeyed
	Type    EventType     // what happened
	Attempt int           // for retries: the attempt that just ended, 1-based
	Delay   time.Duration // retry wait, retry-after, queue wait or timeout
	From    State         // for state changes
	To      State         // for state changes
	Err     error         // the cause, when there is one
	Reason  StopReason    // for EventRetryStop: why retrying stopped
}

// Observer receives policy events. It is called synchronously, outside every
// lock the policy holds, so it may read the policy's state; it must be safe
// for concurrent use and should return quickly. A nil Observer costs nothing.
type Observer interface {
	Observe(Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Event)

// Observe calls f(e).
func (f ObserverFunc) Observe(e Event) { f(e) }

// emit sends e to o when o is set.
func emit(o Observer, e Event) {
	if o != nil {
		o.Observe(e)
	}
}
