package headers

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dunglas/httpsfv"
)

// Policy is one quota policy a server announces with WritePolicy.
type Policy struct {
	// Name identifies the policy and joins it to its State; "" is allowed.
	// It must be printable ASCII (a structured-field String); a policy
	// whose name is not is skipped.
	Name string
	// Quota is the number of requests (or units) allowed per window,
	// clamped to [0, MaxCount].
	Quota int64
	// Window is the window length, written in whole seconds rounded up;
	// 0 or negative omits it.
	Window time.Duration
	// PartitionKey, when not empty, is written as the pk byte sequence.
	PartitionKey string
}

// State is the current state of one policy, written with WriteState.
type State struct {
	// Name is the policy's name, as given to WritePolicy.
	Name string
	// Remaining is the number of units left, clamped to [0, MaxCount]: a
	// limiter that counted past zero writes 0.
	Remaining int64
	// Reset is the time until the window resets, written in whole seconds
	// rounded up; negative writes 0.
	Reset time.Duration
	// PartitionKey, when not empty, is written as the pk byte sequence.
	PartitionKey string
}

// WritePolicy sets RateLimit-Policy (draft-ietf-httpapi-ratelimit-headers-10)
// to the given policies, in order:
//
//	RateLimit-Policy: "default";q=100;w=60
//
// With no (valid) policy it deletes the field.
func WritePolicy(h http.Header, ps ...Policy) {
	items := make([]string, 0, len(ps))
	for _, p := range ps {
		it := httpsfv.NewItem(p.Name)
		it.Params.Add("q", clampWrite(p.Quota))
		if p.Window > 0 {
			it.Params.Add("w", ceilSeconds(p.Window))
		}
		if p.PartitionKey != "" {
			it.Params.Add("pk", []byte(p.PartitionKey))
		}
		if s, err := httpsfv.Marshal(it); err == nil {
			items = append(items, s)
		}
	}
	set(h, keyPolicy, items)
}

// WriteState sets RateLimit (draft-ietf-httpapi-ratelimit-headers-10) to
// the given states, in order:
//
//	RateLimit: "default";r=50;t=30
//
// With no (valid) state it deletes the field.
func WriteState(h http.Header, ss ...State) {
	if len(ss) == 1 {
		// The server's per-response path: one state, no escaping needed,
		// serialised without httpsfv in two allocations instead of a dozen.
		var buf [96]byte
		if b, ok := AppendState(buf[:0], ss[0]); ok {
			h[keyState] = []string{string(b)}
			return
		}
	}
	items := make([]string, 0, len(ss))
	for _, st := range ss {
		it := httpsfv.NewItem(st.Name)
		it.Params.Add("r", clampWrite(st.Remaining))
		it.Params.Add("t", min(ceilSeconds(st.Reset), MaxCount))
		if st.PartitionKey != "" {
			it.Params.Add("pk", []byte(st.PartitionKey))
		}
		if s, err := httpsfv.Marshal(it); err == nil {
			items = append(items, s)
		}
	}
	set(h, keyState, items)
}

func set(h http.Header, key string, items []string) {
	if len(items) == 0 {
		delete(h, key)
		return
	}
	h[key] = []string{strings.Join(items, ", ")}
}

// WriteLegacy sets X-RateLimit-Limit, X-RateLimit-Remaining and
// X-RateLimit-Reset (delta seconds, rounded up). Counts are clamped to
// [0, MaxCount]; a negative quota or remaining means unknown and omits its
// field; a negative reset writes 0.
func WriteLegacy(h http.Header, quota, remaining int64, reset time.Duration) {
	if quota >= 0 {
		h[keyXLimit] = []string{strconv.FormatInt(clampWrite(quota), 10)}
	}
	if remaining >= 0 {
		h[keyXRemaining] = []string{strconv.FormatInt(clampWrite(remaining), 10)}
	}
	h[keyXReset] = []string{strconv.FormatInt(ceilSeconds(reset), 10)}
}

// WriteRetryAfter sets Retry-After to d in whole seconds, rounded up;
// negative writes 0.
func WriteRetryAfter(h http.Header, d time.Duration) {
	h[keyRetryAfter] = []string{strconv.FormatInt(ceilSeconds(d), 10)}
}

// AppendState appends to dst the RateLimit field value WriteState writes
// for the single state st (`"default";r=50;t=30`), byte for byte, without
// allocating. ok is false, and dst is returned unchanged, when st needs the
// general path: a PartitionKey, or a name that needs escaping. Servers that
// keep the value in a buffer of their own use it to save an allocation.
func AppendState(dst []byte, st State) (b []byte, ok bool) {
	if st.PartitionKey != "" || !plainString(st.Name) {
		return dst, false
	}
	dst = append(dst, '"')
	dst = append(dst, st.Name...)
	dst = append(dst, `";r=`...)
	dst = strconv.AppendInt(dst, clampWrite(st.Remaining), 10)
	dst = append(dst, ";t="...)
	dst = strconv.AppendInt(dst, min(ceilSeconds(st.Reset), MaxCount), 10)
	return dst, true
}

// plainString reports whether s is a structured-field String that needs no
// escaping: printable ASCII without '"' or '\\'.
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func clampWrite(n int64) int64 {
	return min(max(n, 0), MaxCount)
}
