package transport

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

func TestDoOk(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "hello") })
	c := newTestClient(t)
	r := Do(c, mustRequest(t, context.Background(), http.MethodGet, srv.URL, ""))
	if r.IsErr() {
		t.Fatal(r.Err())
	}
	if got := readAll(t, r.Value()); got != "hello" {
		t.Fatalf("body %q", got)
	}
}

func TestDoStatusErrorClosesBody(t *testing.T) {
	big := strings.Repeat("x", 100<<10)
	srv, conns := newCountedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusServiceUnavailable)
		if r.URL.Path == "/big" {
			_, _ = io.WriteString(w, big)
			return
		}
		_, _ = io.WriteString(w, "down for maintenance")
	}))
	c := newTestClient(t)
	for i := 0; i < 3; i++ {
		r := Do(c, mustRequest(t, context.Background(), http.MethodGet, srv.URL+"/y", ""))
		var se *StatusError
		if !errors.As(r.Err(), &se) {
			t.Fatalf("err = %v, want *StatusError", r.Err())
		}
		if se.StatusCode != 503 || string(se.Body) != "down for maintenance" || se.Header.Get("Retry-After") != "7" || se.Method != "GET" {
			t.Fatalf("StatusError = %+v", se)
		}
		if want := "transport: GET " + srv.URL + "/y: 503 Service Unavailable"; se.Error() != want {
			t.Fatalf("Error() = %q, want %q", se.Error(), want)
		}
		if r.Value() != nil {
			t.Fatal("an Err must not hand out the response")
		}
	}
	if n := conns.NewConns(); n != 1 {
		t.Fatalf("%d connections for 3 calls, want 1: an Err must not hold its connection", n)
	}

	r := Do(c, mustRequest(t, context.Background(), http.MethodGet, srv.URL+"/big", ""))
	var se *StatusError
	if !errors.As(r.Err(), &se) || len(se.Body) != 64<<10 {
		t.Fatalf("kept %d bytes of the body, want the first 64 KiB", len(se.Body))
	}
}

func TestDoTransportErrorAsIs(t *testing.T) {
	c := newTestClient(t)
	r := Do(c, mustRequest(t, context.Background(), http.MethodGet, closedURL(t), ""))
	var ue *url.Error
	var oe *net.OpError
	if !errors.As(r.Err(), &ue) || !errors.As(r.Err(), &oe) {
		t.Fatalf("err = %#v, want the client's *url.Error wrapping the dial error", r.Err())
	}
}

func TestDoNilClientIsDefaultClient(t *testing.T) {
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	var se *StatusError
	if r := Do(nil, mustRequest(t, context.Background(), http.MethodGet, srv.URL, "")); !errors.As(r.Err(), &se) || se.StatusCode != http.StatusTeapot {
		t.Fatalf("Do(nil, ...) = %v, want a 418 StatusError", r.Err())
	}
}

func TestStatusErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		e    StatusError
		want string
	}{
		{StatusError{StatusCode: 503, Status: "503 Service Unavailable", Method: "GET", URL: "https://x/y"}, "transport: GET https://x/y: 503 Service Unavailable"},
		{StatusError{StatusCode: 429, Method: "POST", URL: "https://x/y"}, "transport: POST https://x/y: 429 Too Many Requests"},
		{StatusError{StatusCode: 500, Status: "Internal Server Error", Method: "PUT", URL: "u"}, "transport: PUT u: 500 Internal Server Error"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	u, _ := url.Parse("https://user:secret@x/y")
	se := newStatusError(&http.Response{StatusCode: 500, Body: http.NoBody}, &http.Request{URL: u})
	if strings.Contains(se.Error(), "secret") || se.Method != "GET" {
		t.Fatalf("Error() = %q: want the password redacted and the method defaulted to GET", se.Error())
	}
}

func TestDoJSON(t *testing.T) {
	type item struct {
		ID   int    `json:"id"`
		Name string `json:"name"`
	}
	var calls atomic.Int64
	srv, conns := newCountedServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		switch r.URL.Path {
		case "/ok":
			_ = json.NewEncoder(w).Encode(item{ID: 7, Name: "seven"})
		case "/bad":
			_, _ = io.WriteString(w, "not json")
		default:
			http.NotFound(w, r)
		}
	}))
	c := newTestClient(t)
	get := func(path string) *http.Request {
		return mustRequest(t, context.Background(), http.MethodGet, srv.URL+path, "")
	}

	if r := DoJSON[item](c, get("/ok")); r.IsErr() || r.Value() != (item{7, "seven"}) {
		t.Fatalf("DoJSON = %+v, %v", r.Value(), r.Err())
	}
	var se *StatusError
	if r := DoJSON[item](c, get("/missing")); !errors.As(r.Err(), &se) || se.StatusCode != 404 {
		t.Fatalf("err = %v, want a 404 StatusError", r.Err())
	}
	var syn *json.SyntaxError
	if r := DoJSON[item](c, get("/bad")); !errors.As(r.Err(), &syn) || !strings.HasPrefix(r.Err().Error(), "transport: GET ") {
		t.Fatalf("err = %v, want a wrapped *json.SyntaxError", r.Err())
	}
	if n := conns.NewConns(); n != 1 {
		t.Fatalf("%d connections for 3 calls, want 1: DoJSON closes every body", n)
	}
}
