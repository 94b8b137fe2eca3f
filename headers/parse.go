package headers

import (
	"net/http"
	"strings"
	"time"
)

// Limit is one normalised rate-limit policy announced by a response.
//
// Unknown numbers are -1 (Window: 0), so a Limit read from a header that
// only carries a remaining count still says so. Counts are within
// [0, MaxCount] and Reset within [0, MaxDelay] when known; Remaining never
// exceeds a known Quota.
type Limit struct {
	// Name is the policy name: the IETF item name, "requests", "tokens",
	// "input-tokens" or "output-tokens" for OpenAI and Anthropic, the
	// X-RateLimit-Resource (GitHub) or X-RateLimit-Bucket (Discord), the
	// Azure scope ("subscription-reads", ...); "" when unnamed.
	Name string
	// Quota is the number of requests (or units) allowed per window; -1 when unknown.
	Quota int64
	// Remaining is the number of units left in the current window; -1 when unknown.
	Remaining int64
	// Reset is the time until the window resets, relative to now; -1 when unknown.
	Reset time.Duration
	// Window is the window length; 0 when unknown.
	Window time.Duration
}

// unknown is a Limit that knows nothing yet.
var unknown = Limit{Quota: -1, Remaining: -1, Reset: -1}

// Parse reads every rate-limit dialect present in h (see the package
// documentation) relative to now, and returns the most restrictive limit.
// ok is false when no dialect announces a quota or a remaining count.
//
// The most restrictive limit is chosen by these rules, in order:
//  1. an exhausted limit (Remaining == 0) beats any other;
//  2. among exhausted limits, the one with the longest Reset wins;
//  3. otherwise a known Remaining beats an unknown one; when both
//     quotas are known the smallest Remaining/Quota ratio wins, else the
//     smallest Remaining;
//  4. ties go to the longest Reset, then to the first dialect read (IETF,
//     RateLimit-*, X-RateLimit-*, X-Rate-Limit-*, OpenAI, Anthropic, Azure,
//     Shopify).
//
// Parse does not allocate unless the IETF RateLimit or RateLimit-Policy
// fields are present.
func Parse(h http.Header, now time.Time) (Limit, bool) {
	var p picker
	if !mayCarryLimits(h) {
		return Limit{}, false
	}
	parseIETF(h, &p)
	parseDraft(h, now, &p)
	parseXRateLimit(h, now, &p)
	parseXRateDashLimit(h, now, &p)
	parseOpenAI(h, &p)
	parseAnthropic(h, now, &p)
	parseAzure(h, &p)
	parseShopify(h, &p)
	return p.best, p.ok
}

// mayCarryLimits reports whether any field name in h belongs to a dialect
// Parse reads. One pass over the (usually few) names is much cheaper than
// looking up every dialect's names, and most responses carry none.
func mayCarryLimits(h http.Header) bool {
	for k := range h {
		if k == "" || (k[0] != 'R' && k[0] != 'X' && k[0] != 'A') {
			continue // every dialect's names start with one of these
		}
		if strings.Contains(k, "Ratelimit") || strings.Contains(k, "Rate-Limit") || k == keyShopify {
			return true
		}
	}
	return false
}

// picker keeps the most restrictive limit seen so far.
type picker struct {
	best Limit
	ok   bool
}

// add normalises l and keeps it when it is more restrictive than the best so far.
func (p *picker) add(l Limit) {
	if l.Quota < 0 && l.Remaining < 0 {
		return // says nothing about how restricted we are
	}
	if l.Quota >= 0 && l.Remaining > l.Quota {
		l.Remaining = l.Quota
	}
	if l.Window < 0 {
		l.Window = 0
	}
	if !p.ok || moreRestrictive(l, p.best) {
		p.best, p.ok = l, true
	}
}

// moreRestrictive reports whether a is strictly more restrictive than b.
func moreRestrictive(a, b Limit) bool {
	ae, be := a.Remaining == 0, b.Remaining == 0
	if ae != be {
		return ae
	}
	if !ae {
		ak, bk := a.Remaining >= 0, b.Remaining >= 0
		if ak != bk {
			return ak
		}
		if ak {
			if a.Quota > 0 && b.Quota > 0 {
				ra := float64(a.Remaining) / float64(a.Quota)
				rb := float64(b.Remaining) / float64(b.Quota)
				if ra != rb {
					return ra < rb
				}
			} else if a.Remaining != b.Remaining {
				return a.Remaining < b.Remaining
			}
		}
	}
	return a.Reset > b.Reset
}

// Canonical header keys, so that lookups index the map without allocating.
const (
	keyDraftLimit     = "Ratelimit-Limit"
	keyDraftRemaining = "Ratelimit-Remaining"
	keyDraftReset     = "Ratelimit-Reset"

	keyXLimit      = "X-Ratelimit-Limit"
	keyXRemaining  = "X-Ratelimit-Remaining"
	keyXReset      = "X-Ratelimit-Reset"
	keyXResetAfter = "X-Ratelimit-Reset-After"
	keyXUsed       = "X-Ratelimit-Used"
	keyXResource   = "X-Ratelimit-Resource"
	keyXBucket     = "X-Ratelimit-Bucket"

	keyXDashLimit     = "X-Rate-Limit-Limit"
	keyXDashRemaining = "X-Rate-Limit-Remaining"
	keyXDashReset     = "X-Rate-Limit-Reset"

	keyShopify = "X-Shopify-Shop-Api-Call-Limit"
)

// parseDraft reads RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset
// (IETF drafts 00 to 06).
func parseDraft(h http.Header, now time.Time, p *picker) {
	lim, rem, rst := h[keyDraftLimit], h[keyDraftRemaining], h[keyDraftReset]
	if lim == nil && rem == nil {
		return
	}
	l := unknown
	l.Quota = parseCount(first(lim))
	l.Remaining = parseCount(first(rem))
	l.Reset = parseReset(first(rst), now)
	p.add(l)
}

// parseXRateLimit reads the X-RateLimit-* family shared by legacy servers,
// GitHub and Discord.
func parseXRateLimit(h http.Header, now time.Time, p *picker) {
	lim, rem, used := h[keyXLimit], h[keyXRemaining], h[keyXUsed]
	if lim == nil && rem == nil {
		return
	}
	l := unknown
	l.Quota = parseCount(first(lim))
	l.Remaining = parseCount(first(rem))
	if l.Remaining < 0 && l.Quota >= 0 {
		if u := parseCount(first(used)); u >= 0 {
			l.Remaining = max(l.Quota-u, 0)
		}
	}
	l.Reset = parseDeltaSeconds(first(h[keyXResetAfter])) // Discord, preferred
	if l.Reset < 0 {
		l.Reset = parseReset(first(h[keyXReset]), now)
	}
	if n := first(h[keyXResource]); n != "" {
		l.Name = trimOWS(n)
	} else if n := first(h[keyXBucket]); n != "" {
		l.Name = trimOWS(n)
	}
	p.add(l)
}

// parseXRateDashLimit reads X-Rate-Limit-Limit, -Remaining and -Reset.
func parseXRateDashLimit(h http.Header, now time.Time, p *picker) {
	lim, rem := h[keyXDashLimit], h[keyXDashRemaining]
	if lim == nil && rem == nil {
		return
	}
	l := unknown
	l.Quota = parseCount(first(lim))
	l.Remaining = parseCount(first(rem))
	l.Reset = parseReset(first(h[keyXDashReset]), now)
	p.add(l)
}

// vendorKeys names the canonical keys of one vendor limit.
type vendorKeys struct {
	name, limit, remaining, reset string
}

var openAIKeys = [...]vendorKeys{
	{"requests", "X-Ratelimit-Limit-Requests", "X-Ratelimit-Remaining-Requests", "X-Ratelimit-Reset-Requests"},
	{"tokens", "X-Ratelimit-Limit-Tokens", "X-Ratelimit-Remaining-Tokens", "X-Ratelimit-Reset-Tokens"},
}

// parseOpenAI reads x-ratelimit-{limit,remaining,reset}-{requests,tokens};
// resets are durations such as "6m0s".
func parseOpenAI(h http.Header, p *picker) {
	for _, k := range openAIKeys {
		lim, rem := h[k.limit], h[k.remaining]
		if lim == nil && rem == nil {
			continue
		}
		l := unknown
		l.Name = k.name
		l.Quota = parseCount(first(lim))
		l.Remaining = parseCount(first(rem))
		l.Reset = parseGoDuration(first(h[k.reset]))
		p.add(l)
	}
}

var anthropicKeys = [...]vendorKeys{
	{"requests", "Anthropic-Ratelimit-Requests-Limit", "Anthropic-Ratelimit-Requests-Remaining", "Anthropic-Ratelimit-Requests-Reset"},
	{"tokens", "Anthropic-Ratelimit-Tokens-Limit", "Anthropic-Ratelimit-Tokens-Remaining", "Anthropic-Ratelimit-Tokens-Reset"},
	{"input-tokens", "Anthropic-Ratelimit-Input-Tokens-Limit", "Anthropic-Ratelimit-Input-Tokens-Remaining", "Anthropic-Ratelimit-Input-Tokens-Reset"},
	{"output-tokens", "Anthropic-Ratelimit-Output-Tokens-Limit", "Anthropic-Ratelimit-Output-Tokens-Remaining", "Anthropic-Ratelimit-Output-Tokens-Reset"},
}

// parseAnthropic reads anthropic-ratelimit-*-{limit,remaining,reset}; resets
// are RFC 3339 times.
func parseAnthropic(h http.Header, now time.Time, p *picker) {
	for _, k := range anthropicKeys {
		lim, rem := h[k.limit], h[k.remaining]
		if lim == nil && rem == nil {
			continue
		}
		l := unknown
		l.Name = k.name
		l.Quota = parseCount(first(lim))
		l.Remaining = parseCount(first(rem))
		if s := trimOWS(first(h[k.reset])); s != "" {
			if t, err := time.Parse(time.RFC3339, s); err == nil {
				l.Reset = untilTime(t, now)
			}
		}
		p.add(l)
	}
}

var azureKeys = [...]struct{ name, key string }{
	{"subscription-reads", "X-Ms-Ratelimit-Remaining-Subscription-Reads"},
	{"subscription-writes", "X-Ms-Ratelimit-Remaining-Subscription-Writes"},
	{"tenant-reads", "X-Ms-Ratelimit-Remaining-Tenant-Reads"},
	{"tenant-writes", "X-Ms-Ratelimit-Remaining-Tenant-Writes"},
}

// parseAzure reads x-ms-ratelimit-remaining-*: remaining counts only.
func parseAzure(h http.Header, p *picker) {
	for _, k := range azureKeys {
		v, ok := h[k.key]
		if !ok {
			continue
		}
		l := unknown
		l.Name = k.name
		l.Remaining = parseCount(first(v))
		p.add(l)
	}
}

// parseShopify reads X-Shopify-Shop-Api-Call-Limit: used/quota.
func parseShopify(h http.Header, p *picker) {
	v := first(h[keyShopify])
	if v == "" {
		return
	}
	for i := 0; i < len(v); i++ {
		if v[i] != '/' {
			continue
		}
		used, quota := parseCount(v[:i]), parseCount(v[i+1:])
		if used < 0 || quota < 0 {
			return
		}
		l := unknown
		l.Quota = quota
		l.Remaining = max(quota-used, 0)
		p.add(l)
		return
	}
}
