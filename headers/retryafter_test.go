package headers

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name string
		h    http.Header
		want time.Duration
		ok   bool
	}{
		{"absent", http.Header{}, 0, false},
		{"nil", nil, 0, false},
		{"seconds", hdr("Retry-After", "120"), 2 * time.Minute, true},
		{"zero", hdr("Retry-After", "0"), 0, true},
		{"padded", hdr("Retry-After", " 5 "), 5 * time.Second, true},
		{"decimal tolerated", hdr("Retry-After", "1.5"), 1500 * time.Millisecond, true},
		{"negative", hdr("Retry-After", "-1"), 0, false},
		{"garbage", hdr("Retry-After", "soon"), 0, false},
		{"empty", hdr("Retry-After", ""), 0, false},
		{"overflow", hdr("Retry-After", "99999999999999999999"), MaxDelay, true},
		{"two days", hdr("Retry-After", "172800"), MaxDelay, true},
		{"IMF-fixdate", hdr("Retry-After", now.Add(90*time.Second).Format(http.TimeFormat)), 90 * time.Second, true},
		{"RFC 850", hdr("Retry-After", now.Add(time.Minute).Format(time.RFC850)), time.Minute, true},
		{"asctime", hdr("Retry-After", now.Add(time.Hour).Format(time.ANSIC)), time.Hour, true},
		{"past date", hdr("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"), 0, true},
		{"far future date", hdr("Retry-After", "Fri, 31 Dec 9999 23:59:59 GMT"), MaxDelay, true},
		{"retry-after-ms", hdr("retry-after-ms", "523"), 523 * time.Millisecond, true},
		{"retry-after-ms decimal", hdr("retry-after-ms", "523.5"), 523500 * time.Microsecond, true},
		{"x-ms-retry-after-ms", hdr("x-ms-retry-after-ms", "1500"), 1500 * time.Millisecond, true},
		{"largest wins", hdr("Retry-After", "1", "retry-after-ms", "523"), time.Second, true},
		{"largest wins ms", hdr("Retry-After", "1", "x-ms-retry-after-ms", "2500"), 2500 * time.Millisecond, true},
		{"bad ms ignored", hdr("Retry-After", "3", "retry-after-ms", "-5"), 3 * time.Second, true},
		{"huge ms", hdr("retry-after-ms", "99999999999999999999"), MaxDelay, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := RetryAfter(tt.h, now)
			if got != tt.want || ok != tt.ok {
				t.Errorf("RetryAfter = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestDelay(t *testing.T) {
	tests := []struct {
		name string
		h    http.Header
		want time.Duration
		ok   bool
	}{
		{"nothing", http.Header{}, 0, false},
		{"retry-after", hdr("Retry-After", "7"), 7 * time.Second, true},
		{"retry-after zero", hdr("Retry-After", "0"), 0, false},
		{"remaining left", hdr("X-RateLimit-Limit", "10", "X-RateLimit-Remaining", "3", "X-RateLimit-Reset", "30"), 0, false},
		{"exhausted", hdr("X-RateLimit-Limit", "10", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "30"), 30 * time.Second, true},
		{"exhausted unknown reset", hdr("X-RateLimit-Limit", "10", "X-RateLimit-Remaining", "0"), 0, false},
		{"reset longer than retry-after", hdr("Retry-After", "5", "RateLimit", `"a";r=0;t=60`), time.Minute, true},
		{"retry-after longer than reset", hdr("Retry-After", "120", "RateLimit", `"a";r=0;t=60`), 2 * time.Minute, true},
		{"openai exhausted", hdr("x-ratelimit-remaining-tokens", "0", "x-ratelimit-reset-tokens", "6m0s"), 6 * time.Minute, true},
		{"clamped", hdr("X-RateLimit-Remaining", "0", "X-RateLimit-Reset-After", "1e9"), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Delay(tt.h, now)
			if got != tt.want || ok != tt.ok {
				t.Errorf("Delay = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}
