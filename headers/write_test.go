package headers

import (
	"net/http"
	"testing"
	"time"

	"github.com/dunglas/httpsfv"
)

func TestWriteIETF(t *testing.T) {
	h := http.Header{}
	WritePolicy(h,
		Policy{Name: "burst", Quota: 100, Window: time.Minute},
		Policy{Name: "daily", Quota: 1000, Window: 24 * time.Hour, PartitionKey: "client"})
	WriteState(h,
		State{Name: "burst", Remaining: 99, Reset: 1500 * time.Millisecond},
		State{Name: "daily", Remaining: -3, Reset: -time.Second, PartitionKey: "client"})
	if got, want := h.Get("RateLimit-Policy"), `"burst";q=100;w=60, "daily";q=1000;w=86400;pk=:Y2xpZW50:`; got != want {
		t.Errorf("RateLimit-Policy = %s, want %s", got, want)
	}
	if got, want := h.Get("RateLimit"), `"burst";r=99;t=2, "daily";r=0;t=0;pk=:Y2xpZW50:`; got != want {
		t.Errorf("RateLimit = %s, want %s", got, want)
	}
	got, ok := Parse(h, now)
	want := Limit{Name: "daily", Quota: 1000, Remaining: 0, Reset: 0, Window: 24 * time.Hour}
	if !ok || got != want {
		t.Errorf("Parse = %+v, %v; want %+v", got, ok, want)
	}
}

func TestWriteInvalidNameSkipped(t *testing.T) {
	h := http.Header{}
	WritePolicy(h, Policy{Name: "bad\nname", Quota: 1}, Policy{Name: "ok", Quota: 2})
	if got, want := h.Get("RateLimit-Policy"), `"ok";q=2`; got != want {
		t.Errorf("RateLimit-Policy = %s, want %s", got, want)
	}
	WritePolicy(h)
	WriteState(h, State{Name: "ünïcode"})
	if _, ok := h["Ratelimit-Policy"]; ok {
		t.Error("WritePolicy() kept RateLimit-Policy")
	}
	if _, ok := h["Ratelimit"]; ok {
		t.Error("WriteState with an invalid name set RateLimit")
	}
}

func TestRoundTripIETF(t *testing.T) {
	tests := []Limit{
		{Name: "default", Quota: 100, Remaining: 50, Reset: 30 * time.Second, Window: time.Minute},
		{Name: "", Quota: 1, Remaining: 0, Reset: 0, Window: 0},
		{Name: "a b \"quoted\" \\ back", Quota: MaxCount, Remaining: MaxCount, Reset: MaxDelay, Window: 30 * 24 * time.Hour},
	}
	for _, l := range tests {
		h := http.Header{}
		WritePolicy(h, Policy{Name: l.Name, Quota: l.Quota, Window: l.Window})
		WriteState(h, State{Name: l.Name, Remaining: l.Remaining, Reset: l.Reset})
		got, ok := Parse(h, now)
		if !ok || got != l {
			t.Errorf("round trip of %+v = %+v, %v (headers %v)", l, got, ok, h)
		}
	}
}

func TestRoundTripLegacy(t *testing.T) {
	tests := []struct {
		quota, remaining int64
		reset            time.Duration
		want             Limit
	}{
		{100, 50, 30 * time.Second, Limit{Quota: 100, Remaining: 50, Reset: 30 * time.Second}},
		{100, 0, 1500 * time.Millisecond, Limit{Quota: 100, Remaining: 0, Reset: 2 * time.Second}},
		{100, -1, 0, Limit{Quota: 100, Remaining: -1, Reset: 0}},
		{5, 9, -time.Second, Limit{Quota: 5, Remaining: 5, Reset: 0}},
		{1 << 62, 0, time.Hour, Limit{Quota: MaxCount, Remaining: 0, Reset: time.Hour}},
	}
	for _, tt := range tests {
		h := http.Header{}
		WriteLegacy(h, tt.quota, tt.remaining, tt.reset)
		got, ok := Parse(h, now)
		if !ok || got != tt.want {
			t.Errorf("WriteLegacy(%d, %d, %v) read back %+v, %v; want %+v (headers %v)",
				tt.quota, tt.remaining, tt.reset, got, ok, tt.want, h)
		}
	}
}

func TestRoundTripRetryAfter(t *testing.T) {
	tests := []struct{ in, want time.Duration }{
		{0, 0},
		{-time.Second, 0},
		{time.Second, time.Second},
		{1500 * time.Millisecond, 2 * time.Second},
		{time.Hour, time.Hour},
		{1<<63 - 1, MaxDelay},
	}
	for _, tt := range tests {
		h := http.Header{}
		WriteRetryAfter(h, tt.in)
		if got, ok := RetryAfter(h, now); !ok || got != tt.want {
			t.Errorf("WriteRetryAfter(%v) read back %v, %v; want %v", tt.in, got, ok, tt.want)
		}
	}
}

// The hand-written single-state path must emit exactly what httpsfv does.
func TestWriteStateFastPathMatchesHTTPSFV(t *testing.T) {
	cases := []State{
		{Name: "default", Remaining: 50, Reset: 30 * time.Second},
		{Name: "", Remaining: 0, Reset: 0},
		{Name: "a b-c_d.e~f", Remaining: -3, Reset: 1500 * time.Millisecond},
		{Name: "max", Remaining: MaxCount + 10, Reset: 1<<63 - 1},
		{Name: "neg", Remaining: 7, Reset: -time.Second},
	}
	for _, st := range cases {
		it := httpsfv.NewItem(st.Name)
		it.Params.Add("r", clampWrite(st.Remaining))
		it.Params.Add("t", min(ceilSeconds(st.Reset), MaxCount))
		want, err := httpsfv.Marshal(it)
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		WriteState(h, st)
		if got := h.Get("RateLimit"); got != want {
			t.Errorf("WriteState(%+v) = %q, want %q", st, got, want)
		}
	}
	// AppendState is the same bytes, appended.
	for _, st := range cases {
		h := http.Header{}
		WriteState(h, st)
		if b, ok := AppendState([]byte("x"), st); !ok || string(b) != "x"+h.Get("RateLimit") {
			t.Errorf("AppendState(%+v) = %q, %v; want %q appended", st, b, ok, h.Get("RateLimit"))
		}
	}
	if b, ok := AppendState(nil, State{Name: `q"uote`}); ok || b != nil {
		t.Errorf("AppendState of a name needing escapes = %q, %v; want refused", b, ok)
	}
	if _, ok := AppendState(nil, State{Name: "p", PartitionKey: "k"}); ok {
		t.Error("AppendState with a partition key was not refused")
	}
	// Names that need escaping take the general path and still round-trip.
	h := http.Header{}
	WriteState(h, State{Name: `q"uote`, Remaining: 1, Reset: time.Second})
	if got := h.Get("RateLimit"); got != `"q\"uote";r=1;t=1` {
		t.Errorf("escaped name written as %q", got)
	}
}

func BenchmarkWriteState(b *testing.B) {
	h := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		WriteState(h, State{Name: "default", Remaining: 42, Reset: 35 * time.Second})
	}
}
