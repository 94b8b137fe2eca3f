package transport

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/resilient-result/resilient/policies"
)

// TestDeadlineCtxPoolRace drives many concurrent calls through two nested
// Timeout layers, mixing calls that answer at once, calls cut by the inner
// or the outer deadline, and calls the caller cancels, so that pooled
// timers are stopped, fired and reused concurrently (run with -race).
func TestDeadlineCtxPoolRace(t *testing.T) {
	base := rtFunc(func(req *http.Request) (*http.Response, error) {
		ctx := req.Context()
		switch req.Header.Get("X-Mode") {
		case "fast":
			return newResponse(req, 200, nil, "ok"), nil
		case "child": // a derived context, as net/http makes
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			select {
			case <-cctx.Done():
				return nil, cctx.Err()
			case <-time.After(time.Duration(rand.IntN(3)) * time.Millisecond):
				return newResponse(req, 200, nil, "ok"), nil
			}
		default: // slow: waits for the end
			<-ctx.Done()
			return nil, ctx.Err()
		}
	})
	rt := Chain(base, Timeout(8*time.Millisecond), Timeout(3*time.Millisecond))
	modes := []string{"fast", "child", "slow", "cancel"}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 150 {
				mode := modes[(g+i)%len(modes)]
				ctx, cancel := context.WithCancel(context.Background())
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://t.test/", nil)
				req.Header.Set("X-Mode", mode)
				if mode == "cancel" {
					req.Header.Set("X-Mode", "slow")
					time.AfterFunc(time.Millisecond, cancel)
				}
				resp, err := rt.RoundTrip(req)
				switch {
				case err == nil:
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				case mode == "cancel" && ctx.Err() != nil:
					// The caller's end: whatever the call was cut with
					// (its Canceled, or a timeout that raced with it)
					// comes back unchanged.
				case errors.Is(err, policies.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded):
				default:
					t.Errorf("mode %s: err = %v", mode, err)
				}
				cancel()
			}
		}()
	}
	wg.Wait()
}

func TestTimeoutFakeBodyCutByDeadline(t *testing.T) {
	// The body blocks until the request's context ends, as a real
	// transport's does.
	base := rtFunc(func(req *http.Request) (*http.Response, error) {
		resp := newResponse(req, 200, nil, "")
		ctx := req.Context()
		resp.Body = io.NopCloser(readerFunc(func(p []byte) (int, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		}))
		return resp, nil
	})
	resp, err := Chain(base, Timeout(20*time.Millisecond)).RoundTrip(mustRequest(t, context.Background(), http.MethodGet, "http://t.test/", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, err = io.ReadAll(resp.Body)
	var te *policies.TimeoutError
	if !errors.As(err, &te) || te.After != 20*time.Millisecond || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read err = %v, want a *policies.TimeoutError without DeadlineExceeded", err)
	}
}

func TestTimeoutNamedError(t *testing.T) {
	base := rtFunc(func(req *http.Request) (*http.Response, error) {
		<-req.Context().Done()
		return nil, req.Context().Err()
	})
	_, err := Chain(base, TimeoutWith(policies.Timeout{After: 10 * time.Millisecond, Name: "attempt"})).
		RoundTrip(mustRequest(t, context.Background(), http.MethodGet, "http://t.test/", ""))
	var te *policies.TimeoutError
	if !errors.As(err, &te) || te.Name != "attempt" || te.Err != nil {
		t.Fatalf("err = %#v, want a *policies.TimeoutError named attempt wrapping nothing", err)
	}
}

// readerFunc is an io.Reader made of a function.
type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
