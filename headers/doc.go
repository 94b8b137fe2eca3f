// Package headers reads and writes the rate-limit and retry signals HTTP
// servers send, as one normalised [Limit] and one delay.
//
// The client side reads. [Delay] is the one most callers want: how long the
// server asked us to wait before the next request, from Retry-After (and its
// millisecond variants) or from an exhausted rate-limit window:
//
//	if d, ok := headers.Delay(resp.Header, time.Now()); ok {
//		// wait d (never more than MaxDelay) before the next request
//	}
//
// [Parse] returns the most restrictive rate-limit policy announced by any
// dialect present, and [RetryAfter] reads Retry-After alone. All three take
// the current time as a parameter and never read the clock themselves.
//
// The server side writes: [WritePolicy] and [WriteState] emit the IETF
// RateLimit-Policy and RateLimit fields, [WriteLegacy] the X-RateLimit-*
// trio and [WriteRetryAfter] Retry-After. Whatever the writers emit, the
// readers read back identically (durations in whole seconds).
//
// # Dialects read
//
//   - IETF draft-ietf-httpapi-ratelimit-headers-10:
//     RateLimit-Policy: "default";q=100;w=60 and RateLimit: "default";r=50;t=30,
//     joined by policy name; older drafts' RateLimit: limit=100, remaining=50, reset=30
//     and the separate RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset fields.
//   - Legacy, GitHub and Discord X-RateLimit-Limit, -Remaining, -Reset (delta
//     seconds, epoch seconds or epoch milliseconds), -Used, -Resource,
//     -Reset-After and -Bucket; and X-Rate-Limit-Limit, -Remaining, -Reset.
//   - OpenAI x-ratelimit-{limit,remaining,reset}-{requests,tokens}, resets
//     written as durations such as 6m0s or 12ms.
//   - Anthropic anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset},
//     resets written as RFC 3339 times.
//   - Azure x-ms-ratelimit-remaining-{subscription,tenant}-{reads,writes} and x-ms-retry-after-ms.
//   - Shopify X-Shopify-Shop-Api-Call-Limit: 32/40.
//   - Retry-After (delay-seconds or any HTTP date), retry-after-ms.
//
// # Bad input
//
// Servers send malformed, negative, enormous and stale values. Readers
// never panic and never trust them blindly: malformed or negative values are
// ignored (treated as absent), counts are clamped to [0, MaxCount], delays
// and resets to [0, MaxDelay] (a time in the past is a delay of 0), and all
// arithmetic saturates instead of wrapping.
//
// # Cost
//
// Reading Retry-After delay-seconds, the X-RateLimit-* family and the OpenAI
// fields allocates nothing. Reading the IETF fields goes through
// github.com/dunglas/httpsfv, which allocates (about 18 allocations, 1 KB, for
// one policy and its state).
package headers
