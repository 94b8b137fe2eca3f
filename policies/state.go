package policies

// State is a circuit breaker's state.
type State uint8

// The circuit states.
const (
	// StateClosed: calls flow; failures are counted.
	StateClosed State = iota
	// StateOpen: calls are refused with ErrCircuitOpen until the cool-down ends.
	StateOpen
	// StateHalfOpen: a few probe calls test whether the callee recovered.
	StateHalfOpen
)

// String returns "closed", "open" or "half-open".
func (s State) String() string {
	switch s {
	case StateClosed:
		return "closed"
	case StateOpen:
		return "open"
	case StateHalfOpen:
		return "half-open"
	}
	return "unknown"
}
