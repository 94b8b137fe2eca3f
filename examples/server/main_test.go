package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the tests when any goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// get fetches url and returns the status, header and body.
func get(t *testing.T, c *http.Client, url string) (int, http.Header, string) {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, string(body)
}

func TestRoutesAnswer(t *testing.T) {
	srv := httptest.NewServer(newHandler())
	defer srv.Close()

	code, h, body := get(t, srv.Client(), srv.URL+"/hello")
	if code != http.StatusOK || body != "hello\n" {
		t.Fatalf("/hello: %d %q", code, body)
	}
	for _, k := range []string{"RateLimit-Policy", "RateLimit", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
		if h.Get(k) == "" {
			t.Errorf("/hello lacks %s: %v", k, h)
		}
	}
	if got := h.Get("RateLimit-Policy"); got != `"default";q=10;w=10` {
		t.Errorf("RateLimit-Policy = %q", got)
	}

	code, _, body = get(t, srv.Client(), srv.URL+"/std/time")
	if _, err := time.Parse(time.RFC3339, strings.TrimSpace(body)); code != http.StatusOK || err != nil {
		t.Fatalf("/std/time: %d %q", code, body)
	}
	if code, _, _ = get(t, srv.Client(), srv.URL+"/std/nowhere"); code != http.StatusNotFound {
		t.Fatalf("/std/nowhere: %d", code)
	}
}

func TestBurstGets429(t *testing.T) {
	srv := httptest.NewServer(newHandler())
	defer srv.Close()
	var codes []int
	var last http.Header
	for range 15 {
		code, h, _ := get(t, srv.Client(), srv.URL+"/hello")
		codes = append(codes, code)
		last = h
	}
	// Ten fit the burst; the 11th is refused (unless a token refilled in
	// between, which can move the first 429 by one on a slow machine).
	first429 := -1
	for i, c := range codes {
		if c == http.StatusTooManyRequests {
			first429 = i
			break
		}
		if c != http.StatusOK {
			t.Fatalf("codes %v", codes)
		}
	}
	if first429 < defaultDemo.Limit || first429 > defaultDemo.Limit+2 {
		t.Fatalf("codes %v: want ten 200s, then 429", codes)
	}
	if codes[len(codes)-1] != http.StatusTooManyRequests || last.Get("Retry-After") == "" ||
		last.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("last: %d %v", codes[len(codes)-1], last)
	}
}

// quick is the demo with a short timeout, so the tests stay fast.
var quick = demoConfig{
	Limit:       100,
	Window:      time.Second,
	Timeout:     20 * time.Millisecond,
	SlowFor:     time.Minute,
	StreamTicks: 1000,
	StreamEvery: 5 * time.Millisecond,
}

func TestSlowGets503(t *testing.T) {
	srv := httptest.NewServer(newHandlerWith(quick))
	defer srv.Close()
	code, h, body := get(t, srv.Client(), srv.URL+"/slow")
	if code != http.StatusServiceUnavailable || h.Get("Content-Type") != "application/problem+json" || !strings.Contains(body, `"status":503`) {
		t.Fatalf("/slow: %d %v %q", code, h, body)
	}
}

func TestStreamStartsAndStopsAtTheDeadline(t *testing.T) {
	srv := httptest.NewServer(newHandlerWith(quick))
	defer srv.Close()
	res, err := srv.Client().Get(srv.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	br := bufio.NewReader(res.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "tick 1\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(rest)), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "stopped: ") {
		t.Fatalf("stream did not stop at the deadline: last line %q", last)
	}
}

func TestRunShutsDownGracefully(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln, newHandler()) }()

	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	if code, _, _ := get(t, c, "http://"+ln.Addr().String()+"/hello"); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if _, err := c.Get("http://" + ln.Addr().String() + "/hello"); err == nil {
		t.Fatal("server still answers after shutdown")
	}
}

func TestPrintUsage(t *testing.T) {
	var b strings.Builder
	printUsage(&b, "http://127.0.0.1:8080")
	for _, want := range []string{
		"http://127.0.0.1:8080/hello",
		"for i in $(seq 1 15); do curl -s -o /dev/null -w '%{http_code} ' http://127.0.0.1:8080/hello; done",
		"/slow", "/stream", "/std/time",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, b.String())
		}
	}
}
