package middleware

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// keyReq returns a request from remote carrying the header pairs kv.
func keyReq(remote string, kv ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = remote
	for i := 0; i+1 < len(kv); i += 2 {
		r.Header.Add(kv[i], kv[i+1])
	}
	return r
}

// keyMust runs fn on r and fails the test on an error.
func keyMust(t *testing.T, fn KeyFunc, r *http.Request) string {
	t.Helper()
	k, err := fn(r)
	if err != nil {
		t.Fatalf("key(%q): %v", r.RemoteAddr, err)
	}
	return k
}

// keyMustPanic fails unless fn panics with a message containing want.
func keyMustPanic(t *testing.T, want string, fn func()) {
	t.Helper()
	defer func() {
		t.Helper()
		v := recover()
		if v == nil {
			t.Fatalf("no panic, want one mentioning %q", want)
		}
		if msg, _ := v.(string); !strings.Contains(msg, want) {
			t.Fatalf("panic %v, want one mentioning %q", v, want)
		}
	}()
	fn()
}

func TestClientIP(t *testing.T) {
	for _, tc := range []struct{ remote, want string }{
		{"192.0.2.1:1234", "192.0.2.1"},
		{"192.0.2.1", "192.0.2.1"},
		{"[::ffff:192.0.2.1]:80", "192.0.2.1"},
		{"[2001:db8::1]:443", "2001:db8::/64"},
		{"[2001:db8::2]:443", "2001:db8::/64"},
		{"[2001:db8::ffff:1:2:3]:1", "2001:db8::/64"},
		{"[2001:db8:0:1::1]:443", "2001:db8:0:1::/64"},
		{"[fe80::1%eth0]:80", "fe80::/64"},
		{"2001:db8::1", "2001:db8::/64"},
	} {
		if got := keyMust(t, ClientIP(), keyReq(tc.remote)); got != tc.want {
			t.Errorf("ClientIP(%q) = %q, want %q", tc.remote, got, tc.want)
		}
	}
}

func TestClientIPRejectsNonIP(t *testing.T) {
	for _, remote := range []string{"", "@", "example.com:80", "not an address"} {
		_, err := ClientIP()(keyReq(remote))
		if !errors.Is(err, ErrNoKey) {
			t.Errorf("ClientIP(%q) err = %v, want ErrNoKey", remote, err)
		}
	}
}

func TestClientIPIgnoresForwardingHeaders(t *testing.T) {
	r := keyReq("192.0.2.1:5", "X-Forwarded-For", "203.0.113.9", "Forwarded", "for=203.0.113.8", "X-Real-IP", "203.0.113.7")
	if got := keyMust(t, ClientIP(), r); got != "192.0.2.1" {
		t.Fatalf("key = %q, want the peer 192.0.2.1", got)
	}
}

func TestTrustedProxiesInvalidCIDRPanics(t *testing.T) {
	keyMustPanic(t, `invalid CIDR "10.0.0.0/33"`, func() { TrustedProxies("10.0.0.0/8", "10.0.0.0/33") })
	keyMustPanic(t, `invalid CIDR "proxy.local"`, func() { TrustedProxies("proxy.local") })
}

func TestTrustedProxiesUntrustedPeerIgnoresHeaders(t *testing.T) {
	fn := TrustedProxies("10.0.0.0/8")
	r := keyReq("198.51.100.4:999", "X-Forwarded-For", "203.0.113.9", "X-Real-IP", "203.0.113.7")
	if got := keyMust(t, fn, r); got != "198.51.100.4" {
		t.Fatalf("key = %q, want the untrusted peer", got)
	}
}

func TestTrustedProxiesRightmostUntrusted(t *testing.T) {
	fn := TrustedProxies("10.0.0.0/8", "2001:db8:ffff::/48", "192.0.2.7")
	for _, tc := range []struct {
		name   string
		remote string
		kv     []string
		want   string
	}{
		{"client, proxy1, proxy2", "10.0.0.3:80",
			[]string{"X-Forwarded-For", "203.0.113.9, 10.0.0.1, 10.0.0.2"}, "203.0.113.9"},
		{"spoofed entries left of the client are ignored", "10.0.0.3:80",
			[]string{"X-Forwarded-For", "1.1.1.1, 2.2.2.2, 203.0.113.9, 10.0.0.1"}, "203.0.113.9"},
		{"several header lines read as one list", "10.0.0.3:80",
			[]string{"X-Forwarded-For", "1.1.1.1, 203.0.113.9", "X-Forwarded-For", "10.0.0.1"}, "203.0.113.9"},
		{"bare-address proxy and IPv6 /64", "192.0.2.7:80",
			[]string{"X-Forwarded-For", "2001:db8::5, 2001:db8:ffff::1"}, "2001:db8::/64"},
		{"bracketed IPv6 with port", "10.0.0.3:80",
			[]string{"X-Forwarded-For", "[2001:db8::5]:4711"}, "2001:db8::/64"},
		{"every entry trusted: leftmost", "10.0.0.3:80",
			[]string{"X-Forwarded-For", "10.0.0.9, 10.0.0.1"}, "10.0.0.9"},
		{"garbage stops at the last trusted", "10.0.0.3:80",
			[]string{"X-Forwarded-For", "203.0.113.9, garbage, 10.0.0.1"}, "10.0.0.1"},
		{"nothing usable: the peer", "10.0.0.3:80",
			[]string{"X-Forwarded-For", "garbage", "X-Real-IP", "203.0.113.7"}, "10.0.0.3"},
		{"Forwarded for=", "10.0.0.3:80",
			[]string{"Forwarded", `for=1.1.1.1, for="[2001:db8::17]:4711";proto=https, for=10.0.0.1;by=10.0.0.3`}, "2001:db8::/64"},
		{"Forwarded case and spacing", "10.0.0.3:80",
			[]string{"Forwarded", `proto=http; For = 203.0.113.60`}, "203.0.113.60"},
		{"Forwarded unknown", "10.0.0.3:80",
			[]string{"Forwarded", `for=unknown, for=10.0.0.1`}, "10.0.0.1"},
		{"X-Forwarded-For beats Forwarded", "10.0.0.3:80",
			[]string{"Forwarded", "for=203.0.113.1", "X-Forwarded-For", "203.0.113.2"}, "203.0.113.2"},
		{"X-Real-IP", "10.0.0.3:80",
			[]string{"X-Real-IP", " 203.0.113.7 "}, "203.0.113.7"},
		{"no headers: the proxy itself", "10.0.0.3:80", nil, "10.0.0.3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := keyMust(t, fn, keyReq(tc.remote, tc.kv...)); got != tc.want {
				t.Fatalf("key = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTrustedProxiesNonIPPeer(t *testing.T) {
	if _, err := TrustedProxies("10.0.0.0/8")(keyReq("@")); !errors.Is(err, ErrNoKey) {
		t.Fatalf("err = %v, want ErrNoKey", err)
	}
}

func TestByHeader(t *testing.T) {
	fn := ByHeader("x-api-key")
	if got := keyMust(t, fn, keyReq("192.0.2.1:1", "X-Api-Key", "k1")); got != "k1" {
		t.Fatalf("key = %q", got)
	}
	for _, r := range []*http.Request{keyReq("192.0.2.1:1"), keyReq("192.0.2.1:1", "X-Api-Key", "")} {
		_, err := fn(r)
		if !errors.Is(err, ErrNoKey) || !strings.Contains(err.Error(), "X-Api-Key") {
			t.Fatalf("err = %v, want ErrNoKey naming the header", err)
		}
	}
	keyMustPanic(t, "ByHeader name", func() { ByHeader("") })
}

func TestByRouteUsesThePattern(t *testing.T) {
	var got []string
	mw := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			k, err := ByRoute()(r)
			if err != nil {
				k = "error"
			}
			got = append(got, k)
			next.ServeHTTP(w, r)
		})
	}
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	mux := http.NewServeMux()
	mux.Handle("GET /items/{id}", mw(ok))
	for _, path := range []string{"/items/1", "/items/2"} {
		mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
	}
	// Outside the router, no pattern is known yet: an error, never the raw
	// path (the inner mw then sees the pattern).
	mw(mux).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/items/3", nil))
	if want := "GET /items/{id},GET /items/{id},error,GET /items/{id}"; strings.Join(got, ",") != want {
		t.Fatalf("keys = %q, want %q", got, want)
	}
	_, err := ByRoute()(httptest.NewRequest(http.MethodGet, "/x", nil))
	if !errors.Is(err, ErrNoKey) {
		t.Fatalf("err = %v, want ErrNoKey", err)
	}
}

func TestComposeIsInjective(t *testing.T) {
	constant := func(s string) KeyFunc { return func(*http.Request) (string, error) { return s, nil } }
	r := keyReq("192.0.2.1:1")
	a := keyMust(t, Compose(constant("a:b"), constant("c")), r)
	b := keyMust(t, Compose(constant("a"), constant("b:c")), r)
	c := keyMust(t, Compose(constant("a\x00b"), constant("")), r)
	d := keyMust(t, Compose(constant("a"), constant("\x00b")), r)
	if a == b || c == d {
		t.Fatalf("collision: %q %q / %q %q", a, b, c, d)
	}
	k := keyMust(t, Compose(ByHeader("X-Tenant"), ClientIP()), keyReq("192.0.2.1:1", "X-Tenant", "acme"))
	if !strings.Contains(k, "acme") || !strings.Contains(k, "192.0.2.1") {
		t.Fatalf("key %q should hold both parts", k)
	}
}

func TestComposeReturnsFirstError(t *testing.T) {
	called := false
	after := func(*http.Request) (string, error) { called = true; return "x", nil }
	_, err := Compose(ClientIP(), ByHeader("X-Tenant"), after)(keyReq("192.0.2.1:1"))
	if !errors.Is(err, ErrNoKey) || called {
		t.Fatalf("err = %v, later fn called = %v", err, called)
	}
	keyMustPanic(t, "at least one", func() { Compose() })
	keyMustPanic(t, "KeyFunc 1 is nil", func() { Compose(ClientIP(), nil) })
}

// keyReference is ClientIP's general path, which its allocation-free IPv4
// path must agree with.
func keyReference(remote string) (string, bool) {
	a, ok := keyParseRemote(remote)
	if !ok {
		return "", false
	}
	return keyOf(a), true
}

func TestClientIPFastPathAgrees(t *testing.T) {
	for _, remote := range []string{
		"192.0.2.1:1234", "192.0.2.1", "0.0.0.0:0", "255.255.255.255:65535", "192.0.2.1:65536",
		"192.0.2.1:", ":80", "192.0.2.1:+80", "192.0.2.1:0080", "192.0.2.1:8_0", "192.0.2.01:80",
		"192.0.2.1:80:80", "192.0.2:80", "192.0.2.1.5:80", "[192.0.2.1]:80", "::ffff:192.0.2.1",
		"[::ffff:192.0.2.1]:80", "2001:db8::1", "[2001:db8::1]:443", "1.2.3.4%eth0:80", " 1.2.3.4:80", "",
	} {
		want, wantOK := keyReference(remote)
		got, err := ClientIP()(keyReq(remote))
		if (err == nil) != wantOK || got != want {
			t.Errorf("ClientIP(%q) = %q, %v; the general path gives %q, %v", remote, got, err, want, wantOK)
		}
	}
}

func FuzzClientIPFastPath(f *testing.F) {
	for _, s := range []string{"192.0.2.1:1234", "192.0.2.1", "[2001:db8::1]:443", "1.2.3.4:99999", "01.2.3.4:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, remote string) {
		k, ok := keyIPv4Remote(remote)
		if !ok {
			return // the general path decides
		}
		if want, wantOK := keyReference(remote); !wantOK || k != want {
			t.Fatalf("keyIPv4Remote(%q) = %q; the general path gives %q, %v", remote, k, want, wantOK)
		}
	})
}

func TestClientIPv4DoesNotAllocate(t *testing.T) {
	fn := ClientIP()
	r := keyReq("192.0.2.1:43210")
	if n := testing.AllocsPerRun(100, func() { _, _ = fn(r) }); n != 0 {
		t.Fatalf("ClientIP allocates %v times per IPv4 request, want 0", n)
	}
}
